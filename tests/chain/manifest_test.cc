// Manifests (docs/format.md §2): layouts, variants, corruption, volume ranges, and byte-exact
// agreement with what the installed duplicity writes and reads.
#include "chain/format/manifest.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "chain/format/names.h"
#include "tests/support/duplicity.h"
#include "tests/support/process.h"

namespace dupfs::chain {
namespace {

Manifest parse_ok(std::string_view text) {
  auto m = parse_manifest(text);
  EXPECT_TRUE(m.has_value()) << (m ? "" : m.error().message);
  return m ? *std::move(m) : Manifest{};
}

// The streamed layout as observed with cat -A (docs/format.md §2.1), shortened.
const std::string kStreamed =
    "Hostname vm\n"
    "Localdir src\n"
    "Volume 1:\n"
    "    StartingPath   .  \n"
    "    EndingPath     huge.bin 12\n"
    "    Hash SHA1 5d2fe4bf11c0653956c996cc1f5b687de32ba784\n"
    "Volume 2:\n"
    "    StartingPath   huge.bin 13\n"
    "    EndingPath     huge.bin 28\n"
    "    Hash SHA1 3f15a92783a5b5154d035195b6111c2bb86304eb\n"
    "Volume 3:\n"
    "    StartingPath   huge.bin 45\n"
    "    EndingPath     \xc3\xbcn\xc3\xaf"
    "c\xc3\xb8"
    "d\xc3\xa9.txt  \n"
    "    Hash SHA1 78c5c6674cd234167afd65cfc4ec87977a892f48\n"
    "Filelist 4\n"
    "    new      bad\xff\xfename.txt\n"
    "    new      \"file\\x20with\\x20spaces.txt\"\n"
    "    changed  \"quo\\x22te\\x5cback\\x09tab.txt\"\n"
    "    deleted  dir/gone.txt\n";

TEST(ManifestParse, StreamedLayout) {
  Manifest m = parse_ok(kStreamed);
  EXPECT_EQ(m.hostname, "vm");
  EXPECT_EQ(m.localdir, "src");
  ASSERT_EQ(m.volumes.size(), 3u);
  const ManifestVolume& v1 = m.volumes.at(1);
  EXPECT_EQ(v1.number, 1);
  EXPECT_EQ(v1.start, Index{});
  EXPECT_EQ(v1.start_block, std::nullopt);
  EXPECT_EQ(v1.end, Index{"huge.bin"});
  EXPECT_EQ(v1.end_block, 12);
  EXPECT_EQ(v1.hash_type, "SHA1");
  EXPECT_EQ(v1.hash_hex, "5d2fe4bf11c0653956c996cc1f5b687de32ba784");
  EXPECT_EQ(m.volumes.at(2).start_block, 13);
  EXPECT_EQ(m.volumes.at(3).end, Index{"\xc3\xbcn\xc3\xaf"
                                       "c\xc3\xb8"
                                       "d\xc3\xa9.txt"});
  EXPECT_EQ(m.volumes.at(3).end_block, std::nullopt);
  ASSERT_TRUE(m.files.has_value());
  ASSERT_EQ(m.files->size(), 4u);
  EXPECT_EQ((*m.files)[0].type, "new");
  EXPECT_EQ((*m.files)[0].path, Index{"bad\xff\xfename.txt"});
  EXPECT_EQ((*m.files)[1].path, Index{"file with spaces.txt"});
  EXPECT_EQ((*m.files)[2].type, "changed");
  EXPECT_EQ((*m.files)[2].path, Index{"quo\"te\\back\ttab.txt"});
  EXPECT_EQ((*m.files)[3].type, "deleted");
  EXPECT_EQ((*m.files)[3].path, (Index{"dir", "gone.txt"}));
  EXPECT_FALSE(m.filelist_count_mismatch);
}

TEST(ManifestFormat, StreamedLayoutIsByteExact) {
  EXPECT_EQ(format_manifest(parse_ok(kStreamed)), kStreamed);

  Manifest m;
  m.hostname = "host";
  m.localdir = "/home/me/my files";
  ManifestVolume v;
  v.number = 1;
  v.start = {};
  v.end = {"a dir", "it's"};
  v.end_block = 3;
  v.hash_type = "SHA1";
  v.hash_hex = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
  m.volumes[1] = v;
  m.files = std::vector<FileChange>{{"new", {"a dir", "it's"}}, {"changed", {"x"}}};
  EXPECT_EQ(format_manifest(m),
            "Hostname host\n"
            "Localdir \"/home/me/my\\x20files\"\n"
            "Volume 1:\n"
            "    StartingPath   .  \n"
            "    EndingPath     \"a\\x20dir/it\\x27s\" 3\n"
            "    Hash SHA1 da39a3ee5e6b4b0d3255bfef95601890afd80709\n"
            "Filelist 2\n"
            "    new      \"a\\x20dir/it\\x27s\"\n"
            "    changed  x\n");
  // No Hostname/Localdir/Filelist when absent (or empty, as duplicity skips empty values).
  m.hostname.reset();
  m.localdir = "";
  m.files.reset();
  m.volumes[1].hash_type.clear();
  EXPECT_EQ(format_manifest(m),
            "Volume 1:\n"
            "    StartingPath   .  \n"
            "    EndingPath     \"a\\x20dir/it\\x27s\" 3\n");
  // --no-files-changed: "Filelist 0".
  m.files.emplace();
  EXPECT_TRUE(format_manifest(m).ends_with("\nFilelist 0\n"));
  // A type longer than 7 bytes is not cut.
  m.files = std::vector<FileChange>{{"somethingelse", {"f"}}};
  EXPECT_TRUE(format_manifest(m).ends_with("\n    somethingelse  f\n"));
}

TEST(ManifestParse, FilelistBeforeVolumes) {
  // Manifest.to_string(): Hostname, Localdir, Filelist, then the volumes.
  std::string text =
      "Hostname vm\n"
      "Localdir \"my\\x20src\"\n"
      "Filelist 2\n"
      "    new      one\n"
      "    changed  two\n"
      "Volume 1:\n"
      "    StartingPath   .  \n"
      "    EndingPath     two  \n"
      "    Hash SHA1 aaaa\n"
      "Volume 2:\n"
      "    StartingPath   two  \n"
      "    EndingPath     two  \n"
      "    Hash SHA1 bbbb\n";
  Manifest m = parse_ok(text);
  EXPECT_EQ(m.localdir, "my src");
  ASSERT_EQ(m.volumes.size(), 2u);
  ASSERT_TRUE(m.files);
  ASSERT_EQ(m.files->size(), 2u);
  EXPECT_EQ((*m.files)[1].path, Index{"two"});
  EXPECT_FALSE(m.filelist_count_mismatch);
  // Written back in the streamed order.
  Manifest again = parse_ok(format_manifest(m));
  EXPECT_EQ(format_manifest(again), format_manifest(m));
  EXPECT_TRUE(
      format_manifest(m).ends_with("Hash SHA1 bbbb\nFilelist 2\n    new      one\n"
                                   "    changed  two\n"));
}

TEST(ManifestParse, ReplicateAndOldVariants) {
  // replicate output and 0.6/0.7.0: no Hostname, Localdir or Filelist; MD5 in old data.
  std::string text =
      "Volume 1:\n"
      "    StartingPath   .\n"
      "    EndingPath     a/b\n"
      "    Hash MD5 0123456789ABCDEF0123456789abcdef\n";
  Manifest m = parse_ok(text);
  EXPECT_FALSE(m.hostname);
  EXPECT_FALSE(m.localdir);
  EXPECT_FALSE(m.files);
  ASSERT_EQ(m.volumes.size(), 1u);
  EXPECT_EQ(m.volumes.at(1).end, (Index{"a", "b"}));
  EXPECT_EQ(m.volumes.at(1).hash_type, "MD5");
  EXPECT_EQ(m.volumes.at(1).hash_hex, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(format_manifest(m),
            "Volume 1:\n"
            "    StartingPath   .  \n"
            "    EndingPath     a/b  \n"
            "    Hash MD5 0123456789abcdef0123456789abcdef\n");
}

TEST(ManifestParse, HashPreference) {
  auto hash_of = [](const std::string& lines) {
    Manifest m = parse_ok("Volume 1:\n    StartingPath .\n    EndingPath .\n" + lines);
    const ManifestVolume& v = m.volumes.at(1);
    return v.hash_type + ":" + v.hash_hex;
  };
  EXPECT_EQ(hash_of("    Hash MD5 aa\n    Hash SHA1 bb\n"), "SHA1:bb");
  EXPECT_EQ(hash_of("    Hash SHA1 bb\n    Hash MD5 aa\n"), "SHA1:bb");
  EXPECT_EQ(hash_of("    Hash SHA256 cc\n    Hash MD5 aa\n"), "MD5:aa");
  EXPECT_EQ(hash_of("    Hash SHA256 cc\n    Hash XYZ dd\n"), "SHA256:cc");
  EXPECT_EQ(hash_of("    Hash SHA1 bb\n    Hash SHA1 ee\n"), "SHA1:ee");  // later wins
  EXPECT_EQ(hash_of(""), ":");
}

TEST(ManifestParse, RepeatedVolumesFromRestartedBackup) {
  auto vol = [](int n, const char* end) {
    return fmt::format(
        "Volume {}:\n    StartingPath   .  \n    EndingPath     {}  \n"
        "    Hash SHA1 {:040d}\n",
        n, end, n);
  };
  // 1, 2, 3, 2: the second volume 2 replaces the first; volume 3 is dropped.
  Manifest m = parse_ok(vol(1, "a") + vol(2, "b") + vol(3, "c") + vol(2, "B"));
  ASSERT_EQ(m.volumes.size(), 2u);
  EXPECT_EQ(m.volumes.at(2).end, Index{"B"});
  // 1, 2, 3, 2, 3: everything up to the last one seen stays.
  Manifest n = parse_ok(vol(1, "a") + vol(2, "b") + vol(3, "c") + vol(2, "B") + vol(3, "C"));
  ASSERT_EQ(n.volumes.size(), 3u);
  EXPECT_EQ(n.volumes.at(3).end, Index{"C"});
  // 1, 3, 2: 3 is dropped.
  Manifest o = parse_ok(vol(1, "a") + vol(3, "c") + vol(2, "b"));
  EXPECT_EQ(o.volumes.size(), 2u);
  EXPECT_EQ(o.volumes.count(3), 0u);
  // 1, 5, 2: duplicity raises ManifestError deleting the absent volume 3; we just drop 5.
  Manifest q = parse_ok(vol(1, "a") + vol(5, "e") + vol(2, "b"));
  EXPECT_EQ(q.volumes.size(), 2u);
  EXPECT_EQ(q.volumes.count(5), 0u);
}

TEST(ManifestParse, Tolerance) {
  // Case-insensitive words, CRLF, whitespace-only lines, tabs, unknown indented words, extra
  // fields after the block number, a missing final newline.
  std::string text =
      "HOSTNAME\tvm\r\n"
      "   \n"
      "VOLUME 1:\r\n"
      "\tstartingpath\t\"a\\x20b\"\t7\textra\r\n"
      "    Comment whatever\n"
      "    ENDINGPATH c/d\n"
      "\n"
      "    hash SHA1 ABCDEF\n"
      "filelist 1\n"
      "    deleted\t\"a\\x20b\"";
  Manifest m = parse_ok(text);
  EXPECT_EQ(m.hostname, "vm");
  const ManifestVolume& v = m.volumes.at(1);
  EXPECT_EQ(v.start, Index{"a b"});
  EXPECT_EQ(v.start_block, 7);
  EXPECT_EQ(v.end, (Index{"c", "d"}));
  EXPECT_EQ(v.hash_hex, "abcdef");
  ASSERT_TRUE(m.files);
  ASSERT_EQ(m.files->size(), 1u);
  EXPECT_EQ((*m.files)[0].type, "deleted");
  EXPECT_EQ((*m.files)[0].path, Index{"a b"});
  // First Hostname wins, as duplicity's regex search does.
  EXPECT_EQ(
      parse_ok("Hostname a\nHostname b\nVolume 1:\n StartingPath .\n EndingPath .\n").hostname,
      "a");
  // Negative block numbers parse (Python int()).
  EXPECT_EQ(parse_ok("Volume 1:\n StartingPath . -2\n EndingPath .\n").volumes.at(1).start_block,
            -2);
}

TEST(ManifestParse, FilelistCountMismatch) {
  // duplicity's test_corrupt_filelist: a count larger than the list is reported, not fatal.
  std::string text =
      "Hostname h\nLocaldir Foobar\nFilelist 5\n    new      one\n"
      "    changed  two\n    new      three\nVolume 3:\n    StartingPath   hello  \n"
      "    EndingPath     .  \n";
  Manifest m = parse_ok(text);
  EXPECT_TRUE(m.filelist_count_mismatch);
  ASSERT_TRUE(m.files);
  EXPECT_EQ(m.files->size(), 3u);
  EXPECT_EQ(m.volumes.at(3).start, Index{"hello"});
}

TEST(ManifestParse, NotAManifest) {
  struct Case {
    std::string text;
    std::string in_message;
  };
  std::mt19937 rng(7);
  std::string random_bytes;
  for (int i = 0; i < 2000; ++i) random_bytes += static_cast<char>(rng());
  const std::vector<Case> cases = {
      {"", "no Volume"},
      {"Hostname vm\nLocaldir src\n", "no Volume"},
      {random_bytes, "line"},
      {"<html><body>Not Found</body></html>\n", "line 1"},
      {"Hostname vm\nVolume x:\n    StartingPath . \n", "line 2 \"Volume x:\""},
      {"Volume 1\n    StartingPath . \n    EndingPath . \n", "line 1"},
      {"Volume\t1:\n    StartingPath . \n    EndingPath . \n", "line 1"},
      {"Volume 1:\n    StartingPath . x\n    EndingPath . \n", "line 2"},
      {"Volume 1:\n    StartingPath . 99999999999999999999\n    EndingPath .\n", "line 2"},
      {"Volume 1:\n    StartingPath \"a\\x2\"\n    EndingPath .\n", "line 2"},
      {"Volume 1:\n    StartingPath\n    EndingPath .\n", "line 2"},
      {"Volume 1:\n    StartingPath \"\"\n    EndingPath .\n", "line 2"},
      {"Volume 1:\n    StartingPath a//b\n    EndingPath .\n", "empty path component"},
      {"Volume 1:\n    StartingPath .\n    EndingPath a/\n", "line 3"},
      {"Volume 1:\n StartingPath .\n EndingPath .\nFilelist 1\n    new /x\n", "line 5"},
      {"Volume 1:\n    StartingPath .\n    EndingPath .\n    Hash SHA1\n", "line 4"},
      {"Volume 1:\n    StartingPath .\nVolume 2:\n    StartingPath .\n    EndingPath .\n",
       "volume 1 has no StartingPath or EndingPath"},
      {"Volume 1:\n    EndingPath .\n", "volume 1 has no"},
      {"    StartingPath .\nVolume 1:\n", "line 1"},
      {"Volume 1:\n    StartingPath .\n    EndingPath .\ngarbage here\n",
       "line 4 \"garbage here\""},
      {"Volume 1:\n    StartingPath .\n    EndingPath .\nFilelist many\n", "line 4"},
      {"Volume 1:\n    StartingPath .\n    EndingPath .\nFilelist 1\n    new\n", "line 5"},
      {"Volume 1:\n StartingPath .\n EndingPath .\nFilelist 0\nFilelist 0\n", "second Filelist"},
      {"Volume 1:\n StartingPath .\n EndingPath .\nVolumes 2:\n", "line 4"},
  };
  for (const Case& c : cases) {
    auto m = parse_manifest(c.text);
    ASSERT_FALSE(m.has_value()) << c.text;
    EXPECT_EQ(m.error().kind, ErrorKind::kCorruption);
    EXPECT_NE(m.error().message.find(c.in_message), std::string::npos)
        << m.error().message << " / wanted " << c.in_message;
  }
}

TEST(ManifestParse, SpecialCharactersRoundTrip) {
  // duplicity's test_special: every awkward byte in an index.
  Manifest m;
  ManifestVolume v;
  v.number = 3234;
  v.start = {
      "\n eu \x23"
      "3",
      "heuo",
      "\xd8\xab\xb1Wb\xae\xc5]\x8a\xbb\x15v*\xf4\x0f!\xf9>\xe2Y\x86\xbb\xab\xdbp\xb0\x84\x13"
      "k\x1d\xc2\xf1\xf5"
      "e\xa5U\x82\x9aUV\xa0\xf4\xdf"
      "4\xba\xfdX\x03\x82\x07s\xce\x9e\x8b"
      "\xb3"
      "4\x04\x9f\x17 \xf4\x8f\xa6\xfa\x97\xab\xd8\xac\xda\x85\xdcKvC\xfa#\x94\x92\x9e"
      "\xc9\xb7\xc3_\x0f\x84g\x9a"
      "B\x11<=^\xdbM\x13\x96"
      "c\x8b\xa7|*\"\\'^$@#!(){}?+ ~` "};
  v.end = {"\n"};
  v.hash_type = "MD5";
  v.hash_hex = "aoseutaohe";
  m.volumes[v.number] = v;
  std::string text = format_manifest(m);
  Manifest back = parse_ok(text);
  ASSERT_EQ(back.volumes.size(), 1u);
  EXPECT_EQ(back.volumes.at(3234).start, v.start);
  EXPECT_EQ(back.volumes.at(3234).end, v.end);
  EXPECT_EQ(format_manifest(back), text);
}

TEST(ManifestVolumes, ForPrefix) {
  // duplicity's test_contains (recursive form).
  Manifest m;
  auto add = [&](int n, Index start, Index end) {
    ManifestVolume v;
    v.number = n;
    v.start = std::move(start);
    v.end = std::move(end);
    m.volumes[n] = v;
  };
  add(1, {"1", "2"}, {"1", "3"});
  EXPECT_EQ(volumes_for_prefix(m, {"1"}), std::vector<int>{1});
  m.volumes.clear();
  add(1, {"A"}, {"Z"});
  EXPECT_EQ(volumes_for_prefix(m, {"M"}), std::vector<int>{1});
  EXPECT_EQ(volumes_for_prefix(m, {"3"}), std::vector<int>{});

  // A chain of volumes, one file spanning 2-4.
  m.volumes.clear();
  add(1, {}, {"a", "f"});
  add(2, {"a", "f"}, {"big"});
  add(3, {"big"}, {"big"});
  add(4, {"big"}, {"d\xff", "x"});
  add(5, {"d\xff", "y"}, {"z"});
  EXPECT_EQ(volumes_for_prefix(m, {}), (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_EQ(volumes_for_prefix(m, {"a"}), (std::vector<int>{1, 2}));
  EXPECT_EQ(volumes_for_prefix(m, {"a", "f"}), (std::vector<int>{1, 2}));
  EXPECT_EQ(volumes_for_prefix(m, {"a", "a"}), (std::vector<int>{1}));
  EXPECT_EQ(volumes_for_prefix(m, {"big"}), (std::vector<int>{2, 3, 4}));
  EXPECT_EQ(volumes_for_prefix(m, {"d\xff"}), (std::vector<int>{4, 5}));  // bytes unsigned
  EXPECT_EQ(volumes_for_prefix(m, {"d\xff", "y"}), (std::vector<int>{5}));
  EXPECT_EQ(volumes_for_prefix(m, {"zz"}), (std::vector<int>{}));
}

// ---- duplicity's own parser reads what format_manifest writes ----

constexpr const char* kPython = "/usr/bin/python3.11";

// Reads manifests separated by a NUL byte; prints one description per manifest.
constexpr const char* kOracle = R"PY(
import sys, gettext
gettext.install('duplicity', names=['ngettext'])
from duplicity import log
log.setup(); log.setverbosity(log.ERROR)
from duplicity import config, manifest
config.file_changed = "x"  # makes from_string read the Filelist
def h(index):
    return ",".join(c.hex() for c in index) if index else "."
out = []
for text in sys.stdin.buffer.read().split(b"\0"):
    m = manifest.Manifest().from_string(text)
    lines = ["host %s" % m.hostname, "dir %s" % (m.local_dirname.hex() if m.local_dirname is not None else None)]
    for n in sorted(m.volume_info_dict):
        v = m.volume_info_dict[n]
        best = v.get_best_hash()
        lines.append("vol %d %s %s %s %s %s" % (n, h(v.start_index), v.start_block, h(v.end_index),
                                             v.end_block, "%s:%s" % best if best else None))
    for f in m.get_files_changed():
        lines.append("file %s %s" % (f[0].decode(), f[1].hex()))
    out.append("\n".join(lines) + "\n")
sys.stdout.write("\0".join(out))
)PY";

std::string hex(std::string_view s) {
  std::string out;
  for (unsigned char c : s) out += fmt::format("{:02x}", c);
  return out;
}

std::string describe_for_oracle(const Manifest& m) {
  auto h = [](const Index& i) {
    if (i.empty()) return std::string(".");
    std::string out;
    for (size_t k = 0; k < i.size(); ++k) out += (k ? "," : "") + hex(i[k]);
    return out;
  };
  auto block = [](const std::optional<int64_t>& b) {
    return b ? std::to_string(*b) : std::string("None");
  };
  std::string out = "host " + (m.hostname && !m.hostname->empty() ? *m.hostname : "None") + "\n";
  out += "dir " + (m.localdir && !m.localdir->empty() ? hex(*m.localdir) : "None") + "\n";
  for (const auto& [n, v] : m.volumes) {
    out += fmt::format("vol {} {} {} {} {} {}\n", n, h(v.start), block(v.start_block), h(v.end),
                       block(v.end_block),
                       v.hash_type.empty() ? "None" : v.hash_type + ":" + v.hash_hex);
  }
  if (m.files) {
    // duplicity keeps Filelist paths quoted.
    for (const FileChange& f : *m.files) {
      out += "file " + f.type + " " +
             hex(f.path.empty() ? "." : quote_path(index_to_string(f.path))) + "\n";
    }
  }
  return out;
}

std::string random_component(std::mt19937& rng) {
  const std::string alphabet = "ab Z.\t\n\r\v\f\\\"'-_~\xff\xc3\xa9\x01";
  std::string s;
  int len = std::uniform_int_distribution<int>(1, 8)(rng);
  for (int i = 0; i < len; ++i) {
    s += alphabet[std::uniform_int_distribution<size_t>(0, alphabet.size() - 1)(rng)];
  }
  if (s == "." || s == "..") s = "x";
  return s;
}

Index random_index(std::mt19937& rng) {
  Index i;
  int n = std::uniform_int_distribution<int>(0, 3)(rng);
  for (int k = 0; k < n; ++k) i.push_back(random_component(rng));
  return i;
}

TEST(ManifestOracle, DuplicityReadsWhatWeWrite) {
  if (access(kPython, X_OK) != 0) GTEST_SKIP() << kPython << " not available";
  std::mt19937 rng(99);
  auto coin = [&] { return std::uniform_int_distribution<int>(0, 1)(rng) == 1; };
  std::vector<Manifest> manifests;
  for (int i = 0; i < 300; ++i) {
    Manifest m;
    if (coin()) m.hostname = coin() ? "vm" : "host.example.org";
    if (coin()) m.localdir = coin() ? "src" : random_component(rng);
    int vols = std::uniform_int_distribution<int>(1, 5)(rng);
    for (int n = 1; n <= vols; ++n) {
      ManifestVolume v;
      v.number = n;
      v.start = random_index(rng);
      v.end = random_index(rng);
      if (coin()) v.start_block = std::uniform_int_distribution<int>(1, 500)(rng);
      if (coin()) v.end_block = std::uniform_int_distribution<int>(1, 500)(rng);
      if (coin()) {
        v.hash_type = coin() ? "SHA1" : "MD5";
        v.hash_hex = fmt::format("{:040x}", rng());
      }
      m.volumes[n] = v;
    }
    if (coin()) {
      m.files.emplace();
      int files = std::uniform_int_distribution<int>(0, 4)(rng);
      for (int k = 0; k < files; ++k) {
        Index path = random_index(rng);
        if (path.empty()) path.push_back("f");
        m.files->push_back({coin() ? "new" : "changed", path});
      }
    }
    manifests.push_back(std::move(m));
  }
  std::string input;
  for (size_t i = 0; i < manifests.size(); ++i) {
    if (i > 0) input += '\0';
    input += format_manifest(manifests[i]);
  }
  std::vector<std::string> argv = {kPython, "-c", kOracle};
  auto r = test::run(argv, {}, std::chrono::seconds(120), input);
  ASSERT_TRUE(r.ok()) << test::describe(argv, r);
  std::vector<std::string> want;
  size_t pos = 0;
  while (true) {
    size_t next = r.out.find('\0', pos);
    want.push_back(r.out.substr(pos, next == std::string::npos ? std::string::npos : next - pos));
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  ASSERT_EQ(want.size(), manifests.size());
  for (size_t i = 0; i < manifests.size(); ++i) {
    std::string text = format_manifest(manifests[i]);
    EXPECT_EQ(describe_for_oracle(manifests[i]), want[i]) << text;
    // And our parser reads it back to the same text.
    EXPECT_EQ(format_manifest(parse_ok(text)), text);
  }
}

// ---- Manifests written by the installed duplicity ----

class ScratchDir {
 public:
  ScratchDir() {
    std::string templ = std::filesystem::temp_directory_path() / "dupfs-manifest-XXXXXX";
    path_ = ::mkdtemp(templ.data());
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void write_file(const std::filesystem::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary);
  out << data;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string sha1_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha1(), nullptr);
  return hex(std::string_view(reinterpret_cast<const char*>(md), len));
}

TEST(ManifestRealDuplicity, ParseAndRewriteByteExact) {
  if (access(test::kDuplicityBinary, X_OK) != 0) GTEST_SKIP() << "duplicity not installed";
  ScratchDir dir;
  namespace fs = std::filesystem;
  // A source path with a space, so that Localdir is quoted.
  fs::path src = fs::path(dir.path()) / "my src";
  fs::create_directories(src / "sub dir");
  fs::create_directories(src / "empty");
  write_file(src / "file with spaces.txt", "hello");
  write_file(src / "quo\"te'back\\slash\ttab.txt", "x");
  write_file(src / "bad\xff\xfename.txt", "y");
  write_file(src /
                 "\xc3\xbcn\xc3\xaf"
                 "c\xc3\xb8"
                 "d\xc3\xa9.txt",
             "z");
  write_file(src / "gone.txt", "to be deleted");
  std::mt19937 rng(5);
  std::string big(2'500'000, '\0');
  for (char& c : big) c = static_cast<char>(rng());
  write_file(src / "sub dir" / "big file.bin", big);
  fs::create_symlink("file with spaces.txt", src / "link");

  fs::path out = fs::path(dir.path()) / "out";
  std::string url = "file://" + out.string();
  std::map<std::string, std::string> env = {{"HOME", dir.path()}};
  auto r = test::duplicity({"full", "--no-encryption", "--volsize", "1", "--current-time",
                            "1795675123", src.string(), url},
                           env, std::chrono::seconds(300));
  ASSERT_TRUE(r.ok()) << r.err;
  fs::remove(src / "gone.txt");
  write_file(src / "file with spaces.txt", "changed content");
  // duplicity compares mtimes in whole seconds (not sizes): make the change visible.
  fs::last_write_time(src / "file with spaces.txt",
                      fs::last_write_time(src / "file with spaces.txt") - std::chrono::hours(1));
  write_file(src / "new 'one'.txt", "new");
  r = test::duplicity({"incremental", "--no-encryption", "--volsize", "1", "--current-time",
                       "1795741323", src.string(), url},
                      env, std::chrono::seconds(300));
  ASSERT_TRUE(r.ok()) << r.err;

  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  const std::string full_man = full_manifest_name(1795675123, "");
  const std::string inc_man = inc_manifest_name(1795675123, 1795741323, "");

  // The full: several volumes, each hash the SHA1 of the stored file.
  std::string text = read_file(out / full_man);
  Manifest m = parse_ok(text);
  EXPECT_EQ(format_manifest(m), text) << text;
  EXPECT_EQ(m.hostname, std::string(host));
  EXPECT_EQ(m.localdir, src.string());
  EXPECT_GE(m.volumes.size(), 3u);
  for (const auto& [n, v] : m.volumes) {
    std::string vol = read_file(out / full_volume_name(1795675123, n, ".gz"));
    ASSERT_FALSE(vol.empty()) << n;
    EXPECT_EQ(v.hash_type, "SHA1");
    EXPECT_EQ(v.hash_hex, sha1_hex(vol)) << "volume " << n;
  }
  size_t volume_files = 0;
  for (const auto& e : fs::directory_iterator(out)) {
    auto pr = parse_name(e.path().filename().string());
    volume_files += pr && pr->type == FileType::kFull && pr->volume > 0;
  }
  EXPECT_EQ(volume_files, m.volumes.size());
  EXPECT_EQ(m.volumes.begin()->second.start, Index{});
  // The big file spans every volume but the first starts before it.
  auto big_vols = volumes_for_prefix(m, {"sub dir", "big file.bin"});
  EXPECT_EQ(big_vols.size(), m.volumes.size());
  EXPECT_EQ(volumes_for_prefix(m, {"bad\xff\xfename.txt"}), std::vector<int>{1});
  ASSERT_TRUE(m.files);
  std::vector<Index> listed;
  for (const FileChange& f : *m.files) {
    EXPECT_EQ(f.type, "new");
    listed.push_back(f.path);
  }
  std::vector<Index> want = {{"bad\xff\xfename.txt"},
                             {"file with spaces.txt"},
                             {"gone.txt"},
                             {"quo\"te'back\\slash\ttab.txt"},
                             {"sub dir", "big file.bin"},
                             {"\xc3\xbcn\xc3\xaf"
                              "c\xc3\xb8"
                              "d\xc3\xa9.txt"}};
  EXPECT_EQ(listed, want);  // regular files only, in index order

  // The incremental: changed, deleted and new entries.
  std::string inc_text = read_file(out / inc_man);
  Manifest inc = parse_ok(inc_text);
  EXPECT_EQ(format_manifest(inc), inc_text) << inc_text;
  ASSERT_TRUE(inc.files);
  std::vector<std::pair<std::string, Index>> changes;
  for (const FileChange& f : *inc.files) changes.emplace_back(f.type, f.path);
  std::vector<std::pair<std::string, Index>> want_changes = {
      {"changed", {"file with spaces.txt"}}, {"deleted", {"gone.txt"}}, {"new", {"new 'one'.txt"}}};
  EXPECT_EQ(changes, want_changes);
  for (const auto& [n, v] : inc.volumes) {
    EXPECT_EQ(v.hash_hex,
              sha1_hex(read_file(out / inc_volume_name(1795675123, 1795741323, n, ".gz"))));
  }
}

}  // namespace
}  // namespace dupfs::chain

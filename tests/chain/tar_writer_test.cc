// The tar writer against Python's own tarfile (the interpreter duplicity runs on): headers are
// byte-identical for every kind of member and every PAX case, and archives made of them read
// back with chain/format/tar.h, Python's tarfile and GNU tar.
#include "chain/format/tar_writer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/source_tree.h"
#include "tests/support/temp_dir.h"

namespace dupfs::chain {
namespace {

constexpr const char* kPython = "/usr/bin/python3.11";

std::string hex(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string unhex(std::string_view s) {
  std::string out;
  for (size_t i = 0; i + 1 < s.size(); i += 2) {
    out += static_cast<char>(std::stoi(std::string(s.substr(i, 2)), nullptr, 16));
  }
  return out;
}

char flag(TarType t) {
  switch (t) {
    case TarType::kFile:
      return '0';
    case TarType::kSymlink:
      return '2';
    case TarType::kCharDevice:
      return '3';
    case TarType::kBlockDevice:
      return '4';
    case TarType::kDirectory:
      return '5';
    case TarType::kFifo:
      return '6';
    default:
      return '0';
  }
}

// Python's tobuf() for each member, as duplicity calls it (PAX format, errors="replace",
// encoding = the filesystem encoding, names decoded with surrogateescape).
std::vector<std::string> python_headers(const std::vector<TarMember>& members) {
  std::string input;
  for (const auto& m : members) {
    input += fmt::format("{} {} {} {} {} {} {} {} {} {} {} {} {}\n", hex(m.name), flag(m.type),
                         m.mode, m.uid, m.gid, hex(m.uname) + "x", hex(m.gname) + "x", m.mtime,
                         m.size, hex(m.linkname) + "x", m.devmajor, m.devminor, 0);
  }
  static constexpr const char* kScript = R"(
import os, sys, tarfile
def d(h): return os.fsdecode(bytes.fromhex(h[:-1] if h.endswith('x') else h))
for line in sys.stdin.read().splitlines():
    f = line.split(' ')
    ti = tarfile.TarInfo()
    ti.name = d(f[0]); ti.type = f[1].encode(); ti.mode = int(f[2]); ti.uid = int(f[3])
    ti.gid = int(f[4]); ti.uname = d(f[5]); ti.gname = d(f[6]); ti.mtime = int(f[7])
    ti.size = int(f[8]); ti.linkname = d(f[9]); ti.devmajor = int(f[10]); ti.devminor = int(f[11])
    print(ti.tobuf(errors='replace', encoding='utf-8').hex())
)";
  auto r = test::run({kPython, "-c", kScript}, {}, std::chrono::seconds(60), input);
  EXPECT_TRUE(r.ok()) << r.err;
  std::vector<std::string> out;
  size_t start = 0;
  while (start < r.out.size()) {
    size_t nl = r.out.find('\n', start);
    out.push_back(unhex(r.out.substr(start, nl - start)));
    start = nl + 1;
  }
  return out;
}

TarMember file(std::string name) {
  TarMember m;
  m.name = std::move(name);
  m.mode = 0644;
  m.uid = 1000;
  m.gid = 100;
  m.uname = "alice";
  m.gname = "users";
  m.mtime = 1700000000;
  m.size = 5;
  return m;
}

std::vector<TarMember> every_case() {
  std::vector<TarMember> v;
  v.push_back(file("snapshot/plain.txt"));
  auto dir = file("snapshot/dir/");
  dir.type = TarType::kDirectory;
  dir.mode = 01777;
  dir.size = 0;
  v.push_back(dir);
  auto root = dir;
  root.name = "snapshot/./";
  root.mode = 0755;
  v.push_back(root);
  auto link = file("snapshot/link");
  link.type = TarType::kSymlink;
  link.mode = 0777;
  link.size = 0;
  link.linkname = "target/of/link";
  v.push_back(link);
  auto long_link = link;
  long_link.linkname = std::string(150, 't');
  v.push_back(long_link);
  auto fifo = file("snapshot/fifo");
  fifo.type = TarType::kFifo;
  fifo.size = 0;
  v.push_back(fifo);
  auto chr = file("snapshot/null");
  chr.type = TarType::kCharDevice;
  chr.devmajor = 1;
  chr.devminor = 3;
  chr.size = 0;
  v.push_back(chr);
  auto blk = chr;
  blk.type = TarType::kBlockDevice;
  blk.devmajor = 7;
  blk.devminor = 0;
  v.push_back(blk);
  v.push_back(file("snapshot/" + std::string(100 - 9, 'x')));  // exactly 100 bytes
  v.push_back(file("snapshot/" + std::string(100 - 8, 'x')));  // 101 bytes
  v.push_back(file("multivol_snapshot/" + std::string(300, 'L') + "/12"));
  v.push_back(file("snapshot/\xc3\xbcn\xc3\xaf\x63\xc3\xb8\x64\xc3\xa9.txt"));  // UTF-8
  v.push_back(file("snapshot/bad\xff\xfename.txt"));                            // not UTF-8
  v.push_back(file("snapshot/ed\xed\xa0\x80surrogate"));                        // not UTF-8
  v.push_back(file("snapshot/overlong\xc0\xaf"));
  auto bad_link = link;
  bad_link.linkname = "t\xe9rget";
  v.push_back(bad_link);
  auto big_ids = file("snapshot/foreign");
  big_ids.uid = 3000000;
  big_ids.gid = 3000001;
  big_ids.uname = "";
  big_ids.gname = "";
  v.push_back(big_ids);
  auto long_owner = file("snapshot/owner");
  long_owner.uname = std::string(40, 'u');
  long_owner.gname = "gr\xc3\xbcppe";
  v.push_back(long_owner);
  auto deleted = file("deleted/gone/dir");
  deleted.mode = 0;
  deleted.uid = deleted.gid = 0;
  deleted.uname = deleted.gname = "";
  deleted.mtime = 0;
  deleted.size = 0;
  v.push_back(deleted);
  auto big_chunk = file("signature/huge");
  big_chunk.size = 65536;
  big_chunk.mode = 04755;
  v.push_back(big_chunk);
  auto spaces = file("diff/with spaces\ttab\nnewline");
  v.push_back(spaces);
  return v;
}

TEST(TarWriterTest, HeadersAreByteIdenticalToPythonTarfile) {
  auto members = every_case();
  auto expected = python_headers(members);
  ASSERT_EQ(expected.size(), members.size());
  for (size_t i = 0; i < members.size(); ++i) {
    EXPECT_EQ(hex(tar_header(members[i])), hex(expected[i]))
        << "member " << i << ": " << members[i].name;
  }
}

class Collect : public TarVisitor {
 public:
  Status on_entry(const TarHeader& h) override {
    headers.push_back(h);
    data.emplace_back();
    return {};
  }
  Status on_data(const TarHeader&, std::string_view piece) override {
    data.back().append(piece);
    return {};
  }
  Status on_entry_end(const TarHeader&) override { return {}; }
  std::vector<TarHeader> headers;
  std::vector<std::string> data;
};

std::string archive_of(const std::vector<TarMember>& members, bool footer) {
  std::string tar;
  for (size_t i = 0; i < members.size(); ++i) {
    tar += tar_header(members[i]);
    std::string data(members[i].size, static_cast<char>('a' + i % 26));
    tar += data;
    tar.append(tar_padding(data.size()), '\0');
  }
  if (footer) tar += tar_archive_end(tar.size());
  return tar;
}

TEST(TarWriterTest, ReadsBackWithTheTarParser) {
  auto members = every_case();
  std::string tar = archive_of(members, true);
  EXPECT_EQ(tar.size() % kTarRecordSize, 0u);
  Collect c;
  TarParser parser(c);
  ASSERT_TRUE(parser.feed(tar).has_value());
  ASSERT_TRUE(parser.finish().has_value());
  EXPECT_TRUE(parser.at_end_marker());
  ASSERT_EQ(c.headers.size(), members.size());
  for (size_t i = 0; i < members.size(); ++i) {
    const auto& h = c.headers[i];
    const auto& m = members[i];
    EXPECT_EQ(h.name, m.name);
    EXPECT_EQ(h.type, m.type);
    EXPECT_EQ(h.mode, m.mode);
    EXPECT_EQ(h.uid, m.uid);
    EXPECT_EQ(h.gid, m.gid);
    EXPECT_EQ(h.uname, m.uname);
    EXPECT_EQ(h.gname, m.gname);
    EXPECT_EQ(h.mtime, m.mtime);
    EXPECT_EQ(h.size, m.size);
    EXPECT_EQ(h.linkname, m.linkname);
    EXPECT_EQ(c.data[i], std::string(m.size, static_cast<char>('a' + i % 26)));
    if (m.type == TarType::kCharDevice || m.type == TarType::kBlockDevice) {
      EXPECT_EQ(h.devmajor, m.devmajor);
      EXPECT_EQ(h.devminor, m.devminor);
    }
  }
}

TEST(TarWriterTest, PythonTarfileAndGnuTarListEveryMember) {
  auto members = every_case();
  test::TempDir dir("dupfs-tarw-");
  std::string path = dir.file("a.tar");
  // A volume as duplicity writes an encrypted one: entries, then the volume footer.
  std::string tar = archive_of(members, false);
  tar += tar_volume_footer(tar.size());
  EXPECT_EQ(tar.size() % kTarRecordSize, 0u);
  test::write_file(path, tar);

  auto py = test::run({kPython, "-c",
                       "import sys,tarfile,os\n"
                       "for ti in tarfile.open(sys.argv[1]):\n"
                       "    sys.stdout.buffer.write(os.fsencode(ti.name) + b'|' + "
                       "str(ti.size).encode() + b'\\n')\n",
                       path});
  ASSERT_TRUE(py.ok()) << py.err;
  std::string expected;
  for (const auto& m : members) {
    // Python strips the trailing '/' of directory names when reading.
    std::string name = m.name;
    if (m.type == TarType::kDirectory) name.pop_back();
    expected += name + "|" + std::to_string(m.size) + "\n";
  }
  EXPECT_EQ(py.out, expected);

  auto gnu = test::run({"tar", "-tvf", path});
  EXPECT_TRUE(gnu.ok()) << gnu.err;
  EXPECT_THAT(gnu.out, ::testing::HasSubstr("snapshot/dir/"));
  EXPECT_THAT(gnu.out, ::testing::HasSubstr(std::string(300, 'L')));
  EXPECT_THAT(gnu.out, ::testing::HasSubstr("3000000/3000001"));
  EXPECT_THAT(gnu.out, ::testing::HasSubstr("link -> target/of/link"));
}

TEST(TarWriterTest, FootersPadToTheRecord) {
  EXPECT_EQ(tar_volume_footer(0).size(), kTarRecordSize);  // a whole record when aligned
  EXPECT_EQ(tar_volume_footer(512).size(), kTarRecordSize - 512);
  EXPECT_EQ(tar_volume_footer(kTarRecordSize - 512).size(), 512u);
  EXPECT_EQ(tar_archive_end(0).size(), kTarRecordSize);
  EXPECT_EQ(tar_archive_end(kTarRecordSize - 1024).size(), 1024u);
  EXPECT_EQ(tar_archive_end(kTarRecordSize - 512).size(), kTarRecordSize + 512);
  EXPECT_EQ(tar_padding(0), 0u);
  EXPECT_EQ(tar_padding(1), 511u);
  EXPECT_EQ(tar_padding(512), 0u);
}

TEST(TarWriterTest, MemberNamesAsDuplicityFormsThem) {
  EXPECT_EQ(difftar_member_name(EntryKind::kSnapshot, {}, true), "snapshot/./");
  EXPECT_EQ(difftar_member_name(EntryKind::kSnapshot, {"a", "b"}, true), "snapshot/a/b/");
  EXPECT_EQ(difftar_member_name(EntryKind::kSnapshot, {"a", "f"}, false), "snapshot/a/f");
  EXPECT_EQ(difftar_member_name(EntryKind::kDiff, {"f"}, false), "diff/f");
  EXPECT_EQ(difftar_member_name(EntryKind::kDeleted, {"d"}, true), "deleted/d");
  EXPECT_EQ(difftar_member_name(EntryKind::kMultivolSnapshot, {"a", "big"}, false, 3),
            "multivol_snapshot/a/big/3");
  EXPECT_EQ(difftar_member_name(EntryKind::kMultivolDiff, {"big"}, false, 1),
            "multivol_diff/big/1");
  EXPECT_EQ(sigtar_member_name(EntryKind::kSnapshot, {}, true), "snapshot/");
  EXPECT_EQ(sigtar_member_name(EntryKind::kSnapshot, {"d"}, true), "snapshot/d/");
  EXPECT_EQ(sigtar_member_name(EntryKind::kSignature, {"d", "f"}, false), "signature/d/f");
  EXPECT_EQ(sigtar_member_name(EntryKind::kDeleted, {"d"}, true), "deleted/d");
  // And the reader maps them back.
  auto root = parse_entry_name("snapshot/./");
  ASSERT_TRUE(root);
  EXPECT_TRUE(root->index.empty());
}

TEST(TarWriterTest, Utf8ValidityAsPythonSeesIt) {
  EXPECT_TRUE(is_valid_utf8("plain"));
  EXPECT_TRUE(is_valid_utf8("\xc3\xbc"));
  EXPECT_TRUE(is_valid_utf8("\xf0\x9f\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xe2\x82"));          // truncated
}

}  // namespace
}  // namespace dupfs::chain

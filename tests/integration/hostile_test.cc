// Hostile volumes (issue 7): a duplicity archive (plain tar volumes) is edited so that a volume
// stays well-formed enough to pass the manifest's hash (the hash is rewritten to match) but carries
// an entry named with "..", an empty component or an absolute path, an entry whose size runs
// past the data, or a header cut in half. With the signature file (tree from signatures) and
// without it (tree from the volume itself): the mount stays up, no such name appears, every file
// reads exactly as it was backed up or fails with EIO (a volume found hostile is damaged as a
// whole, like one whose hash does not match), and files in the other volumes still read when
// the tree comes from signatures (without them, the snapshot built from a hostile volume fails
// to list with EIO while the mount keeps answering).
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tests/integration/mounted.h"
#include "tests/support/duplicity.h"
#include "tests/support/gpg_home.h"
#include "tests/support/source_tree.h"
#include "tests/support/temp_dir.h"

namespace dupfs::test {
namespace {

constexpr char kTarget[] = "snapshot/a5.txt";  // the entry made hostile (15 bytes)

std::string sha1_hex(const std::string& data) {
  unsigned char md[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : md) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

// Offset of the 512-byte header whose name field is `name`, or npos.
size_t find_header(const std::string& tar, const std::string& name) {
  for (size_t off = 0; off + 512 <= tar.size(); off += 512) {
    if (tar.compare(off, name.size(), name) == 0 && tar[off + name.size()] == '\0') return off;
  }
  return std::string::npos;
}

// Recomputes the ustar checksum of the header at `off`.
void fix_checksum(std::string& tar, size_t off) {
  std::memset(&tar[off + 148], ' ', 8);
  unsigned sum = 0;
  for (size_t i = 0; i < 512; ++i) sum += static_cast<unsigned char>(tar[off + i]);
  char field[8];
  std::snprintf(field, sizeof field, "%06o", sum);
  std::memcpy(&tar[off + 148], field, 7);  // six digits and a NUL, then the space stays
}

std::string errno_name(int e) { return std::strerror(e); }

TEST(Hostile, VolumesWithUnsafeNamesAndBadSizesNeverServeWrongBytes) {
  TempDir dir("dupfs-hostile-");
  GpgHome gpg;
  const std::string src = dir.file("src");
  std::filesystem::create_directories(src);
  std::filesystem::create_directories(dir.file("home"));
  for (int i = 1; i <= 9; ++i) {
    write_file(src + "/a" + std::to_string(i) + ".txt",
               "file a" + std::to_string(i) + "\n" + make_payload(3000 * i, i));
  }
  // With --volsize 1 the target (in volume 1) and these end up in different volumes.
  write_file(src + "/b.bin", pseudo_random_bytes(1500000, 3));
  write_file(src + "/c.bin", pseudo_random_bytes(1500000, 4));
  write_file(src + "/d.txt", "after the big files\n");
  std::map<std::string, std::string> env{{"GNUPGHOME", gpg.path()},
                                         {"HOME", dir.file("home")},
                                         {"XDG_CACHE_HOME", dir.file("home/.cache")}};
  const std::string out = dir.file("out");
  auto r = duplicity({"full", "--no-encryption", "--no-compression", "--volsize", "1",
                      "--archive-dir", dir.file("dupcache"), src, "file://" + out},
                     env);
  ASSERT_TRUE(r.ok()) << describe({"duplicity", "full"}, r);
  std::string volume, manifest, signatures;
  for (const auto& e : std::filesystem::directory_iterator(out)) {
    std::string n = e.path().filename().string();
    if (n.ends_with(".vol1.difftar")) volume = n;
    if (n.ends_with(".manifest")) manifest = n;
    if (n.ends_with(".sigtar")) signatures = n;
  }
  ASSERT_FALSE(volume.empty());
  ASSERT_FALSE(manifest.empty());
  const std::string tar = read_file(out + "/" + volume);
  const size_t target = find_header(tar, kTarget);
  ASSERT_NE(target, std::string::npos) << "no " << kTarget << " in " << volume;

  struct Case {
    std::string label;
    std::function<void(std::string&)> edit;
    std::vector<std::string> never_shown;  // names that must not appear anywhere in the tree
  };
  auto rename_to = [&](const std::string& name) {
    return [=](std::string& t) {
      std::memcpy(&t[target], name.data(), name.size());
      fix_checksum(t, target);
    };
  };
  const std::vector<Case> cases{
      {"a '..' component", rename_to("snapshot/../a5x"), {"a5x"}},
      {"an empty component", rename_to("snapshot//a5.tx"), {"a5.tx"}},
      {"an absolute name", rename_to("/napshot/a5.txt"), {"napshot"}},
      {"a size far past the data",
       [&](std::string& t) {
         std::memcpy(&t[target + 124], "77777777777", 11);
         fix_checksum(t, target);
       },
       {}},
      {"a header cut in half", [&](std::string& t) { t.resize(target + 300); }, {}},
  };

  int n = 0;
  for (const auto& c : cases) {
    for (bool with_signatures : {true, false}) {
      SCOPED_TRACE(c.label + (with_signatures ? ", tree from signatures" : ", tree from volume"));
      std::string name = "case" + std::to_string(++n);
      std::string copy = dir.file(name);
      std::filesystem::copy(out, copy, std::filesystem::copy_options::recursive);
      std::string edited = tar;
      c.edit(edited);
      write_file(copy + "/" + volume, edited);
      // The manifest's hash made to match: the volume passes the check and reaches the parser.
      std::string m = read_file(copy + "/" + manifest);
      size_t at = m.find(sha1_hex(tar));
      ASSERT_NE(at, std::string::npos) << "volume hash not in the manifest";
      m.replace(at, 40, sha1_hex(edited));
      write_file(copy + "/" + manifest, m);
      if (!with_signatures) std::filesystem::remove(copy + "/" + signatures);

      std::string mnt = dir.file("mnt-" + name);
      std::filesystem::create_directory(mnt);
      Mounted mounted("file://" + copy, mnt, mnt + ".log",
                      {"--archive-dir", dir.file("cache-" + name)}, env);
      if (!mounted.ok()) {
        ADD_FAILURE() << "the mount did not come up: " << mounted.log();
        continue;
      }
      std::string snap = mnt + "/snapshots/latest";
      // Names only (readdir): attributes of files in the damaged volume fail with EIO.
      std::vector<std::string> shown;
      if (DIR* d = ::opendir(snap.c_str())) {
        while (dirent* e = ::readdir(d)) shown.push_back(e->d_name);
        ::closedir(d);
      } else {
        // Without signatures the tree is the volumes' entries: a hostile volume leaves none.
        EXPECT_FALSE(with_signatures) << "cannot list " << snap << ": " << errno_name(errno);
        EXPECT_EQ(errno, EIO) << errno_name(errno);
      }
      for (const auto& bad : c.never_shown) {
        for (const auto& s : shown) EXPECT_NE(s, bad) << "hostile name shown";
      }
      if (!shown.empty()) {
        EXPECT_EQ(std::count(shown.begin(), shown.end(), std::string("..")), 1);
      }
      int good = 0, eio = 0;
      for (const auto& e : std::filesystem::directory_iterator(src)) {
        std::string file = e.path().filename().string();
        std::string want = read_file(e.path().string());
        int fd = ::open((snap + "/" + file).c_str(), O_RDONLY);
        if (fd < 0) {
          // Gone from a tree built from the damaged volume: not shown is allowed, wrong is not.
          EXPECT_TRUE(errno == ENOENT || errno == EIO) << file << ": " << errno_name(errno);
          continue;
        }
        std::string got;
        char buf[65536];
        ssize_t k;
        while ((k = ::read(fd, buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(k));
        int err = k < 0 ? errno : 0;
        ::close(fd);
        if (k == 0) {
          EXPECT_TRUE(got == want) << "WRONG BYTES from " << file;
          ++good;
        } else {
          EXPECT_EQ(err, EIO) << file << ": " << errno_name(err);
          ++eio;
        }
      }
      std::cout << "[ hostile  ] " << c.label << (with_signatures ? " (signatures)" : " (volume)")
                << ": " << good << " files read, " << eio << " EIO\n";
      if (with_signatures) {
        EXPECT_GT(good, 0) << "files outside the hostile volume must still read";
      }
      struct stat st;
      EXPECT_EQ(::stat((mnt + "/snapshots").c_str(), &st), 0) << "the mount stopped answering";
      EXPECT_EQ(mounted.unmount(), 0) << mounted.log();
    }
  }
}

}  // namespace
}  // namespace dupfs::test

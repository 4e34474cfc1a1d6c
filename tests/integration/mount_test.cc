// The mount against the real duplicity: archives are made by duplicity at test time, restored
// by duplicity, mounted by build/dupfs, and compared entry by entry.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "chain/format/names.h"
#include "chain/metadata/volume_index.h"
#include "chain/read/archive.h"
#include "tests/integration/mounted.h"
#include "tests/support/duplicity.h"
#include "tests/support/gpg_home.h"
#include "tests/support/source_tree.h"
#include "tests/support/tree.h"

namespace dupfs::test {
namespace {

constexpr char kPassphrase[] = "correct horse battery staple";

// From the mount's last "answered N lookups, ... ; pushed N files" line: the number before
// `what` (e.g. " lookups"), or -1.
long requests_logged(const std::string& log, const std::string& what) {
  auto line_start = log.rfind("answered ");
  if (line_start == std::string::npos) return -1;
  std::string line = log.substr(line_start, log.find('\n', line_start) - line_start);
  auto at = line.find(what);
  if (at == std::string::npos) return -1;
  auto start = line.find_last_not_of("0123456789", at - 1) + 1;
  std::cout << "[ requests ] " << line << "\n";
  return std::stol(line.substr(start, at - start));
}

class MountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = dir_.file("src");
    std::filesystem::create_directory(src_);
    std::filesystem::create_directory(dir_.file("home"));
    std::filesystem::create_directory(dir_.file("mnt"));
    env_ = {{"GNUPGHOME", gpg_.path()},
            {"HOME", dir_.file("home")},
            {"PASSPHRASE", kPassphrase},
            {"XDG_CACHE_HOME", dir_.file("home/.cache")}};
  }

  // duplicity full [options] src file://dir/<name>; returns the URL.
  std::string backup(const std::string& name, const std::vector<std::string>& options,
                     const std::string& kind = "full") {
    std::string url = "file://" + dir_.file(name);
    std::vector<std::string> args{kind, "--archive-dir", dir_.file("dupcache"), "--volsize", "1"};
    args.insert(args.end(), options.begin(), options.end());
    args.push_back(src_);
    args.push_back(url);
    auto r = duplicity(args, env_);
    EXPECT_TRUE(r.ok()) << describe({"duplicity", kind}, r);
    return url;
  }

  // Set times (epoch) of the full sets at a location, oldest first.
  std::vector<int64_t> full_times(const std::string& name) {
    std::vector<int64_t> times;
    for (const auto& e : std::filesystem::directory_iterator(dir_.file(name))) {
      auto p = chain::parse_name(e.path().filename().string());
      if (p && p->manifest && p->type == chain::FileType::kFull) times.push_back(p->time);
    }
    std::sort(times.begin(), times.end());
    return times;
  }

  Tree restored(const std::string& url, int64_t time, const std::string& target_name) {
    std::string target = dir_.file(target_name);
    auto r = duplicity_restore(url, target, std::to_string(time),
                               {"--archive-dir", dir_.file("dupcache")}, env_);
    EXPECT_TRUE(r.ok()) << describe({"duplicity", "restore"}, r);
    return scan_tree(target);
  }

  std::unique_ptr<Mounted> mount(const std::string& url,
                                 std::vector<std::string> args = {"--cache-size", "64M"}) {
    args.push_back("--archive-dir");
    args.push_back(dir_.file("dupfscache"));
    auto m = std::make_unique<Mounted>(url, dir_.file("mnt"), dir_.file("mount.log"), args, env_);
    EXPECT_TRUE(m->ok()) << "mount failed: " << m->log();
    return m;
  }

  // Every full set equals duplicity's restore of it; latest points at the newest.
  void expect_mount_equals_restore(const std::string& name) {
    std::string url = "file://" + dir_.file(name);
    auto times = full_times(name);
    ASSERT_FALSE(times.empty());
    std::vector<Tree> expected;
    for (size_t i = 0; i < times.size(); ++i) {
      expected.push_back(restored(url, times[i], "restored" + std::to_string(i)));
    }
    // The first mount decodes every volume from its start and records their seek indexes
    // (docs/seek.md); the second reads through them.
    for (int round = 0; round < 2; ++round) {
      auto m = mount(url);
      ASSERT_TRUE(m->ok());
      for (size_t i = 0; i < times.size(); ++i) {
        std::string snap = dir_.file("mnt/snapshots/" + chain::snapshot_dir_name(times[i]));
        EXPECT_TRUE(trees_match(expected[i], scan_tree(snap))) << "round " << round;
      }
      std::string latest =
          std::filesystem::read_symlink(dir_.file("mnt/snapshots/latest")).string();
      EXPECT_EQ(latest, chain::snapshot_dir_name(times.back()));
      EXPECT_TRUE(trees_match(expected.back(), scan_tree(dir_.file("mnt/snapshots/latest/"))));
      if (round == 1) {
        expect_random_reads_equal(dir_.file("restored" + std::to_string(times.size() - 1)),
                                  dir_.file("mnt/snapshots/latest"));
      }
      EXPECT_EQ(m->unmount(), 0) << m->log();
      if (round == 0) {
        int indexes = 0;
        for (const auto& e : std::filesystem::directory_iterator(dir_.file("dupfscache"))) {
          if (chain::volume_of_index_name(e.path().filename().string())) ++indexes;
        }
        EXPECT_GT(indexes, 0) << "no seek index recorded";
      }
    }
  }

  // Reads at random offsets and lengths of every regular file under `mounted` equal the same
  // bytes of the file under `restored`, on a fresh mount (each read may start a pass at a
  // seek point).
  static void expect_random_reads_equal(const std::string& restored, const std::string& mounted) {
    std::mt19937 rng(11);
    for (const auto& e : std::filesystem::recursive_directory_iterator(restored)) {
      if (!e.is_regular_file() || e.is_symlink() || e.file_size() == 0) continue;
      std::string rel = std::filesystem::relative(e.path(), restored).string();
      std::ifstream want_f(e.path(), std::ios::binary);
      std::string want((std::istreambuf_iterator<char>(want_f)), {});
      int fd = ::open((mounted + "/" + rel).c_str(), O_RDONLY | O_CLOEXEC);
      ASSERT_GE(fd, 0) << rel;
      for (int k = 0; k < 4; ++k) {
        size_t off = rng() % want.size();
        size_t len = 1 + rng() % std::min<size_t>(want.size() - off, 300000);
        std::string got(len, '\0');
        ssize_t n = ::pread(fd, got.data(), len, static_cast<off_t>(off));
        ASSERT_EQ(n, static_cast<ssize_t>(len)) << rel << " at " << off;
        ASSERT_TRUE(got == std::string_view(want).substr(off, len)) << rel << " at " << off;
      }
      ::close(fd);
    }
  }

  TempDir dir_{"dupfs-mount-"};
  GpgHome gpg_;
  std::string src_;
  std::map<std::string, std::string> env_;
};

TEST_F(MountTest, SymmetricEqualsRestore) {
  make_every_kind_tree(src_);
  backup("out", {});
  expect_mount_equals_restore("out");
}

TEST_F(MountTest, GzipEqualsRestore) {
  make_every_kind_tree(src_);
  backup("out", {"--no-encryption"});
  expect_mount_equals_restore("out");
}

TEST_F(MountTest, PlainEqualsRestore) {
  make_every_kind_tree(src_);
  backup("out", {"--no-encryption", "--no-compression"});
  expect_mount_equals_restore("out");
}

TEST_F(MountTest, PublicKeyEqualsRestore) {
  std::string fpr = gpg_.generate_key("dupfs test <test@example.invalid>");
  env_["PASSPHRASE"] = "";
  make_every_kind_tree(src_);
  backup("out", {"--encrypt-key", fpr});
  expect_mount_equals_restore("out");
}

// Volumes of 50 MB holding many seek points: files late in a volume, read at random offsets
// through the index of the second mount, equal duplicity's restore.
TEST_F(MountTest, SeekIndexReadsEqualRestore) {
  std::mt19937 rng(5);
  std::filesystem::create_directories(src_ + "/d");
  for (int i = 0; i < 300; ++i) {
    std::string text;
    while (text.size() < 60000) {
      if (rng() % 5 == 0) {
        for (int k = 0; k < 64; ++k) text += static_cast<char>(rng());
      } else {
        text += "file " + std::to_string(i) + " line " + std::to_string(rng() % 1000) + "\n";
      }
    }
    std::ofstream(src_ + "/d/f" + std::to_string(i), std::ios::binary) << text;
  }
  backup("out", {"--volsize", "50"});
  expect_mount_equals_restore("out");
}

// Listing a directory hands the kernel each entry's attributes (readdirplus) once they are at
// hand, so that stat-ing the entries (ls -l, cp -a) costs no lookup round trip per entry.
TEST_F(MountTest, ListingSparesALookupPerEntry) {
  constexpr int kEach = 40;
  std::filesystem::create_directory(src_ + "/d");
  for (int i = 0; i < kEach; ++i) {
    std::string n = std::to_string(100 + i);
    std::filesystem::create_directory(src_ + "/d/dir" + n);
    std::filesystem::create_symlink("target" + n, src_ + "/d/link" + n);
    write_file(src_ + "/d/file" + n, "content " + n + "\n");
  }
  write_file(src_ + "/zzz", "sorts last\n");
  std::string url = backup("out", {"--no-encryption"});
  auto m = mount(url, {"-v", "3"});
  ASSERT_TRUE(m->ok());
  std::string latest = dir_.file("mnt/snapshots/latest");
  // Reading the last file in duplicity's order catalogues the (only) volume up to its end.
  EXPECT_EQ(read_file(latest + "/zzz"), "sorts last\n");
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(latest + "/d")) {
    struct stat st;
    ASSERT_EQ(::lstat(e.path().c_str(), &st), 0) << e.path();
    std::string name = e.path().filename().string();
    if (name.starts_with("file")) {
      EXPECT_TRUE(S_ISREG(st.st_mode)) << name;
      EXPECT_EQ(st.st_size, static_cast<off_t>(name.size() + 5)) << name;  // "content NNN\n"
    }
    ++entries;
  }
  EXPECT_EQ(entries, 3 * kEach);
  ASSERT_EQ(m->unmount(), 0) << m->log();
  // snapshots, latest, the snapshot, zzz, d: a few lookups, not one per entry of d.
  long lookups = requests_logged(m->log(), " lookups");
  EXPECT_GE(lookups, 0) << m->log();
  EXPECT_LT(lookups, 20) << m->log();
}

// Files read one after another in directory order (cp -a, tar, file managers): after the first
// read, the following small files whose bytes are decoded go into the kernel's page cache
// without a request each. The bytes must be the files' own, small and empty ones alike.
TEST_F(MountTest, ReadingADirectoryInOrderSparesARequestPerFile) {
  constexpr int kFiles = 100;
  std::filesystem::create_directory(src_ + "/d");
  std::vector<std::string> contents;
  for (int i = 0; i < kFiles; ++i) {
    // Sizes from 0 to ~24 KiB, on and across page boundaries.
    std::string c;
    for (int j = 0; j < i * i * 2 + (i % 3 == 0 ? 4096 : 0); ++j) {
      c += static_cast<char>('a' + (i * 7 + j * 13) % 26);
    }
    contents.push_back(c);
    write_file(src_ + "/d/file" + std::to_string(100 + i), c);
  }
  write_file(src_ + "/zzz", "sorts last\n");
  std::string url = backup("out", {"--no-encryption"});
  auto m = mount(url, {"-v", "3"});
  ASSERT_TRUE(m->ok());
  std::string latest = dir_.file("mnt/snapshots/latest");
  EXPECT_EQ(read_file(latest + "/zzz"), "sorts last\n");  // the volume, decoded to its end
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(latest + "/d")) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  ASSERT_EQ(names.size(), static_cast<size_t>(kFiles));
  for (int i = 0; i < kFiles; ++i) {
    ASSERT_EQ(names[i], "file" + std::to_string(100 + i));
    std::string got = read_file(latest + "/d/" + names[i]);
    EXPECT_EQ(got.size(), contents[i].size()) << names[i];
    EXPECT_TRUE(got == contents[i]) << names[i] << " differs";
  }
  ASSERT_EQ(m->unmount(), 0) << m->log();
  long reads = requests_logged(m->log(), " reads");
  long pushed = requests_logged(m->log(), " files");
  EXPECT_GE(reads, 0) << m->log();
  EXPECT_LT(reads, kFiles / 4) << m->log();
  EXPECT_GE(pushed, kFiles / 2) << m->log();
}

TEST_F(MountTest, EveryFullSetIsASnapshot) {
  make_every_kind_tree(src_);
  backup("out", {"--no-encryption"});
  sleep(1);  // set times are whole seconds
  write_file(src_ + "/second-full.txt", "only in the second full\n");
  std::filesystem::remove(src_ + "/" + std::string(every_kind::kTextFile));
  backup("out", {"--no-encryption"}, "full");
  ASSERT_EQ(full_times("out").size(), 2u);
  expect_mount_equals_restore("out");
}

}  // namespace
}  // namespace dupfs::test

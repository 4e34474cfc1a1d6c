// Incremental chains against the real duplicity (GitHub issue 3): chains made by duplicity at
// test time, with every kind of change an incremental can carry (appends, truncation, edits in
// the middle, multivolume deltas, deletions and re-creations, type changes, metadata-only
// changes, renames), mixed suffixes (.gz, .gpg, plain), several chains, incomplete and orphaned
// sets, random reads, concurrent reads, and chains without signature files. Each snapshot
// /snapshots/<T>/ of the mount is compared with `duplicity restore --time T`.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "chain/format/names.h"
#include "chain/read/archive.h"
#include "tests/integration/mounted.h"
#include "tests/support/duplicity.h"
#include "tests/support/gpg_home.h"
#include "tests/support/source_tree.h"
#include "tests/support/tree.h"

namespace dupfs::test {
namespace {

constexpr char kPassphrase[] = "correct horse battery staple";
constexpr int64_t kBaseMtime = 1'700'000'000;  // the mtimes the steps give, far from "now"
constexpr uint32_t kForeignUid = 12345;        // no passwd entry
constexpr uint32_t kForeignGid = 54321;        // no group entry
constexpr size_t kMiB = 1 << 20;

// The steps of the long chain. Step 0 is the full backup; each later step changes the source
// and is backed up as an incremental.
constexpr int kLastStep = 15;

// Readable deterministic text of about n bytes.
std::string text(size_t n, int seed) {
  std::string s;
  for (int line = 0; s.size() < n; ++line) {
    s += "seed " + std::to_string(seed) + " line " + std::to_string(line) +
         ": the quick brown fox jumps over the lazy dog\n";
  }
  s.resize(n);
  return s;
}

std::string random_bytes(size_t n, uint64_t seed) { return pseudo_random_bytes(n, seed); }

// One indented line per item, for messages.
std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& i : items) s += "  " + i + "\n";
  return s.empty() ? "  (none)\n" : s;
}

// The names in a directory (without "." and ".."), sorted.
std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> names;
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

// What pread should return: the bytes of data in [offset, offset + length), clipped at the end.
std::string expected_range(const std::string& data, uint64_t offset, size_t length) {
  if (offset >= data.size()) return {};
  return data.substr(offset, length);
}

// "offset 123: 5 bytes, first difference at 130 (0x41 != 0x42)" for a mismatching read.
std::string describe_mismatch(const std::string& expected, const std::string& actual,
                              uint64_t offset) {
  std::ostringstream m;
  m << "at offset " << offset << " asked " << expected.size() << " expected bytes, got "
    << actual.size();
  size_t n = std::min(expected.size(), actual.size());
  for (size_t i = 0; i < n; ++i) {
    if (expected[i] != actual[i]) {
      char buf[64];
      std::snprintf(buf, sizeof buf, ", first difference at file offset %llu (0x%02x != 0x%02x)",
                    static_cast<unsigned long long>(offset + i),
                    static_cast<unsigned char>(expected[i]), static_cast<unsigned char>(actual[i]));
      m << buf;
      break;
    }
  }
  return m.str();
}

// pread of length bytes at offset, retrying on EINTR; the error is returned in err (0: none).
std::string pread_once(int fd, uint64_t offset, size_t length, int& err) {
  std::string out(length, '\0');
  err = 0;
  for (;;) {
    ssize_t n = ::pread(fd, out.data(), length, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = errno;
      return {};
    }
    out.resize(static_cast<size_t>(n));
    return out;
  }
}

class ChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = dir_.file("src");
    std::filesystem::create_directory(src_);
    std::filesystem::create_directory(dir_.file("home"));
    std::filesystem::create_directory(mnt_);
    env_ = {{"GNUPGHOME", gpg_.path()},
            {"HOME", dir_.file("home")},
            {"PASSPHRASE", kPassphrase},
            {"XDG_CACHE_HOME", dir_.file("home/.cache")}};
  }

  // A Mounted unmounts when destroyed; this catches whatever a failed assertion left behind.
  void TearDown() override {
    if (is_mounted(mnt_)) run({"fusermount3", "-u", mnt_}, {}, std::chrono::seconds(30));
    if (is_mounted(mnt_)) run({"fusermount3", "-uz", mnt_}, {}, std::chrono::seconds(30));
  }

  std::string location(const std::string& name = "out") const { return dir_.file(name); }
  std::string url(const std::string& name = "out") const { return "file://" + location(name); }
  std::string src(const std::string& rel) const { return src_ + "/" + rel; }
  std::string snapshot(int64_t time) const {
    return mnt_ + "/snapshots/" + chain::snapshot_dir_name(time);
  }

  // ---- the source tree, step by step ----

  static int64_t mtime(int step, int k) { return kBaseMtime + step * 1000 + k; }

  // The root's own mtime after a step: steps 8 and 15 leave it as it was, so those
  // incrementals carry no entry for the root.
  static int64_t root_mtime(int step) {
    if (step == 8 || step == 15) return root_mtime(step - 1);
    return kBaseMtime - 100 + step * 1000;
  }

  void put(const std::string& rel, std::string_view data, int64_t t) {
    write_file(src(rel), data);
    set_mtime(src(rel), t);
  }
  void append(const std::string& rel, std::string_view data, int64_t t) {
    std::ofstream f(src(rel), std::ios::binary | std::ios::app);
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
    f.close();
    ASSERT_TRUE(f) << "append to " << rel;
    set_mtime(src(rel), t);
  }
  // Overwrites bytes in place (the size only grows if data reaches past the end).
  void edit(const std::string& rel, uint64_t offset, std::string_view data, int64_t t) {
    int fd = ::open(src(rel).c_str(), O_WRONLY);
    ASSERT_GE(fd, 0) << rel;
    ASSERT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset)),
              static_cast<ssize_t>(data.size()));
    ::close(fd);
    set_mtime(src(rel), t);
  }
  void truncate_to(const std::string& rel, uint64_t size, int64_t t) {
    std::filesystem::resize_file(src(rel), size);
    set_mtime(src(rel), t);
  }
  void make_dir(const std::string& rel, int64_t t) {
    std::filesystem::create_directories(src(rel));
    set_mtime(src(rel), t);
  }
  void make_link(const std::string& rel, const std::string& target) {
    ASSERT_EQ(::symlink(target.c_str(), src(rel).c_str()), 0) << rel;
  }
  void make_fifo(const std::string& rel, int64_t t) {
    ASSERT_EQ(::mkfifo(src(rel).c_str(), 0644), 0) << rel;
    ::chmod(src(rel).c_str(), 0644);
    set_mtime(src(rel), t);
  }
  void remove(const std::string& rel) { std::filesystem::remove_all(src(rel)); }
  void mode(const std::string& rel, mode_t m) { ASSERT_EQ(::chmod(src(rel).c_str(), m), 0); }
  void owner(const std::string& rel, uid_t uid, gid_t gid) {
    ASSERT_EQ(::lchown(src(rel).c_str(), uid, gid), 0) << rel;
  }
  // The first file of docs/ in name order (made by make_random_text_tree).
  std::string first_doc() const {
    std::vector<std::string> files;
    for (const auto& e : std::filesystem::recursive_directory_iterator(src("docs"))) {
      if (e.is_regular_file()) files.push_back(e.path().lexically_relative(src_).string());
    }
    std::sort(files.begin(), files.end());
    return files.empty() ? "" : files.front();
  }

  // Brings the source to its state at `step`. Every written file gets an mtime of its own, so
  // duplicity sees each change whatever the wall clock does; directories whose entries change
  // keep the real time of the change.
  void mutate(int step) {
    switch (step) {
      case 0:
        put("grow.log", text(3000, 1), mtime(0, 1));
        put("shrink.bin", random_bytes(300 * 1024, 2), mtime(0, 2));
        put("zeroed.txt", text(8192, 3), mtime(0, 3));
        put("one.bin", "x", mtime(0, 4));
        put("small.txt", text(5000, 5), mtime(0, 5));
        put("mib.bin", random_bytes(kMiB, 6), mtime(0, 6));
        put("patched.bin", random_bytes(3 * kMiB, 7), mtime(0, 7));
        put("rewritten.bin", random_bytes(5 * kMiB / 2, 8), mtime(0, 8));
        put("empty0", "", mtime(0, 9));
        put("morph", "morph is a file\n", mtime(0, 10));
        put("phoenix.txt", text(2000, 11), mtime(0, 11));
        put("meta.txt", text(1500, 12), mtime(0, 12));
        mode("meta.txt", 0644);
        make_dir("meta_dir", 0);
        put("meta_dir/inside.txt", text(700, 13), mtime(0, 13));
        set_mtime(src("meta_dir"), mtime(0, 14));
        make_link("link", "grow.log");
        make_fifo("fifo0", mtime(0, 15));
        put("old_name.txt", text(900, 16), mtime(0, 16));
        make_dir("dirA/sub", 0);
        put("dirA/a1.txt", text(300, 17), mtime(0, 17));
        put("dirA/sub/a2.txt", text(400, 18), mtime(0, 18));
        set_mtime(src("dirA/sub"), mtime(0, 19));
        set_mtime(src("dirA"), mtime(0, 20));
        make_dir("tree/x/y", 0);
        put("tree/t.txt", text(600, 21), mtime(0, 21));
        put("tree/x/w.bin", random_bytes(20000, 22), mtime(0, 22));
        put("tree/x/y/z.txt", text(100, 23), mtime(0, 23));
        make_link("tree/x/link", "../t.txt");
        set_mtime(src("tree/x/y"), mtime(0, 24));
        set_mtime(src("tree/x"), mtime(0, 25));
        set_mtime(src("tree"), mtime(0, 26));
        make_random_text_tree(src("docs"), 12, 99);
        break;
      case 1:
        append("grow.log", text(2000, 101), mtime(1, 1));
        edit("patched.bin", 3 * kMiB / 2 + 3, "EDIT-1!", mtime(1, 2));  // a few bytes mid-file
        put("empty1", "", mtime(1, 3));                                 // new empty file
        put("one.bin", "y", mtime(1, 4));
        break;
      case 2:
        truncate_to("zeroed.txt", 0, mtime(2, 1));  // truncated to zero
        remove("phoenix.txt");                      // deleted (re-created in step 5)
        truncate_to("shrink.bin", 200 * 1024, mtime(2, 2));
        append("grow.log", text(1500, 201), mtime(2, 3));
        break;
      case 3:
        remove("morph");  // file -> directory
        make_dir("morph", 0);
        put("morph/child.txt", text(321, 301), mtime(3, 1));
        set_mtime(src("morph"), mtime(3, 2));
        mode("meta.txt", 0600);  // metadata only: mode
        append("grow.log", text(1000, 302), mtime(3, 3));
        break;
      case 4:                                                // encrypted
        append("zeroed.txt", text(3000, 401), mtime(4, 1));  // appended to after truncation
        set_mtime(src("meta.txt"), mtime(4, 2));             // metadata only: mtime
        // 1.5 MiB of new bytes: a delta larger than a volume (multivol_diff).
        edit("rewritten.bin", kMiB / 2, random_bytes(3 * kMiB / 2, 404), mtime(4, 3));
        edit("mib.bin", 10, "mib-edit-4", mtime(4, 4));
        break;
      case 5:
        put("phoenix.txt", text(2500, 501), mtime(5, 1));  // re-created
        edit("patched.bin", 100, "five", mtime(5, 2));
        edit("patched.bin", 29 * kMiB / 10, "five-b", mtime(5, 2));
        edit("small.txt", 2500, "EDITED", mtime(5, 3));
        break;
      case 6:
        remove("morph");  // directory -> symlink
        make_link("morph", "grow.log");
        owner("meta.txt", kForeignUid, kForeignGid);  // metadata only: owner
        owner("link", kForeignUid, kForeignGid);      // duplicity ignores a symlink's owner
        mode("meta_dir", 0700);                       // a directory's metadata only
        break;
      case 7:  // no compression, no encryption
        std::filesystem::rename(src("old_name.txt"), src("new_name.txt"));
        append("grow.log", text(800, 701), mtime(7, 1));
        truncate_to("shrink.bin", 100 * 1024, mtime(7, 2));
        break;
      case 8:
        std::filesystem::rename(src("dirA"), src("dirB"));
        remove("link");  // retargeted
        make_link("link", "small.txt");
        mode("fifo0", 0600);
        break;
      case 9:
        remove("morph");  // symlink -> fifo
        make_fifo("morph", mtime(9, 1));
        edit("patched.bin", 3 * kMiB - 20, "nine", mtime(9, 2));
        append("grow.log", text(1200, 901), mtime(9, 3));
        break;
      case 10:  // encrypted
        put("empty2", "", mtime(10, 1));
        remove("tree");  // a whole directory tree
        edit("mib.bin", kMiB / 2 + 7, "ten-ten", mtime(10, 2));
        append("zeroed.txt", text(100, 1001), mtime(10, 3));
        break;
      case 11:
        remove("morph");  // fifo -> file
        put("morph", "morph is a file again\n", mtime(11, 1));
        remove("phoenix.txt");
        append(first_doc(), text(333, 1101), mtime(11, 2));
        break;
      case 12:
        put("tree", "tree is a file now\n", mtime(12, 1));
        append("grow.log", text(900, 1201), mtime(12, 2));
        truncate_to("shrink.bin", 1, mtime(12, 3));
        break;
      case 13:
        mode("meta.txt", 0644);
        put("meta.txt", text(1600, 1301), mtime(13, 1));
        append("rewritten.bin", random_bytes(6 * kMiB / 5, 1302), mtime(13, 2));  // multivol
        edit("patched.bin", 2 * kMiB, "thirteen", mtime(13, 3));
        break;
      case 14:
        put("phoenix.txt", text(2000, 11), mtime(0, 11));  // back as it was in the full
        remove("dirB/sub");
        put("empty1", "not empty any more\n", mtime(14, 1));
        mode(first_doc(), 0600);
        break;
      case 15:  // nothing changes: an incremental without entries
        break;
    }
    set_mtime(src_, root_mtime(step));
  }

  // Options of the set made at `step`: mostly gzip, some encrypted, one plain.
  static std::vector<std::string> options_for(int step) {
    if (step == 4 || step == 10) return {};  // symmetric, PASSPHRASE
    if (step == 7) return {"--no-encryption", "--no-compression"};
    return {"--no-encryption"};
  }

  // ---- duplicity ----

  // Waits until the wall clock is past the newest set at the location, so the next set gets a
  // time of its own (set times are whole seconds).
  void wait_for_next_second(const std::string& name) {
    auto times = set_times(name);
    if (times.empty()) return;
    while (::time(nullptr) <= times.back()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // duplicity full|incremental --volsize 1 [options] src file://dir/<name>.
  void backup(const std::string& kind, const std::vector<std::string>& options,
              const std::string& name = "out") {
    wait_for_next_second(name);
    std::vector<std::string> args{kind, "--archive-dir", dir_.file("dupcache"), "--volsize", "1"};
    args.insert(args.end(), options.begin(), options.end());
    args.push_back(src_);
    args.push_back(url(name));
    auto r = duplicity(args, env_);
    ASSERT_TRUE(r.ok()) << describe({"duplicity", kind}, r);
  }

  // The full (step 0) and one incremental per step up to last_step.
  void build_chain(int last_step, const std::string& name = "out") {
    mutate(0);
    if (HasFatalFailure()) return;
    backup("full", options_for(0), name);
    for (int step = 1; step <= last_step && !HasFatalFailure(); ++step) {
      mutate(step);
      if (HasFatalFailure()) return;
      backup("incremental", options_for(step), name);
    }
  }

  // End times (epoch) of the complete sets at a location, oldest first.
  std::vector<int64_t> set_times(const std::string& name = "out") const {
    std::vector<int64_t> times;
    if (!std::filesystem::exists(location(name))) return times;
    for (const auto& e : std::filesystem::directory_iterator(location(name))) {
      auto p = chain::parse_name(e.path().filename().string());
      if (!p || !p->manifest) continue;
      if (p->type == chain::FileType::kFull) times.push_back(p->time);
      if (p->type == chain::FileType::kInc) times.push_back(p->end_time);
    }
    std::sort(times.begin(), times.end());
    return times;
  }

  // duplicity restore --time <time> URL dir/<target_name>; returns the target.
  std::string restore(int64_t time, const std::string& target_name,
                      const std::string& name = "out") {
    std::string target = dir_.file(target_name);
    auto r = duplicity_restore(url(name), target, std::to_string(time),
                               {"--archive-dir", dir_.file("dupcache")}, env_);
    EXPECT_TRUE(r.ok()) << describe({"duplicity", "restore", "--time", std::to_string(time)}, r);
    return target;
  }

  // Restores every time and scans the result.
  std::vector<Tree> restore_all(const std::vector<int64_t>& times,
                                const std::string& name = "out") {
    std::vector<Tree> trees;
    for (size_t i = 0; i < times.size(); ++i) {
      std::string target = restore(times[i], name + "-restored" + std::to_string(i), name);
      trees.push_back(std::filesystem::exists(target) ? scan_tree(target) : Tree{});
    }
    return trees;
  }

  // ---- dupfs ----

  // dupfs mount -f --cache-size <cache_size> --archive-dir dir/dupfscache; stderr to dir/<log>.
  std::unique_ptr<Mounted> mount(const std::string& name = "out",
                                 const std::string& cache_size = "64M",
                                 const std::string& log = "mount.log") {
    std::vector<std::string> args{"--cache-size", cache_size, "--archive-dir",
                                  dir_.file("dupfscache")};
    auto m = std::make_unique<Mounted>(url(name), mnt_, dir_.file(log), args, env_);
    EXPECT_TRUE(m->ok()) << "mount failed: " << m->log();
    return m;
  }

  // /snapshots lists exactly one directory per time, plus latest -> the newest.
  void expect_snapshot_dirs(const std::vector<int64_t>& times) {
    std::vector<std::string> expected{"latest"};
    for (int64_t t : times) expected.push_back(chain::snapshot_dir_name(t));
    std::sort(expected.begin(), expected.end());
    std::vector<std::string> actual = list_dir(mnt_ + "/snapshots");
    EXPECT_EQ(actual, expected) << "expected:\n" << join(expected) << "listed:\n" << join(actual);
    size_t dirs = 0;
    for (const auto& n : actual) {
      struct stat st {};
      if (::lstat((mnt_ + "/snapshots/" + n).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) ++dirs;
    }
    EXPECT_EQ(dirs, times.size()) << "directories under /snapshots";
    std::error_code ec;
    auto latest = std::filesystem::read_symlink(mnt_ + "/snapshots/latest", ec);
    EXPECT_FALSE(ec) << "readlink latest: " << ec.message();
    if (!times.empty()) {
      EXPECT_EQ(latest.string(), chain::snapshot_dir_name(times.back()));
    }
  }

  // Every snapshot equals its restore, strictly (root mtime included).
  void expect_snapshots_equal(const std::vector<int64_t>& times,
                              const std::vector<Tree>& restored) {
    for (size_t i = 0; i < times.size(); ++i) {
      SCOPED_TRACE("set " + std::to_string(i) + " " + chain::snapshot_dir_name(times[i]));
      Tree mounted;
      try {
        mounted = scan_tree(snapshot(times[i]));
      } catch (const std::exception& e) {
        ADD_FAILURE() << "scan of " << snapshot(times[i]) << ": " << e.what();
        continue;
      }
      EXPECT_TRUE(trees_match(restored[i], mounted));
    }
  }

  TempDir dir_{"dupfs-chain-"};
  GpgHome gpg_;
  std::string src_;
  std::string mnt_ = dir_.file("mnt");
  std::map<std::string, std::string> env_;
};

// ---------------------------------------------------------------------------------------------

TEST_F(ChainTest, LongChainEveryPointEqualsRestore) {
  ASSERT_NO_FATAL_FAILURE(build_chain(kLastStep));
  auto times = set_times();
  ASSERT_EQ(times.size(), static_cast<size_t>(kLastStep + 1));
  auto restored = restore_all(times);

  auto m = mount();
  ASSERT_TRUE(m->ok());
  expect_snapshot_dirs(times);
  expect_snapshots_equal(times, restored);
  EXPECT_TRUE(trees_match(restored.back(), scan_tree(mnt_ + "/snapshots/latest/")));
  EXPECT_EQ(m->unmount(), 0) << m->log();
}

TEST_F(ChainTest, TwoChainsIncompleteAndOrphanedSets) {
  // Chain 1: full + 2 incrementals; chain 2: a new full + 2 incrementals.
  mutate(0);
  ASSERT_NO_FATAL_FAILURE(backup("full", options_for(0)));
  for (int step : {1, 2}) {
    mutate(step);
    ASSERT_NO_FATAL_FAILURE(backup("incremental", options_for(step)));
  }
  mutate(3);
  ASSERT_NO_FATAL_FAILURE(backup("full", options_for(3)));
  for (int step : {4, 5}) {
    mutate(step);
    ASSERT_NO_FATAL_FAILURE(backup("incremental", options_for(step)));
  }
  auto times = set_times();
  ASSERT_EQ(times.size(), 6u);

  // An incomplete set: a volume of chain 1's first incremental copied under the name of a set
  // that extends chain 2 (as a crashed backup leaves it), with no manifest.
  std::string first_inc_volume;
  std::vector<std::string> first_inc_files;  // manifest, volume(s), signatures of inc 1
  for (const auto& e : std::filesystem::directory_iterator(location())) {
    std::string n = e.path().filename().string();
    auto p = chain::parse_name(n);
    if (!p) continue;
    bool first_inc = (p->type == chain::FileType::kInc || p->type == chain::FileType::kNewSig) &&
                     p->start_time == times[0] && p->end_time == times[1];
    if (!first_inc) continue;
    first_inc_files.push_back(n);
    if (p->type == chain::FileType::kInc && !p->manifest && p->volume == 1) first_inc_volume = n;
  }
  ASSERT_FALSE(first_inc_volume.empty());
  ASSERT_GE(first_inc_files.size(), 3u) << join(first_inc_files);
  auto retime = [&](const std::string& n, int64_t start, int64_t end) {
    std::string from =
        chain::format_name_time(times[0]) + ".to." + chain::format_name_time(times[1]);
    std::string to = chain::format_name_time(start) + ".to." + chain::format_name_time(end);
    auto pos = n.find(from);
    EXPECT_NE(pos, std::string::npos) << n;
    return n.substr(0, pos) + to + n.substr(pos + from.size());
  };
  const int64_t incomplete_end = times.back() + 300;
  std::filesystem::copy_file(
      location() + "/" + first_inc_volume,
      location() + "/" + retime(first_inc_volume, times.back(), incomplete_end));

  // An orphaned incremental: every file of inc 1 (manifest, volume, signatures) renamed to
  // start at a time that is no chain's end.
  const int64_t orphan_start = times.back() + 500;
  const int64_t orphan_end = times.back() + 600;
  for (const auto& n : first_inc_files) {
    std::filesystem::copy_file(location() + "/" + n,
                               location() + "/" + retime(n, orphan_start, orphan_end));
  }

  auto restored = restore_all(times);
  auto m = mount();
  ASSERT_TRUE(m->ok());
  expect_snapshot_dirs(times);
  expect_snapshots_equal(times, restored);
  EXPECT_EQ(m->unmount(), 0) << m->log();

  // The log names each ignored set on a line of its own.
  std::string log = m->log();
  auto expect_line = [&](const std::string& word, int64_t time) {
    std::vector<std::string> found;
    for (const auto& line : lines_of(log)) {
      bool names_time = line.find(chain::format_name_time(time)) != std::string::npos ||
                        line.find(chain::snapshot_dir_name(time)) != std::string::npos;
      std::string lower = line;
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (names_time && lower.find(word) != std::string::npos) found.push_back(line);
    }
    EXPECT_FALSE(found.empty()) << "no log line with '" << word << "' and the set's time "
                                << chain::format_name_time(time) << "; log:\n"
                                << log;
    std::cout << "[ log      ] " << word << ": " << found.size() << " line(s)\n" << join(found);
  };
  expect_line("incomplete", incomplete_end);
  expect_line("orphan", orphan_end);
}

TEST_F(ChainTest, RandomPreadMatchesRestore) {
  constexpr int kStep = 10;  // the 10th incremental
  ASSERT_NO_FATAL_FAILURE(build_chain(kStep));
  auto times = set_times();
  ASSERT_EQ(times.size(), static_cast<size_t>(kStep + 1));
  std::string target = restore(times[kStep], "restored");

  const std::vector<std::string> files{"empty0",      "one.bin",       "small.txt", "mib.bin",
                                       "patched.bin", "rewritten.bin", "zeroed.txt"};
  std::map<std::string, std::string> expected;
  for (const auto& f : files) expected[f] = read_file(target + "/" + f);
  ASSERT_EQ(expected["empty0"].size(), 0u);
  ASSERT_EQ(expected["one.bin"].size(), 1u);
  ASSERT_EQ(expected["mib.bin"].size(), kMiB);
  ASSERT_EQ(expected["patched.bin"].size(), 3 * kMiB);

  auto m = mount();
  ASSERT_TRUE(m->ok());
  std::map<std::string, int> fds;
  struct CloseAll {  // also when an assertion returns early: open files would keep the mount busy
    std::map<std::string, int>& fds;
    ~CloseAll() {
      for (const auto& [f, fd] : fds) ::close(fd);
    }
  } close_all{fds};
  for (const auto& f : files) {
    std::string path = snapshot(times[kStep]) + "/" + f;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
    fds[f] = fd;
    struct stat st {};
    ASSERT_EQ(::fstat(fd, &st), 0);
    EXPECT_EQ(static_cast<uint64_t>(st.st_size), expected[f].size()) << f;
  }

  std::mt19937_64 rng(20260301);
  int failures = 0;
  constexpr int kReads = 400;
  for (int i = 0; i < kReads && failures < 20; ++i) {
    const std::string& f = files[rng() % files.size()];
    const std::string& data = expected[f];
    uint64_t size = data.size();
    uint64_t offset;
    switch (rng() % 8) {
      case 0:
        offset = size;  // exactly at EOF
        break;
      case 1:
        offset = size + 1 + rng() % (2 * kMiB);  // past EOF
        break;
      case 2:
        offset = size - std::min<uint64_t>(size, rng() % 4096);  // just before EOF
        break;
      default:
        offset = size == 0 ? 0 : rng() % size;
    }
    // Lengths spread over 1 B .. 1 MiB on a log scale.
    size_t length = std::min<size_t>(
        kMiB, static_cast<size_t>(std::exp2(std::uniform_real_distribution<double>(0, 20)(rng))));
    length = std::max<size_t>(length, 1);
    // The page cache would answer repeated reads itself; drop it so dupfs serves each one.
    ::posix_fadvise(fds[f], 0, 0, POSIX_FADV_DONTNEED);
    int err = 0;
    std::string got = pread_once(fds[f], offset, length, err);
    std::string want = expected_range(data, offset, length);
    if (err != 0 || got != want) {
      ++failures;
      ADD_FAILURE() << f << " (size " << size << "): pread(" << offset << ", " << length << ") "
                    << (err != 0 ? std::string("failed: ") + std::strerror(err)
                                 : describe_mismatch(want, got, offset));
    }
  }
  for (const auto& [f, fd] : fds) ::close(fd);
  fds.clear();
  EXPECT_EQ(m->unmount(), 0) << m->log();
}

TEST_F(ChainTest, SixteenThreadsConcurrentReads) {
  ASSERT_NO_FATAL_FAILURE(build_chain(10));
  auto times = set_times();
  ASSERT_EQ(times.size(), 11u);
  const std::vector<size_t> sets{4, 7, 10};  // incrementals 4, 7 and 10
  const std::vector<std::string> files{"patched.bin", "rewritten.bin", "mib.bin", "grow.log",
                                       "small.txt"};
  struct Target {
    std::string path;  // in the mount
    std::string data;  // restored
  };
  std::vector<Target> targets;
  Tree restored_last;
  for (size_t s : sets) {
    std::string r = restore(times[s], "restored" + std::to_string(s));
    for (const auto& f : files) {
      targets.push_back({snapshot(times[s]) + "/" + f, read_file(r + "/" + f)});
    }
    if (s == sets.back()) restored_last = scan_tree(r);
  }

  auto m = mount("out", "8M");  // a small cache: blocks are evicted while others read
  ASSERT_TRUE(m->ok());

  constexpr int kThreads = 16;
  constexpr int kReadsPerThread = 150;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::mutex mu;
  std::vector<std::string> errors;
  std::atomic<uint64_t> reads{0}, bytes{0};
  auto worker = [&](int id) {
    std::mt19937_64 rng(1000 + id);
    std::map<size_t, int> fds;
    for (int i = 0; i < kReadsPerThread && std::chrono::steady_clock::now() < deadline; ++i) {
      // Threads 0-3 all read one file; the others pick any file of any of the snapshots.
      size_t t = id < 4 ? 0 : rng() % targets.size();
      const Target& target = targets[t];
      if (!fds.contains(t) || rng() % 8 == 0) {  // sometimes a fresh open
        if (fds.contains(t)) ::close(fds[t]);
        int fd = ::open(target.path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
          std::lock_guard lock(mu);
          errors.push_back(target.path + ": open: " + std::strerror(errno));
          fds.erase(t);
          continue;
        }
        fds[t] = fd;
      }
      uint64_t size = target.data.size();
      uint64_t offset = rng() % (size + 1);
      size_t length = 1 + rng() % (512 * 1024);
      if (rng() % 4 == 0) ::posix_fadvise(fds[t], 0, 0, POSIX_FADV_DONTNEED);
      int err = 0;
      std::string got = pread_once(fds[t], offset, length, err);
      std::string want = expected_range(target.data, offset, length);
      reads++;
      bytes += got.size();
      if (err != 0 || got != want) {
        std::lock_guard lock(mu);
        errors.push_back(target.path + " (size " + std::to_string(size) + "): pread(" +
                         std::to_string(offset) + ", " + std::to_string(length) + ") " +
                         (err != 0 ? std::string("failed: ") + std::strerror(err)
                                   : describe_mismatch(want, got, offset)));
      }
    }
    for (const auto& [t, fd] : fds) ::close(fd);
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) threads.emplace_back(worker, i);
  for (auto& th : threads) th.join();
  std::cout << "[ reads    ] " << reads << " reads, " << bytes / kMiB << " MiB, " << errors.size()
            << " errors\n";
  EXPECT_TRUE(errors.empty()) << errors.size() << " bad reads, the first ones:\n"
                              << join(std::vector<std::string>(
                                     errors.begin(),
                                     errors.begin() + std::min<size_t>(errors.size(), 20)));

  // The mount still answers, and completely.
  expect_snapshot_dirs(times);
  EXPECT_TRUE(trees_match(restored_last, scan_tree(snapshot(times[sets.back()]))));
  EXPECT_EQ(m->unmount(), 0) << m->log();
}

TEST_F(ChainTest, MissingSignaturesStillBrowsable) {
  constexpr int kSteps = 6;
  ASSERT_NO_FATAL_FAILURE(build_chain(kSteps));
  auto times = set_times();
  ASSERT_EQ(times.size(), static_cast<size_t>(kSteps + 1));
  {
    auto m = mount();  // fills dupfs's archive dir, signatures included
    ASSERT_TRUE(m->ok());
    EXPECT_EQ(m->unmount(), 0) << m->log();
  }
  // Every signature file goes: from the location, dupfs's archive dir and duplicity's cache.
  std::vector<std::string> removed;
  for (const auto& dir : {location(), dir_.file("dupfscache"), dir_.file("dupcache")}) {
    size_t in_dir = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
      std::string n = e.path().filename().string();
      if (e.is_regular_file() && n.find("sigtar") != std::string::npos) {
        removed.push_back(e.path());
        ++in_dir;
      }
    }
    EXPECT_EQ(in_dir, static_cast<size_t>(kSteps + 1)) << "signature files in " << dir;
  }
  for (const auto& p : removed) std::filesystem::remove(p);

  // duplicity restores without them.
  auto restored = restore_all(times);
  auto m = mount("out", "64M", "mount-without-signatures.log");
  ASSERT_TRUE(m->ok());
  expect_snapshot_dirs(times);
  expect_snapshots_equal(times, restored);
  EXPECT_EQ(m->unmount(), 0) << m->log();
  std::cout << "[ log      ] " << m->log();
}

}  // namespace
}  // namespace dupfs::test

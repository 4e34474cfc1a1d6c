// Load (issue 7): many threads read random ranges of many files across several snapshots of a
// duplicity chain through one mount with a small --cache-size, for a bounded time. Every byte read
// is compared with the source as it was; the daemon's peak RSS is checked against the stated
// bound; the mount must still answer afterwards, and a lazy unmount while reads are in flight
// must end the daemon cleanly.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "chain/format/names.h"
#include "chain/read/archive.h"
#include "tests/integration/mounted.h"
#include "tests/support/duplicity.h"
#include "tests/support/gpg_home.h"
#include "tests/support/sanitizers.h"
#include "tests/support/source_tree.h"
#include "tests/support/temp_dir.h"

namespace dupfs::test {
namespace {

constexpr char kPassphrase[] = "load test passphrase";
constexpr int64_t kMtime = 1'600'000'000;
constexpr int kCacheMiB = 4;
constexpr int kThreads = 32;

// Seconds of random reads: DUPFS_LOAD_SECONDS, default 20.
int load_seconds() {
  const char* s = std::getenv("DUPFS_LOAD_SECONDS");
  int n = s ? std::atoi(s) : 0;
  return n > 0 ? n : 20;
}

// The newest set's time at a location (from its manifest names).
int64_t newest_set_time(const std::string& dir) {
  int64_t newest = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    auto p = chain::parse_name(e.path().filename().string());
    if (!p || !p->manifest) continue;
    newest = std::max(newest, p->type == chain::FileType::kFull ? p->time : p->end_time);
  }
  return newest;
}

// VmHWM of a process, in MiB (-1 if unknown).
long peak_rss_mib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6) / 1024;
  }
  return -1;
}

struct Target {
  std::string mounted;   // the file through the mount
  std::string expected;  // the same file as it was when its set was made
  off_t size = 0;
};

struct Counters {
  std::atomic<long> reads{0};
  std::atomic<long> bytes{0};
  std::atomic<long> errors{0};
  std::atomic<long> mismatches{0};
  std::string first_problem;
  std::mutex mu;
  void problem(const std::string& what) {
    std::lock_guard lock(mu);
    if (first_problem.empty()) first_problem = what;
  }
};

// One random range of `t` through the mount, compared with the expected copy. False when the
// mounted file could not be opened (the mount is gone).
bool read_one(const Target& t, std::mt19937_64& rng, Counters& c) {
  int fd = ::open(t.mounted.c_str(), O_RDONLY);
  if (fd < 0) return false;
  int efd = ::open(t.expected.c_str(), O_RDONLY);
  off_t off = t.size == 0 ? 0 : static_cast<off_t>(rng() % static_cast<uint64_t>(t.size + 1));
  size_t len = 1 + rng() % (rng() % 4 == 0 ? (1u << 20) : (64u << 10));
  std::string got(len, '\0'), want(len, '\0');
  ssize_t n = ::pread(fd, got.data(), len, off);
  ssize_t m = ::pread(efd, want.data(), len, off);
  ::close(fd);
  ::close(efd);
  c.reads++;
  if (n < 0) {
    c.errors++;
    c.problem(t.mounted + ": read failed: " + std::strerror(errno));
  } else if (n != m || got.compare(0, n, want, 0, n) != 0) {
    c.mismatches++;
    c.problem(t.mounted + ": wrong bytes at offset " + std::to_string(off));
  } else {
    c.bytes += n;
  }
  return true;
}

class LoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = dir_.file("src");
    std::filesystem::create_directory(dir_.file("home"));
    std::filesystem::create_directory(dir_.file("mnt"));
    env_ = {{"GNUPGHOME", gpg_.path()},
            {"HOME", dir_.file("home")},
            {"PASSPHRASE", kPassphrase},
            {"XDG_CACHE_HOME", dir_.file("home/.cache")}};
  }

  // duplicity full|incremental --volsize 1, then a copy of the source as it was.
  void backup(const std::string& kind) {
    auto r = duplicity({kind, "--archive-dir", dir_.file("dupcache"), "--volsize", "1", src_,
                        "file://" + dir_.file("out")},
                       env_);
    ASSERT_TRUE(r.ok()) << describe({"duplicity", kind}, r);
    int64_t t = newest_set_time(dir_.file("out"));
    std::string copy = dir_.file("expected" + std::to_string(sets_.size()));
    std::filesystem::copy(src_, copy, std::filesystem::copy_options::recursive);
    sets_.emplace_back(chain::snapshot_dir_name(t), copy);
  }

  // Every regular file of every set, through the mount.
  std::vector<Target> targets() const {
    std::vector<Target> out;
    for (const auto& [name, copy] : sets_) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(copy)) {
        if (!e.is_regular_file()) continue;
        std::string rel = std::filesystem::relative(e.path(), copy).string();
        out.push_back(Target{dir_.file("mnt/snapshots/" + name + "/" + rel), e.path().string(),
                             static_cast<off_t>(e.file_size())});
      }
    }
    return out;
  }

  TempDir dir_{"dupfs-load-"};
  GpgHome gpg_;
  std::string src_;
  std::map<std::string, std::string> env_;
  std::vector<std::pair<std::string, std::string>> sets_;  // snapshot dir name, expected copy
};

TEST_F(LoadTest, ManyReadersAcrossSnapshotsWithASmallCache) {
  // 8 directories of 12 files, 0 bytes to 3 MiB: with --volsize 1 the big ones span volumes.
  const size_t sizes[] = {0, 1, 4096, 65536, 65537, 300000, 1 << 20, 3 << 20};
  for (int d = 0; d < 8; ++d) {
    std::filesystem::create_directories(src_ + "/d" + std::to_string(d));
    for (int f = 0; f < 12; ++f) {
      std::string p = src_ + "/d" + std::to_string(d) + "/f" + std::to_string(f);
      write_file(p, make_payload(sizes[(d * 12 + f) % 8], d * 100 + f));
      set_mtime(p, kMtime);
    }
  }
  backup("full");
  // Two incrementals: edits in the middle (deltas), appends, deletions, new files.
  for (int step = 1; step <= 2; ++step) {
    sleep(1);
    for (int d = 0; d < 8; ++d) {
      std::string dir = src_ + "/d" + std::to_string(d) + "/";
      std::string p = dir + "f" + std::to_string((d + step) % 12);
      std::string data = read_file(p);
      if (data.size() > 100000) {
        data.replace(data.size() / 2, 5000, pseudo_random_bytes(5000, step * 10 + d));
      } else {
        data += pseudo_random_bytes(70000, step * 20 + d);
      }
      write_file(p, data);
      set_mtime(p, kMtime + step);
      std::filesystem::remove(dir + "f" + std::to_string((d + step + 5) % 12));
      std::string added = dir + "new" + std::to_string(step);
      write_file(added, make_payload(200000 * step, step * 30 + d));
      set_mtime(added, kMtime + step);
    }
    backup("incremental");
  }
  ASSERT_EQ(sets_.size(), 3u);

  Mounted m(
      "file://" + dir_.file("out"), dir_.file("mnt"), dir_.file("mount.log"),
      {"--cache-size", std::to_string(kCacheMiB) + "M", "--archive-dir", dir_.file("dupfscache")},
      env_);
  ASSERT_TRUE(m.ok()) << m.log();
  const std::vector<Target> all = targets();
  ASSERT_GT(all.size(), 200u);

  Counters c;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(load_seconds());
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      std::mt19937_64 rng(1000 + i);
      while (std::chrono::steady_clock::now() < deadline) {
        if (!read_one(all[rng() % all.size()], rng, c)) {
          c.errors++;
          c.problem("open failed: " + std::string(std::strerror(errno)));
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  threads.clear();
  EXPECT_EQ(c.errors.load(), 0) << c.first_problem << "\n" << m.log();
  EXPECT_EQ(c.mismatches.load(), 0) << c.first_problem;
  // Under TSan the same 20 s give about a hundred reads (every pass decodes instrumented).
  EXPECT_GT(c.reads.load(), test::kUnderThreadSanitizer ? 32 : 1000)
      << "too few reads to count as load";
  long rss = peak_rss_mib(m.pid());
  EXPECT_GT(rss, 0);
  if (!test::kUnderSanitizer) {  // ASan's quarantine and shadow memory have no such bound
    EXPECT_LE(rss, kCacheMiB + 128) << "peak RSS over --cache-size + 128 MiB";
  }
  std::printf("load: %ld reads, %ld MiB in %d s by %d threads; peak RSS %ld MiB\n", c.reads.load(),
              c.bytes.load() >> 20, load_seconds(), kThreads, rss);

  // Still answering: every file of the newest set, whole.
  const std::string& newest = sets_.back().second;
  for (const auto& t : all) {
    if (t.expected.rfind(newest + "/", 0) != 0) continue;
    EXPECT_EQ(read_file(t.mounted), read_file(t.expected)) << t.mounted;
  }

  // A lazy unmount while 8 readers are busy: their open files keep working, new opens fail,
  // and once they are done the daemon exits cleanly.
  Counters late;
  std::atomic<bool> stop{false};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      std::mt19937_64 rng(5000 + i);
      while (!stop && read_one(all[rng() % all.size()], rng, late)) {
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto r = run({"fusermount3", "-uz", dir_.file("mnt")}, {}, std::chrono::seconds(30));
  EXPECT_TRUE(r.ok()) << r.err;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(late.errors.load(), 0) << late.first_problem;
  EXPECT_EQ(late.mismatches.load(), 0) << late.first_problem;
  EXPECT_GT(late.reads.load(), 0);
  EXPECT_EQ(m.unmount(), 0) << m.log();
}

}  // namespace
}  // namespace dupfs::test

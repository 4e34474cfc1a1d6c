// dupfs collection-status, list-current-files, remove-older-than, remove-all-but-n-full,
// remove-all-inc-of-but-n-full and cleanup against the real duplicity (0.8.22, the oracle), on
// one archive duplicity writes at test time: two chains (a full and two incrementals, a full and
// three incrementals), passphrase-encrypted, set times fixed with --current-time relative to
// now so that every kind of time spec selects a different set. Each comparison runs both
// programs on the same archive (or on two copies of it, for the actions that delete) and
// compares what they print or what files remain.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "chain/format/names.h"
#include "tests/support/duplicity.h"
#include "tests/support/gpg_home.h"
#include "tests/support/process.h"
#include "tests/support/source_tree.h"
#include "tests/support/temp_dir.h"

namespace dupfs::test {
namespace {

namespace fs = std::filesystem;

constexpr char kPassphrase[] = "status actions passphrase";
constexpr int64_t kDay = 86400;
constexpr int64_t kHour = 3600;
constexpr auto kTimeout = std::chrono::seconds(300);
// Both programs print local times: a zone with summer time, different from the machine's.
constexpr char kZone[] = "Europe/Berlin";

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& i : items) s += "  " + i + "\n";
  return s.empty() ? "  (none)\n" : s;
}

// The file names in a directory, sorted.
std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

// The archive every test reads: made once for the suite, never changed (tests that delete work
// on copies in their own temp dir).
struct SharedArchive {
  TempDir dir{"dupfs-status-"};
  GpgHome gpg;
  int64_t now = 0;
  // Set times, oldest first: chain A = a[0..2], chain B = b[0..3].
  std::vector<int64_t> a, b;
  std::string location() const { return dir.file("archive"); }
  std::string url() const { return "file://" + location(); }
};
SharedArchive* g_archive = nullptr;

class StatusActions : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto shared = std::make_unique<SharedArchive>();
    SharedArchive& s = *shared;
    s.now = std::time(nullptr);
    s.a = {s.now - 40 * kDay, s.now - 35 * kDay, s.now - 20 * kDay};
    s.b = {s.now - 10 * kDay, s.now - 5 * kDay, s.now - kHour, s.now - 10 * 60};
    const std::string src = s.dir.file("src");
    fs::create_directories(src + "/docs/old");
    fs::create_directories(s.dir.file("home"));
    const std::map<std::string, std::string> env = {
        {"GNUPGHOME", s.gpg.path()}, {"HOME", s.dir.file("home")}, {"PASSPHRASE", kPassphrase}};
    const int64_t base = 1'650'000'000;
    auto put = [&](const std::string& rel, const std::string& data, int64_t mtime) {
      write_file(src + "/" + rel, data);
      set_mtime(src + "/" + rel, mtime);
    };
    auto backup = [&](const std::string& action, int64_t when, int step) {
      set_mtime(src + "/docs/old", base + step * 100 + 1);
      set_mtime(src + "/docs", base + step * 100 + 2);
      set_mtime(src, base + step * 100 + 3);
      auto r = duplicity({action, "--current-time", std::to_string(when), "--archive-dir",
                          s.dir.file("dupcache"), src, s.url()},
                         env, kTimeout);
      ASSERT_TRUE(r.ok()) << describe({"duplicity", action}, r);
    };
    put("readme.txt", "first\n", base);
    put("docs/a.txt", "a\n", base + 1);
    put("docs/old/gone.txt", "to be deleted\n", base + 2);
    put("with space.txt", "spaces\n", base + 3);
    backup("full", s.a[0], 0);
    put("docs/b.txt", "b\n", base + 110);
    backup("incremental", s.a[1], 1);
    put("readme.txt", "second version\n", base + 210);
    std::filesystem::remove(src + "/docs/old/gone.txt");
    backup("incremental", s.a[2], 2);
    put("new-in-b.txt", "b chain\n", base + 310);
    backup("full", s.b[0], 3);
    put("docs/c.txt", "c\n", base + 410);
    backup("incremental", s.b[1], 4);
    std::filesystem::remove(src + "/docs/a.txt");
    backup("incremental", s.b[2], 5);
    put("docs/old/back.txt", "back\n", base + 610);
    backup("incremental", s.b[3], 6);
    g_archive = shared.release();
  }
  static void TearDownTestSuite() {
    delete g_archive;
    g_archive = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(g_archive, nullptr) << "the shared archive could not be made";
    fs::create_directories(dir_.file("home"));
    env_ = {{"GNUPGHOME", g_archive->gpg.path()},
            {"HOME", dir_.file("home")},
            {"XDG_CACHE_HOME", dir_.file("home/.cache")},
            {"PASSPHRASE", kPassphrase},
            {"TZ", kZone}};
  }

  const SharedArchive& archive() const { return *g_archive; }

  // build/dupfs args...
  ProcessResult dupfs(const std::vector<std::string>& args,
                      std::map<std::string, std::string> env = {}) {
    std::vector<std::string> argv{DUPFS_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    if (env.empty()) env = env_;
    return run(argv, env, kTimeout);
  }

  // duplicity args..., with a fresh metadata cache of its own each time (so that both programs
  // see only what the location holds).
  ProcessResult oracle(std::vector<std::string> args) {
    args.insert(args.begin() + 1,
                {"--archive-dir", dir_.file("dupcache" + std::to_string(++oracle_runs_))});
    return duplicity(args, env_, kTimeout);
  }

  // A copy of the shared archive in this test's temp dir; returns its file:// URL.
  std::string copy_archive(const std::string& name) {
    fs::copy(archive().location(), dir_.file(name), fs::copy_options::recursive);
    return "file://" + dir_.file(name);
  }

  TempDir dir_{"dupfs-status-test-"};
  std::map<std::string, std::string> env_;
  int oracle_runs_ = 0;
};

// What both print, minus the two lines about the programs themselves (backend class, cache
// directory), and with the one line that names the program to run again.
std::vector<std::string> archive_lines(const std::string& out) {
  std::vector<std::string> kept;
  for (const auto& line : lines_of(out)) {
    if (line.starts_with("Connecting with backend: ") || line.starts_with("Archive dir: ") ||
        line.starts_with("Local and Remote metadata") ||
        line.starts_with("Synchronizing remote metadata") || line.starts_with("Copying ")) {
      continue;
    }
    kept.push_back(line);
  }
  return kept;
}

// Damage a copy of the archive: chain A's first incremental loses its manifest (it becomes
// incomplete and the next one orphaned), an interrupted full leaves a volume, chain B's newest
// signatures go (duplicity then discards the newest set), an orphaned new-signatures file and
// a file that is not duplicity's appear.
void damage(const std::string& location, const SharedArchive& s) {
  using namespace chain;
  fs::remove(location + "/" + inc_manifest_name(s.a[0], s.a[1], ".gpg"));
  fs::remove(location + "/" + new_sig_name(s.b[2], s.b[3], ".gpg"));
  fs::copy_file(location + "/" + full_volume_name(s.b[0], 1, ".gpg"),
                location + "/" + full_volume_name(s.now - 2 * kDay, 1, ".gpg"));
  fs::copy_file(location + "/" + new_sig_name(s.b[0], s.b[1], ".gpg"),
                location + "/" + new_sig_name(s.now - 3 * kDay, s.now - 2 * kDay, ".gpg"));
  write_file(location + "/notes.txt", "not duplicity's\n");
  write_file(location + "/duplicity-full.garbage.vol1.difftar.gpg", "nor this\n");
}

TEST_F(StatusActions, CollectionStatusPrintsWhatDuplicityPrints) {
  for (bool damaged : {false, true}) {
    SCOPED_TRACE(damaged ? "damaged copy" : "intact archive");
    std::string url = archive().url();
    if (damaged) {
      url = copy_archive("damaged");
      damage(dir_.file("damaged"), archive());
    }
    // No passphrase needed: names only.
    auto env = env_;
    env.erase("PASSPHRASE");
    auto mine = dupfs({"collection-status", url}, env);
    ASSERT_TRUE(mine.ok()) << describe({"dupfs", "collection-status", url}, mine);
    auto theirs = oracle({"collection-status", url});
    ASSERT_TRUE(theirs.ok()) << describe({"duplicity", "collection-status", url}, theirs);
    EXPECT_EQ(archive_lines(mine.out), archive_lines(theirs.out)) << "dupfs:\n"
                                                                  << mine.out << "duplicity:\n"
                                                                  << theirs.out;
    EXPECT_NE(mine.out.find("Connecting with backend: "), std::string::npos);
    EXPECT_NE(mine.out.find(damaged ? "Also found 1 backup set not part of any chain,"
                                    : "Found 1 secondary backup chain."),
              std::string::npos)
        << mine.out;
  }
}

TEST_F(StatusActions, ListCurrentFilesAtEverySetAndBetween) {
  const auto& s = archive();
  std::vector<std::string> times;
  for (const auto* chain : {&s.a, &s.b}) {
    for (int64_t t : *chain) {
      times.push_back(std::to_string(t));
      times.push_back(std::to_string(t + 60));
    }
  }
  times.push_back(std::to_string(s.a[0] - kDay));  // before every chain: the oldest one
  std::set<std::string> distinct;
  for (const auto& t : times) {
    SCOPED_TRACE("--time " + t);
    auto mine = dupfs({"list-current-files", "--time", t, s.url()});
    ASSERT_TRUE(mine.ok()) << describe({"dupfs", "list-current-files", "--time", t}, mine);
    auto theirs = oracle({"list-current-files", "-v1", "--time", t, s.url()});
    ASSERT_TRUE(theirs.ok()) << describe({"duplicity", "list-current-files", "-t", t}, theirs);
    EXPECT_EQ(lines_of(mine.out), lines_of(theirs.out)) << "dupfs:\n"
                                                        << mine.out << "duplicity:\n"
                                                        << theirs.out;
    EXPECT_TRUE(mine.out.find(" .\n") != std::string::npos) << mine.out;
    distinct.insert(mine.out);
  }
  // Every set lists differently, so each time above really picked its own set.
  EXPECT_EQ(distinct.size(), s.a.size() + s.b.size());
  // Without --time: the newest set.
  auto mine = dupfs({"list-current-files", s.url()});
  auto theirs = oracle({"list-current-files", "-v1", s.url()});
  ASSERT_TRUE(mine.ok() && theirs.ok()) << mine.err << theirs.err;
  EXPECT_EQ(lines_of(mine.out), lines_of(theirs.out));
  EXPECT_NE(mine.out.find(" docs/old/back.txt\n"), std::string::npos) << mine.out;
  EXPECT_NE(mine.out.find(" with space.txt\n"), std::string::npos) << mine.out;
}

// Every kind of entry duplicity stores (symlinks, fifos, devices, odd and non-UTF-8 names, deep
// paths, hard links, a multivolume file) lists as duplicity lists it.
TEST_F(StatusActions, ListCurrentFilesOfEveryKindOfEntry) {
  const std::string src = dir_.file("every");
  make_every_kind_tree(src);
  const std::string url = "file://" + dir_.file("every-archive");
  auto r = oracle({"full", "--no-encryption", "--volsize", "1", src, url});
  ASSERT_TRUE(r.ok()) << describe({"duplicity", "full", src, url}, r);
  auto mine = dupfs({"list-current-files", url});
  auto theirs = oracle({"list-current-files", "-v1", url});
  ASSERT_TRUE(mine.ok()) << mine.err;
  ASSERT_TRUE(theirs.ok()) << theirs.err;
  EXPECT_EQ(mine.out, theirs.out);
  EXPECT_GT(lines_of(mine.out).size(), 30u);
}

// Every kind of time spec, through -t and --time, resolved to the same set as duplicity does.
TEST_F(StatusActions, EveryTimeSpecSelectsTheSameSetAsDuplicity) {
  const auto& s = archive();
  auto iso = [](int64_t t, int offset_hours) {
    std::time_t shifted = t + offset_hours * kHour;
    std::tm tm{};
    ::gmtime_r(&shifted, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    if (offset_hours == 0) return std::string(buf) + "Z";
    char zone[16];
    std::snprintf(zone, sizeof zone, "%c%02d:00", offset_hours < 0 ? '-' : '+',
                  std::abs(offset_hours));
    return std::string(buf) + zone;
  };
  auto date = [](int64_t t, const char* format) {
    std::time_t tt = t;
    std::tm tm{};
    ::gmtime_r(&tt, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, format, &tm);
    return std::string(buf);
  };
  const std::vector<std::string> specs = {
      "now",
      "7D",     // between b[0] and b[1]
      "1M",     // 30 days: between a[1] and a[2]
      "2W3D",   // 17 days: between the chains, so chain A's end
      "1h30m",  // between b[1] and b[2]
      "2015/9/10",
      "2015-09-10",  // before every chain
      date(s.a[1] + kDay, "%Y/%m/%d"),
      date(s.a[1] + kDay, "%Y-%m-%d"),
      iso(s.a[1] + 60, -7),
      iso(s.b[1] + 60, 0),
      iso(s.b[2] + 60, 5),
      std::to_string(s.a[2]),
      std::to_string(s.b[0] + 1),
  };
  std::set<std::string> distinct;
  for (const auto& spec : specs) {
    for (const char* flag : {"-t", "--time"}) {
      SCOPED_TRACE(std::string(flag) + " " + spec);
      auto mine = dupfs({"list-current-files", flag, spec, s.url()});
      ASSERT_TRUE(mine.ok()) << describe({"dupfs", "list-current-files", flag, spec}, mine);
      auto theirs = oracle({"list-current-files", "-v1", flag, spec, s.url()});
      ASSERT_TRUE(theirs.ok()) << describe({"duplicity", "list-current-files", flag, spec}, theirs);
      EXPECT_EQ(lines_of(mine.out), lines_of(theirs.out)) << "dupfs:\n"
                                                          << mine.out << "duplicity:\n"
                                                          << theirs.out;
      distinct.insert(mine.out);
    }
  }
  EXPECT_GE(distinct.size(), 6u) << "the specs should pick most of the sets";

  // remove-older-than takes the same specs (listing only, nothing deleted).
  for (const std::string& spec :
       std::vector<std::string>{"1M", "2W3D", "2015-09-10", iso(s.a[2] + 60, -7)}) {
    SCOPED_TRACE("remove-older-than " + spec);
    auto mine = dupfs({"remove-older-than", spec, s.url()});
    auto theirs = oracle({"remove-older-than", spec, s.url()});
    ASSERT_TRUE(mine.ok() && theirs.ok()) << mine.err << theirs.err;
    EXPECT_EQ(archive_lines(mine.out), archive_lines(theirs.out)) << "dupfs:\n"
                                                                  << mine.out << "duplicity:\n"
                                                                  << theirs.out;
  }
}

// remove-older-than, remove-all-but-n-full and remove-all-inc-of-but-n-full: without --force
// both print the same and delete nothing; with --force the same files remain on two copies.
TEST_F(StatusActions, RemoveActionsLeaveWhatDuplicityLeaves) {
  const auto& s = archive();
  const std::vector<std::string> before = listing(s.location());
  struct Case {
    std::vector<std::string> args;  // action and its argument
    size_t expected_gone;           // files that go (checked against duplicity too)
  };
  // Chain A: 3 sets x (volume + manifest + signatures) = 9 files; its incrementals: 6.
  const std::vector<Case> cases = {
      {{"remove-older-than", "15D"}, 9},
      {{"remove-older-than", std::to_string(s.a[2])}, 0},  // A ends at t: not older
      {{"remove-older-than", "now"}, 9},                   // B is the newest: stays
      {{"remove-all-but-n-full", "1"}, 9},
      {{"remove-all-but-n-full", "2"}, 0},
      {{"remove-all-inc-of-but-n-full", "1"}, 6},
  };
  int n = 0;
  for (const auto& c : cases) {
    const std::string what = c.args[0] + " " + c.args[1];
    SCOPED_TRACE(what);
    const std::string mine_name = "mine" + std::to_string(n),
                      theirs_name = "theirs" + std::to_string(n);
    ++n;
    const std::string mine_url = copy_archive(mine_name), theirs_url = copy_archive(theirs_name);
    const std::string cache = dir_.file("dupfscache" + std::to_string(n));
    // Fill dupfs's metadata cache for the copy: what goes must leave it too.
    ASSERT_TRUE(dupfs({"list-current-files", "--archive-dir", cache, mine_url}).ok());
    const std::vector<std::string> cached_before = listing(cache);

    auto listed_mine = dupfs({c.args[0], c.args[1], "--archive-dir", cache, mine_url});
    auto listed_theirs = oracle({c.args[0], c.args[1], theirs_url});
    ASSERT_EQ(listed_mine.exit_code, 0) << listed_mine.err;
    ASSERT_EQ(listed_theirs.exit_code, 0) << listed_theirs.err;
    EXPECT_EQ(archive_lines(listed_mine.out), archive_lines(listed_theirs.out))
        << "dupfs:\n"
        << listed_mine.out << "duplicity:\n"
        << listed_theirs.out;
    EXPECT_EQ(listing(dir_.file(mine_name)), before) << "deleted without --force";

    auto mine = dupfs({c.args[0], c.args[1], "--force", "--archive-dir", cache, mine_url});
    auto theirs = oracle({c.args[0], c.args[1], "--force", theirs_url});
    ASSERT_EQ(mine.exit_code, 0) << mine.out << mine.err;
    ASSERT_EQ(theirs.exit_code, 0) << theirs.out << theirs.err;
    const auto left_mine = listing(dir_.file(mine_name));
    const auto left_theirs = listing(dir_.file(theirs_name));
    EXPECT_EQ(left_mine, left_theirs) << "dupfs left:\n"
                                      << join(left_mine) << "duplicity left:\n"
                                      << join(left_theirs) << "dupfs said:\n"
                                      << mine.out << mine.err;
    EXPECT_EQ(before.size() - left_mine.size(), c.expected_gone) << join(left_mine);
    // The metadata cache lost exactly the copies of what went.
    std::set<std::string> gone_times;
    for (const auto& name : before) {
      if (!std::binary_search(left_mine.begin(), left_mine.end(), name)) {
        auto p = chain::parse_name(name);
        ASSERT_TRUE(p) << name;
        const bool full = p->type == chain::FileType::kFull || p->type == chain::FileType::kFullSig;
        gone_times.insert(chain::format_name_time(full ? p->time : p->end_time));
      }
    }
    for (const auto& name : cached_before) {
      auto p = chain::parse_name(name);
      if (!p) continue;
      const bool full = p->type == chain::FileType::kFull || p->type == chain::FileType::kFullSig;
      const std::string t = chain::format_name_time(full ? p->time : p->end_time);
      const bool present = fs::exists(cache + "/" + name);
      EXPECT_EQ(present, !gone_times.contains(t)) << "cache file " << name;
    }
    // What is left still lists as duplicity lists it.
    auto after = dupfs({"list-current-files", "--archive-dir", cache, mine_url});
    auto after_theirs = oracle({"list-current-files", "-v1", theirs_url});
    ASSERT_TRUE(after.ok() && after_theirs.ok()) << after.err << after_theirs.err;
    EXPECT_EQ(after.out, after_theirs.out);
  }
}

TEST_F(StatusActions, CleanupLeavesWhatDuplicityLeaves) {
  const auto& s = archive();
  const std::string mine_url = copy_archive("mine"), theirs_url = copy_archive("theirs");
  damage(dir_.file("mine"), s);
  damage(dir_.file("theirs"), s);
  const std::vector<std::string> before = listing(dir_.file("mine"));

  auto listed = dupfs({"cleanup", mine_url});
  auto listed_theirs = oracle({"cleanup", theirs_url});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  ASSERT_EQ(listed_theirs.exit_code, 0) << listed_theirs.err;
  EXPECT_EQ(listing(dir_.file("mine")), before) << "deleted without --force";
  // The same files at the location are listed (duplicity's order follows its directory
  // listing; it also lists the copy of the orphaned signatures that its own cache sync just
  // made).
  auto file_lines = [&before](const std::string& out) {
    std::set<std::string> files;
    for (const auto& line : lines_of(out)) {
      if (std::binary_search(before.begin(), before.end(), line)) files.insert(line);
    }
    return files;
  };
  EXPECT_EQ(file_lines(listed.out), file_lines(listed_theirs.out)) << "dupfs:\n"
                                                                   << listed.out << "duplicity:\n"
                                                                   << listed_theirs.out;

  auto mine = dupfs({"cleanup", "--force", mine_url});
  auto theirs = oracle({"cleanup", "--force", theirs_url});
  ASSERT_EQ(mine.exit_code, 0) << mine.out << mine.err;
  ASSERT_EQ(theirs.exit_code, 0) << theirs.out << theirs.err;
  const auto left_mine = listing(dir_.file("mine"));
  EXPECT_EQ(left_mine, listing(dir_.file("theirs"))) << mine.out << theirs.out;
  // Files that are not duplicity's stay.
  EXPECT_TRUE(fs::exists(dir_.file("mine/notes.txt")));
  EXPECT_TRUE(fs::exists(dir_.file("mine/duplicity-full.garbage.vol1.difftar.gpg")));
  EXPECT_LT(left_mine.size(), before.size());

  // Nothing left to clean.
  auto again = dupfs({"cleanup", "--force", mine_url});
  ASSERT_TRUE(again.ok()) << again.err;
  EXPECT_NE(again.out.find("No extraneous files found, nothing deleted in cleanup."),
            std::string::npos)
      << again.out;
  auto status = dupfs({"collection-status", mine_url});
  auto status_theirs = oracle({"collection-status", theirs_url});
  EXPECT_EQ(archive_lines(status.out), archive_lines(status_theirs.out));
}

TEST_F(StatusActions, VerbosityAndLogFile) {
  const auto& s = archive();
  const std::string log = dir_.file("actions.log");
  auto quiet = dupfs({"remove-older-than", "-v", "error", "--log-file", log, "15D", s.url()});
  ASSERT_TRUE(quiet.ok()) << quiet.err;
  EXPECT_EQ(quiet.out, "");
  const std::string logged = read_file(log);
  EXPECT_NE(logged.find("Found old backup chain at the following time:"), std::string::npos)
      << logged;
  EXPECT_NE(logged.find("Rerun command with --force option to actually delete."), std::string::npos)
      << logged;
  // collection-status prints its report at every verbosity, as duplicity does.
  auto status = dupfs({"collection-status", "-v0", s.url()});
  ASSERT_TRUE(status.ok()) << status.err;
  EXPECT_NE(status.out.find("Found primary backup chain with matching signature chain:"),
            std::string::npos);
  EXPECT_EQ(status.out.find("Last full backup date"), std::string::npos);
  auto listed = dupfs({"list-current-files", "-v", "9", "--log-file", log, s.url()});
  ASSERT_TRUE(listed.ok()) << listed.err;
  EXPECT_NE(read_file(log).find(" docs/old/back.txt"), std::string::npos);
}

// A backup running on the same archive dir (dupfs-backup holds <archive-dir>/lockfile) must not
// see its volumes deleted as an incomplete set: --force waits for nobody and fails with
// duplicity's exit code for a held lock.
TEST_F(StatusActions, ForceRefusesWhileTheArchiveDirIsLocked) {
  const std::string url = copy_archive("locked");
  damage(dir_.file("locked"), archive());
  const auto before = listing(dir_.file("locked"));
  const std::string cache = dir_.file("lockedcache");
  fs::create_directories(cache);
  int fd = ::open((cache + "/lockfile").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"cleanup", "--force"},
        std::vector<std::string>{"remove-older-than", "15D", "--force"}}) {
    std::vector<std::string> argv = args;
    argv.insert(argv.end(), {"--archive-dir", cache, url});
    auto r = dupfs(argv);
    EXPECT_EQ(r.exit_code, 23) << describe(argv, r);
    EXPECT_NE(r.err.find("lock"), std::string::npos) << r.err;
    EXPECT_EQ(listing(dir_.file("locked")), before);
  }
  // Listing without --force needs no lock.
  auto listed = dupfs({"cleanup", "--archive-dir", cache, url});
  EXPECT_TRUE(listed.ok()) << listed.err;
  ::close(fd);
  auto r = dupfs({"cleanup", "--force", "--archive-dir", cache, url});
  EXPECT_TRUE(r.ok()) << r.err;
  EXPECT_LT(listing(dir_.file("locked")).size(), before.size());
}

TEST_F(StatusActions, BadInputIsOneLineAndExitCodeTwo) {
  const auto& s = archive();
  const std::vector<std::vector<std::string>> bad = {
      {"remove-older-than", "yesterday", s.url()},
      {"remove-older-than", "7d", s.url()},
      {"list-current-files", "--time", "2015-13-01", s.url()},
      {"remove-all-but-n-full", "0", s.url()},
      {"remove-all-inc-of-but-n-full", "two", s.url()},
      {"collection-status", "-v", "loud", s.url()},
      {"collection-status", "ftp2://nowhere/x"},
  };
  for (const auto& args : bad) {
    auto r = dupfs(args);
    EXPECT_EQ(r.exit_code, 2) << describe(args, r);
    EXPECT_EQ(lines_of(r.err).size(), 1u) << r.err;
    EXPECT_TRUE(r.err.starts_with("dupfs: ")) << r.err;
    EXPECT_EQ(listing(s.location()).size(), 21u) << "the shared archive changed";
  }
  // Nothing to list at an empty location: an error, not an empty list.
  fs::create_directories(dir_.file("empty"));
  auto r = dupfs({"list-current-files", "file://" + dir_.file("empty")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(lines_of(r.err).size(), 1u) << r.err;
  // A wrong passphrase for list-current-files.
  auto env = env_;
  env["PASSPHRASE"] = "wrong";
  auto wrong = dupfs({"list-current-files", s.url()}, env);
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_EQ(wrong.out, "");
}

}  // namespace
}  // namespace dupfs::test

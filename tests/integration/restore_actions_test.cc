// `dupfs restore` and `dupfs verify` against the real duplicity on the same archive: two chains
// made by duplicity 0.8.22 at test time (encrypted, 1 MiB volumes, incrementals with patched
// multivolume files, deletions, type changes, metadata changes), restored everything, one file
// and one directory at several times (tree equality with `duplicity restore`), verify on an
// untouched and a tampered source (same exit codes and summary line as `duplicity verify`), and
// a tampered volume (exit code 21 from both, nothing wrong left on disk).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "chain/format/names.h"
#include "tests/support/duplicity.h"
#include "tests/support/gpg_home.h"
#include "tests/support/process.h"
#include "tests/support/source_tree.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tree.h"

namespace dupfs::test {
namespace {

constexpr char kPassphrase[] = "restore actions passphrase";
constexpr int64_t kT0 = 1'700'000'000;  // duplicity --current-time of the first set
constexpr auto kTimeout = std::chrono::seconds(300);

// The archive every test reads: built once for the suite.
struct Archive {
  TempDir dir{"dupfs-restore-"};
  GpgHome gpg;
  std::map<std::string, std::string> env;
  std::vector<int64_t> times;  // of each set, in order
  std::string src;
  std::string url;

  std::string file(const std::string& rel) const { return dir.file(rel); }
};
Archive* g_archive = nullptr;

std::string line_with(const std::string& text, const std::string& start) {
  auto pos = text.find(start);
  if (pos == std::string::npos) return {};
  return text.substr(pos, text.find('\n', pos) - pos);
}

class RestoreActionsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_archive = new Archive();
    Archive& a = *g_archive;
    std::filesystem::create_directories(a.file("home"));
    a.env = {{"GNUPGHOME", a.gpg.path()},
             {"HOME", a.file("home")},
             {"PASSPHRASE", kPassphrase},
             {"XDG_CACHE_HOME", a.file("home/.cache")}};
    a.src = a.file("src");
    a.url = "file://" + a.file("out");
    make_every_kind_tree(a.src);
    make_random_text_tree(a.src + "/docs", 40, 7);
    backup("full", 0);
    // 1: a patched multivolume file, an appended text, a deletion, a new file, a mode change.
    {
      std::fstream f(a.src + "/big.bin", std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(1'500'000);
      f << "patched in set 1";
    }
    set_mtime(a.src + "/big.bin", kT0 + 1001);
    {
      std::ofstream f(a.src + "/text/a.txt", std::ios::app);
      f << "appended in set 1\n";
    }
    set_mtime(a.src + "/text/a.txt", kT0 + 1002);
    std::filesystem::remove(a.src + "/hardlink_b.txt");
    write_file(a.src + "/added.txt", "added in set 1\n");
    set_mtime(a.src + "/added.txt", kT0 + 1003);
    ::chmod((a.src + "/modes/mode0600.txt").c_str(), 0640);
    set_mtime(a.src, kT0 + 1004);
    backup("incremental", 1);
    // 2: a directory becomes a file, a symlink is retargeted, the big file shrinks.
    std::filesystem::remove_all(a.src + "/dir/sub");
    write_file(a.src + "/dir/sub", "was a directory\n");
    set_mtime(a.src + "/dir/sub", kT0 + 2001);
    set_mtime(a.src + "/dir", kT0 + 2002);
    std::filesystem::remove(a.src + "/link_to_file");
    ::symlink("empty.txt", (a.src + "/link_to_file").c_str());
    std::filesystem::resize_file(a.src + "/big.bin", 100'000);
    set_mtime(a.src + "/big.bin", kT0 + 2003);
    set_mtime(a.src, kT0 + 2004);
    backup("incremental", 2);
    // 3: a second chain.
    write_file(a.src + "/second_chain.txt", "only in the second chain\n");
    set_mtime(a.src + "/second_chain.txt", kT0 + 3001);
    set_mtime(a.src, kT0 + 3002);
    backup("full", 3);
    // 4: an edit in the second chain.
    {
      std::fstream f(a.src + "/text/a.txt", std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(2);
      f << "EDIT";
    }
    set_mtime(a.src + "/text/a.txt", kT0 + 4001);
    backup("incremental", 4);
  }
  static void TearDownTestSuite() {
    delete g_archive;
    g_archive = nullptr;
  }

  static void backup(const std::string& action, int step) {
    Archive& a = *g_archive;
    int64_t t = kT0 + step * 1000 + 500;
    auto r = duplicity({action, "--archive-dir", a.file("dupcache"), "--volsize", "1",
                        "--current-time", std::to_string(t), a.src, a.url},
                       a.env, kTimeout);
    ASSERT_TRUE(r.ok()) << describe({"duplicity", action}, r);
    a.times.push_back(t);
  }

  Archive& a() { return *g_archive; }

  // dupfs <action> args... with the archive's environment.
  ProcessResult dupfs(const std::vector<std::string>& args) {
    std::vector<std::string> argv{DUPFS_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, a().env, kTimeout);
  }

  // dupfs restore and duplicity restore of the same thing into dir/ours and dir/theirs.
  void expect_same_restore(const TempDir& dir, const std::string& time,
                           const std::string& path = "") {
    SCOPED_TRACE("time " + time + " path '" + path + "'");
    std::vector<std::string> extra{"--archive-dir", a().file("dupcache")};
    std::vector<std::string> ours{"restore", "--archive-dir", dir.file("dupfscache"), "--time",
                                  time};
    if (!path.empty()) {
      extra.insert(extra.end(), {"--file-to-restore", path});
      ours.insert(ours.end(), {"--file-to-restore", path});
    }
    // The targets sit in directories of their own, so a single restored file can be scanned.
    std::filesystem::create_directories(dir.file("ours"));
    std::filesystem::create_directories(dir.file("theirs"));
    ours.insert(ours.end(), {a().url, dir.file("ours/target")});
    auto d = duplicity_restore(a().url, dir.file("theirs/target"), time, extra, a().env, kTimeout);
    ASSERT_TRUE(d.ok()) << describe({"duplicity", "restore"}, d);
    auto r = dupfs(ours);
    ASSERT_TRUE(r.ok()) << describe(ours, r);
    DiffOptions o;
    o.ignore_root_mtime = true;  // the test's own directories
    EXPECT_TRUE(trees_match(scan_tree(dir.file("theirs")), scan_tree(dir.file("ours")), o));
  }
};

TEST_F(RestoreActionsTest, EverythingAtEveryTimeEqualsDuplicity) {
  ASSERT_EQ(a().times.size(), 5u);
  for (int64_t t : a().times) {
    TempDir dir("dupfs-restore-all-");
    expect_same_restore(dir, std::to_string(t));
  }
  // Between two sets, and a time spec duplicity parses (interval: the latest set).
  TempDir between("dupfs-restore-between-");
  expect_same_restore(between, std::to_string(a().times[1] + 10));
  TempDir latest("dupfs-restore-latest-");
  expect_same_restore(latest, "now");
}

TEST_F(RestoreActionsTest, OneFileAndOneDirectoryAtSeveralTimesEqualDuplicity) {
  for (size_t i : {0u, 1u, 2u}) {
    TempDir f("dupfs-restore-file-");
    expect_same_restore(f, std::to_string(a().times[i]), "big.bin");  // patched, multivol
  }
  for (size_t i : {0u, 2u, 4u}) {
    TempDir d("dupfs-restore-dir-");
    expect_same_restore(d, std::to_string(a().times[i]), "dir");
  }
  TempDir t("dupfs-restore-text-");
  expect_same_restore(t, std::to_string(a().times[4]), "text/a.txt");
  TempDir s("dupfs-restore-link-");
  expect_same_restore(s, std::to_string(a().times[2]), "link_to_file");
}

TEST_F(RestoreActionsTest, MissingPathAndExistingTargetAsDuplicity) {
  TempDir dir("dupfs-restore-errors-");
  auto r = dupfs(
      {"restore", "--archive-dir", dir.file("c"), "-r", "no/such/file", a().url, dir.file("x")});
  EXPECT_EQ(r.exit_code, 19) << describe({"dupfs", "restore"}, r);
  EXPECT_NE(r.err.find("no/such/file not found in archive"), std::string::npos) << r.err;
  auto d = duplicity_restore(a().url, dir.file("y"), "",
                             {"--archive-dir", a().file("dupcache"), "-r", "no/such/file"}, a().env,
                             kTimeout);
  EXPECT_EQ(d.exit_code, 19);

  std::filesystem::create_directories(dir.file("full"));
  write_file(dir.file("full/keep.txt"), "x");
  r = dupfs({"restore", "--archive-dir", dir.file("c"), a().url, dir.file("full")});
  EXPECT_EQ(r.exit_code, 11) << describe({"dupfs", "restore"}, r);
  EXPECT_EQ(read_file(dir.file("full/keep.txt")), "x");
  r = dupfs({"restore", "--force", "--archive-dir", dir.file("c"), "-t",
             std::to_string(a().times[2]), a().url, dir.file("full")});
  ASSERT_TRUE(r.ok()) << describe({"dupfs", "restore", "--force"}, r);
  std::filesystem::remove(dir.file("full/keep.txt"));
  auto theirs = duplicity_restore(a().url, dir.file("theirs"), std::to_string(a().times[2]),
                                  {"--archive-dir", a().file("dupcache")}, a().env, kTimeout);
  ASSERT_TRUE(theirs.ok());
  DiffOptions o;
  o.ignore_root_mtime = true;  // removing keep.txt touched it
  EXPECT_TRUE(trees_match(scan_tree(dir.file("theirs")), scan_tree(dir.file("full")), o));
}

TEST_F(RestoreActionsTest, VerifyUntouchedAndTamperedSourceAsDuplicity) {
  auto verify_both = [&](const std::string& local, bool compare_data, int want_exit,
                         const std::string& want_line) {
    SCOPED_TRACE(local + (compare_data ? " --compare-data" : ""));
    std::vector<std::string> ours{"verify", "--archive-dir", a().file("dupfscache")};
    std::vector<std::string> theirs{"verify", "--archive-dir", a().file("dupcache")};
    if (compare_data) {
      ours.push_back("--compare-data");
      theirs.push_back("--compare-data");
    }
    ours.insert(ours.end(), {a().url, local});
    theirs.insert(theirs.end(), {a().url, local});
    auto r = dupfs(ours);
    auto d = duplicity(theirs, a().env, kTimeout);
    EXPECT_EQ(r.exit_code, want_exit) << describe(ours, r);
    EXPECT_EQ(d.exit_code, want_exit) << describe(theirs, d);
    std::string summary = line_with(r.out, "Verify complete:");
    EXPECT_FALSE(summary.empty()) << r.out;
    EXPECT_EQ(summary, line_with(d.out, "Verify complete:"));
    if (!want_line.empty()) {
      EXPECT_NE(r.out.find(want_line), std::string::npos) << r.out;
      EXPECT_NE(d.out.find(want_line), std::string::npos) << d.out;
    }
  };
  verify_both(a().src, true, 0, ", 0 differences found.");
  verify_both(a().src, false, 0, "");
  // An older set of the first chain: its manifests, volumes and signature files (checked beyond
  // duplicity, docs/actions.md) are intact, and the second chain is no reason to fail; run twice,
  // the second time with the manifests cached by the first.
  for (int run_number = 0; run_number < 2; ++run_number) {
    std::vector<std::string> older{
        "verify", "--archive-dir", a().file("dupfscache-older"), "-t", std::to_string(a().times[1]),
        a().url,  a().src};
    auto r = dupfs(older);
    EXPECT_EQ(r.exit_code, 0) << describe(older, r);
    EXPECT_EQ(r.err, "") << describe(older, r);
  }

  TempDir dir("dupfs-verify-");
  std::string copy = dir.file("tampered");
  auto cp = run({"cp", "-a", a().src, copy});
  ASSERT_TRUE(cp.ok()) << describe({"cp"}, cp);
  // Same length, same mtime, other bytes: only the data comparison can see it.
  struct stat st;
  ASSERT_EQ(::stat((copy + "/text/a.txt").c_str(), &st), 0);
  {
    std::fstream f(copy + "/text/a.txt", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f << "XY";
  }
  set_mtime(copy + "/text/a.txt", st.st_mtime);
  verify_both(copy, true, 1, "Difference found: Data for file text/a.txt is different");
  verify_both(copy, false, 0, ", 0 differences found.");
  // A changed mtime, an extra file.
  set_mtime(copy + "/docs", 12345);
  write_file(copy + "/extra.txt", "extra");
  set_mtime(copy, st.st_mtime);  // keep the root's own metadata out of it
  ASSERT_EQ(::stat(a().src.c_str(), &st), 0);
  set_mtime(copy, st.st_mtime);
  verify_both(copy, true, 1, "Difference found: New file extra.txt");
}

TEST_F(RestoreActionsTest, ProgressIsQuietOffATerminalAndNoticesReachTheLogFile) {
  TempDir dir("dupfs-restore-progress-");
  auto r = dupfs({"restore", "--progress", "-v", "info", "--archive-dir", dir.file("c"), a().url,
                  dir.file("ours")});
  ASSERT_TRUE(r.ok()) << describe({"dupfs", "restore", "--progress"}, r);
  EXPECT_EQ(r.out, "");  // stdout is a pipe here
  std::string log = dir.file("verify.log");
  auto v = dupfs({"verify", "--compare-data", "--progress", "--log-file", log, "--archive-dir",
                  dir.file("c"), a().url, a().src});
  ASSERT_TRUE(v.ok()) << describe({"dupfs", "verify"}, v);
  EXPECT_EQ(line_with(v.out, "Verify complete:") + "\n", v.out);  // no progress line
  EXPECT_NE(read_file(log).find(line_with(v.out, "Verify complete:")), std::string::npos)
      << read_file(log);
}

// On a terminal (script(1) gives one), --progress shows the progress line, ending with the
// totals: bytes, files, rate, share of volumes and ETA.
TEST_F(RestoreActionsTest, ProgressLineOnATerminal) {
  TempDir dir("dupfs-restore-tty-");
  std::string command = std::string(DUPFS_BINARY) + " restore --progress --archive-dir " +
                        dir.file("c") + " " + a().url + " " + dir.file("ours");
  auto r = run({"script", "-qec", command, "/dev/null"}, a().env, kTimeout);
  ASSERT_TRUE(r.ok()) << describe({"script", command}, r);
  // The terminal turns the final "\n" into "\r\n": the last line is what follows the last
  // carriage return before it.
  std::string out = r.out.substr(0, r.out.find_last_not_of("\r\n") + 1);
  std::string last = out.substr(out.rfind('\r') + 1);
  EXPECT_NE(last.find(" restored, "), std::string::npos) << r.out;
  EXPECT_NE(last.find(" files, "), std::string::npos) << r.out;
  EXPECT_NE(last.find("/s, 100% of volumes, ETA 0:00"), std::string::npos) << r.out;
  EXPECT_TRUE(std::filesystem::exists(dir.file("ours/big.bin")));
}

TEST_F(RestoreActionsTest, TamperedVolumeExits21AndLeavesNothingWrong) {
  TempDir dir("dupfs-tampered-");
  auto cp = run({"cp", "-a", a().file("out"), dir.file("out")});
  ASSERT_TRUE(cp.ok());
  std::string victim;
  for (const auto& e : std::filesystem::directory_iterator(dir.file("out"))) {
    std::string n = e.path().filename().string();
    if (n.find("duplicity-full.") == 0 && n.find(".vol2.difftar") != std::string::npos) {
      victim = e.path().string();
    }
  }
  ASSERT_FALSE(victim.empty());
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(300'000);
    f << "this text was written over the volume";
  }
  std::string url = "file://" + dir.file("out");
  std::string t = std::to_string(a().times[0]);
  auto r = dupfs({"restore", "--archive-dir", dir.file("c1"), "-t", t, url, dir.file("ours")});
  EXPECT_EQ(r.exit_code, 21) << describe({"dupfs", "restore"}, r);
  std::string name = std::filesystem::path(victim).filename().string();
  EXPECT_NE(r.err.find(name), std::string::npos) << r.err;
  auto d = duplicity_restore(url, dir.file("theirs"), t, {"--archive-dir", dir.file("c2")}, a().env,
                             kTimeout);
  EXPECT_EQ(d.exit_code, 21) << describe({"duplicity", "restore"}, d);

  // Whatever dupfs left behind is exactly what an intact restore holds.
  auto good = duplicity_restore(a().url, dir.file("good"), t,
                                {"--archive-dir", a().file("dupcache")}, a().env, kTimeout);
  ASSERT_TRUE(good.ok());
  Tree want = scan_tree(dir.file("good"));
  if (std::filesystem::exists(dir.file("ours"))) {
    for (const auto& [path, e] : scan_tree(dir.file("ours"))) {
      if (e.type != 'f') continue;
      ASSERT_TRUE(want.contains(path)) << path;
      EXPECT_EQ(e.sha256_hex, want.at(path).sha256_hex) << path;
    }
  }

  auto v = dupfs({"verify", "--archive-dir", dir.file("c1"), "-t", t, url, a().src});
  EXPECT_EQ(v.exit_code, 21) << describe({"dupfs", "verify"}, v);
  EXPECT_NE(v.err.find(name), std::string::npos) << v.err;
}

}  // namespace
}  // namespace dupfs::test

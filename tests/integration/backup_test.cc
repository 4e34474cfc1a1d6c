// dupfs-backup against the real duplicity (0.8.22, the oracle): sets written by build/dupfs-backup
// are restored by `duplicity restore`, checked by `duplicity verify --compare-data`, continued by
// `duplicity incremental`, and mounted by build/dupfs; every result is compared with the source
// as it was when the set was made.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
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
constexpr int64_t kMtime = 1'600'000'000;

class BackupTest : public ::testing::Test {
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
    url_ = "file://" + dir_.file("out");
  }

  // build/dupfs-backup [action] [options] --volsize 1 src url.
  void dupfs_backup(const std::vector<std::string>& options, const std::string& action = "") {
    std::vector<std::string> argv{DUPFS_BACKUP_BINARY};
    if (!action.empty()) argv.push_back(action);
    argv.insert(argv.end(), {"--volsize", "1", "--archive-dir", dir_.file("dupfscache")});
    argv.insert(argv.end(), options.begin(), options.end());
    argv.push_back(src_);
    argv.push_back(url_);
    auto r = run(argv, env_, std::chrono::seconds(600));
    ASSERT_TRUE(r.ok()) << describe(argv, r);
    EXPECT_NE(r.out.find("[ Backup Statistics ]"), std::string::npos) << r.out;
    record_set();
  }

  // duplicity full|incremental [options] --volsize 1 src url.
  void duplicity_backup(const std::string& action, const std::vector<std::string>& options) {
    std::vector<std::string> args{action, "--archive-dir", dir_.file("dupcache"), "--volsize", "1"};
    args.insert(args.end(), options.begin(), options.end());
    args.push_back(src_);
    args.push_back(url_);
    auto r = duplicity(args, env_);
    ASSERT_TRUE(r.ok()) << describe({"duplicity", action}, r);
    record_set();
  }

  // Remembers the newest set's time and the source as it is now.
  void record_set() {
    int64_t newest = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir_.file("out"))) {
      auto p = chain::parse_name(e.path().filename().string());
      if (!p || !p->manifest) continue;
      newest = std::max(newest, p->type == chain::FileType::kFull ? p->time : p->end_time);
    }
    ASSERT_GT(newest, 0);
    ASSERT_TRUE(expected_.empty() || expected_.back().first < newest);
    expected_.emplace_back(newest, scan_tree(src_));
  }

  Tree restore(int64_t time, const std::string& target_name,
               const std::vector<std::string>& extra = {}) {
    std::string target = dir_.file(target_name);
    std::vector<std::string> opts{"--archive-dir", dir_.file("dupcache")};
    opts.insert(opts.end(), extra.begin(), extra.end());
    auto r = duplicity_restore(url_, target, std::to_string(time), opts, env_);
    EXPECT_TRUE(r.ok()) << describe({"duplicity", "restore", std::to_string(time)}, r);
    if (!r.ok()) return {};
    return scan_tree(target);
  }

  // Every recorded set: duplicity's restore at its time equals the source as it was.
  void expect_every_set_restores(const std::vector<std::string>& extra = {}) {
    for (size_t i = 0; i < expected_.size(); ++i) {
      SCOPED_TRACE("set " + std::to_string(i) + " at " + std::to_string(expected_[i].first));
      Tree got = restore(expected_[i].first, "restored" + std::to_string(i), extra);
      EXPECT_TRUE(trees_match(expected_[i].second, got, DiffOptions::duplicity_restore()));
    }
  }

  void expect_verify_passes(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"verify", "--compare-data", "--archive-dir",
                                  dir_.file("dupcache")};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(url_);
    args.push_back(src_);
    auto r = duplicity(args, env_);
    EXPECT_TRUE(r.ok()) << describe({"duplicity", "verify", "--compare-data"}, r);
    EXPECT_NE(r.out.find(", 0 differences found"), std::string::npos) << r.out;
  }

  // Every recorded set through `dupfs mount`: /snapshots/<T>/ equals the source as it was.
  void expect_mount_shows_every_set() {
    std::vector<std::string> args{"--cache-size", "64M", "--archive-dir", dir_.file("dupfscache")};
    Mounted m(url_, dir_.file("mnt"), dir_.file("mount.log"), args, env_);
    ASSERT_TRUE(m.ok()) << "mount failed: " << m.log();
    for (const auto& [time, tree] : expected_) {
      SCOPED_TRACE("snapshot " + chain::snapshot_dir_name(time));
      std::string snap = dir_.file("mnt/snapshots/" + chain::snapshot_dir_name(time));
      EXPECT_TRUE(trees_match(tree, scan_tree(snap), DiffOptions::duplicity_restore()));
    }
    EXPECT_EQ(m.unmount(), 0) << m.log();
  }

  std::vector<std::string> stored_names() {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir_.file("out"))) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string path(std::string_view rel) const { return src_ + "/" + std::string(rel); }

  TempDir dir_{"dupfs-backup-"};
  GpgHome gpg_;
  std::string src_;
  std::string url_;
  std::map<std::string, std::string> env_;
  std::vector<std::pair<int64_t, Tree>> expected_;
};

// ---------------------------------------------------------------------------------------------
// Stage 1: full sets.

TEST_F(BackupTest, SymmetricFullRestoresVerifiesAndMounts) {
  make_every_kind_tree(src_);
  dupfs_backup({});
  auto names = stored_names();
  ASSERT_GE(names.size(), 5u);  // > 3 volumes of 1 MiB, signatures, manifest
  for (const auto& n : names) EXPECT_TRUE(n.ends_with(".gpg")) << n;
  expect_every_set_restores();
  expect_verify_passes();
  expect_mount_shows_every_set();
}

TEST_F(BackupTest, GzipFullRestoresVerifiesAndMounts) {
  make_every_kind_tree(src_);
  dupfs_backup({"--no-encryption"});
  for (const auto& n : stored_names()) {
    EXPECT_TRUE(n.ends_with(".gz") || n.ends_with(".manifest")) << n;
  }
  expect_every_set_restores({"--no-encryption"});
  expect_verify_passes({"--no-encryption"});
  expect_mount_shows_every_set();
}

TEST_F(BackupTest, PlainFullRestoresVerifiesAndMounts) {
  make_every_kind_tree(src_);
  dupfs_backup({"--no-encryption", "--no-compression"});
  for (const auto& n : stored_names()) {
    EXPECT_TRUE(n.ends_with(".difftar") || n.ends_with(".sigtar") || n.ends_with(".manifest")) << n;
  }
  expect_every_set_restores({"--no-encryption"});
  expect_verify_passes({"--no-encryption"});
  expect_mount_shows_every_set();
}

TEST_F(BackupTest, BadInputIsOneLineAndNonZero) {
  auto r = run({DUPFS_BACKUP_BINARY, "sideways", src_, url_}, env_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown action"), std::string::npos) << r.err;
  r = run({DUPFS_BACKUP_BINARY, "incremental", "--no-encryption", src_, url_}, env_);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("incremental"), std::string::npos) << r.err;
  r = run({DUPFS_BACKUP_BINARY, "--full-if-older-than", "soon", src_, url_}, env_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad time string"), std::string::npos) << r.err;
  // No passphrase and no terminal: refused before anything is written.
  auto no_pass = env_;
  no_pass.erase("PASSPHRASE");
  r = run({DUPFS_BACKUP_BINARY, src_, url_}, no_pass, std::chrono::seconds(60), "", {"PASSPHRASE"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("passphrase"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_.file("out")) &&
               !std::filesystem::is_empty(dir_.file("out")));
}

TEST_F(BackupTest, PassphraseIsAskedTwiceOnATerminal) {
  write_file(path("a.txt"), "asked on a terminal\n");
  auto no_pass = env_;
  no_pass.erase("PASSPHRASE");
  // script(1) gives dupfs-backup a terminal; the answers are typed after the prompts (input
  // typed ahead is discarded when echo is turned off, as getpass does).
  const auto typed = [&](const std::string& command, const std::string& first,
                         const std::string& second) {
    std::string shell = "(sleep 1; printf '%s\\n' '" + first + "'; sleep 1; printf '%s\\n' '" +
                        second + "') | script -qec '" + command + "' /dev/null";
    return run({"sh", "-c", shell}, no_pass, std::chrono::seconds(300), "", {"PASSPHRASE"});
  };
  std::string command = std::string(DUPFS_BACKUP_BINARY) + " --archive-dir " +
                        dir_.file("dupfscache") + " " + src_ + " " + url_;
  auto r = typed(command, "typed secret", "typed secret");
  ASSERT_TRUE(r.ok()) << describe({"script", command}, r);
  EXPECT_NE(r.out.find("GnuPG passphrase"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("typed secret"), std::string::npos) << "the passphrase was echoed";
  record_set();
  env_["PASSPHRASE"] = "typed secret";
  expect_every_set_restores();
  // Two different answers: refused, nothing stored.
  std::string other = "file://" + dir_.file("other");
  command = std::string(DUPFS_BACKUP_BINARY) + " " + src_ + " " + other;
  r = typed(command, "one", "two");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("do not match"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir_.file("other")));
}

TEST_F(BackupTest, OneRunAtATimePerArchiveDir) {
  write_file(path("a.txt"), "a\n");
  std::filesystem::create_directories(dir_.file("dupfscache"));
  int fd = ::open(dir_.file("dupfscache/lockfile").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  auto r = run({DUPFS_BACKUP_BINARY, "--archive-dir", dir_.file("dupfscache"), src_, url_}, env_);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("another dupfs-backup"), std::string::npos) << r.err;
  ::close(fd);
  dupfs_backup({});
  expect_every_set_restores();
}

// ---------------------------------------------------------------------------------------------
// Stage 2: incrementals.

// One change of every kind an incremental carries, applied at step `step` (1-based).
void change_source(const std::string& src, int step) {
  const auto p = [&](std::string_view rel) { return src + "/" + std::string(rel); };
  const int64_t t = kMtime + step * 1000;
  switch (step) {
    case 1:  // grow, shrink, truncate; a new file; chmod only; touch only
      write_file(p("grow.txt"), pseudo_random_bytes(300000, 1) + "appended");
      set_mtime(p("grow.txt"), t);
      write_file(p("shrink.bin"), pseudo_random_bytes(1500000, 2).substr(0, 700000));
      set_mtime(p("shrink.bin"), t);
      write_file(p("truncate.txt"), "");
      set_mtime(p("truncate.txt"), t);
      write_file(p("new.txt"), "new in step 1\n");
      set_mtime(p("new.txt"), t);
      ::chmod(p("chmod.txt").c_str(), 0600);
      set_mtime(p("touch.txt"), t);
      break;
    case 2: {  // type changes, a retargeted symlink, a big edit in the middle (multivol delta)
      std::filesystem::remove(p("file_to_dir"));
      std::filesystem::create_directory(p("file_to_dir"));
      write_file(p("file_to_dir/inside.txt"), "inside\n");
      set_mtime(p("file_to_dir/inside.txt"), t);
      set_mtime(p("file_to_dir"), t);
      std::filesystem::remove_all(p("dir_to_file"));
      write_file(p("dir_to_file"), "was a directory\n");
      set_mtime(p("dir_to_file"), t);
      std::filesystem::remove(p("link_to_file"));
      write_file(p("link_to_file"), "was a symlink\n");
      set_mtime(p("link_to_file"), t);
      std::filesystem::remove(p("fifo_to_dir"));
      std::filesystem::create_directory(p("fifo_to_dir"));
      set_mtime(p("fifo_to_dir"), t);
      std::filesystem::remove(p("retarget"));
      ::symlink("new/target", p("retarget").c_str());
      std::string big = read_file(p("big.bin"));
      std::string middle = pseudo_random_bytes(200000, 77);
      big.replace(1000000, middle.size(), middle);
      write_file(p("big.bin"), big);
      set_mtime(p("big.bin"), t);
      break;
    }
    case 3:  // deletions: a file, a whole tree; an owner change; exactly 64 KiB of new data
      std::filesystem::remove(p("new.txt"));
      std::filesystem::remove_all(p("tree"));
      ::lchown(p("grow.txt").c_str(), 12345, 54321);
      write_file(p("exact.bin"), pseudo_random_bytes(65536, 3));
      set_mtime(p("exact.bin"), t);
      break;
    case 4:  // re-creation of what was deleted, as something else; a device's numbers change
      write_file(p("tree"), "tree is a file now\n");
      set_mtime(p("tree"), t);
      std::filesystem::create_directory(p("new.txt"));
      set_mtime(p("new.txt"), t);
      std::filesystem::remove(p("dev"));
      ::mknod(p("dev").c_str(), S_IFCHR | 0644, makedev(1, 5));
      set_mtime(p("dev"), kMtime);
      break;
    default:  // nothing changes: an empty incremental
      break;
  }
  set_mtime(src, t);
}

void make_change_tree(const std::string& src) {
  const auto p = [&](std::string_view rel) { return src + "/" + std::string(rel); };
  write_file(p("grow.txt"), pseudo_random_bytes(300000, 1));
  write_file(p("shrink.bin"), pseudo_random_bytes(1500000, 2));
  write_file(p("truncate.txt"), "will be emptied\n");
  write_file(p("chmod.txt"), "mode changes\n");
  write_file(p("touch.txt"), "mtime changes\n");
  write_file(p("keep.txt"), "never changes\n");
  write_file(p("file_to_dir"), "becomes a directory\n");
  std::filesystem::create_directory(p("dir_to_file"));
  write_file(p("dir_to_file/child"), "child\n");
  ::symlink("keep.txt", p("link_to_file").c_str());
  ::mkfifo(p("fifo_to_dir").c_str(), 0644);
  ::symlink("old/target", p("retarget").c_str());
  write_file(p("big.bin"), pseudo_random_bytes(2500000, 5));
  std::filesystem::create_directories(p("tree/sub/deeper"));
  write_file(p("tree/a"), "a\n");
  write_file(p("tree/sub/deeper/b"), "b\n");
  ::mknod(p("dev").c_str(), S_IFCHR | 0644, makedev(1, 3));
  for (const char* rel :
       {"grow.txt", "shrink.bin", "truncate.txt", "chmod.txt", "touch.txt", "keep.txt",
        "file_to_dir", "dir_to_file/child", "dir_to_file", "fifo_to_dir", "big.bin", "tree/a",
        "tree/sub/deeper/b", "tree/sub/deeper", "tree/sub", "tree", "dev"}) {
    set_mtime(p(rel), kMtime);
  }
  set_mtime(src, kMtime);
}

TEST_F(BackupTest, IncrementalChainEverySetRestores) {
  make_change_tree(src_);
  dupfs_backup({"--no-encryption"}, "full");
  for (int step = 1; step <= 5; ++step) {
    change_source(src_, step);
    dupfs_backup({"--no-encryption"}, step == 5 ? "" : "incremental");
  }
  ASSERT_EQ(expected_.size(), 6u);
  expect_every_set_restores({"--no-encryption"});
  expect_verify_passes({"--no-encryption"});
  expect_mount_shows_every_set();
}

TEST_F(BackupTest, SymmetricIncrementalsOfEveryKindTree) {
  make_every_kind_tree(src_);
  dupfs_backup({});
  write_file(path(every_kind::kTextFile), "changed text\n");
  set_mtime(path(every_kind::kTextFile), kMtime + 5);
  std::filesystem::remove(path(every_kind::kEmptyFile));
  dupfs_backup({}, "incremental");
  std::string big = read_file(path(every_kind::kBigFile));
  big += "grown";
  write_file(path(every_kind::kBigFile), big);
  set_mtime(path(every_kind::kBigFile), kMtime + 6);
  dupfs_backup({}, "incremental");
  expect_every_set_restores();
  expect_verify_passes();
  expect_mount_shows_every_set();
}

TEST_F(BackupTest, TakingTurnsWithDuplicity) {
  make_change_tree(src_);
  duplicity_backup("full", {});
  change_source(src_, 1);
  dupfs_backup({}, "incremental");
  change_source(src_, 2);
  duplicity_backup("incremental", {});
  change_source(src_, 3);
  dupfs_backup({}, "incremental");
  change_source(src_, 4);
  duplicity_backup("incremental", {});
  ASSERT_EQ(expected_.size(), 5u);
  expect_every_set_restores();
  expect_verify_passes();
  expect_mount_shows_every_set();
}

TEST_F(BackupTest, FullIfOlderThanStartsANewChain) {
  make_change_tree(src_);
  dupfs_backup({"--no-encryption"});
  change_source(src_, 1);
  dupfs_backup({"--no-encryption", "--full-if-older-than", "1Y"});  // recent full: incremental
  sleep(2);
  change_source(src_, 2);
  dupfs_backup({"--no-encryption", "--full-if-older-than", "1s"});  // a new full
  int fulls = 0, incs = 0;
  for (const auto& n : stored_names()) {
    if (n.ends_with(".manifest")) (n.starts_with("duplicity-full.") ? fulls : incs)++;
  }
  EXPECT_EQ(fulls, 2);
  EXPECT_EQ(incs, 1);
  expect_every_set_restores({"--no-encryption"});
}

// ---------------------------------------------------------------------------------------------
// Stage 3: public keys, selection, interrupted runs.

TEST_F(BackupTest, PublicKeyFullAndIncrementalRestore) {
  std::string fpr = gpg_.generate_key("dupfs test <test@example.invalid>");
  env_["PASSPHRASE"] = "";
  make_every_kind_tree(src_);
  dupfs_backup({"--encrypt-key", fpr});
  write_file(path(every_kind::kTextFile), "changed under a public key\n");
  set_mtime(path(every_kind::kTextFile), kMtime + 9);
  dupfs_backup({"--encrypt-key", fpr}, "incremental");
  for (const auto& n : stored_names()) EXPECT_TRUE(n.ends_with(".gpg")) << n;
  expect_every_set_restores();
  expect_verify_passes();
  expect_mount_shows_every_set();
}

TEST_F(BackupTest, SignedSetsPassDuplicitysSignatureCheck) {
  std::string fpr = gpg_.generate_key("dupfs signer <signer@example.invalid>");
  env_["PASSPHRASE"] = "";
  make_change_tree(src_);
  dupfs_backup({"--encrypt-key", fpr, "--sign-key", fpr});
  // duplicity --sign-key on restore: every volume must carry a good signature by that key.
  expect_every_set_restores({"--sign-key", fpr.substr(fpr.size() - 16)});
}

TEST_F(BackupTest, SelectionMatchesDuplicity) {
  make_change_tree(src_);
  std::filesystem::create_directories(path("tree/skip"));
  write_file(path("tree/skip/x.tmp"), "x");
  write_file(path("tree/keep.tmp"), "k");
  // Order matters: the first matching rule wins.
  const std::vector<std::vector<std::string>> cases = {
      {"--exclude", "**.tmp", "--exclude", src_ + "/big.bin"},
      {"--include", src_ + "/tree/keep.tmp", "--exclude", "**.tmp"},
      {"--exclude", "**.tmp", "--include", src_ + "/tree/keep.tmp", "--exclude",
       src_ + "/tree/sub"},
      {"--include", src_ + "/tree", "--include", src_ + "/keep.txt", "--exclude", "**"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    std::string ours = "file://" + dir_.file("ours" + std::to_string(i));
    std::string theirs = "file://" + dir_.file("theirs" + std::to_string(i));
    std::vector<std::string> argv{DUPFS_BACKUP_BINARY, "--no-encryption", "--archive-dir",
                                  dir_.file("c" + std::to_string(i))};
    argv.insert(argv.end(), cases[i].begin(), cases[i].end());
    argv.push_back(src_);
    argv.push_back(ours);
    auto r = run(argv, env_);
    ASSERT_TRUE(r.ok()) << describe(argv, r);
    std::vector<std::string> dargs{"full", "--no-encryption", "--archive-dir",
                                   dir_.file("d" + std::to_string(i))};
    dargs.insert(dargs.end(), cases[i].begin(), cases[i].end());
    dargs.push_back(src_);
    dargs.push_back(theirs);
    auto d = duplicity(dargs, env_);
    ASSERT_TRUE(d.ok()) << describe({"duplicity", "full"}, d);
    std::string t1 = dir_.file("r-ours" + std::to_string(i));
    std::string t2 = dir_.file("r-theirs" + std::to_string(i));
    auto a = duplicity_restore(ours, t1, "", {"--no-encryption"}, env_);
    ASSERT_TRUE(a.ok()) << describe({"restore", ours}, a);
    auto b = duplicity_restore(theirs, t2, "", {"--no-encryption"}, env_);
    ASSERT_TRUE(b.ok()) << describe({"restore", theirs}, b);
    EXPECT_TRUE(trees_match(scan_tree(t2), scan_tree(t1)));
  }
}

// Runs dupfs-backup and kills it (SIGKILL) right after it stored an object whose name holds
// `fragment`.
void killed_backup(const std::vector<std::string>& argv, std::map<std::string, std::string> env,
                   const std::string& fragment) {
  env["DUPFS_BACKUP_TEST_KILL_AFTER"] = fragment;
  auto r = run(argv, env, std::chrono::seconds(600));
  EXPECT_EQ(r.exit_code, 128 + SIGKILL) << describe(argv, r);
}

TEST_F(BackupTest, InterruptedRunsLeaveEveryCompleteSetRestorable) {
  make_change_tree(src_);
  const std::vector<std::string> base{DUPFS_BACKUP_BINARY, "--volsize", "1", "--archive-dir",
                                      dir_.file("dupfscache")};
  auto argv_for = [&](const std::string& action) {
    std::vector<std::string> argv = base;
    if (!action.empty()) argv.insert(argv.begin() + 1, action);
    argv.push_back(src_);
    argv.push_back(url_);
    return argv;
  };
  // A first full killed after its first volume: nothing complete yet.
  killed_backup(argv_for("full"), env_, ".vol1.");
  dupfs_backup({});  // a full again (no chain), leftovers deleted
  change_source(src_, 1);
  // Killed after the first volume, then after the signature file (the manifest never lands).
  killed_backup(argv_for("incremental"), env_, ".vol1.");
  change_source(src_, 2);
  killed_backup(argv_for("incremental"), env_, "signatures");
  dupfs_backup({}, "incremental");
  // duplicity continues the chain: its signature chain still matches.
  change_source(src_, 3);
  duplicity_backup("incremental", {});
  change_source(src_, 4);
  killed_backup(argv_for(""), env_, "signatures");
  dupfs_backup({});
  ASSERT_EQ(expected_.size(), 4u);
  // No leftovers: every set is complete, every signature file belongs to one.
  for (const auto& n : stored_names()) {
    EXPECT_EQ(n.find(".dupfs-tmp."), std::string::npos) << n;
  }
  auto col = run(
      {kDuplicityBinary, "collection-status", "--archive-dir", dir_.file("dupcache"), url_}, env_);
  EXPECT_TRUE(col.ok()) << col.err;
  EXPECT_NE(col.out.find("No orphaned or incomplete backup sets found."), std::string::npos)
      << col.out;
  expect_every_set_restores();
  expect_verify_passes();
  expect_mount_shows_every_set();
}

// SIGKILL at random moments (issue 7): fulls and incrementals of several volumes each, killed
// after a random delay up to a little more than a whole run takes. After every kill duplicity's
// collection-status finds nothing orphaned or incomplete that dupfs-backup left unexplained, the
// mount shows every set completed so far exactly as the source was; at the end a normal run
// succeeds and duplicity restores and verifies every set.
TEST_F(BackupTest, RandomlyKilledRunsNeverDamageTheChain) {
  make_change_tree(src_);
  auto started = std::chrono::steady_clock::now();
  dupfs_backup({});
  const auto whole_run = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  std::mt19937 rng(20261126);
  auto manifests = [&] {
    int n = 0;
    for (const auto& name : stored_names()) n += name.find(".manifest") != std::string::npos;
    return n;
  };
  int completed = 0;
  for (int trial = 0; trial < 10; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    // Over a volume of new data for every run.
    std::string p = path("trial" + std::to_string(trial) + ".bin");
    write_file(p, pseudo_random_bytes(1200000, 100 + trial));
    set_mtime(p, kMtime + 100 + trial);
    const int before = manifests();
    const auto delay = std::chrono::milliseconds(
        std::uniform_int_distribution<int64_t>(20, whole_run.count() * 6 / 5 + 20)(rng));
    std::vector<std::string> argv{DUPFS_BACKUP_BINARY,
                                  trial % 4 == 3 ? "full" : "incremental",
                                  "--volsize",
                                  "1",
                                  "--archive-dir",
                                  dir_.file("dupfscache"),
                                  src_,
                                  url_};
    sleep(1);  // a new set needs a new second
    {
      Background b(argv, dir_.file("killed.log"), env_);
      std::this_thread::sleep_for(delay);
      b.signal(SIGKILL);
      ASSERT_TRUE(wait_until([&] { return !b.running(); }, std::chrono::seconds(30)));
    }
    if (manifests() > before) {  // the run finished before the kill
      ++completed;
      record_set();
    }
    auto col =
        run({kDuplicityBinary, "collection-status", "--archive-dir", dir_.file("dupcache"), url_},
            env_);
    EXPECT_TRUE(col.ok()) << describe({"duplicity", "collection-status"}, col);
    expect_mount_shows_every_set();
  }
  std::cout << "[ killed   ] 10 runs killed after 20 ms to " << whole_run.count() * 6 / 5 + 20
            << " ms; " << completed << " finished before the kill\n";
  dupfs_backup({}, "incremental");
  auto col = run(
      {kDuplicityBinary, "collection-status", "--archive-dir", dir_.file("dupcache"), url_}, env_);
  EXPECT_NE(col.out.find("No orphaned or incomplete backup sets found."), std::string::npos)
      << col.out;
  expect_every_set_restores();
  expect_verify_passes();
}

}  // namespace
}  // namespace dupfs::test

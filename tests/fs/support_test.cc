// Self-tests of tests/support: processes, tree building, scanning and comparison, and a duplicity
// round trip that shows the oracle works and what it does not preserve. The round trip is also the
// pattern mount tests follow: build a source, back it up, scan both sides, diff.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include "tests/support/duplicity.h"
#include "tests/support/process.h"
#include "tests/support/source_tree.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tree.h"

namespace dupfs::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;
namespace ek = every_kind;
using namespace std::chrono_literals;

const EntryInfo& at(const Tree& tree, std::string_view path) {
  auto it = tree.find(std::string(path));
  if (it == tree.end()) throw std::runtime_error("no entry " + escape_bytes(path));
  return it->second;
}

// ---------------------------------------------------------------------------------------------
// run()

TEST(SupportSelfTestRun, ArgumentsArePassedVerbatim) {
  std::vector<std::string> argv{"printf", "[%s]", "a b", "c\nd", "'\"\\", "$HOME", "*", ""};
  auto r = run(argv);
  ASSERT_TRUE(r.ok()) << describe(argv, r);
  EXPECT_EQ(r.out, "[a b][c\nd]['\"\\][$HOME][*][]");
  EXPECT_EQ(r.err, "");
}

TEST(SupportSelfTestRun, ExitCodeStderrAndSignals) {
  auto r = run({"sh", "-c", "echo to-out; echo to-err >&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.out, "to-out\n");
  EXPECT_EQ(r.err, "to-err\n");

  r = run({"sh", "-c", "kill -TERM $$"});
  EXPECT_EQ(r.exit_code, 128 + SIGTERM);

  r = run({"/nonexistent/program"});
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_THAT(r.err, HasSubstr("No such file"));
}

TEST(SupportSelfTestRun, StdinAndLargeOutputBothWays) {
  std::string data = pseudo_random_bytes(3 << 20, 7);  // far more than a pipe buffer
  auto r = run({"cat"}, {}, 60s, data);
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(r.out.size(), data.size());
  EXPECT_TRUE(r.out == data);

  // A child that ignores its stdin and exits must not kill us with SIGPIPE.
  r = run({"true"}, {}, 60s, data);
  EXPECT_TRUE(r.ok());
  r = run({"cat"}, {}, 60s, "");
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out, "");
}

TEST(SupportSelfTestRun, EnvironmentIsExtendedReplacedAndUnset) {
  ::setenv("DUPFS_SELFTEST_KEEP", "kept", 1);
  ::setenv("DUPFS_SELFTEST_DROP", "dropped", 1);
  auto r = run({"env"}, {{"DUPFS_SELFTEST_NEW", "a value\nwith newline"}, {"HOME", "/elsewhere"}},
               60s, "", {"DUPFS_SELFTEST_DROP"});
  ::unsetenv("DUPFS_SELFTEST_KEEP");
  ::unsetenv("DUPFS_SELFTEST_DROP");
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(r.out, HasSubstr("\nDUPFS_SELFTEST_KEEP=kept\n"));
  EXPECT_THAT(r.out, HasSubstr("DUPFS_SELFTEST_NEW=a value\nwith newline\n"));
  EXPECT_THAT(r.out, HasSubstr("\nHOME=/elsewhere\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("DUPFS_SELFTEST_DROP")));
}

TEST(SupportSelfTestRun, TimeoutKillsTheWholeProcessGroup) {
  auto start = std::chrono::steady_clock::now();
  // The background sleep holds stdout open; only killing the group ends it.
  auto r = run({"sh", "-c", "sleep 60 & sleep 60; echo never"}, {}, 1s);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  EXPECT_EQ(r.out, "");
  EXPECT_LT(took, 10s);
}

TEST(SupportSelfTestRun, ReturnsWhenTheChildExitsEvenIfADescendantKeepsThePipes) {
  auto start = std::chrono::steady_clock::now();
  auto r = run({"sh", "-c", "sleep 3 & echo done"}, {}, 60s);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out, "done\n");
  EXPECT_LT(took, 2s);
}

TEST(SupportSelfTestRun, RunInChildCapturesOutputAndExitCode) {
  int in_parent = 1;
  auto r = run_in_child([&] {
    in_parent = 2;  // the child's copy only
    std::printf("from the child %d\n", ::getpid());
    std::string big(1 << 20, 'x');  // more than a pipe holds: read while the child runs
    return ::write(2, big.data(), big.size()) == static_cast<ssize_t>(big.size()) ? 7 : 1;
  });
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_FALSE(r.timed_out);
  EXPECT_THAT(r.out, StartsWith("from the child "));
  EXPECT_THAT(r.out, Not(HasSubstr(std::to_string(::getpid()) + "\n")));
  EXPECT_EQ(r.err.size(), size_t{1} << 20);
  EXPECT_EQ(in_parent, 1);

  r = run_in_child(
      [] {
        ::sleep(60);
        return 0;
      },
      1s);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
}

TEST(SupportSelfTestRun, BackgroundSignalWaitAndKill) {
  TempDir tmp{"dupfs-support-"};
  {
    Background b({"sh", "-c", "echo started; exec sleep 60"}, tmp.file("log"), {});
    EXPECT_TRUE(b.running());
    EXPECT_GT(b.pid(), 0);
    EXPECT_EQ(b.wait(100ms), std::nullopt);
    EXPECT_TRUE(b.signal(SIGTERM));
    EXPECT_EQ(b.wait(10s), 128 + SIGTERM);
    EXPECT_EQ(b.pid(), -1);
    EXPECT_FALSE(b.signal(SIGTERM));  // gone: nothing is sent
    EXPECT_EQ(b.kill(), 128 + SIGTERM);
  }
  {
    // A stopped process that ignores SIGTERM still ends at once.
    Background b({"sh", "-c", "trap '' TERM; echo $X; exec sleep 60"}, tmp.file("log"),
                 {{"X", "from the environment"}});
    ASSERT_TRUE(wait_until(
        [&] { return read_file(tmp.file("log")).find("environment") != std::string::npos; }, 10s));
    EXPECT_TRUE(b.signal(SIGSTOP));
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(b.kill(), 128 + SIGKILL);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  }
  Background exits({"sh", "-c", "exit 3"}, tmp.file("log"));
  EXPECT_EQ(exits.wait(10s), 3);
}

// ---------------------------------------------------------------------------------------------
// make_every_kind_tree, scan_tree, diff_trees

TEST(SupportSelfTestTree, EveryKindTreeHasEveryKind) {
  TempDir tmp{"dupfs-support-"};
  make_every_kind_tree(tmp.file("src"));
  Tree tree = scan_tree(tmp.file("src"));

  EXPECT_EQ(at(tree, ".").type, 'd');
  EXPECT_EQ(at(tree, ek::kEmptyFile).type, 'f');
  EXPECT_EQ(at(tree, ek::kEmptyFile).size, 0u);
  EXPECT_EQ(at(tree, ek::kEmptyFile).sha256_hex,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(at(tree, ek::kFile64k).size, 65536u);
  EXPECT_EQ(at(tree, ek::kBigFile).size, ek::kBigSize);
  EXPECT_EQ(at(tree, ek::kTextFile).sha256_hex,  // sha256("alpha\n")
            "b6a98d9ce9a2d9149288fa3df42d377c3e42737afdcdaf714e33c0a100b51060");
  EXPECT_EQ(at(tree, ek::kNestedFile).type, 'f');
  EXPECT_EQ(at(tree, "dir/sub/deeper").type, 'd');

  EXPECT_EQ(at(tree, ek::kSymlink).type, 'l');
  EXPECT_EQ(at(tree, ek::kSymlink).link_target, "text/a.txt");
  EXPECT_EQ(at(tree, ek::kSymlink).mode, 0777u);
  EXPECT_EQ(at(tree, ek::kDanglingSymlink).link_target, "does/not/exist");
  EXPECT_GT(at(tree, ek::kLongTargetSymlink).link_target.size(), 300u);
  EXPECT_TRUE(tree.contains(at(tree, ek::kLongTargetSymlink).link_target));

  EXPECT_EQ(at(tree, ek::kFifo).type, 'p');
  const EntryInfo& chr = at(tree, ek::kCharDevice);
  EXPECT_EQ(chr.type, 'c');
  EXPECT_EQ(chr.rdev_major, 1u);
  EXPECT_EQ(chr.rdev_minor, 3u);
  EXPECT_EQ(chr.mode, 0666u);
  const EntryInfo& blk = at(tree, ek::kBlockDevice);
  EXPECT_EQ(blk.type, 'b');
  EXPECT_EQ(blk.rdev_major, 7u);
  EXPECT_EQ(blk.rdev_minor, 0u);
  EXPECT_EQ(at(tree, ek::kSocket).type, 's');

  EXPECT_EQ(at(tree, ek::kMode0000).mode, 0u);
  EXPECT_EQ(at(tree, ek::kMode0000).sha256_hex.size(), 64u);  // root reads it anyway
  EXPECT_EQ(at(tree, ek::kMode0600).mode, 0600u);
  EXPECT_EQ(at(tree, ek::kSetuid).mode, 04755u);
  EXPECT_EQ(at(tree, ek::kPrivateDir).mode, 0700u);
  EXPECT_EQ(at(tree, ek::kStickyDir).mode, 01777u);
  EXPECT_EQ(at(tree, std::string(ek::kStickyDir) + "/inside.txt").mode, 0666u);

  for (auto path : {ek::kForeignFile, ek::kForeignDir, ek::kForeignSymlink}) {
    EXPECT_EQ(at(tree, path).uid, ek::kForeignUid) << path;
    EXPECT_EQ(at(tree, path).gid, ek::kForeignGid) << path;
  }
  EXPECT_EQ(at(tree, ek::kForeignFile).mode, 0640u);
  EXPECT_EQ(at(tree, ek::kEmptyFile).uid, 0u);

  for (std::string name :
       {"with space.txt", "new\nline.txt", "double\"quote.txt", "single'quote.txt",
        "back\\slash.txt", "tab\there.txt", "bad\xff\xfename.txt", "ünïcødé.txt"}) {
    EXPECT_EQ(at(tree, "names/" + name).type, 'f') << escape_bytes(name);
  }
  EXPECT_EQ(at(tree, "names/" + std::string(150, 'L') + ".txt").type, 'f');
  size_t longest = 0;
  for (const auto& [path, e] : tree) longest = std::max(longest, path.size());
  EXPECT_GT(longest, 300u);

  EXPECT_EQ(at(tree, ek::kHardlinkA).sha256_hex, at(tree, ek::kHardlinkB).sha256_hex);
  struct stat a, b;
  ASSERT_EQ(::stat((tmp.file("src/") + std::string(ek::kHardlinkA)).c_str(), &a), 0);
  ASSERT_EQ(::stat((tmp.file("src/") + std::string(ek::kHardlinkB)).c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);

  // Fixed, distinct mtimes (a hard-linked pair shares one inode, so one mtime).
  std::map<int64_t, std::string> seen;
  for (const auto& [path, e] : tree) {
    EXPECT_GE(e.mtime, 1500000000) << escape_bytes(path);
    if (path == ek::kHardlinkB) continue;
    auto [it, inserted] = seen.emplace(e.mtime, path);
    EXPECT_TRUE(inserted) << escape_bytes(path) << " shares its mtime with "
                          << escape_bytes(it->second);
  }
  // Directory mtimes were stamped after their children were created.
  EXPECT_GT(at(tree, ".").mtime, at(tree, "dir").mtime);
  EXPECT_GT(at(tree, "dir").mtime, at(tree, "dir/sub").mtime);
  EXPECT_GT(at(tree, "dir/sub").mtime, at(tree, ek::kNestedFile).mtime);
}

TEST(SupportSelfTestTree, BuildsAreDeterministic) {
  TempDir tmp{"dupfs-support-"};
  make_every_kind_tree(tmp.file("one"));
  make_every_kind_tree(tmp.file("two"));
  EXPECT_TRUE(trees_match(scan_tree(tmp.file("one")), scan_tree(tmp.file("two"))));

  make_random_text_tree(tmp.file("r1"), 60, 42);
  make_random_text_tree(tmp.file("r2"), 60, 42);
  make_random_text_tree(tmp.file("r3"), 60, 43);
  Tree r1 = scan_tree(tmp.file("r1"));
  size_t files =
      std::count_if(r1.begin(), r1.end(), [](auto& kv) { return kv.second.type == 'f'; });
  EXPECT_EQ(files, 60u);
  EXPECT_GT(r1.size(), 60u + 5);  // plus directories
  EXPECT_TRUE(trees_match(r1, scan_tree(tmp.file("r2"))));
  EXPECT_THAT(diff_trees(r1, scan_tree(tmp.file("r3"))), Not(IsEmpty()));
}

TEST(SupportSelfTestTree, CopyIsEqualAndChangesAreReportedPrecisely) {
  TempDir tmp{"dupfs-support-"};
  make_every_kind_tree(tmp.file("src"));
  std::vector<std::string> cp{"cp", "-a", tmp.file("src"), tmp.file("copy")};
  auto r = run(cp);
  ASSERT_TRUE(r.ok()) << describe(cp, r);
  Tree src = scan_tree(tmp.file("src"));
  EXPECT_TRUE(trees_match(src, scan_tree(tmp.file("copy"))));

  // One byte in the middle of the big file, size and mtime kept: exactly one difference.
  std::string big = tmp.file("copy/") + std::string(ek::kBigFile);
  std::string data = read_file(big);
  data[data.size() / 2] ^= 1;
  write_file(big, data);
  set_mtime(big, at(src, ek::kBigFile).mtime);
  EXPECT_THAT(diff_trees(src, scan_tree(tmp.file("copy"))),
              ElementsAre(StartsWith("big.bin: content sha256 ")));

  // Metadata changes, each reported against its (escaped) path.
  std::string bad = tmp.file("copy/") + std::string(ek::kNonUtf8Name);
  ASSERT_EQ(::chmod(bad.c_str(), 0600), 0);
  std::string deleted = tmp.file("copy/") + std::string(ek::kNestedFile);
  ASSERT_EQ(::unlink(deleted.c_str()), 0);
  write_file(tmp.file("copy/new file.txt"), "new\n");
  ASSERT_EQ(::lchown((tmp.file("copy/") + std::string(ek::kSymlink)).c_str(), 1, 2), 0);
  // Symlink mtimes are always ignored.
  set_mtime(tmp.file("copy/") + std::string(ek::kDanglingSymlink), 1);

  Tree copy = scan_tree(tmp.file("copy"));
  auto diffs = diff_trees(src, copy, {.ignore_dir_mtime = true});
  EXPECT_THAT(diffs, ElementsAre(StartsWith("big.bin: content sha256 "),
                                 StartsWith("missing: dir/sub/deeper/nested.txt (f 0644 0:0"),
                                 "link_to_file: owner 0:0 != 1:2",
                                 "names/bad\\xff\\xfename.txt: mode 0644 != 0600",
                                 StartsWith("extra: new file.txt (f 0644 0:0 size=4")));
  // Without ignore_dir_mtime, the directories that gained or lost entries show up too.
  diffs = diff_trees(src, copy);
  EXPECT_THAT(diffs, SizeIs(7));
  EXPECT_THAT(diffs, testing::Contains(StartsWith(".: mtime ")));
  EXPECT_THAT(diffs, testing::Contains(StartsWith("dir/sub/deeper: mtime ")));
  EXPECT_FALSE(trees_match(src, copy));

  // Sockets and the root can be ignored.
  ASSERT_EQ(::unlink((tmp.file("copy/") + std::string(ek::kSocket)).c_str()), 0);
  copy = scan_tree(tmp.file("copy"));
  EXPECT_THAT(diff_trees(src, copy, {.ignore_dir_mtime = true}),
              testing::Contains(StartsWith("missing: socket (s ")));
  EXPECT_THAT(diff_trees(src, copy, {.ignore_dir_mtime = true, .ignore_sockets = true}), SizeIs(5));
}

TEST(SupportSelfTestTree, ScanWithoutHashOrDirMtimes) {
  TempDir tmp{"dupfs-support-"};
  make_every_kind_tree(tmp.file("src"));
  Tree t = scan_tree(tmp.file("src"), {.compare_dir_mtime = false, .hash = false});
  for (const auto& [path, e] : t) {
    EXPECT_EQ(e.sha256_hex, "") << escape_bytes(path);
    if (e.type == 'd') {
      EXPECT_EQ(e.mtime, 0) << escape_bytes(path);
    }
  }
  EXPECT_EQ(at(t, ek::kBigFile).size, ek::kBigSize);
  EXPECT_THROW(scan_tree(tmp.file("does-not-exist")), std::system_error);
}

// ---------------------------------------------------------------------------------------------
// The oracle: duplicity full backup and restore of the every-kind tree.

TEST(SupportSelfTestDuplicity, FullBackupAndRestoreReproduceTheTree) {
  TempDir tmp{"dupfs-support-"};
  std::string src = tmp.file("src");
  make_every_kind_tree(src);
  ASSERT_EQ(::mkdir((tmp.file("home")).c_str(), 0700), 0);
  std::map<std::string, std::string> env{{"HOME", tmp.file("home")}};
  std::string url = "file://" + (tmp.file("backup"));

  auto r = duplicity(
      {"full", "--no-encryption", "--volsize", "1", "--archive-dir", tmp.file("cache"), src, url},
      env);
  ASSERT_TRUE(r.ok()) << r.out << r.err;

  // 3.5 MiB of incompressible data with 1 MiB volumes: at least four difftar volumes.
  int volumes = 0;
  for (const auto& f : std::filesystem::directory_iterator(tmp.file("backup"))) {
    if (f.path().filename().string().find(".difftar.gz") != std::string::npos) ++volumes;
  }
  EXPECT_GE(volumes, 4);

  std::string restored = tmp.file("restored");
  r = duplicity_restore(url, restored, "", {"--no-encryption", "--archive-dir", tmp.file("cache")},
                        env);
  ASSERT_TRUE(r.ok()) << r.out << r.err;

  Tree expected = scan_tree(src);
  Tree actual = scan_tree(restored);
  // What duplicity does not preserve (sockets), and nothing else.
  EXPECT_TRUE(trees_match(expected, actual, DiffOptions::duplicity_restore()));
  EXPECT_THAT(diff_trees(expected, actual), ElementsAre(StartsWith("missing: socket (s ")));
  // Hard links come back as two files with the same content.
  struct stat a, b;
  ASSERT_EQ(::stat((restored + "/" + std::string(ek::kHardlinkA)).c_str(), &a), 0);
  ASSERT_EQ(::stat((restored + "/" + std::string(ek::kHardlinkB)).c_str(), &b), 0);
  EXPECT_NE(a.st_ino, b.st_ino);
  EXPECT_EQ(at(actual, ek::kHardlinkA).sha256_hex, at(actual, ek::kHardlinkB).sha256_hex);

  // The helper also finds the archive dir through HOME when the caller passes none.
  r = duplicity_restore(url, tmp.file("restored2"), "", {"--no-encryption"}, env);
  ASSERT_TRUE(r.ok()) << r.out << r.err;
  EXPECT_TRUE(std::filesystem::exists(tmp.file("home/.cache/duplicity")));
  EXPECT_TRUE(trees_match(actual, scan_tree(tmp.file("restored2"))));
  EXPECT_THROW(duplicity({"collection-status", url}, {}), std::invalid_argument);
}

}  // namespace
}  // namespace dupfs::test

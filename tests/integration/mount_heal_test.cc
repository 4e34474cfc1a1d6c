// Errors that heal, through a real mount: the storage of a file:// location stops answering
// (tests/tools/stall_fs) while a set's manifest is read. That read fails with EIO within
// --timeout; once the storage answers again, the same file reads right without a re-mount.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "tests/integration/mounted.h"
#include "tests/support/duplicity.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace dupfs::test {
namespace {

// Writes `data` to `path`, dated `age` ago: duplicity sees a file as changed by its mtime in
// whole seconds, which two writes within one second would share.
void write(const std::string& path, const std::string& data, std::chrono::seconds age) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
  std::filesystem::last_write_time(path, std::filesystem::file_time_type::clock::now() - age);
}

TEST(MountHeal, ManifestUnreadableForAWhileReadsAfterwards) {
  TempDir dir("dupfs-heal-");
  const std::string src = dir.file("src");
  std::filesystem::create_directories(src);
  write(src + "/a.txt", "alpha, as of the full\n", std::chrono::hours(2));
  const std::string out = dir.file("out");
  const std::string url = "file://" + out;
  const std::map<std::string, std::string> env{{"HOME", dir.path()}};
  // Two sets: only the newest manifest is read at mount; the full's when a file is first read.
  auto r = duplicity({"full", "--no-encryption", "--current-time", "1700000000", src, url}, env);
  ASSERT_TRUE(r.ok()) << r.err;
  write(src + "/a.txt", "alpha, as of the incremental\n", std::chrono::hours(1));
  r = duplicity({"incremental", "--no-encryption", "--current-time", "1700000600", src, url}, env);
  ASSERT_TRUE(r.ok()) << r.err;

  const std::string lower = dir.file("lower");
  const std::string mnt = dir.file("mnt");
  std::filesystem::create_directories(lower);
  std::filesystem::create_directories(mnt);
  Background stall({STALL_FS_BINARY, out, lower, "-f"}, dir.file("stall_fs.log"));
  ASSERT_TRUE(wait_until([&] { return is_mounted(lower); }, std::chrono::seconds(20)))
      << "stall_fs did not mount";
  {
    Mounted m("file://" + lower, mnt, dir.file("mnt.log"),
              {"--timeout", "3", "--archive-dir", dir.file("dupfscache")}, env);
    ASSERT_TRUE(m.ok()) << m.log();
    const std::string file = mnt + "/snapshots/latest/a.txt";

    ::kill(stall.pid(), SIGUSR1);  // every read of the storage hangs from now on
    ReadOutcome during = read_through(file);
    EXPECT_FALSE(during.ok) << "read " << during.data.size() << " bytes from stalled storage";
    EXPECT_EQ(during.err, EIO) << std::strerror(during.err);

    ::kill(stall.pid(), SIGUSR2);  // the storage is back
    ReadOutcome after = read_through(file);
    EXPECT_TRUE(after.ok) << std::strerror(after.err) << "\n" << m.log();
    EXPECT_EQ(after.data, "alpha, as of the incremental\n");
    ReadOutcome older = read_through(mnt + "/snapshots/2023-11-14T22:13:20Z/a.txt");
    EXPECT_TRUE(older.ok) << std::strerror(older.err) << "\n" << m.log();
    EXPECT_EQ(older.data, "alpha, as of the full\n");
    EXPECT_EQ(m.unmount(), 0) << m.log();
  }
  run({"fusermount3", "-u", lower}, {}, std::chrono::seconds(30));
}

}  // namespace
}  // namespace dupfs::test

// Secrets (issue 7): the passphrase never reaches a log, the process's command line or
// environment, or any file dupfs writes (metadata cache, logs, temporary files); decrypted file
// data never lands on disk in clear. The mount runs at debug verbosity, so every log line there
// is can be searched.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "chain/metadata/volume_index.h"
#include "tests/integration/mounted.h"
#include "tests/support/duplicity.h"
#include "tests/support/gpg_home.h"
#include "tests/support/source_tree.h"
#include "tests/support/temp_dir.h"

namespace dupfs::test {
namespace {

constexpr char kPassphrase[] = "Secret-Passphrase-4f9c2b";
// File contents that appear nowhere else: searched for in everything dupfs wrote.
constexpr char kMarker[] = "Clear-Data-Marker-7d31e0";

// Files under `root` (recursively, not following links) whose bytes contain `needle`.
std::vector<std::string> files_containing(const std::string& root, const std::string& needle) {
  std::vector<std::string> hits;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
    if (read_file(it->path().string()).find(needle) != std::string::npos) {
      hits.push_back(it->path().string());
    }
  }
  return hits;
}

std::string proc_file(pid_t pid, const std::string& what) {
  return read_file("/proc/" + std::to_string(pid) + "/" + what);
}

TEST(Secrets, NeitherPassphraseNorClearDataLeaveTheProcess) {
  TempDir dir("dupfs-secrets-");
  GpgHome gpg;
  const std::string src = dir.file("src");
  // Everything dupfs may write goes under dir.file("written"): home, caches, temp files, logs.
  const std::string written = dir.file("written");
  std::filesystem::create_directories(src + "/sub");
  std::filesystem::create_directories(written + "/home");
  std::filesystem::create_directories(written + "/tmp");
  std::filesystem::create_directory(dir.file("mnt"));
  std::string contents;
  for (int i = 0; i < 2000; ++i)
    contents += std::string(kMarker) + " line " + std::to_string(i) + "\n";
  write_file(src + "/sub/clear.txt", contents);
  write_file(src + "/big.bin", pseudo_random_bytes(2 << 20, 11) + kMarker);
  std::map<std::string, std::string> env{{"GNUPGHOME", gpg.path()},
                                         {"HOME", written + "/home"},
                                         {"TMPDIR", written + "/tmp"},
                                         {"XDG_CACHE_HOME", written + "/home/.cache"},
                                         {"PASSPHRASE", kPassphrase}};

  // A full by duplicity, then an incremental by dupfs-backup (its own log at debug level).
  const std::string url = "file://" + dir.file("out");
  auto r =
      duplicity({"full", "--archive-dir", dir.file("dupcache"), "--volsize", "1", src, url}, env);
  ASSERT_TRUE(r.ok()) << describe({"duplicity", "full"}, r);
  sleep(1);
  write_file(src + "/sub/new.txt", std::string(kMarker) + " in the incremental\n");
  std::vector<std::string> backup{DUPFS_BACKUP_BINARY, "incremental",           "-v", "debug",
                                  "--log-file",        written + "/backup.log", src,  url};
  r = run(backup, env);
  ASSERT_TRUE(r.ok()) << describe(backup, r);
  EXPECT_EQ(r.out.find(kPassphrase), std::string::npos);
  EXPECT_EQ(r.err.find(kPassphrase), std::string::npos);

  {
    Mounted m(url, dir.file("mnt"), written + "/mount.stderr",
              {"-v", "4", "--log-file", written + "/mount.log", "--cache-size", "8M"}, env);
    ASSERT_TRUE(m.ok()) << m.log();
    // Read everything, twice through a small cache (evictions, re-decoding).
    for (int pass = 0; pass < 2; ++pass) {
      EXPECT_EQ(read_file(dir.file("mnt/snapshots/latest/sub/clear.txt")), contents);
      EXPECT_EQ(read_file(dir.file("mnt/snapshots/latest/big.bin")).size(), (2u << 20) + 24u);
    }
    const std::string cmdline = proc_file(m.pid(), "cmdline");
    const std::string environ = proc_file(m.pid(), "environ");
    EXPECT_FALSE(cmdline.empty());
    EXPECT_FALSE(environ.empty());
    EXPECT_EQ(cmdline.find(kPassphrase), std::string::npos) << "passphrase in the command line";
    EXPECT_EQ(environ.find(kPassphrase), std::string::npos) << "passphrase in /proc/<pid>/environ";
    EXPECT_EQ(m.unmount(), 0) << m.log();
  }

  EXPECT_TRUE(std::filesystem::exists(written + "/mount.log"));
  EXPECT_GT(std::filesystem::file_size(written + "/mount.log"), 0u);
  // Seek indexes were recorded (docs/seek.md): they hold deflate windows and session keys,
  // sealed, so the searches below cover them.
  int indexes = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(written)) {
    if (chain::volume_of_index_name(e.path().filename().string())) ++indexes;
  }
  EXPECT_GT(indexes, 0) << "no seek index in the archive dir";
  // The metadata cache holds what duplicity's own cache holds (manifests, signatures) and the
  // sealed seek indexes, never the passphrase nor file contents.
  auto with_passphrase = files_containing(written, kPassphrase);
  EXPECT_TRUE(with_passphrase.empty()) << "the passphrase is in " << with_passphrase.front();
  auto with_data = files_containing(written, kMarker);
  EXPECT_TRUE(with_data.empty()) << "clear file data is in " << with_data.front();
  EXPECT_TRUE(std::filesystem::is_empty(written + "/tmp")) << "temporary files left behind";
}

}  // namespace
}  // namespace dupfs::test

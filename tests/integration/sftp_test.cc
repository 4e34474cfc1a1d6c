// SSH storage end to end (issue 6): a real OpenSSH sshd on a loopback port (tests/support/sshd.h)
// serves chains written by duplicity's own sftp backend (paramiko) and by build/dupfs-backup;
// duplicity restore is the oracle for the mount, dupfs-backup, and dupfs restore, verify and
// list-current-files over sftp. Failure paths: unknown host and changed host key refused,
// connections cut mid-volume (a proxy in front of sshd) retried, a frozen server giving EIO in
// bounded time while unmounting still works, and serving again once it is back.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "chain/format/names.h"
#include "tests/integration/mounted.h"
#include "tests/support/duplicity.h"
#include "tests/support/gpg_home.h"
#include "tests/support/source_tree.h"
#include "tests/support/sshd.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/tree.h"

namespace dupfs::test {
namespace {

constexpr char kPassphrase[] = "correct horse battery staple";
constexpr auto kCommandTimeout = std::chrono::seconds(300);
using Clock = std::chrono::steady_clock;

struct ReadResult {
  bool ok = false;
  int err = 0;
  std::string data;
};

ReadResult read_file_at(const std::string& path) {
  ReadResult r;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    r.err = errno;
    return r;
  }
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      r.err = errno;
      ::close(fd);
      return r;
    }
    if (n == 0) break;
    r.data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  r.ok = true;
  return r;
}

class SftpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = dir_.file("src");
    for (const char* d : {"src", "home", "home/.ssh", "mnt", "store"}) {
      std::filesystem::create_directories(dir_.file(d));
    }
    server_ = std::make_unique<SshServer>(dir_.path());
    known_hosts_ = dir_.file("home/.ssh/known_hosts");
    set_known_hosts(server_->known_hosts_line());
    // HOME holds known_hosts for both duplicity (paramiko) and dupfs; the key is named.
    ssh_options_ = "--ssh-options=-oIdentityFile=" + server_->identity_file();
    env_ = {{"GNUPGHOME", gpg_.path()},
            {"HOME", dir_.file("home")},
            {"PASSPHRASE", kPassphrase},
            {"XDG_CACHE_HOME", dir_.file("home/.cache")}};
  }

  void set_known_hosts(const std::string& text) {
    std::ofstream out(known_hosts_, std::ios::trunc);
    out << text;
  }

  // sftp://root@127.0.0.1:PORT//abs/path (duplicity's absolute form).
  std::string url(const std::string& scheme, const std::string& path, int port = 0) const {
    return scheme + "://root@127.0.0.1:" + std::to_string(port == 0 ? server_->port() : port) +
           "/" + path;
  }

  ProcessResult duplicity_run(std::vector<std::string> args) {
    args.insert(args.begin() + 1, {"--archive-dir", dir_.file("dupcache"), ssh_options_});
    return duplicity(args, env_, kCommandTimeout);
  }

  Tree duplicity_restored(const std::string& from_url, const std::string& target_name) {
    std::string target = dir_.file(target_name);
    auto r = duplicity_restore(from_url, target, "",
                               {"--archive-dir", dir_.file("dupcache"), ssh_options_}, env_,
                               kCommandTimeout);
    EXPECT_TRUE(r.ok()) << describe({"duplicity", "restore", from_url}, r);
    return scan_tree(target);
  }

  ProcessResult dupfs(std::vector<std::string> args, bool backup = false) {
    args.insert(args.begin(), backup ? DUPFS_BACKUP_BINARY : DUPFS_BINARY);
    return run(args, env_, kCommandTimeout);
  }

  std::unique_ptr<Mounted> mount(const std::string& from_url, std::vector<std::string> args = {}) {
    args.insert(args.end(),
                {"--cache-size", "64M", "--archive-dir", dir_.file("dupfscache"), ssh_options_});
    auto m =
        std::make_unique<Mounted>(from_url, dir_.file("mnt"), dir_.file("mount.log"), args, env_);
    EXPECT_TRUE(m->ok()) << "mount failed: " << m->log();
    return m;
  }

  TempDir dir_{"dupfs-sftp-"};
  GpgHome gpg_;
  std::unique_ptr<SshServer> server_;
  std::string src_;
  std::string known_hosts_;
  std::string ssh_options_;
  std::map<std::string, std::string> env_;
};

// A chain written by duplicity over sftp, mounted by dupfs over sftp: every set equals
// duplicity's restore of it.
TEST_F(SftpTest, DuplicityChainMountedEqualsRestore) {
  make_every_kind_tree(src_);
  std::string u = url("sftp", dir_.file("store"));
  auto r = duplicity_run({"full", "--volsize", "1", src_, u});
  ASSERT_TRUE(r.ok()) << describe({"duplicity", "full", u}, r);
  write_file(src_ + "/added-later.txt", "in the incremental only\n");
  std::filesystem::remove(src_ + "/" + std::string(every_kind::kTextFile));
  sleep(1);  // set times are whole seconds
  r = duplicity_run({"incremental", "--volsize", "1", src_, u});
  ASSERT_TRUE(r.ok()) << describe({"duplicity", "incremental", u}, r);

  Tree expected = duplicity_restored(u, "restored");
  auto m = mount(u);
  ASSERT_TRUE(m->ok());
  EXPECT_TRUE(trees_match(expected, scan_tree(dir_.file("mnt/snapshots/latest/"))));
  // The full set as well: two snapshots.
  int snapshots = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_.file("mnt/snapshots"))) {
    if (!e.is_symlink()) ++snapshots;
  }
  EXPECT_EQ(snapshots, 2);
  EXPECT_EQ(m->unmount(), 0) << m->log();
}

// dupfs-backup writes over scp://host//abs/path (a directory that does not exist yet), full
// then incremental; duplicity restores both over sftp.
TEST_F(SftpTest, DupfsBackupOverScpRestoredByDuplicity) {
  make_every_kind_tree(src_);
  std::string target = dir_.file("store/new/dir");
  std::string u = url("scp", target);
  auto r = dupfs(
      {"full", "--volsize", "1", "--archive-dir", dir_.file("dupfscache"), ssh_options_, src_, u},
      true);
  ASSERT_TRUE(r.ok()) << describe({"dupfs-backup", "full", u}, r);
  Tree full_source = scan_tree(src_);
  sleep(1);
  write_file(src_ + "/added-later.txt", "in the incremental only\n");
  r = dupfs({"incremental", "--volsize", "1", "--archive-dir", dir_.file("dupfscache"),
             ssh_options_, src_, u},
            true);
  ASSERT_TRUE(r.ok()) << describe({"dupfs-backup", "incremental", u}, r);
  for (const auto& e : std::filesystem::directory_iterator(target)) {
    EXPECT_EQ(e.path().filename().string().find("dupfs-tmp"), std::string::npos) << e.path();
  }
  EXPECT_TRUE(trees_match(scan_tree(src_), duplicity_restored(url("sftp", target), "restored"),
                          DiffOptions::duplicity_restore()));
  // The full set alone, restored by duplicity from the same location as a plain directory.
  int64_t full_time = 0;
  for (const auto& e : std::filesystem::directory_iterator(target)) {
    auto p = chain::parse_name(e.path().filename().string());
    if (p && p->manifest && p->type == chain::FileType::kFull) full_time = p->time;
  }
  ASSERT_GT(full_time, 0);
  auto rf =
      duplicity_restore("file://" + target, dir_.file("restored-full"), std::to_string(full_time),
                        {"--archive-dir", dir_.file("dupcache2")}, env_, kCommandTimeout);
  ASSERT_TRUE(rf.ok()) << describe({"duplicity", "restore", "full"}, rf);
  EXPECT_TRUE(trees_match(full_source, scan_tree(dir_.file("restored-full")),
                          DiffOptions::duplicity_restore()));
}

// dupfs restore, verify and list-current-files over sftp, against duplicity's.
TEST_F(SftpTest, RestoreVerifyAndListOverSftp) {
  make_every_kind_tree(src_);
  std::string u = url("sftp", dir_.file("store"));
  auto r = duplicity_run({"full", "--volsize", "1", src_, u});
  ASSERT_TRUE(r.ok()) << describe({"duplicity", "full", u}, r);

  Tree expected = duplicity_restored(u, "restored-by-duplicity");
  r = dupfs({"restore", "--archive-dir", dir_.file("dupfscache"), ssh_options_, u,
             dir_.file("restored-by-dupfs")});
  ASSERT_TRUE(r.ok()) << describe({"dupfs", "restore", u}, r);
  EXPECT_TRUE(trees_match(expected, scan_tree(dir_.file("restored-by-dupfs"))));

  // verify --compare-data says what duplicity's says. The socket goes first: dupfs verify
  // (cli/restore_actions.cc) reports it as a new file where duplicity skips sockets, which is
  // not a matter of the storage and is left to that command's own tests.
  std::filesystem::remove(src_ + "/" + std::string(every_kind::kSocket));
  auto their_verify = duplicity_run({"verify", "--compare-data", u, src_});
  r = dupfs({"verify", "--compare-data", "--archive-dir", dir_.file("dupfscache"), ssh_options_, u,
             src_});
  EXPECT_EQ(r.exit_code, their_verify.exit_code)
      << describe({"dupfs", "verify", u}, r) << describe({"duplicity", "verify"}, their_verify);
  EXPECT_FALSE(verify_summary(r.out).empty()) << r.out;
  EXPECT_EQ(verify_summary(r.out), verify_summary(their_verify.out)) << r.out << "\n---\n"
                                                                     << their_verify.out;

  auto theirs = duplicity_run({"list-current-files", u});
  ASSERT_TRUE(theirs.ok()) << describe({"duplicity", "list-current-files", u}, theirs);
  auto ours =
      dupfs({"list-current-files", "--archive-dir", dir_.file("dupfscache"), ssh_options_, u});
  ASSERT_TRUE(ours.ok()) << describe({"dupfs", "list-current-files", u}, ours);
  auto want = listed_entries(theirs.out);
  EXPECT_FALSE(want.empty()) << theirs.out;
  EXPECT_EQ(listed_entries(ours.out), want) << ours.out;
}

// An unknown host and a changed host key: every command refuses with one message naming the
// host and what to do, exits non-zero, mounts nothing and writes nothing.
TEST_F(SftpTest, UnknownHostAndChangedKeyRefused) {
  make_every_kind_tree(src_);
  std::string u = url("sftp", dir_.file("store"));
  std::string host = "[127.0.0.1]:" + std::to_string(server_->port());
  SshServer other(dir_.file("other"));
  struct Case {
    std::string name;
    std::string known_hosts;
    std::string says;
  };
  std::vector<Case> cases{
      {"unknown host", "", "is unknown"},
      {"changed key", host + " " + other.host_public_key() + "\n", "host key verification failed"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    set_known_hosts(c.known_hosts);
    auto check = [&](const ProcessResult& r, const std::string& what) {
      EXPECT_NE(r.exit_code, 0) << what;
      EXPECT_FALSE(r.timed_out) << what;
      EXPECT_NE(r.err.find(host), std::string::npos) << what << ": " << r.err;
      EXPECT_NE(r.err.find(c.says), std::string::npos) << what << ": " << r.err;
      EXPECT_NE(r.err.find("known_hosts"), std::string::npos) << what << ": " << r.err;
    };
    check(dupfs({"full", "--archive-dir", dir_.file("dupfscache"), ssh_options_, src_, u}, true),
          "dupfs-backup");
    check(dupfs({"mount", "--archive-dir", dir_.file("dupfscache"), ssh_options_, u,
                 dir_.file("mnt")}),
          "dupfs mount");
    EXPECT_FALSE(is_mounted(dir_.file("mnt")));
    check(dupfs({"list-current-files", "--archive-dir", dir_.file("dupfscache"), ssh_options_, u}),
          "dupfs list-current-files");
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir_.file("store")));
  EXPECT_EQ(server_->log().find("Accepted publickey"), std::string::npos) << server_->log();
}

// Connections cut in the middle of a volume transfer (a proxy between dupfs and sshd drops
// every connection after a given number of bytes): reads and uploads are retried and the
// results are still exact.
TEST_F(SftpTest, ConnectionCutMidVolumeIsRetried) {
  make_every_kind_tree(src_);
  write_file(src_ + "/large.bin", make_payload(12 << 20, 7));
  std::string u = url("sftp", dir_.file("store"));
  auto r = duplicity_run({"full", "--volsize", "5", src_, u});
  ASSERT_TRUE(r.ok()) << describe({"duplicity", "full", u}, r);
  Tree expected = duplicity_restored(u, "restored");

  TcpProxy proxy(server_->port());
  set_known_hosts(server_->known_hosts_line() + server_->known_hosts_line(proxy.port()));
  std::string via_proxy = url("sftp", dir_.file("store"), proxy.port());
  {
    auto m = mount(via_proxy, {"--num-retries", "3", "--timeout", "10"});
    ASSERT_TRUE(m->ok());
    // Manifests and signatures are read; the volumes are not: cut in the first one's middle.
    proxy.cut_after(2 << 20);
    EXPECT_TRUE(trees_match(expected, scan_tree(dir_.file("mnt/snapshots/latest/"))));
    EXPECT_EQ(proxy.cuts(), 1);
    EXPECT_EQ(m->unmount(), 0) << m->log();
  }

  // An upload cut in the middle of its first 5 MB volume.
  std::string target = dir_.file("store2");
  int cuts = proxy.cuts();
  proxy.cut_after(3 << 20, TcpProxy::Direction::kToServer);
  r = dupfs({"full", "--volsize", "5", "--num-retries", "3", "--archive-dir",
             dir_.file("dupfscache2"), ssh_options_, src_, url("sftp", target, proxy.port())},
            true);
  ASSERT_TRUE(r.ok()) << describe({"dupfs-backup", "full"}, r);
  EXPECT_EQ(proxy.cuts(), cuts + 1);
  EXPECT_TRUE(trees_match(scan_tree(src_), duplicity_restored("file://" + target, "restored2"),
                          DiffOptions::duplicity_restore()));
}

// A server frozen mid-transfer (SIGSTOP on sshd and its connection processes): reads fail with
// EIO within the bounded time (--timeout 2, --num-retries 2), the mount serves again once the
// server is back (SIGCONT), and unmounting works while it is frozen.
TEST_F(SftpTest, FrozenServerGivesEioThenServesAgain) {
  make_every_kind_tree(src_);
  std::string u = url("sftp", dir_.file("store"));
  auto r = duplicity_run({"full", "--volsize", "1", src_, u});
  ASSERT_TRUE(r.ok()) << describe({"duplicity", "full", u}, r);
  std::string big = read_file(src_ + "/" + std::string(every_kind::kBigFile));

  auto m = mount(u, {"--timeout", "2", "--num-retries", "2"});
  ASSERT_TRUE(m->ok());
  std::string path = dir_.file("mnt/snapshots/latest/") + std::string(every_kind::kBigFile);
  server_->freeze();
  auto t0 = Clock::now();
  auto reading = std::async(std::launch::async, [&] { return read_file_at(path); });
  if (reading.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    server_->thaw();  // let the test end instead of hanging
    reading.wait();
    FAIL() << "a read on a frozen server still hangs after 60 s";
  }
  auto waited = Clock::now() - t0;
  ReadResult frozen = reading.get();
  EXPECT_FALSE(frozen.ok);
  EXPECT_EQ(frozen.err, EIO) << std::strerror(frozen.err);
  // 2 tries x 2 s of silence, a pause, and the decoding pass's own request: well under 30 s.
  EXPECT_LT(waited, std::chrono::seconds(30));
  server_->thaw();

  ReadResult back = read_file_at(path);
  ASSERT_TRUE(back.ok) << std::strerror(back.err) << "\n" << m->log();
  EXPECT_TRUE(back.data == big) << "got " << back.data.size() << " bytes";

  // Unmounting while the server is frozen again: the daemon does not wait on it.
  server_->freeze();
  t0 = Clock::now();
  int status = m->unmount();
  auto unmount_took = Clock::now() - t0;
  server_->thaw();
  EXPECT_EQ(status, 0) << m->log();
  EXPECT_LT(unmount_took, std::chrono::seconds(15));
  EXPECT_FALSE(is_mounted(dir_.file("mnt")));
}

// Processes whose command line mentions `needle` (to find a daemon that is not our child).
std::vector<pid_t> processes_mentioning(const std::string& needle) {
  std::vector<pid_t> found;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string name = e.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::string cmd = read_file(e.path().string() + "/cmdline");
    if (cmd.find(needle) != std::string::npos && cmd.find("dupfs") != std::string::npos) {
      found.push_back(std::stoi(name));
    }
  }
  return found;
}

// `dupfs mount` without -f reads the archive, then daemonizes (fork): the daemon still bounds
// every wait on a frozen server, serves again after it, and ends on fusermount3 -u.
TEST_F(SftpTest, DaemonizedMountBoundsWaitsToo) {
  make_every_kind_tree(src_);
  std::string u = url("sftp", dir_.file("store"));
  auto r = duplicity_run({"full", "--volsize", "1", src_, u});
  ASSERT_TRUE(r.ok()) << describe({"duplicity", "full", u}, r);
  std::string big = read_file(src_ + "/" + std::string(every_kind::kBigFile));
  std::string mnt = dir_.file("mnt");
  r = dupfs({"mount", "--timeout", "2", "--num-retries", "2", "--archive-dir",
             dir_.file("dupfscache"), "--log-file", dir_.file("daemon.log"), ssh_options_, u, mnt});
  ASSERT_TRUE(r.ok()) << describe({"dupfs", "mount", u}, r);
  ASSERT_TRUE(is_mounted(mnt));
  // Whatever happens below, nothing stays mounted or frozen.
  std::shared_ptr<void> cleanup(nullptr, [&](void*) {
    server_->thaw();
    if (is_mounted(mnt)) run({"fusermount3", "-uz", mnt});
    for (pid_t p : processes_mentioning(mnt)) ::kill(p, SIGKILL);
  });

  std::string path = mnt + "/snapshots/latest/" + std::string(every_kind::kBigFile);
  server_->freeze();
  auto t0 = Clock::now();
  auto reading = std::async(std::launch::async, [&] { return read_file_at(path); });
  if (reading.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    server_->thaw();
    reading.wait();
    FAIL() << "a read on a frozen server still hangs after 60 s in the daemon";
  }
  auto waited = Clock::now() - t0;
  ReadResult frozen = reading.get();
  server_->thaw();
  EXPECT_FALSE(frozen.ok);
  EXPECT_EQ(frozen.err, EIO) << std::strerror(frozen.err);
  EXPECT_LT(waited, std::chrono::seconds(30));

  ReadResult back = read_file_at(path);
  ASSERT_TRUE(back.ok) << std::strerror(back.err) << "\n" << read_file(dir_.file("daemon.log"));
  EXPECT_TRUE(back.data == big) << "got " << back.data.size() << " bytes";

  auto daemons = processes_mentioning(mnt);
  EXPECT_EQ(daemons.size(), 1u);
  auto u_r = run({"fusermount3", "-u", mnt}, {}, std::chrono::seconds(30));
  EXPECT_TRUE(u_r.ok()) << describe({"fusermount3", "-u"}, u_r);
  auto deadline = Clock::now() + std::chrono::seconds(20);
  while (!processes_mentioning(mnt).empty() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(processes_mentioning(mnt).empty()) << "the daemon did not end after unmount";
  EXPECT_EQ(read_file(dir_.file("daemon.log")).find("terminate"), std::string::npos)
      << read_file(dir_.file("daemon.log"));
}

// --ssh-askpass asks once on the terminal (the key still logs in; the password is the fallback),
// the answer is not echoed; with FTP_PASSWORD set nothing is asked (duplicity's order).
TEST_F(SftpTest, AskpassAsksOnTheTerminalUnlessFtpPassword) {
  make_every_kind_tree(src_);
  std::string u = url("sftp", dir_.file("store"));
  auto r = duplicity_run({"full", "--volsize", "1", src_, u});
  ASSERT_TRUE(r.ok()) << describe({"duplicity", "full", u}, r);
  std::string command = std::string(DUPFS_BINARY) + " list-current-files --ssh-askpass " +
                        "--archive-dir " + dir_.file("dupfscache") + " " + ssh_options_ + " " + u;
  // script(1) gives dupfs a terminal; the answer is typed after the prompt.
  auto typed = [&](const std::map<std::string, std::string>& env,
                   const std::vector<std::string>& unset) {
    std::string shell =
        "(sleep 1; printf '%s\\n' 'typed-ssh-password') | script -qec '" + command + "' /dev/null";
    return run({"sh", "-c", shell}, env, kCommandTimeout, "", unset);
  };
  r = typed(env_, {"FTP_PASSWORD"});
  ASSERT_TRUE(r.ok()) << describe({"script", command}, r);
  EXPECT_NE(r.out.find("Password for 'root@127.0.0.1': "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("typed-ssh-password"), std::string::npos) << "the password was echoed";
  EXPECT_FALSE(listed_entries(r.out).empty()) << r.out;

  auto with_env = env_;
  with_env["FTP_PASSWORD"] = "from-the-environment";
  r = typed(with_env, {});
  ASSERT_TRUE(r.ok()) << describe({"script", command}, r);
  EXPECT_EQ(r.out.find("Password for"), std::string::npos) << r.out;
  EXPECT_FALSE(listed_entries(r.out).empty()) << r.out;
}

}  // namespace
}  // namespace dupfs::test

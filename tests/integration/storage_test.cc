// Network storage end to end (issue 16), the same tests for every kind: real servers on loopback
// ports (tests/support/storage_servers.h), duplicity 0.8.22 as the oracle over the same URL.
// For each kind of storage:
//  - a chain written by duplicity: the mount shows every set as `duplicity restore --time T`
//    does; dupfs list-current-files, restore and verify agree with duplicity's;
//  - dupfs-backup writes a full and an incremental (--volsize 1): duplicity restores each set;
//  - remove-older-than --force and cleanup --force delete what duplicity's delete, nothing else;
//  - wrong credentials and a missing location: one clear line, non-zero exit;
//  - a server frozen mid-read: EIO in bounded time, served again after; connections cut in
//    the middle of a volume (reads and uploads): tried again, right bytes.
// And S3's own: multipart uploads, listings of more than 1,000 objects.
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "chain/format/names.h"
#include "tests/integration/mounted.h"
#include "tests/support/duplicity.h"
#include "tests/support/gpg_home.h"
#include "tests/support/source_tree.h"
#include "tests/support/storage_servers.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tree.h"

namespace dupfs::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
constexpr auto kCommandTimeout = std::chrono::seconds(300);

// ---------------------------------------------------------------------------------------------
// One kind of storage, as the tests need it.

class Storage {
 public:
  virtual ~Storage() = default;
  // The URL of location `path` ("a/b"), through the server's own port or through `port` (a
  // TcpProxy in front of it).
  virtual std::string url(const std::string& path, int port = 0) const = 0;
  // Options both duplicity and dupfs take for it (through `port` as above).
  virtual std::vector<std::string> options(int port = 0) const = 0;
  // Environment both take (credentials).
  virtual std::map<std::string, std::string> env() const = 0;
  // The environment with wrong credentials, and a word the message must hold.
  virtual std::map<std::string, std::string> wrong_credentials() const = 0;
  virtual std::string wrong_credentials_word() const = 0;
  // A location in a container that does not exist (bucket, top directory), and the word; ""
  // where a missing location is only an empty one (FTP: made on the first write).
  virtual std::string missing_location() const = 0;
  virtual std::string missing_word() const = 0;
  // The port clients connect to (what a TcpProxy forwards to, what freeze() silences).
  virtual int port() const = 0;
  virtual TestServer& server() = 0;
  // Bytes after which a TcpProxy in front of port() cuts a read and an upload in the middle.
  // FTP's data connections do not pass the proxy (PASV names the server's own port): there the
  // control connection is cut at its next message, in the middle of the transfer.
  virtual uint64_t read_cut_bytes() const { return 2 << 20; }
  virtual uint64_t upload_cut_bytes() const { return 3 << 20; }
  // The objects stored in location `path`, read on the server's disk.
  virtual std::set<std::string> stored(const std::string& path) const = 0;
  // Copies location `from` to `to` on the server's disk, and deletes one object there.
  virtual void copy(const std::string& from, const std::string& to) const = 0;
  virtual void erase(const std::string& path, const std::string& name) const = 0;
};

class S3Storage : public Storage {
 public:
  explicit S3Storage(const std::string& dir) : s3_(dir), front_(dir, s3_) {
    s3_.create_bucket("bkt");
  }
  std::string url(const std::string& path, int /*port*/ = 0) const override {
    return "boto3+s3://bkt/" + path;
  }
  std::vector<std::string> options(int port = 0) const override {
    return {"--s3-endpoint-url", S3Server::endpoint_url(port == 0 ? front_.port() : port)};
  }
  std::map<std::string, std::string> env() const override { return S3Server::client_env(); }
  std::map<std::string, std::string> wrong_credentials() const override {
    auto e = env();
    e["AWS_SECRET_ACCESS_KEY"] = "not-the-secret";
    return e;
  }
  std::string wrong_credentials_word() const override { return "SignatureDoesNotMatch"; }
  std::string missing_location() const override { return "boto3+s3://nosuchbucket/x"; }
  std::string missing_word() const override { return "does not exist"; }
  int port() const override { return front_.port(); }
  TestServer& server() override { return front_; }
  std::set<std::string> stored(const std::string& path) const override {
    std::set<std::string> names;
    const std::string suffix = "._S3rver_object";
    for (const auto& e : fs::directory_iterator(s3_.data_dir() + "/bkt/" + path)) {
      std::string n = e.path().filename().string();
      if (n.ends_with(suffix)) names.insert(n.substr(0, n.size() - suffix.size()));
    }
    return names;
  }
  void copy(const std::string& from, const std::string& to) const override {
    fs::copy(s3_.data_dir() + "/bkt/" + from, s3_.data_dir() + "/bkt/" + to,
             fs::copy_options::recursive);
  }
  void erase(const std::string& path, const std::string& name) const override {
    std::string base = s3_.data_dir() + "/bkt/" + path + "/" + name + "._S3rver_";
    for (const char* s : {"object", "object.md5", "metadata.json"}) fs::remove(base + s);
  }
  uint64_t object_size(const std::string& path, const std::string& name) const {
    return fs::file_size(s3_.data_dir() + "/bkt/" + path + "/" + name + "._S3rver_object");
  }
  const S3SignatureFront& front() const { return front_; }
  std::string data_dir() const { return s3_.data_dir(); }
  std::string s3rver_log() const { return s3_.log(); }
  // s3rver itself, behind the front, stops answering (and comes back).
  void freeze_store() { s3_.freeze(); }
  void thaw_store() { s3_.thaw(); }
  int s3rver_port() const { return s3_.port(); }

 private:
  S3Server s3_;
  S3SignatureFront front_;
};

// WebDAV on Apache with Basic authentication, over http or https (duplicity 0.8.22 cannot do
// Digest on a URL with a port, so Digest has no oracle here: see storage_servers_test.cc).
class WebDavStorage : public Storage {
 public:
  WebDavStorage(const std::string& dir, bool https) : dav_(dir, options(https)) {}
  std::string url(const std::string& path, int port = 0) const override {
    return fmt::format("{}://{}@127.0.0.1:{}/dav/{}", dav_.options().https ? "webdavs" : "webdav",
                       WebDavServer::kUser, port == 0 ? dav_.port() : port, path);
  }
  std::vector<std::string> options(int /*port*/ = 0) const override {
    // The certificate names 127.0.0.1, whatever the port.
    if (dav_.options().https) return {"--ssl-cacert-file", dav_.cert_file()};
    return {"--ssl-cacert-path", "/etc/ssl/certs"};  // no-op for http; the tests take two
  }
  std::map<std::string, std::string> env() const override {
    return {{"FTP_PASSWORD", dav_.options().password}};
  }
  std::map<std::string, std::string> wrong_credentials() const override {
    return {{"FTP_PASSWORD", "not-the-password"}};
  }
  std::string wrong_credentials_word() const override { return "login refused"; }
  // Outside the DAV tree: Apache answers PROPFIND with 405.
  std::string missing_location() const override {
    return fmt::format("{}://{}@127.0.0.1:{}/nodav/x", dav_.options().https ? "webdavs" : "webdav",
                       WebDavServer::kUser, dav_.port());
  }
  std::string missing_word() const override { return "does not serve WebDAV"; }
  int port() const override { return dav_.port(); }
  TestServer& server() override { return dav_; }
  std::set<std::string> stored(const std::string& path) const override {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(dav_.dav_dir() + "/" + path)) {
      if (e.is_regular_file()) names.insert(e.path().filename().string());
    }
    return names;
  }
  void copy(const std::string& from, const std::string& to) const override {
    std::string target = dav_.dav_dir() + "/" + to;
    fs::create_directories(fs::path(target).parent_path());
    fs::copy(dav_.dav_dir() + "/" + from, target, fs::copy_options::recursive);
    // Apache's workers (www-data) must be able to delete the copies.
    const passwd* www = ::getpwnam("www-data");
    if (www == nullptr) return;
    for (fs::path p = target; p != fs::path(dav_.dav_dir()); p = p.parent_path()) {
      (void)::chown(p.c_str(), www->pw_uid, www->pw_gid);
    }
    for (const auto& e : fs::recursive_directory_iterator(target)) {
      (void)::chown(e.path().c_str(), www->pw_uid, www->pw_gid);
    }
  }
  void erase(const std::string& path, const std::string& name) const override {
    fs::remove(dav_.dav_dir() + "/" + path + "/" + name);
  }

 private:
  static WebDavServer::Options options(bool https) {
    WebDavServer::Options o;
    o.https = https;
    o.password = "dav p4ss:word";
    return o;
  }
  WebDavServer dav_;
};

// FTP on pyftpdlib (a virtual user chrooted in its home): plain, explicit TLS (ftpes://) or
// implicit TLS (ftps://).
class FtpStorage : public Storage {
 public:
  FtpStorage(const std::string& dir, FtpServer::Security security)
      : ftp_(dir, FtpServer::Options{.security = security, .password = "ftp p4ss:word"}) {}
  std::string url(const std::string& path, int port = 0) const override {
    const char* scheme = ftp_.options().security == FtpServer::Security::kPlain         ? "ftp"
                         : ftp_.options().security == FtpServer::Security::kExplicitTls ? "ftpes"
                                                                                        : "ftps";
    return fmt::format("{}://{}@127.0.0.1:{}/{}", scheme, FtpServer::kUser,
                       port == 0 ? ftp_.port() : port, path);
  }
  std::vector<std::string> options(int /*port*/ = 0) const override {
    if (ftp_.options().security == FtpServer::Security::kPlain) return {};
    return {"--ssl-cacert-file", ftp_.cert_file()};
  }
  std::map<std::string, std::string> env() const override {
    return {{"FTP_PASSWORD", ftp_.options().password}};
  }
  std::map<std::string, std::string> wrong_credentials() const override {
    return {{"FTP_PASSWORD", "not-the-password"}};
  }
  std::string wrong_credentials_word() const override { return "refused the login"; }
  std::string missing_location() const override { return ""; }
  std::string missing_word() const override { return ""; }
  int port() const override { return ftp_.port(); }
  uint64_t read_cut_bytes() const override { return 1; }
  uint64_t upload_cut_bytes() const override { return 1; }
  TestServer& server() override { return ftp_; }
  std::set<std::string> stored(const std::string& path) const override {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(ftp_.home_dir() + "/" + path)) {
      if (e.is_regular_file()) names.insert(e.path().filename().string());
    }
    return names;
  }
  void copy(const std::string& from, const std::string& to) const override {
    std::string target = ftp_.home_dir() + "/" + to;
    fs::create_directories(fs::path(target).parent_path());
    fs::copy(ftp_.home_dir() + "/" + from, target, fs::copy_options::recursive);
  }
  void erase(const std::string& path, const std::string& name) const override {
    fs::remove(ftp_.home_dir() + "/" + path + "/" + name);
  }

 private:
  FtpServer ftp_;
};

using MakeStorage = std::function<std::unique_ptr<Storage>(const std::string& dir)>;
struct Kind {
  std::string name;
  MakeStorage make;
};
void PrintTo(const Kind& k, std::ostream* os) { *os << k.name; }

// ---------------------------------------------------------------------------------------------

// /snapshots/<YYYY-MM-DDTHH:MM:SSZ>
std::string snapshot_name(int64_t time) {
  std::time_t t = static_cast<std::time_t>(time);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

class StorageTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    for (const char* d : {"src", "home", "mnt"}) fs::create_directories(dir_.file(d));
    src_ = dir_.file("src");
    storage_ = GetParam().make(dir_.path());
    env_ = storage_->env();
    env_["GNUPGHOME"] = gpg_.path();
    env_["HOME"] = dir_.file("home");
    env_["XDG_CACHE_HOME"] = dir_.file("home/.cache");
  }

  std::vector<std::string> with_options(std::vector<std::string> args, int port = 0) const {
    auto opts = storage_->options(port);
    args.insert(args.begin() + 1, opts.begin(), opts.end());
    return args;
  }

  ProcessResult duplicity_run(std::vector<std::string> args, int port = 0) {
    args = with_options(std::move(args), port);
    // duplicity waits 30 s before trying a failed backend call again; its lftp backend fails
    // its first listing of a directory that does not exist yet, every time.
    args.insert(args.begin() + 1, {"--no-encryption", "--archive-dir", dir_.file("dupcache"),
                                   "--backend-retry-delay", "1"});
    return duplicity(args, env_, kCommandTimeout);
  }

  Tree duplicity_restored(const std::string& url, const std::string& target_name,
                          const std::string& time = "") {
    std::vector<std::string> extra{"--no-encryption", "--archive-dir", dir_.file("dupcache"),
                                   "--backend-retry-delay", "1"};
    for (const auto& o : storage_->options()) extra.push_back(o);
    std::string target = dir_.file(target_name);
    auto r = duplicity_restore(url, target, time, extra, env_, kCommandTimeout);
    EXPECT_TRUE(r.ok()) << describe({"duplicity", "restore", url, time}, r);
    return scan_tree(target);
  }

  // dupfs (or dupfs-backup) with the storage's options and its own archive dir.
  ProcessResult dupfs(std::vector<std::string> args, bool backup = false, int port = 0,
                      const std::string& cache = "dupfscache") {
    args = with_options(std::move(args), port);
    args.insert(args.begin() + 1, {"--archive-dir", dir_.file(cache)});
    if (backup) args.insert(args.begin() + 1, "--no-encryption");
    args.insert(args.begin(), backup ? DUPFS_BACKUP_BINARY : DUPFS_BINARY);
    return run(args, env_, kCommandTimeout);
  }

  std::unique_ptr<Mounted> mount(const std::string& url, std::vector<std::string> args = {},
                                 int port = 0) {
    auto opts = storage_->options(port);
    args.insert(args.end(), opts.begin(), opts.end());
    args.insert(args.end(), {"--cache-size", "64M", "--archive-dir", dir_.file("dupfscache")});
    auto m = std::make_unique<Mounted>(url, dir_.file("mnt"), dir_.file("mount.log"), args, env_);
    EXPECT_TRUE(m->ok()) << "mount failed: " << m->log();
    return m;
  }

  // The set times of a location, oldest first, as names give them (seconds since the epoch).
  std::vector<int64_t> set_times(const std::string& path) const {
    std::set<int64_t> times;
    for (const auto& n : storage_->stored(path)) {
      auto p = chain::parse_name(n);
      if (p && p->manifest) times.insert(p->type == chain::FileType::kFull ? p->time : p->end_time);
    }
    return {times.begin(), times.end()};
  }

  TempDir dir_{"dupfs-storage-"};
  GpgHome gpg_;
  std::unique_ptr<Storage> storage_;
  std::string src_;
  std::map<std::string, std::string> env_;
};

// A chain written by duplicity: every set in the mount equals duplicity's restore of it at that
// time; list-current-files, restore and verify agree with duplicity's.
TEST_P(StorageTest, DuplicityChainMountedListedRestoredVerified) {
  make_every_kind_tree(src_);
  fs::remove(src_ + "/" + std::string(every_kind::kSocket));  // duplicity skips sockets
  std::string u = storage_->url("chain");
  auto r = duplicity_run({"full", "--volsize", "1", src_, u});
  ASSERT_TRUE(r.ok()) << describe({"duplicity", "full", u}, r);
  write_file(src_ + "/added-later.txt", "in the incremental only\n");
  fs::remove(src_ + "/" + std::string(every_kind::kTextFile));
  sleep(1);  // set times are whole seconds
  r = duplicity_run({"incremental", "--volsize", "1", src_, u});
  ASSERT_TRUE(r.ok()) << describe({"duplicity", "incremental", u}, r);

  auto times = set_times("chain");
  ASSERT_EQ(times.size(), 2u);
  {
    auto m = mount(u);
    ASSERT_TRUE(m->ok());
    for (size_t i = 0; i < times.size(); ++i) {
      Tree expected =
          duplicity_restored(u, "restored" + std::to_string(i), std::to_string(times[i]));
      std::string snapshot = dir_.file("mnt/snapshots/") + snapshot_name(times[i]);
      ASSERT_TRUE(fs::is_directory(snapshot)) << snapshot;
      EXPECT_TRUE(trees_match(expected, scan_tree(snapshot + "/"))) << snapshot;
    }
    EXPECT_EQ(m->unmount(), 0) << m->log();
  }

  auto theirs = duplicity_run({"list-current-files", u});
  ASSERT_TRUE(theirs.ok()) << describe({"duplicity", "list-current-files", u}, theirs);
  auto ours = dupfs({"list-current-files", u});
  ASSERT_TRUE(ours.ok()) << describe({"dupfs", "list-current-files", u}, ours);
  EXPECT_FALSE(listed_entries(theirs.out).empty()) << theirs.out;
  EXPECT_EQ(listed_entries(ours.out), listed_entries(theirs.out)) << ours.out;

  r = dupfs({"restore", u, dir_.file("restored-by-dupfs")});
  ASSERT_TRUE(r.ok()) << describe({"dupfs", "restore", u}, r);
  EXPECT_TRUE(
      trees_match(scan_tree(dir_.file("restored1")), scan_tree(dir_.file("restored-by-dupfs"))));

  auto their_verify = duplicity_run({"verify", "--compare-data", u, src_});
  r = dupfs({"verify", "--compare-data", u, src_});
  EXPECT_EQ(r.exit_code, their_verify.exit_code)
      << describe({"dupfs", "verify", u}, r) << describe({"duplicity", "verify"}, their_verify);
  EXPECT_FALSE(verify_summary(r.out).empty()) << r.out;
  EXPECT_EQ(verify_summary(r.out), verify_summary(their_verify.out)) << r.out << "\n---\n"
                                                                     << their_verify.out;
}

// dupfs-backup writes a full and an incremental in 1 MB volumes: duplicity restores each set.
TEST_P(StorageTest, DupfsBackupRestoredByDuplicity) {
  make_every_kind_tree(src_);
  std::string u = storage_->url("written/by/dupfs");
  auto r = dupfs({"full", "--volsize", "1", src_, u}, true);
  ASSERT_TRUE(r.ok()) << describe({"dupfs-backup", "full", u}, r);
  Tree full_source = scan_tree(src_);
  sleep(1);
  write_file(src_ + "/added-later.txt", "in the incremental only\n");
  r = dupfs({"incremental", "--volsize", "1", src_, u}, true);
  ASSERT_TRUE(r.ok()) << describe({"dupfs-backup", "incremental", u}, r);

  auto names = storage_->stored("written/by/dupfs");
  for (const auto& n : names) EXPECT_EQ(n.find("dupfs-tmp"), std::string::npos) << n;
  size_t volumes = std::count_if(names.begin(), names.end(),
                                 [](auto& n) { return n.find(".vol") != std::string::npos; });
  EXPECT_GE(volumes, 4u);  // 3.5 MiB of random data in 1 MB volumes, and the incremental's
  auto times = set_times("written/by/dupfs");
  ASSERT_EQ(times.size(), 2u);
  EXPECT_TRUE(trees_match(full_source, duplicity_restored(u, "full", std::to_string(times[0])),
                          DiffOptions::duplicity_restore()));
  EXPECT_TRUE(trees_match(scan_tree(src_), duplicity_restored(u, "latest"),
                          DiffOptions::duplicity_restore()));
}

// The pruning actions delete what duplicity's delete. Two copies of one archive (two chains,
// the last set without its manifest): duplicity prunes one, dupfs the other.
TEST_P(StorageTest, RemoveOlderThanAndCleanupDeleteWhatDuplicityDeletes) {
  write_file(src_ + "/a.txt", "first\n");
  std::string path = "prune/theirs";
  std::string u = storage_->url(path);
  for (const char* kind : {"full", "incremental", "full", "incremental"}) {
    write_file(src_ + "/a.txt", std::string(kind) + " " + std::to_string(::time(nullptr)) + "\n");
    auto r = duplicity_run({kind, src_, u});
    ASSERT_TRUE(r.ok()) << describe({"duplicity", kind, u}, r);
    sleep(1);
  }
  auto times = set_times(path);
  ASSERT_EQ(times.size(), 4u);
  // The last set loses its manifest: an incomplete set for cleanup.
  for (const auto& n : storage_->stored(path)) {
    auto p = chain::parse_name(n);
    if (p && p->manifest && p->end_time == times[3]) storage_->erase(path, n);
  }
  storage_->copy(path, "prune/ours");
  std::string ours = storage_->url("prune/ours");
  ASSERT_EQ(storage_->stored(path), storage_->stored("prune/ours"));

  auto r = duplicity_run({"cleanup", "--force", u});
  ASSERT_TRUE(r.ok()) << describe({"duplicity", "cleanup", u}, r);
  r = dupfs({"cleanup", "--force", ours});
  ASSERT_TRUE(r.ok()) << describe({"dupfs", "cleanup", ours}, r);
  EXPECT_EQ(storage_->stored("prune/ours"), storage_->stored(path));

  std::string older_than = std::to_string(times[2]);
  r = duplicity_run({"remove-older-than", older_than, "--force", u});
  ASSERT_TRUE(r.ok()) << describe({"duplicity", "remove-older-than", u}, r);
  r = dupfs({"remove-older-than", older_than, "--force", ours});
  ASSERT_TRUE(r.ok()) << describe({"dupfs", "remove-older-than", ours}, r);
  auto left = storage_->stored("prune/ours");
  EXPECT_EQ(left, storage_->stored(path));
  EXPECT_LT(left.size(), 9u);  // something was deleted: the first chain
  EXPECT_FALSE(left.empty());
}

// Wrong credentials and a location that does not exist: one line naming what failed, non-zero
// exit, for a command and for the mount.
TEST_P(StorageTest, WrongCredentialsAndMissingLocationSayWhat) {
  write_file(src_ + "/a.txt", "a\n");
  std::string u = storage_->url("creds");
  auto r = duplicity_run({"full", src_, u});
  ASSERT_TRUE(r.ok()) << describe({"duplicity", "full", u}, r);

  auto saved = env_;
  for (const auto& [k, v] : storage_->wrong_credentials()) env_[k] = v;
  r = dupfs({"list-current-files", u});
  EXPECT_NE(r.exit_code, 0) << describe({"dupfs", "list-current-files"}, r);
  EXPECT_NE(r.err.find(storage_->wrong_credentials_word()), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  std::vector<std::string> mount_args{DUPFS_BINARY, "mount", "-f", "--archive-dir",
                                      dir_.file("c2")};
  for (const auto& o : storage_->options()) mount_args.push_back(o);
  mount_args.insert(mount_args.end(), {u, dir_.file("mnt")});
  r = run(mount_args, env_, std::chrono::seconds(120));
  EXPECT_NE(r.exit_code, 0) << describe({"dupfs", "mount"}, r);
  EXPECT_NE(r.err.find(storage_->wrong_credentials_word()), std::string::npos) << r.err;
  EXPECT_FALSE(is_mounted(dir_.file("mnt")));
  env_ = saved;

  if (storage_->missing_location().empty()) return;
  r = dupfs({"collection-status", storage_->missing_location()});
  EXPECT_NE(r.exit_code, 0) << describe({"dupfs", "collection-status"}, r);
  EXPECT_NE(r.err.find(storage_->missing_word()), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// A server that stops answering mid-read: EIO within the bounded time (--timeout 2,
// --num-retries 2); the mount serves again once it is back; unmounting does not wait on it.
TEST_P(StorageTest, FrozenServerGivesEioThenServesAgain) {
  make_every_kind_tree(src_);
  std::string u = storage_->url("frozen");
  auto r = duplicity_run({"full", "--volsize", "1", src_, u});
  ASSERT_TRUE(r.ok()) << describe({"duplicity", "full", u}, r);
  std::string big = read_file(src_ + "/" + std::string(every_kind::kBigFile));

  auto m = mount(u, {"--timeout", "2", "--num-retries", "2"});
  ASSERT_TRUE(m->ok());
  std::string file = dir_.file("mnt/snapshots/latest/") + std::string(every_kind::kBigFile);
  storage_->server().freeze();
  auto t0 = Clock::now();
  auto reading = std::async(std::launch::async, [&] { return read_through(file); });
  if (reading.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    storage_->server().thaw();
    reading.wait();
    FAIL() << "a read on a frozen server still hangs after 60 s";
  }
  auto waited = Clock::now() - t0;
  ReadOutcome frozen = reading.get();
  EXPECT_FALSE(frozen.ok);
  EXPECT_EQ(frozen.err, EIO) << std::strerror(frozen.err);
  EXPECT_LT(waited, std::chrono::seconds(30));
  storage_->server().thaw();

  ReadOutcome back = read_through(file);
  ASSERT_TRUE(back.ok) << std::strerror(back.err) << "\n" << m->log();
  EXPECT_TRUE(back.data == big) << "got " << back.data.size() << " bytes";

  storage_->server().freeze();
  t0 = Clock::now();
  int status = m->unmount();
  auto took = Clock::now() - t0;
  storage_->server().thaw();
  EXPECT_EQ(status, 0) << m->log();
  EXPECT_LT(took, std::chrono::seconds(15));
}

// Connections cut in the middle of a volume, reading and uploading: tried again, right bytes.
TEST_P(StorageTest, ConnectionCutMidVolumeIsRetried) {
  make_every_kind_tree(src_);
  write_file(src_ + "/large.bin", make_payload(12 << 20, 7));
  std::string u = storage_->url("cut");
  auto r = duplicity_run({"full", "--volsize", "5", src_, u});
  ASSERT_TRUE(r.ok()) << describe({"duplicity", "full", u}, r);
  Tree expected = duplicity_restored(u, "restored");

  TcpProxy proxy(storage_->port());
  {
    auto m = mount(storage_->url("cut", proxy.port()), {"--num-retries", "3", "--timeout", "10"},
                   proxy.port());
    ASSERT_TRUE(m->ok());
    proxy.cut_after(storage_->read_cut_bytes());
    EXPECT_TRUE(trees_match(expected, scan_tree(dir_.file("mnt/snapshots/latest/"))));
    EXPECT_EQ(proxy.cuts(), 1);
    EXPECT_EQ(m->unmount(), 0) << m->log();
  }

  int cuts = proxy.cuts();
  proxy.cut_after(storage_->upload_cut_bytes(), TcpProxy::Direction::kToServer);
  std::string u2 = storage_->url("cut2", proxy.port());
  r = dupfs({"full", "--volsize", "5", "--num-retries", "3", src_, u2}, true, proxy.port(),
            "dupfscache2");
  ASSERT_TRUE(r.ok()) << describe({"dupfs-backup", "full"}, r);
  EXPECT_EQ(proxy.cuts(), cuts + 1);
  EXPECT_TRUE(trees_match(scan_tree(src_), duplicity_restored(storage_->url("cut2"), "restored2"),
                          DiffOptions::duplicity_restore()));
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, StorageTest,
    ::testing::Values(Kind{"S3",
                           [](const std::string& dir) -> std::unique_ptr<Storage> {
                             return std::make_unique<S3Storage>(dir);
                           }},
                      Kind{"WebDav",
                           [](const std::string& dir) -> std::unique_ptr<Storage> {
                             return std::make_unique<WebDavStorage>(dir, false);
                           }},
                      Kind{"WebDavs",
                           [](const std::string& dir) -> std::unique_ptr<Storage> {
                             return std::make_unique<WebDavStorage>(dir, true);
                           }},
                      Kind{"Ftp",
                           [](const std::string& dir) -> std::unique_ptr<Storage> {
                             return std::make_unique<FtpStorage>(dir, FtpServer::Security::kPlain);
                           }},
                      Kind{"Ftpes",
                           [](const std::string& dir) -> std::unique_ptr<Storage> {
                             return std::make_unique<FtpStorage>(dir,
                                                                 FtpServer::Security::kExplicitTls);
                           }},
                      Kind{"Ftps",
                           [](const std::string& dir) -> std::unique_ptr<Storage> {
                             return std::make_unique<FtpStorage>(dir,
                                                                 FtpServer::Security::kImplicitTls);
                           }}),
    [](const ::testing::TestParamInfo<Kind>& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------
// S3's own.

class S3Test : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_.file("home"));
    env_ = storage_.env();
    env_["HOME"] = dir_.file("home");
  }
  ProcessResult dupfs(std::vector<std::string> args, bool backup = false) {
    auto opts = storage_.options();
    args.insert(args.begin() + 1, opts.begin(), opts.end());
    args.insert(args.begin() + 1, {"--archive-dir", dir_.file("cache")});
    if (backup) args.insert(args.begin() + 1, "--no-encryption");
    args.insert(args.begin(), backup ? DUPFS_BACKUP_BINARY : DUPFS_BINARY);
    return run(args, env_, kCommandTimeout);
  }
  TempDir dir_{"dupfs-s3-"};
  S3Storage storage_{dir_.path()};
  std::map<std::string, std::string> env_;
};

// A 12 MB volume with --s3-multipart-chunk-size 5 goes up in three parts; duplicity restores it,
// and no unfinished upload is left behind.
TEST_F(S3Test, MultipartUploadRestoredByDuplicity) {
  std::string src = dir_.file("src");
  fs::create_directories(src);
  write_file(src + "/large.bin", make_payload(12 << 20, 3));
  std::string u = storage_.url("multi");
  auto r = dupfs(
      {"full", "--no-compression", "--volsize", "20", "--s3-multipart-chunk-size", "5", src, u},
      true);
  ASSERT_TRUE(r.ok()) << describe({"dupfs-backup", "full"}, r);
  bool big_volume = false;
  for (const auto& n : storage_.stored("multi")) {
    if (n.find(".vol1.") != std::string::npos)
      big_volume = storage_.object_size("multi", n) > (10u << 20);
  }
  EXPECT_TRUE(big_volume);
  EXPECT_NE(storage_.s3rver_log().find("uploadId="), std::string::npos) << "no multipart upload";
  // The upload was completed: s3rver keeps an unfinished one's parts in the bucket's uploads
  // directory until then.
  std::string uploads = storage_.data_dir() + "/bkt/._S3rver_uploads";
  EXPECT_TRUE(!fs::exists(uploads) || fs::is_empty(uploads)) << uploads;
  std::vector<std::string> extra{"--no-encryption", "--archive-dir", dir_.file("dupcache")};
  for (const auto& o : storage_.options()) extra.push_back(o);
  auto rr = duplicity_restore(u, dir_.file("restored"), "", extra, env_, kCommandTimeout);
  ASSERT_TRUE(rr.ok()) << describe({"duplicity", "restore"}, rr);
  EXPECT_TRUE(read_file(dir_.file("restored/large.bin")) == read_file(src + "/large.bin"));
}

// A multipart upload that cannot be finished is aborted (s3rver 3.7.1 does not implement
// AbortMultipartUpload: the front's log shows that dupfs asked), and the backup fails with one
// clear line.
TEST_F(S3Test, FailedMultipartUploadIsAborted) {
  std::string src = dir_.file("src");
  fs::create_directories(src);
  write_file(src + "/large.bin", make_payload(12 << 20, 4));
  std::vector<std::string> args{DUPFS_BACKUP_BINARY,
                                "full",
                                "--no-encryption",
                                "--no-compression",
                                "--volsize",
                                "20",
                                "--s3-multipart-chunk-size",
                                "5",
                                "--num-retries",
                                "1",
                                "--timeout",
                                "2",
                                "--archive-dir",
                                dir_.file("c"),
                                "--s3-endpoint-url",
                                storage_.front().endpoint_url(),
                                src,
                                storage_.url("aborted")};
  auto backup = std::async(std::launch::async, [&] { return run(args, env_, kCommandTimeout); });
  // Once the upload has its id and its first part is on the way, the store behind the front
  // stops answering: the parts fail.
  bool frozen = wait_until(
      [&] { return storage_.front().log().find("?partNumber=1&uploadId=") != std::string::npos; },
      std::chrono::seconds(60));
  EXPECT_TRUE(frozen);
  storage_.freeze_store();
  auto r = backup.get();
  storage_.thaw_store();
  EXPECT_NE(r.exit_code, 0) << describe(args, r);
  EXPECT_NE(r.err.find("dupfs-backup: "), std::string::npos) << r.err;
  std::string log = storage_.front().log();
  size_t started = log.find("POST /bkt/aborted/duplicity-full.");
  ASSERT_NE(started, std::string::npos) << log;
  EXPECT_NE(log.find("?uploads="), std::string::npos) << log;
  EXPECT_NE(log.find("DELETE /bkt/aborted/duplicity-full.", started), std::string::npos) << log;
  EXPECT_NE(log.find("uploadId=", log.find("DELETE /bkt/aborted/", started)), std::string::npos)
      << log;
}

// Uploads damaged on the way fail the try and are sent again: refused by the store, which
// checks Content-MD5 and the payload's SHA-256 (the front, as S3 does), or, where the store
// checks nothing (s3rver alone), caught by dupfs comparing the ETag with the MD5 it sent.
TEST_F(S3Test, DamagedUploadIsSentAgain) {
  std::string src = dir_.file("src");
  fs::create_directories(src);
  write_file(src + "/data.bin", make_payload(3 << 20, 5));
  for (int checking_store = 1; checking_store >= 0; --checking_store) {
    TcpProxy proxy(checking_store ? storage_.port() : storage_.s3rver_port());
    proxy.corrupt_after(1 << 20, TcpProxy::Direction::kToServer);
    std::string path = checking_store ? "damaged1" : "damaged0";
    std::vector<std::string> args{DUPFS_BACKUP_BINARY,
                                  "full",
                                  "--no-encryption",
                                  "--no-compression",
                                  "--archive-dir",
                                  dir_.file("c-" + path),
                                  "--s3-endpoint-url",
                                  S3Server::endpoint_url(proxy.port()),
                                  src,
                                  storage_.url(path)};
    auto r = run(args, env_, kCommandTimeout);
    ASSERT_TRUE(r.ok()) << describe(args, r);
    EXPECT_EQ(proxy.corruptions(), 1);
    EXPECT_NE(r.err.find(checking_store ? "damaged on the way (" : "other bytes than were sent"),
              std::string::npos)
        << r.err;
    std::vector<std::string> extra{"--no-encryption", "--archive-dir", dir_.file("d-" + path)};
    for (const auto& o : storage_.options()) extra.push_back(o);
    auto rr = duplicity_restore(storage_.url(path), dir_.file("r-" + path), "", extra, env_,
                                kCommandTimeout);
    ASSERT_TRUE(rr.ok()) << describe({"duplicity", "restore"}, rr);
    EXPECT_TRUE(read_file(dir_.file("r-" + path + "/data.bin")) == read_file(src + "/data.bin"));
  }
}

// A listing of more than 1,000 objects takes several pages (continuation tokens): 1,100 other
// objects that sort before duplicity's names fill the first page, the chain is on the second;
// dupfs still finds it, and a mount shows it.
TEST_F(S3Test, ListingOfMoreThanAThousandObjects) {
  std::string src = dir_.file("src");
  fs::create_directories(src);
  write_file(src + "/a.txt", "on the second page\n");
  std::string u = storage_.url("many");
  auto r = dupfs({"full", src, u}, true);
  ASSERT_TRUE(r.ok()) << describe({"dupfs-backup", "full"}, r);
  // The fillers are made on s3rver's disk, as its own uploads would be (an object file and its
  // metadata; the MD5 is computed when first asked).
  auto names = storage_.stored("many");
  std::string some = *names.begin();
  std::string base = storage_.data_dir() + "/bkt/many/";
  for (int i = 0; i < 1100; ++i) {
    std::string filler = base + fmt::format("a-filler-{:04}", i) + "._S3rver_";
    write_file(filler + "object", "x");
    fs::copy_file(base + some + "._S3rver_metadata.json", filler + "metadata.json");
  }
  ASSERT_EQ(storage_.stored("many").size(), names.size() + 1100);
  r = dupfs({"list-current-files", u});
  ASSERT_TRUE(r.ok()) << describe({"dupfs", "list-current-files"}, r);
  EXPECT_NE(r.out.find(" a.txt"), std::string::npos) << r.out;
  r = dupfs({"collection-status", u});
  ASSERT_TRUE(r.ok()) << describe({"dupfs", "collection-status"}, r);
  EXPECT_NE(r.out.find("Number of contained backup sets: 1"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace dupfs::test

// SftpBackend against a real OpenSSH sshd on a loopback port (tests/support/sshd.h): the
// storage contract, host key checks, logins, retries after dropped connections, bounded waits
// on a frozen server. HOME is a temporary directory for every test.
#include "backends/sftp_backend.h"

#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <sstream>
#include <thread>

#include "backends/backend.h"
#include "tests/support/sshd.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/temp_dir.h"

namespace dupfs {
namespace {

using test::SshServer;
using test::TcpProxy;
using test::TempDir;
using Clock = std::chrono::steady_clock;

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen());
  return s;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

class SftpBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The backend takes ~/.ssh from HOME, as duplicity does: keep the real one out of it.
    if (const char* h = std::getenv("HOME")) saved_home_ = h;
    ::setenv("HOME", dir_.file("home").c_str(), 1);
    ::unsetenv("SSH_AUTH_SOCK");
    std::filesystem::create_directories(dir_.file("home/.ssh"));
    std::filesystem::create_directories(dir_.file("store"));
    server_ = std::make_unique<SshServer>(dir_.path());
    known_hosts_ = dir_.file("known_hosts");
    spit(known_hosts_, server_->known_hosts_line());
  }
  void TearDown() override {
    server_.reset();
    if (saved_home_.empty()) {
      ::unsetenv("HOME");
    } else {
      ::setenv("HOME", saved_home_.c_str(), 1);
    }
  }

  std::string url(int port, const std::string& path) const {
    return "sftp://root@127.0.0.1:" + std::to_string(port) + "/" + path;
  }
  std::string store_url(int port = 0) const {
    return url(port == 0 ? server_->port() : port, dir_.file("store"));
  }

  BackendOptions options(int retries = 3, int timeout = 5) const {
    BackendOptions o;
    o.num_retries = retries;
    o.timeout = std::chrono::seconds(timeout);
    o.ssh_options =
        "-oIdentityFile=" + server_->identity_file() + " -oUserKnownHostsFile=" + known_hosts_;
    return o;
  }

  std::unique_ptr<Backend> open(const std::string& u, const BackendOptions& o) {
    auto b = open_backend(u, o);
    EXPECT_TRUE(b.has_value()) << (b ? "" : b.error().message);
    return b ? std::move(*b) : nullptr;
  }

  TempDir dir_{"dupfs-sftp-backend-"};
  std::string saved_home_;
  std::unique_ptr<SshServer> server_;
  std::string known_hosts_;
};

TEST_F(SftpBackendTest, ListSizeReadWriteRemove) {
  auto b = open(store_url(), options());
  ASSERT_TRUE(b);
  EXPECT_EQ(b->describe(),
            "sftp://root@127.0.0.1:" + std::to_string(server_->port()) + "/" + dir_.file("store"));
  std::string big = random_bytes(5 * 1024 * 1024 + 12345, 1);
  ASSERT_TRUE(b->write("volume.difftar.gpg", big).has_value());
  ASSERT_TRUE(b->write("empty", "").has_value());
  std::filesystem::create_directory(dir_.file("store/subdir"));  // directories are not listed

  // What landed on the server is exactly what was written, with no temporary file left over.
  EXPECT_EQ(slurp(dir_.file("store/volume.difftar.gpg")), big);
  auto names = b->list();
  ASSERT_TRUE(names.has_value()) << names.error().message;
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"empty", "volume.difftar.gpg"}));

  auto size = b->size("volume.difftar.gpg");
  ASSERT_TRUE(size.has_value()) << size.error().message;
  EXPECT_EQ(*size, big.size());
  EXPECT_EQ(b->size("empty").value_or(99), 0u);

  auto whole = b->read("volume.difftar.gpg");
  ASSERT_TRUE(whole.has_value()) << whole.error().message;
  EXPECT_TRUE(*whole == big);

  // Ranges: inside, across chunk boundaries, over the end, at and past the end.
  struct Case {
    uint64_t offset;
    size_t length;
  };
  for (Case c : {Case{0, 1}, Case{65535, 3}, Case{1000, 1 << 20}, Case{big.size() - 10, 100},
                 Case{big.size(), 10}, Case{big.size() + 5, 10}, Case{12345, 0}}) {
    auto r = b->read_range("volume.difftar.gpg", c.offset, c.length);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    std::string want = c.offset >= big.size() ? std::string() : big.substr(c.offset, c.length);
    EXPECT_TRUE(*r == want) << "offset " << c.offset << " length " << c.length << ": got "
                            << r->size() << " bytes, want " << want.size();
  }

  auto missing = b->read_range("nope", 0, 10);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound) << missing.error().message;
  EXPECT_EQ(b->size("nope").error().kind, ErrorKind::kNotFound);

  ASSERT_TRUE(b->remove("empty").has_value());
  EXPECT_FALSE(std::filesystem::exists(dir_.file("store/empty")));
  auto again = b->remove("empty");
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().kind, ErrorKind::kNotFound);
}

// Pieces read front to back are read ahead; interleaved objects, jumps back and a short
// last piece must still give exactly the bytes asked for.
TEST_F(SftpBackendTest, ReadAheadKeepsEveryRangeExact) {
  auto b = open(store_url(), options());
  ASSERT_TRUE(b);
  std::string one = random_bytes((3 << 20) + 777, 11), two = random_bytes(5 << 20, 12);
  spit(dir_.file("store/one"), one);
  spit(dir_.file("store/two"), two);
  constexpr size_t kPiece = 1 << 20;
  auto expect_range = [&](const std::string& name, const std::string& data, uint64_t off,
                          size_t len) {
    auto r = b->read_range(name, off, len);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    std::string want = off >= data.size() ? std::string() : data.substr(off, len);
    EXPECT_TRUE(*r == want) << name << " at " << off << ": " << r->size() << " bytes";
  };
  for (uint64_t off = 0; off < two.size(); off += kPiece) {
    expect_range("two", two, off, kPiece);
    expect_range("one", one, off, kPiece);  // past its end from the fourth piece on
  }
  expect_range("two", two, 0, kPiece);           // back to the start
  expect_range("two", two, 3 * kPiece, kPiece);  // a jump forward, with requests in flight
  expect_range("two", two, 4 * kPiece, 4096);    // a smaller piece where the read-ahead is
  expect_range("one", one, 3 * kPiece, kPiece);  // the short last piece
  ASSERT_TRUE(b->size("one").has_value());       // another request while reads are ahead
  expect_range("two", two, 4 * kPiece + 4096, kPiece);
}

TEST_F(SftpBackendTest, WriteNeverOverwrites) {
  auto b = open(store_url(), options());
  ASSERT_TRUE(b);
  ASSERT_TRUE(b->write("manifest", "first").has_value());
  auto second = b->write("manifest", "second");
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().kind, ErrorKind::kExists) << second.error().message;
  EXPECT_EQ(slurp(dir_.file("store/manifest")), "first");
  // A read after a remove and a new write of the same name sees the new object.
  ASSERT_EQ(b->read("manifest").value_or(""), "first");
  ASSERT_TRUE(b->remove("manifest").has_value());
  ASSERT_TRUE(b->write("manifest", "third!").has_value());
  EXPECT_EQ(b->read("manifest").value_or(""), "third!");
  for (const auto& e : std::filesystem::directory_iterator(dir_.file("store"))) {
    EXPECT_EQ(e.path().filename().string().find("dupfs-tmp"), std::string::npos) << e.path();
  }
}

TEST_F(SftpBackendTest, MissingDirectoryIsNotFoundThenCreatedByWrite) {
  std::string deep = dir_.file("store/a/b/c");
  auto b = open(url(server_->port(), deep), options());
  ASSERT_TRUE(b);
  auto names = b->list();
  ASSERT_FALSE(names.has_value());
  EXPECT_EQ(names.error().kind, ErrorKind::kNotFound) << names.error().message;
  ASSERT_TRUE(b->write("x", "data").has_value());
  EXPECT_EQ(slurp(deep + "/x"), "data");
}

TEST_F(SftpBackendTest, RelativePathIsUnderTheLoginDirectory) {
  // root's login directory is its passwd home, whatever HOME says.
  std::string rel = "dupfs-sftp-test-" + std::filesystem::path(dir_.path()).filename().string();
  auto b = open(url(server_->port(), rel), options());
  ASSERT_TRUE(b);
  ASSERT_TRUE(b->write("x", "relative").has_value());
  const passwd* pw = ::getpwuid(0);  // the server logs in root, to its passwd home
  ASSERT_NE(pw, nullptr);
  std::string login_home = pw->pw_dir;
  std::string landed = login_home + "/" + rel + "/x";
  EXPECT_EQ(slurp(landed), "relative");
  std::filesystem::remove_all(login_home + "/" + rel);
}

// ~/.ssh/config fills in what the URL leaves open (a host alias with HostName, Port, User);
// the URL's own port and user win over it.
TEST_F(SftpBackendTest, SshConfigFillsInAndUrlWins) {
  spit(dir_.file("store/x"), "via config");
  spit(dir_.file("home/.ssh/config"), "Host backuphost\n  HostName 127.0.0.1\n  Port " +
                                          std::to_string(server_->port()) +
                                          "\n  User root\n"
                                          "Host 127.0.0.1\n  Port 1\n  User nobody\n");
  auto alias = open("sftp://backuphost/" + dir_.file("store"), options(1, 5));
  ASSERT_TRUE(alias);
  auto r = alias->read("x");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(*r, "via config");
  auto direct = open(store_url(), options(1, 5));
  ASSERT_TRUE(direct);
  auto d = direct->read("x");
  ASSERT_TRUE(d.has_value()) << d.error().message;
  EXPECT_EQ(*d, "via config");
}

TEST_F(SftpBackendTest, ParallelReadsUseSeveralConnections) {
  TcpProxy proxy(server_->port());
  spit(known_hosts_, server_->known_hosts_line(proxy.port()));
  auto b = open(store_url(proxy.port()), options());
  ASSERT_TRUE(b);
  std::string data = random_bytes(3 << 20, 2);
  spit(dir_.file("store/v"), data);
  std::vector<std::future<bool>> readers;
  for (int i = 0; i < 4; ++i) {
    readers.push_back(std::async(std::launch::async, [&, i] {
      for (int k = 0; k < 6; ++k) {
        uint64_t off = static_cast<uint64_t>((i * 6 + k) * 100000);
        auto r = b->read_range("v", off, 1 << 20);
        if (!r || *r != data.substr(off, 1 << 20)) return false;
      }
      return true;
    }));
  }
  for (auto& r : readers) EXPECT_TRUE(r.get());
  EXPECT_GE(proxy.connections(), 2);
  EXPECT_LE(proxy.connections(), 4);  // BackendOptions::max_connections
}

TEST_F(SftpBackendTest, UnknownHostRefusedWithAdvice) {
  spit(known_hosts_, "");
  auto b = open(store_url(), options());
  ASSERT_TRUE(b);
  auto names = b->list();
  ASSERT_FALSE(names.has_value());
  EXPECT_EQ(names.error().kind, ErrorKind::kAuth);
  const std::string& m = names.error().message;
  EXPECT_NE(m.find("[127.0.0.1]:" + std::to_string(server_->port())), std::string::npos) << m;
  EXPECT_NE(m.find("unknown"), std::string::npos) << m;
  EXPECT_NE(m.find("ssh -p"), std::string::npos) << m;
  EXPECT_NE(m.find("SHA256:"), std::string::npos) << m;
  // Refused before logging in: the server saw no authentication attempt.
  EXPECT_EQ(server_->log().find("Accepted publickey"), std::string::npos) << server_->log();
}

TEST_F(SftpBackendTest, ChangedHostKeyRefusedAndNothingSent) {
  // Another ed25519 key recorded for the same host and port.
  SshServer other(dir_.file("other"));
  spit(known_hosts_,
       "[127.0.0.1]:" + std::to_string(server_->port()) + " " + other.host_public_key() + "\n");
  auto b = open(store_url(), options(3, 5));
  ASSERT_TRUE(b);
  auto t0 = Clock::now();
  auto w = b->write("should-not-exist", "data");
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().kind, ErrorKind::kAuth);
  const std::string& m = w.error().message;
  EXPECT_NE(m.find("host key verification failed"), std::string::npos) << m;
  EXPECT_NE(m.find("[127.0.0.1]:" + std::to_string(server_->port())), std::string::npos) << m;
  EXPECT_NE(m.find("ssh-keygen"), std::string::npos) << m;
  // Not retried (an answer, not a dropped connection).
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(3));
  EXPECT_FALSE(std::filesystem::exists(dir_.file("store/should-not-exist")));
  EXPECT_EQ(server_->log().find("Accepted publickey"), std::string::npos) << server_->log();
  EXPECT_EQ(server_->log().find("Failed publickey"), std::string::npos) << server_->log();
}

TEST_F(SftpBackendTest, KeyFromHomeSshAndRefusedLogin) {
  // Without -oIdentityFile, ~/.ssh/id_ed25519 (HOME's) is used.
  std::filesystem::copy_file(server_->identity_file(), dir_.file("home/.ssh/id_ed25519"));
  ::chmod(dir_.file("home/.ssh/id_ed25519").c_str(), 0600);
  BackendOptions o = options();
  o.ssh_options = "-oUserKnownHostsFile=" + known_hosts_;
  auto b = open(store_url(), o);
  ASSERT_TRUE(b);
  ASSERT_TRUE(b->write("x", "key from home").has_value());

  // No usable key at all: refused at once, saying what to do; the password is never shown.
  std::filesystem::remove(dir_.file("home/.ssh/id_ed25519"));
  o.password = "not-the-password";
  auto refused = open(store_url(), o);
  ASSERT_TRUE(refused);
  auto r = refused->list();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kAuth);
  EXPECT_NE(r.error().message.find("IdentityFile"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find("not-the-password"), std::string::npos) << r.error().message;
}

TEST_F(SftpBackendTest, AskpassAskedOnceWhenNoPassword) {
  BackendOptions o = options();
  int asked = 0;
  std::string prompt;
  o.ask_password = [&](const std::string& p) -> std::optional<std::string> {
    ++asked;
    prompt = p;
    return std::string("typed");
  };
  auto b = open(store_url(), o);
  ASSERT_TRUE(b);
  EXPECT_EQ(asked, 1);
  EXPECT_EQ(prompt, "Password for 'root@127.0.0.1': ");
  // The key still logs in; the password is only a fallback.
  ASSERT_TRUE(b->write("x", "askpass").has_value());
  // FTP_PASSWORD (options.password) or a password in the URL: no question.
  o.password = "from-env";
  auto c = open(store_url(), o);
  ASSERT_TRUE(c);
  EXPECT_EQ(asked, 1);
}

TEST_F(SftpBackendTest, ReadRetriedAfterConnectionCut) {
  TcpProxy proxy(server_->port());
  spit(known_hosts_, server_->known_hosts_line(proxy.port()));
  auto b = open(store_url(proxy.port()), options(3, 5));
  ASSERT_TRUE(b);
  std::string data = random_bytes(8 << 20, 3);
  spit(dir_.file("store/v"), data);
  ASSERT_TRUE(b->size("v").has_value());  // connected
  proxy.cut_after(2 << 20);               // in the middle of the next read
  auto r = b->read_range("v", 0, data.size());
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(proxy.cuts(), 1);
  EXPECT_TRUE(*r == data) << "got " << r->size() << " bytes";
}

TEST_F(SftpBackendTest, WriteRetriedAfterConnectionCut) {
  TcpProxy proxy(server_->port());
  spit(known_hosts_, server_->known_hosts_line(proxy.port()));
  auto b = open(store_url(proxy.port()), options(3, 5));
  ASSERT_TRUE(b);
  ASSERT_TRUE(b->list().has_value());
  std::string data = random_bytes(6 << 20, 4);
  proxy.cut_after(2 << 20, TcpProxy::Direction::kToServer);  // in the middle of the upload
  ASSERT_TRUE(b->write("vol", data).has_value());
  EXPECT_EQ(proxy.cuts(), 1);
  EXPECT_TRUE(slurp(dir_.file("store/vol")) == data);
  for (const auto& e : std::filesystem::directory_iterator(dir_.file("store"))) {
    EXPECT_EQ(e.path().filename().string().find("dupfs-tmp"), std::string::npos) << e.path();
  }
}

TEST_F(SftpBackendTest, KilledServerProcessIsRetried) {
  auto b = open(store_url(), options(3, 5));
  ASSERT_TRUE(b);
  std::string data = random_bytes(1 << 20, 5);
  spit(dir_.file("store/v"), data);
  ASSERT_TRUE(b->read("v").has_value());
  server_->kill_connections();  // the idle connection is gone
  auto r = b->read("v");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(*r == data);
}

TEST_F(SftpBackendTest, FrozenServerTimesOutThenRecovers) {
  auto b = open(store_url(), options(2, 2));
  ASSERT_TRUE(b);
  std::string data = random_bytes(2 << 20, 6);
  spit(dir_.file("store/v"), data);
  ASSERT_TRUE(b->read("v").has_value());
  server_->freeze();
  auto t0 = Clock::now();
  auto r = b->read_range("v", 0, 1 << 20);
  auto waited = Clock::now() - t0;
  server_->thaw();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kTimeout) << r.error().message;
  // Two tries of 2 s of silence each and one pause: well under 10 s.
  EXPECT_LT(waited, std::chrono::seconds(10));
  EXPECT_GE(waited, std::chrono::seconds(2));
  auto again = b->read_range("v", 0, 1 << 20);
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_TRUE(*again == data.substr(0, 1 << 20));
}

TEST_F(SftpBackendTest, DestroyingWhileServerFrozenDoesNotHang) {
  auto b = open(store_url(), options(2, 30));
  ASSERT_TRUE(b);
  ASSERT_TRUE(b->list().has_value());
  server_->freeze();
  auto t0 = Clock::now();
  b.reset();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(3));
  server_->thaw();
}

}  // namespace
}  // namespace dupfs

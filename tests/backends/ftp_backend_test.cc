// FTP storage: URL to libcurl URL mapping and NLST parsing (pure), then the backend against a
// real pyftpdlib server (Debian's python3-pyftpdlib, run by /usr/bin/python3) that the test
// starts on a free 127.0.0.1 port. The live tests are skipped when pyftpdlib is missing.
#include "backends/ftp_backend.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "backends/backend.h"
#include "tests/support/process.h"
#include "tests/support/source_tree.h"
#include "tests/support/temp_dir.h"

namespace dupfs {
namespace {

using test::Background;
using test::TempDir;
using Clock = std::chrono::steady_clock;
using Security = FtpLocation::Security;

// ---------------------------------------------------------------------------------------------
// Pure parts

FtpLocation parse(const std::string& url) {
  auto loc = parse_ftp_url(url);
  EXPECT_TRUE(loc.has_value()) << url << ": " << (loc ? "" : loc.error().message);
  return loc.value_or(FtpLocation{});
}

TEST(FtpUrlTest, PathsAsDuplicityLftpBackendHasThem) {
  // One leading '/' stripped: relative to the login directory.
  auto rel = parse("ftp://u@host/dir/sub");
  EXPECT_EQ(rel.directory, "dir/sub/");
  EXPECT_EQ(rel.curl_url(), "ftp://host/dir/sub/");
  EXPECT_EQ(rel.curl_url("duplicity-full.vol1.difftar.gz"),
            "ftp://host/dir/sub/duplicity-full.vol1.difftar.gz");
  EXPECT_EQ(parse("ftp://host/dir/").directory, "dir/");
  // Two: absolute.
  auto abs = parse("ftp://host//srv/backup");
  EXPECT_EQ(abs.directory, "/srv/backup/");
  EXPECT_EQ(abs.curl_url(), "ftp://host/%2Fsrv/backup/");
  EXPECT_EQ(abs.curl_url("x"), "ftp://host/%2Fsrv/backup/x");
  // None, or just '/': the root, not the login directory.
  for (const char* url : {"ftp://host", "ftp://host/"}) {
    auto root = parse(url);
    EXPECT_EQ(root.directory, "/") << url;
    EXPECT_EQ(root.curl_url(), "ftp://host/%2F") << url;
    EXPECT_EQ(root.curl_url("f"), "ftp://host/%2Ff") << url;
  }
  // Empty components are skipped; percent-decoded, then encoded again for libcurl.
  EXPECT_EQ(parse("ftp://host/a//b").curl_url(), "ftp://host/a/b/");
  auto spaced = parse("ftp://host/my%20dir/x+y");
  EXPECT_EQ(spaced.directory, "my dir/x+y/");
  EXPECT_EQ(spaced.curl_url("a b"), "ftp://host/my%20dir/x%2By/a%20b");
}

TEST(FtpUrlTest, SchemesUsersPortsAndDescribe) {
  auto plain = parse("ftp://alice:s3cret@Host.Example:2121/backups");
  EXPECT_EQ(plain.security, Security::kPlain);
  EXPECT_EQ(plain.user, "alice");
  EXPECT_EQ(plain.password, "s3cret");
  EXPECT_EQ(plain.host, "host.example");
  EXPECT_EQ(plain.port, 2121);
  EXPECT_EQ(plain.describe(), "ftp://alice@host.example:2121/backups");
  EXPECT_EQ(plain.curl_url(), "ftp://host.example:2121/backups/");

  auto implicit = parse("ftps://bob@h/b");
  EXPECT_EQ(implicit.security, Security::kImplicitTls);
  EXPECT_EQ(implicit.curl_url(), "ftps://h/b/");
  auto explicit_tls = parse("FTPES://bob@h/b");
  EXPECT_EQ(explicit_tls.security, Security::kExplicitTls);
  EXPECT_EQ(explicit_tls.curl_url(), "ftp://h/b/");  // AUTH TLS on a plain connection
  EXPECT_EQ(explicit_tls.describe(), "ftpes://bob@h/b");

  EXPECT_EQ(parse("lftp+ftp://h/b").security, Security::kPlain);
  EXPECT_EQ(parse("lftp+ftps://h/b").security, Security::kImplicitTls);
  EXPECT_EQ(parse("lftp+ftpes://h/b").security, Security::kExplicitTls);
  EXPECT_EQ(parse("lftp+ftpes://h/b").describe(), "lftp+ftpes://h/b");

  auto anonymous = parse("ftp://[::1]:21/x");
  EXPECT_FALSE(anonymous.user.has_value());
  EXPECT_EQ(anonymous.curl_url(), "ftp://[::1]:21/x/");
  EXPECT_EQ(parse("ftp://u:p%40ss@h/").password, "p@ss");

  EXPECT_TRUE(is_ftp_scheme("lftp+ftpes"));
  EXPECT_FALSE(is_ftp_scheme("lftp+sftp"));
  EXPECT_FALSE(is_ftp_scheme("sftp"));
}

TEST(FtpUrlTest, BadUrls) {
  auto no_host = parse_ftp_url("ftp:///dir");
  ASSERT_FALSE(no_host.has_value());
  EXPECT_EQ(no_host.error().kind, ErrorKind::kInvalidArgument);
  auto control = parse_ftp_url("ftp://h/a%0D%0ADELE%20x");
  ASSERT_FALSE(control.has_value());
  EXPECT_EQ(control.error().kind, ErrorKind::kInvalidArgument);
  // The password never shows in a message.
  auto port = parse_ftp_url("ftp://u:hunter2@h:99999/x");
  ASSERT_FALSE(port.has_value());
  EXPECT_EQ(port.error().message.find("hunter2"), std::string::npos) << port.error().message;
  // open_backend knows the schemes.
  auto b = open_backend("ftpes://u:pw@127.0.0.1:1/x");
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ((*b)->describe(), "ftpes://u@127.0.0.1:1/x");
}

TEST(FtpUrlTest, ActiveModeWithTlsNeedsCurl8) {
  BackendOptions o;
  o.ftp_active = true;
  EXPECT_TRUE(open_backend("ftp://u:pw@127.0.0.1:1/x", o).has_value());
  auto tls = open_backend("ftpes://u:pw@127.0.0.1:1/x", o);
  if (curl_version_info(CURLVERSION_NOW)->version_num < 0x080000) {
    ASSERT_FALSE(tls.has_value());
    EXPECT_EQ(tls.error().kind, ErrorKind::kUnsupported);
    EXPECT_NE(tls.error().message.find("--ftp-regular"), std::string::npos);
  } else {
    EXPECT_TRUE(tls.has_value());
  }
}

TEST(FtpNameListTest, Parses) {
  EXPECT_EQ(parse_name_list("a\r\nb c\r\n\r\n.\r\n..\r\nsub/d\nlast"),
            (std::vector<std::string>{"a", "b c", "d", "last"}));
  EXPECT_TRUE(parse_name_list("").empty());
  EXPECT_EQ(parse_name_list("only\r\n"), std::vector<std::string>{"only"});
}

// ---------------------------------------------------------------------------------------------
// Against pyftpdlib

constexpr const char* kServerScript = R"PY(
import logging, os, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
port, home, login = sys.argv[1:4]
# Every command in the log (pyftpdlib logs them at DEBUG), for tests that look at them.
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
authorizer = DummyAuthorizer()
authorizer.add_user("dupfs", os.environ["FTP_TEST_PASSWORD"], home, perm="elradfmwMT")
class Handler(FTPHandler):
    def on_login(self, username):
        self.fs.cwd = login  # the login directory, in the user's chroot
Handler.authorizer = authorizer
server = FTPServer(("127.0.0.1", int(port)), Handler)
server.serve_forever()
)PY";

bool have_pyftpdlib() {
  static const bool have =
      test::run({"/usr/bin/python3", "-c", "import pyftpdlib"}, {}, std::chrono::seconds(20)).ok();
  return have;
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

class FtpBackendTest : public ::testing::Test {
 protected:
  void SetUp() override { start("/"); }
  // The server, with `login` (a directory in the user's chroot, home()) as the login directory.
  void start(const std::string& login) {
    if (!have_pyftpdlib()) GTEST_SKIP() << "/usr/bin/python3 has no pyftpdlib";
    server_.reset();
    std::filesystem::create_directories(home() + login);
    test::write_file(dir_.file("server.py"), kServerScript);
    port_ = free_port();
    server_ = std::make_unique<Background>(
        std::vector<std::string>{"/usr/bin/python3", dir_.file("server.py"), std::to_string(port_),
                                 home(), login},
        dir_.file("server.log"), std::map<std::string, std::string>{{"FTP_TEST_PASSWORD", "pw"}});
    ASSERT_TRUE(test::wait_until([&] { return accepts(port_); }, std::chrono::seconds(20)))
        << test::read_file(dir_.file("server.log"));
  }

  std::string home() const { return dir_.file("home"); }
  std::string url(const std::string& path, const std::string& login = "dupfs:pw") const {
    return "ftp://" + login + "@127.0.0.1:" + std::to_string(port_) + "/" + path;
  }
  BackendOptions options(int retries = 2, int timeout = 5) const {
    BackendOptions o;
    o.num_retries = retries;
    o.timeout = std::chrono::seconds(timeout);
    return o;
  }
  std::unique_ptr<Backend> open(const std::string& u, const BackendOptions& o) {
    auto b = open_backend(u, o);
    EXPECT_TRUE(b.has_value()) << (b ? "" : b.error().message);
    return b ? std::move(*b) : nullptr;
  }

  TempDir dir_{"dupfs-ftp-backend-"};
  int port_ = 0;
  std::unique_ptr<Background> server_;
};

TEST_F(FtpBackendTest, ListSizeReadWriteRemove) {
  auto b = open(url("store"), options());
  ASSERT_TRUE(b);
  auto missing = b->list();
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound) << missing.error().message;

  std::string data = test::pseudo_random_bytes(3 << 20, 1);
  ASSERT_TRUE(b->write("vol1", data).has_value());  // creates store/
  EXPECT_EQ(test::read_file(home() + "/store/vol1"), data);
  ASSERT_TRUE(b->write("empty", "").has_value());
  auto names = b->list();
  ASSERT_TRUE(names.has_value()) << names.error().message;
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"empty", "vol1"}));  // no temporary files left

  EXPECT_EQ(b->size("vol1").value_or(0), data.size());
  EXPECT_EQ(b->size("empty").value_or(1), 0u);
  EXPECT_EQ(b->size("nope").error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(b->read("vol1").value_or(""), data);
  EXPECT_EQ(b->read("empty").value_or("x"), "");
  EXPECT_EQ(b->read("nope").error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(b->read_range("nope", 0, 10).error().kind, ErrorKind::kNotFound);

  auto exists = b->write("vol1", "other");
  ASSERT_FALSE(exists.has_value());
  EXPECT_EQ(exists.error().kind, ErrorKind::kExists);
  EXPECT_EQ(test::read_file(home() + "/store/vol1"), data);

  ASSERT_TRUE(b->remove("vol1").has_value());
  EXPECT_FALSE(std::filesystem::exists(home() + "/store/vol1"));
  auto gone = b->remove("vol1");
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().kind, ErrorKind::kNotFound) << gone.error().message;
  EXPECT_EQ(b->list().value_or(std::vector<std::string>{"x"}), std::vector<std::string>{"empty"});
}

// --ftp-regular: active mode (the server connects back to a port dupfs listens on).
TEST_F(FtpBackendTest, ActiveModeListsReadsAndWrites) {
  BackendOptions o = options();
  o.ftp_active = true;
  auto b = open(url("active"), o);
  ASSERT_TRUE(b);
  std::string data = test::pseudo_random_bytes(2 << 20, 3);
  ASSERT_TRUE(b->write("vol1", data).has_value());
  EXPECT_EQ(test::read_file(home() + "/active/vol1"), data);
  EXPECT_EQ(b->list().value_or(std::vector<std::string>{}), std::vector<std::string>{"vol1"});
  EXPECT_EQ(b->read("vol1").value_or(""), data);
  EXPECT_EQ(b->read_range("vol1", 12345, 1000).value_or(""), data.substr(12345, 1000));
  std::string log = test::read_file(dir_.file("server.log"));
  EXPECT_TRUE(log.find("<- EPRT ") != std::string::npos ||
              log.find("<- PORT ") != std::string::npos)
      << "no PORT or EPRT in the server's log: not active mode";
  EXPECT_EQ(log.find("<- PASV"), std::string::npos);
  EXPECT_EQ(log.find("<- EPSV"), std::string::npos);
}

TEST_F(FtpBackendTest, RangesAreExact) {
  auto b = open(url("r"), options());
  ASSERT_TRUE(b);
  const size_t total = FtpBackend::kReadWindow * 2 + 12345;
  std::string data = test::pseudo_random_bytes(total, 2);
  ASSERT_TRUE(b->write("v", data).has_value());
  // Sequential pieces (served from windows), then random ones, then the ends.
  std::string whole;
  for (;;) {
    auto piece = b->read_range("v", whole.size(), 1 << 20);
    ASSERT_TRUE(piece.has_value()) << piece.error().message;
    whole += *piece;
    if (piece->size() < (1u << 20)) break;
  }
  EXPECT_TRUE(whole == data);
  std::mt19937 gen(3);
  for (int i = 0; i < 20; ++i) {
    uint64_t off = gen() % (total + 10);
    size_t len = gen() % (3 << 20);
    auto r = b->read_range("v", off, len);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    std::string want = off >= total ? "" : data.substr(off, len);
    EXPECT_TRUE(*r == want) << off << " " << len << " got " << r->size();
  }
  EXPECT_EQ(b->read_range("v", total, 10).value_or("x"), "");
  EXPECT_EQ(b->read_range("v", total + 100, 10).value_or("x"), "");
  EXPECT_EQ(b->read_range("v", total - 3, 10).value_or(""), data.substr(total - 3));
  EXPECT_EQ(b->read_range("v", 0, 0).value_or("x"), "");
  // A write of another object with the same name is seen (windows are forgotten).
  ASSERT_TRUE(b->remove("v").has_value());
  ASSERT_TRUE(b->write("v", "short").has_value());
  EXPECT_EQ(b->read_range("v", 0, 100).value_or(""), "short");
}

TEST_F(FtpBackendTest, RelativeAndAbsolutePaths) {
  // The user's home is the server's root here (pyftpdlib chroots): ftp://h/a and ftp://h//a
  // are the same directory, and ftp://h/ is the home itself.
  std::filesystem::create_directories(home() + "/a");
  test::write_file(home() + "/a/f", "x");
  test::write_file(home() + "/top", "y");
  for (const char* path : {"a", "/a", "a/", "/a/"}) {
    auto b = open(url(path), options());
    ASSERT_TRUE(b);
    EXPECT_EQ(b->list().value_or(std::vector<std::string>{}), std::vector<std::string>{"f"})
        << path;
  }
  auto root = open(url(""), options());
  auto names = root->list();
  ASSERT_TRUE(names.has_value()) << names.error().message;
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"a", "top"}));  // NLST names directories too
  EXPECT_EQ(root->read("top").value_or(""), "y");
  // Names with spaces, and directories made on the way.
  auto deep = open(url("x%20y/z"), options());
  ASSERT_TRUE(deep->write("n m", "1").has_value());
  EXPECT_EQ(test::read_file(home() + "/x y/z/n m"), "1");
  EXPECT_EQ(deep->list().value_or(std::vector<std::string>{}), std::vector<std::string>{"n m"});
  EXPECT_EQ(deep->size("n m").value_or(0), 1u);
}

TEST_F(FtpBackendTest, LoginDirectoryAndRootAsDuplicityHasThem) {
  // Checked against duplicity 0.8 + lftp on the same server: ftp://h/rel is LOGIN/rel,
  // ftp://h//abs is /abs, ftp://h/ and ftp://h are the root.
  start("/login");
  for (auto [path, where] : std::vector<std::pair<std::string, std::string>>{
           {"rel", "/login/rel/"}, {"/abs", "/abs/"}, {"", "/"}, {"a/b", "/login/a/b/"}}) {
    auto b = open(url(path), options());
    ASSERT_TRUE(b->write("f", path).has_value()) << path;
    EXPECT_EQ(test::read_file(home() + where + "f"), path) << path;
    EXPECT_EQ(b->read("f").value_or("?"), path);
    ASSERT_TRUE(b->remove("f").has_value());
  }
  auto no_slash = open_backend("ftp://dupfs:pw@127.0.0.1:" + std::to_string(port_), options());
  ASSERT_TRUE(no_slash.has_value());
  ASSERT_TRUE((*no_slash)->write("g", "1").has_value());
  EXPECT_EQ(test::read_file(home() + "/g"), "1");
}

TEST_F(FtpBackendTest, WrongPasswordIsOneClearLine) {
  auto b = open(url("store", "dupfs:wrong"), options(3, 5));
  ASSERT_TRUE(b);
  auto t0 = Clock::now();
  auto r = b->list();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kAuth) << r.error().message;
  EXPECT_NE(r.error().message.find("refused the login as 'dupfs'"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(r.error().message.find("wrong"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
  // Not tried again (pyftpdlib answers a wrong password after 3 s).
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
}

TEST_F(FtpBackendTest, PasswordFromOptionsThenAsked) {
  auto o = options();
  o.password = "pw";
  auto b = open(url("p", "dupfs"), o);
  ASSERT_TRUE(b->write("f", "1").has_value());
  int asked = 0;
  auto o2 = options();
  o2.ask_password = [&](const std::string& prompt) -> std::optional<std::string> {
    ++asked;
    EXPECT_EQ(prompt, "Password for 'dupfs@127.0.0.1': ");
    return "pw";
  };
  auto c = open(url("p", "dupfs"), o2);
  EXPECT_EQ(asked, 1);
  EXPECT_EQ(c->read("f").value_or(""), "1");
  EXPECT_EQ(asked, 1);
}

TEST_F(FtpBackendTest, StoppedAndFrozenServersAreBounded) {
  auto b = open(url("s"), options(2, 2));
  ASSERT_TRUE(b->write("f", "1").has_value());
  ASSERT_EQ(::kill(-server_->pid(), SIGSTOP), 0);
  auto t0 = Clock::now();
  auto r = b->list();
  auto waited = Clock::now() - t0;
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kTimeout) << r.error().message;
  EXPECT_LT(waited, std::chrono::seconds(10));
  // Closing the kept connections (FTP's QUIT) does not wait long on a frozen server.
  t0 = Clock::now();
  b.reset();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
  ::kill(-server_->pid(), SIGCONT);
  auto c = open(url("s"), options(2, 2));
  EXPECT_EQ(c->read("f").value_or(""), "1");
  server_->kill();
  t0 = Clock::now();
  auto gone = c->read("f");
  ASSERT_FALSE(gone.has_value());
  EXPECT_FALSE(is_permanent(gone.error().kind)) << gone.error().message;
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(10));
}

TEST_F(FtpBackendTest, DestroyingWhileServerFrozenDoesNotHang) {
  auto b = open(url("s"), options(2, 30));
  ASSERT_TRUE(b->write("f", "1").has_value());
  ASSERT_TRUE(b->list().has_value());  // a kept, idle connection
  ASSERT_EQ(::kill(-server_->pid(), SIGSTOP), 0);
  auto t0 = Clock::now();
  b.reset();
  auto waited = Clock::now() - t0;
  ::kill(-server_->pid(), SIGCONT);
  EXPECT_LT(waited, std::chrono::seconds(3));
}

}  // namespace
}  // namespace dupfs

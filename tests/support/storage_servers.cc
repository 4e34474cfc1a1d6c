#include "tests/support/storage_servers.h"

#include <openssl/evp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/net.h"
#include "tests/support/process.h"

namespace dupfs::test {
namespace {

namespace fs = std::filesystem;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const std::string& path, const std::string& text, mode_t mode = 0600) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + path);
  }
  ::chmod(path.c_str(), mode);
}

std::string digest_bytes(const EVP_MD* md, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1) {
    throw std::runtime_error("EVP_Digest failed");
  }
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (unsigned char c : bytes) {
    s += digits[c >> 4];
    s += digits[c & 15];
  }
  return s;
}

std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// Adds o+x to path and each of its ancestors that lacks it, so another user can reach what is
// below (a mkdtemp directory is 0700).
void make_traversable(const fs::path& path) {
  for (fs::path p = fs::absolute(path); !p.empty(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0 && (st.st_mode & S_IXOTH) == 0) {
      ::chmod(p.c_str(), (st.st_mode & 07777) | S_IXOTH);
    }
    if (p == p.root_path()) break;
  }
}

void chown_to(const std::string& path, uid_t uid, gid_t gid) {
  if (::chown(path.c_str(), uid, gid) != 0) {
    throw std::runtime_error("chown " + path + " failed (the WebDAV server needs root)");
  }
}

using Clock = std::chrono::steady_clock;

}  // namespace

// ---------------------------------------------------------------------------------------------

TestServer::TestServer(const std::string& dir, const std::string& name) : dir_(dir + "/" + name) {
  fs::create_directories(dir_);
}

TestServer::~TestServer() { stop(); }

pid_t TestServer::pid() const { return server_ ? server_->pid() : -1; }

bool TestServer::running() const { return server_ && server_->running(); }

bool TestServer::launch() {
  std::vector<std::string> argv = command();
  server_ = std::make_unique<Background>(argv, dir_ + "/server.log", environment());
  frozen_ = false;
  auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline) {
    if (accepts_connections(port_, std::chrono::milliseconds(0))) {
      ready();
      return true;
    }
    if (!server_->running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  server_->kill();
  server_.reset();
  return false;
}

void TestServer::start_on_free_port() {
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_port();
    if (launch()) return;
  }
  throw std::runtime_error("server in " + dir_ + " did not start: " + log());
}

void TestServer::start() {
  if (running()) return;
  if (!launch()) {
    throw std::runtime_error("server in " + dir_ + " did not start again on port " +
                             std::to_string(port_) + ": " + log());
  }
}

void TestServer::stop() {
  if (!server_) return;
  pid_t group = server_->pid();
  if (group > 0) {
    ::kill(-group, SIGCONT);  // a frozen server cannot act on SIGTERM
    server_->signal(SIGTERM);
    if (!server_->wait(std::chrono::seconds(5))) server_->kill();
  }
  server_.reset();
  frozen_ = false;
}

void TestServer::freeze() {
  if (pid() > 0) ::kill(-pid(), SIGSTOP);
  frozen_ = true;
}

void TestServer::thaw() {
  if (pid() > 0) ::kill(-pid(), SIGCONT);
  frozen_ = false;
}

std::string TestServer::log() const {
  std::string text = read_text(dir_ + "/server.log");
  for (const std::string& f : log_files()) {
    text += "\n--- " + f + ":\n" + read_text(f);
  }
  return text;
}

SelfSignedCertificate make_self_signed_certificate(const std::string& dir) {
  fs::create_directories(dir);
  SelfSignedCertificate c{dir + "/cert.pem", dir + "/key.pem"};
  auto r = run({"openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                c.key_file,
                "-out",
                c.cert_file,
                "-days",
                "7",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-addext",
                "basicConstraints=critical,CA:TRUE"},
               {}, std::chrono::seconds(60));
  if (!r.ok()) throw std::runtime_error("openssl req failed: " + describe({"openssl", "req"}, r));
  ::chmod(c.key_file.c_str(), 0600);
  ::chmod(c.cert_file.c_str(), 0644);
  return c;
}

// ---------------------------------------------------------------------------------------------

S3Server::S3Server(const std::string& dir) : TestServer(dir, "s3rver") {
  fs::create_directories(data_dir());
  start_on_free_port();
}

S3Server::~S3Server() { stop(); }

std::string S3Server::endpoint_url(int port) { return "http://127.0.0.1:" + std::to_string(port); }

std::map<std::string, std::string> S3Server::client_env() {
  return {{"AWS_ACCESS_KEY_ID", kAccessKeyId},
          {"AWS_SECRET_ACCESS_KEY", kSecretAccessKey},
          {"AWS_DEFAULT_REGION", "us-east-1"}};
}

void S3Server::create_bucket(const std::string& name) {
  fs::create_directories(data_dir() + "/" + name);
}

std::vector<std::string> S3Server::command() {
  const char* prefix = std::getenv("DUPFS_S3RVER_PREFIX");
  std::string script = std::string(prefix != nullptr && *prefix != '\0' ? prefix : kS3rverPrefix) +
                       "/node_modules/s3rver/bin/s3rver.js";
  if (!fs::exists(script)) {
    throw std::runtime_error(script + " is missing: run scripts/install-deps (s3rver from npm)");
  }
  return {"node", "--openssl-legacy-provider", script, "-d", data_dir(), "-a", "127.0.0.1",
          "-p",   std::to_string(port_)};
}

// ---------------------------------------------------------------------------------------------

S3SignatureFront::S3SignatureFront(const std::string& dir, const S3Server& s3)
    : TestServer(dir, "s3front"), s3rver_port_(s3.port()) {
  start_on_free_port();
}

S3SignatureFront::~S3SignatureFront() { stop(); }

std::vector<std::string> S3SignatureFront::command() {
  return {"/usr/bin/python3", S3_SIGV4_FRONT, std::to_string(port_), std::to_string(s3rver_port_)};
}

uint64_t S3SignatureFront::bytes_out() const {
  auto r = run({"curl", "-sS", "--max-time", "10", endpoint_url() + "/__dupfs_front/bytes_out"}, {},
               std::chrono::seconds(20));
  if (!r.ok()) throw std::runtime_error("S3SignatureFront: cannot ask for bytes_out: " + r.err);
  return std::stoull(r.out);
}

// ---------------------------------------------------------------------------------------------

WebDavServer::WebDavServer(const std::string& dir, const Options& options)
    : TestServer(dir, "webdav"), options_(options) {
  if (options_.prefix.size() < 2 || options_.prefix.front() != '/' ||
      options_.prefix.back() != '/') {
    throw std::invalid_argument("WebDavServer: prefix must look like /dav/");
  }
  passwd* www = ::getpwnam("www-data");
  if (www == nullptr) throw std::runtime_error("WebDavServer: no www-data user");
  make_traversable(dir_);
  dav_dir_ = dir_ + "/htdocs" + options_.prefix.substr(0, options_.prefix.size() - 1);
  fs::create_directories(dav_dir_);
  fs::create_directories(dir_ + "/lock");
  for (fs::path p = dav_dir_; p != fs::path(dir_); p = p.parent_path()) {
    chown_to(p.string(), www->pw_uid, www->pw_gid);
  }
  chown_to(dir_ + "/lock", www->pw_uid, www->pw_gid);
  // The password file: read by the workers (www-data), so root:www-data 0640.
  std::string users = dir_ + "/users";
  if (options_.auth == Auth::kBasic) {
    write_text(
        users,
        std::string(kUser) + ":{SHA}" + base64(digest_bytes(EVP_sha1(), options_.password)) + "\n",
        0640);
  } else {
    std::string ha1 =
        hex(digest_bytes(EVP_md5(), std::string(kUser) + ":" + kRealm + ":" + options_.password));
    write_text(users, std::string(kUser) + ":" + kRealm + ":" + ha1 + "\n", 0640);
  }
  chown_to(users, 0, www->pw_gid);
  if (options_.https) cert_ = make_self_signed_certificate(dir_ + "/tls");
  start_on_free_port();
}

WebDavServer::~WebDavServer() { stop(); }

std::string WebDavServer::base_url(int port) const {
  return std::string(options_.https ? "https" : "http") + "://127.0.0.1:" + std::to_string(port);
}

std::string WebDavServer::duplicity_url(const std::string& path) const {
  return std::string(options_.https ? "webdavs" : "webdav") + "://" + kUser +
         "@127.0.0.1:" + std::to_string(port()) + options_.prefix + path;
}

std::vector<std::string> WebDavServer::log_files() const {
  return {dir_ + "/error.log", dir_ + "/access.log"};
}

std::vector<std::string> WebDavServer::command() {
  const std::string modules = "/usr/lib/apache2/modules/";
  std::ostringstream c;
  auto load = [&](const char* name, const char* file) {
    c << "LoadModule " << name << " " << modules << file << "\n";
  };
  c << "ServerRoot " << dir_ << "\n"
    << "Listen 127.0.0.1:" << port_ << "\n"
    << "ServerName 127.0.0.1:" << port_ << "\n"
    << "PidFile " << dir_ << "/httpd.pid\n"
    << "Mutex file:" << dir_ << "/lock default\n"
    << "User www-data\nGroup www-data\n"
    << "ErrorLog " << dir_ << "/error.log\n"
    << "LogLevel info\n"
    << "LogFormat \"%h %u \\\"%r\\\" %>s %I %O\" io\n"
    << "CustomLog " << dir_ << "/access.log io\n"
    << "Timeout 60\nKeepAlive On\n"
    << "StartServers 1\nServerLimit 2\nThreadsPerChild 16\nMaxRequestWorkers 32\n"
    << "MinSpareThreads 4\nMaxSpareThreads 32\n";
  load("mpm_event_module", "mod_mpm_event.so");
  load("authn_core_module", "mod_authn_core.so");
  load("authz_core_module", "mod_authz_core.so");
  load("authn_file_module", "mod_authn_file.so");
  load("authz_user_module", "mod_authz_user.so");
  load("auth_basic_module", "mod_auth_basic.so");
  load("auth_digest_module", "mod_auth_digest.so");
  load("dav_module", "mod_dav.so");
  load("dav_fs_module", "mod_dav_fs.so");
  load("alias_module", "mod_alias.so");
  if (options_.https) {
    load("socache_shmcb_module", "mod_socache_shmcb.so");
    load("ssl_module", "mod_ssl.so");
    c << "SSLEngine on\n"
      << "SSLCertificateFile " << cert_.cert_file << "\n"
      << "SSLCertificateKeyFile " << cert_.key_file << "\n"
      << "SSLSessionCache shmcb:" << dir_ << "/lock/ssl_scache(512000)\n";
  }
  c << "DavLockDB " << dir_ << "/lock/DavLock\n"
    << "DocumentRoot " << dir_ << "/htdocs\n"
    << "<Directory />\n  Require all denied\n  AllowOverride None\n</Directory>\n"
    << "<Directory " << dir_ << "/htdocs>\n  Require all granted\n</Directory>\n"
    << "<Location " << options_.prefix << ">\n"
    << "  Dav On\n"
    << "  AuthName \"" << kRealm << "\"\n";
  if (options_.auth == Auth::kBasic) {
    c << "  AuthType Basic\n  AuthBasicProvider file\n";
  } else {
    c << "  AuthType Digest\n  AuthDigestProvider file\n  AuthDigestDomain " << options_.prefix
      << "\n";
  }
  c << "  AuthUserFile " << dir_ << "/users\n"
    << "  Require valid-user\n"
    << "</Location>\n";
  if (!options_.redirect_from.empty()) {
    c << "Redirect 301 " << options_.redirect_from << " " << base_url(port_) << options_.prefix
      << "\n";
  }
  std::string config = dir_ + "/httpd.conf";
  write_text(config, c.str(), 0644);
  return {"/usr/sbin/apache2", "-d", dir_, "-f", config, "-DFOREGROUND"};
}

// ---------------------------------------------------------------------------------------------

namespace {

// The FTP server: pyftpdlib with one virtual user. argv: port home mode certfile keyfile user;
// the password comes in DUPFS_FTP_PASSWORD.
constexpr const char* kFtpScript = R"PY(
import logging, os, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

port, home, mode, certfile, keyfile, user = sys.argv[1:7]
logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                    format="%(asctime)s %(levelname)s %(message)s")
authorizer = DummyAuthorizer()
authorizer.add_user(user, os.environ["DUPFS_FTP_PASSWORD"], home, perm="elradfmwMT")

if mode == "plain":
    class Handler(FTPHandler):
        pass
else:
    from pyftpdlib.handlers import TLS_FTPHandler

    class Handler(TLS_FTPHandler):
        tls_control_required = True
        tls_data_required = True

    if mode == "implicit":
        # TLS from the first byte: handshake first, the 220 greeting afterwards.
        def handle(self):
            self.secure_connection(self.ssl_context)

        def handle_ssl_established(self):
            FTPHandler.handle(self)

        Handler.handle = handle
        Handler.handle_ssl_established = handle_ssl_established
        # PROT P does not need the PBSZ that clients send only after AUTH TLS.
    from pyftpdlib.handlers import TLS_DTPHandler

    class DTPHandler(TLS_DTPHandler):
        # pyftpdlib 1.5.7 closes a data connection that turns readable before its transfer
        # command arrived, which is what a client that starts TLS on the data connection right
        # after connecting does (curl and libcurl do; lftp sends RETR/STOR first): keep
        # reading while the handshake runs.
        def readable(self):
            if self._ssl_accepting or self._ssl_want_read:
                return True
            return super().readable()

    Handler.dtp_handler = DTPHandler
    # At most TLS 1.2: over TLS 1.3 the server sends its session ticket after the handshake,
    # clients that never read the data connection during an upload (lftp 4.9, libcurl < 8.10)
    # close it with the ticket unread, the kernel resets the connection and the end of the
    # upload is lost (curl issue 6149): duplicity's own volumes arrive damaged.
    from OpenSSL import SSL
    Handler.ssl_options = (SSL.OP_NO_SSLv2 | SSL.OP_NO_SSLv3 | SSL.OP_NO_COMPRESSION |
                           SSL.OP_NO_TLSv1_3)
    Handler.certfile = certfile
    Handler.keyfile = keyfile

Handler.authorizer = authorizer
Handler.banner = "dupfs test FTP server (%s)" % mode
Handler.permit_foreign_addresses = False
server = FTPServer(("127.0.0.1", int(port)), Handler)
server.max_cons = 64
server.serve_forever()
)PY";

}  // namespace

FtpServer::FtpServer(const std::string& dir, const Options& options)
    : TestServer(dir, "ftp"), options_(options) {
  fs::create_directories(home_dir());
  write_text(dir_ + "/ftp_server.py", kFtpScript, 0644);
  if (options_.security != Security::kPlain) cert_ = make_self_signed_certificate(dir_ + "/tls");
  start_on_free_port();
}

FtpServer::~FtpServer() { stop(); }

std::string FtpServer::duplicity_url(const std::string& path) const {
  const char* scheme = options_.security == Security::kPlain         ? "ftp"
                       : options_.security == Security::kExplicitTls ? "ftpes"
                                                                     : "ftps";
  return std::string(scheme) + "://" + kUser + "@127.0.0.1:" + std::to_string(port()) + "/" + path;
}

std::vector<std::string> FtpServer::command() {
  const char* mode = options_.security == Security::kPlain         ? "plain"
                     : options_.security == Security::kExplicitTls ? "explicit"
                                                                   : "implicit";
  return {"/usr/bin/python3",
          "-u",
          dir_ + "/ftp_server.py",
          std::to_string(port_),
          home_dir(),
          mode,
          cert_.cert_file.empty() ? "-" : cert_.cert_file,
          cert_.key_file.empty() ? "-" : cert_.key_file,
          kUser};
}

std::map<std::string, std::string> FtpServer::environment() const {
  return {{"DUPFS_FTP_PASSWORD", options_.password}};
}

}  // namespace dupfs::test

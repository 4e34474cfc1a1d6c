// Real storage servers for tests of the S3, WebDAV and FTP backends, each on a free 127.0.0.1
// port, in the style of SshServer (sshd.h).
//
// Each class takes a directory the test owns (it must exist and outlive the server; the
// server's files go into a subdirectory of it), writes its configuration there, starts the
// server in its own process group (tests/support/process.h's Background), waits until it accepts
// connections and throws std::runtime_error with the server's log when it does not. The
// destructor stops it (SIGCONT then SIGTERM to the process group, SIGKILL after 5 s: frozen
// servers die too). stop() takes the server away and start() brings it back on the SAME port
// (and with the same data), so a test can see a client fail and recover. freeze()/thaw()
// SIGSTOP/SIGCONT the whole process group: the kernel still accepts TCP connections, but nothing
// answers. Secrets never go on a command line: passwords are in files or the environment.
//
// Byte counts: put a TcpProxy (tcp_proxy.h) in front of port() and give clients the proxy's port
// (for S3 and WebDAV the Host header then names the proxy's port, which neither server minds).
//
// What is needed on the machine (scripts/install-deps installs all of it): node and s3rver 3.7.1
// under kS3rverPrefix; apache2-bin; python3-pyftpdlib and python3-openssl (for Debian's
// /usr/bin/python3, not whatever python3 comes first in PATH); openssl.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace dupfs::test {

class Background;

// What the servers have in common: the process, its port and its log.
class TestServer {
 public:
  virtual ~TestServer();
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  int port() const { return port_; }
  pid_t pid() const;  // the server's main process; -1 while it is stopped
  bool running() const;
  // Ends the server (and every process in its group, frozen or not); its data stays. No-op
  // when it is not running.
  void stop();
  // Starts it again on the port it had (after stop()); waits until it accepts connections.
  // Throws std::runtime_error with the log when it does not within 20 s.
  void start();
  // SIGSTOP / SIGCONT to every process of the server.
  void freeze();
  void thaw();
  bool frozen() const { return frozen_; }
  // Everything the server printed (stdout and stderr) plus its own log files, if any.
  std::string log() const;
  // The directory holding the server's configuration, data and logs.
  const std::string& dir() const { return dir_; }

 protected:
  // dir/<name>/ is made and becomes dir().
  TestServer(const std::string& dir, const std::string& name);
  // First start from a derived constructor: picks a free port, retried a few times on fresh
  // ports if the server does not come up (another process may have taken the port).
  void start_on_free_port();
  // The server's command line for port_ (called before each start; may (re)write config files).
  virtual std::vector<std::string> command() = 0;
  virtual std::map<std::string, std::string> environment() const { return {}; }
  // Log files the server writes besides its stdout/stderr (shown by log()).
  virtual std::vector<std::string> log_files() const { return {}; }
  // Runs when the server accepts connections, before start() returns.
  virtual void ready() {}

  std::string dir_;
  int port_ = 0;

 private:
  bool launch();  // one attempt on port_; false (server killed) when it does not come up
  std::unique_ptr<Background> server_;
  bool frozen_ = false;
};

// A self-signed certificate for 127.0.0.1 (subjectAltName IP:127.0.0.1 and DNS:localhost,
// CN=127.0.0.1, an EC P-256 key, valid for 7 days, basicConstraints CA:TRUE so that it is its
// own CA): `openssl req -x509` writing dir/cert.pem and dir/key.pem. The certificate file is
// what clients verify the server with (duplicity --ssl-cacert-file, curl --cacert).
struct SelfSignedCertificate {
  std::string cert_file;
  std::string key_file;
};
SelfSignedCertificate make_self_signed_certificate(const std::string& dir);

// ---------------------------------------------------------------------------------------------
// S3: s3rver 3.7.1 (node), `node --openssl-legacy-provider .../s3rver.js -d DATA -a 127.0.0.1
// -p PORT`, signature checking left on (no --allow-mismatched-signatures).
//
// What s3rver 3.7.1 checks and what it does not (read in lib/middleware/authentication.js and
// lib/controllers, and tried with Debian's boto3 1.26 / botocore 1.29):
//  - A request WITHOUT any Authorization header or signature query parameter is served
//    (anonymous access is allowed; GET of an object with plain curl works).
//  - SigV2 (Authorization: AWS key:sig, and ?Signature= query URLs) is fully verified:
//    a wrong signature gets 403 SignatureDoesNotMatch.
//  - SigV4 header auth (what botocore uses): only checked for form. The access key id must be
//    a known one (S3RVER; another gets 403 InvalidAccessKeyId), the x-amz-content-sha256 header
//    must be present and be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD or 64 hex
//    digits, the Authorization header must have Credential, SignedHeaders and Signature, and
//    x-amz-date (or Date) must be within 15 minutes of the server's clock. The signature itself
//    is NOT verified ("Signature version 4 calculation is unimplemented"): a wrong secret key
//    works. The payload hash in x-amz-content-sha256 is NOT compared with the body.
//  - SigV4 presigned URLs (X-Amz-Algorithm=...): only the access key and expiry are checked.
//  - Content-MD5 is NOT verified (a PUT with a wrong Content-MD5 is stored).
//  - Path-style addressing: http://127.0.0.1:PORT/BUCKET/KEY. s3rver treats a request as
//    virtual-host style only when the Host is neither an IP nor localhost nor the machine's
//    name; botocore 1.29 with endpoint_url http://127.0.0.1:PORT uses path style by itself.
//  - Supported and seen working: HEAD bucket (404 for a missing bucket), PUT/GET/HEAD/DELETE
//    object, Range GET (206 with Content-Range), multipart upload (create, upload part,
//    complete), ListObjects (v1) and ListObjectsV2 with max-keys and continuation tokens. The
//    continuation token is DES-encrypted, which node 17+ (OpenSSL 3) refuses unless node runs
//    with --openssl-legacy-provider (without it every truncated ListObjectsV2 is a 500
//    InternalError), hence the flag.
//  - A bucket is a directory under the data dir: create_bucket() makes it with mkdir, which
//    s3rver 3.7.1's filesystem store lists and serves at once (no restart).
class S3Server : public TestServer {
 public:
  // s3rver's built-in account.
  static constexpr const char* kAccessKeyId = "S3RVER";
  static constexpr const char* kSecretAccessKey = "S3RVER";
  // Where scripts/install-deps puts s3rver (npm install --prefix); DUPFS_S3RVER_PREFIX
  // overrides it.
  static constexpr const char* kS3rverPrefix = "/opt/dupfs-test/s3rver";

  // Data and logs go into dir/s3rver/.
  explicit S3Server(const std::string& dir);
  ~S3Server() override;

  // "http://127.0.0.1:PORT" (pass a proxy's port to get the URL through a TcpProxy).
  std::string endpoint_url() const { return endpoint_url(port()); }
  static std::string endpoint_url(int port);
  // Makes an empty bucket (a directory in the data dir).
  void create_bucket(const std::string& name);
  // The data directory: bucket/key/.../NAME._S3rver_object holds an object's bytes.
  std::string data_dir() const { return dir_ + "/data"; }
  // AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_DEFAULT_REGION=us-east-1) for clients.
  static std::map<std::string, std::string> client_env();

 protected:
  std::vector<std::string> command() override;
};

// What Amazon S3 checks and s3rver does not, in front of an S3Server: tests/tools/
// s3_sigv4_front.py recomputes every request's Signature V4 with botocore (403
// SignatureDoesNotMatch for a wrong secret key), refuses anonymous requests, and checks
// x-amz-content-sha256 and Content-MD5 against the body (400 XAmzContentSHA256Mismatch,
// BadDigest), then passes the request on. Clients use endpoint_url(); stopping or freezing the
// front stands for the S3 service going away. bytes_out() is what it sent back in bodies.
class S3SignatureFront : public TestServer {
 public:
  // Files go into dir/s3front/.
  S3SignatureFront(const std::string& dir, const S3Server& s3);
  ~S3SignatureFront() override;

  std::string endpoint_url() const { return S3Server::endpoint_url(port()); }
  // Bytes of answer bodies sent to clients so far (asked of the front itself).
  uint64_t bytes_out() const;

 protected:
  std::vector<std::string> command() override;

 private:
  int s3rver_port_;
};

// ---------------------------------------------------------------------------------------------
// WebDAV: Apache httpd (Debian's apache2-bin, /usr/sbin/apache2 -X is NOT used: the normal
// event MPM with -DFOREGROUND) with mod_dav + mod_dav_fs, its own configuration in the test's
// directory, and Basic or Digest authentication (mod_auth_basic / mod_auth_digest, the password
// in an htpasswd ({SHA}) or htdigest file, never on a command line), over http or https
// (mod_ssl, a self-signed certificate).
//
// Apache refuses to serve as root, so its workers run as www-data: the constructor makes `dir`
// and its ancestors traversable (o+x) and gives the DAV tree and the lock database to www-data.
// Files uploaded over DAV are therefore owned by www-data.
//
// Served: PROPFIND (Depth 0 and 1, not infinity), MKCOL, PUT, GET with Range, DELETE, MOVE and
// COPY (Overwrite: F answers 412 when the target exists), LOCK. Everything under the prefix
// needs the user and password. With a redirect_from prefix, any request under it gets a 301 to
// the same path under the DAV prefix (duplicity follows that for PROPFIND only).
class WebDavServer : public TestServer {
 public:
  static constexpr const char* kUser = "dupfs";
  static constexpr const char* kRealm = "dupfs-test";  // AuthName (the Digest realm)

  enum class Auth { kBasic, kDigest };
  struct Options {
    Auth auth = Auth::kBasic;
    bool https = false;
    std::string password = "dav-secret";  // kUser's
    std::string prefix = "/dav/";         // the DAV tree's URL path; starts and ends with '/'
    std::string redirect_from;            // e.g. "/old/": 301 to prefix; empty: none
  };

  // Files go into dir/webdav/.
  WebDavServer(const std::string& dir, const Options& options);
  explicit WebDavServer(const std::string& dir) : WebDavServer(dir, Options{}) {}
  ~WebDavServer() override;

  const Options& options() const { return options_; }
  // "http://127.0.0.1:PORT" or "https://..." (no path).
  std::string base_url() const { return base_url(port()); }
  std::string base_url(int port) const;
  // "webdav://dupfs@127.0.0.1:PORT" + prefix + path, or webdavs://, for duplicity (the
  // password goes into FTP_PASSWORD).
  std::string duplicity_url(const std::string& path) const;
  // The directory served at prefix (files PUT to prefix + "a/b" land in dav_dir() + "/a/b").
  std::string dav_dir() const { return dav_dir_; }
  // The certificate to verify the server with (https only; empty for http).
  const std::string& cert_file() const { return cert_.cert_file; }

 protected:
  std::vector<std::string> command() override;
  std::vector<std::string> log_files() const override;

 private:
  Options options_;
  std::string dav_dir_;
  SelfSignedCertificate cert_;
};

// ---------------------------------------------------------------------------------------------
// FTP: pyftpdlib 1.5.7 (Debian's python3-pyftpdlib, run by /usr/bin/python3 from a script the
// constructor writes), one virtual user (no system account) whose home is a directory under
// the test's dir, with every permission (list, retrieve, store, append, delete, rename, mkdir,
// chmod, mtime). Passive mode on 127.0.0.1 (random passive ports; active mode works too).
//
//   kPlain        plain FTP (ftp://)
//   kExplicitTls  AUTH TLS on the control connection (ftpes://); TLS is REQUIRED for login
//                 (550 before AUTH TLS) and for data connections (PROT P before PASV), so a
//                 client that silently falls back to plain text fails.
//   kImplicitTls  TLS from the first byte (ftps://), data connections need PROT P.
// TLS is at most 1.2: over 1.3, lftp 4.9 and libcurl < 8.10 lose the end of uploads (the
// server's post-handshake session ticket, left unread, turns their close into a reset; curl
// issue 6149), so duplicity's own volumes would arrive damaged.
//
// pyftpdlib 1.5.7 as shipped drops TLS data connections from curl/libcurl (it closes a data
// connection that gets readable before RETR/STOR, and curl does the TLS handshake first); the
// server script patches its data handler to keep reading during the handshake, so curl's
// ftps:// and ftp:// --ssl-reqd transfers work (proven in storage_servers_test's FtpMethods).
//
// Paths: the user is chrooted into home_dir(); "/" is home_dir(). duplicity's lftp backend
// turns ftp://host/a/b into the lftp path "a/b/" (leading '/' stripped: relative to the login
// directory, which here is "/" anyway) and ftp://host//a/b into "/a/b/".
class FtpServer : public TestServer {
 public:
  static constexpr const char* kUser = "dupfs";
  enum class Security { kPlain, kExplicitTls, kImplicitTls };
  struct Options {
    Security security = Security::kPlain;
    std::string password = "ftp-secret";  // kUser's; passed to the server in its environment
  };

  // Files go into dir/ftp/; the user's home is dir/ftp/home.
  FtpServer(const std::string& dir, const Options& options);
  explicit FtpServer(const std::string& dir) : FtpServer(dir, Options{}) {}
  ~FtpServer() override;

  const Options& options() const { return options_; }
  std::string home_dir() const { return dir_ + "/home"; }
  // "ftp://dupfs@127.0.0.1:PORT/" + path ("ftpes://" / "ftps://" for the TLS modes).
  std::string duplicity_url(const std::string& path) const;
  // The certificate (TLS modes; empty for kPlain).
  const std::string& cert_file() const { return cert_.cert_file; }

 protected:
  std::vector<std::string> command() override;
  std::map<std::string, std::string> environment() const override;

 private:
  Options options_;
  SelfSignedCertificate cert_;
};

}  // namespace dupfs::test

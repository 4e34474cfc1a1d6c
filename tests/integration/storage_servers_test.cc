// The storage servers of tests/support/storage_servers.h, proven with the oracle: Debian's
// duplicity 0.8.22 writes a full and an incremental backup of a small tree to each (s3rver over
// boto3+s3://, Apache mod_dav over webdav:// and webdavs:// with Basic and Digest auth,
// pyftpdlib over ftp://, ftpes:// and ftps:// through lftp), lists it with collection-status and
// restores it; the restored tree equals the source. Then the servers' controls: freeze()/thaw()
// (a client times out while frozen, works after), stop()/start() on the same port with the data
// kept, and the WebDAV methods the dupfs backend will use (curl).
//
// Facts about duplicity 0.8.22's backends, as seen here:
//  - boto3+s3://BUCKET/a/prefix with --s3-endpoint-url http://127.0.0.1:PORT: the backend does
//    head_bucket first (a missing bucket is fatal: "S3 bucket ... does not exist"); keys are
//    "a/prefix/<name>"; botocore 1.29 uses path-style URLs (/BUCKET/a/prefix/...) with an IP
//    endpoint; credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. It lists with
//    ListObjects v1 (GET /BUCKET?prefix=a%2Fprefix%2F&encoding-type=url, no list-type=2),
//    uploads with upload_file (multipart only above --s3-multipart-chunk-size, 25 MiB by
//    default in 0.8) and downloads with download_file; no region is needed with an endpoint.
//  - webdav[s]://user@host:port/dav/path: the password comes from FTP_PASSWORD; the backend
//    appends the trailing slash itself (no need to give one), makes missing collections with
//    MKCOL one level at a time, tries Basic first and answers a Digest challenge; for webdavs
//    --ssl-cacert-file CERT verifies a self-signed server. A 301/302 is followed for PROPFIND
//    only (the backend then uses the new directory for every later request).
//  - ftp://, ftpes://, ftps:// all go to lftp (the lftp backend); the password comes from
//    FTP_PASSWORD and is written to a temporary lftp script (not argv). The URL path has its
//    leading '/' stripped, so ftp://host/a/b is "a/b/" relative to the login directory and
//    ftp://host//a/b is the absolute "/a/b/". Missing directories are made with mkdir -p.
//    ftps:// is implicit TLS, ftpes:// is AUTH TLS; both set ssl-protect-data.
#include "tests/support/storage_servers.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/duplicity.h"
#include "tests/support/process.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tree.h"

namespace dupfs::test {
namespace {

namespace fs = std::filesystem;
constexpr auto kCommandTimeout = std::chrono::seconds(120);

void write_file(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

class StorageServersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = dir_.file("src");
    fs::create_directories(dir_.file("home"));
    write_file(src_ + "/a.txt", "first file\n");
    write_file(src_ + "/sub/b.bin", std::string(3000, 'b'));
    write_file(src_ + "/sub/deeper/c.txt", "third\n");
    env_ = {{"HOME", dir_.file("home")}};
  }

  ProcessResult dup(const std::string& command, const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& extra_env) {
    std::vector<std::string> argv{command,
                                  "--no-encryption",
                                  "--archive-dir",
                                  dir_.file("cache"),
                                  "--num-retries",
                                  "2",
                                  "--backend-retry-delay",
                                  "1"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto env = env_;
    env.insert(extra_env.begin(), extra_env.end());
    return duplicity(argv, env, kCommandTimeout);
  }

  // full, a change, incremental, collection-status, restore: the restored tree equals the
  // source. `options` go to every command (endpoint, certificates); `extra_env` holds
  // credentials.
  void round_trip(const std::string& url, const std::vector<std::string>& options,
                  const std::map<std::string, std::string>& extra_env) {
    std::vector<std::string> args = options;
    args.insert(args.end(), {src_, url});
    auto r = dup("full", args, extra_env);
    ASSERT_TRUE(r.ok()) << describe({"duplicity", "full", url}, r);
    write_file(src_ + "/added.txt", "only in the incremental\n");
    fs::remove(src_ + "/sub/deeper/c.txt");
    r = dup("incremental", args, extra_env);
    ASSERT_TRUE(r.ok()) << describe({"duplicity", "incremental", url}, r);

    std::vector<std::string> status_args = options;
    status_args.push_back(url);
    r = dup("collection-status", status_args, extra_env);
    ASSERT_TRUE(r.ok()) << describe({"duplicity", "collection-status", url}, r);
    EXPECT_NE(r.out.find("Full"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Incremental"), std::string::npos) << r.out;

    std::string target = dir_.file("restored");
    std::vector<std::string> extra = options;
    extra.insert(extra.end(), {"--no-encryption", "--archive-dir", dir_.file("restore-cache")});
    auto env = env_;
    env.insert(extra_env.begin(), extra_env.end());
    r = duplicity_restore(url, target, "", extra, env, kCommandTimeout);
    ASSERT_TRUE(r.ok()) << describe({"duplicity", "restore", url}, r);
    EXPECT_TRUE(trees_match(scan_tree(src_), scan_tree(target), DiffOptions::duplicity_restore()));
  }

  // curl with the user's password in a netrc file (not on argv); -s, a 5 s limit.
  ProcessResult curl(std::vector<std::string> args, const std::string& user = "",
                     const std::string& password = "") {
    std::vector<std::string> argv{"curl", "-sS", "--max-time", "5"};
    if (!user.empty()) {
      std::string netrc = dir_.file("netrc");
      write_file(netrc, "machine 127.0.0.1 login " + user + " password " + password + "\n");
      fs::permissions(netrc, fs::perms::owner_read | fs::perms::owner_write);
      argv.insert(argv.end(), {"--netrc-file", netrc});
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, {}, std::chrono::seconds(30));
  }

  // freeze(): a client times out; thaw(): it works again; stop(): refused; start(): served
  // again on the same port, with the same data. `probe` runs the client (curl).
  void check_controls(TestServer& server, const std::function<ProcessResult()>& probe) {
    auto r = probe();
    ASSERT_TRUE(r.ok()) << describe({"curl"}, r) << server.log();
    int port = server.port();

    server.freeze();
    auto started = std::chrono::steady_clock::now();
    r = probe();
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.exit_code, 28) << "curl: operation timed out expected; " << r.err;
    EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::seconds(4));
    server.thaw();
    r = probe();
    EXPECT_TRUE(r.ok()) << describe({"curl"}, r);

    server.freeze();  // stop() must also end a frozen server
    server.stop();
    EXPECT_FALSE(server.running());
    r = probe();
    EXPECT_EQ(r.exit_code, 7) << "curl: connection refused expected; " << r.err;
    server.start();
    EXPECT_EQ(server.port(), port);
    r = probe();
    EXPECT_TRUE(r.ok()) << describe({"curl"}, r) << server.log();
  }

  TempDir dir_{"dupfs-servers-"};
  std::string src_;
  std::map<std::string, std::string> env_;
};

// ---------------------------------------------------------------------------------------------
// S3

TEST_F(StorageServersTest, S3DuplicityRoundTrip) {
  S3Server s3(dir_.path());
  s3.create_bucket("bucket");
  round_trip("boto3+s3://bucket/some/prefix", {"--s3-endpoint-url", s3.endpoint_url()},
             S3Server::client_env());
  // The objects are where the keys say.
  int volumes = 0;
  for (const auto& e : fs::directory_iterator(s3.data_dir() + "/bucket/some/prefix")) {
    if (e.path().filename().string().find(".difftar.gz._S3rver_object") != std::string::npos &&
        e.path().extension() != ".md5") {
      ++volumes;
    }
  }
  EXPECT_EQ(volumes, 2) << s3.log();
}

TEST_F(StorageServersTest, S3MissingBucketIsFatalForDuplicity) {
  S3Server s3(dir_.path());
  auto r =
      dup("collection-status", {"--s3-endpoint-url", s3.endpoint_url(), "boto3+s3://nobucket/x"},
          S3Server::client_env());
  EXPECT_FALSE(r.ok());
  EXPECT_NE((r.out + r.err).find("does not exist"), std::string::npos) << r.out << r.err;
}

TEST_F(StorageServersTest, S3Controls) {
  S3Server s3(dir_.path());
  s3.create_bucket("bucket");
  write_file(s3.data_dir() + "/bucket/k._S3rver_object", "value");
  // Anonymous GET (s3rver serves unsigned requests).
  check_controls(s3, [&] { return curl({"-f", s3.endpoint_url() + "/bucket/k"}); });
  TcpProxy proxy(s3.port());
  auto r = curl({"-f", S3Server::endpoint_url(proxy.port()) + "/bucket/k"});
  EXPECT_TRUE(r.ok()) << describe({"curl"}, r);
  EXPECT_EQ(r.out, "value");
  EXPECT_GT(proxy.bytes_to_clients(), 5u);
}

// ---------------------------------------------------------------------------------------------
// WebDAV

struct WebDavCase {
  const char* name;
  WebDavServer::Auth auth;
  bool https;
  friend void PrintTo(const WebDavCase& c, std::ostream* os) { *os << c.name; }
};

class WebDavRoundTrip : public StorageServersTest,
                        public ::testing::WithParamInterface<WebDavCase> {};

TEST_P(WebDavRoundTrip, Duplicity) {
  WebDavServer::Options o;
  o.auth = GetParam().auth;
  o.https = GetParam().https;
  o.password = "p4ss-word";
  WebDavServer dav(dir_.path(), o);
  std::vector<std::string> options;
  if (o.https) options = {"--ssl-cacert-file", dav.cert_file()};
  std::map<std::string, std::string> password{{"FTP_PASSWORD", o.password}};
  if (o.auth == WebDavServer::Auth::kDigest) {
    // duplicity 0.8.22 cannot do Digest on a URL with a port: get_digest_authorization()
    // registers the password for conn.host ("127.0.0.1") but asks urllib's password manager
    // for "http://127.0.0.1:PORT/...", which does not match, so it sends "Digest None" and
    // gets 401 for ever (apache: "missing user, realm, nonce, ..."). Only ports 80/443 would
    // work. The server's Digest auth itself is proven with curl in WebDavMethods. Checked
    // here so that a duplicity that can do it gets noticed.
    std::vector<std::string> args = options;
    args.push_back(dav.duplicity_url("backups/one"));
    auto r = dup("collection-status", args, password);
    EXPECT_FALSE(r.ok());
    EXPECT_NE((r.out + r.err).find("401"), std::string::npos) << r.out << r.err;
    EXPECT_NE(dav.log().find("missing user, realm, nonce"), std::string::npos) << dav.log();
    return;
  }
  round_trip(dav.duplicity_url("backups/one"), options, password);
  EXPECT_TRUE(fs::is_directory(dav.dav_dir() + "/backups/one")) << dav.log();
}

INSTANTIATE_TEST_SUITE_P(
    All, WebDavRoundTrip,
    ::testing::Values(WebDavCase{"BasicHttp", WebDavServer::Auth::kBasic, false},
                      WebDavCase{"DigestHttp", WebDavServer::Auth::kDigest, false},
                      WebDavCase{"BasicHttps", WebDavServer::Auth::kBasic, true},
                      WebDavCase{"DigestHttps", WebDavServer::Auth::kDigest, true}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(StorageServersTest, WebDavWrongPasswordRefused) {
  WebDavServer dav(dir_.path());
  auto r = dup("collection-status", {dav.duplicity_url("x")}, {{"FTP_PASSWORD", "wrong"}});
  EXPECT_FALSE(r.ok());
  EXPECT_NE((r.out + r.err).find("401"), std::string::npos) << r.out << r.err;
}

// duplicity follows a 301 on PROPFIND and then writes to the new place.
TEST_F(StorageServersTest, WebDavRedirectFollowedByDuplicity) {
  WebDavServer::Options o;
  o.redirect_from = "/old/";
  WebDavServer dav(dir_.path(), o);
  fs::create_directories(dav.dav_dir() + "/moved");
  fs::permissions(dav.dav_dir() + "/moved", fs::perms::all);
  std::string url = "webdav://dupfs@127.0.0.1:" + std::to_string(dav.port()) + "/old/moved";
  auto r = dup("full", {src_, url}, {{"FTP_PASSWORD", o.password}});
  ASSERT_TRUE(r.ok()) << describe({"duplicity", "full", url}, r) << dav.log();
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dav.dav_dir() + "/moved")) ++files;
  EXPECT_EQ(files, 3);
}

// The requests a WebDAV backend makes, one by one (curl).
TEST_F(StorageServersTest, WebDavMethods) {
  WebDavServer::Options o;
  o.auth = WebDavServer::Auth::kDigest;
  o.https = true;
  o.redirect_from = "/old/";
  WebDavServer dav(dir_.path(), o);
  std::string base = dav.base_url() + "/dav/";
  auto req = [&](std::vector<std::string> args) {
    std::vector<std::string> a{"--digest",  "--cacert", dav.cert_file(), "-o",
                               "/dev/null", "-w",       "%{http_code}"};
    a.insert(a.end(), args.begin(), args.end());
    auto r = curl(a, WebDavServer::kUser, o.password);
    EXPECT_TRUE(r.ok()) << describe({"curl"}, r);
    return r.out;
  };
  EXPECT_EQ(req({"-X", "MKCOL", base + "d/"}), "201");
  write_file(dir_.file("up"), "0123456789");
  EXPECT_EQ(req({"-T", dir_.file("up"), base + "d/f.part"}), "201");
  EXPECT_EQ(req({"-X", "MOVE", "-H", "Destination: " + base + "d/f", "-H", "Overwrite: F",
                 base + "d/f.part"}),
            "201");
  EXPECT_EQ(req({"-T", dir_.file("up"), base + "d/g"}), "201");
  EXPECT_EQ(
      req({"-X", "MOVE", "-H", "Destination: " + base + "d/f", "-H", "Overwrite: F", base + "d/g"}),
      "412");
  EXPECT_EQ(req({"-X", "PROPFIND", "-H", "Depth: 1", base + "d/"}), "207");
  auto r = curl(
      {"--digest", "--cacert", dav.cert_file(), "-r", "2-5", "-w", " %{http_code}", base + "d/f"},
      WebDavServer::kUser, o.password);
  EXPECT_EQ(r.out, "2345 206");
  EXPECT_EQ(req({"-X", "DELETE", base + "d/g"}), "204");
  EXPECT_EQ(req({"-X", "PROPFIND", "-H", "Depth: 1", dav.base_url() + "/old/d/"}), "301");
  // Without the password.
  r = curl({"--cacert", dav.cert_file(), "-o", "/dev/null", "-w", "%{http_code}", base + "d/f"});
  EXPECT_EQ(r.out, "401");
  // Without the certificate.
  r = curl({base});
  EXPECT_EQ(r.exit_code, 60) << r.err;  // peer certificate cannot be authenticated
}

TEST_F(StorageServersTest, WebDavControls) {
  WebDavServer dav(dir_.path());
  write_file(dav.dav_dir() + "/f", "x");
  check_controls(dav, [&] {
    return curl({"-f", dav.base_url() + "/dav/f"}, WebDavServer::kUser, dav.options().password);
  });
}

// ---------------------------------------------------------------------------------------------
// FTP

struct FtpCase {
  const char* name;
  FtpServer::Security security;
  friend void PrintTo(const FtpCase& c, std::ostream* os) { *os << c.name; }
};

class FtpRoundTrip : public StorageServersTest, public ::testing::WithParamInterface<FtpCase> {};

TEST_P(FtpRoundTrip, Duplicity) {
  FtpServer::Options o;
  o.security = GetParam().security;
  o.password = "ftp-p4ss";
  FtpServer ftp(dir_.path(), o);
  std::vector<std::string> options;
  if (o.security != FtpServer::Security::kPlain) options = {"--ssl-cacert-file", ftp.cert_file()};
  round_trip(ftp.duplicity_url("backups/one"), options, {{"FTP_PASSWORD", o.password}});
  // ftp://host/backups/one is relative to the login directory (the user's home).
  EXPECT_TRUE(fs::is_directory(ftp.home_dir() + "/backups/one")) << ftp.log();
}

INSTANTIATE_TEST_SUITE_P(
    All, FtpRoundTrip,
    ::testing::Values(FtpCase{"Plain", FtpServer::Security::kPlain},
                      FtpCase{"ExplicitTls", FtpServer::Security::kExplicitTls},
                      FtpCase{"ImplicitTls", FtpServer::Security::kImplicitTls}),
    [](const auto& info) { return std::string(info.param.name); });

// Explicit TLS is required: a plain-text login is refused.
TEST_F(StorageServersTest, FtpExplicitTlsRequiresTls) {
  FtpServer::Options o;
  o.security = FtpServer::Security::kExplicitTls;
  FtpServer ftp(dir_.path(), o);
  std::string url = "ftp://127.0.0.1:" + std::to_string(ftp.port()) + "/";
  auto r = curl({url}, FtpServer::kUser, o.password);
  EXPECT_FALSE(r.ok());
  r = curl({"--ssl-reqd", "--cacert", ftp.cert_file(), url}, FtpServer::kUser, o.password);
  EXPECT_TRUE(r.ok()) << describe({"curl"}, r) << ftp.log();
}

// The transfers an FTP backend built on libcurl makes (curl, implicit TLS, passive mode):
// upload into missing directories, rename, list, ranged download, delete.
TEST_F(StorageServersTest, FtpMethods) {
  FtpServer::Options o;
  o.security = FtpServer::Security::kImplicitTls;
  FtpServer ftp(dir_.path(), o);
  std::string base = "ftps://127.0.0.1:" + std::to_string(ftp.port()) + "/";
  auto c = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--cacert", ftp.cert_file()});
    auto r = curl(args, FtpServer::kUser, o.password);
    EXPECT_TRUE(r.ok()) << describe({"curl"}, r) << ftp.log();
    return r.out;
  };
  std::string data(200000, 'x');
  data += "0123456789";
  write_file(dir_.file("up"), data);
  c({"--ftp-create-dirs", "-T", dir_.file("up"), base + "a/b/f.part"});
  c({"-Q", "-RNFR a/b/f.part", "-Q", "-RNTO a/b/f", base});
  EXPECT_EQ(c({"-l", base + "a/b/"}), "f\n");  // curl turns the ASCII-mode CRLF into LF
  EXPECT_EQ(c({"-r", "200002-200005", base + "a/b/f"}), "2345");
  c({"-Q", "-DELE a/b/f", base});
  EXPECT_FALSE(fs::exists(ftp.home_dir() + "/a/b/f"));
}

TEST_F(StorageServersTest, FtpControls) {
  FtpServer::Options o;
  o.security = FtpServer::Security::kImplicitTls;
  FtpServer ftp(dir_.path(), o);
  write_file(ftp.home_dir() + "/f", "x");
  check_controls(ftp, [&] {
    return curl(
        {"--cacert", ftp.cert_file(), "ftps://127.0.0.1:" + std::to_string(ftp.port()) + "/f"},
        FtpServer::kUser, o.password);
  });
}

}  // namespace
}  // namespace dupfs::test

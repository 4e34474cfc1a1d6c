#include "backends/webdav_backend.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "tests/support/storage_servers.h"
#include "tests/support/temp_dir.h"

namespace dupfs {
namespace {

TEST(WebDavUrlTest, Locations) {
  auto loc = parse_webdav_url("webdav://bob:s%40cret@Example.COM:8080/dav//backups/b1");
  ASSERT_TRUE(loc.has_value()) << loc.error().message;
  EXPECT_EQ(loc->scheme, "webdav");
  EXPECT_FALSE(loc->tls);
  EXPECT_EQ(loc->user, "bob");
  EXPECT_EQ(loc->password, "s@cret");
  EXPECT_EQ(loc->host, "example.com");
  EXPECT_EQ(loc->host_port, "example.com:8080");
  EXPECT_EQ(loc->directory, "/dav/backups/b1/");
  EXPECT_EQ(loc->origin(), "http://example.com:8080");
  EXPECT_EQ(loc->describe(), "webdav://bob@example.com:8080/dav/backups/b1");

  loc = parse_webdav_url("webdavs://host/a%20b/");
  ASSERT_TRUE(loc.has_value());
  EXPECT_TRUE(loc->tls);
  EXPECT_FALSE(loc->user.has_value());
  EXPECT_EQ(loc->directory, "/a b/");
  EXPECT_EQ(loc->origin(), "https://host");
  EXPECT_EQ(loc->describe(), "webdavs://host/a b");

  loc = parse_webdav_url("https://[::1]:8443");
  ASSERT_TRUE(loc.has_value());
  EXPECT_TRUE(loc->tls);
  EXPECT_EQ(loc->directory, "/");
  EXPECT_EQ(loc->origin(), "https://[::1]:8443");
  EXPECT_EQ(loc->describe(), "https://[::1]:8443/");

  loc = parse_webdav_url("http://h/x");
  ASSERT_TRUE(loc.has_value());
  EXPECT_FALSE(loc->tls);

  auto bad = parse_webdav_url("webdav://:pw@/path");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(bad.error().message.find("pw"), std::string::npos);
  EXPECT_FALSE(parse_webdav_url("webdav://h:99999/x").has_value());
  EXPECT_FALSE(parse_webdav_url("ftp://h/x").has_value());

  EXPECT_TRUE(is_webdav_scheme("webdavs"));
  EXPECT_FALSE(is_webdav_scheme("lftp+webdav"));  // duplicity's lftp backend
}

TEST(WebDavUrlTest, OpenBackendNamesNoPassword) {
  BackendOptions options;
  bool asked = false;
  options.ask_password = [&](const std::string& prompt) -> std::optional<std::string> {
    asked = true;
    EXPECT_EQ(prompt, "Password for 'bob@h': ");
    return "pw";
  };
  auto b = open_backend("webdavs://bob:topsecret@h:81/d/", options);
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_FALSE(asked);
  EXPECT_EQ((*b)->describe(), "webdavs://bob@h:81/d");
  EXPECT_EQ((*b)->describe().find("topsecret"), std::string::npos);

  // FTP_PASSWORD before the question; the question only when there is a user and no password.
  options.password = "env";
  ASSERT_TRUE(open_backend("webdav://bob@h:81/d", options).has_value());
  EXPECT_FALSE(asked);
  options.password.reset();
  ASSERT_TRUE(open_backend("webdav://h:81/d", options).has_value());
  EXPECT_FALSE(asked);
  ASSERT_TRUE(open_backend("webdav://bob@h:81/d", options).has_value());
  EXPECT_TRUE(asked);

  auto unknown = open_backend("gopher://u:pw@h/x");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_NE(unknown.error().message.find("webdav://"), std::string::npos);
  EXPECT_EQ(unknown.error().message.find("pw@"), std::string::npos);
}

std::vector<std::string> names_of(const std::vector<WebDavEntry>& entries) {
  std::vector<std::string> names;
  for (const auto& e : entries) names.push_back(e.name);
  std::sort(names.begin(), names.end());
  return names;
}

// Apache mod_dav_fs's answer, trimmed: the directory itself, a file, a sub-collection, an
// encoded name, and a member whose size is unknown (its getcontentlength in a 404 propstat).
constexpr std::string_view kApache = R"(<?xml version="1.0" encoding="utf-8"?>
<D:multistatus xmlns:D="DAV:" xmlns:ns0="DAV:">
<D:response xmlns:lp1="DAV:">
<D:href>/dav/b%201/</D:href>
<D:propstat><D:prop><lp1:resourcetype><D:collection/></lp1:resourcetype></D:prop>
<D:status>HTTP/1.1 200 OK</D:status></D:propstat>
<D:propstat><D:prop><D:getcontentlength/></D:prop><D:status>HTTP/1.1 404 Not Found</D:status>
</D:propstat>
</D:response>
<D:response xmlns:lp1="DAV:">
<D:href>/dav/b%201/duplicity-full.20240101T000000Z.vol1.difftar.gz</D:href>
<D:propstat><D:prop><lp1:resourcetype/><lp1:getcontentlength>1234</lp1:getcontentlength>
</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>
</D:response>
<D:response xmlns:lp1="DAV:">
<D:href>/dav/b%201/sub/</D:href>
<D:propstat><D:prop><lp1:resourcetype><D:collection/></lp1:resourcetype></D:prop>
<D:status>HTTP/1.1 200 OK</D:status></D:propstat>
</D:response>
<D:response>
<D:href>/dav/b%201/a%20b%25c%2Fd</D:href>
<D:propstat><D:prop><D:resourcetype/><D:getcontentlength>0</D:getcontentlength></D:prop>
<D:status>HTTP/1.1 200 OK</D:status></D:propstat>
</D:response>
<D:response>
<D:href>/dav/b%201/nolength</D:href>
<D:propstat><D:prop><D:resourcetype/></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>
<D:propstat><D:prop><D:getcontentlength/></D:prop><D:status>HTTP/1.1 404 Not Found</D:status>
</D:propstat>
</D:response>
</D:multistatus>)";

TEST(WebDavMultistatusTest, Apache) {
  auto entries = parse_multistatus(kApache, "/dav/b 1/", "test");
  ASSERT_TRUE(entries.has_value()) << entries.error().message;
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].name, "duplicity-full.20240101T000000Z.vol1.difftar.gz");
  EXPECT_EQ((*entries)[0].size, 1234u);
  EXPECT_EQ((*entries)[1].name, "a b%c/d");  // decoded after splitting on '/'
  EXPECT_EQ((*entries)[1].size, 0u);
  EXPECT_EQ((*entries)[2].name, "nolength");
  EXPECT_FALSE((*entries)[2].size.has_value());
  // The directory given without its trailing '/' or with doubled ones is the same directory.
  EXPECT_EQ(parse_multistatus(kApache, "/dav//b 1", "test")->size(), 3u);
}

// Absolute URLs as hrefs (some servers), other namespace prefixes, a directory entry without
// a trailing '/' and without resourcetype, a collection whose href has no trailing '/', a
// member with a non-2xx status.
TEST(WebDavMultistatusTest, AbsoluteUrlsAndOddServers) {
  constexpr std::string_view xml = R"(<?xml version="1.0"?>
<multistatus xmlns="DAV:">
 <response><href>https://dav.example.com:8443/remote.php/dav/files/bob/bk</href>
  <propstat><prop><resourcetype/></prop><status>HTTP/1.1 200 OK</status></propstat></response>
 <response><href> https://dav.example.com:8443/remote.php/dav/files/bob/bk/duplicity-full-signatures.20240101T000000Z.sigtar.gpg </href>
  <propstat><prop><getcontentlength> 77 </getcontentlength><resourcetype/></prop>
  <status>HTTP/1.1 200 OK</status></propstat></response>
 <response><href>http://other/remote.php/dav/files/bob/bk/folder</href>
  <propstat><prop><resourcetype><collection/></resourcetype></prop>
  <status>HTTP/1.1 200 OK</status></propstat></response>
 <response><href>/remote.php/dav/files/bob/bk/gone</href>
  <status>HTTP/1.1 404 Not Found</status></response>
 <response><href>/remote.php/dav/files/bob/bk/%7Euser%3Afile?x=1</href>
  <propstat><prop><getcontentlength>5</getcontentlength></prop>
  <status>HTTP/1.1 200 OK</status></propstat></response>
</multistatus>)";
  auto entries = parse_multistatus(xml, "/remote.php/dav/files/bob/bk/", "test");
  ASSERT_TRUE(entries.has_value()) << entries.error().message;
  EXPECT_EQ(names_of(*entries),
            (std::vector<std::string>{"duplicity-full-signatures.20240101T000000Z.sigtar.gpg",
                                      "~user:file"}));
  EXPECT_EQ((*entries)[0].size, 77u);
}

TEST(WebDavMultistatusTest, EmptyAndBadAnswers) {
  constexpr std::string_view only_self = R"(<?xml version="1.0"?>
<d:multistatus xmlns:d="DAV:"><d:response><d:href>/x/</d:href><d:propstat><d:prop>
<d:resourcetype><d:collection/></d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status>
</d:propstat></d:response></d:multistatus>)";
  auto entries = parse_multistatus(only_self, "/x/", "test");
  ASSERT_TRUE(entries.has_value());
  EXPECT_TRUE(entries->empty());
  // The root directory.
  entries = parse_multistatus(R"(<multistatus xmlns="DAV:"><response><href>/</href></response>
<response><href>/f</href></response></multistatus>)",
                              "/", "test");
  ASSERT_TRUE(entries.has_value());
  EXPECT_EQ(names_of(*entries), (std::vector<std::string>{"f"}));

  auto html = parse_multistatus("<html><body>hello</body></html>", "/x/", "where");
  ASSERT_FALSE(html.has_value());
  EXPECT_EQ(html.error().kind, ErrorKind::kCorruption);
  EXPECT_NE(html.error().message.find("where"), std::string::npos);
  EXPECT_FALSE(parse_multistatus("not xml", "/x/", "where").has_value());
}

}  // namespace
}  // namespace dupfs

namespace dupfs {
namespace {

// The contract against a real server: `url` names a directory that does not exist yet.
void check_contract(const std::string& url, const BackendOptions& options) {
  auto ok = [](const Status& st) -> testing::AssertionResult {
    if (st) return testing::AssertionSuccess();
    return testing::AssertionFailure() << st.error().message;
  };
  auto opened = open_backend(url, options);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  Backend& b = **opened;

  auto missing = b.list();
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound) << missing.error().message;
  // The first write makes the directory and its parents.
  ASSERT_TRUE(ok(b.write("a", "hello world")));
  ASSERT_TRUE(ok(b.write("b", "")));
  const std::string odd = "x y%z+&~:é";
  ASSERT_TRUE(ok(b.write(odd, "odd")));
  auto again = b.write("a", "other");
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().kind, ErrorKind::kExists);
  EXPECT_EQ(*b.read("a"), "hello world");
  EXPECT_EQ(*b.read(odd), "odd");
  EXPECT_EQ(*b.read_range("a", 6, 100), "world");
  EXPECT_EQ(*b.read_range("a", 0, 5), "hello");
  EXPECT_EQ(*b.read_range("a", 11, 5), "");
  EXPECT_EQ(*b.read_range("a", 50, 5), "");
  EXPECT_EQ(*b.size("a"), 11u);
  EXPECT_EQ(*b.read("b"), "");
  std::string big(3 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + i / 251);
  ASSERT_TRUE(ok(b.write("big", big)));
  EXPECT_EQ(*b.read("big"), big);
  EXPECT_EQ(*b.read_range("big", 1 << 20, 10), big.substr(1 << 20, 10));
  auto names = *b.list();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "big", odd}));
  EXPECT_EQ(*b.size("big"), big.size());  // from the listing
  EXPECT_EQ(b.read("missing").error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(b.size("missing").error().kind, ErrorKind::kNotFound);
  for (const auto& n : names) ASSERT_TRUE(ok(b.remove(n))) << n;
  EXPECT_EQ(b.remove("a").error().kind, ErrorKind::kNotFound);
  EXPECT_TRUE(b.list()->empty());

  // The directory deleted behind the backend's back: the next write makes it again.
  auto loc = parse_webdav_url(url);
  ASSERT_TRUE(loc.has_value());
  CurlPoolOptions pool_options;
  pool_options.num_retries = options.num_retries;
  pool_options.tls = options.tls;
  CurlPool pool(pool_options);
  auto gone = pool.run<long>("DELETE", [&](CURL* h) -> Result<long> {
    HttpRequest request;
    request.method = "DELETE";
    request.url = loc->origin() + loc->directory;
    if (loc->user) request.login.emplace(*loc->user, options.password.value_or(""));
    auto r = http_request(h, request, "test");
    if (!r) return std::unexpected(r.error());
    if (r->status >= 500) return make_error(ErrorKind::kIoError, "HTTP 5xx");
    return r->status;
  });
  ASSERT_TRUE(gone.has_value()) << gone.error().message;
  EXPECT_TRUE(*gone == 204 || *gone == 404) << *gone;  // 404: a lost answer sent again
  EXPECT_EQ(b.list().error().kind, ErrorKind::kNotFound);
  ASSERT_TRUE(ok(b.write("after", "x")));
  EXPECT_EQ(*b.read("after"), "x");
  ASSERT_TRUE(ok(b.remove("after")));
}

BackendOptions test_options() {
  BackendOptions options;
  // Enough for a proxy that fails every third request and loses every other MOVE's and
  // DELETE's answer (how the backend was tried by hand).
  options.num_retries = 6;
  options.timeout = std::chrono::seconds(5);
  return options;
}

// Apache (mod_dav_fs) started here, Basic and Digest, http and https.
struct ApacheCase {
  const char* name;
  test::WebDavServer::Auth auth;
  bool https;
};

class WebDavApacheTest : public ::testing::TestWithParam<ApacheCase> {};

TEST_P(WebDavApacheTest, Contract) {
  if (::getuid() != 0 || ::access("/usr/sbin/apache2", X_OK) != 0) {
    GTEST_SKIP() << "needs root and /usr/sbin/apache2";
  }
  test::TempDir dir("dupfs-webdav-");
  test::WebDavServer::Options o;
  o.auth = GetParam().auth;
  o.https = GetParam().https;
  o.password = "p4ss w:rd";
  test::WebDavServer dav(dir.path(), o);
  BackendOptions options = test_options();
  options.password = o.password;
  if (o.https) options.tls.cacert_file = dav.cert_file();
  check_contract(dav.duplicity_url("made/on/write"), options);

  // A wrong password: one refusal, naming what to check and no password.
  options.password = "wrong";
  auto b = open_backend(dav.duplicity_url("made/on/write"), options);
  ASSERT_TRUE(b.has_value());
  auto refused = (*b)->list();
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().kind, ErrorKind::kAuth);
  EXPECT_NE(refused.error().message.find("FTP_PASSWORD"), std::string::npos);
  EXPECT_EQ(refused.error().message.find("wrong"), std::string::npos);
  // TLS without the CA: the message names the options.
  if (o.https) {
    options.password = o.password;
    options.tls.cacert_file.clear();
    b = open_backend(dav.duplicity_url("x"), options);
    auto untrusted = (*b)->list();
    ASSERT_FALSE(untrusted.has_value());
    EXPECT_EQ(untrusted.error().kind, ErrorKind::kAuth);
    EXPECT_NE(untrusted.error().message.find("--ssl-cacert-file"), std::string::npos);
  }
  // Temporary names never stay behind.
  for (const auto& e : std::filesystem::recursive_directory_iterator(dav.dav_dir())) {
    EXPECT_EQ(e.path().string().find("dupfs-tmp"), std::string::npos) << e.path();
  }
}

INSTANTIATE_TEST_SUITE_P(
    All, WebDavApacheTest,
    ::testing::Values(ApacheCase{"BasicHttp", test::WebDavServer::Auth::kBasic, false},
                      ApacheCase{"DigestHttp", test::WebDavServer::Auth::kDigest, false},
                      ApacheCase{"BasicHttps", test::WebDavServer::Auth::kBasic, true},
                      ApacheCase{"DigestHttps", test::WebDavServer::Auth::kDigest, true}),
    [](const auto& info) { return std::string(info.param.name); });

// Another server (nginx, a NAS, ...) named by DUPFS_TEST_WEBDAV_URL: a directory that does not
// exist yet, the password in DUPFS_TEST_WEBDAV_PASSWORD, the CA in DUPFS_TEST_WEBDAV_CACERT.
TEST(WebDavServerTest, Contract) {
  const char* url = std::getenv("DUPFS_TEST_WEBDAV_URL");
  if (url == nullptr) GTEST_SKIP() << "DUPFS_TEST_WEBDAV_URL is not set";
  BackendOptions options = test_options();
  if (const char* pw = std::getenv("DUPFS_TEST_WEBDAV_PASSWORD")) options.password = pw;
  if (const char* ca = std::getenv("DUPFS_TEST_WEBDAV_CACERT")) options.tls.cacert_file = ca;
  check_contract(url, options);
}

}  // namespace
}  // namespace dupfs

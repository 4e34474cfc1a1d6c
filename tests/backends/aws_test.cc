// S3's request signing and the AWS configuration: Signature V4 against the published examples of
// AWS's S3 documentation ("Examples: Signature Calculations in AWS Signature Version 4") and
// against botocore's signer (the AWS SDK duplicity's boto3 backend uses) for requests with
// awkward keys and queries; credentials and regions as the AWS tools find them; s3:// URLs as
// duplicity's boto3 backend reads them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "backends/aws_config.h"
#include "backends/aws_sigv4.h"
#include "backends/s3_backend.h"
#include "backends/url.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace dupfs {
namespace {

const AwsCredentials kDocCredentials{"AKIAIOSFODNN7EXAMPLE",
                                     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
constexpr char kEmptyHash[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kDocDate[] = "20130524T000000Z";

std::string signature_of(const std::string& authorization) {
  size_t at = authorization.find("Signature=");
  return at == std::string::npos ? "" : authorization.substr(at + 10);
}

SigV4Request doc_request(std::string method, std::string path,
                         std::vector<std::pair<std::string, std::string>> query = {}) {
  SigV4Request r;
  r.method = std::move(method);
  r.encoded_path = std::move(path);
  r.query = std::move(query);
  r.payload_hash = kEmptyHash;
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"x-amz-content-sha256", kEmptyHash},
               {"x-amz-date", kDocDate}};
  return r;
}

TEST(SigV4, DocExampleGetObjectWithRange) {
  SigV4Request r = doc_request("GET", "/test.txt");
  r.headers.emplace_back("Range", "bytes=0-9");
  std::string auth = sigv4_authorization(r, kDocCredentials, "us-east-1", "s3", kDocDate);
  EXPECT_EQ(signature_of(auth), "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_TRUE(
      auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
                       "us-east-1/s3/aws4_request, SignedHeaders=host;range;"
                       "x-amz-content-sha256;x-amz-date, Signature="))
      << auth;
}

TEST(SigV4, DocExamplePutObject) {
  SigV4Request r;
  r.method = "PUT";
  r.encoded_path = "/" + percent_encode("test$file.text", true);
  r.payload_hash = sha256_hex("Welcome to Amazon S3.");
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
               {"x-amz-content-sha256", r.payload_hash},
               {"x-amz-date", kDocDate},
               {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
  EXPECT_EQ(r.encoded_path, "/test%24file.text");
  EXPECT_EQ(r.payload_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  EXPECT_EQ(signature_of(sigv4_authorization(r, kDocCredentials, "us-east-1", "s3", kDocDate)),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4, DocExampleGetBucketLifecycle) {
  SigV4Request r = doc_request("GET", "/", {{"lifecycle", ""}});
  EXPECT_EQ(canonical_query(r.query), "lifecycle=");
  EXPECT_EQ(signature_of(sigv4_authorization(r, kDocCredentials, "us-east-1", "s3", kDocDate)),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4, DocExampleListObjects) {
  // Given out of order: the signer sorts.
  SigV4Request r = doc_request("GET", "/", {{"prefix", "J"}, {"max-keys", "2"}});
  EXPECT_EQ(canonical_query(r.query), "max-keys=2&prefix=J");
  EXPECT_EQ(signature_of(sigv4_authorization(r, kDocCredentials, "us-east-1", "s3", kDocDate)),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4, HeaderValuesAreTrimmedAndNamesLowercased) {
  SigV4Request r = doc_request("GET", "/x");
  r.headers.emplace_back("X-Amz-Meta-Note", "  two   spaces\tand tab  ");
  std::string canonical = canonical_request(r);
  EXPECT_NE(canonical.find("\nx-amz-meta-note:two spaces and tab\n"), std::string::npos)
      << canonical;
}

// Expected values from `openssl md5`/`openssl sha256`.
TEST(SigV4, Digests) {
  EXPECT_EQ(sha256_hex(""), kEmptyHash);
  EXPECT_EQ(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(md5_base64(""), "1B2M2Y8AsgTpgAmY7PhCfg==");
  EXPECT_EQ(md5_base64("Welcome to Amazon S3."), "1EfQ6PKJ8WoS/2AnznfCWA==");
}

// botocore signs the same requests: the canonical request and the signature must agree.
TEST(SigV4, AgreesWithBotocore) {
  struct Case {
    std::string method, key;
    std::vector<std::pair<std::string, std::string>> query;
    std::vector<std::pair<std::string, std::string>> extra_headers;
    std::string body;
  };
  std::vector<Case> cases{
      {"GET", "", {{"list-type", "2"}, {"prefix", "a b/c+d/"}, {"delimiter", "/"}}, {}, ""},
      {"GET",
       "",
       {{"list-type", "2"},
        {"prefix", "p/"},
        {"continuation-token", "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="}},
       {},
       ""},
      {"PUT",
       "pre fix/duplicity-full.20240102T030405Z.vol1.difftar.gpg",
       {},
       {{"Content-MD5", md5_base64("data")}, {"x-amz-storage-class", "STANDARD_IA"}},
       "data"},
      {"PUT",
       "p/name with spaces & ampersand=equals+plus~tilde",
       {{"partNumber", "3"}, {"uploadId", "VXBsb2FkIElE+/="}},
       {},
       std::string(1000, 'x')},
      {"POST", "p/é ü 日本", {{"uploads", ""}}, {}, ""},
      {"DELETE", "p/x", {{"uploadId", "abc"}}, {}, ""},
      {"HEAD", "p/%percent", {}, {{"Range", "bytes=5-9"}}, ""},
  };
  const AwsCredentials creds{"AKIDEXAMPLE", "secret/with+chars=", "session-token/+="};
  for (const auto& c : cases) {
    SigV4Request r;
    r.method = c.method;
    r.encoded_path = "/bucket/" + percent_encode(c.key, true);
    r.query = c.query;
    r.payload_hash = sha256_hex(c.body);
    r.headers = {{"Host", "127.0.0.1:9000"},
                 {"x-amz-date", "20240102T030405Z"},
                 {"x-amz-content-sha256", r.payload_hash},
                 {"x-amz-security-token", creds.session_token}};
    for (const auto& h : c.extra_headers) r.headers.push_back(h);
    std::string ours =
        signature_of(sigv4_authorization(r, creds, "eu-central-1", "s3", "20240102T030405Z"));

    // The request as botocore sees it: the path as sent, the query as parameters it encodes
    // itself, the same headers.
    std::string script = R"PY(
import sys
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
lines = sys.stdin.buffer.read().decode('utf-8').split('\n')
method, path = lines[0], lines[1]
n = int(lines[2]); params = {}
for i in range(n): params[lines[3 + 2*i]] = lines[4 + 2*i]
rest = lines[3 + 2*n:]
m = int(rest[0]); headers = {}
for i in range(m): headers[rest[1 + 2*i]] = rest[2 + 2*i]
r = AWSRequest(method=method, url='http://127.0.0.1:9000' + path, headers=headers, params=params)
auth = S3SigV4Auth(Credentials('AKIDEXAMPLE', 'secret/with+chars=', 'session-token/+='), 's3', 'eu-central-1')
r.context['timestamp'] = '20240102T030405Z'
cr = auth.canonical_request(r)
print(auth.signature(auth.string_to_sign(r, cr), r))
print(cr)
)PY";
    std::string input = r.method + "\n" + r.encoded_path + "\n" + std::to_string(c.query.size());
    for (const auto& [k, v] : c.query) input += "\n" + k + "\n" + v;
    input += "\n" + std::to_string(r.headers.size());
    for (const auto& [k, v] : r.headers) input += "\n" + k + "\n" + v;
    auto result =
        test::run({"/usr/bin/python3", "-c", script}, {}, std::chrono::seconds(60), input);
    ASSERT_TRUE(result.ok()) << result.err;
    std::string theirs = result.out.substr(0, result.out.find('\n'));
    std::string their_canonical = result.out.substr(result.out.find('\n') + 1);
    while (!their_canonical.empty() && their_canonical.back() == '\n') their_canonical.pop_back();
    EXPECT_EQ(canonical_request(r), their_canonical) << c.method << " " << c.key;
    EXPECT_EQ(ours, theirs) << c.method << " " << c.key;
  }
}

// --- AWS configuration ---

struct FakeEnv {
  std::map<std::string, std::string> vars;
  std::function<const char*(const char*)> getter() const {
    return [this](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

void write_file(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(AwsConfig, EnvironmentFirst) {
  test::TempDir home;
  FakeEnv env{{{"AWS_ACCESS_KEY_ID", "AKENV"},
               {"AWS_SECRET_ACCESS_KEY", "secretenv"},
               {"AWS_SESSION_TOKEN", "tok"},
               {"AWS_DEFAULT_REGION", "eu-west-3"}}};
  auto c = load_aws_config(env.getter(), home.path());
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->credentials.access_key_id, "AKENV");
  EXPECT_EQ(c->credentials.secret_access_key, "secretenv");
  EXPECT_EQ(c->credentials.session_token, "tok");
  EXPECT_EQ(c->region, "eu-west-3");
}

TEST(AwsConfig, ProfilesFromTheFiles) {
  test::TempDir home;
  std::filesystem::create_directories(home.path() + "/.aws");
  write_file(home.path() + "/.aws/credentials",
             "# comment\n[default]\naws_access_key_id = AKDEFAULT\naws_secret_access_key = "
             "sdefault\n\n[work]\n aws_access_key_id=AKWORK \naws_secret_access_key=swork\r\n");
  write_file(home.path() + "/.aws/config",
             "[default]\nregion = us-west-2\n[profile work]\nregion=ap-south-1\n"
             "[profile onlyconfig]\naws_access_key_id = AKCONF\naws_secret_access_key = sconf\n");
  FakeEnv env;
  auto c = load_aws_config(env.getter(), home.path());
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->credentials.access_key_id, "AKDEFAULT");
  EXPECT_EQ(c->region, "us-west-2");
  EXPECT_EQ(c->profile, "default");

  env.vars["AWS_PROFILE"] = "work";
  c = load_aws_config(env.getter(), home.path());
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->credentials.access_key_id, "AKWORK");
  EXPECT_EQ(c->credentials.secret_access_key, "swork");
  EXPECT_EQ(c->region, "ap-south-1");

  env.vars["AWS_PROFILE"] = "onlyconfig";
  c = load_aws_config(env.getter(), home.path());
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->credentials.access_key_id, "AKCONF");

  env.vars["AWS_PROFILE"] = "nosuch";
  c = load_aws_config(env.getter(), home.path());
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(c.error().message.find("nosuch"), std::string::npos) << c.error().message;

  // Files named by the environment instead of ~/.aws.
  test::TempDir other;
  write_file(other.path() + "/creds",
             "[default]\naws_access_key_id=AKOTHER\n"
             "aws_secret_access_key=sother\n");
  FakeEnv env2{{{"AWS_SHARED_CREDENTIALS_FILE", other.path() + "/creds"},
                {"AWS_CONFIG_FILE", other.path() + "/none"}}};
  c = load_aws_config(env2.getter(), home.path());
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->credentials.access_key_id, "AKOTHER");
  EXPECT_EQ(c->region, "");
}

TEST(AwsConfig, NoCredentialsSaysWhereItLooked) {
  test::TempDir home;
  FakeEnv env{{{"AWS_ACCESS_KEY_ID", "AKONLY"}}};  // no secret: not enough
  auto c = load_aws_config(env.getter(), home.path());
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().kind, ErrorKind::kAuth);
  EXPECT_NE(c.error().message.find("AWS_SECRET_ACCESS_KEY"), std::string::npos);
  EXPECT_NE(c.error().message.find(home.path() + "/.aws/credentials"), std::string::npos);
}

// --- s3:// URLs ---

TEST(S3Url, BucketAndPrefixAsDuplicityFoldsThem) {
  auto a = parse_s3_url("s3://MyBucket//My///My/Prefix/");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->bucket, "mybucket");  // urllib lowercases the host
  EXPECT_EQ(a->prefix, "My/My/Prefix/");
  EXPECT_EQ(a->describe(), "s3://mybucket/My/My/Prefix");
  auto b = parse_s3_url("boto3+s3://bucket");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->bucket, "bucket");
  EXPECT_EQ(b->prefix, "");
  EXPECT_EQ(b->describe(), "boto3+s3://bucket");
  auto c = parse_s3_url("s3+http://bucket/a%20b");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->prefix, "a b/");
  auto none = parse_s3_url("s3:///");
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().kind, ErrorKind::kInvalidArgument);
}

TEST(Url, PartsAndEncoding) {
  auto u = parse_url("WebDAVs://us%40er:p%3Ass@Example.COM:8443/dav/a%20b?q#f");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->scheme, "webdavs");
  EXPECT_EQ(u->user, "us@er");
  EXPECT_EQ(u->password, "p:ss");
  EXPECT_EQ(u->host, "example.com");
  EXPECT_EQ(u->port, 8443);
  EXPECT_EQ(u->path, "/dav/a b");
  EXPECT_EQ(u->describe(), "webdavs://us@er@example.com:8443/dav/a b");
  auto v6 = parse_url("ftp://[::1]:21/x");
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->host_port(), "[::1]:21");
  auto bad = parse_url("ftp://user:secret@host:99999/x");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message.find("secret"), std::string::npos) << bad.error().message;
  EXPECT_EQ(percent_encode("a b/c~d_e-f.g+h", true), "a%20b/c~d_e-f.g%2Bh");
  EXPECT_EQ(percent_encode("a/b", false), "a%2Fb");
}

}  // namespace
}  // namespace dupfs

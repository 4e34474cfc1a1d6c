#include "backends/s3_backend.h"

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <ctime>

#include "backends/aws_sigv4.h"
#include "backends/base/log.h"
#include "backends/url.h"
#include "backends/xml.h"

namespace dupfs {
namespace {

constexpr uint64_t kMinPartSize = uint64_t{5} << 20;  // S3's smallest part (but the last)

std::string amz_date_now() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

bool is_hex_md5(std::string_view s) {
  if (s.size() != 32) return false;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

bool success(long status) { return status >= 200 && status < 300; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Locations

bool is_s3_scheme(const std::string& scheme) {
  return scheme == "s3" || scheme == "boto3+s3" || scheme == "s3+http";
}

std::string S3Location::describe() const {
  std::string out = scheme + "://" + bucket;
  if (!prefix.empty()) out += "/" + prefix.substr(0, prefix.size() - 1);
  return out;
}

Result<S3Location> parse_s3_url(const std::string& url) {
  auto u = parse_url(url);
  if (!u) return std::unexpected(u.error());
  if (!is_s3_scheme(u->scheme)) {
    return error(ErrorKind::kInvalidArgument, "not an S3 URL: '{}'", u->describe());
  }
  // duplicity's boto3 backend: the bucket is the URL's host, the prefix its path (both with
  // empty parts folded). urllib lowercases the host; bucket names are lowercase anyway.
  S3Location loc;
  loc.scheme = u->scheme;
  std::vector<std::string> parts;
  std::string all = u->host + "/" + u->path;
  size_t start = 0;
  while (start <= all.size()) {
    size_t end = all.find('/', start);
    if (end == std::string::npos) end = all.size();
    if (end > start) parts.push_back(all.substr(start, end - start));
    start = end + 1;
  }
  if (parts.empty()) {
    return error(ErrorKind::kInvalidArgument, "no bucket name in S3 URL '{}'", u->describe());
  }
  loc.bucket = parts.front();
  for (size_t i = 1; i < parts.size(); ++i) loc.prefix += parts[i] + "/";
  return loc;
}

// ---------------------------------------------------------------------------------------------
// Opening

S3Backend::S3Backend(S3Location location, const BackendOptions& options, AwsConfig aws,
                     Endpoint endpoint, std::string region)
    : location_(std::move(location)),
      s3_(options.s3),
      aws_(std::move(aws)),
      endpoint_(std::move(endpoint)),
      region_(std::move(region)),
      pool_(CurlPoolOptions{.num_retries = options.num_retries,
                            .timeout = options.timeout,
                            .max_handles = options.max_connections,
                            .tls = options.tls,
                            .describe = location_.describe()}) {
  s3_.multipart_chunk_size = std::max(s3_.multipart_chunk_size, kMinPartSize);
}

Result<std::unique_ptr<S3Backend>> S3Backend::open(S3Location location,
                                                   const BackendOptions& options) {
  auto aws = load_aws_config([](const char* name) { return std::getenv(name); }, user_home());
  if (!aws) return std::unexpected(aws.error());
  std::string region = !options.s3.region.empty() ? options.s3.region
                       : !aws->region.empty()     ? aws->region
                                                  : "us-east-1";
  Endpoint endpoint;
  if (!options.s3.endpoint_url.empty()) {
    auto u = parse_url(options.s3.endpoint_url);
    if (!u || (u->scheme != "http" && u->scheme != "https") || u->host.empty()) {
      return error(ErrorKind::kInvalidArgument,
                   "--s3-endpoint-url must be http://HOST[:PORT] or https://HOST[:PORT], not '{}'",
                   options.s3.endpoint_url);
    }
    endpoint.origin = u->scheme + "://" + u->host_port();
    endpoint.host = u->host_port();
    std::string base = u->path;
    while (!base.empty() && base.back() == '/') base.pop_back();
    endpoint.base_path = percent_encode(base, true) + "/" + percent_encode(location.bucket, true);
  } else if (location.bucket.find('.') != std::string::npos) {
    endpoint.host = "s3." + region + ".amazonaws.com";
    endpoint.origin = "https://" + endpoint.host;
    endpoint.base_path = "/" + percent_encode(location.bucket, true);
  } else {
    endpoint.host = location.bucket + ".s3." + region + ".amazonaws.com";
    endpoint.origin = "https://" + endpoint.host;
  }
  return std::unique_ptr<S3Backend>(new S3Backend(std::move(location), options, std::move(*aws),
                                                  std::move(endpoint), std::move(region)));
}

// ---------------------------------------------------------------------------------------------
// Requests

Result<HttpResponse> S3Backend::send(CURL* h, const std::string& method, const std::string& key,
                                     const Query& query,
                                     std::vector<std::pair<std::string, std::string>> headers,
                                     std::optional<std::string_view> body, size_t expected_size,
                                     std::string_view where) const {
  SigV4Request sig;
  sig.method = method;
  sig.encoded_path = endpoint_.base_path + "/" + percent_encode(key, true);
  sig.query = query;
  sig.payload_hash = body ? sha256_hex(*body) : sha256_hex("");
  std::string date = amz_date_now();
  headers.emplace_back("Host", endpoint_.host);
  headers.emplace_back("x-amz-date", date);
  headers.emplace_back("x-amz-content-sha256", sig.payload_hash);
  if (!aws_.credentials.session_token.empty()) {
    headers.emplace_back("x-amz-security-token", aws_.credentials.session_token);
  }
  sig.headers = headers;

  HttpRequest request;
  request.method = method;
  request.url = endpoint_.origin + sig.encoded_path;
  if (!query.empty()) request.url += "?" + canonical_query(query);
  for (const auto& [name, value] : headers) request.headers.push_back(name + ": " + value);
  request.headers.push_back("Authorization: " +
                            sigv4_authorization(sig, aws_.credentials, region_, "s3", date));
  if (body) request.headers.push_back("Content-Type: application/octet-stream");
  request.body = body;
  request.expected_size = expected_size;
  return http_request(h, request, where);
}

Error S3Backend::s3_error(const HttpResponse& response, std::string_view where) const {
  std::string code, message;
  if (!response.body.empty()) {
    if (auto xml = parse_xml(response.body, where); xml && xml->name == "Error") {
      code = xml->child_text("Code");
      message = xml->child_text("Message");
    }
  }
  auto fail = [&](ErrorKind kind, std::string text) { return Error{kind, std::move(text)}; };
  if (code == "NoSuchBucket") {
    // Not kNotFound, which for a location means "nothing stored there yet": a bucket is not
    // made on the fly (duplicity refuses too), so the URL is wrong.
    return fail(ErrorKind::kInvalidArgument,
                fmt::format("{}: S3 bucket '{}' does not exist (at {})", where, location_.bucket,
                            endpoint_.origin));
  }
  if (code == "InvalidAccessKeyId") {
    return fail(ErrorKind::kAuth,
                fmt::format("{}: S3 does not know the access key ID '{}' (InvalidAccessKeyId); "
                            "check AWS_ACCESS_KEY_ID or profile '{}'",
                            where, aws_.credentials.access_key_id, aws_.profile));
  }
  if (code == "SignatureDoesNotMatch") {
    return fail(ErrorKind::kAuth,
                fmt::format("{}: S3 refused the request's signature (SignatureDoesNotMatch); "
                            "check AWS_SECRET_ACCESS_KEY or profile '{}', and --s3-region-name",
                            where, aws_.profile));
  }
  if (code == "RequestTimeTooSkewed") {
    return fail(ErrorKind::kAuth,
                fmt::format("{}: S3 refused the request's time (RequestTimeTooSkewed); this "
                            "machine's clock is off",
                            where));
  }
  if (code == "SlowDown") {
    return fail(ErrorKind::kIoError, fmt::format("{}: S3 asks to slow down (SlowDown)", where));
  }
  if (code == "BadDigest" || code == "XAmzContentSHA256Mismatch" || code == "IncompleteBody") {
    // The store got other bytes than were sent: damaged on the way, worth sending again.
    return fail(
        ErrorKind::kIoError,
        fmt::format("{}: the store refused the upload as damaged on the way ({})", where, code));
  }
  ErrorKind kind = http_status_kind(response.status);
  if (code.empty()) {
    if (kind == ErrorKind::kNotFound) {
      return fail(kind, fmt::format("{}: no such object (HTTP {})", where, response.status));
    }
    if (kind == ErrorKind::kAuth) {
      return fail(kind, fmt::format("{}: S3 refused access (HTTP {}); check the credentials "
                                    "(profile '{}') and the bucket's permissions",
                                    where, response.status, aws_.profile));
    }
    return fail(kind, fmt::format("{}: HTTP {}", where, response.status));
  }
  if (kind == ErrorKind::kAuth) {
    return fail(kind, fmt::format("{}: S3 refused access ({}: {}); check the credentials "
                                  "(profile '{}') and the bucket's permissions",
                                  where, code, message, aws_.profile));
  }
  return fail(kind, fmt::format("{}: {} ({}, HTTP {})", where, message.empty() ? code : message,
                                code, response.status));
}

// ---------------------------------------------------------------------------------------------
// Backend

Result<std::vector<std::string>> S3Backend::list() const {
  std::vector<std::string> names;
  std::map<std::string, uint64_t> sizes;
  std::string token;
  const std::string where = describe();
  for (;;) {
    Query query{{"list-type", "2"}, {"prefix", location_.prefix}, {"delimiter", "/"}};
    if (!token.empty()) query.emplace_back("continuation-token", token);
    auto page = pool_.run<XmlElement>("list " + where, [&](CURL* h) -> Result<XmlElement> {
      auto r = send(h, "GET", "", query, {}, std::nullopt, 0, where);
      if (!r) return std::unexpected(std::move(r.error()));
      if (!success(r->status)) return std::unexpected(s3_error(*r, where));
      return parse_xml(r->body, where);
    });
    if (!page) return std::unexpected(std::move(page.error()));
    for (const auto& c : page->children) {
      if (c.name != "Contents") continue;
      std::string key = c.child_text("Key");
      if (!key.starts_with(location_.prefix) || key.size() == location_.prefix.size()) continue;
      std::string name = key.substr(location_.prefix.size());
      if (name.find('/') != std::string::npos) continue;
      sizes[name] = std::strtoull(c.child_text("Size").c_str(), nullptr, 10);
      names.push_back(std::move(name));
    }
    token = page->child_text("NextContinuationToken");
    if (page->child_text("IsTruncated") != "true" || token.empty()) break;
  }
  {
    std::lock_guard lock(sizes_mu_);
    sizes_ = std::move(sizes);
  }
  return names;
}

Result<uint64_t> S3Backend::head(const std::string& name) const {
  std::string where = describe() + "/" + name;
  return pool_.run<uint64_t>("HEAD " + name, [&](CURL* h) -> Result<uint64_t> {
    auto r = send(h, "HEAD", key_of(name), {}, {}, std::nullopt, 0, where);
    if (!r) return std::unexpected(std::move(r.error()));
    if (!success(r->status)) return std::unexpected(s3_error(*r, where));
    auto length = r->header("content-length");
    if (!length) return error(ErrorKind::kIoError, "{}: no Content-Length in the answer", where);
    return std::strtoull(length->c_str(), nullptr, 10);
  });
}

Result<uint64_t> S3Backend::size(const std::string& name) const {
  {
    std::lock_guard lock(sizes_mu_);
    if (auto it = sizes_.find(name); it != sizes_.end()) return it->second;
  }
  return head(name);
}

Result<std::string> S3Backend::read_range(const std::string& name, uint64_t offset,
                                          size_t length) const {
  if (length == 0) return std::string();
  return windows_.read(name, offset, length,
                       [&](uint64_t from, size_t want) { return fetch_range(name, from, want); });
}

Result<std::string> S3Backend::fetch_range(const std::string& name, uint64_t offset,
                                           size_t length) const {
  std::string where = describe() + "/" + name;
  std::string range = fmt::format("bytes={}-{}", offset, offset + length - 1);
  return pool_.run<std::string>("GET " + name, [&](CURL* h) -> Result<std::string> {
    auto r = send(h, "GET", key_of(name), {}, {{"Range", range}}, std::nullopt, length, where);
    if (!r) return std::unexpected(std::move(r.error()));
    if (r->status == 206) return std::move(r->body);
    if (r->status == 416) return std::string();  // at or past the end
    if (r->status == 200) {
      // The whole object: the store ignored the range.
      if (offset >= r->body.size()) return std::string();
      return r->body.substr(offset, length);
    }
    return std::unexpected(s3_error(*r, where));
  });
}

std::string S3Backend::storage_class_for(const std::string& name) const {
  if (s3_.storage_class.empty()) return {};
  if (s3_.storage_class_spares_manifests && name.find("manifest") != std::string::npos) return {};
  return s3_.storage_class;
}

Status S3Backend::put_single(const std::string& name, std::string_view data) const {
  std::string where = describe() + "/" + name;
  std::vector<std::pair<std::string, std::string>> headers{{"Content-MD5", md5_base64(data)}};
  if (auto sc = storage_class_for(name); !sc.empty())
    headers.emplace_back("x-amz-storage-class", sc);
  const std::string md5 = md5_hex(data);
  bool damaged = false;  // the last try stored other bytes than were sent
  auto put = pool_.run<bool>("PUT " + name, [&](CURL* h) -> Result<bool> {
    auto r = send(h, "PUT", key_of(name), {}, headers, data, 0, where);
    if (!r) return std::unexpected(std::move(r.error()));
    if (!success(r->status)) return std::unexpected(s3_error(*r, where));
    std::string etag = ascii_lowercase(unquote(r->header("etag").value_or("")));
    damaged = is_hex_md5(etag) && etag != md5;
    if (damaged) {
      // Stored, but not what was sent: sent again (the retry policy), deleted at the end.
      return error(ErrorKind::kIoError,
                   "{}: the store holds other bytes than were sent (ETag {}, MD5 {}): damaged "
                   "on the way",
                   where, etag, md5);
    }
    return true;
  });
  if (put) return {};
  if (damaged) {
    (void)pool_.run<bool>("DELETE " + name, [&](CURL* h) -> Result<bool> {
      auto r = send(h, "DELETE", key_of(name), {}, {}, std::nullopt, 0, where);
      if (!r) return std::unexpected(std::move(r.error()));
      return true;
    });
  }
  return std::unexpected(std::move(put.error()));
}

Status S3Backend::put_multipart(const std::string& name, std::string_view data) const {
  std::string where = describe() + "/" + name;
  const std::string key = key_of(name);
  std::vector<std::pair<std::string, std::string>> headers;
  if (auto sc = storage_class_for(name); !sc.empty())
    headers.emplace_back("x-amz-storage-class", sc);
  auto upload_id =
      pool_.run<std::string>("start upload " + name, [&](CURL* h) -> Result<std::string> {
        auto r = send(h, "POST", key, {{"uploads", ""}}, headers, std::string_view(), 0, where);
        if (!r) return std::unexpected(std::move(r.error()));
        if (!success(r->status)) return std::unexpected(s3_error(*r, where));
        auto xml = parse_xml(r->body, where);
        if (!xml) return std::unexpected(std::move(xml.error()));
        std::string id = xml->child_text("UploadId");
        if (id.empty()) return error(ErrorKind::kIoError, "{}: no UploadId in the answer", where);
        return id;
      });
  if (!upload_id) return std::unexpected(std::move(upload_id.error()));

  auto abort = [&] {
    auto done = pool_.run<bool>("abort upload " + name, [&](CURL* h) -> Result<bool> {
      auto r = send(h, "DELETE", key, {{"uploadId", *upload_id}}, {}, std::nullopt, 0, where);
      if (!r) return std::unexpected(std::move(r.error()));
      if (!success(r->status) && r->status != 404) return std::unexpected(s3_error(*r, where));
      return true;
    });
    if (!done)
      log_warning("{}: the unfinished multipart upload could not be aborted: {}", where,
                  done.error().message);
  };

  std::string complete = "<CompleteMultipartUpload>";
  int parts = 0;
  for (size_t offset = 0; offset < data.size(); offset += s3_.multipart_chunk_size) {
    std::string_view part = data.substr(offset, s3_.multipart_chunk_size);
    const int number = ++parts;
    std::string md5 = md5_hex(part);
    std::vector<std::pair<std::string, std::string>> part_headers{
        {"Content-MD5", md5_base64(part)}};
    Query query{{"partNumber", std::to_string(number)}, {"uploadId", *upload_id}};
    auto etag = pool_.run<std::string>(
        fmt::format("PUT {} part {}", name, number), [&](CURL* h) -> Result<std::string> {
          auto r = send(h, "PUT", key, query, part_headers, part, 0, where);
          if (!r) return std::unexpected(std::move(r.error()));
          if (!success(r->status)) return std::unexpected(s3_error(*r, where));
          std::string etag = ascii_lowercase(unquote(r->header("etag").value_or("")));
          if (is_hex_md5(etag) && etag != md5) {
            return error(ErrorKind::kIoError, "{}: part {} arrived damaged (ETag {}, MD5 {})",
                         where, number, etag, md5);
          }
          return etag.empty() ? md5 : etag;
        });
    if (!etag) {
      abort();
      return std::unexpected(std::move(etag.error()));
    }
    complete +=
        fmt::format("<Part><PartNumber>{}</PartNumber><ETag>\"{}\"</ETag></Part>", number, *etag);
  }
  complete += "</CompleteMultipartUpload>";

  auto done = pool_.run<bool>("complete upload " + name, [&](CURL* h) -> Result<bool> {
    auto r = send(h, "POST", key, {{"uploadId", *upload_id}}, {}, complete, 0, where);
    if (!r) return std::unexpected(std::move(r.error()));
    // A failure can also come as a 200 whose body is an <Error>.
    if (!success(r->status) || r->body.find("<Error>") != std::string::npos) {
      return std::unexpected(s3_error(*r, where));
    }
    return true;
  });
  if (!done) {
    abort();
    return std::unexpected(std::move(done.error()));
  }
  return {};
}

Status S3Backend::write(const std::string& name, std::string_view data) {
  auto existing = head(name);
  if (existing) return error(ErrorKind::kExists, "{}/{} already exists", describe(), name);
  if (existing.error().kind != ErrorKind::kNotFound) return std::unexpected(existing.error());
  {
    std::lock_guard lock(sizes_mu_);
    sizes_.erase(name);
  }
  windows_.forget(name);
  if (data.size() > s3_.multipart_chunk_size) return put_multipart(name, data);
  return put_single(name, data);
}

Status S3Backend::remove(const std::string& name) {
  auto existing = head(name);
  if (!existing) return std::unexpected(existing.error());
  {
    std::lock_guard lock(sizes_mu_);
    sizes_.erase(name);
  }
  windows_.forget(name);
  std::string where = describe() + "/" + name;
  auto done = pool_.run<bool>("DELETE " + name, [&](CURL* h) -> Result<bool> {
    auto r = send(h, "DELETE", key_of(name), {}, {}, std::nullopt, 0, where);
    if (!r) return std::unexpected(std::move(r.error()));
    if (!success(r->status)) return std::unexpected(s3_error(*r, where));
    return true;
  });
  if (!done) return std::unexpected(std::move(done.error()));
  return {};
}

}  // namespace dupfs

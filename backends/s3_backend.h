// Amazon S3 and S3-compatible stores (MinIO, Ceph RGW, Backblaze B2, Wasabi): duplicity's
// s3:// and boto3+s3:// locations, through libcurl (curl_pool.h) with requests signed here
// (aws_sigv4.h) and credentials found as the AWS tools find them (aws_config.h).
//
// Addressing: with --s3-endpoint-url, ENDPOINT/BUCKET/KEY (path style, what S3-compatible
// services take); else https://BUCKET.s3.REGION.amazonaws.com/KEY (virtual host; path style on
// s3.REGION.amazonaws.com for bucket names with dots, which a wildcard certificate cannot cover).
// An object's key is the URL's prefix, '/', then its name.
//
// Requests: list() is ListObjectsV2 with delimiter '/', page after page (continuation tokens);
// the sizes it returns answer size() until the object changes. read_range() is a ranged GET of
// 8 MiB or more, kept for the sequential reads that follow (read_windows.h).
// write() checks the name is free (HEAD), then PUTs the object with Content-MD5 and its real
// SHA-256 (x-amz-content-sha256), so the store refuses a body damaged on the way; objects larger
// than --s3-multipart-chunk-size go up as a multipart upload (aborted on failure, never left
// behind). An ETag that is an MD5 must also match what was sent: a store that does not check
// Content-MD5 still cannot keep a damaged upload (it is sent again, then deleted). remove() is
// HEAD (kNotFound) then DELETE.
//
// Failures: 5xx, 429 and SlowDown answers, dropped connections and timeouts are tried again
// (curl_pool.h); refusals name the S3 error code and what to check.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "backends/aws_config.h"
#include "backends/backend.h"
#include "backends/curl_pool.h"
#include "backends/http.h"
#include "backends/read_windows.h"

namespace dupfs {

// s3://BUCKET[/PREFIX], boto3+s3://BUCKET[/PREFIX] (duplicity 2.x and 0.8's boto3 backend) and
// s3+http://BUCKET[/PREFIX] (0.8's boto backend). Empty path parts fold away, as duplicity's
// do: s3://b//x/ is s3://b/x.
struct S3Location {
  std::string scheme;
  std::string bucket;
  std::string prefix;  // "" or "a/b/": what object keys start with

  std::string describe() const;
};

bool is_s3_scheme(const std::string& scheme);
// kInvalidArgument for a missing bucket name.
Result<S3Location> parse_s3_url(const std::string& url);

class S3Backend : public Backend {
 public:
  // Finds the credentials and region and checks --s3-endpoint-url; does not connect.
  static Result<std::unique_ptr<S3Backend>> open(S3Location location,
                                                 const BackendOptions& options);

  Result<std::vector<std::string>> list() const override;
  Result<uint64_t> size(const std::string& name) const override;
  Result<std::string> read_range(const std::string& name, uint64_t offset,
                                 size_t length) const override;
  Status write(const std::string& name, std::string_view data) override;
  Status remove(const std::string& name) override;
  std::string describe() const override { return location_.describe(); }
  void after_fork() override { pool_.after_fork(); }

 private:
  // Where requests go: scheme://host[:port], the Host header, and the path in front of keys
  // ("/BUCKET" in path style, "" for a virtual host).
  struct Endpoint {
    std::string origin;
    std::string host;
    std::string base_path;
  };
  using Query = std::vector<std::pair<std::string, std::string>>;

  S3Backend(S3Location location, const BackendOptions& options, AwsConfig aws, Endpoint endpoint,
            std::string region);

  // One signed request for `key` ("" for the bucket) on a pool handle; the answer whatever its
  // status.
  Result<HttpResponse> send(CURL* h, const std::string& method, const std::string& key,
                            const Query& query,
                            std::vector<std::pair<std::string, std::string>> headers,
                            std::optional<std::string_view> body, size_t expected_size,
                            std::string_view where) const;
  // The error for an answer that is not a success.
  Error s3_error(const HttpResponse& response, std::string_view where) const;
  Result<uint64_t> head(const std::string& name) const;
  // One ranged GET: bytes [offset, offset + length), fewer at the end.
  Result<std::string> fetch_range(const std::string& name, uint64_t offset, size_t length) const;
  Status put_single(const std::string& name, std::string_view data) const;
  Status put_multipart(const std::string& name, std::string_view data) const;
  std::string storage_class_for(const std::string& name) const;
  std::string key_of(const std::string& name) const { return location_.prefix + name; }

  S3Location location_;
  S3Options s3_;
  AwsConfig aws_;  // holds the secret key: never logged
  Endpoint endpoint_;
  std::string region_;
  CurlPool pool_;
  // Sizes from the last listing, until the object is written or removed. A leaf lock.
  mutable std::mutex sizes_mu_;
  mutable std::map<std::string, uint64_t> sizes_;
  // Sequential reads fetch 8 MiB at a time (read_windows.h).
  ReadWindows windows_{size_t{8} << 20, 8};
};

}  // namespace dupfs

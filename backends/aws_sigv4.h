// AWS Signature Version 4 (header form), as S3 checks it: the canonical request, the string to
// sign and the Authorization header. Pure functions (OpenSSL's SHA-256 and HMAC), no I/O.
// Tested against the examples of AWS's S3 documentation and against botocore.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dupfs {

struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;  // never logged
  std::string session_token;      // AWS_SESSION_TOKEN; empty: none
};

struct SigV4Request {
  std::string method;
  // The path as sent: already percent-encoded (S3 signs it as is, without normalizing).
  std::string encoded_path;
  // Query parameters, not encoded; signed and sent in canonical order (canonical_query()).
  std::vector<std::pair<std::string, std::string>> query;
  // Headers to sign, host among them; names in any case, values as sent.
  std::vector<std::pair<std::string, std::string>> headers;
  // Lowercase hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"; also the x-amz-content-sha256
  // header, which the caller must send (and list in headers).
  std::string payload_hash;
};

// The query string as signed: each name and value RFC 3986-encoded, sorted by name then value,
// "a=1&b=2"; "name=" for an empty value. Send exactly this.
std::string canonical_query(const std::vector<std::pair<std::string, std::string>>& query);

std::string canonical_request(const SigV4Request& request);

// The Authorization header's value for `request` at `amz_date` ("20130524T000000Z", also the
// x-amz-date header's value) for `region` and `service` ("s3").
std::string sigv4_authorization(const SigV4Request& request, const AwsCredentials& credentials,
                                std::string_view region, std::string_view service,
                                std::string_view amz_date);

// Lowercase hex SHA-256 of `data`, and base64 MD5 (the Content-MD5 header) and hex MD5 (an
// ETag) of it.
std::string sha256_hex(std::string_view data);
std::string md5_base64(std::string_view data);
std::string md5_hex(std::string_view data);

}  // namespace dupfs

// HTTP requests on a CurlPool handle (S3, WebDAV): one request, its answer, and the one reading
// of HTTP statuses as Error kinds.
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/base/error.h"

namespace dupfs {

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD, PUT, POST, DELETE, PROPFIND, MKCOL, MOVE, ...
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::optional<std::string_view> body;
  // Basic or Digest, whichever the server asks for (libcurl answers its challenge).
  std::optional<std::pair<std::string, std::string>> login;  // user, password
  // The schemes offered for `login` (CURLAUTH_*): a single one is used without waiting for the
  // server's challenge (Digest then probes with an empty body before sending the real one).
  unsigned long auth_methods = CURLAUTH_BASIC | CURLAUTH_DIGEST;
  bool follow_redirects = false;
  // Bytes the answer's body is expected to have, to reserve room for them.
  size_t expected_size = 0;
};

struct HttpResponse {
  long status = 0;
  std::string body;
  // The final answer's headers (after redirects and authentication), names lowercased.
  std::vector<std::pair<std::string, std::string>> headers;

  // The first header named `lowercase_name`.
  std::optional<std::string> header(std::string_view lowercase_name) const;
};

// Sends `request` on `h` (prepared by CurlPool::run; several requests may follow one another on
// it, each setting its own method, body, login and redirects) and returns the answer, whatever its
// status; libcurl's failures as perform() in curl_pool.h has them. `where` names the object in
// messages.
Result<HttpResponse> http_request(CURL* h, const HttpRequest& request, std::string_view where);

// The kind of an HTTP error status: 404/410 kNotFound; 401/403 kAuth; 408, 429 and 5xx kIoError
// (transient: tried again); 412 kExists; other 4xx kInvalidArgument (the request is refused
// and would be refused again).
ErrorKind http_status_kind(long status);

}  // namespace dupfs

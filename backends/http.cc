#include "backends/http.h"

#include "backends/curl_pool.h"
#include "backends/url.h"

namespace dupfs {
namespace {

size_t collect_header(char* data, size_t size, size_t count, void* user) {
  auto* headers = static_cast<std::vector<std::pair<std::string, std::string>>*>(user);
  std::string_view line(data, size * count);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    headers->clear();  // a new answer (after a redirect, 100 Continue or a challenge)
  } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
      value.remove_prefix(1);
    }
    headers->emplace_back(ascii_lowercase(std::string(line.substr(0, colon))), value);
  }
  return size * count;
}

}  // namespace

std::optional<std::string> HttpResponse::header(std::string_view lowercase_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lowercase_name) return value;
  }
  return std::nullopt;
}

Result<HttpResponse> http_request(CURL* h, const HttpRequest& request, std::string_view where) {
  HttpResponse response;
  response.body.reserve(request.expected_size);
  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  CurlList headers;
  for (const auto& line : request.headers) headers.add(line);
  // No "Expect: 100-continue" round trip before a body.
  headers.add("Expect:");
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, collect_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &response.headers);
  // The handle may have served another request in the same pool_.run() (a PUT, then a PROPFIND):
  // nothing of that one's method, upload, login or redirects may stay.
  curl_easy_setopt(h, CURLOPT_UPLOAD, 0L);
  curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
  curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, nullptr);
  curl_easy_setopt(h, CURLOPT_READFUNCTION, nullptr);
  curl_easy_setopt(h, CURLOPT_READDATA, nullptr);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  if (!request.login) {
    curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(h, CURLOPT_USERNAME, nullptr);
    curl_easy_setopt(h, CURLOPT_PASSWORD, nullptr);
  }
  if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (request.method != "GET" || request.body) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (request.login) {
    curl_easy_setopt(h, CURLOPT_HTTPAUTH, request.auth_methods);
    curl_easy_setopt(h, CURLOPT_USERNAME, request.login->first.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, request.login->second.c_str());
  }
  if (request.follow_redirects) {
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 8L);
    // Keep the method (PROPFIND stays PROPFIND) on 301/302/303.
    curl_easy_setopt(h, CURLOPT_POSTREDIR, CURL_REDIR_POST_ALL);
  }
  auto st = perform(h, &response.body, request.body, where);
  if (!st) return std::unexpected(std::move(st.error()));
  response.status = response_code(h);
  return response;
}

ErrorKind http_status_kind(long status) {
  if (status == 404 || status == 410) return ErrorKind::kNotFound;
  if (status == 401 || status == 403) return ErrorKind::kAuth;
  if (status == 412) return ErrorKind::kExists;
  if (status == 408) return ErrorKind::kTimeout;
  if (status == 429 || status >= 500) return ErrorKind::kIoError;
  return ErrorKind::kInvalidArgument;
}

}  // namespace dupfs

// libcurl for network storage (S3, WebDAV, FTP): a pool of easy handles, the retry policy, and
// the one mapping of libcurl's failures to Error.
//
// Connections: at most `max_handles` easy handles, made on demand and reused; each keeps its
// connection open between requests (keep-alive), so parallel reads and uploads each hold one
// handle and one connection for the duration of an operation.
//
// Waits: every transfer gives up when connecting takes longer than `timeout`, or when no byte
// moves either way for `timeout` (libcurl's low-speed limit, which also covers a server that
// accepted a request and never answers). Nothing else is needed to bound a wait.
//
// Failures: run() tries an operation again, on the same handle (libcurl reconnects), when it
// failed with a transient error (is_permanent() false: a dropped or refused connection, a
// timeout, a 5xx or 429 answer), up to `num_retries` tries with growing pauses. Permanent ones
// (refused login, missing object, a certificate that does not verify) are returned at once.
#pragma once

#include <curl/curl.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "backends/base/error.h"

namespace dupfs {

struct CurlPoolOptions {
  int num_retries = 5;
  std::chrono::seconds timeout{30};
  int max_handles = 4;
  TlsOptions tls;
  // Names the storage in log lines ("s3://bucket/prefix").
  std::string describe;
};

class CurlPool {
 public:
  explicit CurlPool(CurlPoolOptions options);
  ~CurlPool();
  CurlPool(const CurlPool&) = delete;
  CurlPool& operator=(const CurlPool&) = delete;

  // Runs `op` with a handle that has the pool's settings (timeouts, TLS, no signals, keep-alive)
  // and nothing else; `op` adds the request's own options and calls perform(). Tries again as
  // said above; `what` names the operation in log lines ("GET vol1.difftar.gpg").
  template <typename T>
  Result<T> run(std::string_view what, const std::function<Result<T>(CURL*)>& op) const;

  // Handles made before a fork() share their sockets with the parent: the child drops them
  // (without a word to the servers) and makes its own. Nothing when there was no fork.
  void after_fork();

  const CurlPoolOptions& options() const { return options_; }

 private:
  CURL* acquire() const;
  void release(CURL* h) const;
  void prepare(CURL* h) const;
  void pause_before(int attempt) const;

  CurlPoolOptions options_;
  // Guards idle_ and open_; cv_ (with it) wakes an acquire() waiting for a handle. A leaf: held
  // only to take or give back a handle, never during a transfer.
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable std::vector<CURL*> idle_;
  mutable int open_ = 0;  // idle and in use
  pid_t owner_;           // the process the handles were made in (after_fork() tells)
};

// One transfer on `h`, set up by the caller: the body received is appended to `received` (when
// not null) and `upload`, when given, is sent (CURLOPT_UPLOAD/CURLOPT_READFUNCTION are set here;
// the data can be sent twice, for authentication or a redirect). `where` names the object in
// messages. libcurl's failures become: kTimeout (no progress for the timeout), kIoError (could not
// connect, connection dropped; transient), kAuth (login refused, TLS certificate did not verify:
// the message says which option to check), kNotFound (FTP: no such file). An HTTP status is not
// a failure here: the caller reads it with response_code(). `code`, when not null, gets
// libcurl's own result (FTP tells a missing directory from a refused login by it).
Status perform(CURL* h, std::string* received, std::optional<std::string_view> upload,
               std::string_view where, CURLcode* code = nullptr);

long response_code(CURL* h);

// curl_slist that frees itself.
class CurlList {
 public:
  CurlList() = default;
  ~CurlList();
  CurlList(const CurlList&) = delete;
  CurlList& operator=(const CurlList&) = delete;
  void add(const std::string& line);
  curl_slist* get() const { return list_; }

 private:
  curl_slist* list_ = nullptr;
};

// The warning run() writes for a failed try.
void log_retry(std::string_view what, const Error& e, int attempt, int tries);

template <typename T>
Result<T> CurlPool::run(std::string_view what, const std::function<Result<T>(CURL*)>& op) const {
  const int tries = std::max(1, options_.num_retries);
  std::optional<Error> last;
  for (int attempt = 1; attempt <= tries; ++attempt) {
    if (attempt > 1) pause_before(attempt);
    CURL* h = acquire();
    prepare(h);
    Result<T> result = op(h);
    release(h);
    if (result || is_permanent(result.error().kind)) return result;
    last = std::move(result.error());
    log_retry(what, *last, attempt, tries);
  }
  return std::unexpected(std::move(*last));
}

}  // namespace dupfs

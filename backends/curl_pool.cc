#include "backends/curl_pool.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "backends/backend.h"
#include "backends/base/log.h"

namespace dupfs {
namespace {

std::once_flag global_init;

size_t append_received(char* data, size_t size, size_t count, void* user) {
  auto* out = static_cast<std::string*>(user);
  if (out != nullptr) out->append(data, size * count);
  return size * count;
}

struct UploadCursor {
  std::string_view data;
  size_t pos = 0;
};

size_t read_upload(char* buffer, size_t size, size_t count, void* user) {
  auto* c = static_cast<UploadCursor*>(user);
  size_t n = std::min(size * count, c->data.size() - c->pos);
  std::memcpy(buffer, c->data.data() + c->pos, n);
  c->pos += n;
  return n;
}

int seek_upload(void* user, curl_off_t offset, int origin) {
  auto* c = static_cast<UploadCursor*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<size_t>(offset) > c->data.size()) {
    return CURL_SEEKFUNC_FAIL;
  }
  c->pos = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

// The kind of a libcurl failure (see perform() in the header).
ErrorKind kind_of(CURLcode code) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return ErrorKind::kTimeout;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_LOGIN_DENIED:
    case CURLE_REMOTE_ACCESS_DENIED:
    case CURLE_AUTH_ERROR:
      return ErrorKind::kAuth;
    case CURLE_REMOTE_FILE_NOT_FOUND:
      return ErrorKind::kNotFound;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return ErrorKind::kInvalidArgument;
    case CURLE_USE_SSL_FAILED:
    case CURLE_NOT_BUILT_IN:
      return ErrorKind::kUnsupported;
    case CURLE_ABORTED_BY_CALLBACK:
      return ErrorKind::kCancelled;
    default:
      return ErrorKind::kIoError;
  }
}

}  // namespace

CurlList::~CurlList() { curl_slist_free_all(list_); }

void CurlList::add(const std::string& line) {
  curl_slist* next = curl_slist_append(list_, line.c_str());
  if (next == nullptr) throw std::bad_alloc();
  list_ = next;
}

CurlPool::CurlPool(CurlPoolOptions options) : options_(std::move(options)), owner_(::getpid()) {
  std::call_once(global_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  options_.max_handles = std::max(1, options_.max_handles);
}

CurlPool::~CurlPool() {
  for (CURL* h : idle_) {
    // Closing a kept connection can wait for the server: FTP's QUIT waits for its answer up to
    // CURLOPT_SERVER_RESPONSE_TIMEOUT (--timeout), for each connection, on a frozen server. The
    // socket is shut down first, so the goodbye fails at once instead.
    curl_socket_t socket = CURL_SOCKET_BAD;
    if (curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, &socket) == CURLE_OK &&
        socket != CURL_SOCKET_BAD) {
      ::shutdown(socket, SHUT_RDWR);
    }
    curl_easy_cleanup(h);
  }
}

CURL* CurlPool::acquire() const {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !idle_.empty() || open_ < options_.max_handles; });
  if (!idle_.empty()) {
    CURL* h = idle_.back();
    idle_.pop_back();
    return h;
  }
  CURL* h = curl_easy_init();
  if (h == nullptr) throw std::bad_alloc();
  ++open_;
  return h;
}

void CurlPool::release(CURL* h) const {
  {
    std::lock_guard lock(mu_);
    idle_.push_back(h);
  }
  cv_.notify_one();
}

void CurlPool::after_fork() {
  if (::getpid() == owner_) return;  // no fork
  owner_ = ::getpid();
  // The handles' sockets are the parent's too: a goodbye from here (FTP's QUIT, TLS's
  // close_notify) would speak on the parent's connections. Each socket is first pointed at
  // /dev/null in this process only, so the cleanup frees the handle and says nothing.
  std::lock_guard lock(mu_);
  int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  for (CURL* h : idle_) {
    curl_socket_t socket = CURL_SOCKET_BAD;
    if (devnull >= 0 && curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, &socket) == CURLE_OK &&
        socket != CURL_SOCKET_BAD) {
      ::dup2(devnull, socket);
    }
    curl_easy_cleanup(h);
  }
  if (devnull >= 0) ::close(devnull);
  idle_.clear();
  open_ = 0;
}

void CurlPool::prepare(CURL* h) const {
  // Resetting keeps the handle's connections, DNS and TLS session caches.
  curl_easy_reset(h);
  const long timeout = static_cast<long>(options_.timeout.count());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, timeout);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, timeout);
  curl_easy_setopt(h, CURLOPT_SERVER_RESPONSE_TIMEOUT, timeout);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L << 10);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https,ftp,ftps");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  if (!options_.tls.cacert_file.empty()) {
    curl_easy_setopt(h, CURLOPT_CAINFO, options_.tls.cacert_file.c_str());
  }
  if (!options_.tls.cacert_path.empty()) {
    curl_easy_setopt(h, CURLOPT_CAPATH, options_.tls.cacert_path.c_str());
  }
  if (!options_.tls.verify) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
}

void CurlPool::pause_before(int attempt) const {
  std::this_thread::sleep_for(retry_pause(attempt));
}

void log_retry(std::string_view what, const Error& e, int attempt, int tries) {
  if (attempt < tries) {
    log_warning("{}: {} (try {} of {}; trying again)", what, e.message, attempt, tries);
  } else {
    log_warning("{}: {} (try {} of {}; giving up)", what, e.message, attempt, tries);
  }
}

Status perform(CURL* h, std::string* received, std::optional<std::string_view> upload,
               std::string_view where, CURLcode* result) {
  char message[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, message);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, append_received);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, received);
  UploadCursor cursor;
  if (upload) {
    cursor.data = *upload;
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, read_upload);
    curl_easy_setopt(h, CURLOPT_READDATA, &cursor);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_upload);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, &cursor);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(upload->size()));
  }
  CURLcode code = curl_easy_perform(h);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
  if (result != nullptr) *result = code;
  if (code == CURLE_OK) return {};
  std::string detail = message[0] != '\0' ? message : curl_easy_strerror(code);
  ErrorKind kind = kind_of(code);
  if (code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE ||
      code == CURLE_SSL_ISSUER_ERROR) {
    return error(kind,
                 "{}: the server's TLS certificate did not verify ({}); give its CA with "
                 "--ssl-cacert-file or --ssl-cacert-path, or skip the check with "
                 "--ssl-no-check-certificate",
                 where, detail);
  }
  if (code == CURLE_LOGIN_DENIED) {
    return error(kind, "{}: login refused ({}); check the user name and password", where, detail);
  }
  return error(kind, "{}: {}", where, detail);
}

long response_code(CURL* h) {
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  return code;
}

}  // namespace dupfs

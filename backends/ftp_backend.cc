#include "backends/ftp_backend.h"

#include <algorithm>
#include <random>
#include <thread>

#include "backends/base/log.h"
#include "backends/url.h"

namespace dupfs {
namespace {

// Windows kept by read_range() at most.

// Names go into FTP commands as they are: nothing that ends a command line or names another
// directory.
Status check_name(const std::string& name, const std::string& where) {
  bool bad = name.empty() || name == "." || name == ".." ||
             name.find_first_of(std::string_view("/\r\n\0", 4)) != std::string::npos;
  if (bad) return error(ErrorKind::kInvalidArgument, "{}: bad object name '{}'", where, name);
  return {};
}

std::string strip_lftp(const std::string& scheme) {
  return scheme.starts_with("lftp+") ? scheme.substr(5) : scheme;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Locations

bool is_ftp_scheme(const std::string& scheme) {
  std::string base = strip_lftp(scheme);
  return base == "ftp" || base == "ftps" || base == "ftpes";
}

std::string FtpLocation::describe() const {
  std::string out = scheme + "://";
  if (user) out += *user + "@";
  out += host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != 0) out += ":" + std::to_string(port);
  return out + url_path;
}

std::string FtpLocation::curl_url(std::string_view name) const {
  std::string out = security == Security::kImplicitTls ? "ftps://" : "ftp://";
  out += host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != 0) out += ":" + std::to_string(port);
  out += "/";
  std::string_view dir = directory;
  if (dir.starts_with('/')) {
    // libcurl: a first path component that decodes to "/" is CWD / (an absolute path).
    out += "%2F";
    dir.remove_prefix(1);
  }
  while (!dir.empty()) {
    size_t slash = dir.find('/');
    std::string_view part = dir.substr(0, slash);
    if (!part.empty()) out += percent_encode(part, false) + "/";
    if (slash == std::string_view::npos) break;
    dir.remove_prefix(slash + 1);
  }
  return out + percent_encode(name, false);
}

Result<FtpLocation> parse_ftp_url(const std::string& url) {
  auto u = parse_url(url);
  if (!u) return std::unexpected(u.error());
  if (!is_ftp_scheme(u->scheme)) {
    return error(ErrorKind::kInvalidArgument, "not an FTP URL: '{}'", u->describe());
  }
  if (u->host.empty()) {
    return error(ErrorKind::kInvalidArgument, "no host in FTP URL '{}'", u->describe());
  }
  if (u->path.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
    return error(ErrorKind::kInvalidArgument, "control characters in the path of URL '{}'",
                 u->describe());
  }
  FtpLocation loc;
  loc.scheme = u->scheme;
  std::string base = strip_lftp(u->scheme);
  loc.security = base == "ftps"    ? FtpLocation::Security::kImplicitTls
                 : base == "ftpes" ? FtpLocation::Security::kExplicitTls
                                   : FtpLocation::Security::kPlain;
  loc.user = u->user;
  loc.password = u->password;
  loc.host = u->host;
  loc.port = u->port;
  loc.url_path = u->path;
  // lftpbackend.py: remote_path = re.sub('^/', '', path), "/" when that leaves nothing, and a
  // trailing '/' added.
  std::string dir = u->path;
  if (dir.starts_with('/')) dir.erase(0, 1);
  if (dir.empty()) dir = "/";
  if (!dir.ends_with('/')) dir += '/';
  loc.directory = std::move(dir);
  return loc;
}

std::vector<std::string> parse_name_list(std::string_view body) {
  std::vector<std::string> names;
  while (!body.empty()) {
    size_t end = body.find('\n');
    std::string_view line = body.substr(0, end);
    body = end == std::string_view::npos ? std::string_view() : body.substr(end + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (size_t slash = line.rfind('/'); slash != std::string_view::npos) {
      line.remove_prefix(slash + 1);
    }
    if (line.empty() || line == "." || line == "..") continue;
    names.emplace_back(line);
  }
  return names;
}

// ---------------------------------------------------------------------------------------------
// Opening

FtpBackend::FtpBackend(FtpLocation location, const BackendOptions& options,
                       std::optional<std::string> password)
    : location_(std::move(location)),
      password_(std::move(password)),
      active_(options.ftp_active),
      pool_(CurlPoolOptions{.num_retries = options.num_retries,
                            .timeout = options.timeout,
                            .max_handles = options.max_connections,
                            .tls = options.tls,
                            .describe = location_.describe()}) {}

Result<std::unique_ptr<FtpBackend>> FtpBackend::open(FtpLocation location,
                                                     const BackendOptions& options) {
  // duplicity's get_password(): the URL's, FTP_PASSWORD, then a question; anonymous logins
  // (no user) need none.
  if (options.ftp_active && location.security != FtpLocation::Security::kPlain) {
    // libcurl before 8.0 cannot set up TLS on a data connection the server opened (curl issue
    // 10622: "sa_addr inet_ntop() failed" on every transfer).
    const curl_version_info_data* curl = curl_version_info(CURLVERSION_NOW);
    if (curl->version_num < 0x080000) {
      return error(ErrorKind::kUnsupported,
                   "{}: --ftp-regular (active mode) with TLS needs libcurl 8.0 or later (this "
                   "is libcurl {}); leave it out for passive mode",
                   location.describe(), curl->version);
    }
  }
  std::optional<std::string> password = location.password;
  if (location.user) {
    if (!password) password = options.password;
    if (!password && options.ask_password) {
      password = options.ask_password(
          fmt::format("Password for '{}@{}': ", *location.user, location.host));
      if (!password) log_warning("no terminal to ask for the FTP password on");
    }
  }
  return std::unique_ptr<FtpBackend>(
      new FtpBackend(std::move(location), options, std::move(password)));
}

// ---------------------------------------------------------------------------------------------
// Requests

void FtpBackend::setup(CURL* h, const std::string& url) const {
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  if (location_.user) {
    curl_easy_setopt(h, CURLOPT_USERNAME, location_.user->c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, password_ ? password_->c_str() : "");
  }
  if (location_.security != FtpLocation::Security::kPlain) {
    // ftpes://: AUTH TLS before the login, required; both: PROT P for data connections.
    curl_easy_setopt(h, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
    curl_easy_setopt(h, CURLOPT_FTPSSLAUTH, static_cast<long>(CURLFTPAUTH_TLS));
    // libcurl before 8.10 loses the end of uploads over TLS 1.3 data connections: it closes
    // them with the server's session ticket unread, the kernel answers with a reset, and the
    // server drops what it had not read yet (curl issues 6149 and 13556; seen here with
    // pyftpdlib: 112 KiB of a 1 MB volume arrived). TLS 1.2 sends tickets inside the handshake.
    if (curl_version_info(CURLVERSION_NOW)->version_num < 0x080a00) {
      curl_easy_setopt(h, CURLOPT_SSLVERSION,
                       static_cast<long>(CURL_SSLVERSION_TLSv1_2) |
                           static_cast<long>(CURL_SSLVERSION_MAX_TLSv1_2));
    }
  }
  if (active_) {
    curl_easy_setopt(h, CURLOPT_FTPPORT, "-");
    curl_easy_setopt(h, CURLOPT_ACCEPTTIMEOUT_MS,
                     static_cast<long>(pool_.options().timeout.count()) * 1000L);
  }
}

Error FtpBackend::failure(const Error& e, CURLcode code, long reply, std::string_view name) const {
  std::string where = describe();
  if (!name.empty()) where += "/" + std::string(name);
  switch (code) {
    case CURLE_LOGIN_DENIED: {
      std::string user = location_.user.value_or("anonymous");
      std::string hint;
      if (location_.user && !password_) {
        hint = " (no password was given: put it in the URL or in FTP_PASSWORD)";
      } else if (reply != 530 && location_.security == FtpLocation::Security::kPlain) {
        hint = " (if the server wants TLS, use ftpes:// or ftps://)";
      }
      return Error{ErrorKind::kAuth,
                   fmt::format("{}: the FTP server refused the login as '{}' (reply {}); check "
                               "the user name and the password{}",
                               describe(), user, reply, hint)};
    }
    case CURLE_REMOTE_ACCESS_DENIED:
      return Error{ErrorKind::kNotFound,
                   fmt::format("{}: no such directory '{}' on the FTP server (it refused to "
                               "enter it: reply {})",
                               describe(), location_.directory, reply)};
    case CURLE_REMOTE_FILE_NOT_FOUND:
      return Error{ErrorKind::kNotFound, fmt::format("{}: no such file", where)};
    case CURLE_USE_SSL_FAILED:
      return Error{ErrorKind::kUnsupported,
                   fmt::format("{}: the FTP server does not offer TLS (AUTH TLS refused: reply "
                               "{}); ftp:// is plain FTP",
                               describe(), reply)};
    case CURLE_FTP_PORT_FAILED:
    case CURLE_FTP_ACCEPT_FAILED:
    case CURLE_FTP_ACCEPT_TIMEOUT:
      return Error{ErrorKind::kIoError,
                   fmt::format("{} (active mode, --ftp-regular: the server could not connect "
                               "back; passive mode is the default)",
                               e.message)};
    case CURLE_FTP_WEIRD_PASV_REPLY:
    case CURLE_FTP_WEIRD_227_FORMAT:
    case CURLE_FTP_CANT_GET_HOST:
      return Error{ErrorKind::kIoError,
                   fmt::format("{} (passive mode; --ftp-regular asks for active mode)", e.message)};
    case CURLE_FTP_COULDNT_USE_REST:
      return Error{ErrorKind::kUnsupported,
                   fmt::format("{}: the FTP server cannot start a transfer in the middle of a file "
                               "(REST refused: reply {})",
                               where, reply)};
    case CURLE_QUOTE_ERROR:
      if (reply == 550) {
        return Error{ErrorKind::kNotFound, fmt::format("{}: no such file (reply 550)", where)};
      }
      return Error{ErrorKind::kIoError, fmt::format("{} (reply {})", e.message, reply)};
    default:
      return e;
  }
}

Status FtpBackend::perform_ftp(CURL* h, std::string* received,
                               std::optional<std::string_view> upload, std::string_view name,
                               CURLcode* code) const {
  std::string where = describe();
  if (!name.empty()) where += "/" + std::string(name);
  CURLcode result = CURLE_OK;
  auto st = perform(h, received, upload, where, &result);
  if (code != nullptr) *code = result;
  if (st) return {};
  return std::unexpected(failure(st.error(), result, response_code(h), name));
}

void FtpBackend::delete_quietly(const std::string& name) const {
  (void)pool_.run<bool>("DELE " + name, [&](CURL* h) -> Result<bool> {
    setup(h, location_.curl_url());
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    CurlList post;
    post.add("DELE " + name);
    curl_easy_setopt(h, CURLOPT_POSTQUOTE, post.get());
    if (auto st = perform_ftp(h, nullptr, std::nullopt, name); !st) {
      log_warning("{}: could not delete the temporary file: {}", describe(), st.error().message);
    }
    return true;  // one try, whatever happened
  });
}

void FtpBackend::forget(const std::string& name) const { windows_.forget(name); }

// ---------------------------------------------------------------------------------------------
// Backend

Result<std::vector<std::string>> FtpBackend::list() const {
  return pool_.run<std::vector<std::string>>(
      "NLST " + describe(), [&](CURL* h) -> Result<std::vector<std::string>> {
        setup(h, location_.curl_url());
        curl_easy_setopt(h, CURLOPT_DIRLISTONLY, 1L);
        std::string body;
        CURLcode code = CURLE_OK;
        if (auto st = perform_ftp(h, &body, std::nullopt, "", &code); !st) {
          // The directory could be entered (CWD worked): an NLST refused there is an empty
          // directory's "No files found" (libcurl itself takes 450 so).
          long reply = response_code(h);
          if (code == CURLE_FTP_COULDNT_RETR_FILE && (reply == 450 || reply == 550)) {
            return std::vector<std::string>{};
          }
          return std::unexpected(std::move(st.error()));
        }
        return parse_name_list(body);
      });
}

Result<uint64_t> FtpBackend::size(const std::string& name) const {
  if (auto st = check_name(name, describe()); !st) return std::unexpected(st.error());
  return pool_.run<uint64_t>("SIZE " + name, [&](CURL* h) -> Result<uint64_t> {
    setup(h, location_.curl_url(name));
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(h, CURLOPT_FILETIME, 0L);
    if (auto st = perform_ftp(h, nullptr, std::nullopt, name); !st) {
      return std::unexpected(std::move(st.error()));
    }
    curl_off_t length = -1;
    curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    if (length < 0) {
      return error(ErrorKind::kUnsupported, "{}/{}: the FTP server does not answer SIZE",
                   describe(), name);
    }
    return static_cast<uint64_t>(length);
  });
}

Result<std::string> FtpBackend::fetch_range(const std::string& name, uint64_t offset,
                                            size_t length) const {
  return pool_.run<std::string>("RETR " + name, [&](CURL* h) -> Result<std::string> {
    setup(h, location_.curl_url(name));
    std::string range = fmt::format("{}-{}", offset, offset + length - 1);
    curl_easy_setopt(h, CURLOPT_RANGE, range.c_str());
    std::string out;
    out.reserve(std::min(length, kReadWindow));
    CURLcode code = CURLE_OK;
    if (auto st = perform_ftp(h, &out, std::nullopt, name, &code); !st) {
      if (code == CURLE_BAD_DOWNLOAD_RESUME) return std::string();  // past the end
      return std::unexpected(std::move(st.error()));
    }
    // libcurl does not check a ranged transfer's length; it knows what to expect from SIZE.
    curl_off_t expected = -1;
    curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &expected);
    if (expected >= 0 && out.size() < static_cast<uint64_t>(expected) && out.size() < length) {
      return error(ErrorKind::kIoError, "{}/{}: the transfer ended after {} of {} bytes",
                   describe(), name, out.size(), expected);
    }
    if (out.size() > length) out.resize(length);
    return out;
  });
}

Result<std::string> FtpBackend::read_range(const std::string& name, uint64_t offset,
                                           size_t length) const {
  if (auto st = check_name(name, describe()); !st) return std::unexpected(st.error());
  if (length == 0) {
    auto total = size(name);
    if (!total) return std::unexpected(total.error());
    return std::string();
  }
  return windows_.read(name, offset, length,
                       [&](uint64_t from, size_t want) { return fetch_range(name, from, want); });
}

Result<std::string> FtpBackend::read(const std::string& name) const {
  if (auto st = check_name(name, describe()); !st) return std::unexpected(st.error());
  // One RETR of the whole file: libcurl checks it got as many bytes as SIZE said.
  return pool_.run<std::string>("RETR " + name, [&](CURL* h) -> Result<std::string> {
    setup(h, location_.curl_url(name));
    std::string out;
    if (auto st = perform_ftp(h, &out, std::nullopt, name); !st) {
      return std::unexpected(std::move(st.error()));
    }
    return out;
  });
}

Status FtpBackend::store(const std::string& tmp, std::string_view data) const {
  auto stored = pool_.run<bool>("STOR " + tmp, [&](CURL* h) -> Result<bool> {
    setup(h, location_.curl_url(tmp));
    curl_easy_setopt(h, CURLOPT_FTP_CREATE_MISSING_DIRS,
                     static_cast<long>(CURLFTP_CREATE_DIR_RETRY));
    CURLcode code = CURLE_OK;
    if (auto st = perform_ftp(h, nullptr, data, tmp, &code); !st) {
      if (code == CURLE_REMOTE_ACCESS_DENIED) {
        return error(ErrorKind::kAuth,
                     "{}: the FTP server refused to create or enter the directory '{}' (reply "
                     "{})",
                     describe(), location_.directory, response_code(h));
      }
      return std::unexpected(std::move(st.error()));
    }
    return true;
  });
  if (!stored) return std::unexpected(std::move(stored.error()));
  return {};
}

Status FtpBackend::write(const std::string& name, std::string_view data) {
  if (auto st = check_name(name, describe()); !st) return st;
  forget(name);
  auto existing = size(name);
  if (existing) return error(ErrorKind::kExists, "{}/{} already exists", describe(), name);
  if (existing.error().kind != ErrorKind::kNotFound) return std::unexpected(existing.error());

  std::mt19937_64 random(std::random_device{}());
  const std::string tmp = fmt::format(".{}.dupfs-tmp.{:016x}", name, random());
  // 1. The bytes, under the temporary name (STOR replaces what an earlier try left there);
  // 2. all of them arrived (else sent again, as a failed try).
  const int tries = std::max(1, pool_.options().num_retries);
  for (int attempt = 1;; ++attempt) {
    auto stored = store(tmp, data);
    if (!stored) {
      delete_quietly(tmp);
      return stored;
    }
    auto held = size(tmp);
    if (held && *held == data.size()) break;
    if (!held) {
      delete_quietly(tmp);
      return std::unexpected(std::move(held.error()));
    }
    Error cut{ErrorKind::kIoError,
              fmt::format("{}/{}: the FTP server holds {} bytes of the {} sent: the upload was "
                          "cut short",
                          describe(), name, *held, data.size())};
    log_retry("STOR " + tmp, cut, attempt, tries);
    if (attempt == tries) {
      delete_quietly(tmp);
      return std::unexpected(std::move(cut));
    }
    std::this_thread::sleep_for(retry_pause(attempt + 1));
  }
  // 3. Into place.
  auto renamed = pool_.run<bool>("RNFR/RNTO " + name, [&](CURL* h) -> Result<bool> {
    setup(h, location_.curl_url());
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    CurlList post;
    post.add("RNFR " + tmp);
    post.add("RNTO " + name);
    curl_easy_setopt(h, CURLOPT_POSTQUOTE, post.get());
    if (auto st = perform_ftp(h, nullptr, std::nullopt, name); !st) {
      return std::unexpected(std::move(st.error()));
    }
    return true;
  });
  if (renamed) return {};
  // A try whose answer was lost may have renamed it all the same.
  auto tmp_left = size(tmp);
  auto now = size(name);
  if (!tmp_left && tmp_left.error().kind == ErrorKind::kNotFound && now && *now == data.size()) {
    return {};
  }
  if (tmp_left) delete_quietly(tmp);
  if (tmp_left && now) return error(ErrorKind::kExists, "{}/{} already exists", describe(), name);
  return std::unexpected(std::move(renamed.error()));
}

Status FtpBackend::remove(const std::string& name) {
  if (auto st = check_name(name, describe()); !st) return st;
  forget(name);
  bool answer_lost = false;  // a try failed on the connection: its DELE may have been done
  auto done = pool_.run<bool>("DELE " + name, [&](CURL* h) -> Result<bool> {
    setup(h, location_.curl_url());
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    CurlList post;
    post.add("DELE " + name);
    curl_easy_setopt(h, CURLOPT_POSTQUOTE, post.get());
    CURLcode code = CURLE_OK;
    if (auto st = perform_ftp(h, nullptr, std::nullopt, name, &code); !st) {
      if (code == CURLE_QUOTE_ERROR && answer_lost && st.error().kind == ErrorKind::kNotFound) {
        return true;
      }
      if (!is_permanent(st.error().kind)) answer_lost = true;
      return std::unexpected(std::move(st.error()));
    }
    return true;
  });
  if (!done) return std::unexpected(std::move(done.error()));
  return {};
}

}  // namespace dupfs

#include "backends/webdav_backend.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <random>

#include "backends/base/log.h"
#include "backends/url.h"
#include "backends/xml.h"

namespace dupfs {
namespace {

// PROPFIND goes without a body, which RFC 4918 reads as allprop (resourcetype and
// getcontentlength are among them): libcurl's low-speed limit, which bounds the wait for a silent
// server, takes about three times --timeout to give up on a request that sends a body, and the
// listing is the first request of every command.
bool success(long status) { return status >= 200 && status < 300; }

// duplicity's sanitize_path(): runs of '/' folded, a '/' at the end; "/" for no path.
std::string fold_directory(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out += c;
  }
  if (out.empty() || out.front() != '/') out.insert(out.begin(), '/');
  if (out.back() != '/') out += '/';
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// The path of an href: a path as it is, an absolute URL's path ("/" when it has none); the
// query and fragment dropped. Still percent-encoded.
std::string href_path(std::string href) {
  std::string lower = ascii_lowercase(href.substr(0, 8));
  if (lower.starts_with("http://") || lower.starts_with("https://")) {
    size_t start = href.find("://") + 3;
    size_t slash = href.find('/', start);
    href = slash == std::string::npos ? "/" : href.substr(slash);
  }
  if (size_t q = href.find_first_of("?#"); q != std::string::npos) href.resize(q);
  return href;
}

// The properties a response gives with status 200 (a propstat without a status counts too).
std::vector<const XmlElement*> good_props(const XmlElement& response) {
  std::vector<const XmlElement*> props;
  for (const auto& ps : response.children) {
    if (ps.name != "propstat") continue;
    std::string status = ps.child_text("status");
    if (!status.empty() && status.find(" 200") == std::string::npos) continue;
    if (const XmlElement* prop = ps.child("prop"); prop != nullptr) props.push_back(prop);
  }
  return props;
}

// A response's own status ("HTTP/1.1 404 Not Found"), when it has one instead of propstats.
bool response_ok(const XmlElement& response) {
  std::string status = trim(response.child_text("status"));
  if (status.empty()) return true;
  size_t space = status.find(' ');
  return space != std::string::npos && status.compare(space + 1, 1, "2") == 0;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Locations

bool is_webdav_scheme(const std::string& scheme) {
  // duplicity 0.8 registers its WebDAV backend for all four.
  return scheme == "webdav" || scheme == "webdavs" || scheme == "http" || scheme == "https";
}

std::string WebDavLocation::origin() const {
  return std::string(tls ? "https://" : "http://") + host_port;
}

std::string WebDavLocation::describe() const {
  std::string out = scheme + "://";
  if (user) out += *user + "@";
  out += host_port;
  out += directory.size() > 1 ? directory.substr(0, directory.size() - 1) : directory;
  return out;
}

Result<WebDavLocation> parse_webdav_url(const std::string& url) {
  auto u = parse_url(url);
  if (!u) return std::unexpected(u.error());
  if (!is_webdav_scheme(u->scheme)) {
    return error(ErrorKind::kInvalidArgument, "not a WebDAV URL: '{}'", u->describe());
  }
  if (u->host.empty()) {
    return error(ErrorKind::kInvalidArgument,
                 "no host in WebDAV URL '{}' (webdav[s]://[USER@]HOST[:PORT]/PATH)", u->describe());
  }
  WebDavLocation loc;
  loc.scheme = u->scheme;
  loc.tls = u->scheme == "webdavs" || u->scheme == "https";
  loc.user = u->user;
  loc.password = u->password;
  loc.host = u->host;
  loc.host_port = u->host_port();
  loc.directory = fold_directory(u->path);
  return loc;
}

Result<std::vector<WebDavEntry>> parse_multistatus(std::string_view xml,
                                                   const std::string& directory,
                                                   std::string_view where) {
  auto root = parse_xml(xml, where);
  if (!root) return std::unexpected(root.error());
  if (root->name != "multistatus") {
    return error(ErrorKind::kCorruption,
                 "{}: the server's answer is not a WebDAV multistatus: '{}'", where,
                 xml.substr(0, 200));
  }
  std::string self = fold_directory(directory);
  self.pop_back();  // compared without the trailing '/'
  std::vector<WebDavEntry> entries;
  for (const auto& response : root->children) {
    if (response.name != "response" || !response_ok(response)) continue;
    std::string path = href_path(trim(response.child_text("href")));
    if (path.empty()) continue;
    bool collection = path.back() == '/';
    while (!path.empty() && path.back() == '/') path.pop_back();
    std::string decoded = fold_directory(percent_decode(path));
    decoded.pop_back();
    if (decoded == self || path.empty()) continue;
    std::optional<uint64_t> size;
    for (const XmlElement* prop : good_props(response)) {
      if (const XmlElement* type = prop->child("resourcetype");
          type != nullptr && type->child("collection") != nullptr) {
        collection = true;
      }
      if (const XmlElement* length = prop->child("getcontentlength"); length != nullptr) {
        std::string text = trim(length->text);
        char* end = nullptr;
        uint64_t n = std::strtoull(text.c_str(), &end, 10);
        if (!text.empty() && end != nullptr && *end == '\0') size = n;
      }
    }
    if (collection) continue;
    // The last segment, decoded on its own (an encoded '/' stays in the name).
    std::string name = percent_decode(path.substr(path.rfind('/') + 1));
    if (name.empty()) continue;
    entries.push_back(WebDavEntry{std::move(name), size});
  }
  return entries;
}

// ---------------------------------------------------------------------------------------------
// Opening

WebDavBackend::WebDavBackend(WebDavLocation location, const BackendOptions& options,
                             std::optional<std::string> password)
    : location_(std::move(location)),
      password_(std::move(password)),
      pool_(CurlPoolOptions{.num_retries = options.num_retries,
                            .timeout = options.timeout,
                            .max_handles = options.max_connections,
                            .tls = options.tls,
                            .describe = location_.describe()}),
      auth_methods_(static_cast<long>(CURLAUTH_BASIC | CURLAUTH_DIGEST)) {}

Result<std::unique_ptr<WebDavBackend>> WebDavBackend::open(WebDavLocation location,
                                                           const BackendOptions& given) {
  BackendOptions options = given;
  if (location.tls && options.tls.verify) {
    // duplicity's VerifiedHTTPSConnection: without --ssl-cacert-file, the first of these that
    // exists is the CA file (and then the only one trusted, as with --ssl-cacert-file).
    if (options.tls.cacert_file.empty()) {
      const char* home = std::getenv("HOME");
      std::vector<std::string> candidates;
      if (home != nullptr && *home != '\0') {
        candidates.push_back(std::string(home) + "/.duplicity/cacert.pem");
        candidates.push_back(std::string(home) + "/duplicity_cacert.pem");
      }
      candidates.push_back("/etc/duplicity/cacert.pem");
      for (const auto& c : candidates) {
        struct stat st {};
        if (::stat(c.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
          log_info("{}: trusting the CA certificates in {}", location.describe(), c);
          options.tls.cacert_file = c;
          break;
        }
      }
    }
    if (!options.tls.cacert_file.empty() && ::access(options.tls.cacert_file.c_str(), R_OK) != 0) {
      return error(ErrorKind::kInvalidArgument, "CA certificate file '{}' is not readable",
                   options.tls.cacert_file);
    }
  }
  // duplicity's order: the URL's password, then FTP_PASSWORD, then a question. Without a user
  // name there is no login to give a password to.
  std::optional<std::string> password = location.password;
  location.password.reset();
  if (!password) password = options.password;
  if (!password && location.user && options.ask_password) {
    // duplicity's question names the host without the port.
    password =
        options.ask_password(fmt::format("Password for '{}@{}': ", *location.user, location.host));
    if (!password) log_warning("no terminal to ask for the WebDAV password on");
  }
  return std::unique_ptr<WebDavBackend>(
      new WebDavBackend(std::move(location), options, std::move(password)));
}

// ---------------------------------------------------------------------------------------------
// Requests

std::string WebDavBackend::where_of(const std::string& name) const {
  std::string d = describe();
  if (!d.ends_with('/')) d += '/';
  return d + name;
}

std::string WebDavBackend::where_of_directory(const std::string& dir) const {
  std::string out = location_.scheme + "://";
  if (location_.user) out += *location_.user + "@";
  return out + location_.host_port + dir;
}

Result<HttpResponse> WebDavBackend::send(CURL* h, const std::string& method,
                                         const std::string& path, std::vector<std::string> headers,
                                         std::optional<std::string_view> body, size_t expected_size,
                                         bool follow_redirects, std::string_view where) const {
  HttpRequest request;
  request.method = method;
  request.url = location_.origin() + percent_encode(path, true);
  request.headers = std::move(headers);
  request.body = body;
  request.expected_size = expected_size;
  request.follow_redirects = follow_redirects;
  if (location_.user) {
    request.login.emplace(*location_.user, password_.value_or(""));
    request.auth_methods = static_cast<unsigned long>(auth_methods_.load());
  }
  auto r = http_request(h, request, where);
  if (r && location_.user) {
    // The schemes the server offered in its last challenge: from now on only that one (Digest
    // when it offers both).
    long avail = 0;
    curl_easy_getinfo(h, CURLINFO_HTTPAUTH_AVAIL, &avail);
    if ((avail & CURLAUTH_DIGEST) != 0) {
      auth_methods_.store(static_cast<long>(CURLAUTH_DIGEST));
    } else if ((avail & CURLAUTH_BASIC) != 0) {
      auth_methods_.store(static_cast<long>(CURLAUTH_BASIC));
    }
  }
  return r;
}

Error WebDavBackend::http_error(const HttpResponse& response, std::string_view what,
                                std::string_view where) const {
  long status = response.status;
  ErrorKind kind = http_status_kind(status);
  auto fail = [&](std::string text) { return Error{kind, std::move(text)}; };
  if (status == 401) {
    if (!location_.user) {
      return fail(
          fmt::format("{}: the server asks for a login (HTTP 401); give the user name "
                      "in the URL ({}://USER@{}/...) and the password in FTP_PASSWORD",
                      where, location_.scheme, location_.host_port));
    }
    return fail(
        fmt::format("{}: login refused (HTTP 401); check the user name and FTP_PASSWORD", where));
  }
  if (status == 403) {
    return fail(
        fmt::format("{}: the server refused {} (HTTP 403); check the user's permissions "
                    "on the server",
                    where, what));
  }
  if (kind == ErrorKind::kNotFound) {
    return fail(fmt::format("{}: no such file or directory (HTTP {} to {})", where, status, what));
  }
  if (status == 409) {
    return fail(fmt::format("{}: the directory does not exist (HTTP 409 to {})", where, what));
  }
  if (status == 507) {
    return fail(fmt::format("{}: the server is out of space (HTTP 507 to {})", where, what));
  }
  if (status >= 300 && status < 400) {
    return fail(fmt::format("{}: the server redirects {} to {} (HTTP {}); use that URL", where,
                            what, response.header("location").value_or("?"), status));
  }
  return fail(fmt::format("{}: the server answered {} with HTTP {}", where, what, status));
}

Result<uint64_t> WebDavBackend::stat_on(CURL* h, const std::string& dir, const std::string& name,
                                        std::string_view where) const {
  auto r = send(h, "PROPFIND", dir + name, {"Depth: 0"}, std::nullopt, 0, true, where);
  if (!r) return std::unexpected(std::move(r.error()));
  // 409: some servers' answer when a parent directory is missing (so is the object).
  if (r->status == 404 || r->status == 410 || r->status == 409) {
    return error(ErrorKind::kNotFound, "{}: no such file (HTTP {})", where, r->status);
  }
  if (r->status == 207) {
    auto entries = parse_multistatus(r->body, dir, where);
    if (!entries) return std::unexpected(std::move(entries.error()));
    for (const auto& e : *entries) {
      if (e.name != name) continue;
      if (e.size) return *e.size;
      break;
    }
    if (entries->empty()) {
      return error(ErrorKind::kNotFound, "{}: not a file (a directory)", where);
    }
  } else if (!success(r->status)) {
    return std::unexpected(http_error(*r, "PROPFIND", where));
  }
  // No length in the answer: the GET headers tell it.
  auto head = send(h, "HEAD", dir + name, {}, std::nullopt, 0, true, where);
  if (!head) return std::unexpected(std::move(head.error()));
  if (!success(head->status)) return std::unexpected(http_error(*head, "HEAD", where));
  auto length = head->header("content-length");
  if (!length) return error(ErrorKind::kIoError, "{}: the server tells no size", where);
  return std::strtoull(length->c_str(), nullptr, 10);
}

Result<uint64_t> WebDavBackend::stat(const std::string& name) const {
  std::string where = where_of(name);
  return pool_.run<uint64_t>("PROPFIND " + where,
                             [&](CURL* h) { return stat_on(h, location_.directory, name, where); });
}

Status WebDavBackend::ensure_directory() const {
  if (directory_ready_.load()) return {};
  std::lock_guard lock(directory_mu_);
  if (directory_ready_.load()) return {};
  const std::string& dir = location_.directory;
  // Each of /a/, /a/b/, ... that the server does not know (404) is made, as duplicity's
  // makedir() does; any other answer (207, or 403 for a parent outside the user's reach) counts
  // as there.
  auto exists = [&](const std::string& d) -> Result<bool> {
    std::string where = where_of_directory(d);
    return pool_.run<bool>("PROPFIND " + where, [&](CURL* h) -> Result<bool> {
      auto r = send(h, "PROPFIND", d, {"Depth: 0"}, std::nullopt, 0, true, where);
      if (!r) return std::unexpected(std::move(r.error()));
      if (r->status == 401) return std::unexpected(http_error(*r, "PROPFIND", where));
      if (r->status >= 500 || r->status == 429) {
        return std::unexpected(http_error(*r, "PROPFIND", where));
      }
      return r->status != 404;
    });
  };
  auto whole = exists(dir);
  if (!whole) return std::unexpected(std::move(whole.error()));
  if (!*whole) {
    for (size_t slash = dir.find('/', 1); slash != std::string::npos;
         slash = dir.find('/', slash + 1)) {
      std::string d = dir.substr(0, slash + 1);
      auto there = exists(d);
      if (!there) return std::unexpected(std::move(there.error()));
      if (*there) continue;
      std::string where = where_of_directory(d);
      log_info("creating WebDAV directory {}", where);
      auto made = pool_.run<bool>("MKCOL " + where, [&](CURL* h) -> Result<bool> {
        auto r = send(h, "MKCOL", d, {}, std::nullopt, 0, false, where);
        if (!r) return std::unexpected(std::move(r.error()));
        // 405: it exists (made meanwhile by someone else).
        if (r->status == 201 || r->status == 405 || success(r->status)) return true;
        return std::unexpected(http_error(*r, "MKCOL (making the directory)", where));
      });
      if (!made) return std::unexpected(std::move(made.error()));
    }
  }
  directory_ready_.store(true);
  return {};
}

Status WebDavBackend::delete_quietly(const std::string& name) const {
  std::string where = where_of(name);
  auto done = pool_.run<bool>("DELETE " + where, [&](CURL* h) -> Result<bool> {
    auto r = send(h, "DELETE", path_of(name), {}, std::nullopt, 0, false, where);
    if (!r) return std::unexpected(std::move(r.error()));
    if (success(r->status) || r->status == 404) return true;
    return std::unexpected(http_error(*r, "DELETE", where));
  });
  if (!done) {
    log_warning("{}: the temporary object could not be deleted: {}", where, done.error().message);
    return std::unexpected(std::move(done.error()));
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Backend

Result<std::vector<std::string>> WebDavBackend::list() const {
  const std::string where = describe();
  auto entries = pool_.run<std::vector<WebDavEntry>>(
      "PROPFIND " + where, [&](CURL* h) -> Result<std::vector<WebDavEntry>> {
        auto r =
            send(h, "PROPFIND", location_.directory, {"Depth: 1"}, std::nullopt, 0, true, where);
        if (!r) return std::unexpected(std::move(r.error()));
        if (r->status == 404 || r->status == 410) {
          return error(ErrorKind::kNotFound, "{}: no such directory (HTTP {})", where, r->status);
        }
        if (r->status != 207) {
          if (success(r->status)) {
            return error(ErrorKind::kUnsupported,
                         "{}: the server answered PROPFIND with HTTP {}, not a WebDAV "
                         "multistatus: is this a WebDAV directory?",
                         where, r->status);
          }
          if (r->status == 405 || r->status == 501) {
            // Not a location the server serves WebDAV at (nothing to make: a wrong URL).
            return error(ErrorKind::kInvalidArgument,
                         "{}: the server does not serve WebDAV here (HTTP {} to PROPFIND); check "
                         "the URL's path",
                         where, r->status);
          }
          return std::unexpected(http_error(*r, "PROPFIND", where));
        }
        // After a redirect, the hrefs are the new directory's.
        std::string dir = location_.directory;
        char* effective = nullptr;
        if (curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &effective) == CURLE_OK &&
            effective != nullptr) {
          if (auto u = parse_url(effective); u) dir = fold_directory(u->path);
        }
        return parse_multistatus(r->body, dir, where);
      });
  if (!entries) {
    if (entries.error().kind == ErrorKind::kNotFound) directory_ready_.store(false);
    return std::unexpected(std::move(entries.error()));
  }
  directory_ready_.store(true);
  std::vector<std::string> names;
  std::map<std::string, uint64_t> sizes;
  names.reserve(entries->size());
  for (auto& e : *entries) {
    if (e.size) sizes[e.name] = *e.size;
    names.push_back(std::move(e.name));
  }
  {
    std::lock_guard lock(sizes_mu_);
    sizes_ = std::move(sizes);
  }
  return names;
}

Result<uint64_t> WebDavBackend::size(const std::string& name) const {
  {
    std::lock_guard lock(sizes_mu_);
    if (auto it = sizes_.find(name); it != sizes_.end()) return it->second;
  }
  return stat(name);
}

Result<std::string> WebDavBackend::read_range(const std::string& name, uint64_t offset,
                                              size_t length) const {
  if (length == 0) return std::string();
  return windows_.read(name, offset, length,
                       [&](uint64_t from, size_t want) { return fetch_range(name, from, want); });
}

Result<std::string> WebDavBackend::fetch_range(const std::string& name, uint64_t offset,
                                               size_t length) const {
  std::string where = where_of(name);
  std::string range = fmt::format("Range: bytes={}-{}", offset, offset + length - 1);
  return pool_.run<std::string>("GET " + where, [&](CURL* h) -> Result<std::string> {
    auto r = send(h, "GET", path_of(name), {range}, std::nullopt, length, true, where);
    if (!r) return std::unexpected(std::move(r.error()));
    if (r->status == 206) {
      if (r->body.size() > length) r->body.resize(length);
      return std::move(r->body);
    }
    if (r->status == 416) return std::string();  // at or past the end
    if (r->status == 200) {
      // The whole object: the server ignored the range.
      if (offset >= r->body.size()) return std::string();
      return r->body.substr(offset, length);
    }
    return std::unexpected(http_error(*r, "GET", where));
  });
}

Status WebDavBackend::write(const std::string& name, std::string_view data) {
  const std::string where = where_of(name);
  auto existing = stat(name);
  if (existing) return error(ErrorKind::kExists, "{} already exists", where);
  if (existing.error().kind != ErrorKind::kNotFound) return std::unexpected(existing.error());
  {
    std::lock_guard lock(sizes_mu_);
    sizes_.erase(name);
  }
  windows_.forget(name);
  if (auto made = ensure_directory(); !made) return made;

  std::mt19937_64 random(std::random_device{}());
  const std::string tmp = fmt::format(".{}.dupfs-tmp.{:016x}", name, random());
  const std::string tmp_where = where_of(tmp);
  const uint64_t sent = data.size();

  // PUT, then the size the server holds: a short or long object is sent again.
  bool directory_gone = false;  // the last try's PUT found no directory (409)
  auto put_once = [&] {
    return pool_.run<bool>("PUT " + tmp_where, [&](CURL* h) -> Result<bool> {
      directory_gone = false;
      auto r = send(h, "PUT", path_of(tmp), {"Content-Type: application/octet-stream"}, data, 0,
                    false, tmp_where);
      if (!r) return std::unexpected(std::move(r.error()));
      if (!success(r->status)) {
        directory_gone = r->status == 409;
        return std::unexpected(http_error(*r, "PUT", tmp_where));
      }
      auto held = stat_on(h, location_.directory, tmp, tmp_where);
      if (!held) return std::unexpected(std::move(held.error()));
      if (*held != sent) {
        return error(ErrorKind::kIoError,
                     "{}: the server holds {} bytes after {} were sent: damaged on the way",
                     tmp_where, *held, sent);
      }
      return true;
    });
  };
  auto put = put_once();
  if (!put && directory_gone) {
    // The directory went away since it was made (no handle is held here: making it takes one).
    directory_ready_.store(false);
    if (auto made = ensure_directory(); !made) return made;
    put = put_once();
  }
  if (!put) {
    (void)delete_quietly(tmp);
    return std::unexpected(std::move(put.error()));
  }

  // MOVE to the final name, never over an existing object.
  const std::string destination =
      "Destination: " + location_.origin() + percent_encode(path_of(name), true);
  auto moved = pool_.run<bool>("MOVE " + tmp_where, [&](CURL* h) -> Result<bool> {
    auto r = send(h, "MOVE", path_of(tmp), {destination, "Overwrite: F"}, std::nullopt, 0, false,
                  tmp_where);
    if (!r) return std::unexpected(std::move(r.error()));
    if (success(r->status)) return true;
    if (r->status == 412) return error(ErrorKind::kExists, "{} already exists", where);
    if (r->status == 404) {
      // A MOVE before moved it and its answer was lost (a try before, or libcurl's own second
      // go on a fresh connection when a kept-alive one died): the temporary name is ours alone.
      auto held = stat_on(h, location_.directory, name, where);
      if (held && *held == sent) return true;
      if (!held && !is_permanent(held.error().kind)) return std::unexpected(held.error());
    }
    return std::unexpected(http_error(*r, "MOVE to " + where, tmp_where));
  });
  if (!moved) {
    (void)delete_quietly(tmp);
    return std::unexpected(std::move(moved.error()));
  }

  // The object under its final name (a server may copy rather than rename).
  auto held = stat(name);
  if (!held) return std::unexpected(std::move(held.error()));
  if (*held != sent) {
    (void)delete_quietly(name);
    return error(ErrorKind::kIoError,
                 "{}: the server holds {} bytes after {} were sent and moved: damaged (deleted)",
                 where, *held, sent);
  }
  return {};
}

Status WebDavBackend::remove(const std::string& name) {
  // Whether it is there first: a DELETE whose answer was lost may be sent again (by run(), or by
  // libcurl on a fresh connection), and then finds nothing to delete.
  auto existing = stat(name);
  if (!existing) return std::unexpected(existing.error());
  {
    std::lock_guard lock(sizes_mu_);
    sizes_.erase(name);
  }
  windows_.forget(name);
  std::string where = where_of(name);
  auto done = pool_.run<bool>("DELETE " + where, [&](CURL* h) -> Result<bool> {
    auto r = send(h, "DELETE", path_of(name), {}, std::nullopt, 0, false, where);
    if (!r) return std::unexpected(std::move(r.error()));
    if (success(r->status) || r->status == 404 || r->status == 410) return true;
    return std::unexpected(http_error(*r, "DELETE", where));
  });
  if (!done) return std::unexpected(std::move(done.error()));
  return {};
}

}  // namespace dupfs

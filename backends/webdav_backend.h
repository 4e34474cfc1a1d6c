// WebDAV servers (Apache mod_dav, nginx dav, Nextcloud, ...): duplicity's webdav://, webdavs://,
// http:// and https:// locations, through libcurl (curl_pool.h, http.h).
//
// Addressing: webdav[s]://[USER[:PASS]@]HOST[:PORT]/PATH; webdav and http speak HTTP, webdavs and
// https HTTPS (TLS checked as BackendOptions::tls says; without --ssl-cacert-file, duplicity's
// ~/.duplicity/cacert.pem, ~/duplicity_cacert.pem or /etc/duplicity/cacert.pem when one exists).
// The directory is the URL's path with runs of '/' folded and a '/' added at the end, as
// duplicity's sanitize_path() does; an object is the directory's URL plus its percent-encoded
// name. The password is the URL's, else FTP_PASSWORD (BackendOptions::password), else asked once
// when the storage is opened (BackendOptions::ask_password), as duplicity asks; libcurl answers
// the server's Basic or Digest challenge (after the first answer, only the scheme the server
// offered is used, so Basic costs one round trip and Digest probes without the body).
//
// Requests: list() is PROPFIND Depth 1 on the directory (redirects followed; the hrefs are read
// against the directory actually answered); an object is a response whose href is not the
// directory itself and not a collection, its name the last segment of the href (a path or an
// absolute URL), percent-decoded. Its getcontentlength answers size() until the object changes;
// else size() is PROPFIND Depth 0 (HEAD when the server gives no length). read_range() is a GET
// with Range (a 200 with the whole object is cut here). write() checks the name is free, creates
// the directory and its missing parents once (PROPFIND, then MKCOL where 404, as duplicity's
// makedir()), PUTs the data to ".NAME.dupfs-tmp.RANDOM" in the same directory, checks the server
// holds as many bytes as were sent (PROPFIND; else PUT again), then MOVEs it to NAME with
// "Overwrite: F", so an existing object is never replaced (412: kExists), and checks the size
// under the final name; the temporary object is deleted when anything fails. remove() is
// PROPFIND (kNotFound), then DELETE.
// (mod_dav_fs's ETags are inode-size-mtime, not digests of the content: the size is what can be
// checked on every server.)
//
// Failures: 5xx, 429, dropped connections and timeouts are tried again (curl_pool.h). A MOVE or
// DELETE whose answer was lost may be sent again (by run(), or by libcurl itself on a fresh
// connection when a kept-alive one died) and then finds its work done: a MOVE's 404 counts as
// done when the final name holds the bytes sent (the temporary name is ours alone), a DELETE's
// 404 counts as done because remove() saw the object first (PROPFIND), as S3Backend does.
// 401 is a refused login (check the user name and FTP_PASSWORD), 403 a refusal by the server.
// Messages name the URL without its password.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.h"
#include "backends/curl_pool.h"
#include "backends/http.h"
#include "backends/read_windows.h"

namespace dupfs {

struct WebDavLocation {
  std::string scheme;  // webdav, webdavs, http or https, as written (lowercased)
  bool tls = false;    // webdavs, https
  std::optional<std::string> user;
  std::optional<std::string> password;  // never shown by describe()
  std::string host;                     // lowercased, IPv6 without brackets
  std::string host_port;                // host[:port], IPv6 in brackets
  // Percent-decoded, '/'-folded, starting and ending with '/' ("/" for none).
  std::string directory;

  // http[s]://host[:port]: what request URLs start with.
  std::string origin() const;
  // scheme://[user@]host[:port]/path, without the password and the trailing '/'.
  std::string describe() const;
};

bool is_webdav_scheme(const std::string& scheme);
// kInvalidArgument for a URL without a host.
Result<WebDavLocation> parse_webdav_url(const std::string& url);

// One member of a PROPFIND answer that is an object (not a collection, not the directory).
struct WebDavEntry {
  std::string name;              // the last segment of its href, percent-decoded
  std::optional<uint64_t> size;  // getcontentlength, when the server gave it
};

// The objects in a multistatus answer to a PROPFIND on `directory` (a percent-decoded path with
// a trailing '/'). hrefs may be paths or absolute URLs; a response whose href is `directory`,
// that is a collection (resourcetype/collection, or an href ending in '/') or whose status is
// not 2xx is left out. kCorruption naming `where` when the answer is not a multistatus.
Result<std::vector<WebDavEntry>> parse_multistatus(std::string_view xml,
                                                   const std::string& directory,
                                                   std::string_view where);

class WebDavBackend : public Backend {
 public:
  // Finds the password (asking for it if need be); does not connect.
  static Result<std::unique_ptr<WebDavBackend>> open(WebDavLocation location,
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
  // One ranged GET: bytes [offset, offset + length), fewer at the end.
  Result<std::string> fetch_range(const std::string& name, uint64_t offset, size_t length) const;
  WebDavBackend(WebDavLocation location, const BackendOptions& options,
                std::optional<std::string> password);

  // One request for the decoded absolute `path` on a pool handle; the answer whatever its
  // status.
  Result<HttpResponse> send(CURL* h, const std::string& method, const std::string& path,
                            std::vector<std::string> headers, std::optional<std::string_view> body,
                            size_t expected_size, bool follow_redirects,
                            std::string_view where) const;
  // The error for an answer that is not a success.
  Error http_error(const HttpResponse& response, std::string_view what,
                   std::string_view where) const;
  // PROPFIND Depth 0 on the object `path` (in directory `dir`), on `h`: its size. kNotFound
  // when it does not exist (or is a collection).
  Result<uint64_t> stat_on(CURL* h, const std::string& dir, const std::string& name,
                           std::string_view where) const;
  Result<uint64_t> stat(const std::string& name) const;
  // The directory and its missing parents (once per backend; again after a PUT found it gone).
  Status ensure_directory() const;
  Status delete_quietly(const std::string& name) const;
  std::string path_of(const std::string& name) const { return location_.directory + name; }
  std::string where_of(const std::string& name) const;
  // The URL of the directory `dir` (a decoded path ending in '/'), for messages.
  std::string where_of_directory(const std::string& dir) const;

  WebDavLocation location_;
  std::optional<std::string> password_;  // never logged
  CurlPool pool_;
  // The HTTP authentication schemes to offer: Basic and Digest until the server has named its
  // own in a challenge.
  mutable std::atomic<long> auth_methods_;
  mutable std::mutex directory_mu_;  // held while the directory is made; a leaf
  mutable std::atomic<bool> directory_ready_{false};
  // Sizes from the last listing, until the object is written or removed. A leaf lock.
  mutable std::mutex sizes_mu_;
  mutable std::map<std::string, uint64_t> sizes_;
  // Sequential reads fetch 8 MiB at a time (read_windows.h).
  ReadWindows windows_{size_t{8} << 20, 8};
};

}  // namespace dupfs

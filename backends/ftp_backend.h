// FTP storage through libcurl (curl_pool.h): duplicity's ftp:// (plain), ftps:// (TLS from the
// first byte, "implicit", port 990 by default) and ftpes:// (plain connection upgraded with AUTH
// TLS, "explicit"; TLS is required, for logins and for data), also with duplicity's lftp+
// prefix (lftp+ftp://, lftp+ftps://, lftp+ftpes://). duplicity 0.8 hands all of these to lftp
// (backends/lftpbackend.py); this backend reads and writes the same files in the same places.
//
// URL: SCHEME://[USER[:PASSWORD]@]HOST[:PORT]/PATH. Without a user the login is anonymous (as
// lftp's). The password is the URL's, else FTP_PASSWORD, else asked for when the storage is
// opened (BackendOptions::ask_password), as duplicity's get_password() does.
//
// Paths, as duplicity 0.8's lftp backend has them: it strips ONE leading '/' from the URL's
// (percent-decoded) path and hands the rest to lftp, which resolves it against the login
// directory unless it starts with '/':
//   ftp://host/dir/sub    "dir/sub/"  relative to the login (home) directory
//   ftp://host//abs/dir   "/abs/dir/" absolute
//   ftp://host  and  ftp://host/     "/": the server's root (NOT the login directory; on a
//                                    server that chroots its users the two are the same)
// libcurl's FTP URLs are relative to the login directory, and a path that starts with "%2F" is
// absolute (CWD / first), so the libcurl URL of a location is
//   relative "dir/sub/"  ->  ftp://host/dir/sub/
//   absolute "/abs/dir/" ->  ftp://host/%2Fabs/dir/    ("/" -> ftp://host/%2F)
// with every path component percent-encoded (empty components, "a//b", are skipped, which any
// server reads as lftp's "a//b"). libcurl changes into the directory one component at a time
// (CWD, remembered on a kept connection) and names files relative to it.
//
// Requests (each on a kept connection from the pool; passive mode unless --ftp-regular):
// list() is NLST in the directory: names only. NLST also names subdirectories, which cannot be
// told from files without a request per name; duplicity's names never collide with them. A
// directory that cannot be entered (CWD refused: 550) is kNotFound; an NLST refused with 450 or
// 550 in a directory that could be entered is an empty directory (old servers say "No files
// found" so). size() is SIZE (binary mode): kNotFound for a missing file or a directory.
// read_range() is REST + RETR, the transfer stopped after the range (libcurl then closes the
// connection: FTP has no reliable way to stop a transfer and keep the connection, so a window
// of kReadWindow bytes is fetched at once and kept for the sequential reads that follow).
// read() of a whole object is one RETR (the connection is kept).
// write(): SIZE (kExists when the name is taken), then STOR under a temporary name in the same
// directory (".NAME.dupfs-tmp.RANDOM"; directories created as needed, as lftp's mkdir -p), then
// SIZE of that file, which must equal the bytes sent (plain FTP has no checksum; a short file is
// sent again, as a failed try, up to --num-retries times), then RNFR/RNTO into place. Over TLS
// with libcurl < 8.10, TLS is at most 1.2: 1.3 loses the end of uploads (ftp_backend.cc). The
// temporary file is deleted when anything fails. RNTO replaces an existing file on most servers: a
// writer racing this one between the first SIZE and RNTO is not detected (duplicity writes each
// name once). remove(): DELE in the directory (550: kNotFound). Commands sent with a request
// (RNFR/RNTO, DELE) go after libcurl's CWD (CURLOPT_POSTQUOTE): CURLOPT_QUOTE commands run before
// it, in whatever directory a kept connection was left in.
//
// TLS (ftps://, ftpes://): the control and data connections are both protected (PROT P); the
// server's certificate is checked against --ssl-cacert-file / --ssl-cacert-path or the system's
// CAs unless --ssl-no-check-certificate (BackendOptions::tls). Anonymous logins (no user) use
// TLS too (lftp, duplicity 0.8's client, does not: ftp:ssl-allow-anonymous is off, so its
// anonymous ftpes:// is plain FTP). Active mode (--ftp-regular) with TLS needs libcurl 8.0 or
// later (7.88 fails every such transfer, curl issue 10622): open() refuses it with older ones.
//
// Failures: a refused login is kAuth with one line naming the user and host; a dropped or
// silent server is tried again (curl_pool.h) and every wait is bounded by --timeout: libcurl
// waits for an FTP reply at most CURLOPT_SERVER_RESPONSE_TIMEOUT (the pool sets it to
// --timeout), also for the QUIT with which it closes a connection after a ranged read; the kept
// connections are dropped without a QUIT when the backend goes (CurlPool's destructor).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.h"
#include "backends/curl_pool.h"
#include "backends/read_windows.h"

namespace dupfs {

struct FtpLocation {
  enum class Security { kPlain, kImplicitTls, kExplicitTls };

  std::string scheme;  // as written, lowercased: "ftp", "ftpes", "lftp+ftps", ...
  Security security = Security::kPlain;
  std::optional<std::string> user;      // none: anonymous
  std::optional<std::string> password;  // the URL's; never shown
  std::string host;                     // lowercased, IPv6 without brackets
  uint16_t port = 0;                    // 0: the scheme's (21, ftps 990)
  // The directory as lftp gets it from duplicity: "dir/sub/" (relative to the login directory)
  // or "/abs/dir/" (absolute); always ends in '/'.
  std::string directory;
  std::string url_path;  // the URL's path as written (decoded), for describe()

  // The URL without its password.
  std::string describe() const;
  // The libcurl URL of the directory ("ftp://host:port/dir/sub/", "ftp://host/%2Fabs/dir/";
  // ftps:// for implicit TLS), or of `name` in it.
  std::string curl_url(std::string_view name = {}) const;
};

// ftp, ftps, ftpes and their lftp+ forms.
bool is_ftp_scheme(const std::string& scheme);
// kInvalidArgument for a URL without a host.
Result<FtpLocation> parse_ftp_url(const std::string& url);

// The names in an NLST answer: one a line (CRLF or LF), a leading path dropped ("dir/name" ->
// "name", which some servers send), "." and ".." and empty lines skipped.
std::vector<std::string> parse_name_list(std::string_view body);

class FtpBackend : public Backend {
 public:
  // Bytes one ranged read fetches at least (see the header comment).
  static constexpr size_t kReadWindow = size_t{8} << 20;

  // Takes the password (URL, FTP_PASSWORD, then asks); does not connect. kUnsupported for
  // --ftp-regular with TLS on libcurl before 8.0.
  static Result<std::unique_ptr<FtpBackend>> open(FtpLocation location,
                                                  const BackendOptions& options);

  Result<std::vector<std::string>> list() const override;
  Result<uint64_t> size(const std::string& name) const override;
  Result<std::string> read_range(const std::string& name, uint64_t offset,
                                 size_t length) const override;
  Result<std::string> read(const std::string& name) const override;
  Status write(const std::string& name, std::string_view data) override;
  Status remove(const std::string& name) override;
  std::string describe() const override { return location_.describe(); }
  void after_fork() override { pool_.after_fork(); }

 private:
  FtpBackend(FtpLocation location, const BackendOptions& options,
             std::optional<std::string> password);

  // The settings every request has: its URL, the login, TLS and the connection mode.
  void setup(CURL* h, const std::string& url) const;
  // The Error for a failed request on `name` ("" for the directory); `reply` is the last FTP
  // reply code.
  Error failure(const Error& e, CURLcode code, long reply, std::string_view name) const;
  // One request's perform(), its failure mapped by failure(); `code` gets libcurl's result.
  Status perform_ftp(CURL* h, std::string* received, std::optional<std::string_view> upload,
                     std::string_view name, CURLcode* code = nullptr) const;
  // Deletes `name` with one try, failures ignored (a temporary file left by a failed upload).
  void delete_quietly(const std::string& name) const;
  // One STOR of `data` to `tmp` (with the pool's retries; missing directories made).
  Status store(const std::string& tmp, std::string_view data) const;
  // Bytes [offset, offset + length) fetched from the server, fewer at the end.
  Result<std::string> fetch_range(const std::string& name, uint64_t offset, size_t length) const;
  void forget(const std::string& name) const;

  FtpLocation location_;
  std::optional<std::string> password_;  // never logged
  bool active_;
  CurlPool pool_;

  // Sequential reads fetch kReadWindow bytes at a time (read_windows.h).
  ReadWindows windows_{kReadWindow, 4};
};

}  // namespace dupfs

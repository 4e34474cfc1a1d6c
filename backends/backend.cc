#include "backends/backend.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "backends/file_backend.h"
#include "backends/ftp_backend.h"
#include "backends/s3_backend.h"
#include "backends/sftp_backend.h"
#include "backends/ssh_url.h"
#include "backends/url.h"
#include "backends/webdav_backend.h"

namespace dupfs {

Result<std::string> Backend::read(const std::string& name) const {
  auto total = size(name);
  if (!total) return std::unexpected(total.error());
  std::string out;
  out.reserve(*total);
  constexpr size_t kPiece = 4 << 20;
  while (out.size() < *total) {
    auto piece = read_range(name, out.size(), kPiece);
    if (!piece) return std::unexpected(piece.error());
    if (piece->empty()) break;  // shrank while reading
    out += *piece;
  }
  return out;
}

Error location_error(const Backend& backend, const Error& e) {
  std::string where = backend.describe();
  std::string message = e.message;
  // "URL: what happened" from network storage: the location is named once, by this line.
  if (message.starts_with(where + ": ")) message.erase(0, where.size() + 2);
  return Error{e.kind, fmt::format("cannot read backup location {}: {}", where, message)};
}

std::string user_home() {
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0') return h;
  if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr && pw->pw_dir != nullptr) {
    return pw->pw_dir;
  }
  return "/";
}

std::chrono::milliseconds retry_pause(int attempt) {
  auto pause = std::chrono::milliseconds(500) * (1 << std::min(std::max(attempt - 2, 0), 5));
  return std::min<std::chrono::milliseconds>(pause, std::chrono::seconds(10));
}

Result<std::unique_ptr<Backend>> open_backend(const std::string& url,
                                              const BackendOptions& options) {
  auto sep = url.find("://");
  if (sep == std::string::npos) {
    // A plain path, as duplicity accepts for local targets.
    if (url.empty()) return error(ErrorKind::kInvalidArgument, "empty storage URL");
    return std::make_unique<FileBackend>(url);
  }
  std::string scheme = url.substr(0, sep);
  std::string rest = url.substr(sep + 3);
  if (scheme == "file") {
    // duplicity: file:///abs/path is absolute, file://rel/path is relative to the cwd.
    if (rest.empty()) return error(ErrorKind::kInvalidArgument, "no path in URL '{}'", url);
    while (rest.size() > 1 && rest.back() == '/') rest.pop_back();
    return std::make_unique<FileBackend>(rest);
  }
  if (is_ssh_scheme(scheme)) {
    auto location = parse_ssh_url(url);
    if (!location) return std::unexpected(location.error());
    auto sftp = SftpBackend::open(std::move(*location), options);
    if (!sftp) return std::unexpected(sftp.error());
    return std::unique_ptr<Backend>(std::move(*sftp));
  }
  if (is_s3_scheme(scheme)) {
    auto location = parse_s3_url(url);
    if (!location) return std::unexpected(location.error());
    auto s3 = S3Backend::open(std::move(*location), options);
    if (!s3) return std::unexpected(s3.error());
    return std::unique_ptr<Backend>(std::move(*s3));
  }
  if (is_ftp_scheme(ascii_lowercase(scheme))) {
    auto location = parse_ftp_url(url);
    if (!location) return std::unexpected(location.error());
    auto ftp = FtpBackend::open(std::move(*location), options);
    if (!ftp) return std::unexpected(ftp.error());
    return std::unique_ptr<Backend>(std::move(*ftp));
  }
  if (is_webdav_scheme(ascii_lowercase(scheme))) {
    auto location = parse_webdav_url(url);
    if (!location) return std::unexpected(location.error());
    auto webdav = WebDavBackend::open(std::move(*location), options);
    if (!webdav) return std::unexpected(webdav.error());
    return std::unique_ptr<Backend>(std::move(*webdav));
  }
  // The URL may carry a password: name only the scheme.
  return error(
      ErrorKind::kInvalidArgument,
      "unsupported storage URL scheme '{}' (supported: file://, sftp://, scp://, s3://, "
      "boto3+s3://, s3+http://, webdav://, webdavs://, http://, https://, ftp://, ftps://, "
      "ftpes://)",
      scheme);
}

}  // namespace dupfs

// Storage: the only way dupfs touches a backup location. Implementations know nothing of
// duplicity's names. All const methods are safe to call from many threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/base/error.h"

namespace dupfs {

class Backend {
 public:
  virtual ~Backend() = default;

  // Names of the objects directly in the location (no directories), in no particular order.
  // kNotFound when the location itself does not exist.
  virtual Result<std::vector<std::string>> list() const = 0;

  // Size in bytes of one object. kNotFound when it does not exist.
  virtual Result<uint64_t> size(const std::string& name) const = 0;

  // Up to `length` bytes starting at `offset`; fewer only at the end of the object (an empty
  // string at or past the end). kNotFound when the object does not exist.
  virtual Result<std::string> read_range(const std::string& name, uint64_t offset,
                                         size_t length) const = 0;

  // The whole object.
  virtual Result<std::string> read(const std::string& name) const;

  // Creates `name` with `data` atomically: readers see either nothing or all of it. Never
  // replaces an existing object (kExists).
  virtual Status write(const std::string& name, std::string_view data) = 0;

  // Deletes one object. kNotFound when it does not exist.
  virtual Status remove(const std::string& name) = 0;

  // The location, for messages (never carries a password).
  virtual std::string describe() const = 0;

  // Called in the child after a fork() (dupfs mount opens the storage, then daemonizes),
  // before any thread of the child uses this object: threads the storage started before the
  // fork run in the parent only, and their locks may be held there for good. Does nothing when
  // there was no fork. Wrappers pass it on.
  virtual void after_fork() {}
};

// How TLS peers are checked (webdavs://, ftps://, ftpes://, https S3 endpoints): duplicity's
// --ssl-cacert-file, --ssl-cacert-path and --ssl-no-check-certificate. Default: the system's CA
// certificates.
struct TlsOptions {
  std::string cacert_file;
  std::string cacert_path;
  bool verify = true;
};

// S3: duplicity's --s3-* options.
struct S3Options {
  // --s3-endpoint-url: an S3-compatible service (MinIO, Ceph, B2, ...), addressed path-style
  // (ENDPOINT/BUCKET/KEY). Empty: Amazon S3, addressed as BUCKET.s3.REGION.amazonaws.com.
  std::string endpoint_url;
  // --s3-region-name; empty: AWS_REGION, AWS_DEFAULT_REGION, the profile's, else us-east-1.
  std::string region;
  // --s3-multipart-chunk-size (duplicity takes MB): objects larger than this are uploaded in
  // parts of this size (at least 5 MiB, S3's smallest part).
  uint64_t multipart_chunk_size = uint64_t{25} << 20;
  // --s3-use-rrs, --s3-use-ia, ...: the x-amz-storage-class of uploads; empty: STANDARD.
  // duplicity's --s3-use-glacier, -glacier-ir and -deep-archive apply to all but manifests.
  std::string storage_class;
  bool storage_class_spares_manifests = false;
};

// How network storage behaves, with duplicity's option names. File storage ignores it.
struct BackendOptions {
  // --num-retries: tries of an operation that failed on the connection (dropped, silent) before
  // its error is returned; at least one. Answers such as "no such file" are never retried.
  int num_retries = 5;
  // --timeout: a server silent this long while an answer is due counts as gone (the try fails
  // with kTimeout and the connection is dropped). Also bounds connecting.
  std::chrono::seconds timeout{30};
  // --ssh-options: ssh(1) options; IdentityFile, UserKnownHostsFile, GlobalKnownHostsFile and
  // Port are used (see backends/ssh_url.h).
  std::string ssh_options;
  // The SSH or WebDAV password (and passphrase of SSH keys) when the URL has none: FTP_PASSWORD,
  // as duplicity.
  std::optional<std::string> password;
  // Asked once, when the storage is opened, if neither the URL nor `password` has one (SSH: only
  // with --ssh-askpass; WebDAV: always, as duplicity asks); gets the prompt
  // ("Password for 'user@host': "), returns nullopt when it cannot ask.
  std::function<std::optional<std::string>(const std::string& prompt)> ask_password;
  // Connections kept open at most (parallel reads and uploads each take one).
  int max_connections = 4;
  TlsOptions tls;
  S3Options s3;
  // --ftp-regular: FTP data connections in active mode (default: passive, --ftp-passive).
  bool ftp_active = false;
};

// The error for a location whose list() failed with `e`: "cannot read backup location URL:
// ...", without naming the location twice when the message already does.
Error location_error(const Backend& backend, const Error& e);

// The user's home directory (~/.ssh, ~/.aws): $HOME, else the password database's, else "/".
std::string user_home();

// The pause before try `attempt` (2, 3, ...) of an operation that network storage tries again:
// 0.5 s, 1 s, 2 s, ... at most 10 s.
std::chrono::milliseconds retry_pause(int attempt);

// Opens the storage named by a duplicity URL: file:///path, file://relative, plain paths;
// sftp:// and scp:// (also paramiko+ and pexpect+ prefixed) through SFTP; s3://, boto3+s3:// and
// s3+http:// (s3_backend.h); webdav://, webdavs://, http:// and https:// through WebDAV
// (webdav_backend.h); ftp://, ftps:// (implicit TLS) and ftpes:// (AUTH TLS), also lftp+
// prefixed (ftp_backend.h). kInvalidArgument for an unknown scheme or a malformed URL. Does not
// touch the storage (network storage connects on first use; only the password question,
// ask_password, is asked here).
Result<std::unique_ptr<Backend>> open_backend(const std::string& url,
                                              const BackendOptions& options = {});

}  // namespace dupfs

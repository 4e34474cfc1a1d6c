// SSH storage locations and options as duplicity 0.8 reads them: the one place where sftp:// and
// scp:// URLs and --ssh-options are parsed. Pure functions, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backends/base/error.h"

namespace dupfs {

// sftp://[user[:password]@]host[:port]/path, also scp://, paramiko+sftp://, paramiko+scp://,
// pexpect+sftp://, pexpect+scp:// (every one of them is served over the SFTP protocol here).
struct SshLocation {
  std::string scheme;  // as written ("sftp", "scp", "paramiko+scp", ...)
  std::optional<std::string> user;
  std::optional<std::string> password;  // from the URL; never shown by describe()
  std::string host;                     // lowercased, IPv6 without brackets
  uint16_t port = 0;                    // 0: not given (ssh config, else 22)
  // The remote directory as SFTP paths take it, by duplicity's rule: the URL path without its
  // first '/', so host/rel/dir -> "rel/dir" (relative to the login directory) and
  // host//var/backup -> "/var/backup"; "." when the URL has no path. No trailing '/' except "/".
  std::string directory;

  // The URL without the password, for messages.
  std::string describe() const;
};

// Parses a URL the way duplicity's ParsedUrl (urllib) does: user, password and path are
// percent-decoded, the host is lowercased, a query or fragment is ignored. kInvalidArgument
// naming the URL for a missing host, a bad port or a scheme that is not SSH.
Result<SshLocation> parse_ssh_url(const std::string& url);

// True for the schemes parse_ssh_url accepts.
bool is_ssh_scheme(const std::string& scheme);

// What dupfs takes from duplicity's --ssh-options (a string of ssh(1) command-line options, as
// duplicity's paramiko backend reads them): -oIdentityFile=PATH or -i PATH (every one given),
// -oUserKnownHostsFile=PATH, -oGlobalKnownHostsFile=PATH, -oPort=N, -oCiphers=LIST (-c LIST).
// Option names are
// case-insensitive, values may be quoted, "-o Name=value" and "-oName value" forms are accepted,
// ~/ is expanded with `home`. Other options are kept in `ignored` (for a log line).
struct SshOptions {
  std::vector<std::string> identity_files;
  std::optional<std::string> user_known_hosts;
  std::optional<std::string> global_known_hosts;
  std::optional<uint16_t> port;
  std::optional<std::string> ciphers;  // comma-separated, in order of preference
  std::vector<std::string> ignored;
};

// kInvalidArgument for unbalanced quotes, a missing value or a bad port.
Result<SshOptions> parse_ssh_options(const std::string& text, const std::string& home);

}  // namespace dupfs

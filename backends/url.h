// Storage URLs as duplicity 0.8 reads them (its ParsedUrl, built on Python's urllib): the one
// place where a URL is split into user, password, host, port and path. Pure functions, no I/O.
// Each kind of storage takes what it needs from a Url (ssh_url.h, s3_backend.h, ...).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "backends/base/error.h"

namespace dupfs {

struct Url {
  std::string scheme;  // lowercased, as written otherwise ("sftp", "boto3+s3", "webdavs")
  std::optional<std::string> user;      // percent-decoded
  std::optional<std::string> password;  // percent-decoded; never shown by describe()
  std::string host;                     // lowercased, IPv6 without brackets
  uint16_t port = 0;                    // 0: not given
  // Percent-decoded, with its leading '/' ("" when the URL has none). A query or fragment is
  // not part of it (urllib drops them).
  std::string path;

  // scheme://[user@]host[:port]path: the URL without its password, for messages.
  std::string describe() const;
  // host, or [host] for IPv6, then :port when given: the authority as a URL writes it.
  std::string host_port() const;
};

// Splits `url` (scheme://netloc/path). kInvalidArgument naming the URL (without its password)
// for a missing "://", an unbalanced '[' or a bad port. The host may be empty (file://): the
// caller decides whether it needs one.
Result<Url> parse_url(const std::string& url);

// urllib.parse.unquote: %XX becomes the byte; anything malformed stays as written.
std::string percent_decode(const std::string& s);

// A TCP port, 1 to 65535, in decimal. kInvalidArgument "bad port 'TEXT' in WHERE".
Result<uint16_t> parse_port(const std::string& text, const std::string& where);

// ASCII letters to lower case (host names, option names, HTTP header names).
std::string ascii_lowercase(std::string s);

// RFC 3986 encoding of everything but the unreserved characters (A-Z a-z 0-9 - . _ ~) and, when
// `keep_slash`, '/': what S3 signs (and what any server accepts in a path).
std::string percent_encode(std::string_view s, bool keep_slash);

}  // namespace dupfs

#include "backends/url.h"

#include <cctype>

namespace dupfs {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string ascii_lowercase(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Result<uint16_t> parse_port(const std::string& text, const std::string& where) {
  bool ok = !text.empty() && text.size() <= 5;
  unsigned value = 0;
  for (char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c))) ok = false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (!ok || value == 0 || value > 65535) {
    return error(ErrorKind::kInvalidArgument, "bad port '{}' in {}", text, where);
  }
  return static_cast<uint16_t>(value);
}

std::string percent_decode(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

std::string percent_encode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~' ||
        (keep_slash && c == '/')) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

std::string Url::host_port() const {
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != 0) out += ":" + std::to_string(port);
  return out;
}

std::string Url::describe() const {
  std::string out = scheme + "://";
  if (user) out += *user + "@";
  return out + host_port() + path;
}

Result<Url> parse_url(const std::string& url) {
  size_t sep = url.find("://");
  if (sep == std::string::npos) {
    return error(ErrorKind::kInvalidArgument, "not a URL (no '://'): '{}'", url);
  }
  Url u;
  u.scheme = ascii_lowercase(url.substr(0, sep));
  std::string rest = url.substr(sep + 3);
  // urllib: the query and fragment are not part of the path.
  if (size_t q = rest.find_first_of("?#"); q != std::string::npos) rest.resize(q);
  size_t slash = rest.find('/');
  std::string netloc = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "" : rest.substr(slash);

  std::string hostport = netloc;
  if (size_t at = netloc.rfind('@'); at != std::string::npos) {
    std::string userinfo = netloc.substr(0, at);
    hostport = netloc.substr(at + 1);
    size_t colon = userinfo.find(':');
    std::string user = userinfo.substr(0, colon);
    if (!user.empty()) u.user = percent_decode(user);
    if (colon != std::string::npos) {
      std::string password = userinfo.substr(colon + 1);
      if (!password.empty()) u.password = percent_decode(password);
    }
  }
  std::string port_text;
  bool has_port = false;
  if (hostport.starts_with("[")) {
    size_t close = hostport.find(']');
    if (close == std::string::npos) {
      return error(ErrorKind::kInvalidArgument, "unbalanced '[' in the host of URL {}://{}",
                   u.scheme, hostport);
    }
    u.host = hostport.substr(1, close - 1);
    std::string after = hostport.substr(close + 1);
    if (after.starts_with(":")) {
      port_text = after.substr(1);
      has_port = true;
    }
  } else {
    size_t colon = hostport.find(':');
    u.host = hostport.substr(0, colon);
    if (colon != std::string::npos) {
      port_text = hostport.substr(colon + 1);
      has_port = true;
    }
  }
  u.host = ascii_lowercase(u.host);
  u.path = percent_decode(path);
  if (has_port && !port_text.empty()) {  // an empty port is no port (urllib)
    // Messages name the URL without its password.
    auto port = parse_port(port_text, "URL '" + u.describe() + "'");
    if (!port) return std::unexpected(port.error());
    u.port = *port;
  }
  return u;
}

}  // namespace dupfs

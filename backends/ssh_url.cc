#include "backends/ssh_url.h"

#include <cctype>

namespace dupfs {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// urllib.parse.unquote: %XX becomes the byte; anything malformed stays as written.
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

std::string lowercase(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Result<uint16_t> parse_port(const std::string& text, const std::string& where) {
  if (text.empty() || text.size() > 5) {
    return error(ErrorKind::kInvalidArgument, "bad port '{}' in {}", text, where);
  }
  unsigned value = 0;
  for (char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c))) {
      return error(ErrorKind::kInvalidArgument, "bad port '{}' in {}", text, where);
    }
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 65535) {
    return error(ErrorKind::kInvalidArgument, "bad port '{}' in {}", text, where);
  }
  return static_cast<uint16_t>(value);
}

std::string expand_home(const std::string& path, const std::string& home) {
  if (path == "~") return home;
  if (path.starts_with("~/")) return home + path.substr(1);
  return path;
}

// Splits like a POSIX shell would (whitespace, single and double quotes, backslash), which is
// how duplicity's command line reaches ssh.
Result<std::vector<std::string>> split_words(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\'' || c == '"') {
      size_t end = text.find(c, i + 1);
      if (end == std::string::npos) {
        return error(ErrorKind::kInvalidArgument, "unbalanced quote in --ssh-options '{}'", text);
      }
      word += text.substr(i + 1, end - i - 1);
      in_word = true;
      i = end;
    } else if (c == '\\' && i + 1 < text.size()) {
      word += text[++i];
      in_word = true;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

}  // namespace

bool is_ssh_scheme(const std::string& scheme) {
  return scheme == "sftp" || scheme == "scp" || scheme == "paramiko+sftp" ||
         scheme == "paramiko+scp" || scheme == "pexpect+sftp" || scheme == "pexpect+scp";
}

std::string SshLocation::describe() const {
  std::string out = scheme + "://";
  if (user) out += *user + "@";
  out += host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != 0) out += ":" + std::to_string(port);
  if (directory != ".") out += "/" + directory;
  return out;
}

Result<SshLocation> parse_ssh_url(const std::string& url) {
  size_t sep = url.find("://");
  if (sep == std::string::npos) {
    return error(ErrorKind::kInvalidArgument, "not an SSH URL: '{}'", url);
  }
  SshLocation loc;
  loc.scheme = lowercase(url.substr(0, sep));
  if (!is_ssh_scheme(loc.scheme)) {
    return error(ErrorKind::kInvalidArgument, "not an SSH URL scheme '{}' in '{}'", loc.scheme,
                 url);
  }
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
    if (!user.empty()) loc.user = percent_decode(user);
    if (colon != std::string::npos) {
      std::string password = userinfo.substr(colon + 1);
      if (!password.empty()) loc.password = percent_decode(password);
    }
  }
  std::string port_text;
  if (hostport.starts_with("[")) {
    size_t close = hostport.find(']');
    if (close == std::string::npos) {
      return error(ErrorKind::kInvalidArgument, "unbalanced '[' in the host of SSH URL {}://{}",
                   loc.scheme, hostport);
    }
    loc.host = hostport.substr(1, close - 1);
    std::string after = hostport.substr(close + 1);
    if (after.starts_with(":")) port_text = after.substr(1);
  } else {
    size_t colon = hostport.find(':');
    loc.host = hostport.substr(0, colon);
    if (colon != std::string::npos) port_text = hostport.substr(colon + 1);
  }
  loc.host = lowercase(loc.host);
  // Messages name the URL without its password.
  loc.directory = ".";
  std::string safe_url = loc.describe();
  if (loc.host.empty()) {
    return error(ErrorKind::kInvalidArgument, "missing host name in SSH URL '{}'", safe_url);
  }
  if (!port_text.empty()) {
    auto port = parse_port(port_text, "SSH URL '" + safe_url + "'");
    if (!port) return std::unexpected(port.error());
    loc.port = *port;
  }

  // duplicity's paramiko backend: the path without its first '/' is the remote directory.
  path = percent_decode(path);
  if (path.starts_with("/")) path.erase(0, 1);
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  loc.directory = path.empty() ? "." : path;
  return loc;
}

Result<SshOptions> parse_ssh_options(const std::string& text, const std::string& home) {
  auto words = split_words(text);
  if (!words) return std::unexpected(words.error());
  SshOptions options;
  auto missing = [&](const std::string& option) {
    return error(ErrorKind::kInvalidArgument, "--ssh-options: {} needs a value", option);
  };
  for (size_t i = 0; i < words->size(); ++i) {
    const std::string& w = (*words)[i];
    if (w == "-i" || (w.starts_with("-i") && w.size() > 2)) {
      std::string value = w.size() > 2 ? w.substr(2) : "";
      if (value.empty()) {
        if (i + 1 >= words->size()) return missing("-i");
        value = (*words)[++i];
      }
      options.identity_files.push_back(expand_home(value, home));
      continue;
    }
    if (w == "-c") {
      if (i + 1 >= words->size()) return missing("-c");
      options.ciphers = (*words)[++i];
      continue;
    }
    if (!w.starts_with("-o")) {
      options.ignored.push_back(w);
      continue;
    }
    std::string setting = w.substr(2);
    if (setting.empty()) {
      if (i + 1 >= words->size()) return missing("-o");
      setting = (*words)[++i];
    }
    // ssh_config syntax: "Name=value" or "Name value" (the value may be the next word).
    size_t split = setting.find_first_of("= \t");
    std::string name = lowercase(setting.substr(0, split));
    std::string value;
    if (split != std::string::npos) {
      value = setting.substr(split + 1);
      while (!value.empty() && (value[0] == '=' || value[0] == ' ' || value[0] == '\t')) {
        value.erase(0, 1);
      }
    }
    bool known = name == "identityfile" || name == "userknownhostsfile" ||
                 name == "globalknownhostsfile" || name == "port" || name == "ciphers";
    if (!known) {
      options.ignored.push_back("-o" + setting);
      continue;
    }
    if (value.empty()) {
      if (i + 1 >= words->size()) return missing("-o" + name);
      value = (*words)[++i];
    }
    if (name == "identityfile") {
      options.identity_files.push_back(expand_home(value, home));
    } else if (name == "userknownhostsfile") {
      options.user_known_hosts = expand_home(value, home);
    } else if (name == "globalknownhostsfile") {
      options.global_known_hosts = expand_home(value, home);
    } else if (name == "ciphers") {
      options.ciphers = value;
    } else {
      auto port = parse_port(value, "--ssh-options");
      if (!port) return std::unexpected(port.error());
      options.port = *port;
    }
  }
  return options;
}

}  // namespace dupfs

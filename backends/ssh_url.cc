#include "backends/ssh_url.h"

#include <cctype>

#include "backends/url.h"

namespace dupfs {
namespace {

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
  auto u = parse_url(url);
  if (!u) return std::unexpected(u.error());
  if (!is_ssh_scheme(u->scheme)) {
    return error(ErrorKind::kInvalidArgument, "not an SSH URL scheme '{}' in '{}'", u->scheme,
                 u->describe());
  }
  SshLocation loc;
  loc.scheme = u->scheme;
  loc.user = u->user;
  loc.password = u->password;
  loc.host = u->host;
  loc.port = u->port;
  if (loc.host.empty()) {
    return error(ErrorKind::kInvalidArgument, "missing host name in SSH URL '{}'", u->describe());
  }
  // duplicity's paramiko backend: the path without its first '/' is the remote directory.
  std::string path = u->path;
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
    std::string name = ascii_lowercase(setting.substr(0, split));
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

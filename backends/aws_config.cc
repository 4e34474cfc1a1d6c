#include "backends/aws_config.h"

#include <fstream>
#include <map>

#include "backends/url.h"

namespace dupfs {
namespace {

using Section = std::map<std::string, std::string>;

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

// The INI file's sections, by name ("default", "profile x"); keys lowercased. A missing file
// has none.
std::map<std::string, Section> read_ini(const std::string& path) {
  std::map<std::string, Section> sections;
  std::ifstream in(path);
  std::string line;
  Section* current = nullptr;
  while (std::getline(in, line)) {
    std::string t = trim(line);
    if (t.empty() || t.front() == '#' || t.front() == ';') continue;
    if (t.front() == '[' && t.back() == ']') {
      current = &sections[trim(std::string_view(t).substr(1, t.size() - 2))];
      continue;
    }
    size_t eq = t.find('=');
    if (current == nullptr || eq == std::string::npos) continue;
    (*current)[ascii_lowercase(trim(std::string_view(t).substr(0, eq)))] =
        trim(std::string_view(t).substr(eq + 1));
  }
  return sections;
}

const char* nonempty(const char* v) { return v != nullptr && *v != '\0' ? v : nullptr; }

}  // namespace

Result<AwsConfig> load_aws_config(const std::function<const char*(const char*)>& getenv,
                                  const std::string& home) {
  AwsConfig config;
  const char* named = nonempty(getenv("AWS_PROFILE"));
  if (named == nullptr) named = nonempty(getenv("AWS_DEFAULT_PROFILE"));
  config.profile = named != nullptr ? named : "default";

  const char* cred_env = nonempty(getenv("AWS_SHARED_CREDENTIALS_FILE"));
  const char* conf_env = nonempty(getenv("AWS_CONFIG_FILE"));
  std::string cred_path = cred_env != nullptr ? cred_env : home + "/.aws/credentials";
  std::string conf_path = conf_env != nullptr ? conf_env : home + "/.aws/config";
  auto cred_file = read_ini(cred_path);
  auto conf_file = read_ini(conf_path);
  const Section* in_credentials = nullptr;
  const Section* in_config = nullptr;
  if (auto it = cred_file.find(config.profile); it != cred_file.end()) in_credentials = &it->second;
  std::string conf_name = config.profile == "default" ? "default" : "profile " + config.profile;
  if (auto it = conf_file.find(conf_name); it != conf_file.end()) in_config = &it->second;
  auto profile_value = [&](const std::string& key) -> std::string {
    for (const Section* s : {in_credentials, in_config}) {
      if (s == nullptr) continue;
      if (auto it = s->find(key); it != s->end() && !it->second.empty()) return it->second;
    }
    return {};
  };

  const char* key = nonempty(getenv("AWS_ACCESS_KEY_ID"));
  const char* secret = nonempty(getenv("AWS_SECRET_ACCESS_KEY"));
  if (key != nullptr && secret != nullptr) {
    config.credentials.access_key_id = key;
    config.credentials.secret_access_key = secret;
    if (const char* token = nonempty(getenv("AWS_SESSION_TOKEN"))) {
      config.credentials.session_token = token;
    }
  } else {
    if (named != nullptr && in_credentials == nullptr && in_config == nullptr) {
      return error(ErrorKind::kInvalidArgument,
                   "AWS profile '{}' (AWS_PROFILE) is in neither {} nor {}", config.profile,
                   cred_path, conf_path);
    }
    config.credentials.access_key_id = profile_value("aws_access_key_id");
    config.credentials.secret_access_key = profile_value("aws_secret_access_key");
    config.credentials.session_token = profile_value("aws_session_token");
    if (config.credentials.access_key_id.empty() || config.credentials.secret_access_key.empty()) {
      return error(ErrorKind::kAuth,
                   "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give "
                   "profile '{}' aws_access_key_id and aws_secret_access_key in {}",
                   config.profile, cred_path);
    }
  }
  if (const char* r = nonempty(getenv("AWS_REGION"))) {
    config.region = r;
  } else if (const char* r2 = nonempty(getenv("AWS_DEFAULT_REGION"))) {
    config.region = r2;
  } else {
    config.region = profile_value("region");
  }
  return config;
}

}  // namespace dupfs

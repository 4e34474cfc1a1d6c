#include "cli/options.h"

#include <openssl/evp.h>
#include <sys/prctl.h>
#include <termios.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "backends/deadline_backend.h"
#include "backends/file_backend.h"
#include "backends/ssh_url.h"
#include "backends/url.h"

namespace dupfs::cli {

int report_error(const char* program, const Error& e, std::optional<ExitCode> code) {
  std::fprintf(stderr, "%s: %s\n", program, e.message.c_str());
  if (code) return *code;
  return e.kind == ErrorKind::kInvalidArgument ? kCommandLine : kFailure;
}

int report_usage_error(const char* program, const CLI::ParseError& e) {
  // One line, the exit code of every other command-line error.
  std::fprintf(stderr, "%s: %s (see --help)\n", program, e.what());
  return kCommandLine;
}

// duplicity's -v: a number 0-9 or a word (error, warning, notice, info, debug) or its letter.
Result<LogLevel> parse_verbosity(const std::string& text) {
  if (!text.empty() && std::isdigit(static_cast<unsigned char>(text[0]))) {
    int v = std::atoi(text.c_str());
    if (v < 0 || v > 9) return error(ErrorKind::kInvalidArgument, "bad verbosity {}", text);
    if (v <= 1) return LogLevel::kError;
    if (v <= 3) return LogLevel::kWarning;
    if (v <= 7) return LogLevel::kNotice;
    if (v == 8) return LogLevel::kInfo;
    return LogLevel::kDebug;
  }
  std::string w;
  for (char c : text) w += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (w == "e" || w == "error") return LogLevel::kError;
  if (w == "w" || w == "warning") return LogLevel::kWarning;
  if (w == "n" || w == "notice") return LogLevel::kNotice;
  if (w == "i" || w == "info") return LogLevel::kInfo;
  if (w == "d" || w == "debug") return LogLevel::kDebug;
  return error(ErrorKind::kInvalidArgument, "bad verbosity '{}'", text);
}

Result<uint64_t> parse_size(const std::string& text) {
  size_t pos = 0;
  uint64_t value = 0;
  try {
    value = std::stoull(text, &pos);
  } catch (...) {
    return error(ErrorKind::kInvalidArgument, "not a size: '{}'", text);
  }
  std::string unit = text.substr(pos);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (unit.ends_with("IB")) unit = unit.substr(0, unit.size() - 2);
  if (unit.ends_with("B") && unit.size() > 1) unit.pop_back();
  uint64_t mult = unit.empty() || unit == "B" ? 1
                  : unit == "K"               ? 1ull << 10
                  : unit == "M"               ? 1ull << 20
                  : unit == "G"               ? 1ull << 30
                  : unit == "T"               ? 1ull << 40
                                              : 0;
  if (mult == 0) return error(ErrorKind::kInvalidArgument, "unknown size unit in '{}'", text);
  return value * mult;
}

std::optional<std::string> take_secret_from_environment(const char* name) {
  char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  std::string secret(value);
  // Overwritten where it lies (the process's initial environment block, which
  // /proc/<pid>/environ shows for as long as the process lives), then removed.
  std::memset(value, 0, secret.size());
  ::unsetenv(name);
  return secret;
}

void protect_process_memory() {
  // No core file, and no ptrace by other processes of the same user: memory holds the
  // passphrase, derived keys and decrypted data.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

std::optional<std::string> read_hidden_line(std::FILE* in, std::FILE* out, const char* prompt) {
  std::fputs(prompt, out);
  std::fflush(out);
  const int fd = ::fileno(in);
  termios old{};
  const bool restore = ::tcgetattr(fd, &old) == 0;
  if (restore) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  std::string line;
  bool read_any = false;
  int c;
  while ((c = std::fgetc(in)) != EOF) {
    read_any = true;
    if (c == '\n') break;
    line += static_cast<char>(c);
  }
  if (restore) ::tcsetattr(fd, TCSAFLUSH, &old);
  std::fputs("\n", out);
  if (!read_any) return std::nullopt;
  return line;
}

std::optional<std::string> passphrase_for(const Backend& backend) {
  if (auto passphrase = take_secret_from_environment("PASSPHRASE")) return passphrase;
  if (!::isatty(STDIN_FILENO)) return std::nullopt;
  auto names = backend.list();
  if (!names) return std::nullopt;
  bool encrypted = false;
  for (const auto& n : *names) {
    if (n.ends_with(".gpg") || n.ends_with(".g")) encrypted = true;
  }
  if (!encrypted) return std::nullopt;
  return read_hidden_line(stdin, stderr, "GnuPG passphrase for decryption: ").value_or("");
}

std::string default_archive_dir(const std::string& url) {
  std::string base;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) {
    base = x;
  } else if (const char* h = std::getenv("HOME"); h && *h) {
    base = std::string(h) + "/.cache";
  } else {
    base = "/tmp";
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(url.data(), url.size(), md, &len, EVP_md5(), nullptr);
  std::string hex;
  for (unsigned i = 0; i < len; ++i) hex += fmt::format("{:02x}", md[i]);
  return base + "/dupfs/" + hex;
}

void add_storage_options(CLI::App& command, StorageArgs& args) {
  command
      .add_option("--num-retries", args.num_retries,
                  "Tries of a storage operation that failed on the connection (default 5)")
      ->check(CLI::PositiveNumber);
  command
      .add_option("--timeout", args.timeout,
                  "Seconds a storage server may stay silent before the try fails (default 30)")
      ->check(CLI::PositiveNumber);
  // duplicity's "extend": every --ssh-options adds to the others.
  command
      .add_option("--ssh-options", args.ssh_options,
                  "ssh options for sftp:// and scp:// (e.g. --ssh-options=\"-oIdentityFile=KEY "
                  "-oUserKnownHostsFile=FILE\")")
      ->multi_option_policy(CLI::MultiOptionPolicy::Join)
      ->delimiter(' ');
  command.add_flag("--ssh-askpass", args.ssh_askpass,
                   "Ask for the SSH password (and key passphrase) when FTP_PASSWORD is not set");
  command.add_option(
      "--ssl-cacert-file", args.ssl_cacert_file,
      "CA certificates (PEM) to check TLS servers with (webdavs, ftps, ftpes, https)");
  command.add_option("--ssl-cacert-path", args.ssl_cacert_path,
                     "A directory of CA certificates (c_rehash'ed) to check TLS servers with");
  command.add_flag("--ssl-no-check-certificate", args.ssl_no_check_certificate,
                   "Do not check TLS servers' certificates");
  command.add_option("--s3-endpoint-url", args.s3_endpoint_url,
                     "An S3-compatible service (MinIO, Ceph, B2, ...): http[s]://HOST[:PORT]");
  command.add_option("--s3-region-name", args.s3_region_name, "The S3 region (e.g. eu-west-1)");
  command
      .add_option("--s3-multipart-chunk-size", args.s3_multipart_chunk_size,
                  "MB: larger S3 uploads go up in parts of this size (default 25)")
      ->check(CLI::PositiveNumber);
  command.add_flag("--s3-use-rrs", args.s3_use_rrs, "Store uploads as REDUCED_REDUNDANCY");
  command.add_flag("--s3-use-ia", args.s3_use_ia, "Store uploads as STANDARD_IA");
  command.add_flag("--s3-use-onezone-ia", args.s3_use_onezone_ia, "Store uploads as ONEZONE_IA");
  command.add_flag("--s3-use-glacier", args.s3_use_glacier,
                   "Store uploads but manifests as GLACIER");
  command.add_flag("--s3-use-glacier-ir", args.s3_use_glacier_ir,
                   "Store uploads but manifests as GLACIER_IR");
  command.add_flag("--s3-use-deep-archive", args.s3_use_deep_archive,
                   "Store uploads but manifests as DEEP_ARCHIVE");
  command.add_flag("--s3-use-new-style", args.s3_use_new_style,
                   "Accepted for duplicity's command lines (addressing is chosen by dupfs)");
  command.add_flag("--ftp-passive", args.ftp_passive,
                   "FTP data connections in passive mode "
                   "(the default)");
  command.add_flag("--ftp-regular", args.ftp_regular, "FTP data connections in active mode");
}

Result<std::unique_ptr<Backend>> open_storage(const std::string& url, const StorageArgs& args) {
  BackendOptions options;
  options.num_retries = args.num_retries;
  options.timeout = std::chrono::seconds(args.timeout);
  options.ssh_options = args.ssh_options;
  options.password = take_secret_from_environment("FTP_PASSWORD");
  options.tls.cacert_file = args.ssl_cacert_file;
  options.tls.cacert_path = args.ssl_cacert_path;
  options.tls.verify = !args.ssl_no_check_certificate;
  options.s3.endpoint_url = args.s3_endpoint_url;
  options.s3.region = args.s3_region_name;
  options.s3.multipart_chunk_size = static_cast<uint64_t>(args.s3_multipart_chunk_size) << 20;
  if (int(args.s3_use_rrs) + int(args.s3_use_ia) + int(args.s3_use_onezone_ia) >= 2) {
    return error(ErrorKind::kInvalidArgument,
                 "only one of --s3-use-rrs, --s3-use-ia and --s3-use-onezone-ia may be used");
  }
  // duplicity's order of precedence among the --s3-use-* classes.
  if (args.s3_use_rrs) {
    options.s3.storage_class = "REDUCED_REDUNDANCY";
  } else if (args.s3_use_ia) {
    options.s3.storage_class = "STANDARD_IA";
  } else if (args.s3_use_onezone_ia) {
    options.s3.storage_class = "ONEZONE_IA";
  } else if (args.s3_use_glacier || args.s3_use_glacier_ir || args.s3_use_deep_archive) {
    options.s3.storage_class = args.s3_use_glacier      ? "GLACIER"
                               : args.s3_use_glacier_ir ? "GLACIER_IR"
                                                        : "DEEP_ARCHIVE";
    options.s3.storage_class_spares_manifests = true;
  }
  // The last of --ftp-passive and --ftp-regular would win in duplicity; passive is the default.
  options.ftp_active = args.ftp_regular && !args.ftp_passive;
  // duplicity asks for a missing FTP (and WebDAV) password always, for an SSH one only with
  // --ssh-askpass.
  size_t sep = url.find("://");
  bool ssh = sep != std::string::npos && is_ssh_scheme(ascii_lowercase(url.substr(0, sep)));
  if (args.ssh_askpass || !ssh) {
    // The question on the controlling terminal, without echo.
    options.ask_password = [](const std::string& prompt) -> std::optional<std::string> {
      FILE* tty = std::fopen("/dev/tty", "r+");
      if (tty == nullptr) return std::nullopt;
      auto line = read_hidden_line(tty, tty, prompt.c_str());
      std::fclose(tty);
      return line.value_or("");
    };
  }
  auto backend = open_backend(url, options);
  if (!backend) return backend;
  // Local storage can block without end too (a hung NFS mount, a dying disk): its reads are
  // bounded by --timeout as network storage bounds its own.
  if (dynamic_cast<FileBackend*>(backend->get()) != nullptr) {
    return std::make_unique<DeadlineBackend>(std::move(*backend), options.timeout);
  }
  return backend;
}

}  // namespace dupfs::cli

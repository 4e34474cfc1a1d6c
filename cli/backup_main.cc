// dupfs-backup: duplicity's "full" and "incremental" command lines, writing duplicity's format.
//   dupfs-backup [full|incremental] [options] SOURCE URL
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <regex>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/base/log.h"
#include "backends/file_backend.h"
#include "chain/backup/run_backup.h"
#include "chain/backup/source_walk.h"
#include "chain/format/names.h"
#include "chain/metadata/archive_dir.h"
#include "cli/options.h"
#include "cli/time_spec.h"

namespace dupfs::cli {
namespace {

int report(const Error& e) { return report_error("dupfs-backup", e); }

struct BackupArgs {
  std::vector<std::string> positional;
  int volsize = 200;
  std::string full_if_older_than;
  std::vector<std::string> include, exclude, include_filelist, exclude_filelist;
  std::vector<std::string> encrypt_keys;
  std::string sign_key;
  bool no_encryption = false;
  bool no_compression = false;
  bool progress = false;
  std::string tempdir;
  std::string archive_dir;
  std::string name;
  std::string log_file;
  bool allow_source_mismatch = false;
  std::string verbosity = "notice";
  std::vector<chain::SelectionOption> selection;  // in command-line order
  StorageArgs storage;
};

// duplicity's Path.get_canonical: "." and empty components dropped, a leading '/' kept.
std::string canonical_path(const std::string& path) {
  std::string out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    std::string part = path.substr(start, slash - start);
    if (!part.empty() && part != ".") {
      if (!out.empty()) out += '/';
      out += part;
    }
    start = slash + 1;
  }
  if (!path.empty() && path[0] == '/') return "/" + out;
  return out.empty() ? "." : out;
}

// Creates the directory of a local storage URL (file:///abs, file://rel or a plain path).
Status make_local_target(const std::string& url) {
  std::string path = url;
  if (auto sep = url.find("://"); sep != std::string::npos) {
    if (url.substr(0, sep) != "file") return {};
    path = url.substr(sep + 3);
  }
  return make_private_dirs(path);
}

// PASSPHRASE from the environment (removed from it at once: gpg and other children never see
// it), else, when one is needed and a terminal is attached, a prompt (twice for a new
// symmetric passphrase, as duplicity asks).
Result<std::optional<std::string>> get_passphrase(bool needed, bool confirm) {
  if (auto passphrase = take_secret_from_environment("PASSPHRASE")) return passphrase;
  if (!needed) return std::optional<std::string>();
  if (!::isatty(STDIN_FILENO)) {
    return error(ErrorKind::kInvalidArgument,
                 "no passphrase: set PASSPHRASE, or run on a terminal to be asked");
  }
  auto first = read_hidden_line(stdin, stderr, "GnuPG passphrase for encryption: ");
  if (!first) return error(ErrorKind::kInvalidArgument, "no passphrase given");
  if (confirm) {
    auto second = read_hidden_line(stdin, stderr, "Retype passphrase for encryption to confirm: ");
    if (!second || *second != *first) {
      return error(ErrorKind::kInvalidArgument, "first and second passphrases do not match");
    }
  }
  return std::optional<std::string>(std::move(*first));
}

int run_backup_command(BackupArgs& args) {
  auto level = parse_verbosity(args.verbosity);
  if (!level) return report(level.error());
  set_log_level(*level);
  if (!args.log_file.empty() && !set_log_file(args.log_file)) {
    return report(Error{ErrorKind::kInvalidArgument, "cannot open log file " + args.log_file});
  }

  chain::BackupRequest request;
  if (args.positional.size() == 3) {
    const std::string& action = args.positional[0];
    if (action == "full") {
      request.action = chain::BackupAction::kFull;
    } else if (action == "incremental" || action == "inc") {
      request.action = chain::BackupAction::kIncremental;
    } else {
      return report(Error{ErrorKind::kInvalidArgument,
                          "unknown action '" + action + "' (full or incremental)"});
    }
    args.positional.erase(args.positional.begin());
  } else if (args.positional.size() != 2) {
    return report(
        Error{ErrorKind::kInvalidArgument, "expected [full|incremental] SOURCE URL (see --help)"});
  }
  const std::string source = args.positional[0];
  const std::string url = args.positional[1];
  struct stat st {};
  if (::stat(source.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return report(Error{ErrorKind::kInvalidArgument, "source " + source + " is not a directory"});
  }
  if (args.volsize < 1) {
    return report(Error{ErrorKind::kInvalidArgument, "--volsize must be at least 1 (MiB)"});
  }
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  if (!args.full_if_older_than.empty()) {
    auto t = parse_time_spec(args.full_if_older_than, now);
    if (!t) return report(t.error());
    request.full_if_older_than = *t;
  }
  auto selection = chain::Selection::make(source, args.selection);
  if (!selection) return report(selection.error());

  auto backend = open_storage(url, args.storage);
  if (!backend) return report(backend.error());

  chain::BackupOptions options;
  options.volume_size = static_cast<uint64_t>(args.volsize) << 20;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  options.hostname = host;
  options.localdir = canonical_path(source);
  options.archive_dir = args.archive_dir.empty() ? default_archive_dir(url) : args.archive_dir;
  std::string gnupg_home;
  if (const char* h = std::getenv("GNUPGHOME")) gnupg_home = h;
  if (args.no_encryption) {
    options.encode.codec = args.no_compression ? chain::Codec::kPlain : chain::Codec::kGzip;
    // A passphrase may still be needed to read an encrypted chain's metadata.
    auto p = get_passphrase(false, false);
    if (!p) return report(p.error());
    request.credentials.passphrase = std::move(*p);
  } else {
    options.encode.codec = chain::Codec::kGpg;
    options.encode.recipients = args.encrypt_keys;
    options.encode.sign_key = args.sign_key;
    options.encode.gnupg_home = gnupg_home;
    const bool symmetric = args.encrypt_keys.empty();
    auto p = get_passphrase(symmetric || !args.sign_key.empty(), symmetric);
    if (!p) return report(p.error());
    options.encode.passphrase = *p;
    request.credentials.passphrase = std::move(*p);
    if (auto st = chain::check_encryption_keys(options.encode); !st) return report(st.error());
  }
  if (auto names = (*backend)->list(); !names && names.error().kind == ErrorKind::kNotFound) {
    // duplicity creates a missing local target directory.
    if (auto st = make_local_target(url); !st) return report(st.error());
  }
  // One backup at a time per archive dir (duplicity locks its archive dir too): a second run
  // would delete the first one's volumes as leftovers of an interrupted backup.
  chain::ArchiveLock lock;
  if (auto st = lock.acquire(chain::ArchiveDir(options.archive_dir), "dupfs-backup"); !st) {
    return report_error(
        "dupfs-backup", st.error(),
        st.error().kind == ErrorKind::kExists ? std::optional(kCommandLine) : std::nullopt);
  }
  request.credentials.gnupg_home = gnupg_home;
  request.allow_source_mismatch = args.allow_source_mismatch;
  if (args.progress) {
    options.on_volume = [](int volume, uint64_t stored, uint64_t read) {
      std::fprintf(stderr, "Processed volume %d: %.1f MB read, %.1f MB stored\n", volume,
                   static_cast<double>(read) / 1e6, static_cast<double>(stored) / 1e6);
    };
  }

  // For tests of interrupted runs: SIGKILL right after storing the first object whose name
  // contains this text.
  if (const char* kill_after = std::getenv("DUPFS_BACKUP_TEST_KILL_AFTER")) {
    std::string fragment = kill_after;
    options.after_store = [fragment](const std::string& name) {
      if (name.find(fragment) != std::string::npos) ::kill(::getpid(), SIGKILL);
    };
  }

  const chain::Selection& sel = *selection;
  chain::SourceWalk walk = [&](const std::function<Status(chain::SourceEntry &&)>& visit) {
    return chain::walk_source(source, sel, visit);
  };
  auto outcome = chain::run_backup(**backend, options, request, walk);
  if (!outcome) return report(outcome.error());
  std::fputs(chain::format_statistics(outcome->statistics).c_str(), stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace dupfs::cli

int main(int argc, char** argv) {
  dupfs::cli::protect_process_memory();
  using dupfs::chain::SelectionOption;
  dupfs::cli::BackupArgs a;
  CLI::App app{
      "dupfs-backup: write a full or incremental backup of SOURCE to URL in duplicity's "
      "format\n  dupfs-backup [full|incremental] [options] SOURCE URL\nWithout an action: a "
      "full backup when URL holds no chain yet, else an incremental."};
  app.add_option("args", a.positional, "[full|incremental] SOURCE URL");
  app.add_option("--volsize", a.volsize, "Volume size in MiB (default 200)");
  app.add_option("--full-if-older-than", a.full_if_older_than,
                 "Make a full backup when the last full is older than this (14D, 2W, 1M, 1Y)");
  auto* include = app.add_option("--include", a.include, "Include files matching this pattern")
                      ->allow_extra_args(false);
  auto* exclude = app.add_option("--exclude", a.exclude, "Exclude files matching this pattern")
                      ->allow_extra_args(false);
  auto* include_filelist =
      app.add_option("--include-filelist", a.include_filelist, "Include the files listed")
          ->allow_extra_args(false);
  auto* exclude_filelist =
      app.add_option("--exclude-filelist", a.exclude_filelist, "Exclude the files listed")
          ->allow_extra_args(false);
  app.add_option("--encrypt-key", a.encrypt_keys, "Encrypt to this public key (repeatable)")
      ->allow_extra_args(false);
  app.add_option("--sign-key", a.sign_key, "Sign with this secret key");
  app.add_flag("--no-encryption", a.no_encryption, "Store gzipped, not encrypted");
  app.add_flag("--no-compression", a.no_compression,
               "With --no-encryption: store plain tar volumes");
  app.add_flag("--progress", a.progress, "Report each volume as it is stored");
  app.add_option("--tempdir", a.tempdir, "Directory for temporary files (nothing is written)");
  app.add_option("--archive-dir", a.archive_dir,
                 "Where metadata is cached (default ~/.cache/dupfs/<id of URL>)");
  app.add_option("--name", a.name, "Accepted for duplicity compatibility");
  app.add_option("--log-file", a.log_file, "Append log lines to this file");
  add_storage_options(app, a.storage);
  app.add_flag("--allow-source-mismatch", a.allow_source_mismatch,
               "Continue a chain made from another host or directory");
  app.add_option("-v,--verbosity", a.verbosity,
                 "0-9 or error, warning, notice, info, debug (default notice)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return dupfs::cli::report_usage_error("dupfs-backup", e);
  }
  // Selection options in command-line order: each occurrence takes its option's next value.
  size_t next_include = 0, next_exclude = 0, next_include_fl = 0, next_exclude_fl = 0;
  for (const CLI::Option* opt : app.parse_order()) {
    if (opt == include && next_include < a.include.size()) {
      a.selection.push_back({SelectionOption::Kind::kInclude, a.include[next_include++]});
    } else if (opt == exclude && next_exclude < a.exclude.size()) {
      a.selection.push_back({SelectionOption::Kind::kExclude, a.exclude[next_exclude++]});
    } else if (opt == include_filelist && next_include_fl < a.include_filelist.size()) {
      a.selection.push_back(
          {SelectionOption::Kind::kIncludeFilelist, a.include_filelist[next_include_fl++]});
    } else if (opt == exclude_filelist && next_exclude_fl < a.exclude_filelist.size()) {
      a.selection.push_back(
          {SelectionOption::Kind::kExcludeFilelist, a.exclude_filelist[next_exclude_fl++]});
    }
  }
  return dupfs::cli::run_backup_command(a);
}

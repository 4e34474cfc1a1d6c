// dupfs restore, dupfs verify: duplicity's restore and verify actions, with its option names,
// messages and exit codes (11 restore target exists, 12 verify directory missing, 19 path not
// in the archive, 20 nothing in the archive, 21 hash mismatch, 1 differences or other errors).
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <thread>

#include "backends/base/log.h"
#include "chain/format/collection.h"
#include "chain/format/names.h"
#include "chain/restore/restore.h"
#include "chain/restore/tree_writer.h"
#include "chain/restore/verify.h"
#include "cli/actions.h"
#include "cli/options.h"
#include "cli/time_spec.h"

namespace dupfs::cli {
namespace {

struct RestoreArgs {
  std::string url;
  std::string local;  // restore target / verify directory
  std::string time;
  std::string path;  // --file-to-restore
  bool force = false;
  bool compare_data = false;
  bool numeric_owner = false;
  bool progress = false;
  std::string archive_dir;
  std::string log_file;
  std::string verbosity = "notice";
  StorageArgs storage;
};

int fail(const Error& e, std::optional<ExitCode> code = std::nullopt) {
  return report_error("dupfs", e, code);
}

// kMismatchedHash when the failure was a volume's hash, else decided by the error.
std::optional<ExitCode> hash_code(const chain::RestoreResult& result) {
  return result.mismatched_volume ? std::optional(kMismatchedHash) : std::nullopt;
}

// Notices (differences, the verify summary) go to stdout, as duplicity prints them, and to the
// log file.
class Notices {
 public:
  explicit Notices(const std::string& log_file) {
    if (!log_file.empty()) file_ = std::fopen(log_file.c_str(), "ae");
  }
  ~Notices() {
    if (file_) std::fclose(file_);
  }
  void operator()(const std::string& line) {
    std::lock_guard lock(mu_);
    if (log_level() >= LogLevel::kNotice) {
      std::fwrite(line.data(), 1, line.size(), stdout);
      std::fputc('\n', stdout);
      std::fflush(stdout);
    }
    if (file_) {
      std::time_t now = std::time(nullptr);
      char stamp[32];
      std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
      std::fprintf(file_, "%s dupfs: notice: %s\n", stamp, line.c_str());
      std::fflush(file_);
    }
  }

 private:
  std::mutex mu_;  // keeps notices whole on stdout and in the file; a leaf
  FILE* file_ = nullptr;
};

std::string human(double bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", bytes, units[u]);
}

// --progress: one line, rewritten twice a second, while stdout is a terminal.
class ProgressLine {
 public:
  ProgressLine(bool wanted, const chain::RestoreProgress& p) : p_(p) {
    if (!wanted || !::isatty(STDOUT_FILENO)) return;
    start_ = std::chrono::steady_clock::now();
    thread_ = std::thread([this] {
      std::unique_lock lock(mu_);
      while (!cv_.wait_for(lock, std::chrono::milliseconds(500), [&] { return stop_; })) print();
    });
  }
  ~ProgressLine() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    print();
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }

 private:
  void print() {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    uint64_t read = p_.stored_read, total = p_.stored_total;
    double rate = secs > 0 ? static_cast<double>(p_.bytes) / secs : 0;
    double stored_rate = secs > 0 ? static_cast<double>(read) / secs : 0;
    std::string eta = "--:--";
    if (stored_rate > 0 && total >= read) {
      auto left = static_cast<int64_t>(static_cast<double>(total - read) / stored_rate);
      eta = fmt::format("{}:{:02}", left / 60, left % 60);
    }
    std::fprintf(stdout, "\r%s restored, %llu files, %s/s, %.0f%% of volumes, ETA %s   ",
                 human(static_cast<double>(p_.bytes)).c_str(),
                 static_cast<unsigned long long>(p_.objects.load()), human(rate).c_str(),
                 total ? 100.0 * static_cast<double>(read) / static_cast<double>(total) : 0.0,
                 eta.c_str());
    std::fflush(stdout);
  }

  const chain::RestoreProgress& p_;
  std::chrono::steady_clock::time_point start_;
  std::mutex mu_;               // guards stop_; a leaf (print() reads atomics only)
  std::condition_variable cv_;  // with mu_: stop_ was set
  bool stop_ = false;
  std::thread thread_;
};

bool is_empty_dir(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (!d) return false;
  bool empty = true;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") {
      empty = false;
      break;
    }
  }
  ::closedir(d);
  return empty;
}

struct Opened {
  std::unique_ptr<Backend> backend;
  chain::Collection collection;
  int64_t time = 0;
  std::string archive_dir;
  // Manifests of the chain read that were in the archive dir before (not read from storage).
  std::vector<std::string> cached_manifests;
  chain::Credentials credentials;
  std::vector<chain::RestoreSet> sets;
  chain::Index prefix;
};

// Log settings, storage, the chain at the time and its volumes for the prefix.
Result<Opened> open_for_restore(const RestoreArgs& args) {
  auto level = parse_verbosity(args.verbosity);
  if (!level) return std::unexpected(level.error());
  set_log_level(*level);
  if (!args.log_file.empty() && !set_log_file(args.log_file)) {
    return error(ErrorKind::kInvalidArgument, "cannot open log file {}", args.log_file);
  }
  int64_t now = std::time(nullptr);
  int64_t time = now;
  if (!args.time.empty()) {
    auto t = parse_time_spec(args.time, now);
    if (!t) return std::unexpected(t.error());
    time = *t;
  }
  auto backend = open_storage(args.url, args.storage);
  if (!backend) return std::unexpected(backend.error());
  auto names = (*backend)->list();
  if (!names) {
    return std::unexpected(location_error(**backend, names.error()));
  }
  auto collection = chain::build_collection(*names);
  if (!collection) return std::unexpected(collection.error());
  for (const auto& w : collection->warnings) log_warning("{}", w);
  if (collection->chains.empty()) {
    return error(ErrorKind::kNotFound, "no complete duplicity backup set found at {}",
                 (*backend)->describe());
  }
  Opened o;
  chain::ArchiveOptions ao = archive_options(**backend, args.url, args.archive_dir);
  o.credentials = ao.credentials;
  o.prefix = chain::index_from_path(args.path);
  o.archive_dir = ao.archive_dir;
  if (auto chain = chain::find_chain_for_time(*collection, time); chain) {
    std::vector<std::string> manifests;
    for (const chain::BackupSet* set : (*chain)->sets_up_to(time)) {
      manifests.push_back(set->manifest_name);
    }
    o.cached_manifests = chain::cached_manifests(manifests, ao.archive_dir);
  }
  auto sets =
      chain::plan_restore(**backend, *collection, time, o.prefix, o.credentials, ao.archive_dir);
  if (!sets) return std::unexpected(sets.error());
  o.sets = std::move(*sets);
  o.backend = std::move(*backend);
  o.collection = std::move(*collection);
  o.time = time;
  return o;
}

int run_restore(const RestoreArgs& args) {
  struct stat st;
  if (::stat(args.local.c_str(), &st) == 0 && !(S_ISDIR(st.st_mode) && is_empty_dir(args.local)) &&
      !args.force) {
    return fail(Error{ErrorKind::kExists,
                      fmt::format("Restore destination directory {} already exists.\nWill not "
                                  "overwrite.",
                                  args.local)},
                kRestoreDirExists);
  }
  auto opened = open_for_restore(args);
  if (!opened) return fail(opened.error());
  chain::RestoreProgress progress;
  chain::RestoreOptions ro;
  ro.prefix = opened->prefix;
  ro.progress = &progress;
  chain::TreeWriterOptions wo;
  wo.numeric_owner = args.numeric_owner;
  wo.force = args.force;
  chain::TreeWriter writer(args.local, wo);
  chain::RestoreResult result;
  Status st_read;
  {
    ProgressLine line(args.progress, progress);
    st_read = chain::read_restore(*opened->backend, opened->credentials, opened->sets, ro, writer,
                                  result);
  }
  if (!st_read) {
    writer.discard_untrusted();
    (void)writer.finish();
    return fail(st_read.error(), hash_code(result));
  }
  Status st_write = writer.finish();
  if (result.objects == 0) {
    if (!opened->prefix.empty()) {
      return fail(
          Error{ErrorKind::kNotFound, fmt::format("{} not found in archive - no files restored.",
                                                  chain::index_to_string(opened->prefix))},
          kRestoreDirNotFound);
    }
    return fail(Error{ErrorKind::kNotFound, "No files found in archive - nothing restored."},
                kNoRestoreFiles);
  }
  if (!st_write) return fail(st_write.error());
  if (result.skipped > 0) {
    return fail(Error{ErrorKind::kCorruption,
                      fmt::format("{} object(s) could not be restored (see the messages above)",
                                  result.skipped)});
  }
  log_info("restored {} objects", result.objects);
  return 0;
}

int run_verify(const RestoreArgs& args) {
  struct stat st;
  if (::stat(args.local.c_str(), &st) != 0) {
    return fail(
        Error{ErrorKind::kNotFound, fmt::format("Verify directory {} does not exist", args.local)},
        kVerifyDirMissing);
  }
  auto opened = open_for_restore(args);
  if (!opened) return fail(opened.error());
  Notices notices(args.log_file);
  chain::RestoreProgress progress;
  chain::RestoreOptions ro;
  ro.prefix = opened->prefix;
  ro.progress = &progress;
  chain::VerifyOptions vo;
  vo.compare_data = args.compare_data;
  vo.numeric_owner = args.numeric_owner;
  chain::VerifySink sink(args.local, vo, [&](const std::string& line) { notices(line); });
  chain::RestoreResult result;
  Status st_read;
  {
    ProgressLine line(args.progress, progress);
    st_read =
        chain::read_restore(*opened->backend, opened->credentials, opened->sets, ro, sink, result);
  }
  int code = kSuccess;
  if (!st_read) {
    code = fail(st_read.error(), hash_code(result));
    // A wrong passphrase or a missing key: one line, the rest would fail the same way.
    if (st_read.error().kind == ErrorKind::kAuth) return code;
  } else {
    sink.finish();
    uint64_t n = sink.compared(), d = sink.differences();
    notices(fmt::format("Verify complete: {} {} compared, {} {} found.", n,
                        n == 1 ? "file" : "files", d, d == 1 ? "difference" : "differences"));
    if (result.skipped > 0) {
      code = fail(Error{ErrorKind::kCorruption,
                        fmt::format("{} object(s) could not be restored (see the messages above)",
                                    result.skipped)});
    } else if (d > 0) {
      code = kFailure;
    }
  }
  // Beyond duplicity (docs/actions.md): manifests taken from the local cache checked at the
  // location, the signature files the next incremental backup reads, and the files at the
  // location no restore can use fail the verify too.
  int problems = 0;
  for (const auto& e : chain::check_cached_manifests(*opened->backend, opened->cached_manifests,
                                                     opened->credentials, opened->archive_dir)) {
    ++problems;
    fail(e);
  }
  if (auto chain = chain::find_chain_for_time(opened->collection, opened->time); chain) {
    auto sigs = chain::signatures_for(opened->collection, **chain, opened->time);
    for (const auto& manifest : sigs.missing) {
      ++problems;
      fail(Error{ErrorKind::kNotFound,
                 fmt::format("backup set {} has no signature file at {} (incremental "
                             "backups and list-current-files read it)",
                             manifest, opened->backend->describe())});
    }
    for (const auto& e :
         chain::check_signature_files(*opened->backend, sigs.names, opened->credentials)) {
      ++problems;
      fail(e);
    }
  }
  for (const auto& line : chain::unusable_files(opened->collection)) {
    ++problems;
    fail(Error{ErrorKind::kCorruption, line});
  }
  if (code == kSuccess && problems > 0) code = kFailure;
  return code;
}

void add_common(CLI::App& cmd, RestoreArgs& a) {
  cmd.add_option("-t,--time,--restore-time", a.time,
                 "Restore as of this time (now, 7D, 2015/9/10, ISO 8601, epoch seconds)");
  cmd.add_option("-r,--file-to-restore,--path-to-restore", a.path,
                 "Only this file or directory (relative to the backup root)");
  cmd.add_option("--archive-dir", a.archive_dir,
                 "Where manifests are cached (default ~/.cache/dupfs/<id of URL>)");
  cmd.add_flag("--numeric-owner", a.numeric_owner,
               "Use the stored uid/gid, never map owner names (as duplicity's option)");
  cmd.add_flag("--progress", a.progress, "Show a progress line (on a terminal)");
  cmd.add_option("--log-file", a.log_file, "Append log lines to this file");
  cmd.add_option("-v,--verbosity", a.verbosity,
                 "0-9 or error, warning, notice, info, debug (default notice)");
  add_storage_options(cmd, a.storage);
}

}  // namespace

void add_restore_actions(CLI::App& app, int& exit_code) {
  // Owned by the callbacks, which the app keeps as long as it parses.
  auto restore_ptr = std::make_shared<RestoreArgs>();
  auto verify_ptr = std::make_shared<RestoreArgs>();
  RestoreArgs& restore_args = *restore_ptr;
  RestoreArgs& verify_args = *verify_ptr;
  auto* restore = app.add_subcommand(
      "restore", "Restore the backup at URL (everything, or one file or directory) into TARGET");
  restore->add_option("url", restore_args.url, "Backup location (file:///path, sftp://...)")
      ->required();
  restore->add_option("target", restore_args.local, "Where to restore (must not exist)")
      ->required();
  restore->add_flag("--force", restore_args.force, "Restore into an existing target");
  add_common(*restore, restore_args);
  restore->callback([&exit_code, restore_ptr] { exit_code = run_restore(*restore_ptr); });

  auto* verify = app.add_subcommand(
      "verify", "Check that the backup at URL reads back, optionally comparing it with LOCAL_DIR");
  verify->add_option("url", verify_args.url, "Backup location (file:///path, sftp://...)")
      ->required();
  verify->add_option("local_dir", verify_args.local, "The local tree to compare with")->required();
  verify->add_flag("--compare-data", verify_args.compare_data,
                   "Compare metadata and contents with LOCAL_DIR");
  add_common(*verify, verify_args);
  verify->callback([&exit_code, verify_ptr] { exit_code = run_verify(*verify_ptr); });
}

}  // namespace dupfs::cli

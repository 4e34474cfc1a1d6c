// duplicity's actions that look at the collection of sets and chains, or prune it:
// collection-status, list-current-files, remove-older-than, remove-all-but-n-full,
// remove-all-inc-of-but-n-full, cleanup. Sets and chains come from chain::build_collection, what
// goes from chain/format/prune.h, file lists from chain::Archive's snapshots: this file only wires
// them to the command line and prints what duplicity prints (docs/actions.md).
//
// Output follows duplicity's: the report of the action (notices and warnings at duplicity's
// levels, filtered by -v) on stdout, errors on stderr; everything also goes to --log-file.
#include <fmt/format.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/base/log.h"
#include "chain/format/collection.h"
#include "chain/format/prune.h"
#include "chain/metadata/archive_dir.h"
#include "chain/read/archive.h"
#include "cli/actions.h"
#include "cli/options.h"
#include "cli/time_spec.h"

namespace dupfs::cli {
namespace {

constexpr char kProgram[] = "dupfs";

// Options every action here takes.
struct CommonArgs {
  std::string url;
  std::string archive_dir;
  std::string log_file;
  std::string verbosity = "notice";
  chain::NamePrefixes prefixes;
  StorageArgs storage;
};

void add_common_options(CLI::App& cmd, CommonArgs& a) {
  cmd.add_option("--archive-dir", a.archive_dir,
                 "Where metadata is cached (default ~/.cache/dupfs/<id of URL>)");
  cmd.add_option("--log-file", a.log_file, "Append what is printed (and log lines) to this file");
  cmd.add_option("-v,--verbosity", a.verbosity,
                 "0-9 or error, warning, notice, info, debug (default notice)");
  cmd.add_option("--file-prefix", a.prefixes.general, "Prefix of every file name");
  cmd.add_option("--file-prefix-archive", a.prefixes.archive, "Prefix of volume names");
  cmd.add_option("--file-prefix-manifest", a.prefixes.manifest, "Prefix of manifest names");
  cmd.add_option("--file-prefix-signature", a.prefixes.signature, "Prefix of signature names");
  add_storage_options(cmd, a.storage);
}

void add_url(CLI::App& cmd, CommonArgs& a) {
  cmd.add_option("url", a.url, "Backup location (file:///path, ...)")->required();
}

// What an action prints: duplicity's messages at duplicity's levels, on stdout when -v allows
// them, and in --log-file always.
class Report {
 public:
  explicit Report(LogLevel level) : level_(level) {}
  ~Report() {
    std::fflush(stdout);
    if (log_ != nullptr) std::fclose(log_);
  }
  Report(const Report&) = delete;
  Report& operator=(const Report&) = delete;

  bool open_log(const std::string& path) {
    log_ = std::fopen(path.c_str(), "ae");
    return log_ != nullptr;
  }
  void warning(std::string_view text) { emit(LogLevel::kWarning, text, false); }
  void notice(std::string_view text) { emit(LogLevel::kNotice, text, false); }
  // Printed at every verbosity (duplicity's force_print: the status, the file list).
  void always(std::string_view text) { emit(LogLevel::kNotice, text, true); }

 private:
  void emit(LogLevel at, std::string_view text, bool force) {
    if (force || static_cast<int>(at) <= static_cast<int>(level_)) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fputc('\n', stdout);
    }
    if (log_ == nullptr) return;
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    ::localtime_r(&now, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
    const char* level = at == LogLevel::kWarning ? "warning" : "notice";
    size_t start = 0;
    while (start <= text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string_view::npos) end = text.size();
      std::fprintf(log_, "%s %s: %s: %.*s\n", stamp, kProgram, level, static_cast<int>(end - start),
                   text.data() + start);
      start = end + 1;
    }
    std::fflush(log_);
  }

  LogLevel level_;
  FILE* log_ = nullptr;
};

// What every action starts with: verbosity, log file, storage, the listing and its collection.
struct Session {
  std::unique_ptr<Report> report;
  std::unique_ptr<Backend> backend;
  chain::ArchiveDir archive_dir;
  std::vector<std::string> names;
  chain::Collection collection;
};

// `list`: also list the location and build its collection.
Result<Session> start(const CommonArgs& a, bool list = true) {
  Session s;
  auto level = parse_verbosity(a.verbosity);
  if (!level) return std::unexpected(level.error());
  set_log_level(*level);
  s.report = std::make_unique<Report>(*level);
  if (!a.log_file.empty() && (!set_log_file(a.log_file) || !s.report->open_log(a.log_file))) {
    return error(ErrorKind::kInvalidArgument, "cannot open log file {}", a.log_file);
  }
  auto backend = open_storage(a.url, a.storage);
  if (!backend) return std::unexpected(backend.error());
  s.backend = std::move(*backend);
  s.archive_dir = chain::ArchiveDir(
      a.archive_dir.empty() ? default_archive_dir(a.url) : a.archive_dir, a.prefixes);
  if (!list) return s;
  auto names = s.backend->list();
  if (names) {
    s.names = std::move(*names);
  } else if (names.error().kind != ErrorKind::kNotFound) {
    // duplicity treats a missing location as an empty one.
    return std::unexpected(location_error(*s.backend, names.error()));
  }
  auto collection = chain::build_collection(s.names, a.prefixes);
  if (!collection) return std::unexpected(collection.error());
  s.collection = std::move(*collection);
  return s;
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += items[i];
  }
  return out;
}

// duplicity's str(BackupSet): "[manifest, volume, ...]".
std::string describe_set(const chain::BackupSet& s) {
  std::vector<std::string> files;
  if (s.complete()) files.push_back(s.manifest_name);
  for (const auto& [n, name] : s.volumes) files.push_back(name);
  return "[" + join(files, ", ") + "]";
}

// CollectionsStatus.warn() (and the warning of set_matched_chain_pair before it).
void print_collection_warnings(const chain::Collection& c, Report& report) {
  for (const auto& w : c.warnings) {
    if (w.starts_with("Warning, discarding last backup set")) {
      report.warning("Warning, discarding last backup set, because of missing signature file.");
    }
  }
  if (!c.orphaned_sigs.empty()) {
    report.warning(std::string(c.orphaned_sigs.size() == 1
                                   ? "Warning, found the following remote orphaned signature file:"
                                   : "Warning, found the following remote orphaned signature "
                                     "files:") +
                   "\n" + join(c.orphaned_sigs, "\n"));
  }
  if (!c.sig_chains.empty() && !c.matched_sig_chain) {
    report.warning("Warning, found signatures but no corresponding backup files");
  }
  if (!c.incomplete.empty()) {
    report.warning("Warning, found incomplete backup sets, probably left from aborted session");
  }
  if (!c.orphaned.empty()) {
    std::vector<std::string> sets;
    for (const auto& s : c.orphaned) sets.push_back(describe_set(s));
    report.warning(std::string(c.orphaned.size() == 1
                                   ? "Warning, found the following orphaned backup file:"
                                   : "Warning, found the following orphaned backup files:") +
                   "\n" + join(sets, "\n"));
  }
}

void print_last_full(const chain::Collection& c, Report& report) {
  int64_t last_full = chain::nth_last_full_time(c, 1);
  report.notice(last_full > 0 ? "Last full backup date: " + pretty_time(last_full)
                              : "Last full backup date: none");
}

// str(BackupChain).
std::string describe_chain(const chain::Collection& c, const chain::BackupChain& chain) {
  std::vector<std::string> l;
  size_t volumes = 0;
  for (const auto* s : chain.sets()) volumes += s->volumes.size();
  l.push_back("-------------------------");
  l.push_back("Chain start time: " + pretty_time(chain.start_time()));
  l.push_back("Chain end time: " + pretty_time(chain::duplicity_end_time(c, chain)));
  l.push_back(fmt::format("Number of contained backup sets: {}", chain.incs.size() + 1));
  l.push_back(fmt::format("Total number of contained volumes: {}", volumes));
  l.push_back(
      fmt::format("{:>20}   {:>30}   {:>15}", "Type of backup set:", "Time:", "Num volumes:"));
  for (const auto* s : chain.sets()) {
    l.push_back(fmt::format("{:>20}   {:>30}   {:>15}", s->is_full() ? "Full" : "Incremental",
                            pretty_time(s->end_time), s->volumes.size()));
  }
  l.push_back("-------------------------");
  return join(l, "\n");
}

// str(CollectionsStatus).
std::string describe_collection(const chain::Collection& c, const Backend& backend,
                                const std::string& archive_dir) {
  std::vector<std::string> l = {"Collection Status", "-----------------",
                                "Connecting with backend: " + backend.describe(),
                                "Archive dir: " + archive_dir};
  const chain::BackupChain* primary = c.matched_sig_chain ? c.latest_chain() : nullptr;
  std::vector<const chain::BackupChain*> secondary;
  for (const auto& chain : c.chains) {
    if (&chain != primary) secondary.push_back(&chain);
  }
  l.push_back(fmt::format("\nFound {} secondary backup chain{}.", secondary.size(),
                          secondary.size() == 1 ? "" : "s"));
  for (size_t i = 0; i < secondary.size(); ++i) {
    l.push_back(fmt::format("Secondary chain {} of {}:", i + 1, secondary.size()));
    l.push_back(describe_chain(c, *secondary[i]));
    l.push_back("");
  }
  if (primary != nullptr) {
    l.push_back("\nFound primary backup chain with matching signature chain:");
    l.push_back(describe_chain(c, *primary));
  } else {
    l.push_back("No backup chains with active signatures found");
  }
  if (!c.orphaned.empty() || !c.incomplete.empty()) {
    l.push_back(fmt::format("Also found {} backup set{} not part of any chain,", c.orphaned.size(),
                            c.orphaned.size() == 1 ? "" : "s"));
    l.push_back(fmt::format("and {} incomplete backup set{}.", c.incomplete.size(),
                            c.incomplete.size() == 1 ? "" : "s"));
    l.push_back("These may be deleted by running duplicity with the \"cleanup\" command.");
  } else {
    l.push_back("No orphaned or incomplete backup sets found.");
  }
  return join(l, "\n");
}

// ---- collection-status ----

int run_collection_status(const CommonArgs& a) {
  auto s = start(a);
  if (!s) return report_error(kProgram, s.error());
  print_collection_warnings(s->collection, *s->report);
  print_last_full(s->collection, *s->report);
  s->report->always(describe_collection(s->collection, *s->backend, s->archive_dir.path()));
  return 0;
}

// ---- list-current-files ----

struct ListArgs {
  CommonArgs common;
  std::string time;
};

// The set list-current-files shows for time t, as duplicity picks it: the signature chain for t
// (get_signature_chain_at_time) and its files up to t; without signature files, the backup
// chain for t (dupfs reads such sets from their volumes; duplicity refuses).
Result<int64_t> listed_set_time(const chain::Collection& c, int64_t t) {
  if (auto i = chain::sig_chain_for_time(c, t)) {
    const chain::SignatureChain& sc = c.sig_chains[*i];
    bool covered = false;
    for (const auto& other : c.sig_chains) {
      if (other.start_time <= t) covered = true;
    }
    if (!covered) {
      log_warning(
          "No signature chain for the requested time. Using oldest available chain, starting "
          "at time {}.",
          pretty_time(sc.start_time));
    }
    int64_t end = sc.start_time;
    for (int64_t e : sc.inc_end_times) {
      if (e <= t) end = e;
    }
    for (const auto& chain : c.chains) {
      if (chain.full.end_time == sc.start_time) return chain.sets_up_to(end).back()->end_time;
    }
  }
  auto chain = chain::find_chain_for_time(c, t);
  if (!chain) return std::unexpected(chain.error());
  return (*chain)->sets_up_to(t).back()->end_time;
}

int run_list_current_files(const ListArgs& a) {
  const int64_t now = std::time(nullptr);
  int64_t t = now;
  if (!a.time.empty()) {
    auto parsed = parse_time_spec(a.time, now);
    if (!parsed) return report_error(kProgram, parsed.error());
    if (*parsed != 0) t = *parsed;  // duplicity: `restore_time or curtime`
  }
  // Archive::open lists the location and fails when it holds no complete set.
  auto s = start(a.common, /*list=*/false);
  if (!s) return report_error(kProgram, s.error());
  chain::ArchiveOptions options = archive_options(*s->backend, a.common.url, s->archive_dir.path());
  options.prefixes = a.common.prefixes;
  auto archive =
      chain::Archive::open(std::shared_ptr<Backend>(std::move(s->backend)), std::move(options));
  if (!archive) return report_error(kProgram, archive.error());
  auto wanted = listed_set_time((*archive)->collection(), t);
  if (!wanted) return report_error(kProgram, wanted.error());
  std::optional<size_t> index;
  for (size_t i = 0; i < (*archive)->snapshot_count(); ++i) {
    if ((*archive)->snapshot_time(i) == *wanted) index = i;
  }
  if (!index) {
    return report_error(
        kProgram, Error{ErrorKind::kCorruption,
                        "backup set " + chain::format_name_time(*wanted) + " could not be read"});
  }
  auto snapshot = (*archive)->snapshot(*index);
  if (!snapshot) return report_error(kProgram, snapshot.error());
  const chain::Snapshot& tree = **snapshot;
  // Pre-order, children in bytewise order: the order of duplicity's signature files.
  std::vector<std::pair<uint32_t, std::string>> stack{{chain::Snapshot::kRoot, "."}};
  while (!stack.empty()) {
    auto [id, path] = std::move(stack.back());
    stack.pop_back();
    const chain::Node& node = tree.node(id);
    s->report->always(pretty_time(node.mtime) + " " + path);
    for (auto child = node.children.rbegin(); child != node.children.rend(); ++child) {
      const std::string& name = tree.node(*child).name;
      stack.emplace_back(*child, id == chain::Snapshot::kRoot ? name : path + "/" + name);
    }
  }
  return 0;
}

// ---- remove-older-than, remove-all-but-n-full, remove-all-inc-of-but-n-full, cleanup ----

// --force deletes take the archive dir's lock first (ArchiveLock, as dupfs-backup does: a
// cleanup running beside a backup would delete its volumes as an incomplete set). nullopt when
// locked or not forced, else the exit code.
std::optional<int> lock_if_forced(chain::ArchiveLock& lock, bool force,
                                  const chain::ArchiveDir& archive_dir) {
  if (!force) return std::nullopt;
  auto st = lock.acquire(archive_dir, kProgram);
  if (st) return std::nullopt;
  return report_error(kProgram, st.error(),
                      st.error().kind == ErrorKind::kExists ? kUserError : kFailure);
}

// Deletes `names` in order; the first failure stops (names are ordered so that what is left
// is consistent). A file already gone is not a failure.
Status remove_all(Backend& backend, const std::vector<std::string>& names) {
  for (const auto& name : names) {
    if (auto st = backend.remove(name); !st && st.error().kind != ErrorKind::kNotFound) {
      return error(st.error().kind, "cannot delete {} from {}: {}", name, backend.describe(),
                   st.error().message);
    }
    log_info("deleted {}", name);
  }
  return {};
}

struct RemoveArgs {
  CommonArgs common;
  std::string time;   // remove-older-than
  std::string count;  // remove-all-but-n-full, remove-all-inc-of-but-n-full
  bool force = false;
};

enum class RemoveKind { kOlderThan, kAllButNFull, kAllIncOfButNFull };

// What remove-* and cleanup do first, as duplicity: open the location, take the archive dir's
// lock when forced, print the collection's warnings and the last full backup's date. The exit
// code when they cannot go on.
std::expected<Session, int> start_removal(const RemoveArgs& a, chain::ArchiveLock& lock) {
  auto s = start(a.common);
  if (!s) return std::unexpected(report_error(kProgram, s.error()));
  if (auto code = lock_if_forced(lock, a.force, s->archive_dir)) return std::unexpected(*code);
  print_collection_warnings(s->collection, *s->report);
  print_last_full(s->collection, *s->report);
  return std::move(*s);
}

// dup_main.remove_old (after remove_all_but_n_full for the two count actions).
int run_remove(const RemoveArgs& a, RemoveKind kind, const char* action) {
  const int64_t now = std::time(nullptr);
  int64_t t = 0;
  int keep = 0;
  if (kind == RemoveKind::kOlderThan) {
    auto parsed = parse_time_spec(a.time, now);
    if (!parsed) return report_error(kProgram, parsed.error());
    t = *parsed;
  } else {
    size_t used = 0;
    try {
      keep = std::stoi(a.count, &used);
    } catch (...) {
      used = 0;
    }
    if (used == 0 || used != a.count.size()) {
      return report_error(
          kProgram, Error{ErrorKind::kInvalidArgument,
                          std::string(action) + ": count must be a number, not '" + a.count + "'"});
    }
    if (keep <= 0) {
      return report_error(
          kProgram, Error{ErrorKind::kInvalidArgument, std::string(action) + " count must be > 0"});
    }
  }
  chain::ArchiveLock lock;
  auto s = start_removal(a, lock);
  if (!s) return s.error();
  const chain::Collection& c = s->collection;
  Report& report = *s->report;
  if (kind != RemoveKind::kOlderThan) t = chain::nth_last_full_time(c, keep);
  const auto mode = kind == RemoveKind::kAllIncOfButNFull ? chain::PruneMode::kIncrementalsOnly
                                                          : chain::PruneMode::kWholeChains;
  const chain::PrunePlan plan = chain::plan_remove_older_than(c, t, mode);

  if (!plan.required.empty()) {
    std::vector<std::string> times;
    for (const auto* set : plan.required) times.push_back(pretty_time(set->end_time));
    report.warning("There are backup set(s) at time(s):\n" + join(times, "\n") +
                   "\nWhich can't be deleted because newer sets depend on them.");
  }
  if (plan.newest_chain_older) {
    report.warning(
        "Current active backup chain is older than specified time.  However, it will not be "
        "deleted.  To remove all your backups, manually purge the repository.");
  }
  if (plan.chains.empty()) {
    report.notice("No old backup sets found, nothing deleted.");
    return 0;
  }
  std::vector<std::string> chain_times;
  for (const auto* chain : plan.chains) chain_times.push_back(pretty_time(chain->end_time()));
  if (!a.force) {
    report.notice(std::string(plan.chains.size() == 1
                                  ? "Found old backup chain at the following time:"
                                  : "Found old backup chains at the following times:") +
                  "\n" + join(chain_times, "\n") + "\n" +
                  "Rerun command with --force option to actually delete.");
    return 0;
  }
  report.notice(std::string(plan.chains.size() == 1 ? "Deleting backup chain at time:"
                                                    : "Deleting backup chains at times:") +
                "\n" + join(chain_times, "\n"));
  for (const auto& step : plan.steps) {
    const char* what = nullptr;
    if (mode == chain::PruneMode::kIncrementalsOnly) {
      what = step.signatures ? "Deleting any incremental signature chain rooted at "
                             : "Deleting any incremental backup chain rooted at ";
    } else {
      what = step.signatures ? "Deleting complete signature chain "
                             : "Deleting complete backup chain ";
    }
    report.notice(what + pretty_time(step.end_time));
    if (auto st = remove_all(*s->backend, step.names); !st) {
      return report_error(kProgram, st.error());
    }
  }
  s->archive_dir.remove(chain::cache_copies(s->archive_dir.list(), plan.removed_sets,
                                            plan.removed_sigs, a.common.prefixes));
  return 0;
}

// dup_main.cleanup.
int run_cleanup(const RemoveArgs& a) {
  chain::ArchiveLock lock;
  auto s = start_removal(a, lock);
  if (!s) return s.error();
  const chain::Collection& c = s->collection;
  Report& report = *s->report;
  const chain::CleanupPlan plan = chain::plan_cleanup(c);
  // Signature files the local cache holds outside any of its signature chains (duplicity's
  // local orphaned signatures).
  const std::vector<std::string> cache_names = s->archive_dir.list();
  std::vector<std::string> local_orphans;
  if (auto local = chain::build_collection(cache_names, a.common.prefixes)) {
    local_orphans = local->orphaned_sigs;
  }
  std::vector<std::string> listed = local_orphans;
  listed.insert(listed.end(), plan.names.begin(), plan.names.end());
  if (listed.empty()) {
    report.warning("No extraneous files found, nothing deleted in cleanup.");
    return 0;
  }
  if (!a.force) {
    report.notice(std::string(listed.size() == 1 ? "Found the following file to delete:"
                                                 : "Found the following files to delete:") +
                  "\n" + join(listed, "\n") + "\n" +
                  "Run dupfs again with the --force option to actually delete.");
    return 0;
  }
  report.notice(std::string(listed.size() == 1 ? "Deleting this file from backend:"
                                               : "Deleting these files from backend:") +
                "\n" + join(listed, "\n"));
  if (auto st = remove_all(*s->backend, plan.names); !st) return report_error(kProgram, st.error());
  std::vector<std::string> copies =
      chain::cache_copies(cache_names, plan.removed_sets, plan.removed_sigs, a.common.prefixes);
  copies.insert(copies.end(), local_orphans.begin(), local_orphans.end());
  s->archive_dir.remove(copies);
  return 0;
}

}  // namespace

void add_status_actions(CLI::App& app, int& exit_code) {
  {
    auto args = std::make_shared<CommonArgs>();
    auto* cmd = app.add_subcommand(
        "collection-status",
        "Show the backup chains and sets at URL, and incomplete or orphaned sets (no passphrase "
        "needed)");
    add_url(*cmd, *args);
    add_common_options(*cmd, *args);
    cmd->callback([args, &exit_code] { exit_code = run_collection_status(*args); });
  }
  {
    auto args = std::make_shared<ListArgs>();
    auto* cmd = app.add_subcommand("list-current-files",
                                   "List the files of the backup at --time (default: the newest)");
    add_url(*cmd, args->common);
    cmd->add_option("-t,--time,--restore-time", args->time,
                    "A time as duplicity takes it: now, 7D, 2015-09-10, 2002-08-17T16:17:01Z, ...");
    add_common_options(*cmd, args->common);
    cmd->callback([args, &exit_code] { exit_code = run_list_current_files(*args); });
  }
  struct RemoveAction {
    const char* name;
    RemoveKind kind;
    const char* help;
  };
  for (const RemoveAction& action : {
           RemoveAction{"remove-older-than", RemoveKind::kOlderThan,
                        "Delete the backup chains that ended before TIME (never the newest); "
                        "without --force only list them"},
           RemoveAction{"remove-all-but-n-full", RemoveKind::kAllButNFull,
                        "Delete the backup chains older than the N newest full backups; without "
                        "--force only list them"},
           RemoveAction{"remove-all-inc-of-but-n-full", RemoveKind::kAllIncOfButNFull,
                        "Delete the incrementals of chains older than the N newest full backups; "
                        "without --force only list them"},
       }) {
    auto args = std::make_shared<RemoveArgs>();
    auto* cmd = app.add_subcommand(action.name, action.help);
    if (action.kind == RemoveKind::kOlderThan) {
      cmd->add_option("time", args->time, "now, 7D, 1M, 2W3D, 2015-09-10, epoch seconds, ...")
          ->required();
    } else {
      cmd->add_option("count", args->count, "How many full backups (chains) to keep")->required();
    }
    add_url(*cmd, args->common);
    cmd->add_flag("--force", args->force, "Delete (otherwise only list what would go)");
    add_common_options(*cmd, args->common);
    cmd->callback([args, kind = action.kind, name = action.name, &exit_code] {
      exit_code = run_remove(*args, kind, name);
    });
  }
  {
    auto args = std::make_shared<RemoveArgs>();
    auto* cmd = app.add_subcommand(
        "cleanup",
        "Delete incomplete and orphaned sets and orphaned signature files; without --force only "
        "list them");
    add_url(*cmd, args->common);
    cmd->add_flag("--force", args->force, "Delete (otherwise only list what would go)");
    add_common_options(*cmd, args->common);
    cmd->callback([args, &exit_code] { exit_code = run_cleanup(*args); });
  }
}

}  // namespace dupfs::cli

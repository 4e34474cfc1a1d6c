// dupfs: browse and restore duplicity backups.
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "backends/base/log.h"
#include "chain/read/archive.h"
#include "cli/actions.h"
#include "cli/options.h"
#include "cli/snapshot_tree.h"
#include "fs/mount.h"

namespace dupfs::cli {
namespace {

int report(const Error& e) { return report_error("dupfs", e); }

struct MountArgs {
  std::string url;
  std::string mountpoint;
  bool foreground = false;
  bool debug = false;
  std::vector<std::string> fuse_options;
  std::string archive_dir;
  std::string cache_size = "512M";
  std::string log_file;
  int verbosity = 2;
  bool numeric_owner = false;
  bool no_seek_index = false;
  StorageArgs storage;
};

int run_mount(const MountArgs& args) {
  // Decoded blocks (256 KiB) and storage pieces (1 MiB) are mmapped and returned to the system
  // when freed. glibc would otherwise raise its mmap threshold after the first such free and
  // serve them from per-thread arenas, where they fragment: 32 readers on a 4 MiB cache then
  // peaked at 155 MiB RSS instead of ~70 (tests/integration/load_test.cc).
  ::mallopt(M_MMAP_THRESHOLD, 128 << 10);
  set_log_level(static_cast<LogLevel>(std::clamp(args.verbosity, 0, 4)));
  if (!args.log_file.empty() && !set_log_file(args.log_file)) {
    return report(Error{ErrorKind::kInvalidArgument, "cannot open log file " + args.log_file});
  }
  auto cache_size = parse_size(args.cache_size);
  if (!cache_size) return report(cache_size.error());
  auto backend = open_storage(args.url, args.storage);
  if (!backend) return report(backend.error());
  if (auto st = fs::check_mountpoint(args.mountpoint); !st) return report(st.error());

  chain::ArchiveOptions options = archive_options(**backend, args.url, args.archive_dir);
  options.cache_size = *cache_size;
  options.numeric_owner = args.numeric_owner;
  options.store.seek_index = !args.no_seek_index;
  // Kept here too: the mount tells it when it has daemonized (see on_mounted).
  std::shared_ptr<Backend> storage = std::move(*backend);
  auto archive = chain::Archive::open(storage, std::move(options));
  if (!archive) return report(archive.error());

  SnapshotTree tree(**archive);
  fs::MountOptions mo;
  mo.mountpoint = args.mountpoint;
  mo.foreground = args.foreground;
  mo.debug = args.debug;
  for (const auto& group : args.fuse_options) {
    size_t start = 0;
    while (start <= group.size()) {
      size_t comma = group.find(',', start);
      if (comma == std::string::npos) comma = group.size();
      if (comma > start) mo.fuse_options.push_back(group.substr(start, comma - start));
      start = comma + 1;
    }
  }
  size_t count = (*archive)->snapshot_count();
  mo.on_mounted = [count, &args, storage] {
    // Without -f, fs::serve has just daemonized (fork): threads the storage started while the
    // archive was opened stayed in the parent.
    storage->after_fork();
    log_info("mounted {} snapshot(s) on {}", count, args.mountpoint);
  };
  if (auto st = fs::serve(tree, mo); !st) return report(st.error());
  return 0;
}

}  // namespace
}  // namespace dupfs::cli

int main(int argc, char** argv) {
  dupfs::cli::protect_process_memory();
  using dupfs::cli::MountArgs;
  CLI::App app{"dupfs: browse, restore and verify duplicity backups"};
  app.require_subcommand(1);
  MountArgs m;
  auto* mount = app.add_subcommand("mount", "Mount the backups at URL read-only on MOUNTPOINT");
  mount->add_option("url", m.url, "Backup location (file:///path)")->required();
  mount->add_option("mountpoint", m.mountpoint, "An empty directory")->required();
  mount->add_flag("-f,--foreground", m.foreground, "Stay in the foreground");
  mount->add_flag("-d,--debug", m.debug, "Print FUSE requests (implies nothing else)");
  mount->add_option("-o", m.fuse_options, "FUSE mount options (comma-separated)");
  mount->add_option("--archive-dir", m.archive_dir,
                    "Where metadata is cached (default ~/.cache/dupfs/<id of URL>)");
  mount->add_option("--cache-size", m.cache_size, "Byte budget for decoded data (default 512M)");
  mount->add_option("--log-file", m.log_file, "Append log lines to this file");
  mount->add_flag("--numeric-owner", m.numeric_owner,
                  "Show stored uid/gid instead of mapping owner names (as duplicity's option)");
  mount->add_flag("--no-seek-index", m.no_seek_index,
                  "Neither record, keep nor use seek indexes: every read decodes its volume "
                  "from the start (docs/seek.md)");
  add_storage_options(*mount, m.storage);
  mount->add_option("-v,--verbosity", m.verbosity, "0 errors .. 4 debug (default 2)");
  int exit_code = dupfs::cli::kCommandLine;  // until an action's callback sets it
  dupfs::cli::add_status_actions(app, exit_code);
  dupfs::cli::add_restore_actions(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return dupfs::cli::report_usage_error("dupfs", e);
  }
  if (mount->parsed()) return dupfs::cli::run_mount(m);
  return exit_code;
}

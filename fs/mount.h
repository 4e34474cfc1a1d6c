// Serving a Tree as a read-only FUSE filesystem (libfuse3 low-level API, multithreaded).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "backends/base/error.h"
#include "fs/tree.h"

namespace dupfs::fs {

struct MountOptions {
  std::string mountpoint;
  bool foreground = false;
  bool debug = false;
  std::vector<std::string> fuse_options;  // from -o, comma-separated items
  std::string fsname = "dupfs";
  // Called after the filesystem is mounted (and, without foreground, after daemonizing: in the
  // daemon, before any request is served and so before any other of its threads runs; the
  // place for Backend::after_fork).
  std::function<void()> on_mounted;
};

// Checks that the mountpoint is an empty directory. kInvalidArgument otherwise.
Status check_mountpoint(const std::string& path);

// Mounts and serves until unmounted (fusermount3 -u, umount) or SIGINT/SIGTERM/SIGHUP, then
// unmounts. Returns when the filesystem is gone.
Status serve(Tree& tree, const MountOptions& options);

}  // namespace dupfs::fs

// The FUSE low-level operation table: one small function per operation, filled in one place.
#pragma once

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <atomic>

#include "fs/tree.h"

namespace dupfs::fs {

// The userdata of a FUSE session: the tree served and what the kernel turned out to support.
struct Session {
  Tree* tree = nullptr;
  std::atomic<bool> no_open{false};     // open/release may be skipped (ENOSYS from open)
  std::atomic<bool> no_opendir{false};  // likewise for directories
  // Requests answered, by kind (logged when the mount ends: each is a round trip the kernel's
  // caches did not spare).
  std::atomic<uint64_t> lookups{0}, getattrs{0}, reads{0}, readdirs{0}, readlinks{0};
};

// Operations for a read-only Tree; the session's userdata must be a Session*.
const fuse_lowlevel_ops& operations();

}  // namespace dupfs::fs

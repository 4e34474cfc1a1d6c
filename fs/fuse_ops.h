// The FUSE low-level operation table: one small function per operation, filled in one place.
#pragma once

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "fs/tree.h"

namespace dupfs::fs {

// The userdata of a FUSE session: the tree served and what the kernel turned out to support.
struct Session {
  Tree* tree = nullptr;
  fuse_session* se = nullptr;           // for pushing data into the kernel's page cache
  std::atomic<bool> push{true};         // false once the kernel refused a push for good
  std::atomic<bool> no_open{false};     // open/release may be skipped (ENOSYS from open)
  std::atomic<bool> no_opendir{false};  // likewise for directories
  // Requests answered, by kind (logged when the mount ends: each is a round trip the kernel's
  // caches did not spare).
  std::atomic<uint64_t> lookups{0}, getattrs{0}, reads{0}, readdirs{0}, readlinks{0};
  std::atomic<uint64_t> pushes{0};  // files put into the page cache without a request

  // One worker pushes at a time; the others skip pushing. A push can wait for a page lock the
  // kernel holds for a READ of that file, which another worker must be free to answer: with
  // every worker pushing, libfuse would start thread after thread (hundreds under load).
  // Only ever try_lock'ed, so nobody waits for it. Taken with no other lock held; under it the
  // Tree's *_if_ready calls take the read path's locks (a Snapshot's, a Volume's, the
  // BlockCache's), none of them held across the push into the kernel.
  std::mutex push_mu;
  std::vector<char> push_buffer;  // guarded by push_mu
  // Files pushed once are not pushed again (a reader who gets a READ for them anyway is
  // answered as usual). Guarded by push_mu; forgotten wholesale when full.
  std::unordered_set<uint64_t> pushed;
  static constexpr size_t kMaxPushed = 1 << 18;
};

// Operations for a read-only Tree; the session's userdata must be a Session*.
const fuse_lowlevel_ops& operations();

}  // namespace dupfs::fs

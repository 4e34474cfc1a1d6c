// The FUSE low-level operation table: one small function per operation, filled in one place.
#pragma once

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <unordered_set>

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

  // Files pushed once are not pushed again (a reader who gets a READ for them anyway is
  // answered as usual). Bounded: forgotten wholesale when full.
  bool pushed(uint64_t ino) {
    std::lock_guard lock(pushed_mu);
    return pushed_set.contains(ino);
  }
  void mark_pushed(uint64_t ino) {
    std::lock_guard lock(pushed_mu);
    if (pushed_set.size() >= kMaxPushed) pushed_set.clear();
    pushed_set.insert(ino);
  }
  static constexpr size_t kMaxPushed = 1 << 18;
  std::mutex pushed_mu;
  std::unordered_set<uint64_t> pushed_set;
};

// Operations for a read-only Tree; the session's userdata must be a Session*.
const fuse_lowlevel_ops& operations();

}  // namespace dupfs::fs

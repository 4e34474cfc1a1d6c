// Sequential reads in large pieces, for network storage (S3, WebDAV, FTP). The read path asks
// for a volume 1 MiB at a time; each request costs a round trip and the server's work (for FTP a
// new connection: a stopped transfer closes it). So a read that misses fetches a window of at
// least `window` bytes from where it starts, returns what was asked, and keeps the rest for the
// reads that follow it.
// Several readers of one object (the decoder and the SHA1 check of a volume) each have their
// own window. A window is dropped once read to its end; at most `max_windows` are kept (the oldest
// goes); written or removed objects are forgotten. Thread-safe: the lock is a leaf, never held
// while fetching.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>

#include "backends/base/error.h"

namespace dupfs {

class ReadWindows {
 public:
  // Bytes [offset, offset + length) of the object, fewer only at its end.
  using Fetch = std::function<Result<std::string>(uint64_t offset, size_t length)>;

  ReadWindows(size_t window, size_t max_windows) : window_(window), max_windows_(max_windows) {}

  // Backend::read_range of `name` through the windows; `fetch` reads the storage.
  Result<std::string> read(const std::string& name, uint64_t offset, size_t length,
                           const Fetch& fetch) const;
  void forget(const std::string& name) const;

 private:
  struct Window {
    std::string name;
    uint64_t offset;
    std::string data;
    bool at_end;  // the object ends where `data` does
  };
  const size_t window_;
  const size_t max_windows_;
  mutable std::mutex mu_;               // guards windows_; a leaf
  mutable std::deque<Window> windows_;  // the newest last
};

}  // namespace dupfs

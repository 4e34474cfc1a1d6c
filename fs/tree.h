// What the FUSE layer serves: an immutable tree of inodes. fs/ knows nothing of duplicity; cli/
// adapts the snapshots of an archive to this interface. Every method may be called from many
// threads at once and may block (decoding); errors are turned into errno by to_errno() only.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/base/error.h"

namespace dupfs::fs {

struct Attr {
  uint64_t ino = 0;
  uint32_t mode = 0;  // type bits and all 12 permission bits
  uint32_t nlink = 1;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  int64_t mtime = 0;
  uint64_t rdev = 0;
};

// Receives one directory entry; returns false when the reply buffer is full (the entry was not
// taken and will be offered again from `offset` next time).
using DirFiller =
    std::function<bool(std::string_view name, uint64_t ino, uint32_t mode, uint64_t next_offset)>;

struct FsStats {
  uint64_t bytes = 0;  // total size of the regular files, as far as known
  uint64_t files = 0;  // number of inodes
};

class Tree {
 public:
  static constexpr uint64_t kRootIno = 1;
  virtual ~Tree() = default;

  virtual Result<Attr> lookup(uint64_t parent, std::string_view name) = 0;
  virtual Result<Attr> getattr(uint64_t ino) = 0;
  // The attributes when they are at hand without waiting (for readdirplus); nullopt otherwise.
  virtual std::optional<Attr> attr_if_ready(uint64_t ino) = 0;
  // Entries of a directory from position `offset` (0 = the first entry after "." and "..").
  virtual Status readdir(uint64_t ino, uint64_t offset, const DirFiller& add) = 0;
  virtual Result<std::string> readlink(uint64_t ino) = 0;
  // Up to `size` bytes at `offset`; fewer only at the end of the file.
  virtual Result<size_t> read(uint64_t ino, uint64_t offset, char* buf, size_t size) = 0;
  // Like read, when the bytes are at hand without waiting; nullopt otherwise (and on errors,
  // which read reports).
  virtual std::optional<size_t> read_if_ready(uint64_t ino, uint64_t offset, char* buf,
                                              size_t size) = 0;
  // The regular files a reader of `ino` is likely to read next: up to `max` of those that
  // follow it in its directory, in order.
  virtual std::vector<uint64_t> files_after(uint64_t ino, size_t max) = 0;
  virtual FsStats stats() = 0;
};

// The single place where an Error becomes an errno.
int to_errno(const Error& e);

}  // namespace dupfs::fs

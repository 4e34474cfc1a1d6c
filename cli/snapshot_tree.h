// Presents an Archive's snapshots as an fs::Tree:
//   /snapshots/<YYYY-MM-DDTHH:MM:SSZ>/...   one directory per browsable backup set
//   /snapshots/latest                       symlink to the newest
// Inode numbers: 1 root, 2 /snapshots, 3 latest; node n of snapshot i is ((i + 1) << 32) | n.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "chain/read/archive.h"
#include "fs/tree.h"

namespace dupfs::cli {

class SnapshotTree : public fs::Tree {
 public:
  explicit SnapshotTree(chain::Archive& archive);

  Result<fs::Attr> lookup(uint64_t parent, std::string_view name) override;
  Result<fs::Attr> getattr(uint64_t ino) override;
  std::optional<fs::Attr> attr_if_ready(uint64_t ino) override;
  Status readdir(uint64_t ino, uint64_t offset, const fs::DirFiller& add) override;
  Result<std::string> readlink(uint64_t ino) override;
  Result<size_t> read(uint64_t ino, uint64_t offset, char* buf, size_t size) override;
  std::optional<size_t> read_if_ready(uint64_t ino, uint64_t offset, char* buf,
                                      size_t size) override;
  std::vector<uint64_t> files_after(uint64_t ino, size_t max) override;
  fs::FsStats stats() override;

 private:
  static constexpr uint64_t kSnapshotsIno = 2;
  static constexpr uint64_t kLatestIno = 3;
  struct Located {
    chain::Snapshot* snapshot = nullptr;
    uint32_t node = 0;
  };
  Result<Located> locate(uint64_t ino) const;
  // The node of `ino` when its snapshot is built already (never builds); nullopt otherwise.
  struct Built {
    std::shared_ptr<chain::Snapshot> snapshot;
    size_t index = 0;  // of the snapshot
    uint32_t node = 0;
  };
  std::optional<Built> built_node(uint64_t ino) const;
  static uint64_t ino_of(size_t snapshot, uint32_t node) {
    return (static_cast<uint64_t>(snapshot + 1) << 32) | node;
  }
  Result<fs::Attr> node_attr(size_t snapshot, uint32_t node);
  // `wait` false: kWouldBlock instead of waiting for a regular file's size (attr_if_ready
  // answers nullopt then; were it ever replied, it would be EAGAIN, not a false ENOENT).
  Result<fs::Attr> node_attr(size_t snapshot, chain::Snapshot& snap, uint32_t node, bool wait);
  fs::Attr dir_attr(uint64_t ino, uint32_t mode) const;

  chain::Archive& archive_;
  std::vector<std::string> names_;  // snapshot directory names, oldest first
  uint32_t uid_;
  uint32_t gid_;
};

}  // namespace dupfs::cli

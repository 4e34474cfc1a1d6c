// The content of one regular file as of one backup set, without reconstructing it: either a
// whole copy (snapshot pieces in volumes) or a librsync delta applied to the previous version.
// A delta is parsed once into its commands (docs/format.md §3.6): each output range is either
// literal bytes of the delta or a range of the basis, so any byte range of a patched file is
// read straight from decoded volume blocks, down the chain of versions, and the size of a
// patched file is the sum of its command lengths. Immutable and thread-safe once built.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "chain/format/delta.h"
#include "chain/read/volume_store.h"

namespace dupfs::chain {

// Bytes spread over pieces of decoded volume streams (chunks of a multivol entry).
struct Stream {
  struct Piece {
    uint32_t volume;
    uint64_t offset;  // in the volume's decoded stream
    uint64_t length;
    uint64_t start;  // where the piece starts in the stream
  };
  std::vector<Piece> pieces;
  uint64_t size = 0;

  void append(uint32_t volume, uint64_t offset, uint64_t length);
  // Up to `length` bytes at `offset`; fewer only at the end. `wait` as in VolumeStore::read.
  Result<size_t> read(VolumeStore& store, uint64_t offset, char* out, size_t length,
                      bool wait = true) const;
};

class FileVersion {
 public:
  static std::shared_ptr<const FileVersion> whole(Stream data);
  static Result<std::shared_ptr<const FileVersion>> patched(
      VolumeStore& store, Stream delta, std::shared_ptr<const FileVersion> basis);

  uint64_t size() const { return size_; }
  size_t depth() const { return depth_; }
  Result<size_t> read(VolumeStore& store, uint64_t offset, char* out, size_t length,
                      bool wait = true) const;

 private:
  Stream data_;  // the content, or the delta
  std::vector<DeltaCommand> commands_;
  std::shared_ptr<const FileVersion> basis_;  // null for a whole copy
  uint64_t size_ = 0;
  size_t depth_ = 0;
};

}  // namespace dupfs::chain

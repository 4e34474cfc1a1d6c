// Decoded data, charged in bytes against one budget shared by every reader of a mount.
// Keys are (volume id, block number) in a volume's decoded stream. Handles are shared_ptrs:
// a block a reader holds stays alive (and is not evicted) until the reader drops it, so the
// budget can be exceeded by at most what readers pin at once. Thread-safe; one mutex, never
// held while decoding or calling out.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace dupfs::chain {

using Block = std::shared_ptr<const std::string>;

// Buffers of blocks gone out of use, handed to the next blocks a pass decodes. Once the cache is
// at its budget every new block evicts an old one; reusing the old buffer spares mapping fresh
// pages (a fault and a zeroed page per 4 KiB) and unmapping the old ones (a TLB shootdown on
// every CPU running a thread of the mount, slow in VMs). Keeps at most `max_buffers`.
// Thread-safe; blocks may outlive the pool's other owners.
class BlockPool : public std::enable_shared_from_this<BlockPool> {
 public:
  static std::shared_ptr<BlockPool> create(size_t block_size, size_t max_buffers) {
    return std::shared_ptr<BlockPool>(new BlockPool(block_size, max_buffers));
  }
  // An empty string with room for a block.
  std::string take();
  // A block owning `data`; its buffer comes back to the pool when the last handle goes.
  Block wrap(std::string data);

 private:
  BlockPool(size_t block_size, size_t max_buffers)
      : block_size_(block_size), max_buffers_(max_buffers) {}
  void give(std::string buffer);

  const size_t block_size_;
  const size_t max_buffers_;
  // Guards free_. A leaf: taken under a Volume's lock or the BlockCache's (a block dropped
  // there gives its buffer back), nothing is taken under it.
  std::mutex mu_;
  std::vector<std::string> free_;
};

class BlockCache {
 public:
  explicit BlockCache(uint64_t budget_bytes) : budget_(budget_bytes) {}

  // nullptr when absent. A hit becomes the most recently used.
  Block lookup(uint32_t volume, uint64_t block);
  // Inserts (or replaces) and evicts least recently used unpinned blocks over the budget.
  void insert(uint32_t volume, uint64_t block, Block data);
  bool contains(uint32_t volume, uint64_t block);
  // Drops every block of one volume (after its data proved damaged).
  void erase_volume(uint32_t volume);

  uint64_t budget() const { return budget_; }
  uint64_t charged() const;
  uint64_t hits() const;
  uint64_t misses() const;

 private:
  struct Key {
    uint32_t volume;
    uint64_t block;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return std::hash<uint64_t>()(k.block * 0x9e3779b97f4a7c15ULL ^ k.volume);
    }
  };
  struct Entry {
    Key key;
    Block data;
  };
  void evict_locked();

  const uint64_t budget_;
  // Guards everything below. Taken under a VolumeStore Volume's lock or none; under it only
  // BlockPool::mu_ (an evicted block gives its buffer back).
  mutable std::mutex mu_;
  uint64_t charged_ = 0;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
  std::list<Entry> lru_;  // front = most recently used
  std::unordered_map<Key, std::list<Entry>::iterator, KeyHash> map_;
};

}  // namespace dupfs::chain

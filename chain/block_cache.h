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

namespace dupfs::chain {

using Block = std::shared_ptr<const std::string>;

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
  mutable std::mutex mu_;
  uint64_t charged_ = 0;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
  std::list<Entry> lru_;  // front = most recently used
  std::unordered_map<Key, std::list<Entry>::iterator, KeyHash> map_;
};

}  // namespace dupfs::chain

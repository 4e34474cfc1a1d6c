#include "chain/read/block_cache.h"

namespace dupfs::chain {

std::string BlockPool::take() {
  {
    std::lock_guard lock(mu_);
    if (!free_.empty()) {
      std::string s = std::move(free_.back());
      free_.pop_back();
      return s;
    }
  }
  std::string s;
  s.reserve(block_size_);
  return s;
}

Block BlockPool::wrap(std::string data) {
  return Block(new std::string(std::move(data)), [pool = shared_from_this()](const std::string* p) {
    // The string was made non-const here: taking its buffer back is fine.
    pool->give(std::move(*const_cast<std::string*>(p)));
    delete p;
  });
}

void BlockPool::give(std::string buffer) {
  if (buffer.capacity() < block_size_) return;
  buffer.clear();
  std::lock_guard lock(mu_);
  if (free_.size() < max_buffers_) free_.push_back(std::move(buffer));
}

Block BlockCache::lookup(uint32_t volume, uint64_t block) {
  std::lock_guard lock(mu_);
  auto it = map_.find(Key{volume, block});
  if (it == map_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->data;
}

bool BlockCache::contains(uint32_t volume, uint64_t block) {
  std::lock_guard lock(mu_);
  return map_.contains(Key{volume, block});
}

void BlockCache::insert(uint32_t volume, uint64_t block, Block data) {
  std::lock_guard lock(mu_);
  Key key{volume, block};
  if (auto it = map_.find(key); it != map_.end()) {
    charged_ -= it->second->data->size();
    lru_.erase(it->second);
    map_.erase(it);
  }
  charged_ += data->size();
  lru_.push_front(Entry{key, std::move(data)});
  map_[key] = lru_.begin();
  evict_locked();
}

void BlockCache::evict_locked() {
  // Walk from the least recently used end; pinned blocks (held by a reader) stay.
  auto it = lru_.end();
  while (charged_ > budget_ && it != lru_.begin()) {
    --it;
    if (it->data.use_count() > 1) continue;
    charged_ -= it->data->size();
    map_.erase(it->key);
    it = lru_.erase(it);
  }
}

void BlockCache::erase_volume(uint32_t volume) {
  std::lock_guard lock(mu_);
  for (auto it = lru_.begin(); it != lru_.end();) {
    if (it->key.volume == volume) {
      charged_ -= it->data->size();
      map_.erase(it->key);
      it = lru_.erase(it);
    } else {
      ++it;
    }
  }
}

uint64_t BlockCache::charged() const {
  std::lock_guard lock(mu_);
  return charged_;
}
uint64_t BlockCache::hits() const {
  std::lock_guard lock(mu_);
  return hits_;
}
uint64_t BlockCache::misses() const {
  std::lock_guard lock(mu_);
  return misses_;
}

}  // namespace dupfs::chain

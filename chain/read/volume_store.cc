#include "chain/read/volume_store.h"

#include <fcntl.h>
#include <openssl/sha.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <future>
#include <iterator>

#include "backends/base/log.h"

namespace dupfs::chain {

struct VolumeStore::Pass {
  std::thread thread;
  std::optional<size_t> point;  // the seek point it starts at (none: the volume's start)
  uint64_t first_block = 0;     // the first block it publishes
  uint64_t next_block = 0;      // blocks [first_block, next_block) have been published by this pass
  uint64_t want_until = 0;      // one past the highest block a reader asked this pass for
  int unbounded = 0;            // readers that need the pass to go on (catalog scans)
  bool parses = false;          // extends the catalog
  bool cancel = false;
  bool done = false;
  std::optional<Error> error;                     // why it ended early
  std::deque<std::pair<uint64_t, Block>> recent;  // last blocks, for readers on a tiny budget
};

struct VolumeStore::Volume {
  std::string name;
  std::string sha1;
  // Guards every field below but read_until and wake_at (atomics, read without it), and the
  // fields of this volume's Passes. Never held while reading storage or decoding, nor while
  // waiting for anything but cv. Taken under volumes_mu_ (~VolumeStore) or no lock; taken
  // under it: BlockCache::mu_ (lookups), BlockPool::mu_ (dropping blocks), the log's.
  std::mutex mu;
  // With mu: signalled when a pass publishes, ends or is cancelled, and when a reader wants
  // more (passes paused at their read-ahead window wait on it too).
  std::condition_variable cv;
  std::vector<CatalogEntry> catalog;   // in stream order
  bool catalog_complete = false;       // no entry will ever be added
  std::optional<Error> catalog_error;  // the tar stream is damaged after the catalog's end
  std::optional<Error> failed;         // the volume serves nothing
  std::optional<uint64_t> total_size;  // length of the decoded stream, once known
  bool hash_verified = false;
  // The volume's seek index (from the archive dir, or recorded by a pass); with seek data,
  // passes start at seek points and check stored chunks instead of the whole SHA1.
  std::shared_ptr<const VolumeIndex> index;
  bool damage_logged = false;                 // damage seen by a pass from a seek point was logged
  std::vector<std::shared_ptr<Pass>> passes;  // running (or just ended)
  std::vector<std::shared_ptr<Pass>> finished;  // ended; threads joined by ~VolumeStore
  std::optional<uint32_t> successor;
  // One past the furthest block any reader got, from the cache or from a pass: passes keep
  // their read-ahead window ahead of it. Updated without the lock on every block read.
  std::atomic<uint64_t> read_until{0};
  // A reader whose read_until reaches this wakes the passes paused ahead of it (under mu).
  std::atomic<uint64_t> wake_at{UINT64_MAX};
};

namespace {

constexpr int kPassNice = 19;
// A pass from a seek point reads this much at first and doubles it while it goes on.
constexpr size_t kMaxStoredRead = size_t{4} << 20;

// Counts one wait and adds its duration (µs) to the statistics when it goes out of scope.
class WaitTimer {
 public:
  WaitTimer(std::atomic<uint64_t>& count, std::atomic<uint64_t>& micros)
      : count_(count), micros_(micros), start_(std::chrono::steady_clock::now()) {}
  ~WaitTimer() {
    ++count_;
    micros_ += std::chrono::duration_cast<std::chrono::microseconds>(
                   std::chrono::steady_clock::now() - start_)
                   .count();
  }

 private:
  std::atomic<uint64_t>& count_;
  std::atomic<uint64_t>& micros_;
  std::chrono::steady_clock::time_point start_;
};

bool index_less(const CatalogEntry& e, const Index& i) { return e.name.index < i; }
bool index_greater(const Index& i, const CatalogEntry& e) { return i < e.name.index; }

// Stored bytes of an indexed volume, each chunk checked against the index's SHA-256 before
// any of it is used. Reads whole chunks, more at a time while the pass goes on.
class ChunkReader {
 public:
  ChunkReader(const Backend& backend, const VolumeIndex& index)
      : backend_(backend), index_(index), next_read_(index.chunk_size) {}
  ~ChunkReader() = default;
  ChunkReader(const ChunkReader&) = delete;
  ChunkReader& operator=(const ChunkReader&) = delete;

  Result<std::string> operator()(uint64_t offset, size_t length) {
    const uint64_t size = index_.stored_size;
    if (offset >= size) return std::string();
    length = static_cast<size_t>(std::min<uint64_t>(length, size - offset));
    if (offset < have_offset_ || offset + length > have_offset_ + have_.size()) {
      const uint64_t chunk = index_.chunk_size;
      const uint64_t from = offset / chunk * chunk;
      uint64_t to = std::max<uint64_t>(offset + length, from + next_read_);
      to = std::min<uint64_t>((to + chunk - 1) / chunk * chunk, size);
      // Sequential: read more next time.
      if (from == have_offset_ + have_.size())
        next_read_ = std::min(next_read_ * 2, kMaxStoredRead);
      auto data = backend_.read_range(index_.volume, from, static_cast<size_t>(to - from));
      if (!data) return std::unexpected(std::move(data.error()));
      if (data->size() != to - from) {
        return error(ErrorKind::kCorruption, "volume {} is shorter than its seek index says",
                     index_.volume);
      }
      for (uint64_t at = from; at < to; at += chunk) {
        std::array<uint8_t, 32> digest{};
        size_t n = static_cast<size_t>(std::min(chunk, to - at));
        SHA256(reinterpret_cast<const unsigned char*>(data->data() + (at - from)), n,
               digest.data());
        if (digest != index_.chunk_sha256[at / chunk]) {
          return error(ErrorKind::kCorruption,
                       "volume {} is damaged: stored bytes at {} do not match their hash",
                       index_.volume, at);
        }
      }
      have_ = std::move(*data);
      have_offset_ = from;
    }
    return have_.substr(static_cast<size_t>(offset - have_offset_), length);
  }

 private:
  const Backend& backend_;
  const VolumeIndex& index_;
  size_t next_read_;
  std::string have_;  // checked stored bytes
  uint64_t have_offset_ = 0;
};

}  // namespace

// What one pass's thread works with, from run_pass to end_pass.
struct VolumeStore::PassRun {
  PassRun(uint32_t id, Volume& v, std::shared_ptr<Pass> pass, uint64_t readahead_blocks)
      : id(id), v(v), pass(std::move(pass)), readahead_blocks(readahead_blocks) {}
  const uint32_t id;
  Volume& v;
  const std::shared_ptr<Pass> pass;
  const uint64_t readahead_blocks;  // the read-ahead window, in blocks (at least 1)
  // The stored bytes' SHA1 and chunk hashes, computed beside the decoding until check_hash
  // took them.
  std::future<Result<StoredHashes>> hash;
  std::optional<StoredHashes> hashes;  // once they matched
  std::optional<SeekData> seek;        // what a whole pass recorded
  CatalogBuilder builder;
  std::optional<TarParser> parser;   // when the pass extends the catalog
  std::optional<Error> parse_error;  // the tar stream is damaged past the entries found
  std::string buf;                   // the block being filled
  uint64_t total = 0;                // bytes decoded so far
  // Decoded blocks and the catalog entries found in them, held back until the SHA1 matched.
  std::vector<std::pair<uint64_t, Block>> held;
  std::vector<CatalogEntry> held_entries;
};

VolumeStore::VolumeStore(std::shared_ptr<const Backend> backend, Credentials credentials,
                         BlockCache& cache, VolumeStoreOptions options)
    : backend_(std::move(backend)),
      credentials_(std::move(credentials)),
      cache_(cache),
      options_(std::move(options)),
      pool_(BlockPool::create(options_.block_size, 32)),
      remote_indexes_(options_.remote_indexes.begin(), options_.remote_indexes.end()) {
  if (credentials_.passphrase) {
    passphrase_.emplace(credentials_.passphrase->data(), credentials_.passphrase->size());
  }
  unsigned slots = options_.decode_slots;
  if (slots == 0) slots = std::max(2u, std::thread::hardware_concurrency());
  decode_slots_ = std::make_unique<std::counting_semaphore<1024>>(std::min(slots, 1024u));
}

VolumeStore::~VolumeStore() {
  stopping_ = true;
  log_info("readers waited {} times ({} ms) for catalogs and {} times ({} ms) for data; {} passes",
           catalog_waits_.load(), catalog_wait_us_.load() / 1000, block_waits_.load(),
           block_wait_us_.load() / 1000, passes_started_.load());
  std::vector<std::shared_ptr<Pass>> all;
  {
    std::lock_guard lock(volumes_mu_);
    for (auto& v : volumes_) {
      std::lock_guard vlock(v->mu);
      for (auto& p : v->passes) {
        p->cancel = true;
        all.push_back(p);
      }
      for (auto& p : v->finished) all.push_back(p);
      v->cv.notify_all();
    }
  }
  for (auto& p : all) {
    if (p->thread.joinable()) p->thread.join();
  }
}

uint32_t VolumeStore::add_volume(const std::string& name, const std::string& sha1) {
  auto v = std::make_unique<Volume>();
  v->name = name;
  v->sha1 = sha1;
  load_index(*v);
  std::lock_guard lock(volumes_mu_);
  volumes_.push_back(std::move(v));
  return static_cast<uint32_t>(volumes_.size() - 1);
}

VolumeStore::Volume& VolumeStore::vol(uint32_t id) const {
  std::lock_guard lock(volumes_mu_);
  return *volumes_.at(id);
}

const std::string& VolumeStore::volume_name(uint32_t id) const { return vol(id).name; }

void VolumeStore::set_successor(uint32_t volume, uint32_t next) {
  Volume& v = vol(volume);
  std::lock_guard lock(v.mu);
  v.successor = next;
}

void VolumeStore::prefetch(uint32_t id) {
  Volume& v = vol(id);
  std::lock_guard lock(v.mu);
  if (stopping_) return;
  if (v.failed || (v.catalog_complete && v.total_size)) {
    // Already catalogued: a reader will start a pass when it needs data. A volume never
    // decoded in this mount has nothing in the cache, so it is worth starting.
    if (v.hash_verified) return;
  }
  for (const auto& p : v.passes) {
    if (!p->done && !p->cancel) return;
  }
  start_pass_locked(id, v, 0);
}

std::shared_ptr<VolumeStore::Pass> VolumeStore::start_pass_locked(uint32_t id, Volume& v,
                                                                  uint64_t block) {
  // Passes that have ended move aside; their threads are joined by the destructor, never
  // here: a finishing thread may still be waiting for this volume's lock.
  for (auto it = v.passes.begin(); it != v.passes.end();) {
    if ((*it)->done) {
      (*it)->recent.clear();
      v.finished.push_back(std::move(*it));
      it = v.passes.erase(it);
    } else {
      ++it;
    }
  }
  auto pass = std::make_shared<Pass>();
  pass->parses = !v.catalog_complete;
  if (v.index && v.index->seek) {
    const SeekData& seek = *v.index->seek;
    const uint64_t bs = options_.block_size;
    size_t point = seek_point_for(seek, block * bs);
    // The block the point falls in is only partly decoded from it: the pass starts at the
    // next one (the point is at or before `block`'s start, so `block` is among them).
    pass->point = point;
    pass->first_block = pass->next_block = (seek_t_of(seek, seek.points[point].out) + bs - 1) / bs;
  }
  v.passes.push_back(pass);
  ++passes_started_;
  if (pass->point) {
    log_info("decoding {} from seek point {} (block {})", v.name, *pass->point, pass->first_block);
  } else {
    log_info("decoding {} from its start{}", v.name, pass->parses ? " (cataloguing)" : "");
  }
  pass->thread = std::thread([this, id, pass] { run_pass(id, pass); });
  return pass;
}

void VolumeStore::run_pass(uint32_t id, std::shared_ptr<Pass> pass) {
  // Decoding is bulk work: the threads answering the kernel's requests, and the reader
  // waiting on them, must win the CPU at once when they wake, not after the decoder's slice.
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kPassNice);
  PassRun run(id, vol(id), std::move(pass),
              std::max<uint64_t>(1, options_.readahead_bytes / options_.block_size));
  start_hash_check(run);
  if (run.pass->parses) run.parser.emplace(run.builder);
  run.buf = pool_->take();

  decode_slots_->acquire();
  bool cancelled;
  {
    std::lock_guard lock(run.v.mu);
    cancelled = run.pass->cancel;
  }
  Status result;
  if (cancelled) {
    result = error(ErrorKind::kCancelled, "pass over {} cancelled", run.v.name);
  } else if (run.pass->point) {
    // The index never changes once set; the pass keeps it alive.
    std::shared_ptr<const VolumeIndex> index;
    {
      std::lock_guard lock(run.v.mu);
      index = run.v.index;
    }
    const SeekData& seek = *index->seek;
    const uint64_t start = run.pass->first_block * options_.block_size;
    run.total = seek_t_of(seek, seek.points[*run.pass->point].out);
    ChunkReader reader(*backend_, *index);
    result = decode_from_point(
        seek, *run.pass->point, std::ref(reader),
        [&](std::string_view data) -> Status {
          if (run.total < start) {
            size_t skip = static_cast<size_t>(std::min<uint64_t>(data.size(), start - run.total));
            run.total += skip;
            data.remove_prefix(skip);
          }
          return data.empty() ? Status{} : feed(run, data);
        },
        run.v.name);
  } else {
    // A whole pass over a volume without an index records one (once its SHA1 is known).
    bool record;
    {
      std::lock_guard lock(run.v.mu);
      record = options_.seek_index && !run.v.index && run.hash.valid();
    }
    SeekRecorder recorder = [&](SeekData d) { run.seek = std::move(d); };
    result = decode_object(
        *backend_, run.v.name, credentials_, [&](std::string_view data) { return feed(run, data); },
        record ? &recorder : nullptr);
  }
  if (result) {
    if (run.parser && !run.parse_error) {
      if (auto st = run.parser->finish(); !st) run.parse_error = st.error();
    }
    result = publish(run, true);
  }
  decode_slots_->release();
  // A reader that went through this volume is likely to go on into the next one.
  if (std::optional<uint32_t> next = end_pass(run, result)) prefetch(*next);
}

void VolumeStore::start_hash_check(PassRun& run) {
  Volume& v = run.v;
  std::lock_guard lock(v.mu);
  if (!v.hash_verified && !v.sha1.empty() && !run.pass->point) {
    run.hash = std::async(std::launch::async,
                          [this, &v] { return hash_object(*backend_, v.name, kIndexChunkSize); });
  }
}

Status VolumeStore::check_hash(PassRun& run) {
  if (!run.hash.valid()) return {};
  auto got = run.hash.get();
  if (!got) return std::unexpected(got.error());
  if (got->sha1 != run.v.sha1) {
    return error(ErrorKind::kCorruption, "volume {} is damaged: SHA1 {} does not match {}",
                 run.v.name, got->sha1, run.v.sha1);
  }
  run.hashes = std::move(*got);
  std::lock_guard lock(run.v.mu);
  run.v.hash_verified = true;
  return {};
}

Status VolumeStore::feed(PassRun& run, std::string_view data) {
  const uint64_t block_size = options_.block_size;
  while (!data.empty()) {
    size_t take = std::min<size_t>(block_size - run.buf.size(), data.size());
    std::string_view piece = data.substr(0, take);
    run.buf.append(piece);
    if (run.parser && !run.parse_error) {
      if (auto st = run.parser->feed(piece); !st) run.parse_error = st.error();
    }
    run.total += take;
    data.remove_prefix(take);
    if (run.buf.size() == block_size) {
      if (auto st = publish(run, false); !st) return st;
    }
  }
  return {};
}

Status VolumeStore::publish(PassRun& run, bool final) {
  if (!run.buf.empty()) {
    // The block holding the last byte decoded so far.
    run.held.emplace_back((run.total - 1) / options_.block_size, pool_->wrap(std::move(run.buf)));
    run.buf = pool_->take();
  }
  for (auto& e : run.builder.pending) run.held_entries.push_back(std::move(e));
  run.builder.pending.clear();
  if (run.hash.valid()) {
    bool ready = run.hash.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    if (!ready && !final && run.held.size() < run.readahead_blocks) return {};
    if (auto st = check_hash(run); !st) return st;
  }
  for (const auto& [index, blk] : run.held) cache_.insert(run.id, index, blk);
  std::unique_lock lock(run.v.mu);
  commit_held_locked(run, final);
  return throttle(run, lock, final);
}

void VolumeStore::commit_held_locked(PassRun& run, bool final) {
  Volume& v = run.v;
  Pass& pass = *run.pass;
  for (auto& e : run.held_entries) {
    if (v.catalog.empty() || e.header.header_offset > v.catalog.back().header.header_offset) {
      v.catalog.push_back(std::move(e));
    }
  }
  run.held_entries.clear();
  if (run.parse_error && !v.catalog_complete) {
    v.catalog_complete = true;
    v.catalog_error = run.parse_error;
  }
  for (auto& [index, blk] : run.held) {
    pass.recent.emplace_back(index, std::move(blk));
    if (pass.recent.size() > 4) pass.recent.pop_front();
    pass.next_block = index + 1;
  }
  run.held.clear();
  if (final) {
    v.total_size = run.total;
    if (pass.parses && !v.catalog_complete) v.catalog_complete = true;
  }
  v.cv.notify_all();
}

// Readers served from the cache count too: a pass that only watched its own requests would
// stop 32 MiB in while the reader went on through what it had published, and then move a block
// at a time behind each lookup that waits for the catalog. A reader beyond this pass's blocks
// is not following it (a pass restarted behind others): then only the blocks asked of this
// pass count.
Status VolumeStore::throttle(PassRun& run, std::unique_lock<std::mutex>& lock, bool final) {
  Volume& v = run.v;
  Pass& pass = *run.pass;
  const uint64_t window = run.readahead_blocks;
  auto ahead = [&] {
    uint64_t demand = pass.want_until;
    if (uint64_t r = v.read_until.load(); r <= pass.next_block) demand = std::max(demand, r);
    return !final && !pass.cancel && pass.unbounded == 0 && pass.next_block >= demand + window;
  };
  while (ahead()) {
    lock.unlock();
    decode_slots_->release();
    lock.lock();
    for (;;) {
      // ahead() turns false once a reader gets block next_block - window. wake_at is set
      // before read_until is checked (and note_read does the reverse), so a reader that moves
      // on meanwhile is either seen here or wakes this pass.
      v.wake_at = std::min(v.wake_at.load(), pass.next_block + 1 - window);
      if (!ahead()) break;
      if (v.cv.wait_for(lock, options_.idle_timeout) == std::cv_status::timeout && ahead()) {
        pass.cancel = true;  // nobody came back for this pass: end it
      }
    }
    lock.unlock();
    decode_slots_->acquire();
    lock.lock();
  }
  if (pass.cancel) return error(ErrorKind::kCancelled, "pass over {} cancelled", v.name);
  return {};
}

std::optional<uint32_t> VolumeStore::end_pass(PassRun& run, const Status& result) {
  Volume& v = run.v;
  Pass& pass = *run.pass;
  bool complete_catalog = false;
  // A pass from a seek point checked every chunk it used: damage there fails the blocks
  // decoded from it (each request that needs them tries again), not the volume, and what it
  // published before is sound.
  const bool contained = !result && pass.point && result.error().kind == ErrorKind::kCorruption;
  {
    std::lock_guard lock(v.mu);
    pass.done = true;
    if (contained) {
      pass.error = result.error();
      if (!std::exchange(v.damage_logged, true)) log_error("{}", result.error().message);
    } else if (!result) {
      pass.error = result.error();
      // A permanent error is the volume's for good; a transient one was this pass's only.
      if (is_permanent(result.error().kind) && !v.failed) {
        v.failed = result.error();
        log_error("{}", result.error().message);
      }
    } else {
      complete_catalog = pass.parses && v.catalog_complete && !v.catalog_error;
      if (run.parse_error) log_error("volume {}: {}", v.name, run.parse_error->message);
    }
    v.cv.notify_all();
  }
  if (!result && !contained && result.error().kind == ErrorKind::kCorruption) {
    cache_.erase_volume(run.id);
  }
  if (complete_catalog && run.hashes) persist_index(v, run);
  std::lock_guard lock(v.mu);
  if (result && (pass.want_until > 0 || v.read_until.load() > 0)) return v.successor;
  return std::nullopt;
}

void VolumeStore::note_read(Volume& v, uint64_t index) {
  const uint64_t until = index + 1;
  uint64_t seen = v.read_until.load();
  while (seen < until && !v.read_until.compare_exchange_weak(seen, until)) {
  }
  if (seen < until && until >= v.wake_at.load()) {
    std::lock_guard lock(v.mu);
    v.wake_at = UINT64_MAX;  // paused passes still ahead set it again
    v.cv.notify_all();
  }
}

Result<Block> VolumeStore::block(uint32_t id, uint64_t index, bool wait) {
  Volume& v = vol(id);
  note_read(v, index);
  if (Block b = cache_.lookup(id, index)) return b;
  std::unique_lock lock(v.mu);
  bool restarted = false;
  for (;;) {
    if (v.failed) return std::unexpected(*v.failed);
    if (v.total_size && index * options_.block_size >= *v.total_size) {
      return std::make_shared<const std::string>();
    }
    for (auto& p : v.passes) {
      for (auto& [i, b] : p->recent) {
        if (i == index) return b;
      }
    }
    if (Block b = cache_.lookup(id, index)) return b;
    if (!wait) return error(ErrorKind::kWouldBlock, "block {} of {} not at hand", index, v.name);
    std::shared_ptr<Pass> pass;
    for (auto& p : v.passes) {
      if (!p->done && !p->cancel && p->first_block <= index && p->next_block <= index &&
          (!pass || p->next_block > pass->next_block)) {
        pass = p;
      }
    }
    if (!pass) {
      if (restarted) {
        // The pass we started ended without producing the block.
        for (auto& p : v.passes) {
          if (p->done && p->error) return std::unexpected(*p->error);
        }
      }
      pass = start_pass_locked(id, v, index);
      restarted = true;
    }
    pass->want_until = std::max(pass->want_until, index + 1);
    v.cv.notify_all();
    {
      WaitTimer timer(block_waits_, block_wait_us_);
      v.cv.wait(lock, [&] {
        return pass->next_block > index || pass->done || pass->cancel || v.failed.has_value();
      });
    }
    if (pass->done && pass->error && pass->next_block <= index) {
      return std::unexpected(*pass->error);
    }
  }
}

Result<size_t> VolumeStore::read(uint32_t id, uint64_t offset, char* out, size_t length,
                                 bool wait) {
  const uint64_t bs = options_.block_size;
  size_t done = 0;
  while (done < length) {
    uint64_t pos = offset + done;
    auto blk = block(id, pos / bs, wait);
    if (!blk) return std::unexpected(blk.error());
    uint64_t within = pos % bs;
    if ((*blk)->size() <= within) break;  // end of stream
    size_t n = std::min<size_t>(length - done, (*blk)->size() - within);
    std::memcpy(out + done, (*blk)->data() + within, n);
    done += n;
  }
  return done;
}

// `lock` holds v.mu. vol() is not called here: it takes volumes_mu_, which ~VolumeStore holds
// while it takes each v.mu (lock order volumes_mu_ -> v.mu).
Status VolumeStore::wait_for_catalog(uint32_t id, Volume& v, std::unique_lock<std::mutex>& lock,
                                     const std::function<bool()>& covered) {
  bool started = false;
  while (!covered()) {
    if (v.failed) return std::unexpected(*v.failed);
    std::shared_ptr<Pass> pass;
    for (auto& p : v.passes) {
      if (p->parses && !p->done && !p->cancel) pass = p;
    }
    if (!pass) {
      if (started) {
        for (auto& p : v.passes) {
          if (p->done && p->error) return std::unexpected(*p->error);
        }
      }
      pass = start_pass_locked(id, v);
      started = true;
    }
    ++pass->unbounded;
    v.cv.notify_all();
    WaitTimer timer(catalog_waits_, catalog_wait_us_);
    v.cv.wait(lock, [&] { return covered() || pass->done || pass->cancel || v.failed; });
    --pass->unbounded;
  }
  if (v.failed) return std::unexpected(*v.failed);
  return {};
}

Result<std::vector<CatalogEntry>> VolumeStore::entries_for(uint32_t id, const Index& index) {
  Volume& v = vol(id);
  std::unique_lock lock(v.mu);
  auto st = wait_for_catalog(id, v, lock, [&] {
    return v.catalog_complete || (!v.catalog.empty() && index < v.catalog.back().name.index);
  });
  if (!st) return std::unexpected(st.error());
  auto [lo, hi] =
      std::equal_range(v.catalog.begin(), v.catalog.end(), index, [](const auto& a, const auto& b) {
        if constexpr (std::is_same_v<std::decay_t<decltype(a)>, CatalogEntry>) {
          return index_less(a, b);
        } else {
          return index_greater(a, b);
        }
      });
  if (v.catalog_error && (v.catalog.empty() || !(index < v.catalog.back().name.index))) {
    return std::unexpected(*v.catalog_error);
  }
  return std::vector<CatalogEntry>(lo, hi);
}

bool VolumeStore::catalog_covers(uint32_t id, const Index& index) {
  Volume& v = vol(id);
  std::lock_guard lock(v.mu);
  if (v.failed || v.catalog_error) return false;
  return v.catalog_complete || (!v.catalog.empty() && index < v.catalog.back().name.index);
}

Result<std::vector<CatalogEntry>> VolumeStore::catalog(uint32_t id) {
  Volume& v = vol(id);
  std::unique_lock lock(v.mu);
  auto st = wait_for_catalog(id, v, lock, [&] { return v.catalog_complete; });
  if (!st) return std::unexpected(st.error());
  if (v.catalog_error) return std::unexpected(*v.catalog_error);
  return v.catalog;
}

std::string VolumeStore::index_path(const Volume& v) const {
  return options_.catalog_dir + "/" + volume_index_name(v.name);
}

namespace {

// Writes `data` to `path` atomically, private (0600). False on failure.
bool write_private_file(const std::string& path, std::string_view data) {
  std::string tmp = path + ".tmp" + std::to_string(::getpid());
  bool written = false;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd >= 0) {
    written = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
    written = ::close(fd) == 0 && written;
  }
  if (!written || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace

void VolumeStore::persist_index(Volume& v, PassRun& run) {
  if (options_.catalog_dir.empty() || !options_.seek_index || v.sha1.empty()) return;
  auto index = std::make_shared<VolumeIndex>();
  index->volume = v.name;
  index->sha1 = v.sha1;
  index->stored_size = run.hashes->size;
  index->chunk_sha256 = std::move(run.hashes->chunk_sha256);
  index->seek = std::move(run.seek);
  {
    std::lock_guard lock(v.mu);
    if (v.index) return;
    index->decoded_size = v.total_size.value_or(0);
    index->catalog = v.catalog;
  }
  auto file = encode_volume_index(*index, passphrase_ ? &*passphrase_ : nullptr);
  if (!file) {
    log_error("cannot keep the seek index of {}: {}", v.name, file.error().message);
    return;
  }
  if (!write_private_file(index_path(v), *file)) {
    log_error("cannot keep the seek index of {} in {}", v.name, options_.catalog_dir);
  }
  // A clear file dropped what must not be kept in clear: this mount keeps it all.
  std::lock_guard lock(v.mu);
  if (!v.index) v.index = std::move(index);
}

// The archive dir's copy, else the one dupfs-backup stored next to the volume (then copied
// into the archive dir: the mount never writes to storage).
void VolumeStore::load_index(Volume& v) {
  if (!options_.seek_index || v.sha1.empty()) return;
  std::string file;
  bool from_storage = false;
  if (!options_.catalog_dir.empty()) {
    std::ifstream f(index_path(v), std::ios::binary);
    if (f) file.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  const std::string name = volume_index_name(v.name);
  if (file.empty() && remote_indexes_.contains(name)) {
    constexpr size_t kPiece = size_t{8} << 20;
    for (uint64_t offset = 0;;) {
      auto piece = backend_->read_range(name, offset, kPiece);
      if (!piece) {
        log_info("cannot read the seek index of {}: {}", v.name, piece.error().message);
        return;
      }
      file += *piece;
      if (piece->size() < kPiece) break;
      offset += piece->size();
    }
    from_storage = true;
  }
  if (file.empty()) return;
  auto index = decode_volume_index(file, passphrase_ ? &*passphrase_ : nullptr, v.name, v.sha1);
  if (!index) {
    // Rebuilt by the next whole pass.
    log_info("ignoring the seek index of {}: {}", v.name, index.error().message);
    return;
  }
  if (from_storage && !options_.catalog_dir.empty()) write_private_file(index_path(v), file);
  v.catalog = index->catalog;
  v.catalog_complete = true;
  v.total_size = index->decoded_size;
  v.index = std::make_shared<const VolumeIndex>(std::move(*index));
}

}  // namespace dupfs::chain

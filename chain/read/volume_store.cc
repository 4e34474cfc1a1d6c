#include "chain/read/volume_store.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <future>
#include <sstream>

#include "backends/base/log.h"

namespace dupfs::chain {

struct VolumeStore::Pass {
  std::thread thread;
  uint64_t next_block = 0;  // blocks [0, next_block) have been published by this pass
  uint64_t want_until = 0;  // one past the highest block a reader asked this pass for
  int unbounded = 0;        // readers that need the pass to go on (catalog scans)
  bool parses = false;      // extends the catalog
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
  std::vector<std::shared_ptr<Pass>> passes;    // running (or just ended)
  std::vector<std::shared_ptr<Pass>> finished;  // ended; threads joined by ~VolumeStore
  std::optional<uint32_t> successor;
  // One past the furthest block any reader got, from the cache or from a pass: passes keep
  // their read-ahead window ahead of it. Updated without the lock on every block read.
  std::atomic<uint64_t> read_until{0};
  // A reader whose read_until reaches this wakes the passes paused ahead of it (under mu).
  std::atomic<uint64_t> wake_at{UINT64_MAX};
};

namespace {

constexpr char kCatalogMagic[] = "dupfs-catalog-1\n";
constexpr int kPassNice = 19;

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

// Collects entries as the tar parser finds them.
class CatalogBuilder : public TarVisitor {
 public:
  Status on_entry(const TarHeader& h) override {
    auto name = parse_entry_name(h.name);
    if (!name) return {};  // not one of duplicity's entries: nothing to serve from it
    CatalogEntry e{std::move(*name), h};
    e.header.name.clear();
    pending.push_back(std::move(e));
    return {};
  }
  Status on_data(const TarHeader&, std::string_view) override { return {}; }
  Status on_entry_end(const TarHeader&) override { return {}; }
  std::vector<CatalogEntry> pending;
};

void put_u64(std::string& out, uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }
void put_str(std::string& out, const std::string& s) {
  put_u64(out, s.size());
  out += s;
}
bool get_u64(std::string_view& in, uint64_t& v) {
  if (in.size() < 8) return false;
  std::memcpy(&v, in.data(), 8);
  in.remove_prefix(8);
  return true;
}
bool get_str(std::string_view& in, std::string& s) {
  uint64_t n;
  if (!get_u64(in, n) || in.size() < n) return false;
  s.assign(in.substr(0, n));
  in.remove_prefix(n);
  return true;
}

}  // namespace

// What one pass's thread works with, from run_pass to end_pass.
struct VolumeStore::PassRun {
  PassRun(uint32_t id, Volume& v, std::shared_ptr<Pass> pass, uint64_t readahead_blocks)
      : id(id), v(v), pass(std::move(pass)), readahead_blocks(readahead_blocks) {}
  const uint32_t id;
  Volume& v;
  const std::shared_ptr<Pass> pass;
  const uint64_t readahead_blocks;  // the read-ahead window, in blocks (at least 1)
  // The stored bytes' SHA1, computed beside the decoding until check_hash took it.
  std::future<Result<std::string>> hash;
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
      pool_(BlockPool::create(options_.block_size, 32)) {
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
  load_catalog(*v);
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
  start_pass_locked(id, v);
}

std::shared_ptr<VolumeStore::Pass> VolumeStore::start_pass_locked(uint32_t id, Volume& v) {
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
  v.passes.push_back(pass);
  ++passes_started_;
  log_info("decoding {} from its start{}", v.name, pass->parses ? " (cataloguing)" : "");
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
  Status result = cancelled ? error(ErrorKind::kCancelled, "pass over {} cancelled", run.v.name)
                            : decode_object(*backend_, run.v.name, credentials_,
                                            [&](std::string_view data) { return feed(run, data); });
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
  if (!v.hash_verified && !v.sha1.empty()) {
    run.hash =
        std::async(std::launch::async, [this, &v] { return sha1_of_object(*backend_, v.name); });
  }
}

Status VolumeStore::check_hash(PassRun& run) {
  if (!run.hash.valid()) return {};
  auto got = run.hash.get();
  if (!got) return std::unexpected(got.error());
  if (*got != run.v.sha1) {
    return error(ErrorKind::kCorruption, "volume {} is damaged: SHA1 {} does not match {}",
                 run.v.name, *got, run.v.sha1);
  }
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
  {
    std::lock_guard lock(v.mu);
    pass.done = true;
    if (!result) {
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
  if (!result && result.error().kind == ErrorKind::kCorruption) cache_.erase_volume(run.id);
  if (complete_catalog) persist_catalog(v);
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
      if (!p->done && !p->cancel && p->next_block <= index &&
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
      pass = start_pass_locked(id, v);
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

std::string VolumeStore::catalog_path(const Volume& v) const {
  return options_.catalog_dir + "/" + v.name + "." + v.sha1 + ".catalog";
}

void VolumeStore::persist_catalog(const Volume& v) {
  if (options_.catalog_dir.empty() || v.sha1.empty()) return;
  std::string out = kCatalogMagic;
  {
    std::lock_guard lock(const_cast<Volume&>(v).mu);
    put_u64(out, v.total_size.value_or(0));
    put_u64(out, v.catalog.size());
    for (const auto& e : v.catalog) {
      const TarHeader& h = e.header;
      put_u64(out, static_cast<uint64_t>(e.name.kind));
      put_u64(out, e.name.index.size());
      for (const auto& c : e.name.index) put_str(out, c);
      put_u64(out, e.name.chunk);
      put_str(out, h.linkname);
      for (uint64_t x : {static_cast<uint64_t>(h.type), uint64_t{h.mode}, uint64_t(h.uid),
                         uint64_t(h.gid), uint64_t(h.mtime), h.size, uint64_t{h.devmajor},
                         uint64_t{h.devminor}, h.header_offset, h.data_offset}) {
        put_u64(out, x);
      }
      put_str(out, h.uname);
      put_str(out, h.gname);
    }
  }
  std::string path = catalog_path(v);
  std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(out.data(), static_cast<std::streamsize>(out.size()));
    if (!f) {
      ::unlink(tmp.c_str());
      return;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) ::unlink(tmp.c_str());
}

bool VolumeStore::load_catalog(Volume& v) {
  if (options_.catalog_dir.empty() || v.sha1.empty()) return false;
  std::ifstream f(catalog_path(v), std::ios::binary);
  if (!f) return false;
  std::stringstream ss;
  ss << f.rdbuf();
  std::string data = ss.str();
  std::string_view in = data;
  if (!in.starts_with(kCatalogMagic)) return false;
  in.remove_prefix(sizeof(kCatalogMagic) - 1);
  uint64_t total, count;
  if (!get_u64(in, total) || !get_u64(in, count)) return false;
  std::vector<CatalogEntry> catalog;
  for (uint64_t i = 0; i < count; ++i) {
    CatalogEntry e{};
    uint64_t kind, n, chunk;
    if (!get_u64(in, kind) || kind > static_cast<uint64_t>(EntryKind::kSignature)) return false;
    e.name.kind = static_cast<EntryKind>(kind);
    if (!get_u64(in, n) || n > in.size()) return false;
    e.name.index.resize(n);
    for (auto& c : e.name.index) {
      if (!get_str(in, c)) return false;
    }
    if (!get_u64(in, chunk) || !get_str(in, e.header.linkname)) return false;
    e.name.chunk = static_cast<int64_t>(chunk);
    uint64_t f[10];
    for (auto& x : f) {
      if (!get_u64(in, x)) return false;
    }
    TarHeader& h = e.header;
    h.type = static_cast<TarType>(f[0]);
    h.mode = static_cast<uint32_t>(f[1]);
    h.uid = static_cast<int64_t>(f[2]);
    h.gid = static_cast<int64_t>(f[3]);
    h.mtime = static_cast<int64_t>(f[4]);
    h.size = f[5];
    h.devmajor = static_cast<uint32_t>(f[6]);
    h.devminor = static_cast<uint32_t>(f[7]);
    h.header_offset = f[8];
    h.data_offset = f[9];
    if (!get_str(in, h.uname) || !get_str(in, h.gname)) return false;
    catalog.push_back(std::move(e));
  }
  v.catalog = std::move(catalog);
  v.catalog_complete = true;
  v.total_size = total;
  return true;
}

}  // namespace dupfs::chain

// Decoded difftar volumes on demand. For each volume the store keeps a catalog (every tar
// entry: name, header, where its data lies in the decoded stream) and serves byte ranges of the
// decoded stream from the BlockCache. A "pass" is one thread streaming a volume from storage
// through its codec: it publishes fixed-size blocks to the cache and extends the catalog, and
// pauses when it is more than a read-ahead window beyond what readers asked for. Readers of
// the same volume wait for the same pass; a pass is restarted only when a block that was
// evicted is needed again. Before a pass publishes anything, the stored bytes' SHA1 is checked
// against the manifest: damaged volumes never serve data.
//
// Seek indexes (docs/seek.md): the first whole pass over a volume also records where decoding
// can restart and the SHA-256 of its stored bytes chunk by chunk; once the SHA1 matched, that
// and the catalog are kept in the archive dir (chain/metadata/volume_index.h). With an index, a
// pass starts at the seek point before the block asked for, reads only from there, and checks
// each stored chunk before decoding it, so nothing is held back and a damaged chunk fails only
// the blocks decoded from it.
//
// Thread-safe. Lock order: volumes_mu_, then a volume's mutex, then the BlockCache's, then the
// BlockPool's (never the reverse); no lock is held while reading storage or decoding.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <semaphore>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include "backends/backend.h"
#include "chain/codec/decode.h"
#include "chain/format/difftar.h"
#include "chain/metadata/volume_index.h"
#include "chain/read/block_cache.h"

namespace dupfs::chain {

struct VolumeStoreOptions {
  size_t block_size = 256 * 1024;
  uint64_t readahead_bytes = 32 << 20;    // a pass runs this far past the last request
  std::chrono::seconds idle_timeout{20};  // a paused pass with no demand ends after this
  // Passes decoding at the same time (0 = one per core, at least 2); paused passes do not
  // count. Bounds CPU contention and the memory of blocks held back until a hash matched.
  unsigned decode_slots = 0;
  std::string catalog_dir;  // where seek indexes persist ("" = nowhere)
  bool seek_index = true;   // record, keep and use seek indexes (false: decode from the start)
  // Seek index files in storage (volume_index_name), which dupfs-backup stored next to its
  // volumes: used when the archive dir has none.
  std::vector<std::string> remote_indexes;
};

class VolumeStore {
 public:
  VolumeStore(std::shared_ptr<const Backend> backend, Credentials credentials, BlockCache& cache,
              VolumeStoreOptions options);
  ~VolumeStore();
  VolumeStore(const VolumeStore&) = delete;
  VolumeStore& operator=(const VolumeStore&) = delete;

  // Registers a volume (remote file name, expected lowercase SHA1 hex or "" when the manifest
  // has none). Returns its id. Loads a persisted catalog when one matches.
  uint32_t add_volume(const std::string& name, const std::string& sha1);

  // `next` follows `volume` in its set: when a reader has driven a pass to the end of
  // `volume`, a pass over `next` starts ahead of demand (it stops at the read-ahead window).
  void set_successor(uint32_t volume, uint32_t next);

  // The catalog entries of `volume` whose index equals `index`, in stream order. Decodes as far
  // as needed to be sure no later entry has that index. kCorruption when the volume is damaged
  // (or damaged before that point).
  Result<std::vector<CatalogEntry>> entries_for(uint32_t volume, const Index& index);

  // True when entries_for(volume, index) would answer without waiting (false when damaged).
  bool catalog_covers(uint32_t volume, const Index& index);

  // Every entry of `volume` (decodes all of it).
  Result<std::vector<CatalogEntry>> catalog(uint32_t volume);

  // Copies bytes [offset, offset+length) of the decoded stream into `out`; fewer only at the
  // end of the stream. `wait` false: kWouldBlock unless every block is at hand (nothing is
  // decoded for such a read, and nothing waited for).
  Result<size_t> read(uint32_t volume, uint64_t offset, char* out, size_t length, bool wait = true);

  const std::string& volume_name(uint32_t volume) const;
  uint64_t passes_started() const { return passes_started_.load(); }

 private:
  struct Pass;
  struct Volume;

  struct PassRun;  // the state of one pass's thread

  Volume& vol(uint32_t id) const;
  // Starts a pass of `v` (its mutex held) that will produce block `block` (from the seek
  // point before it when the volume has an index, else from the start). Returns it.
  std::shared_ptr<Pass> start_pass_locked(uint32_t id, Volume& v, uint64_t block = 0);

  // The steps of a pass (its thread runs run_pass; every other step is called from it, with
  // no lock held unless said). The pass holds a decode slot while it decodes, not while paused.
  //
  // Streams the volume from storage through its codec into feed(), publishes the rest at the
  // end, then end_pass() and a prefetch of the successor when a reader went through.
  void run_pass(uint32_t id, std::shared_ptr<Pass> pass);
  // Starts the SHA1 of the stored bytes beside the decoding, unless it matched already or the
  // manifest gives none.
  void start_hash_check(PassRun& run);
  // Waits for that SHA1 (if started): kCorruption when it does not match the manifest's,
  // storage errors as they came; marks the volume verified when it matches.
  Status check_hash(PassRun& run);
  // Decoded bytes: into the block being filled and the catalog parser; each full block goes to
  // publish(). Its errors end the decoding.
  Status feed(PassRun& run, std::string_view data);
  // Holds back the block being filled (`final`: the stream ended, however short the block) and
  // the entries found so far. Nothing is published before the SHA1 matched: while it is pending
  // decoding goes on, up to the read-ahead window (`final` waits for it). Then publishes all
  // that is held (commit_held_locked) and keeps to the window (throttle).
  Status publish(PassRun& run, bool final);
  // With v.mu held: the held blocks become the pass's recent ones, the held entries extend the
  // catalog (a parse error completes it, with that error); `final` records the stream's length.
  // Wakes every waiter of the volume. (The blocks went to the cache before the lock was taken.)
  void commit_held_locked(PassRun& run, bool final);
  // Flow control, with v.mu held in `lock`: while the pass is a read-ahead window beyond what
  // readers asked for (and nothing needs it to go on), it gives up its decode slot and waits;
  // with no demand for idle_timeout it is cancelled. kCancelled when the pass was cancelled.
  Status throttle(PassRun& run, std::unique_lock<std::mutex>& lock, bool final);
  // Records how the pass ended: a permanent error (is_permanent) fails the volume for good
  // (damage also drops its cached blocks), a transient one fails this pass only; a catalog
  // completed without error is persisted. Returns the volume to prefetch: the successor, when
  // the pass succeeded and a reader got blocks of this volume.
  std::optional<uint32_t> end_pass(PassRun& run, const Status& result);

  Result<Block> block(uint32_t id, uint64_t index, bool wait);
  // Records that a reader got block `index` of `v` (see Volume::read_until).
  static void note_read(Volume& v, uint64_t index);
  void prefetch(uint32_t id);
  // Waits, with the volume's lock held in `lock`, until `covered` holds, starting a cataloguing
  // pass when none runs.
  Status wait_for_catalog(uint32_t id, Volume& v, std::unique_lock<std::mutex>& lock,
                          const std::function<bool()>& covered);
  // The index of `v` after a whole pass recorded it (its SHA1 matched), kept in catalog_dir.
  void persist_index(Volume& v, PassRun& run);
  void load_index(Volume& v);
  std::string index_path(const Volume& v) const;

  std::shared_ptr<const Backend> backend_;
  Credentials credentials_;
  std::optional<SecretBuffer> passphrase_;  // seals the indexes
  BlockCache& cache_;
  VolumeStoreOptions options_;
  std::shared_ptr<BlockPool> pool_;  // buffers for the blocks passes decode
  const std::unordered_set<std::string> remote_indexes_;
  std::atomic<uint64_t> passes_started_{0};
  std::unique_ptr<std::counting_semaphore<1024>> decode_slots_;
  std::atomic<bool> stopping_{false};  // set by the destructor: no new prefetches
  // Time readers spent waiting for passes (logged at info level when the store goes).
  std::atomic<uint64_t> catalog_waits_{0}, catalog_wait_us_{0}, block_waits_{0}, block_wait_us_{0};

  // Guards the deque itself (volumes are never removed, so a Volume& stays valid without it).
  // Held only to add or find a volume; taken before a Volume::mu (~VolumeStore holds it while
  // it takes each), never under one (vol() is not called with a volume's lock held).
  mutable std::mutex volumes_mu_;
  std::deque<std::unique_ptr<Volume>> volumes_;
};

}  // namespace dupfs::chain

// An opened backup location: the collection of sets and chains, the snapshot tree of every
// set, and the volume store and block cache that serve file data. Opening reads names,
// signature files and the newest manifest only (from the local metadata cache when present,
// else from storage, decrypting in parallel, then caching them); a set's manifest is read when
// a file of that set is first read. Thread-safe after open().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "chain/codec/decode.h"
#include "chain/format/collection.h"
#include "chain/read/block_cache.h"
#include "chain/read/memoized.h"
#include "chain/read/snapshot.h"
#include "chain/read/volume_store.h"

namespace dupfs::chain {

struct ArchiveOptions {
  Credentials credentials;
  std::string archive_dir;  // local metadata cache ("" = none)
  uint64_t cache_size = 512ull << 20;
  NamePrefixes prefixes;
  bool numeric_owner = false;  // show stored uid/gid, never mapped through owner names
  VolumeStoreOptions store;    // catalog_dir defaults to archive_dir
};

class Archive {
 public:
  // kNotFound when the location does not exist or holds no complete backup set; kAuth for a
  // wrong passphrase or a missing secret key; kCorruption when metadata is unreadable.
  static Result<std::unique_ptr<Archive>> open(std::shared_ptr<Backend> backend,
                                               ArchiveOptions options);

  const Collection& collection() const { return collection_; }
  // Every browsable set (every complete set with signatures), oldest first.
  size_t snapshot_count() const { return specs_.size(); }
  int64_t snapshot_time(size_t i) const { return specs_.at(i)->time; }
  // The tree of set i, built from its signatures on first use. A permanent error is kept (every
  // later call returns it); after a transient one the next call builds again.
  Result<std::shared_ptr<Snapshot>> snapshot(size_t i);
  // The tree of set i if it was built already, else null (never builds).
  std::shared_ptr<Snapshot> snapshot_if_built(size_t i);
  BlockCache& cache() { return *cache_; }
  VolumeStore& store() { return *store_; }
  const Backend& backend() const { return *backend_; }

 private:
  class MetadataFetcher;
  Archive() = default;
  // Reads `set`'s manifest (`fetched` when it was read at open) and registers its volumes.
  Result<SetVolumes::Volumes> load_volumes(const BackupSet& set,
                                           const std::optional<std::string>& fetched);
  std::shared_ptr<Backend> backend_;
  std::shared_ptr<const MetadataFetcher> fetcher_;
  Collection collection_;
  std::unique_ptr<BlockCache> cache_;
  std::unique_ptr<VolumeStore> store_;
  std::unique_ptr<VersionCache> versions_;
  bool numeric_owner_ = false;
  // One set's contribution to the trees of the snapshots from it on: its signature entries,
  // or (no signatures) the entries of its volumes, computed once when first needed.
  struct SetLayer {
    std::shared_ptr<SetVolumes> set;
    // Read at open; null when the set has none or they could not be read.
    std::shared_ptr<const std::vector<SigEntry>> signatures;
    // The signature file, when reading it at open failed on a transient error: it is read
    // again when the layer is first needed, before falling back to the volumes. "" otherwise.
    std::string signatures_to_retry;
    Memoized<std::shared_ptr<const std::vector<SigEntry>>> entries;
  };
  struct SnapshotSpec {
    int64_t time = 0;
    std::vector<std::shared_ptr<SetLayer>> layers;  // the full's first; dropped once built
    Memoized<std::shared_ptr<Snapshot>> built;
  };
  // The entries `layer` contributes (kept once computed; transient errors are not kept).
  Result<std::shared_ptr<const std::vector<SigEntry>>> layer_entries(SetLayer& layer);
  Result<std::shared_ptr<const std::vector<SigEntry>>> layer_from_volumes(SetVolumes& set);
  // The tree of `spec`, from its layers. Run by spec.built, one load at a time.
  Result<std::shared_ptr<Snapshot>> build_snapshot(SnapshotSpec& spec);
  std::vector<std::unique_ptr<SnapshotSpec>> specs_;
};

// "YYYY-MM-DDTHH:MM:SSZ" (UTC), the name of a snapshot directory.
std::string snapshot_dir_name(int64_t time);

}  // namespace dupfs::chain

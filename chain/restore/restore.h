// Restoring a backup set the way `duplicity restore` and `duplicity verify` read it
// (docs/format.md §2.5, §3.1, §3.7): the chain's sets up to the time, in each set the volumes whose
// manifest range holds the prefix, every set's volumes streamed front to back at the same time
// and collated by index; for each index the newest whole copy (or deletion) wins and the later
// deltas apply to it. Objects come out in index order with their data, straight from the
// decoders: nothing goes through the block cache and nothing decoded is written anywhere by
// this module except by the TreeWriter (the restored files themselves).
//
// Damage: each volume's stored bytes are hashed while they are read (one read per volume) and
// checked against the manifest when the volume ends; a sink learns through on_trusted() that
// everything delivered so far came from volumes whose hash matched. A mismatch, a decoding
// error or a tar error ends the restore with an error naming the volume.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.h"
#include "chain/codec/decode.h"
#include "chain/format/collection.h"
#include "chain/format/index.h"
#include "chain/format/owners.h"  // OwnerMapper, for TreeWriter and VerifySink
#include "chain/format/tar.h"

namespace dupfs::chain {

struct RestoreVolume {
  std::string name;  // remote file name
  std::string sha1;  // lowercase hex from the manifest; "" when it has none
  uint64_t stored_size = 0;
};

struct RestoreSet {
  std::string manifest_name;
  int64_t time = 0;  // the set's end time
  std::vector<RestoreVolume> volumes;
};

// The sets (full first) and volumes a restore of `prefix` as of `time` reads. Manifests come
// from `archive_dir` when a plain copy is there (as duplicity keeps them), else from storage
// (decrypted, then kept there). kNotFound without chains; kCorruption when two chains cover the
// time, a manifest is damaged, or a selected volume is missing from storage.
Result<std::vector<RestoreSet>> plan_restore(const Backend& backend, const Collection& collection,
                                             int64_t time, const Index& prefix,
                                             const Credentials& credentials,
                                             const std::string& archive_dir);

// A piece of a file's data: `bytes` points into a buffer that `owner` keeps alive.
struct DataPiece {
  std::shared_ptr<const std::string> owner;
  std::string_view bytes;
};

// One object of the tree at the restore time. `header` is the metadata of its last entry
// (as duplicity: owners as stored, uname/gname for mapping, mtime, mode, link target, device
// numbers); header.name is cleared; header.size is the data length of a patched file, else 0.
struct RestoredObject {
  Index index;  // relative to the restore prefix
  TarHeader header;
};

// Receives the restored tree. Calls come from one thread, in index order: on_object, then for
// a regular file its data through on_data (possibly no piece) and on_object_end.
class RestoreSink {
 public:
  virtual ~RestoreSink() = default;
  virtual Status on_object(const RestoredObject& object) = 0;
  virtual Status on_data(const DataPiece& piece) = 0;
  virtual Status on_object_end() = 0;
  // Every object delivered so far came from volumes whose hash matched.
  virtual void on_trusted() {}
};

// Counters a progress display reads while a restore runs (any thread).
struct RestoreProgress {
  std::atomic<uint64_t> stored_total{0};  // stored bytes of the selected volumes
  std::atomic<uint64_t> stored_read{0};   // stored bytes decoded so far
  std::atomic<uint64_t> objects{0};       // objects delivered
  std::atomic<uint64_t> bytes{0};         // data bytes delivered
};

struct RestoreResult {
  uint64_t objects = 0;
  // Objects that could not be assembled (a delta without a basis, a delta that does not apply):
  // each is logged with its path and left out, as duplicity does.
  uint64_t skipped = 0;
  // Set with the error when a volume's stored bytes did not match the manifest's hash.
  std::optional<std::string> mismatched_volume;
};

struct RestoreOptions {
  Index prefix;                               // --file-to-restore, () for everything
  RestoreProgress* progress = nullptr;        // optional
  size_t queue_bytes = size_t{64} << 20;      // decoded bytes in flight per set
  size_t readahead_bytes = size_t{32} << 20;  // stored bytes read ahead of the decoder
};

// Streams the tree described by `sets` into `sink`. Errors: the first error of a volume
// (kCorruption naming it for damage or a hash mismatch, kAuth, kNotFound, kIoError), or the
// first error the sink returned. `result` is filled in either case.
Status read_restore(const Backend& backend, const Credentials& credentials,
                    const std::vector<RestoreSet>& sets, const RestoreOptions& options,
                    RestoreSink& sink, RestoreResult& result);

}  // namespace dupfs::chain

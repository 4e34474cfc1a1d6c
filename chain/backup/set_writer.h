// Writing backup sets in duplicity's format (docs/format.md §2-§4, §6, §11 "Writer"): a full set,
// or an incremental against the merged signatures of the newest chain.
//
// SetWriter takes the selected source objects in index order (as walk_source gives them) and
// writes, for each one that is new or changed, its difftar entries (snapshot/, diff/, deleted/,
// multivol_* in 64 KiB pieces) into volumes cut by stored size, and its signature entry into the
// signature file. finish() uploads the last volume, then the signature file, then the manifest:
// the manifest lands last, so a set is complete only when everything it names is stored. Existing
// objects are never replaced (kExists is an error). The decoded manifest and the gzipped
// signature file are also kept in the archive dir (chain/metadata/archive_dir.h), where `dupfs
// mount` and the next incremental find them without decrypting anything.
//
// Threads: the caller's thread reads the source, makes signatures and deltas and forms the tar
// stream; each volume is compressed, encrypted, hashed and stored by a worker thread of its own
// while the next volume is filled (one volume per core in flight, at most 4), and the signature
// file is encoded the same way. Memory is bounded by those volumes (stored bytes are held until
// uploaded, so no temporary files are written) plus 8 MiB of queued plaintext per worker. SetWriter
// itself is not thread-safe; one writer per set. Clear file data only ever lives in memory.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/base/error.h"
#include "chain/backup/source_walk.h"
#include "chain/backup/statistics.h"
#include "chain/codec/decode.h"
#include "chain/codec/encode.h"
#include "chain/format/index.h"
#include "chain/format/sigtar.h"

namespace dupfs::chain {

struct BackupOptions {
  EncodeOptions encode;                 // codec and keys for every stored object
  uint64_t volume_size = 200ull << 20;  // --volsize, bytes
  std::string hostname;                 // the manifest's Hostname (duplicity: gethostname())
  std::string localdir;     // the manifest's Localdir (duplicity: the source path, canonical)
  std::string archive_dir;  // local metadata cache ("" = none)
  // Called after each volume is stored (volume number, stored bytes so far, source bytes read).
  std::function<void(int, uint64_t, uint64_t)> on_volume;
  // Called after each object is stored, with its name (tests use it to interrupt a run).
  std::function<void(const std::string&)> after_store;
};

// What an incremental extends: the newest chain's end time and its merged signatures (with
// signature bytes) in index order, read as the source walk goes (run_backup streams them from
// the archive dir's copies of the signature files, so they are never held whole).
struct ChainState {
  int64_t end_time = 0;
  // The next merged entry, nullopt after the last; errors (damaged signature files) stop the set.
  std::function<Result<std::optional<SignedSigEntry>>()> next;
};

class SetWriter {
 public:
  // A full set at `time` when `previous` is nullopt, else an incremental from
  // previous->end_time to `time` (which must be later).
  static Result<std::unique_ptr<SetWriter>> start(Backend& backend, const BackupOptions& options,
                                                  int64_t time, std::optional<ChainState> previous);
  ~SetWriter();
  SetWriter(const SetWriter&) = delete;
  SetWriter& operator=(const SetWriter&) = delete;

  // The next source object. kInvalidArgument when it is not after the previous one in index
  // order. Unreadable files are logged, counted in errors and left out, as duplicity does.
  Status add(const SourceEntry& source);

  // Writes what is left and stores the signature file and the manifest. Names of the stored
  // objects, in upload order, are in stored_names() afterwards.
  Result<BackupStatistics> finish();

  const std::vector<std::string>& stored_names() const;

 private:
  class Impl;
  explicit SetWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dupfs::chain

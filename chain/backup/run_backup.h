// run_backup() is the whole command: reading the location's collection, deleting what an
// interrupted run left (files of sets without a manifest, their signature files), choosing full
// or incremental as duplicity does, loading the signature chain, checking the last manifest's
// host and directory, walking the source and writing the set.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/base/error.h"
#include "chain/backup/set_writer.h"
#include "chain/backup/statistics.h"
#include "chain/codec/decode.h"

namespace dupfs::chain {

enum class BackupAction { kAuto, kFull, kIncremental };

struct BackupRequest {
  BackupAction action = BackupAction::kAuto;
  // --full-if-older-than as an absolute time: an incremental becomes a full when the newest
  // chain's full set is older than this.
  std::optional<int64_t> full_if_older_than;
  bool allow_source_mismatch = false;
  // Reading the chain's signature files and last manifest when the archive dir lacks them.
  Credentials credentials;
  // The set time (tests); nullopt: now, and later than every set already stored.
  std::optional<int64_t> time;
};

struct BackupOutcome {
  bool full = true;
  int64_t time = 0;
  std::vector<std::string> stored_names;
  BackupStatistics statistics;
};

// Calls `visit` for every selected source object in index order; errors of `visit` come back.
using SourceWalk = std::function<Status(const std::function<Status(SourceEntry&&)>& visit)>;

// kInvalidArgument: an incremental was asked for and the location has no chain or no
// signatures for its newest chain, or the last manifest's host or directory differ (unless
// allow_source_mismatch). kAuth: a needed signature file or manifest cannot be decrypted.
Result<BackupOutcome> run_backup(Backend& backend, const BackupOptions& options,
                                 const BackupRequest& request, const SourceWalk& walk);

}  // namespace dupfs::chain

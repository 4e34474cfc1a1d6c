// Backup sets, chains and signature chains built from a listing of names, exactly as
// duplicity's dup_collections.py builds them (FORMAT.md §1.5). Pure: no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backends/error.h"
#include "chain/names.h"

namespace dupfs::chain {

struct BackupSet {
  FileType type = FileType::kFull;  // kFull or kInc
  int64_t start_time = 0;           // kInc: the end time of the set it extends; kFull: == end_time
  int64_t end_time = 0;             // the set's time
  std::map<int, std::string> volumes;  // volume number -> file name
  std::string manifest_name;           // empty when the set has no manifest
  bool partial = false;

  bool complete() const { return !manifest_name.empty(); }
  bool is_full() const { return type == FileType::kFull; }
};

struct BackupChain {
  BackupSet full;
  std::vector<BackupSet> incs;  // in chain order

  int64_t start_time() const { return full.end_time; }
  int64_t end_time() const { return incs.empty() ? full.end_time : incs.back().end_time; }
  // The full set and every incremental with end time <= t, in order.
  std::vector<const BackupSet*> sets_up_to(int64_t t) const;
  // Every set, full first.
  std::vector<const BackupSet*> sets() const;
};

struct SignatureChain {
  std::string full_name;               // duplicity-full-signatures.T.sigtar...
  int64_t start_time = 0;
  std::vector<std::string> inc_names;  // duplicity-new-signatures..., in chain order
  std::vector<int64_t> inc_end_times;
  int64_t end_time() const { return inc_end_times.empty() ? start_time : inc_end_times.back(); }
};

struct Collection {
  std::vector<BackupChain> chains;      // complete chains, sorted by end time (newest last)
  std::vector<BackupSet> incomplete;    // sets with no manifest
  std::vector<BackupSet> orphaned;      // complete incrementals that fit no chain
  std::vector<SignatureChain> sig_chains;
  std::vector<std::string> orphaned_sigs;
  // Index into sig_chains of the chain whose end equals the newest backup chain's end.
  std::optional<size_t> matched_sig_chain;
  std::vector<std::string> warnings;    // what duplicity would log (set replaced, ...)
};

// Names that do not parse are ignored. kCorruption only for contradictions duplicity also
// refuses (two files with the same volume number in one set).
Result<Collection> build_collection(const std::vector<std::string>& names,
                                    const NamePrefixes& prefixes = {});

// The chain duplicity restores from for time t (FORMAT.md §1.5 rule 6). nullptr when there are
// no chains.
const BackupChain* chain_for_time(const Collection& c, int64_t t);

}  // namespace dupfs::chain

// Backup sets, chains and signature chains built from a listing of names, exactly as
// duplicity's dup_collections.py builds them (docs/format.md §1.5). Pure: no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backends/base/error.h"
#include "chain/format/names.h"

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
  // duplicity's BackupSet.get_filenames(): the volumes in number order, then the manifest unless
  // it is a local .part manifest.
  std::vector<std::string> file_names() const;
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
  std::string full_name;  // duplicity-full-signatures.T.sigtar...
  int64_t start_time = 0;
  std::vector<std::string> inc_names;  // duplicity-new-signatures..., in chain order
  std::vector<int64_t> inc_end_times;
  int64_t end_time() const { return inc_end_times.empty() ? start_time : inc_end_times.back(); }
  // The full signatures plus every new-signatures file with end time <= t, in order.
  std::vector<std::string> names_up_to(int64_t t) const;
};

struct Collection {
  std::vector<BackupChain> chains;  // complete chains, sorted by end time (newest last)
  // Sets with no manifest, in order of first appearance in the listing; then, if matching
  // discarded it, the newest chain's last incremental (its signatures are missing).
  std::vector<BackupSet> incomplete;
  std::vector<BackupSet> orphaned;  // complete incrementals that fit no chain
  // Incrementals displaced by a later one with the same start ("Preferring Backupset over
  // previous one"). duplicity forgets them: they are neither restorable nor extraneous.
  std::vector<BackupSet> replaced;
  std::vector<SignatureChain> sig_chains;  // sorted by end time (stable), newest last
  std::vector<std::string> orphaned_sigs;  // new-signatures files that fit no chain
  // Index into sig_chains of the chain whose end equals the newest backup chain's end.
  std::optional<size_t> matched_sig_chain;
  std::vector<std::string> warnings;  // what duplicity would log (set replaced, ...)

  // The newest chain, which matched_sig_chain pairs with; nullptr when there are no chains.
  const BackupChain* latest_chain() const { return chains.empty() ? nullptr : &chains.back(); }
};

// Names that do not parse are ignored. kCorruption only for contradictions duplicity also
// refuses (two files with the same volume number in one set, two manifests in one set).
//
// `names` is one remote listing. duplicity also feeds in the local cache's .part files, first; a
// caller that wants that behaviour (a crashed backup's set marked partial and complete) passes
// them at the front of `names`. Signature chains are built from `names` only: duplicity's
// separate cache signature chains (preferred when both match) are not modelled.
Result<Collection> build_collection(const std::vector<std::string>& names,
                                    const NamePrefixes& prefixes = {});

// The chain duplicity restores from for time t (docs/format.md §1.5 rule 6). nullptr when there are
// no chains, and also when two chains cover t (find_chain_for_time tells the two apart).
const BackupChain* chain_for_time(const Collection& c, int64_t t);
// Same choice, as an error: kNotFound without chains, kCorruption when two chains cover t
// (duplicity: "Two chains cover the given time").
Result<const BackupChain*> find_chain_for_time(const Collection& c, int64_t t);

// The signature chain for time t (same rule, overlaps allowed, the last covering chain wins).
// nullopt when there are no signature chains.
std::optional<size_t> sig_chain_for_time(const Collection& c, int64_t t);

}  // namespace dupfs::chain

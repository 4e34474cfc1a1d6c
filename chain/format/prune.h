// What duplicity's remove-older-than, remove-all-but-n-full, remove-all-inc-of-but-n-full and
// cleanup delete, decided from a Collection alone (dup_main.remove_old, cleanup and
// dup_collections' get_chains_older_than, get_extraneous). Pure: no I/O; the caller deletes.
//
// One deliberate difference from duplicity: the newest backup chain and its signatures are
// never planned for deletion. duplicity spares "the chain of the matched signature pair", which
// is the newest chain whenever its signatures are found; when they are not (signature files
// deleted, local cache empty), duplicity would delete the newest chain too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "chain/format/collection.h"

namespace dupfs::chain {

enum class PruneMode {
  kWholeChains,       // remove-older-than, remove-all-but-n-full
  kIncrementalsOnly,  // remove-all-inc-of-but-n-full: chains keep their full set
};

struct PrunePlan {
  // Backup chains that go (only their incrementals with kIncrementalsOnly), oldest first, as
  // duplicity lists them ("Deleting backup chains at times:").
  std::vector<const BackupChain*> chains;
  // Signature chains that go (only their new-signatures files with kIncrementalsOnly).
  std::vector<const SignatureChain*> sig_chains;
  // Sets older than t that stay because newer sets depend on them, by time (duplicity warns).
  std::vector<const BackupSet*> required;
  // The newest chain ended before t; it stays anyway (duplicity warns).
  bool newest_chain_older = false;
  // What goes, in duplicity's order: signature chains newest first (new-signatures newest
  // first, then the full signatures), then backup chains newest first, each set newest first
  // with its manifest before its volumes (so an interrupted delete leaves incomplete sets,
  // never a complete set with missing volumes). Empty when `chains` is (duplicity then deletes
  // no signature chain either).
  struct Step {
    bool signatures = false;  // a signature chain's files, else a backup chain's
    int64_t end_time = 0;     // the chain's end time (how duplicity names it)
    std::vector<std::string> names;
  };
  std::vector<Step> steps;
  // Every name of every step, in order.
  std::vector<std::string> names() const;
  // The sets and signature files among `names` (for their copies in a local metadata cache).
  std::vector<const BackupSet*> removed_sets;
  std::vector<std::string> removed_sigs;
};

// The end time duplicity gives a chain: its last set's, except for the newest chain when
// matching discarded its last incremental (signatures missing, docs/format.md §1.5 rule 5):
// duplicity does not move that chain's end back, so it still ends at the discarded set's time.
// What duplicity prints ("Chain end time") and compares with t uses this time.
int64_t duplicity_end_time(const Collection& c, const BackupChain& chain);

// remove-older-than t: chains that ended before t, except the newest.
PrunePlan plan_remove_older_than(const Collection& c, int64_t t,
                                 PruneMode mode = PruneMode::kWholeChains);

// The time remove-all-but-n-full and remove-all-inc-of-but-n-full pass on as t: the full set's
// time of the n-th newest chain (by full time), or 0 (nothing is older) with fewer chains.
// n >= 1.
int64_t nth_last_full_time(const Collection& c, int n);

// cleanup: the files of orphaned and incomplete sets (each set's volumes, then its manifest, in
// duplicity's order: orphaned sets first), then orphaned signature files.
struct CleanupPlan {
  std::vector<std::string> names;
  std::vector<const BackupSet*> removed_sets;
  std::vector<std::string> removed_sigs;  // the orphaned signature files among `names`
};
CleanupPlan plan_cleanup(const Collection& c);

// The files of a local metadata cache (`local_names`, a listing of it) that are copies of what
// goes: every duplicity file with the same times as a removed set (its manifest, signatures,
// volume catalogs; duplicity's BackupSet.delete rule), and the signature files with the same
// times as a removed signature file. Names that do not parse never match.
std::vector<std::string> cache_copies(const std::vector<std::string>& local_names,
                                      const std::vector<const BackupSet*>& removed_sets,
                                      const std::vector<std::string>& removed_sigs,
                                      const NamePrefixes& prefixes = {});

}  // namespace dupfs::chain

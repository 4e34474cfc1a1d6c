#include "chain/format/prune.h"

#include <algorithm>
#include <set>
#include <tuple>

namespace dupfs::chain {
namespace {

// The times that tie a file to its set, as duplicity's BackupSet.delete compares them: a full
// set's time, or an incremental's start and end (signature files carry the same times as their
// set).
using TimeKey = std::tuple<int64_t, int64_t, int64_t>;

TimeKey key_of(const ParsedName& p) {
  if (p.type == FileType::kFull || p.type == FileType::kFullSig) return {p.time, 0, 0};
  return {0, p.start_time, p.end_time};
}

TimeKey key_of(const BackupSet& s) {
  if (s.is_full()) return {s.end_time, 0, 0};
  return {0, s.start_time, s.end_time};
}

bool is_sig(FileType t) { return t == FileType::kFullSig || t == FileType::kNewSig; }

// A set's files newest volume first, manifest before them all (BackupSet.delete reverses
// get_filenames()).
void add_set_names(const BackupSet& s, std::vector<std::string>& out) {
  auto names = s.file_names();
  out.insert(out.end(), names.rbegin(), names.rend());
}

}  // namespace

int64_t duplicity_end_time(const Collection& c, const BackupChain& chain) {
  const bool discarded = std::any_of(
      c.warnings.begin(), c.warnings.end(),
      [](const std::string& w) { return w.starts_with("Warning, discarding last backup set"); });
  if (discarded && &chain == c.latest_chain() && !c.incomplete.empty()) {
    return std::max(chain.end_time(), c.incomplete.back().end_time);
  }
  return chain.end_time();
}

std::vector<std::string> PrunePlan::names() const {
  std::vector<std::string> out;
  for (const Step& step : steps) out.insert(out.end(), step.names.begin(), step.names.end());
  return out;
}

PrunePlan plan_remove_older_than(const Collection& c, int64_t t, PruneMode mode) {
  PrunePlan plan;
  const BackupChain* newest = c.latest_chain();
  // get_older_than_required: sets older than t in chains that reach t or later.
  for (const BackupChain& chain : c.chains) {
    if (duplicity_end_time(c, chain) < t) continue;
    for (const BackupSet* s : chain.sets()) {
      if (s->end_time < t) plan.required.push_back(s);
    }
  }
  std::stable_sort(
      plan.required.begin(), plan.required.end(),
      [](const BackupSet* a, const BackupSet* b) { return a->end_time < b->end_time; });
  plan.newest_chain_older = newest != nullptr && duplicity_end_time(c, *newest) < t;

  // get_chains_older_than, then (remove-all-inc-of-but-n-full) only chains with incrementals.
  for (const BackupChain& chain : c.chains) {
    if (chain.end_time() >= t || &chain == newest) continue;
    if (mode == PruneMode::kIncrementalsOnly && chain.incs.empty()) continue;
    plan.chains.push_back(&chain);
  }
  if (plan.chains.empty()) return plan;

  // get_signature_chains_older_than: added only when something is deleted.
  for (size_t i = 0; i < c.sig_chains.size(); ++i) {
    const SignatureChain& sc = c.sig_chains[i];
    if (sc.end_time() >= t || c.matched_sig_chain == i) continue;
    if (newest != nullptr && sc.start_time == newest->full.end_time) continue;
    plan.sig_chains.push_back(&sc);
  }

  const bool keep_full = mode == PruneMode::kIncrementalsOnly;
  for (auto it = plan.sig_chains.rbegin(); it != plan.sig_chains.rend(); ++it) {
    const SignatureChain& sc = **it;
    PrunePlan::Step step{true, sc.end_time(), {sc.inc_names.rbegin(), sc.inc_names.rend()}};
    if (!keep_full) step.names.push_back(sc.full_name);
    plan.removed_sigs.insert(plan.removed_sigs.end(), step.names.begin(), step.names.end());
    plan.steps.push_back(std::move(step));
  }
  for (auto it = plan.chains.rbegin(); it != plan.chains.rend(); ++it) {
    const BackupChain& chain = **it;
    PrunePlan::Step step{false, chain.end_time(), {}};
    for (auto inc = chain.incs.rbegin(); inc != chain.incs.rend(); ++inc) {
      add_set_names(*inc, step.names);
      plan.removed_sets.push_back(&*inc);
    }
    if (!keep_full) {
      add_set_names(chain.full, step.names);
      plan.removed_sets.push_back(&chain.full);
    }
    plan.steps.push_back(std::move(step));
  }
  return plan;
}

int64_t nth_last_full_time(const Collection& c, int n) {
  std::vector<int64_t> fulls;
  for (const BackupChain& chain : c.chains) fulls.push_back(chain.full.end_time);
  if (n < 1 || fulls.size() < static_cast<size_t>(n)) return 0;
  std::sort(fulls.begin(), fulls.end(), std::greater<>());
  return fulls[static_cast<size_t>(n) - 1];
}

CleanupPlan plan_cleanup(const Collection& c) {
  CleanupPlan plan;
  for (const auto* sets : {&c.orphaned, &c.incomplete}) {
    for (const BackupSet& s : *sets) {
      auto names = s.file_names();
      plan.names.insert(plan.names.end(), names.begin(), names.end());
      plan.removed_sets.push_back(&s);
    }
  }
  for (const std::string& sig : c.orphaned_sigs) {
    plan.names.push_back(sig);
    plan.removed_sigs.push_back(sig);
  }
  return plan;
}

std::vector<std::string> cache_copies(const std::vector<std::string>& local_names,
                                      const std::vector<const BackupSet*>& removed_sets,
                                      const std::vector<std::string>& removed_sigs,
                                      const NamePrefixes& prefixes) {
  std::set<TimeKey> set_keys, sig_keys;
  for (const BackupSet* s : removed_sets) set_keys.insert(key_of(*s));
  for (const std::string& name : removed_sigs) {
    if (auto p = parse_name(name, prefixes); p && is_sig(p->type)) sig_keys.insert(key_of(*p));
  }
  std::vector<std::string> out;
  for (const std::string& name : local_names) {
    auto p = parse_name(name, prefixes);
    if (!p) continue;
    TimeKey k = key_of(*p);
    if (set_keys.contains(k) || (is_sig(p->type) && sig_keys.contains(k))) out.push_back(name);
  }
  return out;
}

}  // namespace dupfs::chain

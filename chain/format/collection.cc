#include "chain/format/collection.h"

#include <fmt/format.h>

#include <algorithm>
#include <tuple>

namespace dupfs::chain {
namespace {

std::string join(const std::vector<std::string>& names, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += sep;
    out += names[i];
  }
  return out;
}

std::string describe(const BackupSet& s) {
  std::vector<std::string> files;
  if (s.complete()) files.push_back(s.manifest_name);
  for (const auto& [n, name] : s.volumes) files.push_back(name);
  return "[" + join(files, ", ") + "]";
}

// Step 1 of §1.5: group volume and manifest names into sets, keyed by type and times, in order of
// first appearance (duplicity's list of sets, searched front to back).
Result<std::vector<BackupSet>> group_sets(const std::vector<std::string>& names,
                                          const NamePrefixes& prefixes) {
  std::vector<BackupSet> sets;
  std::map<std::tuple<FileType, int64_t, int64_t>, size_t> by_key;
  for (const std::string& name : names) {
    auto pr = parse_name(name, prefixes);
    if (!pr || (pr->type != FileType::kFull && pr->type != FileType::kInc)) continue;
    int64_t start = pr->type == FileType::kFull ? pr->time : pr->start_time;
    int64_t end = pr->type == FileType::kFull ? pr->time : pr->end_time;
    auto [it, inserted] = by_key.try_emplace({pr->type, start, end}, sets.size());
    if (inserted) {
      BackupSet s;
      s.type = pr->type;
      s.start_time = start;
      s.end_time = end;
      s.partial = pr->partial;  // from the first file added, as duplicity does
      sets.push_back(std::move(s));
    }
    BackupSet& set = sets[it->second];
    if (pr->manifest) {
      if (set.complete()) {
        return error(ErrorKind::kCorruption, "two manifests for one backup set: {} and {}",
                     set.manifest_name, name);
      }
      set.manifest_name = name;
    } else {
      auto [vol, added] = set.volumes.try_emplace(pr->volume, name);
      if (!added) {
        return error(ErrorKind::kCorruption, "volume {} of one backup set appears twice: {} and {}",
                     pr->volume, vol->second, name);
      }
    }
  }
  return sets;
}

// BackupChain.add_inc.
bool add_inc(BackupChain& chain, BackupSet& inc, Collection& c) {
  if (chain.end_time() == inc.start_time) {
    chain.incs.push_back(std::move(inc));
    return true;
  }
  if (!chain.incs.empty() && inc.start_time == chain.incs.back().start_time &&
      inc.end_time > chain.incs.back().end_time) {
    c.warnings.push_back(fmt::format("Preferring Backupset over previous one! {} replaces {}",
                                     describe(inc), describe(chain.incs.back())));
    c.replaced.push_back(std::move(chain.incs.back()));
    chain.incs.back() = std::move(inc);
    return true;
  }
  return false;
}

// Step 4 of §1.5 (get_signature_chains), for one listing.
void build_sig_chains(const std::vector<std::string>& names, const NamePrefixes& prefixes,
                      Collection& c) {
  struct NewSig {
    std::string name;
    int64_t start, end;
  };
  std::vector<NewSig> new_sigs;
  for (const std::string& name : names) {
    auto pr = parse_name(name, prefixes);
    if (!pr) continue;
    if (pr->type == FileType::kFullSig) {
      SignatureChain chain;
      chain.full_name = name;
      chain.start_time = pr->time;
      c.sig_chains.push_back(std::move(chain));
    } else if (pr->type == FileType::kNewSig) {
      new_sigs.push_back({name, pr->start_time, pr->end_time});
    }
  }
  std::stable_sort(new_sigs.begin(), new_sigs.end(),
                   [](const NewSig& a, const NewSig& b) { return a.start < b.start; });
  for (NewSig& sig : new_sigs) {
    auto fits = std::find_if(c.sig_chains.begin(), c.sig_chains.end(),
                             [&](const SignatureChain& ch) { return ch.end_time() == sig.start; });
    if (fits == c.sig_chains.end()) {
      c.orphaned_sigs.push_back(std::move(sig.name));
    } else {
      fits->inc_names.push_back(std::move(sig.name));
      fits->inc_end_times.push_back(sig.end);
    }
  }
  std::stable_sort(
      c.sig_chains.begin(), c.sig_chains.end(),
      [](const SignatureChain& a, const SignatureChain& b) { return a.end_time() < b.end_time(); });
}

// Step 5 of §1.5 (set_matched_chain_pair). One duplicity quirk is kept on purpose: the "set
// before last" is compared by its end_time, which duplicity leaves unset for a full set, so the
// newest incremental is only discarded when it follows another incremental.
void match_sig_chain(Collection& c) {
  if (c.chains.empty() || c.sig_chains.empty()) return;
  BackupChain& latest = c.chains.back();
  for (size_t i = c.sig_chains.size(); i-- > 0;) {
    int64_t sig_end = c.sig_chains[i].end_time();
    if (sig_end == latest.end_time()) {
      c.matched_sig_chain = i;
      return;
    }
    if (latest.incs.size() >= 2 && sig_end == latest.incs[latest.incs.size() - 2].end_time) {
      c.warnings.push_back(
          fmt::format("Warning, discarding last backup set, because of missing signature file. {}",
                      describe(latest.incs.back())));
      c.incomplete.push_back(std::move(latest.incs.back()));
      latest.incs.pop_back();
      c.matched_sig_chain = i;
      return;
    }
  }
}

// CollectionsStatus.warn().
void add_status_warnings(Collection& c) {
  if (!c.orphaned_sigs.empty()) {
    c.warnings.push_back("Warning, found the following remote orphaned signature file(s):\n" +
                         join(c.orphaned_sigs, "\n"));
  }
  if (!c.sig_chains.empty() && !c.matched_sig_chain) {
    c.warnings.push_back("Warning, found signatures but no corresponding backup files");
  }
  if (!c.incomplete.empty()) {
    c.warnings.push_back(
        "Warning, found incomplete backup sets, probably left from aborted session");
  }
  if (!c.orphaned.empty()) {
    std::vector<std::string> sets;
    for (const BackupSet& s : c.orphaned) sets.push_back(describe(s));
    c.warnings.push_back("Warning, found the following orphaned backup file(s):\n" +
                         join(sets, "\n"));
  }
}

}  // namespace

std::vector<std::string> BackupSet::file_names() const {
  std::vector<std::string> names;
  for (const auto& [n, name] : volumes) names.push_back(name);
  if (complete()) {
    auto pr = parse_name(manifest_name);
    // A name that no longer parses (other prefixes) cannot be a local .part manifest here.
    if (!pr || !pr->partial) names.push_back(manifest_name);
  }
  return names;
}

std::vector<const BackupSet*> BackupChain::sets_up_to(int64_t t) const {
  std::vector<const BackupSet*> out{&full};
  for (const BackupSet& inc : incs) {
    if (inc.end_time <= t) out.push_back(&inc);
  }
  return out;
}

std::vector<const BackupSet*> BackupChain::sets() const {
  std::vector<const BackupSet*> out{&full};
  for (const BackupSet& inc : incs) out.push_back(&inc);
  return out;
}

std::vector<std::string> SignatureChain::names_up_to(int64_t t) const {
  std::vector<std::string> out{full_name};
  for (size_t i = 0; i < inc_names.size(); ++i) {
    if (inc_end_times[i] <= t) out.push_back(inc_names[i]);
  }
  return out;
}

Result<Collection> build_collection(const std::vector<std::string>& names,
                                    const NamePrefixes& prefixes) {
  auto sets = group_sets(names, prefixes);
  if (!sets) return std::unexpected(sets.error());

  Collection c;
  // Step 2 and the sort of step 3 (get_sorted_sets): stable, by end time.
  std::vector<BackupSet> complete;
  for (BackupSet& s : *sets) {
    (s.complete() ? complete : c.incomplete).push_back(std::move(s));
  }
  std::stable_sort(complete.begin(), complete.end(),
                   [](const BackupSet& a, const BackupSet& b) { return a.end_time < b.end_time; });

  // Step 3 (add_to_chains): fulls start chains, incrementals go to the first chain that takes
  // them, in order of chain creation.
  for (BackupSet& s : complete) {
    if (s.is_full()) {
      BackupChain chain;
      chain.full = std::move(s);
      c.chains.push_back(std::move(chain));
      continue;
    }
    bool added = false;
    for (BackupChain& chain : c.chains) {
      if (add_inc(chain, s, c)) {
        added = true;
        break;
      }
    }
    if (!added) c.orphaned.push_back(std::move(s));
  }
  std::stable_sort(
      c.chains.begin(), c.chains.end(),
      [](const BackupChain& a, const BackupChain& b) { return a.end_time() < b.end_time(); });

  build_sig_chains(names, prefixes, c);
  match_sig_chain(c);
  add_status_warnings(c);
  return c;
}

Result<const BackupChain*> find_chain_for_time(const Collection& c, int64_t t) {
  if (c.chains.empty()) return error(ErrorKind::kNotFound, "no backup chains found");
  const BackupChain* covering = nullptr;
  for (const BackupChain& chain : c.chains) {
    if (chain.start_time() <= t && t <= chain.end_time()) {
      if (covering) {
        return error(ErrorKind::kCorruption, "two backup chains cover time {}",
                     format_name_time(t));
      }
      covering = &chain;
    }
  }
  if (covering) return covering;
  const BackupChain* older = nullptr;
  for (const BackupChain& chain : c.chains) {
    if (chain.end_time() < t) older = &chain;
  }
  return older ? older : &c.chains.front();
}

const BackupChain* chain_for_time(const Collection& c, int64_t t) {
  auto chain = find_chain_for_time(c, t);
  return chain ? *chain : nullptr;
}

std::optional<size_t> sig_chain_for_time(const Collection& c, int64_t t) {
  if (c.sig_chains.empty()) return std::nullopt;
  std::optional<size_t> covering, older;
  for (size_t i = 0; i < c.sig_chains.size(); ++i) {
    const SignatureChain& chain = c.sig_chains[i];
    if (chain.start_time <= t && t <= chain.end_time()) covering = i;
    if (chain.end_time() < t) older = i;
  }
  if (covering) return covering;
  if (older) return older;
  return 0;
}

}  // namespace dupfs::chain

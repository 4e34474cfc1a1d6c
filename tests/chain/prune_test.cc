// What remove-older-than, remove-all-but-n-full, remove-all-inc-of-but-n-full and cleanup
// delete (dup_main.remove_old / cleanup rules): hand-made listings, and PruneOracle, which runs
// duplicity 0.8.22's own actions against a recording backend on random listings.
#include "chain/format/prune.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace dupfs::chain {
namespace {

constexpr int64_t kT0 = 1'760'000'000;
constexpr int64_t kHour = 3600;

// The files of one complete set with `volumes` volumes and its signatures.
void add_full(std::vector<std::string>& names, int64_t t, int volumes = 1, bool sigs = true) {
  for (int v = 1; v <= volumes; ++v) names.push_back(full_volume_name(t, v, ".gpg"));
  names.push_back(full_manifest_name(t, ".gpg"));
  if (sigs) names.push_back(full_sig_name(t, ".gpg"));
}
void add_inc(std::vector<std::string>& names, int64_t from, int64_t to, int volumes = 1,
             bool sigs = true) {
  for (int v = 1; v <= volumes; ++v) names.push_back(inc_volume_name(from, to, v, ".gpg"));
  names.push_back(inc_manifest_name(from, to, ".gpg"));
  if (sigs) names.push_back(new_sig_name(from, to, ".gpg"));
}

Collection build(const std::vector<std::string>& names) {
  auto c = build_collection(names);
  EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message);
  return c ? *std::move(c) : Collection{};
}

std::set<std::string> as_set(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

// Three chains: A (full + 2 incs), B (full only), C (full + 1 inc, the newest).
struct ThreeChains {
  int64_t a = kT0, a1 = kT0 + kHour, a2 = kT0 + 2 * kHour;
  int64_t b = kT0 + 10 * kHour;
  int64_t c = kT0 + 20 * kHour, c1 = kT0 + 21 * kHour;
  std::vector<std::string> names;
  ThreeChains() {
    add_full(names, a, 2);
    add_inc(names, a, a1);
    add_inc(names, a1, a2, 3);
    add_full(names, b);
    add_full(names, c);
    add_inc(names, c, c1);
    names.push_back("unrelated.txt");
  }
  std::vector<std::string> chain_a() const {
    std::vector<std::string> n;
    add_full(n, a, 2);
    add_inc(n, a, a1);
    add_inc(n, a1, a2, 3);
    return n;
  }
};

TEST(Prune, RemoveOlderThanTakesWholeChainsThatEndedBeforeT) {
  ThreeChains f;
  Collection c = build(f.names);
  // t inside chain B's lifetime (B ends at b): only A ended before.
  auto plan = plan_remove_older_than(c, f.b);
  ASSERT_EQ(plan.chains.size(), 1u);
  EXPECT_EQ(plan.chains[0]->start_time(), f.a);
  EXPECT_EQ(as_set(plan.names()), as_set(f.chain_a()));
  EXPECT_FALSE(plan.newest_chain_older);
  EXPECT_TRUE(plan.required.empty());
  EXPECT_EQ(plan.removed_sets.size(), 3u);

  // Just after B: A and B.
  plan = plan_remove_older_than(c, f.b + 1);
  ASSERT_EQ(plan.chains.size(), 2u);
  EXPECT_EQ(plan.chains[0]->start_time(), f.a);
  EXPECT_EQ(plan.chains[1]->start_time(), f.b);
}

TEST(Prune, DeletionOrderIsSignaturesThenNewestSetFirstManifestBeforeVolumes) {
  ThreeChains f;
  Collection c = build(f.names);
  auto plan = plan_remove_older_than(c, f.b);
  const std::vector<std::string> expected = {
      new_sig_name(f.a1, f.a2, ".gpg"),
      new_sig_name(f.a, f.a1, ".gpg"),
      full_sig_name(f.a, ".gpg"),
      inc_manifest_name(f.a1, f.a2, ".gpg"),
      inc_volume_name(f.a1, f.a2, 3, ".gpg"),
      inc_volume_name(f.a1, f.a2, 2, ".gpg"),
      inc_volume_name(f.a1, f.a2, 1, ".gpg"),
      inc_manifest_name(f.a, f.a1, ".gpg"),
      inc_volume_name(f.a, f.a1, 1, ".gpg"),
      full_manifest_name(f.a, ".gpg"),
      full_volume_name(f.a, 2, ".gpg"),
      full_volume_name(f.a, 1, ".gpg"),
  };
  EXPECT_EQ(plan.names(), expected);
}

TEST(Prune, TheNewestChainStaysEvenWhenOlderThanT) {
  ThreeChains f;
  Collection c = build(f.names);
  auto plan = plan_remove_older_than(c, f.c1 + 1000);
  EXPECT_TRUE(plan.newest_chain_older);
  ASSERT_EQ(plan.chains.size(), 2u);
  for (const auto& name : plan.names()) {
    auto p = parse_name(name);
    ASSERT_TRUE(p);
    EXPECT_LT(std::max(p->time, p->end_time), f.c) << name;
  }
}

TEST(Prune, TheNewestChainStaysWithoutItsSignaturesToo) {
  // duplicity would delete it here (no signature chain matches); dupfs never does.
  ThreeChains f;
  std::vector<std::string> names;
  for (const auto& n : f.names) {
    if (n.find("signatures") == std::string::npos) names.push_back(n);
  }
  Collection c = build(names);
  ASSERT_FALSE(c.matched_sig_chain);
  auto plan = plan_remove_older_than(c, f.c1 + 1000);
  ASSERT_EQ(plan.chains.size(), 2u);
  EXPECT_NE(plan.chains[1], c.latest_chain());
}

TEST(Prune, SetsNewerSetsDependOnAreReportedAndKept) {
  ThreeChains f;
  Collection c = build(f.names);
  // t between C's full and its incremental: C's full is older than t but C ends after it.
  auto plan = plan_remove_older_than(c, f.c + 1);
  ASSERT_EQ(plan.required.size(), 1u);
  EXPECT_EQ(plan.required[0]->end_time, f.c);
  for (const auto& name : plan.names()) {
    auto p = parse_name(name);
    ASSERT_TRUE(p);
    EXPECT_LT(std::max(p->time, p->end_time), f.c) << name;
  }
  EXPECT_EQ(plan.chains.size(), 2u);
}

TEST(Prune, NothingOlderMeansNoSignatureChainsEither) {
  ThreeChains f;
  Collection c = build(f.names);
  auto plan = plan_remove_older_than(c, f.a);
  EXPECT_TRUE(plan.chains.empty());
  EXPECT_TRUE(plan.names().empty());
  EXPECT_TRUE(plan.sig_chains.empty());
}

TEST(Prune, IncrementalsOnlyKeepsFullsAndSkipsChainsWithoutIncrementals) {
  ThreeChains f;
  Collection c = build(f.names);
  auto plan = plan_remove_older_than(c, f.c, PruneMode::kIncrementalsOnly);
  // B has no incrementals: not listed. C is the newest.
  ASSERT_EQ(plan.chains.size(), 1u);
  EXPECT_EQ(plan.chains[0]->start_time(), f.a);
  std::vector<std::string> expected;
  add_inc(expected, f.a, f.a1);
  add_inc(expected, f.a1, f.a2, 3);
  EXPECT_EQ(as_set(plan.names()), as_set(expected));
  ASSERT_EQ(plan.removed_sets.size(), 2u);
  for (const auto* s : plan.removed_sets) EXPECT_FALSE(s->is_full());
}

TEST(Prune, NthLastFullTime) {
  ThreeChains f;
  Collection c = build(f.names);
  EXPECT_EQ(nth_last_full_time(c, 1), f.c);
  EXPECT_EQ(nth_last_full_time(c, 2), f.b);
  EXPECT_EQ(nth_last_full_time(c, 3), f.a);
  EXPECT_EQ(nth_last_full_time(c, 4), 0);
  // remove-all-but-n-full 2: everything that ended before B's full.
  auto plan = plan_remove_older_than(c, nth_last_full_time(c, 2));
  ASSERT_EQ(plan.chains.size(), 1u);
  EXPECT_EQ(plan.chains[0]->start_time(), f.a);
  EXPECT_TRUE(plan_remove_older_than(c, nth_last_full_time(c, 4)).names().empty());
}

TEST(Prune, CleanupTakesOrphanedIncompleteAndOrphanedSignaturesOnly) {
  ThreeChains f;
  std::vector<std::string> names = f.names;
  // An interrupted full (volumes, no manifest), an orphaned incremental (its start matches no
  // chain end) and an orphaned new-signatures file.
  const int64_t broken = f.c1 + kHour;
  names.push_back(full_volume_name(broken, 1, ".gpg"));
  names.push_back(full_volume_name(broken, 2, ".gpg"));
  add_inc(names, f.b + 5, f.b + 50, 1, false);
  names.push_back(new_sig_name(f.a2 + 7, f.a2 + 70, ".gpg"));
  names.push_back("duplicity-full.garbage.vol1.difftar.gpg");
  Collection c = build(names);
  auto plan = plan_cleanup(c);
  std::vector<std::string> expected = {
      inc_volume_name(f.b + 5, f.b + 50, 1, ".gpg"), inc_manifest_name(f.b + 5, f.b + 50, ".gpg"),
      full_volume_name(broken, 1, ".gpg"),           full_volume_name(broken, 2, ".gpg"),
      new_sig_name(f.a2 + 7, f.a2 + 70, ".gpg"),
  };
  EXPECT_EQ(plan.names, expected);
  EXPECT_EQ(plan.removed_sets.size(), 2u);
  EXPECT_EQ(plan.removed_sigs, std::vector<std::string>{new_sig_name(f.a2 + 7, f.a2 + 70, ".gpg")});
  // A clean archive: nothing.
  EXPECT_TRUE(plan_cleanup(build(f.names)).names.empty());
}

TEST(Prune, CacheCopiesFollowTheRemovedSetsTimes) {
  ThreeChains f;
  Collection c = build(f.names);
  auto plan = plan_remove_older_than(c, f.b);
  const std::string catalog =
      full_volume_name(f.a, 1, ".gpg") + "." + std::string(40, 'a') + ".catalog";
  const std::vector<std::string> cache = {
      full_manifest_name(f.a, ""),
      full_sig_name(f.a, ".gz"),
      inc_manifest_name(f.a, f.a1, ""),
      new_sig_name(f.a1, f.a2, ".gz"),
      catalog,
      full_manifest_name(f.b, ""),
      full_sig_name(f.b, ".gz"),
      new_sig_name(f.c, f.c1, ".gz"),
      "lockfile",
  };
  auto copies = cache_copies(cache, plan.removed_sets, plan.removed_sigs);
  EXPECT_EQ(as_set(copies),
            as_set({full_manifest_name(f.a, ""), full_sig_name(f.a, ".gz"),
                    inc_manifest_name(f.a, f.a1, ""), new_sig_name(f.a1, f.a2, ".gz"), catalog}));
}

TEST(Prune, AnOrphanedSignatureTakesOnlySignatureCopiesWithItsTimes) {
  // The full signatures of chain A are gone: A's new-signatures are orphaned, but A's sets are
  // complete and their cached manifests must stay.
  ThreeChains f;
  std::vector<std::string> names;
  for (const auto& n : f.names) {
    if (n != full_sig_name(f.a, ".gpg")) names.push_back(n);
  }
  Collection c = build(names);
  auto plan = plan_cleanup(c);
  EXPECT_EQ(as_set(plan.names),
            as_set({new_sig_name(f.a, f.a1, ".gpg"), new_sig_name(f.a1, f.a2, ".gpg")}));
  const std::vector<std::string> cache = {inc_manifest_name(f.a, f.a1, ""),
                                          new_sig_name(f.a, f.a1, ".gz")};
  EXPECT_EQ(cache_copies(cache, plan.removed_sets, plan.removed_sigs),
            std::vector<std::string>{new_sig_name(f.a, f.a1, ".gz")});
}

}  // namespace
}  // namespace dupfs::chain

namespace dupfs::chain {
namespace {

TEST(Prune, DiscardedNewestSetStillEndsDuplicitysChain) {
  ThreeChains f;
  std::vector<std::string> names = f.names;
  const int64_t c2 = f.c1 + kHour;
  add_inc(names, f.c1, c2, 1, /*sigs=*/false);
  Collection c = build(names);
  ASSERT_EQ(c.latest_chain()->end_time(), f.c1);  // c2 was discarded: no signatures
  EXPECT_EQ(duplicity_end_time(c, *c.latest_chain()), c2);
  EXPECT_EQ(duplicity_end_time(c, c.chains.front()), f.a2);
  // duplicity compares t with that end: between c1 and c2 the newest chain is not "older".
  EXPECT_FALSE(plan_remove_older_than(c, f.c1 + 1).newest_chain_older);
  EXPECT_TRUE(plan_remove_older_than(c, c2 + 1).newest_chain_older);
  // Without the discard, the plain end.
  Collection intact = build(f.names);
  EXPECT_EQ(duplicity_end_time(intact, *intact.latest_chain()), f.c1);
}

}  // namespace
}  // namespace dupfs::chain

// ---- Differential test against duplicity 0.8.22's own dup_main.remove_old / cleanup ----

namespace dupfs::chain {
namespace {

// Reads blocks separated by "====" lines: a command line ("remove T INC", "nfull N INC" or
// "cleanup") and a listing; runs duplicity's action with --force against a recording backend
// and prints "M<matched>" and the deleted names in order.
constexpr const char* kPruneOracle = R"PY(
import sys, gettext
gettext.install('duplicity', names=['ngettext'])
from duplicity import log
log.setup(); log.setverbosity(log.ERROR)
from duplicity import config, dup_collections, dup_time, dup_main
dup_time.setcurtime()

class Remote(object):
    def __init__(self, names):
        self.names = names
        self.deleted = []
    def list(self):
        return list(self.names)
    def delete(self, names):
        self.deleted.extend(names)

out = []
for block in sys.stdin.buffer.read().split(b"====\n"):
    lines = [n for n in block.split(b"\n") if n]
    cmd = lines[0].decode().split()
    remote = Remote(lines[1:])
    config.force = True
    config.dry_run = False
    try:
        cs = dup_collections.CollectionsStatus(remote, None, u"replicate").set_values()
        if cmd[0] == "cleanup":
            dup_main.cleanup(cs)
        else:
            config.remove_all_inc_of_but_n_full_mode = cmd[2] == "1"
            if cmd[0] == "remove":
                config.remove_time = int(cmd[1])
                dup_main.remove_old(cs)
            else:
                config.keep_chains = int(cmd[1])
                dup_main.remove_all_but_n_full(cs)
    except AssertionError:
        out.append("CRASH\n")
        continue
    text = "M%d\n" % (1 if cs.matched_chain_pair else 0)
    out.append(text + "".join(n.decode() + "\n" for n in remote.deleted))
sys.stdout.write("====\n".join(out))
)PY";

std::vector<std::string> random_prune_listing(std::mt19937& rng) {
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto day = [](int k) { return kT0 + k * 86400; };
  std::vector<std::string> names;
  auto add_set = [&](bool full, int a, int b) {
    int vols = uni(1, 2);
    for (int v = 1; v <= vols; ++v) {
      names.push_back(full ? full_volume_name(day(a), v, ".gpg")
                           : inc_volume_name(day(a), day(b), v, ".gpg"));
    }
    if (uni(0, 9) != 0) {
      names.push_back(full ? full_manifest_name(day(a), ".gpg")
                           : inc_manifest_name(day(a), day(b), ".gpg"));
    }
    if (uni(0, 7) != 0) {
      names.push_back(full ? full_sig_name(day(a), ".gpg") : new_sig_name(day(a), day(b), ".gpg"));
    }
  };
  int k = 0;
  for (int chains = uni(0, 4); chains > 0; --chains) {
    k += uni(1, 3);
    add_set(true, k, k);
    for (int incs = uni(0, 3); incs > 0; --incs) {
      int from = k;
      k += uni(1, 2);
      add_set(false, from, k);
      if (uni(0, 9) == 0) {  // a later incremental with the same start replaces this one
        k += 1;
        add_set(false, from, k);
      }
    }
  }
  if (uni(0, 3) == 0) add_set(false, k + 5, k + 6);  // orphaned
  if (uni(0, 3) == 0) names.push_back(new_sig_name(day(k + 7), day(k + 8), ".gpg"));
  if (uni(0, 4) == 0) names.push_back("not-duplicity.txt");
  std::shuffle(names.begin(), names.end(), rng);
  return names;
}

TEST(PruneOracle, DeletesWhatDuplicityDeletes) {
  constexpr const char* kPython = "/usr/bin/python3.11";
  if (access(kPython, X_OK) != 0) GTEST_SKIP() << kPython << " not available";
  std::mt19937 rng(7);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  struct Case {
    std::string command;
    std::vector<std::string> names;
  };
  std::vector<Case> cases;
  for (int i = 0; i < 400; ++i) {
    auto names = random_prune_listing(rng);
    const int kind = uni(0, 2);
    std::string command;
    if (kind == 0) {
      int64_t t = kT0 + uni(0, 18) * 86400 + uni(-1, 1);
      command = "remove " + std::to_string(t) + " " + std::to_string(uni(0, 1));
    } else if (kind == 1) {
      command = "nfull " + std::to_string(uni(1, 4)) + " " + std::to_string(uni(0, 1));
    } else {
      command = "cleanup";
    }
    cases.push_back({command, std::move(names)});
  }
  std::string input;
  for (size_t i = 0; i < cases.size(); ++i) {
    if (i > 0) input += "====\n";
    input += cases[i].command + "\n";
    for (const auto& n : cases[i].names) input += n + "\n";
  }
  auto r = test::run({kPython, "-c", kPruneOracle}, {}, std::chrono::seconds(300), input);
  ASSERT_TRUE(r.ok()) << r.err;
  std::vector<std::string> answers;
  size_t start = 0;
  for (;;) {
    size_t at = r.out.find("====\n", start);
    answers.push_back(r.out.substr(start, at == std::string::npos ? at : at - start));
    if (at == std::string::npos) break;
    start = at + 5;
  }
  ASSERT_EQ(answers.size(), cases.size());
  int compared = 0, deleting = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    SCOPED_TRACE(c.command);
    auto collection = build_collection(c.names);
    if (answers[i] == "CRASH\n") {
      EXPECT_FALSE(collection.has_value());
      continue;
    }
    ASSERT_TRUE(collection.has_value()) << collection.error().message;
    std::istringstream in(answers[i]);
    std::string matched;
    std::getline(in, matched);
    std::vector<std::string> theirs;
    for (std::string line; std::getline(in, line);) theirs.push_back(line);
    EXPECT_EQ(matched == "M1", collection->matched_sig_chain.has_value());
    std::vector<std::string> mine;
    std::istringstream cmd(c.command);
    std::string what;
    int64_t arg = 0;
    int inc_only = 0;
    cmd >> what >> arg >> inc_only;
    const auto mode = inc_only ? PruneMode::kIncrementalsOnly : PruneMode::kWholeChains;
    if (what == "cleanup") {
      mine = plan_cleanup(*collection).names;
    } else {
      // duplicity deletes the newest chain when no signature chain matches it; dupfs never
      // does (prune.h). Those cases are not compared.
      if (matched != "M1") continue;
      int64_t t = what == "remove" ? arg : nth_last_full_time(*collection, static_cast<int>(arg));
      mine = plan_remove_older_than(*collection, t, mode).names();
    }
    ++compared;
    if (!theirs.empty()) ++deleting;
    std::string listing;
    for (const auto& n : c.names) listing += "  " + n + "\n";
    EXPECT_EQ(mine, theirs) << "listing:\n" << listing;
  }
  EXPECT_GT(compared, 250);
  EXPECT_GT(deleting, 100);
}

}  // namespace
}  // namespace dupfs::chain

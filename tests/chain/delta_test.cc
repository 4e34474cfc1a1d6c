// parse_delta against deltas made by librsync itself: the command map reproduces exactly what
// rs_patch produces, and hostile deltas are refused.
#include "chain/format/delta.h"

#include <gtest/gtest.h>
#include <librsync.h>

#include <cstdio>
#include <random>

namespace dupfs::chain {
namespace {

std::string slurp(FILE* f) {
  std::string out;
  std::rewind(f);
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  return out;
}

FILE* file_of(const std::string& data) {
  FILE* f = std::tmpfile();
  std::fwrite(data.data(), 1, data.size(), f);
  std::rewind(f);
  return f;
}

// The librsync delta turning `basis` into `target`, with duplicity's signature settings.
std::string make_delta(const std::string& basis, const std::string& target) {
  FILE* b = file_of(basis);
  FILE* sig = std::tmpfile();
  EXPECT_EQ(rs_sig_file(b, sig, 512, 8, RS_MD4_SIG_MAGIC, nullptr), RS_DONE);
  std::rewind(sig);
  rs_signature_t* sumset = nullptr;
  EXPECT_EQ(rs_loadsig_file(sig, &sumset, nullptr), RS_DONE);
  EXPECT_EQ(rs_build_hash_table(sumset), RS_DONE);
  FILE* t = file_of(target);
  FILE* d = std::tmpfile();
  EXPECT_EQ(rs_delta_file(sumset, t, d, nullptr), RS_DONE);
  std::string delta = slurp(d);
  rs_free_sumset(sumset);
  std::fclose(b);
  std::fclose(sig);
  std::fclose(t);
  std::fclose(d);
  return delta;
}

// Applies parsed commands the slow, obvious way.
std::string apply(const std::vector<DeltaCommand>& cmds, const std::string& delta,
                  const std::string& basis) {
  std::string out;
  for (const auto& c : cmds) {
    EXPECT_EQ(c.out, out.size());
    out += c.literal ? delta.substr(c.src, c.length) : basis.substr(c.src, c.length);
  }
  return out;
}

Result<std::vector<DeltaCommand>> parse(const std::string& delta, uint64_t basis_size) {
  DeltaReader reader = [&](uint64_t off, char* buf, size_t len) -> Result<size_t> {
    if (off >= delta.size()) return 0;
    size_t n = std::min(len, delta.size() - off);
    std::memcpy(buf, delta.data() + off, n);
    return n;
  };
  return parse_delta(reader, delta.size(), basis_size);
}

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

TEST(DeltaTest, ReproducesLibrsyncPatchForManyEdits) {
  std::string basis = random_bytes(3'000'000, 1);
  std::vector<std::string> targets;
  std::string t = basis;
  t.replace(1'500'000, 10, "0123456789");
  targets.push_back(t);                                                 // edited in the middle
  targets.push_back(basis + random_bytes(70'000, 2));                   // appended
  targets.push_back(basis.substr(0, 1'000'000));                        // truncated
  targets.push_back("");                                                // emptied
  targets.push_back(random_bytes(200'000, 3));                          // replaced
  targets.push_back(basis.substr(500'000) + basis.substr(0, 500'000));  // rotated
  for (const auto& target : targets) {
    std::string delta = make_delta(basis, target);
    auto cmds = parse(delta, basis.size());
    ASSERT_TRUE(cmds.has_value()) << cmds.error().message;
    EXPECT_EQ(apply(*cmds, delta, basis), target);
  }
}

TEST(DeltaTest, MetadataOnlyDeltaIsOneCopy) {
  // What duplicity stores after a chmod of a 10-byte file (docs/format.md §3.6).
  std::string delta("\x72\x73\x02\x36\x45\x00\x0a\x00", 8);
  auto cmds = parse(delta, 10);
  ASSERT_TRUE(cmds.has_value());
  ASSERT_EQ(cmds->size(), 1u);
  EXPECT_FALSE((*cmds)[0].literal);
  EXPECT_EQ((*cmds)[0].length, 10u);
}

TEST(DeltaTest, HostileDeltasAreCorruption) {
  const std::string magic("\x72\x73\x02\x36", 4);
  struct Case {
    std::string delta;
    uint64_t basis;
  };
  std::vector<Case> cases = {
      {"garbage!", 10},
      {magic + std::string("\x45\x05\x0a\x00", 4), 10},  // copy past the basis end
      {magic + std::string("\x48\x00\xff\xff\xff\xff\xff\xff\xff\xff\x00", 11), 10},  // huge
      {magic + std::string("\x44\x7f\xff\xff\xff\xff\xff\xff\xff", 9), 0},  // absurd literal
      {magic + std::string("\x05hel", 4), 0},                               // literal cut short
      {magic + std::string("\x55", 1), 0},                                  // unknown command
      {magic, 0},                                                           // no END
      {magic.substr(0, 2), 0},                                              // truncated magic
  };
  for (const auto& c : cases) {
    auto r = parse(c.delta, c.basis);
    ASSERT_FALSE(r.has_value()) << "accepted a hostile delta of " << c.delta.size() << " bytes";
    EXPECT_EQ(r.error().kind, ErrorKind::kCorruption);
  }
}

}  // namespace
}  // namespace dupfs::chain

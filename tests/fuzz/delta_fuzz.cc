// librsync deltas: our parse_delta (chain/format/delta.h, what the mount and restore use) and
// librsync's own patch (apply_delta). Input: a 2-byte little-endian basis length n, then the
// basis (n bytes, or what there is), then the delta. Where both succeed they must produce the
// same file; deltas that copy past the basis or announce absurd lengths must fail cleanly.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "chain/format/delta.h"
#include "chain/format/signature.h"
#include "fuzz_util.h"

using namespace dupfs::chain;

namespace {

dupfs::Result<std::vector<DeltaCommand>> parse(std::string_view delta, uint64_t basis_size) {
  DeltaReader reader = [&](uint64_t off, char* buf, size_t len) -> dupfs::Result<size_t> {
    if (off >= delta.size()) return 0;
    size_t n = std::min<uint64_t>(len, delta.size() - off);
    std::memcpy(buf, delta.data() + off, n);
    return n;
  };
  return parse_delta(reader, delta.size(), basis_size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  size_t n = data[0] | (size_t{data[1]} << 8);
  std::string_view rest = dupfs::fuzz::as_view(data + 2, size - 2);
  n = std::min(n, rest.size());
  std::string_view basis = rest.substr(0, n);
  std::string_view delta = rest.substr(n);

  // A basis of any announced size: lengths and offsets are checked without the data.
  (void)parse(delta, std::numeric_limits<uint64_t>::max());
  (void)parse(delta, 0);

  auto cmds = parse(delta, basis.size());
  if (cmds) {
    uint64_t out = 0;
    for (const auto& c : *cmds) {
      if (c.out != out || c.length == 0) dupfs::fuzz::fail("commands are not contiguous");
      if (c.literal ? c.src + c.length > delta.size() : c.src + c.length > basis.size()) {
        dupfs::fuzz::fail("a command reaches past its source");
      }
      out += c.length;
    }
  }
  // librsync's patch allocates what a literal announces; keep it to deltas whose output is small.
  if (cmds) {
    uint64_t total = cmds->empty() ? 0 : cmds->back().out + cmds->back().length;
    if (total > (uint64_t{1} << 20)) return 0;
  }
  auto patched = apply_delta(basis, delta);
  if (cmds && patched) {
    std::string mine;
    for (const auto& c : *cmds) {
      mine.append(c.literal ? delta.substr(c.src, c.length) : basis.substr(c.src, c.length));
    }
    if (mine != *patched) dupfs::fuzz::fail("parse_delta and librsync's patch differ");
  }
  return 0;
}

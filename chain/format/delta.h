// librsync deltas as duplicity stores them (docs/format.md §3.6), parsed into their commands: each
// output range is either literal bytes of the delta or a range of the basis. The mount reads
// patched files through these commands; restore applies them.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "backends/base/error.h"

namespace dupfs::chain {

struct DeltaCommand {
  uint64_t out;  // offset in the patched output
  uint64_t length;
  bool literal;  // literal: bytes of the delta at `src`; else a copy of the basis at `src`
  uint64_t src;
};

// Reads `length` bytes of a delta at an offset into a buffer (fewer only at its end).
using DeltaReader = std::function<Result<size_t>(uint64_t offset, char* out, size_t length)>;

// Parses a librsync delta of `length` bytes. kCorruption for a bad magic, an unknown command,
// a truncated delta, a copy reaching past `basis_size`, or absurd lengths.
Result<std::vector<DeltaCommand>> parse_delta(const DeltaReader& read, uint64_t length,
                                              uint64_t basis_size);

}  // namespace dupfs::chain

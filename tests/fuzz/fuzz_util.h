// Helpers shared by the libFuzzer targets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace dupfs::fuzz {

inline std::string_view as_view(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// An invariant of the code under test does not hold: a crash libFuzzer records.
[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
  std::abort();
}

// Pieces of `in` of sizes 1, 2, ... `max_piece` (cycling), to exercise streaming parsers at
// every split.
template <class F>
void in_pieces(std::string_view in, size_t max_piece, F&& f) {
  size_t k = 1;
  while (!in.empty()) {
    size_t n = k < in.size() ? k : in.size();
    f(in.substr(0, n));
    in.remove_prefix(n);
    k = k % max_piece + 1;
  }
}

}  // namespace dupfs::fuzz

// Whether this build runs under a sanitizer. Memory bounds (RSS) do not hold there: ASan keeps
// freed memory in quarantine and both add shadow memory, so tests skip those checks only.
#pragma once

namespace dupfs::test {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kUnderSanitizer = true;
#else
inline constexpr bool kUnderSanitizer = false;
#endif

// ThreadSanitizer instruments every memory access: decoding runs 100-300x slower there, so
// tests that count work done in a fixed time expect far less of it.
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kUnderThreadSanitizer = true;
#else
inline constexpr bool kUnderThreadSanitizer = false;
#endif

}  // namespace dupfs::test

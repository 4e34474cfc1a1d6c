// SHA1 of repeated salt||passphrase with the SHA-NI instructions, one or two streams
// interleaved: see sha1x2.h.
//
// The hashed message of context 0 is P = pattern repeated up to `length` octets; context 1
// hashes 0x00 || P. Block k (64 octets) of context 0 starts at octet 64k of the repetition,
// block k >= 1 of context 1 at octet 64k - 1: both are read straight out of one buffer holding
// the pattern repeated over pattern.size() + 64 octets, at offsets that step by 64 modulo the
// pattern's size. Context 1's first block and the padded last blocks of both are built in small
// buffers.
#include "chain/codec/sha1x2.h"

#include <cpuid.h>
#include <immintrin.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>
#include <memory>

#define DUPFS_SHA_NI __attribute__((target("sha,sse4.1")))
#define DUPFS_SHA_NI_INLINE __attribute__((target("sha,sse4.1"), always_inline)) inline

namespace dupfs::chain {
namespace {

constexpr size_t kBlockSize = 64;
constexpr size_t kDigestSize = 20;

// One SHA1 state in the layout of the SHA instructions: A..D in lanes 3..0 of abcd, E in lane
// 3 of e.
struct State {
  __m128i abcd;
  __m128i e;
};

// The 80 rounds over one 64-octet block for each of N states, the streams interleaved four
// rounds at a time. Message words: w[i % 4] holds W[4i..4i+3], W[4i] in lane 3; the words of
// the next four rounds are computed before the current ones (a little faster).
template <int N>
DUPFS_SHA_NI_INLINE void compress(State* state, const uint8_t* const* blocks) {
  const __m128i swap = _mm_set_epi64x(0x0001020304050607LL, 0x08090a0b0c0d0e0fLL);
  __m128i w[N][4];
  __m128i abcd[N];
  __m128i prev[N];  // the input of the previous four rounds, whose A becomes E
  for (int s = 0; s < N; ++s) prev[s] = abcd[s] = state[s].abcd;

#define DUPFS_SHA1_WORDS(i)                                                                        \
  for (int s = 0; s < N; ++s) {                                                                    \
    if constexpr ((i) < 4) {                                                                       \
      w[s][(i) % 4] = _mm_shuffle_epi8(                                                            \
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks[s] + 16 * (i))), swap);          \
    } else {                                                                                       \
      w[s][(i) % 4] =                                                                              \
          _mm_sha1msg2_epu32(_mm_xor_si128(_mm_sha1msg1_epu32(w[s][(i) % 4], w[s][((i) + 1) % 4]), \
                                           w[s][((i) + 2) % 4]),                                   \
                             w[s][((i) + 3) % 4]);                                                 \
    }                                                                                              \
  }
#define DUPFS_SHA1_FOUR_ROUNDS(i)                       \
  for (int s = 0; s < N; ++s) {                         \
    __m128i e;                                          \
    if constexpr ((i) == 0) {                           \
      e = _mm_add_epi32(state[s].e, w[s][0]);           \
    } else {                                            \
      e = _mm_sha1nexte_epu32(prev[s], w[s][(i) % 4]);  \
    }                                                   \
    prev[s] = abcd[s];                                  \
    abcd[s] = _mm_sha1rnds4_epu32(abcd[s], e, (i) / 5); \
  }

  DUPFS_SHA1_WORDS(0)
  DUPFS_SHA1_WORDS(1)
  DUPFS_SHA1_FOUR_ROUNDS(0)
  DUPFS_SHA1_WORDS(2)
  DUPFS_SHA1_FOUR_ROUNDS(1)
  DUPFS_SHA1_WORDS(3)
  DUPFS_SHA1_FOUR_ROUNDS(2)
  DUPFS_SHA1_WORDS(4)
  DUPFS_SHA1_FOUR_ROUNDS(3)
  DUPFS_SHA1_WORDS(5)
  DUPFS_SHA1_FOUR_ROUNDS(4)
  DUPFS_SHA1_WORDS(6)
  DUPFS_SHA1_FOUR_ROUNDS(5)
  DUPFS_SHA1_WORDS(7)
  DUPFS_SHA1_FOUR_ROUNDS(6)
  DUPFS_SHA1_WORDS(8)
  DUPFS_SHA1_FOUR_ROUNDS(7)
  DUPFS_SHA1_WORDS(9)
  DUPFS_SHA1_FOUR_ROUNDS(8)
  DUPFS_SHA1_WORDS(10)
  DUPFS_SHA1_FOUR_ROUNDS(9)
  DUPFS_SHA1_WORDS(11)
  DUPFS_SHA1_FOUR_ROUNDS(10)
  DUPFS_SHA1_WORDS(12)
  DUPFS_SHA1_FOUR_ROUNDS(11)
  DUPFS_SHA1_WORDS(13)
  DUPFS_SHA1_FOUR_ROUNDS(12)
  DUPFS_SHA1_WORDS(14)
  DUPFS_SHA1_FOUR_ROUNDS(13)
  DUPFS_SHA1_WORDS(15)
  DUPFS_SHA1_FOUR_ROUNDS(14)
  DUPFS_SHA1_WORDS(16)
  DUPFS_SHA1_FOUR_ROUNDS(15)
  DUPFS_SHA1_WORDS(17)
  DUPFS_SHA1_FOUR_ROUNDS(16)
  DUPFS_SHA1_WORDS(18)
  DUPFS_SHA1_FOUR_ROUNDS(17)
  DUPFS_SHA1_WORDS(19)
  DUPFS_SHA1_FOUR_ROUNDS(18)
  DUPFS_SHA1_FOUR_ROUNDS(19)
#undef DUPFS_SHA1_WORDS
#undef DUPFS_SHA1_FOUR_ROUNDS

  for (int s = 0; s < N; ++s) {
    state[s].e = _mm_sha1nexte_epu32(prev[s], state[s].e);
    state[s].abcd = _mm_add_epi32(abcd[s], state[s].abcd);
  }
}

void put_be32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// Context s (0 or 1) of the S2K over `length` octets of `pattern` repeated: digest s goes to
// out[20s..20s+20). `pattern` is not empty unless `length` is 0.
template <int N>
DUPFS_SHA_NI void s2k_streams(const uint8_t* pattern, size_t pattern_size, uint64_t length,
                              uint8_t* out) {
  const size_t p = pattern_size;
  // rep[j] = pattern[j % p]: any 64 octets of the repetition, contiguous.
  const size_t rep_size = p + kBlockSize;
  auto rep = std::make_unique<uint8_t[]>(rep_size);
  for (size_t j = 0; p != 0 && j < rep_size; j += std::min(p, rep_size - j)) {
    std::memcpy(rep.get() + j, pattern, std::min(p, rep_size - j));
  }

  State state[N];
  for (int s = 0; s < N; ++s) {
    state[s].abcd = _mm_set_epi32(0x67452301, static_cast<int>(0xefcdab89),
                                  static_cast<int>(0x98badcfe), 0x10325476);
    state[s].e = _mm_set_epi32(static_cast<int>(0xc3d2e1f0), 0, 0, 0);
  }

  // Whole blocks of context 0 (context 1 may have one more, which goes with the tail).
  const uint64_t blocks = length / kBlockSize;
  uint8_t first1[kBlockSize];  // 0x00 and the first 63 octets of the repetition
  if (blocks > 0) {
    first1[0] = 0;
    std::memcpy(first1 + 1, rep.get(), kBlockSize - 1);
    const uint8_t* const b[2] = {rep.get(), first1};
    compress<N>(state, b);
    const size_t step = kBlockSize % p;
    size_t o0 = step;
    size_t o1 = (kBlockSize - 1) % p;
    for (uint64_t k = 1; k < blocks; ++k) {
      const uint8_t* const bk[2] = {rep.get() + o0, rep.get() + o1};
      compress<N>(state, bk);
      o0 += step;
      if (o0 >= p) o0 -= p;
      o1 += step;
      if (o1 >= p) o1 -= p;
    }
  }

  // The rest of each message, 0x80, zeros, the length in bits: one or two blocks.
  const uint64_t done = blocks * kBlockSize;
  uint8_t tail[N][2 * kBlockSize];
  size_t tail_blocks[N];
  for (int s = 0; s < N; ++s) {
    const uint64_t message_size = length + static_cast<uint64_t>(s);
    const size_t n = static_cast<size_t>(message_size - done);  // at most 64
    for (size_t j = 0; j < n; ++j) {
      const uint64_t m = done + j;  // octet of the message
      tail[s][j] = s == 0 ? rep[m % p] : (m == 0 ? 0 : rep[(m - 1) % p]);
    }
    tail_blocks[s] = (n + 1 + 8 + kBlockSize - 1) / kBlockSize;
    const size_t end = tail_blocks[s] * kBlockSize;
    tail[s][n] = 0x80;
    std::memset(tail[s] + n + 1, 0, end - 8 - (n + 1));
    const uint64_t bits = message_size * 8;
    put_be32(tail[s] + end - 8, static_cast<uint32_t>(bits >> 32));
    put_be32(tail[s] + end - 4, static_cast<uint32_t>(bits));
  }
  size_t common = tail_blocks[0];
  for (int s = 1; s < N; ++s) common = std::min(common, tail_blocks[s]);
  for (size_t j = 0; j < common; ++j) {
    const uint8_t* const b[2] = {tail[0] + j * kBlockSize, tail[N - 1] + j * kBlockSize};
    compress<N>(state, b);
  }
  for (int s = 0; s < N; ++s) {
    for (size_t j = common; j < tail_blocks[s]; ++j) {
      const uint8_t* const b[1] = {tail[s] + j * kBlockSize};
      compress<1>(&state[s], b);
    }
  }

  for (int s = 0; s < N; ++s) {
    uint8_t* d = out + s * kDigestSize;
    put_be32(d + 0, static_cast<uint32_t>(_mm_extract_epi32(state[s].abcd, 3)));
    put_be32(d + 4, static_cast<uint32_t>(_mm_extract_epi32(state[s].abcd, 2)));
    put_be32(d + 8, static_cast<uint32_t>(_mm_extract_epi32(state[s].abcd, 1)));
    put_be32(d + 12, static_cast<uint32_t>(_mm_extract_epi32(state[s].abcd, 0)));
    put_be32(d + 16, static_cast<uint32_t>(_mm_extract_epi32(state[s].e, 3)));
  }
  OPENSSL_cleanse(rep.get(), rep_size);
  OPENSSL_cleanse(first1, sizeof first1);
  OPENSSL_cleanse(tail, sizeof tail);
}

}  // namespace

bool sha1_ni_available() {
  static const bool available = [] {
    // CPUID rather than __builtin_cpu_supports("sha"), which clang 16 does not know.
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d) == 0 || (c & bit_SSE4_1) == 0) return false;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) != 0 && (b & bit_SHA) != 0;
  }();
  return available;
}

bool s2k_sha1_ni(std::string_view pattern, uint64_t length, std::span<uint8_t> key) {
  if (key.empty() || key.size() > 2 * kDigestSize || (pattern.empty() && length != 0) ||
      !sha1_ni_available()) {
    return false;
  }
  uint8_t digests[2 * kDigestSize];
  const auto* p = reinterpret_cast<const uint8_t*>(pattern.data());
  if (key.size() > kDigestSize) {
    s2k_streams<2>(p, pattern.size(), length, digests);
  } else {
    s2k_streams<1>(p, pattern.size(), length, digests);
  }
  std::memcpy(key.data(), digests, key.size());
  OPENSSL_cleanse(digests, sizeof digests);
  return true;
}

}  // namespace dupfs::chain

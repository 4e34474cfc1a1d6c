// Tests of chain/sha1x2: the SHA-NI S2K SHA1 against OpenSSL's SHA1 over the same repeated
// salt||passphrase (with the zero octet in front for the second context).
#include "chain/codec/sha1x2.h"

#include <fmt/core.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace dupfs::chain {
namespace {

constexpr uint64_t kDefaultCount = 65011712;  // gpg's default, coded count 0xff

// SHA1 of `zeros` zero octets and `length` octets of `pattern` repeated, fed to OpenSSL in
// updates of whole repetitions.
std::string reference_sha1(const std::string& pattern, uint64_t length, size_t zeros) {
  std::string repeated;
  while (repeated.size() < 4096) repeated += pattern;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha1(), nullptr);
  for (size_t z = 0; z < zeros; ++z) EVP_DigestUpdate(ctx, "", 1);
  for (uint64_t left = length; left > 0;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(left, repeated.size()));
    EVP_DigestUpdate(ctx, repeated.data(), n);
    left -= n;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_DigestFinal_ex(ctx, digest, &size);
  EVP_MD_CTX_free(ctx);
  return std::string(reinterpret_cast<char*>(digest), size);
}

std::string reference_key(const std::string& pattern, uint64_t length, size_t key_size) {
  std::string key = reference_sha1(pattern, length, 0);
  if (key_size > 20) key += reference_sha1(pattern, length, 1);
  return key.substr(0, key_size);
}

std::string ni_key(const std::string& pattern, uint64_t length, size_t key_size) {
  std::vector<uint8_t> key(key_size);
  if (!s2k_sha1_ni(pattern, length, key)) return "(failed)";
  return std::string(key.begin(), key.end());
}

std::string hex(const std::string& s) {
  std::string out;
  for (unsigned char c : s) out += fmt::format("{:02x}", c);
  return out;
}

std::string random_bytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

class Sha1x2 : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!sha1_ni_available()) GTEST_SKIP() << "this CPU lacks SHA-NI";
  }
};

TEST_F(Sha1x2, KnownDigests) {
  // SHA1("") and SHA1("\0"); SHA1("abc") and SHA1("\0abc").
  EXPECT_EQ(hex(ni_key("", 0, 40)),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
            "5ba93c9db0cff93f52b521d7420e43f6eda2784f");
  EXPECT_EQ(hex(ni_key("abc", 3, 20)), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(ni_key("abc", 3, 40), reference_key("abc", 3, 40));
  // One million 'a': the FIPS 180 long message.
  EXPECT_EQ(hex(ni_key("a", 1'000'000, 20)), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST_F(Sha1x2, RefusesWhatItCannotDo) {
  std::vector<uint8_t> key(41);
  EXPECT_FALSE(s2k_sha1_ni("abc", 3, key));
  EXPECT_FALSE(s2k_sha1_ni("abc", 3, std::span<uint8_t>()));
  EXPECT_FALSE(s2k_sha1_ni("", 1, std::span(key).first(20)));
}

TEST_F(Sha1x2, EveryKeySizeIsAPrefixOfBothDigests) {
  const std::string pattern = "saltsalt" + std::string("pass phrase");
  const std::string full = reference_key(pattern, 1000, 40);
  for (size_t size = 1; size <= 40; ++size) {
    EXPECT_EQ(ni_key(pattern, 1000, size), full.substr(0, size)) << size;
  }
}

// Every pattern size 1..80 (steps of 64 modulo the size of every kind) and every length up to
// three blocks past the pattern: all the ways the padding can fall, in both contexts.
TEST_F(Sha1x2, SmallPatternsAndLengthsExhaustively) {
  std::mt19937_64 rng(1);
  for (size_t p = 1; p <= 80; ++p) {
    const std::string pattern = random_bytes(rng, p);
    for (uint64_t length = 0; length <= p + 3 * 64; ++length) {
      ASSERT_EQ(ni_key(pattern, length, 40), reference_key(pattern, length, 40))
          << "pattern " << p << " length " << length;
      ASSERT_EQ(ni_key(pattern, length, 20), reference_key(pattern, length, 20))
          << "pattern " << p << " length " << length;
    }
  }
}

// Random salts and passphrases (patterns of 9 to 200 octets) with counts from the pattern's
// size to gpg's default, many of them not multiples of the pattern's size.
TEST_F(Sha1x2, RandomPatternsAndCounts) {
  std::mt19937_64 rng(20240229);
  int large = 0;
  for (int iteration = 0; iteration < 3000; ++iteration) {
    const size_t p = std::uniform_int_distribution<size_t>(9, 200)(rng);
    const std::string pattern = random_bytes(rng, p);
    uint64_t count = 0;
    switch (iteration % 4) {
      case 0:  // small
        count = std::uniform_int_distribution<uint64_t>(p, 4096)(rng);
        break;
      case 1:  // medium
        count = std::uniform_int_distribution<uint64_t>(p, 1 << 18)(rng);
        break;
      case 2:  // a coded count of RFC 4880, possibly less than the pattern (then the pattern)
        count = std::max<uint64_t>(p, (uint64_t{16} + (rng() & 15)) << ((rng() & 7) + 6));
        break;
      default:  // around a block boundary
        count = std::max<uint64_t>(
            p, std::uniform_int_distribution<uint64_t>(1, 20000)(rng) * 64 + (rng() % 5) - 2);
        break;
    }
    // Now and then the largest counts, up to gpg's default.
    if (iteration % 500 == 7) {
      count = iteration % 1000 == 7
                  ? kDefaultCount
                  : std::uniform_int_distribution<uint64_t>(kDefaultCount / 2, kDefaultCount)(rng);
      ++large;
    }
    const size_t key_size = std::uniform_int_distribution<size_t>(1, 40)(rng);
    ASSERT_EQ(hex(ni_key(pattern, count, key_size)), hex(reference_key(pattern, count, key_size)))
        << "pattern " << p << " count " << count << " key " << key_size;
    if (key_size <= 20) {
      ASSERT_EQ(hex(ni_key(pattern, count, 40)), hex(reference_key(pattern, count, 40)))
          << "pattern " << p << " count " << count;
    }
  }
  EXPECT_EQ(large, 6);
}

TEST_F(Sha1x2, DefaultCountWithLongPatterns) {
  std::mt19937_64 rng(3);
  for (size_t p : {size_t{8 + 22}, size_t{8 + 64}, size_t{8 + 1000}, size_t{70'008}}) {
    const std::string pattern = random_bytes(rng, p);
    EXPECT_EQ(hex(ni_key(pattern, kDefaultCount, 32)),
              hex(reference_key(pattern, kDefaultCount, 32)))
        << p;
  }
}

}  // namespace
}  // namespace dupfs::chain

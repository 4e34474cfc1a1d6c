// Tests of chain/openpgp: the in-process decryption of passphrase-encrypted OpenPGP messages,
// against what the real gpg writes (in temporary GNUPGHOMEs) and against messages built here
// packet by packet (with OpenSSL's own CFB encryption) to reach every framing RFC 4880 allows;
// the S2K function against a straightforward implementation; the fallback to GPGME in
// decode_object.
#include "chain/codec/openpgp.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "backends/memory_backend.h"
#include "chain/codec/decode.h"
#include "chain/codec/s2k.h"
#include "tests/support/gpg_home.h"
#include "tests/support/source_tree.h"

namespace dupfs::chain {
namespace {

using test::GpgHome;
using test::make_payload;
using test::read_file;
using test::TempDir;
using test::write_file;

// Deterministic test data: blocks of pseudo-random bytes alternating with compressible text.

// What a decryption gave.
struct Outcome {
  Status status;
  std::string data;
  size_t pieces = 0;
  size_t max_piece = 0;
};

// How the message is fed: 0 = in random pieces of 1..70000 octets, else pieces of that size.
Outcome decrypt(std::string_view message, std::string_view passphrase, size_t piece = 1 << 20,
                uint32_t seed = 1) {
  Outcome out;
  SymmetricDecryptor decryptor(
      passphrase,
      [&out](std::string_view data) -> Status {
        EXPECT_FALSE(data.empty());
        ++out.pieces;
        out.max_piece = std::max(out.max_piece, data.size());
        out.data.append(data);
        return {};
      },
      "test.gpg");
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> sizes(1, 70000);
  out.status = {};
  while (!message.empty()) {
    size_t n = std::min(message.size(), piece == 0 ? sizes(rng) : piece);
    out.status = decryptor.feed(message.substr(0, n));
    message.remove_prefix(n);
    if (!out.status) break;
  }
  if (out.status) out.status = decryptor.finish();
  EXPECT_EQ(decryptor.produced_output(), out.pieces > 0);
  return out;
}

// ---------------------------------------------------------------------------------------------
// gpg-written messages

class OpenPgpGpg : public ::testing::Test {
 protected:
  // gpg --symmetric of `data`, with `extra` options.
  std::string encrypt(const std::string& data, const std::string& passphrase,
                      std::vector<std::string> extra = {}) {
    write_file(dir_.file("plain"), data);
    home_.encrypt_symmetric(dir_.file("plain"), dir_.file("cipher"), passphrase, extra);
    return read_file(dir_.file("cipher"));
  }

  TempDir dir_;
  GpgHome home_;
};

// Cipher × compression, each with several sizes.
class OpenPgpRoundTrip
    : public OpenPgpGpg,
      public ::testing::WithParamInterface<std::tuple<std::string, std::string>> {};

TEST_P(OpenPgpRoundTrip, DecryptsWhatGpgWrites) {
  const auto& [cipher, compress] = GetParam();
  for (size_t size : {size_t{0}, size_t{1}, size_t{100} << 10, size_t{5} << 20}) {
    SCOPED_TRACE(fmt::format("{} {} {} octets", cipher, compress, size));
    const std::string data = make_payload(size, size + 3);
    const std::string message =
        encrypt(data, "pass phrase",
                {"--cipher-algo", cipher, "--compress-algo", compress, "--s2k-count", "65536"});
    Outcome whole = decrypt(message, "pass phrase");
    ASSERT_TRUE(whole.status) << whole.status.error().message;
    EXPECT_TRUE(whole.data == data);
    EXPECT_LE(whole.max_piece, size_t{256} << 10);
    if (size > (size_t{1} << 20)) {
      EXPECT_GT(whole.pieces, 10u);
    }

    Outcome random = decrypt(message, "pass phrase", 0, static_cast<uint32_t>(size));
    ASSERT_TRUE(random.status) << random.status.error().message;
    EXPECT_TRUE(random.data == data);

    if (size <= (size_t{100} << 10)) {
      Outcome bytewise = decrypt(message, "pass phrase", 1);
      ASSERT_TRUE(bytewise.status) << bytewise.status.error().message;
      EXPECT_TRUE(bytewise.data == data);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    CiphersAndCompression, OpenPgpRoundTrip,
    ::testing::Combine(::testing::Values("AES128", "AES192", "AES256", "CAMELLIA256"),
                       ::testing::Values("none", "zip", "zlib")),
    [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param); });

TEST_F(OpenPgpGpg, DuplicityDefaults) {
  // gpg's defaults, as duplicity gets them: AES256, iterated+salted SHA1 with the largest
  // count, ZIP.
  const std::string data = make_payload(3 << 20, 31);
  const std::string message = encrypt(data, "dupfs bench passphrase");
  ASSERT_GE(message.size(), 16u);
  EXPECT_EQ(message.substr(0, 6), std::string("\x8c\x0d\x04\x09\x03\x02", 6));
  EXPECT_EQ(static_cast<uint8_t>(message[14]), 0xff);
  Outcome out = decrypt(message, "dupfs bench passphrase");
  ASSERT_TRUE(out.status) << out.status.error().message;
  EXPECT_TRUE(out.data == data);
}

TEST_F(OpenPgpGpg, S2kModesAndDigests) {
  const std::string data = make_payload(200'000, 32);
  for (const char* mode : {"0", "1", "3"}) {
    for (const char* digest : {"SHA1", "SHA256", "SHA512"}) {
      for (const char* cipher : {"AES128", "AES256"}) {
        SCOPED_TRACE(fmt::format("s2k-mode {} {} {}", mode, digest, cipher));
        std::string message =
            encrypt(data, "s2k test",
                    {"--s2k-mode", mode, "--s2k-digest-algo", digest, "--cipher-algo", cipher});
        Outcome out = decrypt(message, "s2k test");
        ASSERT_TRUE(out.status) << out.status.error().message;
        EXPECT_TRUE(out.data == data);
        Outcome wrong = decrypt(message, "s2k tesT");
        ASSERT_FALSE(wrong.status);
        EXPECT_EQ(wrong.status.error().kind, ErrorKind::kAuth) << wrong.status.error().message;
      }
    }
  }
}

TEST_F(OpenPgpGpg, EmptyAndLongPassphrases) {
  const std::string data = make_payload(10'000, 33);
  for (const std::string& passphrase : {std::string(300, 'x'), std::string("ä €\t;'\"")}) {
    std::string message = encrypt(data, passphrase, {"--s2k-count", "1000000"});
    Outcome out = decrypt(message, passphrase);
    ASSERT_TRUE(out.status) << out.status.error().message;
    EXPECT_TRUE(out.data == data);
  }
}

TEST_F(OpenPgpGpg, WrongPassphraseIsAuth) {
  const std::string data = make_payload(300'000, 34);
  const std::string message = encrypt(data, "correct horse");
  for (const char* wrong : {"battery staple", "", "correct horse "}) {
    Outcome out = decrypt(message, wrong);
    ASSERT_FALSE(out.status) << wrong;
    EXPECT_EQ(out.status.error().kind, ErrorKind::kAuth) << out.status.error().message;
    EXPECT_EQ(out.status.error().message, "cannot decrypt test.gpg: bad passphrase");
    EXPECT_EQ(out.pieces, 0u);
  }
  // Through decode_object, which must not fall back to gpg for this.
  MemoryBackend backend;
  backend.put("m.manifest.gpg", message);
  auto s = decode_object_to_string(backend, "m.manifest.gpg",
                                   {.passphrase = "battery staple", .gnupg_home = home_.path()});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, ErrorKind::kAuth);
  EXPECT_EQ(s.error().message, "cannot decrypt m.manifest.gpg: bad passphrase");
}

TEST_F(OpenPgpGpg, Bzip2IsUnsupportedBeforeAnyOutputAndFallsBackToGpg) {
  const std::string data = make_payload(2 << 20, 35);
  const std::string message = encrypt(data, "pw", {"--compress-algo", "bzip2"});
  for (size_t piece : {size_t{1} << 20, size_t{1}}) {
    Outcome out = decrypt(message, "pw", piece);
    ASSERT_FALSE(out.status);
    EXPECT_EQ(out.status.error().kind, ErrorKind::kUnsupported) << out.status.error().message;
    EXPECT_NE(out.status.error().message.find("BZIP2"), std::string::npos);
    EXPECT_EQ(out.pieces, 0u);
  }
  MemoryBackend backend;
  backend.put("b.difftar.gpg", message);
  auto s = decode_object_to_string(backend, "b.difftar.gpg",
                                   {.passphrase = "pw", .gnupg_home = home_.path()});
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_TRUE(*s == data);
  // And a wrong passphrase is still kAuth, from gpg this time.
  s = decode_object_to_string(backend, "b.difftar.gpg",
                              {.passphrase = "wrong", .gnupg_home = home_.path()});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, ErrorKind::kAuth) << s.error().message;
}

TEST_F(OpenPgpGpg, LegacyWithoutMdcIsUnsupported) {
  const std::string message = encrypt(make_payload(5000, 36), "pw", {"--rfc2440"});
  Outcome out = decrypt(message, "pw");
  ASSERT_FALSE(out.status);
  EXPECT_EQ(out.status.error().kind, ErrorKind::kUnsupported) << out.status.error().message;
  EXPECT_EQ(out.pieces, 0u);
}

TEST_F(OpenPgpGpg, FlippedBytesAreCorruption) {
  const std::string data = make_payload(1 << 20, 37);
  for (const char* compress : {"zip", "none"}) {
    const std::string good = encrypt(data, "pw", {"--compress-algo", compress});
    // Past the SKESK (15 octets), the SEIPD header and the 18-octet prefix, whose damage is
    // indistinguishable from a wrong passphrase.
    for (size_t at : {size_t{60}, size_t{1000}, good.size() / 3, good.size() / 2,
                      good.size() * 9 / 10, good.size() - 30, good.size() - 15, good.size() - 1}) {
      for (uint8_t mask : {0x01, 0x80}) {
        SCOPED_TRACE(fmt::format("{}: flip {:#x} at {} of {}", compress, mask, at, good.size()));
        std::string bad = good;
        bad[at] = static_cast<char>(bad[at] ^ mask);
        Outcome out = decrypt(bad, "pw");
        ASSERT_FALSE(out.status) << "decrypted damaged data without an error";
        EXPECT_EQ(out.status.error().kind, ErrorKind::kCorruption) << out.status.error().message;
        EXPECT_NE(out.status.error().message.find("test.gpg"), std::string::npos);
      }
    }
  }
}

TEST_F(OpenPgpGpg, TruncationIsCorruption) {
  const std::string data = make_payload(1 << 20, 38);
  for (const char* compress : {"zip", "none"}) {
    const std::string good = encrypt(data, "pw", {"--compress-algo", compress});
    const size_t n = good.size();
    for (size_t keep : {size_t{0}, size_t{1}, size_t{2}, size_t{10}, size_t{15}, size_t{16},
                        size_t{17}, size_t{18}, size_t{30}, size_t{40}, size_t{100}, size_t{8200},
                        n / 2, n - 23, n - 22, n - 21, n - 2, n - 1}) {
      SCOPED_TRACE(fmt::format("{}: {} of {} octets", compress, keep, n));
      for (size_t piece : {size_t{1} << 20, size_t{4096}}) {
        Outcome out = decrypt(good.substr(0, keep), "pw", piece);
        ASSERT_FALSE(out.status);
        EXPECT_EQ(out.status.error().kind, ErrorKind::kCorruption) << out.status.error().message;
      }
    }
  }
}

TEST_F(OpenPgpGpg, SinkErrorIsReturnedUnchanged) {
  const std::string data = make_payload(3 << 20, 39);
  const std::string message = encrypt(data, "pw");
  size_t received = 0;
  SymmetricDecryptor decryptor("pw", [&](std::string_view piece) -> Status {
    received += piece.size();
    if (received > 1'000'000) return make_error(ErrorKind::kCancelled, "unmounted");
    return {};
  });
  Status s = decryptor.feed(message);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, ErrorKind::kCancelled);
  EXPECT_EQ(s.error().message, "unmounted");
  EXPECT_LT(received, data.size());
  // Sticky.
  s = decryptor.finish();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message, "unmounted");
}

TEST_F(OpenPgpGpg, PublicKeyMessageIsUnsupportedAndGpgmeDecodesIt) {
  std::string fingerprint = home_.generate_key("dupfs test <test@example.org>");
  const std::string data = make_payload(400'000, 40);
  write_file(dir_.file("plain"), data);
  home_.encrypt_to(dir_.file("plain"), dir_.file("cipher"), fingerprint);
  const std::string message = read_file(dir_.file("cipher"));
  Outcome out = decrypt(message, "pw");
  ASSERT_FALSE(out.status);
  EXPECT_EQ(out.status.error().kind, ErrorKind::kUnsupported) << out.status.error().message;
  EXPECT_EQ(out.pieces, 0u);

  MemoryBackend backend;
  backend.put("k.difftar.gpg", message);
  auto s = decode_object_to_string(backend, "k.difftar.gpg",
                                   {.passphrase = "pw", .gnupg_home = home_.path()});
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_TRUE(*s == data);
}

TEST_F(OpenPgpGpg, PassphraseAndPublicKeyInOneMessage) {
  // gpg --symmetric --encrypt: a PKESK and an SKESK carrying the encrypted session key.
  std::string fingerprint = home_.generate_key("both <both@example.org>");
  const std::string data = make_payload(500'000, 41);
  write_file(dir_.file("plain"), data);
  home_.gpg_checked(
      {"--yes", "--trust-model", "always", "--passphrase-fd", "0", "--recipient", fingerprint,
       "--output", dir_.file("cipher"), "--symmetric", "--encrypt", dir_.file("plain")},
      "both pw\n");
  const std::string message = read_file(dir_.file("cipher"));
  clear_s2k_cache();
  uint64_t before = s2k_derivations();
  Outcome out = decrypt(message, "both pw", 0);
  ASSERT_TRUE(out.status) << out.status.error().message;
  EXPECT_TRUE(out.data == data);
  EXPECT_EQ(s2k_derivations() - before, 1u);

  // A wrong passphrase: gpg may still decrypt with the secret key, so it is asked.
  Outcome wrong = decrypt(message, "not it");
  ASSERT_FALSE(wrong.status);
  EXPECT_EQ(wrong.status.error().kind, ErrorKind::kUnsupported) << wrong.status.error().message;
  MemoryBackend backend;
  backend.put("both.gpg", message);
  auto s = decode_object_to_string(backend, "both.gpg",
                                   {.passphrase = "not it", .gnupg_home = home_.path()});
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_TRUE(*s == data);
}

TEST_F(OpenPgpGpg, DerivedKeysAreCached) {
  const std::string data = make_payload(100'000, 42);
  const std::string message = encrypt(data, "cached");  // the full default count
  MemoryBackend backend;
  backend.put("c.manifest.gpg", message);
  const Credentials credentials{.passphrase = "cached", .gnupg_home = home_.path()};
  clear_s2k_cache();

  uint64_t before = s2k_derivations();
  auto start = std::chrono::steady_clock::now();
  auto first = decode_object_to_string(backend, "c.manifest.gpg", credentials);
  auto first_time = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_TRUE(*first == data);
  EXPECT_EQ(s2k_derivations() - before, 1u);

  before = s2k_derivations();
  start = std::chrono::steady_clock::now();
  auto second = decode_object_to_string(backend, "c.manifest.gpg", credentials);
  auto second_time = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_TRUE(*second == data);
  EXPECT_EQ(s2k_derivations() - before, 0u);
  Outcome direct = decrypt(message, "cached");
  ASSERT_TRUE(direct.status);
  EXPECT_EQ(s2k_derivations() - before, 0u);

  // Another passphrase is another key.
  Outcome wrong = decrypt(message, "cached!");
  EXPECT_FALSE(wrong.status);
  EXPECT_EQ(s2k_derivations() - before, 1u);
  RecordProperty(
      "first_decode_us",
      std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(first_time).count()));
  RecordProperty(
      "second_decode_us",
      std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(second_time).count()));
}

TEST_F(OpenPgpGpg, ConcurrentDecodesOfOneMessageDeriveOnce) {
  const std::string data = make_payload(200'000, 43);
  const std::string message = encrypt(data, "together");  // the full default count
  clear_s2k_cache();
  const uint64_t before = s2k_derivations();
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      Outcome out = decrypt(message, "together", 0, static_cast<uint32_t>(i));
      if (out.status && out.data == data) ++good;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 4);
  EXPECT_EQ(s2k_derivations() - before, 1u);
}

// ---------------------------------------------------------------------------------------------
// S2K

// RFC 4880 §3.7.1 as written: one update per repetition.
std::string naive_s2k(std::string_view passphrase, int type, const EVP_MD* md,
                      std::string_view salt, uint8_t count_octet, size_t key_length) {
  std::string data;
  if (type != 0) data += salt;
  data += passphrase;
  uint64_t total = data.size();
  if (type == 3) {
    uint64_t count = (uint64_t{16} + (count_octet & 15)) << ((count_octet >> 4) + 6);
    total = std::max<uint64_t>(count, data.size());
  }
  std::string key;
  for (size_t i = 0; key.size() < key_length; ++i) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, md, nullptr);
    for (size_t z = 0; z < i; ++z) EVP_DigestUpdate(ctx, "", 1);
    for (uint64_t left = total; left > 0;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(left, data.size()));
      EVP_DigestUpdate(ctx, data.data(), n);
      left -= n;
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(ctx, digest, &length);
    EVP_MD_CTX_free(ctx);
    key.append(reinterpret_cast<char*>(digest), std::min<size_t>(length, key_length - key.size()));
  }
  return key;
}

TEST(OpenPgpS2k, MatchesTheDefinition) {
  const std::string salt("\x01\x23\x45\x67\x89\xab\xcd\xef", 8);
  const std::vector<std::pair<int, const EVP_MD*>> hashes = {
      {1, EVP_md5()},    {2, EVP_sha1()},    {8, EVP_sha256()},
      {9, EVP_sha384()}, {10, EVP_sha512()}, {11, EVP_sha224()}};
  const std::vector<std::string> passphrases = {"", "a", "pass phrase", std::string(55, 'p'),
                                                make_payload(70'000, 5)};
  for (const auto& [algo, md] : hashes) {
    for (int type : {0, 1, 3}) {
      for (const auto& passphrase : passphrases) {
        // 1024 (less than a 70000-octet passphrase), an odd one, 65536 and 2 MiB.
        for (uint8_t count : {uint8_t{0x00}, uint8_t{0x37}, uint8_t{0x60}, uint8_t{0x90}}) {
          if (type != 3 && count != 0) continue;
          for (size_t key_length : {size_t{16}, size_t{24}, size_t{32}}) {
            SCOPED_TRACE(fmt::format("hash {} type {} passphrase {} count {:#x} key {}", algo, type,
                                     passphrase.size(), count, key_length));
            std::vector<uint8_t> key(key_length);
            auto s = derive_s2k_key(passphrase, type, algo,
                                    std::span(reinterpret_cast<const uint8_t*>(salt.data()), 8),
                                    count, key);
            ASSERT_TRUE(s) << s.error().message;
            EXPECT_EQ(std::string(key.begin(), key.end()),
                      naive_s2k(passphrase, type, md, salt, count, key_length));
          }
        }
      }
    }
  }
  std::vector<uint8_t> key(32);
  const uint8_t salt8[8] = {};
  EXPECT_EQ(derive_s2k_key("x", 3, 3, salt8, 0, key).error().kind, ErrorKind::kUnsupported);
  EXPECT_EQ(derive_s2k_key("x", 101, 2, salt8, 0, key).error().kind, ErrorKind::kUnsupported);
}

TEST(OpenPgpS2k, TimeOfOneDefaultDerivation) {
  // What gpg writes for duplicity: SHA1, count 65011712, a 32-octet AES-256 key (two SHA1
  // contexts, so 130 MB hashed).
  const uint8_t salt[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<uint8_t> key(32);
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(derive_s2k_key("dupfs bench passphrase", 3, 2, salt, 0xff, key));
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  RecordProperty("s2k_us", std::to_string(us));
  std::cout << "one S2K derivation (SHA1, 65011712 octets, 32-octet key): " << us / 1000.0
            << " ms\n";
  EXPECT_LT(us, 5'000'000);
}

// ---------------------------------------------------------------------------------------------
// Messages built here, packet by packet

enum class Len { kOld1, kOld2, kOld4, kOldToEnd, kNew1, kNew2, kNew5, kPartial };

std::string be(uint64_t v, int octets) {
  std::string out;
  for (int i = octets - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

// The shortest new-format length.
std::string new_length(size_t n) {
  if (n < 192) return be(n, 1);
  if (n < 8384) return be(((n - 192) >> 8) + 192, 1) + be((n - 192) & 0xff, 1);
  return "\xff" + be(n, 4);
}

// A packet with the given framing; kPartial: parts of 2^exponent octets, then the rest.
std::string packet(int tag, std::string_view body, Len len, int exponent = 9) {
  auto old = [&](int type) { return std::string(1, static_cast<char>(0x80 | (tag << 2) | type)); };
  std::string newtag(1, static_cast<char>(0xc0 | tag));
  switch (len) {
    case Len::kOld1:
      return old(0) + be(body.size(), 1) + std::string(body);
    case Len::kOld2:
      return old(1) + be(body.size(), 2) + std::string(body);
    case Len::kOld4:
      return old(2) + be(body.size(), 4) + std::string(body);
    case Len::kOldToEnd:
      return old(3) + std::string(body);
    case Len::kNew1:
    case Len::kNew2:
      return newtag + new_length(body.size()) + std::string(body);
    case Len::kNew5:
      return newtag + "\xff" + be(body.size(), 4) + std::string(body);
    case Len::kPartial: {
      std::string out = newtag;
      const size_t part = size_t{1} << exponent;
      while (body.size() > part) {
        out += static_cast<char>(0xe0 | exponent);
        out += body.substr(0, part);
        body.remove_prefix(part);
      }
      return out + new_length(body.size()) + std::string(body);
    }
  }
  return {};
}

std::string literal_packet(std::string_view data, Len len, int exponent = 9) {
  std::string body = "b";
  body += static_cast<char>(8);
  body += "file.bin";
  body += be(1700000000, 4);
  body += data;
  return packet(11, body, len, exponent);
}

// The body of a compressed packet: algorithm octet and data.
std::string compressed_body(std::string_view inner, int algo) {
  if (algo == 0) return std::string(1, '\0') + std::string(inner);
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, algo == 1 ? -15 : 15, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, inner.size()) + 16, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(inner.data()));
  zs.avail_in = static_cast<uInt>(inner.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return std::string(1, static_cast<char>(algo)) + out;
}

const EVP_CIPHER* cfb_cipher(int algo) {
  switch (algo) {
    case 7:
      return EVP_aes_128_cfb128();
    case 8:
      return EVP_aes_192_cfb128();
    case 9:
      return EVP_aes_256_cfb128();
    case 13:
      return EVP_camellia_256_cfb128();
    default:
      return nullptr;
  }
}

size_t key_size(int algo) { return algo == 7 ? 16 : algo == 8 ? 24 : 32; }

// CFB with a zero IV, by OpenSSL.
std::string cfb_encrypt(int algo, std::string_view key, std::string_view plain) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  const unsigned char iv[16] = {};
  EVP_EncryptInit_ex(ctx, cfb_cipher(algo), nullptr,
                     reinterpret_cast<const unsigned char*>(key.data()), iv);
  std::string out(plain.size(), '\0');
  int n = 0;
  EVP_EncryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &n,
                    reinterpret_cast<const unsigned char*>(plain.data()),
                    static_cast<int>(plain.size()));
  EVP_CIPHER_CTX_free(ctx);
  return out;
}

std::string sha1(std::string_view data) {
  unsigned char digest[20];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), digest, &n, EVP_sha1(), nullptr);
  return std::string(reinterpret_cast<char*>(digest), n);
}

struct Skesk {
  std::string packet;
  std::string key;  // the S2K key
};

// An SKESK v4 with an iterated+salted SHA256 S2K; with `session_key`, that key encrypted under
// the S2K key (else the S2K key is the session key).
Skesk make_skesk(const std::string& passphrase, int cipher, uint8_t salt_seed,
                 std::optional<std::pair<int, std::string>> session_key = std::nullopt,
                 int hash = 8, Len len = Len::kOld1) {
  std::string salt;
  for (int i = 0; i < 8; ++i) salt += static_cast<char>(salt_seed + i);
  std::string key(key_size(cipher), '\0');
  auto s = derive_s2k_key(passphrase, 3, hash,
                          std::span(reinterpret_cast<const uint8_t*>(salt.data()), 8), 0x60,
                          std::span(reinterpret_cast<uint8_t*>(key.data()), key.size()));
  EXPECT_TRUE(s);
  std::string body = std::string("\x04", 1) + static_cast<char>(cipher) + "\x03" +
                     static_cast<char>(hash) + salt + "\x60";
  if (session_key) {
    body += cfb_encrypt(
        cipher, key, std::string(1, static_cast<char>(session_key->first)) + session_key->second);
  }
  return {packet(3, body, len), key};
}

enum class Mdc { kGood, kWrong, kMissing, kWrongTag };

// An SEIPD packet around `inner` (the packets inside).
std::string make_seipd(int cipher, std::string_view key, std::string_view inner,
                       Len len = Len::kPartial, int exponent = 13, Mdc mdc = Mdc::kGood) {
  std::string plain = make_payload(16, inner.size() + 7);  // the random prefix
  plain += plain.substr(14, 2);
  plain += inner;
  if (mdc != Mdc::kMissing) {
    plain += mdc == Mdc::kWrongTag ? "\xd3\x15" : "\xd3\x14";
    std::string digest = sha1(plain);
    if (mdc == Mdc::kWrong) digest[7] = static_cast<char>(digest[7] ^ 1);
    plain += digest;
  }
  return packet(18, "\x01" + cfb_encrypt(cipher, key, plain), len, exponent);
}

TEST(OpenPgpBuilt, EveryFraming) {
  const std::string data = make_payload(70'000, 50);
  const std::vector<Len> literal_lens = {Len::kOld4, Len::kOldToEnd, Len::kNew2, Len::kNew5,
                                         Len::kPartial};
  int cases = 0;
  for (int algo : {-1, 0, 1, 2}) {  // -1: no compressed packet
    for (Len literal_len : literal_lens) {
      for (int literal_exponent : {0, 9, 15}) {
        if (literal_len != Len::kPartial && literal_exponent != 9) continue;
        std::string inner = literal_packet(data, literal_len, literal_exponent);
        if (algo >= 0) {
          // An indeterminate literal ends with the decompressed data, an indeterminate
          // compressed packet with the SEIPD contents (before the MDC).
          static constexpr Len kCompressedLens[] = {Len::kOldToEnd, Len::kNew5, Len::kPartial};
          inner = packet(8, compressed_body(inner, algo), kCompressedLens[cases % 3],
                         cases % 2 == 0 ? 10 : 12);
        }
        for (Len seipd_len : {Len::kPartial, Len::kNew5}) {
          for (int cipher : {7, 8, 9, 13}) {
            SCOPED_TRACE(fmt::format("algo {} literal {} exp {} seipd {} cipher {}", algo,
                                     static_cast<int>(literal_len), literal_exponent,
                                     static_cast<int>(seipd_len), cipher));
            Skesk k = make_skesk("built", cipher, static_cast<uint8_t>(cipher));
            std::string message =
                k.packet + make_seipd(cipher, k.key, inner, seipd_len, cases % 2 == 0 ? 9 : 0);
            ++cases;
            for (size_t piece : {size_t{0}, size_t{1} << 20, size_t{1}}) {
              if (piece == 1 && cipher != 9) continue;
              Outcome out = decrypt(message, "built", piece, static_cast<uint32_t>(cases));
              ASSERT_TRUE(out.status) << out.status.error().message;
              EXPECT_TRUE(out.data == data);
            }
          }
        }
      }
    }
  }
  EXPECT_GT(cases, 100);
}

TEST(OpenPgpBuilt, SkeskFramingsMarkersAndSeveralPassphrases) {
  const std::string data = make_payload(50'000, 51);
  const std::string session_key = make_payload(32, 52);
  const std::string inner =
      packet(8, compressed_body(literal_packet(data, Len::kPartial), 1), Len::kOldToEnd);
  const std::string seipd = make_seipd(9, session_key, inner);
  const std::string marker = packet(10, "PGP", Len::kOld1);
  for (Len len : {Len::kOld1, Len::kOld2, Len::kOld4, Len::kNew1, Len::kNew5}) {
    Skesk a = make_skesk("first", 7, 1, std::pair(9, session_key), 2, len);
    Skesk b = make_skesk("second", 9, 2, std::pair(9, session_key), 10, len);
    Skesk c = make_skesk("third", 13, 3, std::pair(9, session_key), 8, len);
    std::string message = marker + a.packet + b.packet + marker + c.packet + seipd;
    for (const char* passphrase : {"first", "second", "third"}) {
      Outcome out = decrypt(message, passphrase, 0);
      ASSERT_TRUE(out.status) << passphrase << ": " << out.status.error().message;
      EXPECT_TRUE(out.data == data);
    }
    Outcome wrong = decrypt(message, "fourth");
    ASSERT_FALSE(wrong.status);
    EXPECT_EQ(wrong.status.error().kind, ErrorKind::kAuth);
  }
  // An SKESK without encrypted key (its S2K key is the session key) next to one with.
  Skesk plain_key = make_skesk("direct", 9, 4);
  Skesk wrapped = make_skesk("wrapped", 7, 5, std::pair(9, plain_key.key));
  std::string message = plain_key.packet + wrapped.packet + make_seipd(9, plain_key.key, inner);
  for (const char* passphrase : {"direct", "wrapped"}) {
    Outcome out = decrypt(message, passphrase);
    ASSERT_TRUE(out.status) << passphrase << ": " << out.status.error().message;
    EXPECT_TRUE(out.data == data);
  }
  // An unusable SKESK (unknown S2K hash) next to a usable one.
  std::string odd = make_skesk("direct", 9, 6).packet;
  odd[5] = 3;  // RIPEMD160
  message = odd + plain_key.packet + make_seipd(9, plain_key.key, inner);
  Outcome out = decrypt(message, "direct");
  ASSERT_TRUE(out.status) << out.status.error().message;
  EXPECT_TRUE(out.data == data);
}

TEST(OpenPgpBuilt, UnsupportedIsReportedBeforeAnyOutput) {
  const std::string data = make_payload(600'000, 53);
  Skesk k = make_skesk("pw", 9, 7);
  const std::string literal = literal_packet(data, Len::kPartial, 13);
  const std::string zip = packet(8, compressed_body(literal, 1), Len::kOldToEnd);
  const std::string good = k.packet + make_seipd(9, k.key, zip);
  ASSERT_TRUE(decrypt(good, "pw").status);

  std::vector<std::pair<std::string, std::string>> cases;
  std::string aead = good;
  aead[k.packet.size()] = static_cast<char>(0xc0 | 20);
  cases.emplace_back("AEAD packet", aead);
  std::string v5 = good;
  v5[2] = 5;
  cases.emplace_back("SKESK v5", v5);
  std::string cast5 = good;
  cast5[3] = 3;
  cases.emplace_back("CAST5", cast5);
  std::string ripemd = good;
  ripemd[5] = 3;
  cases.emplace_back("RIPEMD160 S2K", ripemd);
  std::string gnu = good;
  gnu[4] = 101;
  cases.emplace_back("S2K type 101", gnu);
  std::string seipd2 = good;
  seipd2[k.packet.size() + 2] = 2;  // partial length octet, then the version
  cases.emplace_back("SEIPD v2", seipd2);
  cases.emplace_back("no SKESK", make_seipd(9, k.key, zip));
  cases.emplace_back("unencrypted", zip);
  cases.emplace_back(
      "signed", k.packet + make_seipd(9, k.key, packet(4, "0123456789abc", Len::kNew1) + literal));
  cases.emplace_back(
      "signed and compressed",
      k.packet +
          make_seipd(9, k.key,
                     packet(8, compressed_body(packet(4, "0123456789abc", Len::kNew1) + literal, 2),
                            Len::kOldToEnd)));
  cases.emplace_back("compression 7",
                     k.packet + make_seipd(9, k.key, "\xa3\x07" + compressed_body(literal, 1)));
  for (const auto& [label, message] : cases) {
    for (size_t piece : {size_t{1} << 20, size_t{1}}) {
      Outcome out = decrypt(message, "pw", piece);
      ASSERT_FALSE(out.status) << label;
      EXPECT_EQ(out.status.error().kind, ErrorKind::kUnsupported)
          << label << ": " << out.status.error().message;
      EXPECT_EQ(out.pieces, 0u) << label;
    }
  }
}

TEST(OpenPgpBuilt, DamageIsCorruption) {
  const std::string data = make_payload(300'000, 54);
  Skesk k = make_skesk("pw", 9, 8);
  const std::string literal = literal_packet(data, Len::kPartial, 13);
  const std::string zip = packet(8, compressed_body(literal, 1), Len::kOldToEnd);
  std::vector<std::pair<std::string, std::string>> cases = {
      {"wrong MDC", k.packet + make_seipd(9, k.key, zip, Len::kPartial, 13, Mdc::kWrong)},
      {"wrong MDC, no compression",
       k.packet + make_seipd(9, k.key, literal, Len::kPartial, 13, Mdc::kWrong)},
      {"missing MDC", k.packet + make_seipd(9, k.key, zip, Len::kPartial, 13, Mdc::kMissing)},
      {"MDC tag", k.packet + make_seipd(9, k.key, zip, Len::kPartial, 13, Mdc::kWrongTag)},
      {"packet after the literal",
       k.packet + make_seipd(9, k.key,
                             packet(8, compressed_body(literal + packet(10, "PGP", Len::kOld1), 1),
                                    Len::kOldToEnd))},
      {"two literals", k.packet + make_seipd(9, k.key, literal + literal)},
      {"data after the deflate stream",
       k.packet + make_seipd(9, k.key, packet(8, compressed_body(literal, 1) + "xx", Len::kNew5))},
      {"truncated deflate stream",
       k.packet + make_seipd(9, k.key,
                             packet(8, compressed_body(literal, 1).substr(0, 1000), Len::kNew5))},
      {"no literal", k.packet + make_seipd(9, k.key, packet(10, "PGP", Len::kOld1))},
      {"empty SEIPD contents", k.packet + make_seipd(9, k.key, "")},
      {"literal longer than the SEIPD", k.packet + make_seipd(9, k.key, literal.substr(0, 5000))},
      {"data after the SEIPD",
       k.packet + make_seipd(9, k.key, zip) + packet(10, "PGP", Len::kOld1)},
      {"only an SKESK", k.packet},
      {"garbage", "\x01\x02\x03 not OpenPGP"},
      {"empty", ""},
  };
  for (const auto& [label, message] : cases) {
    for (size_t piece : {size_t{1} << 20, size_t{7}}) {
      Outcome out = decrypt(message, "pw", piece);
      ASSERT_FALSE(out.status) << label;
      EXPECT_EQ(out.status.error().kind, ErrorKind::kCorruption)
          << label << ": " << out.status.error().message;
      EXPECT_EQ(out.status.error().message.rfind("cannot decrypt test.gpg: ", 0), 0u)
          << out.status.error().message;
    }
  }
}

}  // namespace
}  // namespace dupfs::chain

// Tests of chain/openpgp_encrypt: messages written by SymmetricEncryptor are decrypted by the
// real gpg (in temporary GNUPGHOMEs, passphrases through a pipe) and by SymmetricDecryptor, and
// taken apart here packet by packet to check the framing gpg 2.2 writes (docs/format.md §5.3).
#include "chain/codec/openpgp_encrypt.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "chain/codec/openpgp.h"
#include "chain/codec/s2k.h"
#include "tests/support/gpg_home.h"
#include "tests/support/source_tree.h"

namespace dupfs::chain {
namespace {

using test::GpgHome;
using test::make_payload;
using test::ProcessResult;
using test::TempDir;
using test::write_file;

// Cheap key derivation for most tests; DefaultsAreGpgs uses gpg's own count.
constexpr uint32_t kTestS2kCount = 65536;
constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * 1024;

// Deterministic test data: blocks of pseudo-random bytes alternating with compressible text.

SymmetricEncryptOptions test_options(
    std::optional<DeflateLevel> compression = SymmetricEncryptOptions{}.compression) {
  SymmetricEncryptOptions o;
  o.compression = compression;
  o.s2k_count = kTestS2kCount;
  return o;
}

struct Encrypted {
  Status status;
  std::string message;
  size_t pieces = 0;
  size_t max_piece = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
};

// The plaintext is written in pieces of `piece` bytes (SIZE_MAX: one write).
Encrypted encrypt(std::string_view data, std::string_view passphrase,
                  const SymmetricEncryptOptions& options, size_t piece = SIZE_MAX) {
  Encrypted e;
  SymmetricEncryptor encryptor(
      passphrase,
      [&e](std::string_view out) -> Status {
        EXPECT_FALSE(out.empty());
        ++e.pieces;
        e.max_piece = std::max(e.max_piece, out.size());
        e.message += out;
        return {};
      },
      options);
  e.status = {};
  while (!data.empty() && e.status) {
    size_t n = std::min(data.size(), piece);
    e.status = encryptor.write(data.substr(0, n));
    data.remove_prefix(n);
  }
  if (e.status) e.status = encryptor.finish();
  e.bytes_in = encryptor.bytes_in();
  e.bytes_out = encryptor.bytes_out();
  return e;
}

// SymmetricDecryptor's view.
Result<std::string> our_decrypt(std::string_view message, std::string_view passphrase) {
  std::string out;
  SymmetricDecryptor decryptor(passphrase, [&out](std::string_view data) -> Status {
    out += data;
    return {};
  });
  if (auto s = decryptor.feed(message); !s) return std::unexpected(s.error());
  if (auto s = decryptor.finish(); !s) return std::unexpected(s.error());
  return out;
}

class OpenPgpEncryptGpg : public ::testing::Test {
 protected:
  // gpg --decrypt; the plaintext is on stdout. --no-symkey-cache: the agent must not answer a
  // wrong passphrase from its cache.
  ProcessResult gpg_decrypt(std::string_view message, const std::string& passphrase) {
    write_file(dir_.file("message.gpg"), message);
    return home_.gpg(
        {"--no-symkey-cache", "--passphrase-fd", "0", "--decrypt", dir_.file("message.gpg")},
        passphrase + "\n");
  }
  ProcessResult gpg_list_packets(std::string_view message, const std::string& passphrase) {
    write_file(dir_.file("message.gpg"), message);
    return home_.gpg(
        {"--no-symkey-cache", "--passphrase-fd", "0", "--list-packets", dir_.file("message.gpg")},
        passphrase + "\n");
  }

  TempDir dir_;
  GpgHome home_;
};

// ---------------------------------------------------------------------------------------------
// Taking a message apart

struct Framing {
  std::vector<size_t> parts;  // body lengths: partial ones, then the definite one
  bool partial() const { return parts.size() > 1; }
};

// Reads a new-format packet body at `pos` (after the tag octet): checks that every partial
// length is a power of two and the first at least 512 octets (RFC 4880 §4.2.2.4).
void read_new_body(std::string_view in, size_t& pos, std::string& body, Framing& framing) {
  for (;;) {
    ASSERT_LT(pos, in.size());
    const auto o = static_cast<uint8_t>(in[pos++]);
    size_t n = 0;
    bool more = false;
    if (o < 192) {
      n = o;
    } else if (o < 224) {
      ASSERT_LT(pos, in.size());
      n = ((size_t{o} - 192) << 8) + static_cast<uint8_t>(in[pos++]) + 192;
    } else if (o == 255) {
      ASSERT_LE(pos + 4, in.size());
      for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<uint8_t>(in[pos++]);
    } else {
      n = size_t{1} << (o & 0x1f);
      more = true;
      if (framing.parts.empty()) {
        EXPECT_GE(n, 512u) << "first partial length";
      }
    }
    ASSERT_LE(pos + n, in.size());
    body.append(in.substr(pos, n));
    pos += n;
    framing.parts.push_back(n);
    if (!more) return;
  }
}

std::string sha1(std::string_view data) {
  unsigned char digest[20];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), digest, &n, EVP_sha1(), nullptr);
  return std::string(reinterpret_cast<char*>(digest), n);
}

std::string raw_inflate(std::string_view in) {
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, -15), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  std::string out;
  char buffer[65536];
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buffer);
    z.avail_out = sizeof buffer;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buffer, sizeof buffer - z.avail_out);
  }
  EXPECT_EQ(rc, Z_STREAM_END);
  EXPECT_EQ(z.avail_in, 0u) << "data after the deflate stream";
  inflateEnd(&z);
  return out;
}

struct Inspection {
  int cipher = 0;
  uint8_t count_octet = 0;
  std::string salt;
  Framing seipd;
  bool compressed = false;
  Framing literal;
  uint32_t date = 0;
  std::string data;
};

// Takes the message apart with the passphrase, checking every octet gpg 2.2 would write.
void inspect(std::string_view message, std::string_view passphrase, Inspection& out) {
  // SKESK v4, old format tag 3, 13 octets: version, cipher, S2K 3, SHA1, salt, count.
  ASSERT_GE(message.size(), 15u);
  EXPECT_EQ(message.substr(0, 3), std::string_view("\x8c\x0d\x04", 3));
  out.cipher = static_cast<uint8_t>(message[3]);
  EXPECT_EQ(message.substr(4, 2), std::string_view("\x03\x02", 2));
  out.salt = std::string(message.substr(6, 8));
  out.count_octet = static_cast<uint8_t>(message[14]);
  const size_t key_size = out.cipher == 7 ? 16 : out.cipher == 8 ? 24 : 32;
  std::string key(key_size, '\0');
  ASSERT_TRUE(derive_s2k_key(
      passphrase, 3, 2, std::span(reinterpret_cast<const uint8_t*>(out.salt.data()), 8),
      out.count_octet, std::span(reinterpret_cast<uint8_t*>(key.data()), key.size())));

  // SEIPD v1, new format: the whole rest of the message.
  size_t pos = 15;
  ASSERT_LT(pos, message.size());
  EXPECT_EQ(static_cast<uint8_t>(message[pos++]), 0xd2);
  std::string body;
  ASSERT_NO_FATAL_FAILURE(read_new_body(message, pos, body, out.seipd));
  EXPECT_EQ(pos, message.size()) << "data after the SEIPD packet";
  ASSERT_GE(body.size(), 1u + 18 + 22);
  EXPECT_EQ(body[0], 1);

  const EVP_CIPHER* cipher = out.cipher == 7   ? EVP_aes_128_cfb128()
                             : out.cipher == 8 ? EVP_aes_192_cfb128()
                                               : EVP_aes_256_cfb128();
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  const unsigned char iv[16] = {};
  EVP_DecryptInit_ex(ctx, cipher, nullptr, reinterpret_cast<const unsigned char*>(key.data()), iv);
  std::string plain(body.size() - 1, '\0');
  int n = 0;
  EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(plain.data()), &n,
                    reinterpret_cast<const unsigned char*>(body.data() + 1),
                    static_cast<int>(plain.size()));
  EVP_CIPHER_CTX_free(ctx);

  // Random prefix and its check octets; the MDC at the end.
  EXPECT_EQ(plain.substr(14, 2), plain.substr(16, 2)) << "quick check octets";
  const size_t inner_end = plain.size() - 22;
  EXPECT_EQ(plain.substr(inner_end, 2), "\xd3\x14");
  EXPECT_TRUE(plain.substr(inner_end + 2) == sha1(std::string_view(plain).substr(0, inner_end + 2)))
      << "MDC";
  std::string inner = plain.substr(18, inner_end - 18);

  // Compressed: old format, tag 8, indeterminate length, ZIP.
  std::string packets;
  ASSERT_GE(inner.size(), 2u);
  out.compressed = static_cast<uint8_t>(inner[0]) == 0xa3;
  if (out.compressed) {
    EXPECT_EQ(inner[1], 1) << "compression algorithm";
    packets = raw_inflate(std::string_view(inner).substr(2));
  } else {
    packets = std::move(inner);
  }

  // Literal: new format, tag 11, mode 'b', no file name.
  pos = 0;
  ASSERT_GE(packets.size(), 1u);
  EXPECT_EQ(static_cast<uint8_t>(packets[pos++]), 0xcb);
  std::string literal;
  ASSERT_NO_FATAL_FAILURE(read_new_body(packets, pos, literal, out.literal));
  EXPECT_EQ(pos, packets.size()) << "data after the literal packet";
  ASSERT_GE(literal.size(), 6u);
  EXPECT_EQ(literal.substr(0, 2), std::string("b\0", 2));
  for (int i = 0; i < 4; ++i) out.date = (out.date << 8) | static_cast<uint8_t>(literal[2 + i]);
  out.data = literal.substr(6);
}

// ---------------------------------------------------------------------------------------------
// Round trips: every size around the partial-length boundaries, every way of writing

class OpenPgpEncryptRoundTrip : public OpenPgpEncryptGpg,
                                public ::testing::WithParamInterface<std::tuple<bool, size_t>> {};

TEST_P(OpenPgpEncryptRoundTrip, GpgAndOurDecryptorReadIt) {
  const auto& [compressed, size] = GetParam();
  const std::string data = make_payload(size, size + 11);
  const SymmetricEncryptOptions options = compressed ? test_options() : test_options(std::nullopt);
  for (size_t piece : {size_t{1}, size_t{7}, 64 * kKiB, SIZE_MAX}) {
    SCOPED_TRACE(fmt::format("{} octets, {}, pieces of {}", size,
                             compressed ? "compressed" : "not compressed", piece));
    const auto before = static_cast<uint32_t>(std::time(nullptr));
    Encrypted e = encrypt(data, "round trip", options, piece);
    const auto after = static_cast<uint32_t>(std::time(nullptr));
    ASSERT_TRUE(e.status) << e.status.error().message;
    EXPECT_EQ(e.bytes_in, data.size());
    EXPECT_EQ(e.bytes_out, e.message.size());
    EXPECT_LE(e.max_piece, (size_t{1} << 18) + 6);

    Inspection in;
    ASSERT_NO_FATAL_FAILURE(inspect(e.message, "round trip", in));
    EXPECT_EQ(in.cipher, 9);
    EXPECT_EQ(in.count_octet, 0x60);  // 65536
    EXPECT_EQ(in.compressed, compressed);
    EXPECT_TRUE(in.data == data);
    EXPECT_GE(in.date, before);
    EXPECT_LE(in.date, after);
    // Partial lengths exactly when the body is longer than one chunk.
    EXPECT_EQ(in.literal.partial(), 6 + size >= 64 * kKiB);
    if (!compressed) {
      EXPECT_EQ(in.seipd.partial(), 1 + 18 + 2 + 6 + size + 22 >= 256 * kKiB);
    }

    Result<std::string> ours = our_decrypt(e.message, "round trip");
    ASSERT_TRUE(ours) << ours.error().message;
    EXPECT_TRUE(*ours == data);

    ProcessResult gpg = gpg_decrypt(e.message, "round trip");
    ASSERT_EQ(gpg.exit_code, 0) << gpg.err;
    EXPECT_TRUE(gpg.out == data);
    EXPECT_EQ(gpg.err.find("WARNING"), std::string::npos) << gpg.err;
  }
}

INSTANTIATE_TEST_SUITE_P(SizesAndCompression, OpenPgpEncryptRoundTrip,
                         ::testing::Combine(::testing::Bool(),
                                            ::testing::Values(size_t{0}, size_t{1}, size_t{511},
                                                              size_t{512}, size_t{513}, 64 * kKiB,
                                                              5 * kMiB)),
                         [](const auto& info) {
                           return fmt::format(
                               "{}_{}", std::get<0>(info.param) ? "compressed" : "uncompressed",
                               std::get<1>(info.param));
                         });

TEST_F(OpenPgpEncryptGpg, EveryCompressionLevel) {
  const std::string data = make_payload(kMiB + 77, 3);
  std::vector<DeflateLevel> levels;
  for (int l = 0; l <= 3; ++l) levels.push_back({DeflateEngine::kIsal, l});
  for (int l : {0, 1, 4, 6, 9}) levels.push_back({DeflateEngine::kZlib, l});
  for (DeflateLevel level : levels) {
    SCOPED_TRACE(fmt::format("{} level {}", level.engine == DeflateEngine::kIsal ? "ISA-L" : "zlib",
                             level.level));
    Encrypted e = encrypt(data, "levels", test_options(level), 10'000);
    ASSERT_TRUE(e.status) << e.status.error().message;
    if (level.level != 0) {
      EXPECT_LT(e.message.size(), data.size() * 3 / 4);
    }
    Inspection in;
    ASSERT_NO_FATAL_FAILURE(inspect(e.message, "levels", in));
    EXPECT_TRUE(in.compressed);
    EXPECT_TRUE(in.data == data);
    ProcessResult gpg = gpg_decrypt(e.message, "levels");
    ASSERT_EQ(gpg.exit_code, 0) << gpg.err;
    EXPECT_TRUE(gpg.out == data);
  }
}

TEST_F(OpenPgpEncryptGpg, Aes128And192) {
  const std::string data = make_payload(300'000, 4);
  for (int cipher : {7, 8, 9}) {
    SCOPED_TRACE(fmt::format("cipher {}", cipher));
    SymmetricEncryptOptions options = test_options();
    options.cipher_algo = cipher;
    Encrypted e = encrypt(data, "ciphers", options, 4096);
    ASSERT_TRUE(e.status) << e.status.error().message;
    Inspection in;
    ASSERT_NO_FATAL_FAILURE(inspect(e.message, "ciphers", in));
    EXPECT_EQ(in.cipher, cipher);
    Result<std::string> ours = our_decrypt(e.message, "ciphers");
    ASSERT_TRUE(ours) << ours.error().message;
    EXPECT_TRUE(*ours == data);
    ProcessResult gpg = gpg_decrypt(e.message, "ciphers");
    ASSERT_EQ(gpg.exit_code, 0) << gpg.err;
    EXPECT_TRUE(gpg.out == data);
  }
}

// ---------------------------------------------------------------------------------------------
// What gpg sees

bool contains(const std::string& text, std::string_view what) {
  return text.find(what) != std::string::npos;
}

TEST_F(OpenPgpEncryptGpg, DefaultsAreGpgs) {
  // The full S2K count, AES-256, ZIP, partial lengths: what gpg 2.2 --symmetric writes.
  const std::string data = make_payload(3 * kMiB, 5);
  Encrypted e = encrypt(data, "dupfs defaults", SymmetricEncryptOptions{}, 100'000);
  ASSERT_TRUE(e.status) << e.status.error().message;
  EXPECT_EQ(e.message.substr(0, 6), std::string("\x8c\x0d\x04\x09\x03\x02", 6));
  EXPECT_EQ(static_cast<uint8_t>(e.message[14]), 0xff);
  Inspection in;
  ASSERT_NO_FATAL_FAILURE(inspect(e.message, "dupfs defaults", in));
  EXPECT_TRUE(in.compressed);
  EXPECT_TRUE(in.seipd.partial());
  EXPECT_TRUE(in.literal.partial());
  EXPECT_TRUE(in.data == data);

  ProcessResult list = gpg_list_packets(e.message, "dupfs defaults");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  const std::string& l = list.out;
  SCOPED_TRACE(l);
  EXPECT_TRUE(contains(l, "# off=0 ctb=8c tag=3 hlen=2 plen=13\n"));
  EXPECT_TRUE(contains(l, ":symkey enc packet: version 4, cipher 9, aead 0,s2k 3, hash 2\n"));
  EXPECT_TRUE(contains(l, "count 65011712 (255)\n"));
  EXPECT_TRUE(contains(l, "# off=15 ctb=d2 tag=18 hlen=2 plen=0 partial new-ctb\n"));
  EXPECT_TRUE(contains(l, "mdc_method: 2\n"));
  EXPECT_TRUE(
      contains(l, "ctb=a3 tag=8 hlen=1 plen=0 indeterminate\n:compressed packet: algo=1\n"));
  EXPECT_TRUE(contains(l, "ctb=cb tag=11 hlen=2 plen=0 partial new-ctb\n:literal data packet:\n"));
  EXPECT_TRUE(contains(l, fmt::format("mode b (62), created {}, name=\"\",", in.date)));

  ProcessResult gpg = gpg_decrypt(e.message, "dupfs defaults");
  ASSERT_EQ(gpg.exit_code, 0) << gpg.err;
  EXPECT_TRUE(gpg.out == data);
}

TEST_F(OpenPgpEncryptGpg, ListPacketsWithoutCompressionAndShort) {
  SymmetricEncryptOptions options = test_options(std::nullopt);
  options.literal_date = 1'600'000'000;
  Encrypted big = encrypt(make_payload(kMiB, 6), "list", options);
  ASSERT_TRUE(big.status);
  ProcessResult list = gpg_list_packets(big.message, "list");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  SCOPED_TRACE(list.out);
  EXPECT_FALSE(contains(list.out, "compressed packet"));
  EXPECT_TRUE(contains(list.out, "count 65536 (96)\n"));
  EXPECT_TRUE(contains(list.out, "# off=15 ctb=d2 tag=18 hlen=2 plen=0 partial new-ctb\n"));
  EXPECT_TRUE(contains(list.out,
                       "# off=36 ctb=cb tag=11 hlen=2 plen=0 partial new-ctb\n"
                       ":literal data packet:\n\tmode b (62), created 1600000000, name=\"\",\n"));

  // One chunk: definite lengths everywhere (the SEIPD body: version, prefix 18, literal 2 + 6
  // + 100, MDC 22).
  Encrypted small = encrypt(std::string(100, 'x'), "list", options);
  ASSERT_TRUE(small.status);
  list = gpg_list_packets(small.message, "list");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_TRUE(contains(list.out, "# off=15 ctb=d2 tag=18 hlen=2 plen=149 new-ctb\n")) << list.out;
  EXPECT_TRUE(contains(list.out, "# off=36 ctb=cb tag=11 hlen=2 plen=106 new-ctb\n")) << list.out;
  EXPECT_TRUE(contains(list.out, "raw data: 100 bytes\n")) << list.out;
}

TEST_F(OpenPgpEncryptGpg, WrongPassphraseFails) {
  const std::string data = make_payload(200'000, 7);
  for (bool compressed : {true, false}) {
    Encrypted e =
        encrypt(data, "right one", compressed ? test_options() : test_options(std::nullopt));
    ASSERT_TRUE(e.status);
    for (const char* wrong : {"wrong one", "", "right one "}) {
      SCOPED_TRACE(wrong);
      ProcessResult gpg = gpg_decrypt(e.message, wrong);
      EXPECT_NE(gpg.exit_code, 0);
      // gpg derives nothing from an empty passphrase ("No secret key").
      if (*wrong != '\0') {
        EXPECT_TRUE(contains(gpg.err, "Bad session key")) << gpg.err;
      }
      EXPECT_TRUE(gpg.out.empty());
      Result<std::string> ours = our_decrypt(e.message, wrong);
      ASSERT_FALSE(ours);
      EXPECT_EQ(ours.error().kind, ErrorKind::kAuth) << ours.error().message;
    }
    ProcessResult right = gpg_decrypt(e.message, "right one");
    EXPECT_EQ(right.exit_code, 0) << right.err;
  }
}

TEST_F(OpenPgpEncryptGpg, FlippedCiphertextFailsTheMdc) {
  const std::string data = make_payload(kMiB, 8);
  for (bool compressed : {false, true}) {
    Encrypted e = encrypt(data, "flip", compressed ? test_options() : test_options(std::nullopt));
    ASSERT_TRUE(e.status);
    ASSERT_EQ(gpg_decrypt(e.message, "flip").exit_code, 0);
    const size_t n = e.message.size();
    // In the literal data (uncompressed: only the MDC can tell), in the last data octet before
    // the MDC, in the MDC's digest.
    for (size_t at : {n / 2, n / 3 + 1, n - 23, n - 1}) {
      SCOPED_TRACE(fmt::format("{}: flip at {} of {}", compressed ? "compressed" : "plain", at, n));
      std::string bad = e.message;
      bad[at] = static_cast<char>(bad[at] ^ 0x10);
      ProcessResult gpg = gpg_decrypt(bad, "flip");
      EXPECT_NE(gpg.exit_code, 0) << gpg.err;
      // A damaged deflate stream may stop gpg before the MDC; anything else is the MDC's job.
      if (!compressed || at == n - 1) {
        EXPECT_TRUE(contains(gpg.err, "encrypted message has been manipulated")) << gpg.err;
      }
      Result<std::string> ours = our_decrypt(bad, "flip");
      ASSERT_FALSE(ours);
      EXPECT_EQ(ours.error().kind, ErrorKind::kCorruption) << ours.error().message;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The encryptor itself

TEST(OpenPgpEncrypt, S2kCountOctet) {
  EXPECT_EQ(s2k_count_octet(0), 0);
  EXPECT_EQ(s2k_count_octet(1024), 0);
  EXPECT_EQ(s2k_count_octet(1025), 1);
  EXPECT_EQ(s2k_count_octet(65536), 0x60);
  EXPECT_EQ(s2k_count_octet(65537), 0x61);
  EXPECT_EQ(s2k_count_octet(1'000'000), 0x9f);  // 1015808; 0x9e = 983040 is too few
  EXPECT_EQ(s2k_count_octet(65011712), 0xff);
  EXPECT_EQ(s2k_count_octet(65011713), 0xff);
  EXPECT_EQ(s2k_count_octet(UINT32_MAX), 0xff);
}

TEST(OpenPgpEncrypt, RandomSaltAndPrefix) {
  const std::string data = make_payload(1000, 9);
  Encrypted a = encrypt(data, "pw", test_options());
  Encrypted b = encrypt(data, "pw", test_options());
  ASSERT_TRUE(a.status);
  ASSERT_TRUE(b.status);
  ASSERT_EQ(a.message.size(), b.message.size());
  EXPECT_NE(a.message.substr(6, 8), b.message.substr(6, 8)) << "same salt";
  Inspection ia, ib;
  ASSERT_NO_FATAL_FAILURE(inspect(a.message, "pw", ia));
  ASSERT_NO_FATAL_FAILURE(inspect(b.message, "pw", ib));
  EXPECT_TRUE(ia.data == ib.data);
}

TEST(OpenPgpEncrypt, BytesOutFollowsTheSink) {
  // Uncompressed, incompressible: output trails input by at most the chunks held.
  const std::string data = make_payload(5 * kMiB, 10);
  uint64_t received = 0;
  SymmetricEncryptor encryptor(
      "pw",
      [&](std::string_view out) -> Status {
        received += out.size();
        return {};
      },
      test_options(std::nullopt));
  EXPECT_EQ(encryptor.bytes_out(), 0u);
  for (size_t at = 0; at < data.size(); at += 50'000) {
    ASSERT_TRUE(encryptor.write(std::string_view(data).substr(at, 50'000)));
    EXPECT_EQ(encryptor.bytes_out(), received);
    EXPECT_EQ(encryptor.bytes_in(), std::min(data.size(), at + 50'000));
    EXPECT_GE(encryptor.bytes_out() + (size_t{1} << 18) + (size_t{1} << 16), encryptor.bytes_in());
  }
  ASSERT_TRUE(encryptor.finish());
  EXPECT_EQ(encryptor.bytes_out(), received);
  EXPECT_GT(received, data.size());
}

TEST(OpenPgpEncrypt, InvalidOptions) {
  struct Case {
    SymmetricEncryptOptions options;
    ErrorKind kind;
  };
  std::vector<Case> cases;
  cases.push_back(
      {test_options(DeflateLevel{DeflateEngine::kIsal, 4}), ErrorKind::kInvalidArgument});
  cases.push_back(
      {test_options(DeflateLevel{DeflateEngine::kZlib, 10}), ErrorKind::kInvalidArgument});
  SymmetricEncryptOptions twofish = test_options();
  twofish.cipher_algo = 10;
  cases.push_back({twofish, ErrorKind::kUnsupported});
  for (const Case& c : cases) {
    for (bool write_first : {true, false}) {
      size_t calls = 0;
      SymmetricEncryptor encryptor(
          "pw",
          [&](std::string_view) -> Status {
            ++calls;
            return {};
          },
          c.options);
      Status s = write_first ? encryptor.write("data") : encryptor.finish();
      ASSERT_FALSE(s);
      EXPECT_EQ(s.error().kind, c.kind) << s.error().message;
      s = encryptor.finish();
      ASSERT_FALSE(s);
      EXPECT_EQ(s.error().kind, c.kind);
      EXPECT_EQ(calls, 0u);
    }
  }
}

TEST(OpenPgpEncrypt, SinkErrorIsReturnedAndSticky) {
  const std::string data = make_payload(3 * kMiB, 11);
  for (bool compressed : {true, false}) {
    size_t calls = 0;
    SymmetricEncryptor encryptor(
        "pw",
        [&](std::string_view) -> Status {
          if (++calls == 3) return make_error(ErrorKind::kCancelled, "stopped");
          return {};
        },
        compressed ? test_options() : test_options(std::nullopt));
    Status s = {};
    for (size_t at = 0; at < data.size() && s; at += 100'000) {
      s = encryptor.write(std::string_view(data).substr(at, 100'000));
    }
    if (s) s = encryptor.finish();
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().kind, ErrorKind::kCancelled);
    EXPECT_EQ(s.error().message, "stopped");
    s = encryptor.write("more");
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().message, "stopped");
    s = encryptor.finish();
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().message, "stopped");
    EXPECT_EQ(calls, 3u);
  }
}

TEST(OpenPgpEncrypt, FinishTwiceAndWriteAfterFinish) {
  std::string message;
  SymmetricEncryptor encryptor(
      "pw",
      [&](std::string_view out) -> Status {
        message += out;
        return {};
      },
      test_options());
  ASSERT_TRUE(encryptor.write("abc"));
  ASSERT_TRUE(encryptor.finish());
  const std::string first = message;
  ASSERT_TRUE(encryptor.finish());
  EXPECT_EQ(message, first);
  Status s = encryptor.write("x");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, ErrorKind::kInvalidArgument);
  Result<std::string> back = our_decrypt(message, "pw");
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, "abc");
}

TEST(OpenPgpEncrypt, EncryptorsRunInParallel) {
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&good, i] {
      const std::string data = make_payload(2 * kMiB, 20 + i);
      const std::string passphrase = fmt::format("thread {}", i);
      Encrypted e = encrypt(
          data, passphrase,
          test_options(DeflateLevel{i % 2 == 0 ? DeflateEngine::kIsal : DeflateEngine::kZlib, 1}),
          30'000);
      if (!e.status) return;
      Result<std::string> back = our_decrypt(e.message, passphrase);
      if (back && *back == data) ++good;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 4);
}

}  // namespace
}  // namespace dupfs::chain

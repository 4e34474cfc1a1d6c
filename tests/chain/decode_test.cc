// Tests of chain/decode: gzip, plain and GnuPG decoding (the GnuPG cases use the real gpg in
// temporary GNUPGHOMEs), error mapping, streaming in pieces, SHA1 of stored objects.
#include "chain/codec/decode.h"

#include <gtest/gtest.h>
#include <malloc.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backends/faulty_backend.h"
#include "backends/file_backend.h"
#include "backends/memory_backend.h"
#include "tests/support/gpg_home.h"
#include "tests/support/sanitizers.h"
#include "tests/support/source_tree.h"

namespace dupfs::chain {
namespace {

using test::GpgHome;
using test::make_payload;
using test::TempDir;

// Deterministic test data: blocks of pseudo-random bytes alternating with compressible text.

void write_file(const std::string& path, std::string_view data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// Collects a decode's output and the sizes of the pieces it came in.
struct Collector {
  std::string data;
  std::vector<size_t> pieces;
  ByteSink sink() {
    return [this](std::string_view piece) -> Status {
      pieces.push_back(piece.size());
      data.append(piece);
      return {};
    };
  }
};

// Resident set size now, in bytes.
size_t current_rss() {
  std::ifstream statm("/proc/self/statm");
  size_t pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

// ---------------------------------------------------------------------------------------------

TEST(DecodeCodec, ChosenFromSuffix) {
  EXPECT_EQ(codec_for_name("duplicity-full.20240101T000000Z.vol1.difftar.gpg"), Codec::kGpg);
  EXPECT_EQ(codec_for_name("duplicity-full.20240101T000000Z.manifest.gpg"), Codec::kGpg);
  EXPECT_EQ(codec_for_name("df.20240101T000000Z.vol1.dt.g"), Codec::kGpg);
  EXPECT_EQ(codec_for_name("duplicity-full.20240101T000000Z.vol1.difftar.gz"), Codec::kGzip);
  EXPECT_EQ(codec_for_name("duplicity-full-signatures.20240101T000000Z.sigtar.gz"), Codec::kGzip);
  EXPECT_EQ(codec_for_name("df.20240101T000000Z.vol1.dt.z"), Codec::kGzip);
  EXPECT_EQ(codec_for_name("x.tgz"), Codec::kGzip);
  EXPECT_EQ(codec_for_name("duplicity-full.20240101T000000Z.vol1.difftar"), Codec::kPlain);
  EXPECT_EQ(codec_for_name("duplicity-full.20240101T000000Z.manifest"), Codec::kPlain);
  EXPECT_EQ(codec_for_name("something.gpg.part"), Codec::kPlain);
  EXPECT_EQ(codec_for_name(""), Codec::kPlain);
}

// ---------------------------------------------------------------------------------------------
// gzip

TEST(DecodeGzip, SmallRoundTrip) {
  MemoryBackend backend;
  backend.put("a.gz", gzip_compress("hello, duplicity\n"));
  backend.put("empty.gz", gzip_compress(""));
  auto a = decode_object_to_string(backend, "a.gz", {});
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(*a, "hello, duplicity\n");
  auto e = decode_object_to_string(backend, "empty.gz", {});
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(*e, "");
}

TEST(DecodeGzip, CompressHasGzipHeaderAndLevels) {
  std::string data = make_payload(300'000);
  std::string fast = gzip_compress(data, 1);
  std::string best = gzip_compress(data, 9);
  std::string stored = gzip_compress(data, 0);
  ASSERT_GE(fast.size(), 10u);
  EXPECT_EQ(static_cast<unsigned char>(fast[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(fast[1]), 0x8b);
  EXPECT_LT(best.size(), data.size());
  EXPECT_GT(stored.size(), data.size());
  MemoryBackend backend;
  backend.put("1.gz", fast);
  backend.put("9.gz", best);
  backend.put("0.gz", stored);
  for (const char* name : {"1.gz", "9.gz", "0.gz"}) {
    auto out = decode_object_to_string(backend, name, {});
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_TRUE(*out == data) << name;
  }
}

TEST(DecodeGzip, LargePayloadDecodesInPieces) {
  const std::string data = make_payload(20 << 20, 7);
  auto memory = std::make_shared<MemoryBackend>();
  FaultyBackend backend(memory);  // counts the reads, fails them on demand
  memory->put("big.difftar.gz", gzip_compress(data));
  Collector out;
  auto s = decode_object(backend, "big.difftar.gz", {}, out.sink());
  ASSERT_TRUE(s) << s.error().message;
  ASSERT_EQ(out.data.size(), data.size());
  EXPECT_TRUE(out.data == data);
  EXPECT_GT(out.pieces.size(), 10u);
  EXPECT_LE(*std::max_element(out.pieces.begin(), out.pieces.end()), size_t{1} << 20);
  EXPECT_GT(backend.read_count("big.difftar.gz"), 2);
  EXPECT_LE(backend.longest_read(), size_t{1} << 20);
}

TEST(DecodeGzip, ConcatenatedMembersAreOneStream) {
  std::string a = make_payload(1 << 20, 1), b = make_payload(3000, 2), c = "tail";
  MemoryBackend backend;
  backend.put("cat.gz",
              gzip_compress(a) + gzip_compress(b, 9) + gzip_compress("") + gzip_compress(c, 1));
  auto out = decode_object_to_string(backend, "cat.gz", {});
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_TRUE(*out == a + b + c);

  // Zero padding after the last member is accepted, as Python's GzipFile does.
  backend.put("padded.gz", gzip_compress(c) + std::string(1000, '\0'));
  out = decode_object_to_string(backend, "padded.gz", {});
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(*out, c);
}

TEST(DecodeGzip, ReadsWhatGzipWrites) {
  TempDir dir;
  std::string data = make_payload(2 << 20, 3);
  write_file(dir.file("in"), data);
  auto r = test::run({"gzip", "-k", "-6", dir.file("in")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  MemoryBackend backend;
  backend.put("in.gz", read_file(dir.file("in.gz")));
  auto out = decode_object_to_string(backend, "in.gz", {});
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_TRUE(*out == data);

  // And gzip reads what gzip_compress writes.
  write_file(dir.file("ours.gz"), gzip_compress(data));
  r = test::run({"gzip", "-t", dir.file("ours.gz")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(DecodeGzip, TruncatedIsCorruption) {
  std::string gz = gzip_compress(make_payload(2 << 20, 4));
  MemoryBackend backend;
  for (size_t keep : {gz.size() - 1, gz.size() - 4, gz.size() - 8, gz.size() / 2, size_t{12},
                      size_t{3}, size_t{1}}) {
    std::string name = fmt::format("cut{}.difftar.gz", keep);
    backend.put(name, gz.substr(0, keep));
    auto s = decode_object(backend, name, {}, [](std::string_view) -> Status { return {}; });
    ASSERT_FALSE(s) << keep;
    EXPECT_EQ(s.error().kind, ErrorKind::kCorruption) << keep << ": " << s.error().message;
    EXPECT_NE(s.error().message.find(name), std::string::npos) << s.error().message;
  }
  backend.put("empty.gz", "");
  auto s = decode_object_to_string(backend, "empty.gz", {});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, ErrorKind::kCorruption);
}

TEST(DecodeGzip, DamageIsCorruption) {
  std::string gz = gzip_compress(make_payload(2 << 20, 5));
  MemoryBackend backend;
  // Inside the deflate data, in the CRC32 and in the length of the trailer, in the magic.
  for (size_t at : {gz.size() / 2, gz.size() - 6, gz.size() - 2, size_t{0}}) {
    std::string bad = gz;
    bad[at] = static_cast<char>(bad[at] ^ 0x55);
    std::string name = fmt::format("flip{}.sigtar.gz", at);
    backend.put(name, bad);
    auto s = decode_object(backend, name, {}, [](std::string_view) -> Status { return {}; });
    ASSERT_FALSE(s) << at;
    EXPECT_EQ(s.error().kind, ErrorKind::kCorruption) << at << ": " << s.error().message;
    EXPECT_NE(s.error().message.find(name), std::string::npos) << s.error().message;
  }
  // Garbage after a complete member.
  backend.put("trailing.gz", gzip_compress("abc") + "garbage");
  auto s = decode_object_to_string(backend, "trailing.gz", {});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, ErrorKind::kCorruption) << s.error().message;
  // Not gzip at all.
  backend.put("plain.gz", "just some text that is not gzip");
  s = decode_object_to_string(backend, "plain.gz", {});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, ErrorKind::kCorruption) << s.error().message;
}

// ---------------------------------------------------------------------------------------------
// plain, storage and sink errors

TEST(DecodePlain, PassesBytesThroughInPieces) {
  auto memory = std::make_shared<MemoryBackend>();
  FaultyBackend backend(memory);  // counts the reads, fails them on demand
  for (size_t size :
       {size_t{0}, size_t{1}, size_t{1} << 20, (size_t{2} << 20), (size_t{3} << 20) + 12345}) {
    std::string name = fmt::format("p{}.difftar", size);
    std::string data = make_payload(size, size);
    memory->put(name, data);
    Collector out;
    auto s = decode_object(backend, name, {}, out.sink());
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_TRUE(out.data == data) << size;
    for (size_t p : out.pieces) {
      EXPECT_GT(p, 0u);
      EXPECT_LE(p, size_t{1} << 20);
    }
  }
  EXPECT_LE(backend.longest_read(), size_t{1} << 20);
}

TEST(DecodeObject, MissingObjectIsNotFound) {
  MemoryBackend backend;
  for (const char* name : {"nothing.difftar", "nothing.difftar.gz", "nothing.manifest.gpg"}) {
    auto s = decode_object_to_string(backend, name, {.passphrase = "x", .gnupg_home = ""});
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().kind, ErrorKind::kNotFound) << name << ": " << s.error().message;
  }
}

TEST(DecodeObject, SinkErrorIsReturnedUnchanged) {
  GpgHome home;
  TempDir dir;
  std::string data = make_payload(3 << 20, 9);
  write_file(dir.file("in"), data);
  home.encrypt_symmetric(dir.file("in"), dir.file("out.gpg"), "pw");
  MemoryBackend backend;
  backend.put("v.difftar", data);
  backend.put("v.difftar.gz", gzip_compress(data));
  backend.put("v.difftar.gpg", read_file(dir.file("out.gpg")));
  Credentials credentials{.passphrase = "pw", .gnupg_home = home.path()};
  for (const char* name : {"v.difftar", "v.difftar.gz", "v.difftar.gpg"}) {
    size_t received = 0;
    int calls = 0;
    auto s = decode_object(backend, name, credentials, [&](std::string_view piece) -> Status {
      ++calls;
      received += piece.size();
      if (received > 1'500'000) return make_error(ErrorKind::kCancelled, "unmounted");
      return {};
    });
    ASSERT_FALSE(s) << name;
    EXPECT_EQ(s.error().kind, ErrorKind::kCancelled) << name << ": " << s.error().message;
    EXPECT_EQ(s.error().message, "unmounted") << name;
    EXPECT_LT(received, data.size()) << name;
  }
}

TEST(DecodeObject, StorageErrorIsReturnedUnchanged) {
  GpgHome home;
  TempDir dir;
  std::string data = make_payload(4 << 20, 10);
  write_file(dir.file("in"), data);
  home.encrypt_symmetric(dir.file("in"), dir.file("out.gpg"), "pw");
  auto memory = std::make_shared<MemoryBackend>();
  FaultyBackend backend(memory);  // counts the reads, fails them on demand
  memory->put("v.difftar", data);
  memory->put("v.difftar.gz", gzip_compress(data, 0));  // stored: longer than 1 MiB
  memory->put("v.difftar.gpg", read_file(dir.file("out.gpg")));
  Credentials credentials{.passphrase = "pw", .gnupg_home = home.path()};
  for (const char* name : {"v.difftar", "v.difftar.gz", "v.difftar.gpg"}) {
    for (uint64_t from : {uint64_t{0}, uint64_t{1} << 20}) {
      backend.fail_reads_from(name, from, Error{ErrorKind::kIoError, "disk on fire"});
      auto s =
          decode_object(backend, name, credentials, [](std::string_view) -> Status { return {}; });
      ASSERT_FALSE(s) << name;
      EXPECT_EQ(s.error().kind, ErrorKind::kIoError) << name << ": " << s.error().message;
      EXPECT_EQ(s.error().message, "disk on fire") << name;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// SHA1

TEST(DecodeSha1, MatchesSha1sum) {
  TempDir dir;
  auto memory = std::make_shared<MemoryBackend>();
  FaultyBackend backend(memory);  // counts the reads, fails them on demand
  memory->put("abc", "abc");
  memory->put("empty", "");
  auto abc = sha1_of_object(backend, "abc");
  ASSERT_TRUE(abc) << abc.error().message;
  EXPECT_EQ(*abc, "a9993e364706816aba3e25717850c26c9cd0d89d");
  auto empty = sha1_of_object(backend, "empty");
  ASSERT_TRUE(empty);
  EXPECT_EQ(*empty, "da39a3ee5e6b4b0d3255bfef95601890afd80709");

  for (size_t size : {size_t{1} << 20, (size_t{5} << 20) + 7}) {
    std::string data = make_payload(size, 11);
    write_file(dir.file("f"), data);
    auto r = test::run({"sha1sum", dir.file("f")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    memory->put("f", data);
    int reads_before = backend.read_count("f");
    auto sum = sha1_of_object(backend, "f");
    ASSERT_TRUE(sum) << sum.error().message;
    EXPECT_EQ(*sum, r.out.substr(0, 40));
    EXPECT_GE(backend.read_count("f") - reads_before, static_cast<int>(size >> 20));
  }
  EXPECT_LE(backend.longest_read(), size_t{1} << 20);
  auto missing = sha1_of_object(backend, "missing");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
}

// ---------------------------------------------------------------------------------------------
// GnuPG, with the real gpg

class DecodeGpg : public ::testing::Test {
 protected:
  // Encrypts `data` symmetrically with `home`'s gpg and stores it as `name`.
  void put_symmetric(const GpgHome& home, const std::string& name, const std::string& data,
                     const std::string& passphrase, std::vector<std::string> extra = {}) {
    write_file(dir_.file("plain"), data);
    home.encrypt_symmetric(dir_.file("plain"), dir_.file("cipher"), passphrase, extra);
    backend_.put(name, read_file(dir_.file("cipher")));
  }
  void put_to_key(const GpgHome& home, const std::string& name, const std::string& data,
                  const std::string& fingerprint) {
    write_file(dir_.file("plain"), data);
    home.encrypt_to(dir_.file("plain"), dir_.file("cipher"), fingerprint);
    backend_.put(name, read_file(dir_.file("cipher")));
  }
  Result<std::string> decode(const std::string& name, const Credentials& credentials) {
    return decode_object_to_string(backend_, name, credentials);
  }

  TempDir dir_;
  MemoryBackend backend_;
};

TEST_F(DecodeGpg, SymmetricRightPassphraseThenWrongOne) {
  GpgHome home;
  const std::string name = "duplicity-full.20240101T000000Z.manifest.gpg";
  const std::string data = make_payload(600'000, 12);
  // Encrypting through the same home leaves the passphrase in gpg-agent's cache.
  put_symmetric(home, name, data, "correct horse");

  auto ok = decode(name, {.passphrase = "correct horse", .gnupg_home = home.path()});
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_TRUE(*ok == data);

  // Right after a success, a wrong passphrase must still fail (no-symkey-cache).
  auto wrong = decode(name, {.passphrase = "battery staple", .gnupg_home = home.path()});
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().kind, ErrorKind::kAuth) << wrong.error().message;
  EXPECT_EQ(wrong.error().message, "cannot decrypt " + name + ": bad passphrase");
  EXPECT_EQ(wrong.error().message.find("battery"), std::string::npos);

  auto empty = decode(name, {.passphrase = "", .gnupg_home = home.path()});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().kind, ErrorKind::kAuth) << empty.error().message;

  ok = decode(name, {.passphrase = "correct horse", .gnupg_home = home.path()});
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_TRUE(*ok == data);
}

TEST_F(DecodeGpg, SymmetricWithoutPassphraseIsAuth) {
  GpgHome home;
  const std::string name = "duplicity-full.20240101T000000Z.vol1.difftar.gpg";
  put_symmetric(home, name, "some data", "pw");
  auto s = decode(name, {.passphrase = std::nullopt, .gnupg_home = home.path()});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, ErrorKind::kAuth) << s.error().message;
  EXPECT_EQ(s.error().message, "cannot decrypt " + name + ": no passphrase given");
}

TEST_F(DecodeGpg, SymmetricWithoutCompression) {
  // duplicity 2.0+ with --no-compression: the literal packet sits directly in the SEIPD.
  GpgHome home;
  const std::string data = make_payload(2 << 20, 13);
  put_symmetric(home, "nc.gpg", data, "pw", {"--compress-algo", "none"});
  auto ok = decode("nc.gpg", {.passphrase = "pw", .gnupg_home = home.path()});
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_TRUE(*ok == data);
}

TEST_F(DecodeGpg, PublicKeyNeedsTheSecretKey) {
  GpgHome home;
  std::string fingerprint = home.generate_key("dupfs test <test@example.org>");
  ASSERT_EQ(fingerprint.size(), 40u) << fingerprint;
  const std::string name = "duplicity-inc.20240101T000000Z.to.20240102T000000Z.vol1.difftar.gpg";
  const std::string data = make_payload(500'000, 14);
  put_to_key(home, name, data, fingerprint);

  // An unprotected key: no passphrase needed.
  auto ok = decode(name, {.passphrase = std::nullopt, .gnupg_home = home.path()});
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_TRUE(*ok == data);

  GpgHome other;
  auto s = decode(name, {.passphrase = "anything", .gnupg_home = other.path()});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, ErrorKind::kAuth) << s.error().message;
  EXPECT_NE(s.error().message.find("cannot decrypt " + name + ": no secret key"), std::string::npos)
      << s.error().message;
}

TEST_F(DecodeGpg, PassphraseProtectedSecretKey) {
  GpgHome home;
  std::string fingerprint = home.generate_key("protected <p@example.org>", "key secret");
  const std::string data = make_payload(100'000, 15);
  put_to_key(home, "k.gpg", data, fingerprint);

  // Wrong first: once the key is unlocked, gpg-agent keeps it unlocked for a while.
  auto wrong = decode("k.gpg", {.passphrase = "not it", .gnupg_home = home.path()});
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().kind, ErrorKind::kAuth) << wrong.error().message;
  EXPECT_EQ(wrong.error().message, "cannot decrypt k.gpg: bad passphrase");

  auto none = decode("k.gpg", {.passphrase = std::nullopt, .gnupg_home = home.path()});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().kind, ErrorKind::kAuth) << none.error().message;

  auto ok = decode("k.gpg", {.passphrase = "key secret", .gnupg_home = home.path()});
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_TRUE(*ok == data);
}

TEST_F(DecodeGpg, SignedAndEncryptedDecodes) {
  GpgHome home;
  std::string recipient = home.generate_key("recipient <r@example.org>");
  std::string signer = home.generate_key("signer <s@example.org>", "sign pw");
  const std::string data = make_payload(700'000, 16);
  write_file(dir_.file("plain"), data);
  home.sign_and_encrypt_to(dir_.file("plain"), dir_.file("cipher"), recipient, signer, "sign pw");
  backend_.put("se.gpg", read_file(dir_.file("cipher")));
  auto ok = decode("se.gpg", {.passphrase = std::nullopt, .gnupg_home = home.path()});
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_TRUE(*ok == data);
}

TEST_F(DecodeGpg, DamageIsCorruptionNotAuth) {
  GpgHome home;
  const std::string data = make_payload(1 << 20, 17);
  put_symmetric(home, "v.difftar.gpg", data, "pw");
  put_symmetric(home, "nc.difftar.gpg", data, "pw", {"--compress-algo", "none"});
  const std::string good = *backend_.read("v.difftar.gpg");
  const std::string good_nc = *backend_.read("nc.difftar.gpg");
  const Credentials credentials{.passphrase = "pw", .gnupg_home = home.path()};

  struct Case {
    std::string label;
    std::string bytes;
  };
  std::vector<Case> cases;
  for (const auto* src : {&good, &good_nc}) {
    const std::string& g = *src;
    std::string tag = src == &good ? "z" : "nc";
    std::string flipped = g;
    flipped[g.size() / 2] = static_cast<char>(flipped[g.size() / 2] ^ 0x01);
    cases.push_back({tag + "-flip-middle", flipped});
    std::string flipped_end = g;
    flipped_end[g.size() - 5] = static_cast<char>(flipped_end[g.size() - 5] ^ 0x80);
    cases.push_back({tag + "-flip-mdc", flipped_end});
    cases.push_back({tag + "-truncated-half", g.substr(0, g.size() / 2)});
    cases.push_back({tag + "-truncated-end", g.substr(0, g.size() - 1)});
  }
  cases.push_back({"garbage", make_payload(5000, 18)});
  cases.push_back({"empty", ""});
  for (const auto& c : cases) {
    std::string name = c.label + ".difftar.gpg";
    backend_.put(name, c.bytes);
    auto s =
        decode_object(backend_, name, credentials, [](std::string_view) -> Status { return {}; });
    ASSERT_FALSE(s) << c.label;
    EXPECT_EQ(s.error().kind, ErrorKind::kCorruption) << c.label << ": " << s.error().message;
    EXPECT_NE(s.error().message.find(name), std::string::npos) << s.error().message;
  }
}

TEST_F(DecodeGpg, ParallelDecodes) {
  GpgHome home;
  std::vector<std::string> datas;
  for (int i = 0; i < 4; ++i) {
    datas.push_back(make_payload(300'000 + i, 20 + i));
    put_symmetric(home, fmt::format("{}.gpg", i), datas.back(), "pw");
  }
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto out = decode(fmt::format("{}.gpg", i), {.passphrase = "pw", .gnupg_home = home.path()});
      if (out && *out == datas[i]) ++good;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 4);
}

TEST_F(DecodeGpg, LargeVolumeKeepsMemoryBounded) {
  GpgHome home;
  constexpr size_t kSize = 50 << 20;
  // The plaintext goes to disk in pieces; only its SHA1 stays.
  std::string expected_sha1;
  {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    EVP_DigestInit_ex(md.get(), EVP_sha1(), nullptr);
    std::ofstream f(dir_.file("plain"), std::ios::binary);
    for (size_t done = 0, i = 0; done < kSize; ++i) {
      std::string piece = make_payload(std::min<size_t>(1 << 20, kSize - done), 100 + i);
      EVP_DigestUpdate(md.get(), piece.data(), piece.size());
      f.write(piece.data(), static_cast<std::streamsize>(piece.size()));
      done += piece.size();
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(md.get(), digest, &n);
    for (unsigned int i = 0; i < n; ++i) expected_sha1 += fmt::format("{:02x}", digest[i]);
  }
  home.encrypt_symmetric(dir_.file("plain"), dir_.file("big.difftar.gpg"), "pw",
                         {"--compress-algo", "none"});
  std::filesystem::remove(dir_.file("plain"));
  FileBackend backend(dir_.path());

  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_DigestInit_ex(md.get(), EVP_sha1(), nullptr);
  // Give freed heap back to the system first, so that growth shows in the resident size.
  ::malloc_trim(0);
  const size_t rss_before = current_rss();
  size_t rss_max = rss_before, received = 0, max_piece = 0;
  auto s =
      decode_object(backend, "big.difftar.gpg", {.passphrase = "pw", .gnupg_home = home.path()},
                    [&](std::string_view piece) -> Status {
                      EVP_DigestUpdate(md.get(), piece.data(), piece.size());
                      received += piece.size();
                      max_piece = std::max(max_piece, piece.size());
                      rss_max = std::max(rss_max, current_rss());
                      return {};
                    });
  rss_max = std::max(rss_max, current_rss());
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(received, kSize);
  EXPECT_LE(max_piece, size_t{1} << 20);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(md.get(), digest, &n);
  std::string got_sha1;
  for (unsigned int i = 0; i < n; ++i) got_sha1 += fmt::format("{:02x}", digest[i]);
  EXPECT_EQ(got_sha1, expected_sha1);
  RecordProperty("rss_growth_kib", std::to_string((rss_max - rss_before) >> 10));
  if (test::kUnderSanitizer) return;  // quarantine and shadow memory: no RSS bound there
  EXPECT_LT(rss_max - rss_before, size_t{40} << 20)
      << "RSS grew by " << ((rss_max - rss_before) >> 20) << " MiB";
}

}  // namespace
}  // namespace dupfs::chain

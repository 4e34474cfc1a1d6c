// Tests of chain/metadata/volume_index: the seek index file, sealed and clear. Every sealed file
// here uses the process's one sealing salt, so the S2K runs once per passphrase (and once more for
// each flip of the salt or count octet).
#include "chain/metadata/volume_index.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstring>
#include <random>
#include <string>
#include <string_view>

namespace dupfs::chain {
namespace {

constexpr std::string_view kVolume = "duplicity-full.20240101T000000Z.vol1.difftar.gpg";
constexpr std::string_view kSha1 = "0123456789abcdef0123456789abcdef01234567";
constexpr std::string_view kSessionKey = "session-key:7f3a9c21e4b5d6088a1b";
// Offsets in the file: magic, mode, then (sealed) salt, count octet, nonce.
constexpr size_t kModeAt = 13;
constexpr size_t kSaltAt = 14;
constexpr size_t kCountAt = 22;
constexpr size_t kPayloadAt = 14;  // clear

SecretBuffer secret(std::string_view s) { return SecretBuffer(s.data(), s.size()); }

const SecretBuffer& passphrase() {
  static const SecretBuffer p = secret("correct horse battery staple");
  return p;
}

// Recognisable plaintext: not found in a file unless written there in clear.
std::string window_text(size_t size, char tag) {
  std::string w;
  for (size_t i = 0; w.size() < size; ++i)
    w += std::string("plaintext window ") + tag + "#" + std::to_string(i) + ";";
  w.resize(size);
  return w;
}

CatalogEntry entry(EntryKind kind, Index index, int64_t chunk, TarType type, uint64_t offset) {
  CatalogEntry e{};
  e.name.kind = kind;
  e.name.index = std::move(index);
  e.name.chunk = chunk;
  TarHeader& h = e.header;
  h.type = type;
  h.mode = 04755;
  h.uid = 1000;
  h.gid = -2;
  h.uname = "alice";
  h.gname = "staff";
  h.mtime = -86400;
  h.size = type == TarType::kFile ? 1234 : 0;
  h.header_offset = offset;
  h.data_offset = offset + 512;
  return e;
}

SeekData seek_data(SeekCodec codec) {
  SeekData s;
  s.codec = codec;
  if (codec == SeekCodec::kGpg) {
    s.cipher = 9;
    s.session_key = secret(kSessionKey);
    s.seipd.runs = {{.outer = 20, .inner = 0, .length = 8192, .stride = 8197, .count = 40},
                    {.outer = 327900, .inner = 327680, .length = 77, .stride = 78, .count = 1}};
    s.z_base = 3;
    s.literal.runs = {
        {.outer = 25, .inner = 0, .length = 1 << 20, .stride = (1 << 20) + 5, .count = 3}};
  }
  s.compression = codec == SeekCodec::kPlain ? 0 : 2;
  s.d_size = 3 << 20;
  s.points = {
      {.out = 0, .in_bits = 0, .crc = 0xdeadbeef, .window = ""},
      {.out = 1 << 20, .in_bits = 8 * 300001 + 5, .crc = 17, .window = window_text(4096, 'a')},
      {.out = 2 << 20,
       .in_bits = 8 * 700003 + 1,
       .crc = 0xffffffff,
       .window = window_text(kDeflateWindow, 'b')}};
  return s;
}

VolumeIndex sample(SeekCodec codec) {
  VolumeIndex v;
  v.volume = kVolume;
  v.sha1 = kSha1;
  v.stored_size = 3 * uint64_t{kIndexChunkSize} + 5;
  v.decoded_size = 3 << 20;
  for (uint8_t i = 0; i < 4; ++i) {
    std::array<uint8_t, 32> h;
    for (size_t j = 0; j < h.size(); ++j) h[j] = static_cast<uint8_t>(i * 32 + j);
    v.chunk_sha256.push_back(h);
  }
  v.catalog.push_back(entry(EntryKind::kSnapshot, {}, 0, TarType::kDirectory, 0));
  v.catalog.push_back(
      entry(EntryKind::kSnapshot, {"home", "alice", "notes.txt"}, 0, TarType::kFile, 1024));
  v.catalog.push_back(
      entry(EntryKind::kMultivolDiff, {"var", "lib", "big db", "x\xff"}, 7, TarType::kFile, 4096));
  CatalogEntry link = entry(EntryKind::kDiff, {"bin", "sh"}, 0, TarType::kSymlink, 8192);
  link.header.linkname = "/usr/bin/dash";
  v.catalog.push_back(link);
  CatalogEntry dev = entry(EntryKind::kSnapshot, {"dev", "sda"}, 0, TarType::kBlockDevice, 9216);
  dev.header.devmajor = 8;
  dev.header.devminor = 4000000000u;
  v.catalog.push_back(dev);
  v.catalog.push_back(entry(EntryKind::kDeleted, {"tmp", "gone"}, 0, TarType::kFile, 10240));
  v.seek = seek_data(codec);
  return v;
}

// A small index, for the loops over every byte.
VolumeIndex small(SeekCodec codec) {
  VolumeIndex v;
  v.volume = "v1.gpg";
  v.sha1 = "ab";
  v.stored_size = 10;
  v.decoded_size = 1536;
  v.chunk_sha256.push_back({});
  v.chunk_sha256[0].fill(0x5a);
  v.catalog.push_back(entry(EntryKind::kSnapshot, {"a", "b"}, 0, TarType::kFile, 0));
  SeekData s;
  s.codec = codec;
  if (codec == SeekCodec::kGpg) {
    s.cipher = 9;
    s.session_key = secret("0123456789abcdef");
    s.seipd.runs = {{.outer = 2, .inner = 0, .length = 8, .stride = 9, .count = 1}};
    s.literal.runs = {{.outer = 1, .inner = 0, .length = 5, .stride = 6, .count = 1}};
  }
  s.compression = 1;
  s.d_size = 1600;
  s.points = {{.out = 0, .in_bits = 3, .crc = 5, .window = "win"}};
  v.seek = std::move(s);
  return v;
}

void expect_same_seek(const SeekData& a, const SeekData& b) {
  EXPECT_EQ(a.codec, b.codec);
  EXPECT_EQ(a.cipher, b.cipher);
  EXPECT_TRUE(a.session_key == b.session_key);
  EXPECT_EQ(a.seipd, b.seipd);
  EXPECT_EQ(a.compression, b.compression);
  EXPECT_EQ(a.z_base, b.z_base);
  EXPECT_EQ(a.literal, b.literal);
  EXPECT_EQ(a.d_size, b.d_size);
  EXPECT_EQ(a.points, b.points);
}

// Everything but the seek data.
void expect_same_index(const VolumeIndex& a, const VolumeIndex& b) {
  EXPECT_EQ(a.volume, b.volume);
  EXPECT_EQ(a.sha1, b.sha1);
  EXPECT_EQ(a.stored_size, b.stored_size);
  EXPECT_EQ(a.decoded_size, b.decoded_size);
  EXPECT_EQ(a.chunk_size, b.chunk_size);
  EXPECT_EQ(a.chunk_sha256, b.chunk_sha256);
  ASSERT_EQ(a.catalog.size(), b.catalog.size());
  for (size_t i = 0; i < a.catalog.size(); ++i) {
    SCOPED_TRACE(i);
    const CatalogEntry& x = a.catalog[i];
    const CatalogEntry& y = b.catalog[i];
    EXPECT_EQ(x.name.kind, y.name.kind);
    EXPECT_EQ(x.name.index, y.name.index);
    EXPECT_EQ(x.name.chunk, y.name.chunk);
    EXPECT_EQ(x.header.name, y.header.name);
    EXPECT_EQ(x.header.linkname, y.header.linkname);
    EXPECT_EQ(x.header.type, y.header.type);
    EXPECT_EQ(x.header.mode, y.header.mode);
    EXPECT_EQ(x.header.uid, y.header.uid);
    EXPECT_EQ(x.header.gid, y.header.gid);
    EXPECT_EQ(x.header.uname, y.header.uname);
    EXPECT_EQ(x.header.gname, y.header.gname);
    EXPECT_EQ(x.header.mtime, y.header.mtime);
    EXPECT_EQ(x.header.size, y.header.size);
    EXPECT_EQ(x.header.devmajor, y.header.devmajor);
    EXPECT_EQ(x.header.devminor, y.header.devminor);
    EXPECT_EQ(x.header.header_offset, y.header.header_offset);
    EXPECT_EQ(x.header.data_offset, y.header.data_offset);
  }
}

std::string encode(const VolumeIndex& v, const SecretBuffer* pass) {
  auto file = encode_volume_index(v, pass);
  EXPECT_TRUE(file.has_value()) << file.error().message;
  return file.value_or("");
}

std::string sha256(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(digest), size);
}

// A clear file with `body` (magic, mode, payload) and its right SHA-256.
std::string with_digest(std::string body) { return body + sha256(body); }
std::string body_of(const std::string& clear_file) {
  return clear_file.substr(0, clear_file.size() - 32);
}

std::string u64le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

ErrorKind kind_of(const Result<VolumeIndex>& r) {
  return r ? ErrorKind::kNotFound : r.error().kind;
}

TEST(VolumeIndexName, RoundTrip) {
  EXPECT_EQ(volume_index_name(kVolume), "dupfs-seek." + std::string(kVolume) + ".idx");
  EXPECT_EQ(volume_of_index_name(volume_index_name(kVolume)), std::string(kVolume));
  EXPECT_EQ(volume_of_index_name("dupfs-seek.a.idx"), "a");
  EXPECT_EQ(volume_of_index_name("dupfs-seek..idx.idx"), ".idx");
}

TEST(VolumeIndexName, OtherNames) {
  for (std::string_view name : std::initializer_list<std::string_view>{
           "", "dupfs-seek.", "dupfs-seek.idx", "dupfs-seek..idx", "dupfs-seek.a/b.idx",
           "dupfs-seek.a.id", "Dupfs-seek.a.idx", "x-dupfs-seek.a.idx", "dupfs-seek.a.idx.tmp",
           kVolume}) {
    EXPECT_EQ(volume_of_index_name(name), std::nullopt) << name;
  }
}

TEST(VolumeIndex, SealedRoundTrip) {
  VolumeIndex v = sample(SeekCodec::kGpg);
  std::string file = encode(v, &passphrase());
  ASSERT_TRUE(file.starts_with("dupfs-seek-1\n"));
  EXPECT_EQ(file[kModeAt], 1);
  EXPECT_EQ(static_cast<uint8_t>(file[kCountAt]), 0xff);
  auto back = decode_volume_index(file, &passphrase(), kVolume, kSha1);
  ASSERT_TRUE(back) << back.error().message;
  expect_same_index(*back, v);
  ASSERT_TRUE(back->seek);
  expect_same_seek(*back->seek, *v.seek);
}

TEST(VolumeIndex, SealedRoundTripWithoutSeek) {
  VolumeIndex v = sample(SeekCodec::kGzip);
  v.seek.reset();
  v.catalog.clear();
  auto back = decode_volume_index(encode(v, &passphrase()), &passphrase(), kVolume, kSha1);
  ASSERT_TRUE(back) << back.error().message;
  expect_same_index(*back, v);
  EXPECT_FALSE(back->seek);
}

TEST(VolumeIndex, ClearRoundTripKeepsGzipSeek) {
  for (SeekCodec codec : {SeekCodec::kGzip, SeekCodec::kPlain}) {
    VolumeIndex v = sample(codec);
    std::string file = encode(v, nullptr);
    EXPECT_EQ(file[kModeAt], 0);
    auto back = decode_volume_index(file, nullptr, kVolume, kSha1);
    ASSERT_TRUE(back) << back.error().message;
    expect_same_index(*back, v);
    ASSERT_TRUE(back->seek);
    expect_same_seek(*back->seek, *v.seek);
    // Clear files are deterministic.
    EXPECT_EQ(encode(*back, nullptr), file);
  }
}

TEST(VolumeIndex, ClearDropsGpgSeek) {
  VolumeIndex v = sample(SeekCodec::kGpg);
  std::string file = encode(v, nullptr);
  EXPECT_EQ(file.find(kSessionKey), std::string::npos);
  EXPECT_EQ(file.find(v.seek->points[1].window.substr(0, 32)), std::string::npos);
  auto back = decode_volume_index(file, nullptr, kVolume, kSha1);
  ASSERT_TRUE(back) << back.error().message;
  expect_same_index(*back, v);
  EXPECT_FALSE(back->seek);
}

TEST(VolumeIndex, SecretsAreNotInTheSealedFile) {
  VolumeIndex v = sample(SeekCodec::kGpg);
  std::string file = encode(v, &passphrase());
  EXPECT_EQ(file.find(kSessionKey), std::string::npos);
  EXPECT_EQ(file.find(kSessionKey.substr(0, 12)), std::string::npos);
  for (const SeekPoint& p : v.seek->points) {
    if (!p.window.empty()) {
      EXPECT_EQ(file.find(p.window.substr(0, 16)), std::string::npos);
    }
  }
  // Nor the catalog: names are as private as the data.
  EXPECT_EQ(file.find("notes.txt"), std::string::npos);
}

TEST(VolumeIndex, EveryFlipOfASealedFileIsRefused) {
  const VolumeIndex v = small(SeekCodec::kGpg);
  const std::string file = encode(v, &passphrase());
  ASSERT_TRUE(decode_volume_index(file, &passphrase(), v.volume, v.sha1));
  for (size_t i = 0; i < file.size(); ++i) {
    // Flips of the salt and count octet each cost a key derivation: one flip there.
    const bool costly = i >= kSaltAt && i <= kCountAt;
    for (uint8_t mask : {0x01, 0x80, 0xff}) {
      if (costly && mask != 0x01) continue;
      std::string bad = file;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      auto r = decode_volume_index(bad, &passphrase(), v.volume, v.sha1);
      ASSERT_FALSE(r) << "offset " << i << " mask " << int{mask};
      EXPECT_EQ(r.error().kind, ErrorKind::kCorruption) << i << ": " << r.error().message;
      EXPECT_NE(r.error().message.find(v.volume), std::string::npos) << r.error().message;
    }
  }
}

TEST(VolumeIndex, EveryFlipOfAClearFileIsRefused) {
  const VolumeIndex v = small(SeekCodec::kGzip);
  const std::string file = encode(v, nullptr);
  ASSERT_TRUE(decode_volume_index(file, nullptr, v.volume, v.sha1));
  for (size_t i = 0; i < file.size(); ++i) {
    for (uint8_t mask : {0x01, 0x80, 0xff}) {
      std::string bad = file;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      auto r = decode_volume_index(bad, nullptr, v.volume, v.sha1);
      ASSERT_FALSE(r) << "offset " << i << " mask " << int{mask};
      // A clear file whose mode octet became 1 looks sealed: it needs a passphrase.
      ErrorKind expected = i == kModeAt && bad[i] == 1 ? ErrorKind::kAuth : ErrorKind::kCorruption;
      EXPECT_EQ(r.error().kind, expected) << i << ": " << r.error().message;
    }
  }
}

// Payloads that are damaged but carry a right SHA-256 (a clear file is not authenticated): the
// parser sees them. Each is refused or, when it still parses, is exactly what encode writes.
TEST(VolumeIndex, RehashedPayloadFlipsNeverMisparse) {
  for (SeekCodec codec : {SeekCodec::kGzip, SeekCodec::kPlain}) {
    const VolumeIndex v = small(codec);
    const std::string body = body_of(encode(v, nullptr));
    for (size_t i = kPayloadAt; i < body.size(); ++i) {
      for (uint8_t mask : {0x01, 0x02, 0x10, 0x80, 0xff}) {
        std::string bad = body;
        bad[i] = static_cast<char>(bad[i] ^ mask);
        bad = with_digest(bad);
        auto r = decode_volume_index(bad, nullptr, v.volume, v.sha1);
        if (r) {
          EXPECT_EQ(encode(*r, nullptr), bad) << "offset " << i << " mask " << int{mask};
        } else {
          EXPECT_EQ(r.error().kind, ErrorKind::kCorruption) << r.error().message;
        }
      }
    }
  }
}

TEST(VolumeIndex, WrongPassphraseIsRefused) {
  const VolumeIndex v = small(SeekCodec::kGpg);
  const std::string file = encode(v, &passphrase());
  SecretBuffer other = secret("correct horse battery stapler");
  auto r = decode_volume_index(file, &other, v.volume, v.sha1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kCorruption) << r.error().message;
}

TEST(VolumeIndex, SealedWithoutPassphraseIsAuth) {
  const VolumeIndex v = small(SeekCodec::kGpg);
  auto r = decode_volume_index(encode(v, &passphrase()), nullptr, v.volume, v.sha1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kAuth) << r.error().message;
}

TEST(VolumeIndex, ClearWithPassphraseIsRefused) {
  // Anyone can write a clear index: an archive with a passphrase trusts only sealed ones.
  const VolumeIndex v = small(SeekCodec::kGzip);
  auto r = decode_volume_index(encode(v, nullptr), &passphrase(), v.volume, v.sha1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kCorruption) << r.error().message;
}

TEST(VolumeIndex, OtherVolumeOrSha1IsRefused) {
  const VolumeIndex v = small(SeekCodec::kGzip);
  const std::string sealed = encode(v, &passphrase());
  const std::string clear = encode(v, nullptr);
  const std::pair<std::string_view, std::string_view> others[] = {
      {"v2.gpg", v.sha1}, {v.volume, "ac"}, {"v1.gp", v.sha1}, {v.volume, "ab0"}, {"", ""}};
  for (auto [volume, sha1] : others) {
    auto r = decode_volume_index(sealed, &passphrase(), volume, sha1);
    ASSERT_FALSE(r) << volume << " " << sha1;
    EXPECT_EQ(r.error().kind, ErrorKind::kCorruption);
    r = decode_volume_index(clear, nullptr, volume, sha1);
    ASSERT_FALSE(r) << volume << " " << sha1;
    EXPECT_EQ(r.error().kind, ErrorKind::kCorruption);
  }
}

TEST(VolumeIndex, EveryTruncationIsRefused) {
  const VolumeIndex v = small(SeekCodec::kGpg);
  for (const SecretBuffer* pass : {&passphrase(), static_cast<const SecretBuffer*>(nullptr)}) {
    const std::string file = encode(v, pass);
    for (size_t n = 0; n < file.size(); ++n) {
      auto r = decode_volume_index(std::string_view(file).substr(0, n), pass, v.volume, v.sha1);
      ASSERT_FALSE(r) << n;
      EXPECT_EQ(r.error().kind, ErrorKind::kCorruption) << n << ": " << r.error().message;
    }
  }
}

TEST(VolumeIndex, GarbageIsRefused) {
  std::mt19937_64 rng(42);
  auto random_bytes = [&](size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    return s;
  };
  for (int i = 0; i < 2000; ++i) {
    std::string junk = random_bytes(rng() % 600);
    EXPECT_FALSE(decode_volume_index(junk, nullptr, "v", "s"));
    EXPECT_FALSE(decode_volume_index(junk, &passphrase(), "v", "s"));
    // Past the checksum, into the parser.
    std::string clear = with_digest("dupfs-seek-1\n" + std::string(1, '\0') + junk);
    EXPECT_EQ(kind_of(decode_volume_index(clear, nullptr, "v", "s")), ErrorKind::kCorruption);
    // Small counts and lengths, so the parser goes deeper.
    std::string words;
    for (int w = 0; w < 40; ++w) words += u64le(rng() % 4);
    clear = with_digest("dupfs-seek-1\n" + std::string(1, '\0') + words);
    EXPECT_EQ(kind_of(decode_volume_index(clear, nullptr, "v", "s")), ErrorKind::kCorruption);
  }
  // Sealed garbage: each costs a key derivation.
  for (int i = 0; i < 2; ++i) {
    std::string sealed = "dupfs-seek-1\n" + std::string(1, '\1') + random_bytes(100);
    sealed[kCountAt] = 0x10;
    EXPECT_EQ(kind_of(decode_volume_index(sealed, &passphrase(), "v", "s")),
              ErrorKind::kCorruption);
  }
}

// A clear index of volume "v", SHA1 "s": no chunks (stored_size 0), no catalog, gzip seek data
// with one point whose window is kDeflateWindow long. Its payload offsets are known.
VolumeIndex bare() {
  VolumeIndex v;
  v.volume = "v";
  v.sha1 = "s";
  SeekData s;
  s.codec = SeekCodec::kGzip;
  s.compression = 1;
  s.points = {{.out = 0, .in_bits = 0, .crc = 0, .window = window_text(kMaxWindowRecord, 'c')}};
  v.seek = std::move(s);
  return v;
}
constexpr size_t kChunkSizeAt = kPayloadAt + 9 + 9 + 16;
constexpr size_t kChunkCountAt = kChunkSizeAt + 8;
constexpr size_t kCatalogCountAt = kChunkCountAt + 8;
constexpr size_t kSeekFlagAt = kCatalogCountAt + 8;
constexpr size_t kCodecAt = kSeekFlagAt + 8;
constexpr size_t kCipherAt = kCodecAt + 8;

std::string patched(std::string body, size_t at, uint64_t value) {
  body.replace(at, 8, u64le(value));
  return with_digest(body);
}

TEST(VolumeIndex, MalformedFieldsAreRefused) {
  const VolumeIndex v = bare();
  const std::string body = body_of(encode(v, nullptr));
  ASSERT_TRUE(decode_volume_index(with_digest(body), nullptr, "v", "s"));
  ASSERT_EQ(body.substr(kChunkSizeAt, 8), u64le(kIndexChunkSize));
  ASSERT_EQ(body.substr(kSeekFlagAt, 8), u64le(1));
  ASSERT_EQ(body.substr(kCodecAt, 8), u64le(1));

  auto expect_refused = [](const std::string& file, std::string_view why) {
    auto r = decode_volume_index(file, nullptr, "v", "s");
    ASSERT_FALSE(r) << why;
    EXPECT_EQ(r.error().kind, ErrorKind::kCorruption) << why;
    EXPECT_NE(r.error().message.find("dupfs-seek.v.idx"), std::string::npos) << r.error().message;
  };
  expect_refused(patched(body, kChunkSizeAt, 0), "chunk size 0");
  expect_refused(patched(body, kChunkSizeAt, uint64_t{1} << 32), "chunk size beyond 32 bits");
  expect_refused(patched(body, kChunkCountAt, 1), "a chunk hash too many");
  for (size_t at : {kChunkCountAt, kCatalogCountAt}) {
    for (uint64_t huge : {UINT64_MAX, uint64_t{1} << 40, uint64_t{1000}}) {
      expect_refused(patched(body, at, huge), "huge count");
    }
  }
  expect_refused(patched(body, kSeekFlagAt, 2), "seek flag 2");
  expect_refused(patched(body, kCodecAt, 3), "unknown codec");
  expect_refused(patched(body, kCodecAt, 2), "a gpg volume's seek data in clear");
  expect_refused(patched(body, kCipherAt, uint64_t{1} << 31), "cipher beyond int");
  expect_refused(with_digest(body + "x"), "a trailing byte");
  expect_refused(with_digest(body.substr(0, body.size() - 1)), "a missing byte");

  // The window is the last field: make it one octet longer than a deflate window.
  const size_t length_at = body.size() - kMaxWindowRecord - 8;
  ASSERT_EQ(body.substr(length_at, 8), u64le(kMaxWindowRecord));
  expect_refused(patched(body + "x", length_at, kMaxWindowRecord + 1), "window too long");

  // One catalog entry with an unknown kind, then with an unknown type.
  VolumeIndex with_entry = bare();
  with_entry.catalog.push_back(entry(EntryKind::kSnapshot, {"a"}, 0, TarType::kFile, 0));
  const std::string entry_body = body_of(encode(with_entry, nullptr));
  ASSERT_TRUE(decode_volume_index(with_digest(entry_body), nullptr, "v", "s"));
  const size_t kind_at = kCatalogCountAt + 8;
  expect_refused(patched(entry_body, kind_at, 6), "unknown entry kind");
  const size_t type_at = kind_at + 8 + 8 + 9 + 8 + 8;  // kind, count, "a", chunk, linkname
  ASSERT_EQ(entry_body.substr(type_at, 8), u64le(0));
  expect_refused(patched(entry_body, type_at, 7), "unknown tar type");
  expect_refused(patched(entry_body, type_at + 8, uint64_t{1} << 32), "mode beyond 32 bits");
}

TEST(VolumeIndex, EncodeRefusesWhatDecodeWould) {
  VolumeIndex v = bare();
  v.chunk_size = 0;
  EXPECT_EQ(encode_volume_index(v, nullptr).error().kind, ErrorKind::kInvalidArgument);
  v = bare();
  v.seek->points[0].window += "x";
  EXPECT_EQ(encode_volume_index(v, nullptr).error().kind, ErrorKind::kInvalidArgument);
  v = bare();
  v.stored_size = 1;
  EXPECT_EQ(encode_volume_index(v, nullptr).error().kind, ErrorKind::kInvalidArgument);
}

TEST(VolumeIndex, OneSaltPerProcess) {
  const std::string a = encode(small(SeekCodec::kGpg), &passphrase());
  const std::string b = encode(sample(SeekCodec::kGpg), &passphrase());
  EXPECT_EQ(a.substr(kSaltAt, 8), b.substr(kSaltAt, 8));
  // Nonces differ.
  EXPECT_NE(a.substr(kCountAt + 1, 12), b.substr(kCountAt + 1, 12));
}

TEST(VolumeIndex, WarmIndexKeyDerivesTheKeyOnce) {
  const VolumeIndex v = small(SeekCodec::kGpg);
  const std::string file = encode(v, &passphrase());
  clear_s2k_cache();
  const uint64_t before = s2k_derivations();
  warm_index_key(std::string_view(file).substr(0, kIndexHeadSize), passphrase());
  EXPECT_EQ(s2k_derivations(), before + 1);
  ASSERT_TRUE(decode_volume_index(file, &passphrase(), v.volume, v.sha1));
  warm_index_key(std::string_view(file).substr(0, kIndexHeadSize), passphrase());
  EXPECT_EQ(s2k_derivations(), before + 1);
}

TEST(VolumeIndex, WarmIndexKeyIgnoresOtherHeads) {
  const std::string clear = encode(small(SeekCodec::kGzip), nullptr);
  const std::string sealed = encode(small(SeekCodec::kGpg), &passphrase());
  const uint64_t before = s2k_derivations();
  warm_index_key(clear.substr(0, kIndexHeadSize), passphrase());
  warm_index_key(sealed.substr(0, 20), passphrase());
  warm_index_key("", passphrase());
  warm_index_key(std::string(kIndexHeadSize, '\1'), passphrase());
  warm_index_key("dupfs-seek-1\n\2" + sealed.substr(14, 50), passphrase());
  EXPECT_EQ(s2k_derivations(), before);
}

}  // namespace
}  // namespace dupfs::chain

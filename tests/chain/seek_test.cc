// Seek points (chain/codec/seek.h): a whole decode records them, and decoding from any point
// gives exactly the rest of what the whole decode gave, for every codec duplicity writes.
#include "chain/codec/seek.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <string>

#include "backends/memory_backend.h"
#include "chain/codec/decode.h"
#include "chain/codec/openpgp_encrypt.h"
#include "tests/support/gpg_home.h"
#include "tests/support/temp_dir.h"

namespace dupfs::chain {
namespace {

constexpr char kPassphrase[] = "seek test passphrase";

// Tar-like data: compressible text with runs of random octets, and a stretch of zeros (one
// deflate block then spans many MiB of output).
std::string sample(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out;
  out.reserve(size);
  while (out.size() < size) {
    switch (rng() % 4) {
      case 0:
      case 1:
        out += "line " + std::to_string(rng() % 100000) + " of some text in a file\n";
        break;
      case 2:
        for (int i = 0; i < 200; ++i) out += static_cast<char>(rng());
        break;
      default:
        if (rng() % 50 == 0) out.append(3 << 20, '\0');
        break;
    }
  }
  out.resize(size);
  return out;
}

struct Recorded {
  std::string decoded;
  std::optional<SeekData> seek;
};

Recorded record(const Backend& backend, const std::string& name) {
  Recorded r;
  Credentials credentials{std::string(kPassphrase), ""};
  SeekRecorder recorder = [&](SeekData d) { r.seek = std::move(d); };
  auto s = decode_object(
      backend, name, credentials,
      [&](std::string_view piece) -> Status {
        r.decoded.append(piece);
        return {};
      },
      &recorder);
  EXPECT_TRUE(s) << s.error().message;
  return r;
}

StoredReader reader_of(const Backend& backend, const std::string& name) {
  return [&backend, name](uint64_t offset, size_t length) {
    return backend.read_range(name, offset, length);
  };
}

// Decodes from every point and compares with the whole decode.
void check_every_point(const Backend& backend, const std::string& name) {
  Recorded r = record(backend, name);
  ASSERT_TRUE(r.seek) << name << " recorded no seek data";
  const SeekData& seek = *r.seek;
  ASSERT_FALSE(seek.points.empty());
  EXPECT_EQ(seek_t_of(seek, seek.points[0].out), 0u);
  EXPECT_EQ(seek.literal.runs.empty() ? seek.d_size : seek.literal.inner_size(), r.decoded.size());
  for (size_t i = 0; i < seek.points.size(); ++i) {
    const uint64_t t = seek_t_of(seek, seek.points[i].out);
    std::string got;
    auto s = decode_from_point(
        seek, i, reader_of(backend, name),
        [&](std::string_view piece) -> Status {
          got.append(piece);
          return {};
        },
        name);
    ASSERT_TRUE(s) << name << " point " << i << ": " << s.error().message;
    ASSERT_EQ(got.size(), r.decoded.size() - t) << name << " point " << i;
    ASSERT_TRUE(got == std::string_view(r.decoded).substr(t)) << name << " point " << i;
    EXPECT_EQ(seek_point_for(seek, t), i);
  }
  // A sink that has enough stops the decoding.
  const size_t last = seek.points.size() - 1;
  size_t seen = 0;
  auto s = decode_from_point(
      seek, last / 2, reader_of(backend, name),
      [&](std::string_view piece) -> Status {
        seen += piece.size();
        return error(ErrorKind::kCancelled, "enough");
      },
      name);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, ErrorKind::kCancelled);
  EXPECT_GT(seen, 0u);
}

// A damaged stored octet after a point never reaches the sink as wrong data.
void check_damage(MemoryBackend& backend, const std::string& name) {
  Recorded r = record(backend, name);
  ASSERT_TRUE(r.seek);
  const SeekData& seek = *r.seek;
  std::string stored = *backend.read_range(name, 0, 1u << 30);
  std::mt19937 rng(7);
  for (int round = 0; round < 8; ++round) {
    size_t i = rng() % seek.points.size();
    // An octet of the data after the point (not the MDC or the gzip trailer, which a
    // decoder started at a point does not check: the chunk hashes of the index do).
    uint64_t from = 0;
    if (seek.codec == SeekCodec::kGpg) {
      uint64_t c =
          (seek.compression ? seek.z_base + seek.points[i].in_bits / 8 : seek.points[i].out) + 32;
      if (c + 22 + 16 >= seek.seipd.inner_size()) continue;
      from = seek.seipd.outer_of(c);
    } else {
      from =
          (seek.codec == SeekCodec::kGzip ? seek.points[i].in_bits / 8 : seek.points[i].out) + 32;
      if (from + 8 >= stored.size()) continue;
    }
    std::string damaged = stored;
    damaged[from] = static_cast<char>(damaged[from] ^ 0x10);
    MemoryBackend bad;
    bad.put(name, damaged);
    const uint64_t t = seek_t_of(seek, seek.points[i].out);
    std::string got;
    auto s = decode_from_point(
        seek, i, reader_of(bad, name),
        [&](std::string_view piece) -> Status {
          got.append(piece);
          return {};
        },
        name);
    ASSERT_TRUE(got == std::string_view(r.decoded).substr(t, got.size()))
        << name << ": wrong bytes passed on, point " << i;
    ASSERT_FALSE(s) << name << ": damage at " << from << " not seen";
    EXPECT_EQ(s.error().kind, ErrorKind::kCorruption) << s.error().message;
  }
}

TEST(Framing, RunsAndMapping) {
  Framing f;
  // gpg's SEIPD: parts of 8192 with one-octet headers, then a short last part.
  uint64_t outer = 16;
  for (int i = 0; i < 100; ++i) {
    f.add_part(outer, 8192);
    outer += 8193;
  }
  f.add_part(outer, 512);
  outer += 513;
  f.add_part(outer + 1, 349);
  EXPECT_EQ(f.runs.size(), 3u);
  EXPECT_EQ(f.inner_size(), 100u * 8192 + 512 + 349);
  for (uint64_t inner = 0; inner < f.inner_size(); inner += 997) {
    uint64_t o = f.outer_of(inner);
    EXPECT_EQ(f.inner_at(o), inner);
  }
  EXPECT_EQ(f.outer_of(8192), 16u + 8193);
  EXPECT_EQ(f.inner_at(16 + 8192), 8192u);  // the header between parts: the next part
  EXPECT_EQ(f.inner_at(0), 0u);
  EXPECT_EQ(f.inner_at(1u << 30), f.inner_size());
}

TEST(Seek, Plain) {
  MemoryBackend b;
  b.put("v.difftar", sample(5 << 20, 1));
  check_every_point(b, "v.difftar");
  check_damage(b, "v.difftar");
}

TEST(Seek, Gzip) {
  MemoryBackend b;
  b.put("v.difftar.gz", gzip_compress(sample(9 << 20, 2), 6));
  check_every_point(b, "v.difftar.gz");
  check_damage(b, "v.difftar.gz");
}

std::string encrypt_in_process(std::string_view data, std::optional<DeflateLevel> level) {
  std::string out;
  SymmetricEncryptOptions o;
  o.compression = level;
  o.s2k_count = 1024;
  SymmetricEncryptor e(
      kPassphrase,
      [&](std::string_view piece) -> Status {
        out.append(piece);
        return {};
      },
      o);
  EXPECT_TRUE(e.write(data));
  EXPECT_TRUE(e.finish());
  return out;
}

TEST(Seek, InProcessGpg) {
  MemoryBackend b;
  b.put("c.difftar.gpg", encrypt_in_process(sample(9 << 20, 3), DeflateLevel{}));
  b.put("u.difftar.gpg", encrypt_in_process(sample(3 << 20, 4), std::nullopt));
  for (const char* name : {"c.difftar.gpg", "u.difftar.gpg"}) {
    check_every_point(b, name);
    check_damage(b, name);
  }
}

TEST(Seek, RealGpg) {
  test::TempDir dir("dupfs-seek-");
  test::GpgHome home;
  std::string plain = sample(7 << 20, 5);
  std::ofstream(dir.file("plain"), std::ios::binary) << plain;
  MemoryBackend b;
  const std::vector<std::pair<std::string, std::vector<std::string>>> kinds = {
      {"default.difftar.gpg", {}},
      {"zlib.difftar.gpg", {"--compress-algo", "zlib"}},
      {"none.difftar.gpg", {"--compress-algo", "none"}},
  };
  for (const auto& [name, extra] : kinds) {
    home.encrypt_symmetric(dir.file("plain"), dir.file(name), kPassphrase, extra);
    std::ifstream f(dir.file(name), std::ios::binary);
    b.put(name, std::string(std::istreambuf_iterator<char>(f), {}));
    check_every_point(b, name);
    check_damage(b, name);
  }
}

}  // namespace
}  // namespace dupfs::chain

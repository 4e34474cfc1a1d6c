// Deflater (ISA-L and zlib) against zlib's inflate: every framing and level, input in odd pieces,
// the gzip header Python writes, errors.
#include "chain/codec/deflate.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <ctime>
#include <random>
#include <string>
#include <vector>

namespace dupfs::chain {
namespace {

using Format = Deflater::Format;

// Text with repeats (long matches), random stretches and runs of zeros, like a tar.
std::string payload(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < size) {
    switch (rng() % 4) {
      case 0:
        if (s.size() > 1000) {
          size_t from = rng() % (s.size() - 500);
          s += s.substr(from, 20 + rng() % 400);
          break;
        }
        [[fallthrough]];
      case 1:
        for (int i = 0; i < 64; ++i) s += static_cast<char>('a' + rng() % 26);
        break;
      case 2:
        for (int i = 0; i < 64; ++i) s += static_cast<char>(rng());
        break;
      default:
        s.append(rng() % 700, '\0');
    }
  }
  s.resize(size);
  return s;
}

// zlib's inflate of one whole stream; fails the test on any error or data after the stream.
std::string zlib_inflate(const std::string& in, Format format) {
  z_stream z{};
  const int window_bits = format == Format::kRaw ? -15 : format == Format::kZlib ? 15 : 31;
  EXPECT_EQ(inflateInit2(&z, window_bits), Z_OK);
  std::string out;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  int rc = Z_OK;
  char buffer[65536];
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buffer);
    z.avail_out = sizeof buffer;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buffer, sizeof buffer - z.avail_out);
    if (rc == Z_BUF_ERROR) break;
  }
  EXPECT_EQ(rc, Z_STREAM_END) << (z.msg != nullptr ? z.msg : "");
  EXPECT_EQ(z.avail_in, 0u) << "data after the end of the stream";
  inflateEnd(&z);
  return out;
}

struct Compressed {
  Status status;
  std::string data;
  size_t pieces = 0;
  size_t max_piece = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
};

// piece 0: random pieces of 1..100000 bytes; SIZE_MAX: one write.
Compressed compress(const std::string& data, Format format, DeflateLevel level, size_t piece,
                    std::optional<uint32_t> mtime = std::nullopt, uint32_t seed = 1) {
  Compressed c;
  Deflater deflater(
      format, level,
      [&c](std::string_view out) -> Status {
        EXPECT_FALSE(out.empty());
        ++c.pieces;
        c.max_piece = std::max(c.max_piece, out.size());
        c.data += out;
        return {};
      },
      mtime);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> sizes(1, 100000);
  std::string_view rest = data;
  c.status = {};
  while (!rest.empty() && c.status) {
    size_t n = std::min(rest.size(), piece == 0 ? sizes(rng) : piece);
    c.status = deflater.write(rest.substr(0, n));
    rest.remove_prefix(n);
  }
  if (c.status) c.status = deflater.finish();
  c.bytes_in = deflater.bytes_in();
  c.bytes_out = deflater.bytes_out();
  return c;
}

std::vector<DeflateLevel> all_levels() {
  std::vector<DeflateLevel> levels;
  for (int l = 0; l <= 3; ++l) levels.push_back({DeflateEngine::kIsal, l});
  for (int l = 0; l <= 9; ++l) levels.push_back({DeflateEngine::kZlib, l});
  return levels;
}

std::string describe(Format format, DeflateLevel level) {
  return fmt::format("{} {} {}",
                     format == Format::kRaw    ? "raw"
                     : format == Format::kZlib ? "zlib"
                                               : "gzip",
                     level.engine == DeflateEngine::kIsal ? "isal" : "zlib", level.level);
}

TEST(Deflater, RoundTripsEveryFormatAndLevelInOddPieces) {
  const std::string big = payload(1'500'000, 1);
  const std::string small = payload(20'000, 2);
  for (Format format : {Format::kRaw, Format::kZlib, Format::kGzip}) {
    for (DeflateLevel level : all_levels()) {
      SCOPED_TRACE(describe(format, level));
      for (size_t piece : {size_t{0}, size_t{7}, size_t{4099}, size_t{65536}, SIZE_MAX}) {
        SCOPED_TRACE(fmt::format("pieces of {}", piece));
        Compressed c = compress(big, format, level, piece, std::nullopt, level.level + 10);
        ASSERT_TRUE(c.status) << c.status.error().message;
        EXPECT_TRUE(zlib_inflate(c.data, format) == big);
        EXPECT_LE(c.max_piece, size_t{256} << 10);
        EXPECT_EQ(c.bytes_in, big.size());
        EXPECT_EQ(c.bytes_out, c.data.size());
        if (level.level != 0) {
          EXPECT_LT(c.data.size(), big.size() * 3 / 4);
        }
      }
      Compressed bytewise = compress(small, format, level, 1);
      ASSERT_TRUE(bytewise.status) << bytewise.status.error().message;
      EXPECT_TRUE(zlib_inflate(bytewise.data, format) == small);
    }
  }
}

TEST(Deflater, EmptyInput) {
  for (Format format : {Format::kRaw, Format::kZlib, Format::kGzip}) {
    for (DeflateLevel level : all_levels()) {
      SCOPED_TRACE(describe(format, level));
      Compressed c = compress("", format, level, 1);
      ASSERT_TRUE(c.status) << c.status.error().message;
      EXPECT_FALSE(c.data.empty());
      EXPECT_EQ(c.pieces, 1u);
      EXPECT_EQ(zlib_inflate(c.data, format), "");
    }
  }
}

TEST(Deflater, LargeOutputComesInFullPieces) {
  // Incompressible: about 3 MB out, in pieces of exactly 256 KiB but the last.
  std::mt19937 rng(3);
  std::string data(3'000'000, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (DeflateLevel level :
       {DeflateLevel{DeflateEngine::kIsal, 1}, DeflateLevel{DeflateEngine::kZlib, 6}}) {
    std::vector<size_t> sizes;
    std::string out;
    Deflater deflater(Format::kGzip, level, [&](std::string_view piece) -> Status {
      sizes.push_back(piece.size());
      out += piece;
      return {};
    });
    ASSERT_TRUE(deflater.write(data));
    ASSERT_TRUE(deflater.finish());
    ASSERT_GE(sizes.size(), 11u);
    for (size_t i = 0; i + 1 < sizes.size(); ++i) EXPECT_EQ(sizes[i], size_t{256} << 10);
    EXPECT_TRUE(zlib_inflate(out, Format::kGzip) == data);
  }
}

TEST(Deflater, GzipHeaderIsPythons) {
  const std::string data = payload(100'000, 4);
  struct Case {
    DeflateLevel level;
    uint8_t xfl;
  };
  for (Case c : {Case{{DeflateEngine::kIsal, 0}, 0}, Case{{DeflateEngine::kIsal, 3}, 0},
                 Case{{DeflateEngine::kZlib, 1}, 4}, Case{{DeflateEngine::kZlib, 6}, 0},
                 Case{{DeflateEngine::kZlib, 9}, 2}}) {
    SCOPED_TRACE(describe(Format::kGzip, c.level));
    Compressed fixed = compress(data, Format::kGzip, c.level, 5000, 0x5f01'0203u);
    ASSERT_TRUE(fixed.status);
    ASSERT_GE(fixed.data.size(), 18u);
    // ID1 ID2 CM FLG MTIME(4, little-endian) XFL OS
    const std::string expected_header =
        std::string("\x1f\x8b\x08\x00\x03\x02\x01\x5f", 8) + static_cast<char>(c.xfl) + '\xff';
    EXPECT_EQ(fixed.data.substr(0, 10), expected_header);
    // The trailer: CRC32 and ISIZE, little-endian.
    const uint32_t crc = static_cast<uint32_t>(
        crc32(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
    std::string trailer;
    for (uint32_t v : {crc, static_cast<uint32_t>(data.size())}) {
      for (int i = 0; i < 4; ++i) trailer += static_cast<char>(v >> (8 * i));
    }
    EXPECT_EQ(fixed.data.substr(fixed.data.size() - 8), trailer);
    EXPECT_TRUE(zlib_inflate(fixed.data, Format::kGzip) == data);

    // MTIME defaults to now.
    const auto before = static_cast<uint32_t>(std::time(nullptr));
    Compressed now = compress(data, Format::kGzip, c.level, SIZE_MAX);
    const auto after = static_cast<uint32_t>(std::time(nullptr));
    ASSERT_TRUE(now.status);
    uint32_t mtime = 0;
    for (int i = 0; i < 4; ++i) mtime |= uint32_t{static_cast<uint8_t>(now.data[4 + i])} << (8 * i);
    EXPECT_GE(mtime, before);
    EXPECT_LE(mtime, after);
  }
}

TEST(Deflater, ZlibHeaderIsValid) {
  for (DeflateLevel level : all_levels()) {
    Compressed c = compress("hello hello hello", Format::kZlib, level, SIZE_MAX);
    ASSERT_TRUE(c.status);
    const auto cmf = static_cast<uint8_t>(c.data[0]);
    const auto flg = static_cast<uint8_t>(c.data[1]);
    EXPECT_EQ(cmf, 0x78);
    EXPECT_EQ((cmf * 256 + flg) % 31, 0);
    EXPECT_EQ(flg & 0x20, 0);  // no preset dictionary
  }
}

TEST(Deflater, InvalidLevels) {
  for (DeflateLevel level :
       {DeflateLevel{DeflateEngine::kIsal, 4}, DeflateLevel{DeflateEngine::kIsal, -1},
        DeflateLevel{DeflateEngine::kZlib, 10}, DeflateLevel{DeflateEngine::kZlib, -1}}) {
    EXPECT_FALSE(valid_deflate_level(level));
    bool called = false;
    Deflater deflater(Format::kRaw, level, [&](std::string_view) -> Status {
      called = true;
      return {};
    });
    Status s = deflater.write("data");
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().kind, ErrorKind::kInvalidArgument);
    s = deflater.finish();
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().kind, ErrorKind::kInvalidArgument);
    EXPECT_FALSE(called);
  }
  for (DeflateLevel level : all_levels()) EXPECT_TRUE(valid_deflate_level(level));
}

TEST(Deflater, OutputErrorIsReturnedAndSticky) {
  std::mt19937 rng(5);
  std::string data(2'000'000, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (DeflateLevel level :
       {DeflateLevel{DeflateEngine::kIsal, 2}, DeflateLevel{DeflateEngine::kZlib, 1}}) {
    int calls = 0;
    Deflater deflater(Format::kRaw, level, [&](std::string_view) -> Status {
      if (++calls == 2) return make_error(ErrorKind::kIoError, "disk full");
      return {};
    });
    Status s = deflater.write(data);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().message, "disk full");
    s = deflater.write("more");
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().message, "disk full");
    s = deflater.finish();
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().message, "disk full");
    EXPECT_EQ(calls, 2);
  }
}

TEST(Deflater, FinishTwiceAndWriteAfterFinish) {
  std::string out;
  Deflater deflater(Format::kGzip, {DeflateEngine::kIsal, 1},
                    [&](std::string_view piece) -> Status {
                      out += piece;
                      return {};
                    });
  ASSERT_TRUE(deflater.write("abc"));
  ASSERT_TRUE(deflater.finish());
  const std::string first = out;
  ASSERT_TRUE(deflater.finish());
  EXPECT_EQ(out, first);
  Status s = deflater.write("x");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(zlib_inflate(out, Format::kGzip), "abc");
}

}  // namespace
}  // namespace dupfs::chain

// Inflater (ISA-L) against zlib's deflate: every format, any piece size, exact stream ends.
#include "chain/codec/inflate.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <string>

namespace dupfs::chain {
namespace {

// window_bits as for deflateInit2: -15 raw, 15 zlib, 31 gzip.
std::string deflate_with(const std::string& data, int window_bits, int level = 6) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, level, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// Text-like data with repeats (long matches) and random stretches.
std::string payload(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < size) {
    if (rng() % 3 == 0 && s.size() > 1000) {
      size_t from = rng() % (s.size() - 500);
      s += s.substr(from, 20 + rng() % 400);
    } else {
      for (int i = 0; i < 64; ++i) s += static_cast<char>('a' + rng() % 26);
    }
  }
  s.resize(size);
  return s;
}

struct Inflated {
  Status status;
  std::string out;
  size_t consumed = 0;
  bool finished = false;
};

Inflated inflate_in_pieces(Inflater::Format format, const std::string& in, size_t piece) {
  Inflater inflater(format);
  Inflated r;
  for (size_t pos = 0; pos < in.size() && !inflater.finished();) {
    std::string_view chunk = std::string_view(in).substr(pos, piece);
    auto n = inflater.feed(chunk, [&](std::string_view out) -> Status {
      EXPECT_LE(out.size(), size_t{256} << 10);
      r.out += out;
      return {};
    });
    if (!n) {
      r.status = std::unexpected(n.error());
      return r;
    }
    pos += *n;
    r.consumed = pos;
    if (*n < chunk.size()) break;
  }
  r.finished = inflater.finished();
  return r;
}

TEST(Inflater, EveryFormatAnyPieceSize) {
  const std::string data = payload(3 << 20, 1);
  for (auto [format, bits] :
       {std::pair{Inflater::Format::kRaw, -15}, std::pair{Inflater::Format::kZlib, 15},
        std::pair{Inflater::Format::kGzip, 31}}) {
    const std::string packed = deflate_with(data, bits);
    for (size_t piece : {size_t{1} << 20, size_t{4099}, size_t{7}}) {
      if (piece == 7 && bits != 31) continue;  // one tiny-piece run is enough
      Inflated r = inflate_in_pieces(format, packed, piece);
      ASSERT_TRUE(r.status) << bits << "/" << piece << ": " << r.status.error().message;
      EXPECT_TRUE(r.finished);
      EXPECT_EQ(r.consumed, packed.size());
      EXPECT_TRUE(r.out == data) << bits << "/" << piece;
    }
  }
}

TEST(Inflater, EmptyAndStoredStreams) {
  for (int level : {0, 1, 9}) {
    for (const std::string& data : {std::string(), std::string("x"), payload(100000, 2)}) {
      Inflated r = inflate_in_pieces(Inflater::Format::kGzip, deflate_with(data, 31, level), 1000);
      ASSERT_TRUE(r.status) << r.status.error().message;
      EXPECT_TRUE(r.finished);
      EXPECT_EQ(r.out, data);
    }
  }
}

// The stream's end is exact: what follows it is not consumed, even though igzip reads ahead.
TEST(Inflater, StopsAtTheStreamsEnd) {
  const std::string data = payload(5000, 3);
  for (auto [format, bits] :
       {std::pair{Inflater::Format::kRaw, -15}, std::pair{Inflater::Format::kZlib, 15},
        std::pair{Inflater::Format::kGzip, 31}}) {
    const std::string packed = deflate_with(data, bits);
    Inflater inflater(format);
    std::string out;
    auto n = inflater.feed(packed + "NEXT MEMBER", [&](std::string_view o) -> Status {
      out += o;
      return {};
    });
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_TRUE(inflater.finished());
    EXPECT_EQ(*n, packed.size()) << bits;
    EXPECT_EQ(out, data);
    // After reset, the next stream decodes from where the first ended.
    inflater.reset();
    out.clear();
    auto m = inflater.feed(packed, [&](std::string_view o) -> Status {
      out += o;
      return {};
    });
    ASSERT_TRUE(m) << m.error().message;
    EXPECT_EQ(out, data);
  }
}

TEST(Inflater, DamageIsCorruptionTruncationIsUnfinished) {
  const std::string data = payload(200000, 4);
  std::string packed = deflate_with(data, 31);
  // A wrong CRC in the trailer.
  std::string bad_crc = packed;
  bad_crc[bad_crc.size() - 6] ^= 0x01;
  Inflated r = inflate_in_pieces(Inflater::Format::kGzip, bad_crc, 1 << 20);
  ASSERT_FALSE(r.status);
  EXPECT_EQ(r.status.error().kind, ErrorKind::kCorruption);
  // Garbage instead of a header.
  r = inflate_in_pieces(Inflater::Format::kGzip, "this is not gzip data at all", 1 << 20);
  ASSERT_FALSE(r.status);
  EXPECT_EQ(r.status.error().kind, ErrorKind::kCorruption);
  // Truncated: no error, but not finished, and only a prefix of the data came out.
  r = inflate_in_pieces(Inflater::Format::kGzip, packed.substr(0, packed.size() / 2), 1000);
  ASSERT_TRUE(r.status);
  EXPECT_FALSE(r.finished);
  EXPECT_EQ(data.compare(0, r.out.size(), r.out), 0);
}

TEST(Inflater, OutputErrorsComeBackUnchanged) {
  const std::string packed = deflate_with(payload(1 << 20, 5), -15);
  Inflater inflater(Inflater::Format::kRaw);
  auto n = inflater.feed(
      packed, [](std::string_view) -> Status { return error(ErrorKind::kCancelled, "enough"); });
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().kind, ErrorKind::kCancelled);
  EXPECT_EQ(n.error().message, "enough");
}

}  // namespace
}  // namespace dupfs::chain

// ReadWindows: sequential 1 MiB reads through 8 MiB windows fetch each byte once; two readers of
// one object keep their own windows; the end of the object, errors and forget().
#include "backends/read_windows.h"

#include <gtest/gtest.h>

#include <vector>

namespace dupfs {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

struct Object {
  std::string data;
  std::vector<std::pair<uint64_t, size_t>> fetches;
  ReadWindows::Fetch fetch() {
    return [this](uint64_t offset, size_t length) -> Result<std::string> {
      fetches.emplace_back(offset, length);
      if (offset >= data.size()) return std::string();
      return data.substr(offset, length);
    };
  }
};

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 977) & 0xff);
  return s;
}

TEST(ReadWindows, SequentialReadsFetchEachByteOnce) {
  Object o{pattern(20 * kMiB + 12345), {}};
  ReadWindows w(8 * kMiB, 4);
  std::string all;
  for (uint64_t off = 0;; off += kMiB) {
    auto piece = w.read("v", off, kMiB, o.fetch());
    ASSERT_TRUE(piece.has_value());
    all += *piece;
    if (piece->size() < kMiB) break;
  }
  EXPECT_TRUE(all == o.data);
  // 0, 8 and 16 MiB: three fetches, none overlapping.
  ASSERT_EQ(o.fetches.size(), 3u);
  EXPECT_EQ(o.fetches[0], std::make_pair(uint64_t{0}, 8 * kMiB));
  EXPECT_EQ(o.fetches[1], std::make_pair(uint64_t{8 * kMiB}, 8 * kMiB));
  EXPECT_EQ(o.fetches[2], std::make_pair(uint64_t{16 * kMiB}, 8 * kMiB));
  // Past the end: the window at the end answers without a fetch.
  auto past = w.read("v", o.data.size(), kMiB, o.fetch());
  ASSERT_TRUE(past.has_value());
  EXPECT_TRUE(past->empty());
  EXPECT_EQ(o.fetches.size(), 3u);
}

TEST(ReadWindows, TwoReadersKeepTheirOwnWindowsAndAReadAcrossWindowsIsWhole) {
  Object o{pattern(30 * kMiB), {}};
  ReadWindows w(8 * kMiB, 4);
  auto a = w.read("v", 0, kMiB, o.fetch());
  auto b = w.read("v", 20 * kMiB, kMiB, o.fetch());
  auto a2 = w.read("v", kMiB, kMiB, o.fetch());
  auto b2 = w.read("v", 21 * kMiB, kMiB, o.fetch());
  ASSERT_TRUE(a && b && a2 && b2);
  EXPECT_TRUE(*a2 == o.data.substr(kMiB, kMiB));
  EXPECT_TRUE(*b2 == o.data.substr(21 * kMiB, kMiB));
  EXPECT_EQ(o.fetches.size(), 2u);
  // 7.5 MiB on, 1 MiB: half from the window, half fetched.
  auto across = w.read("v", 7 * kMiB + kMiB / 2, kMiB, o.fetch());
  ASSERT_TRUE(across.has_value());
  EXPECT_TRUE(*across == o.data.substr(7 * kMiB + kMiB / 2, kMiB));
  EXPECT_EQ(o.fetches.back().first, uint64_t{8 * kMiB});
}

TEST(ReadWindows, ErrorsPassAndForgetDropsTheWindows) {
  Object o{pattern(10 * kMiB), {}};
  ReadWindows w(8 * kMiB, 4);
  ASSERT_TRUE(w.read("v", 0, kMiB, o.fetch()).has_value());
  w.forget("v");
  o.data = pattern(3 * kMiB) + "changed";  // a new object under the name
  auto again = w.read("v", kMiB, kMiB, o.fetch());
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(*again == o.data.substr(kMiB, kMiB));
  auto failing = [](uint64_t, size_t) -> Result<std::string> {
    return error(ErrorKind::kTimeout, "no answer");
  };
  auto r = w.read("other", 0, kMiB, failing);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kTimeout);
}

}  // namespace
}  // namespace dupfs

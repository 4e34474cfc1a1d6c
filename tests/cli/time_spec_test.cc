#include "cli/time_spec.h"

#include <gtest/gtest.h>

namespace dupfs::cli {
namespace {

constexpr int64_t kNow = 1'700'000'000;

TEST(TimeSpec, NowEpochAndIntervals) {
  EXPECT_EQ(parse_time_spec("now", kNow).value(), kNow);
  EXPECT_EQ(parse_time_spec("1600000000", kNow).value(), 1'600'000'000);
  EXPECT_EQ(parse_time_spec("7D", kNow).value(), kNow - 7 * 86400);
  EXPECT_EQ(parse_time_spec("1h30m", kNow).value(), kNow - 5400);
  EXPECT_EQ(parse_time_spec("2W3D", kNow).value(), kNow - 17 * 86400);
}

TEST(TimeSpec, BadStringsAreInvalidArgument) {
  auto t = parse_time_spec("soon", kNow);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(t.error().message.find("bad time string"), std::string::npos);
}

}  // namespace
}  // namespace dupfs::cli

// cli/time_spec: the command line's time strings, chain::gen_str_to_time with `now` and a "bad time
// string" error (dup_time itself, and its oracle test: tests/chain/dup_time_test.cc).
#include "cli/time_spec.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <ctime>
#include <string>

#include "tests/support/time_zone.h"

namespace dupfs::cli {
namespace {

constexpr int64_t kNow = 1'700'000'000;

using test::ScopedTimeZone;

TEST(TimeSpec, NowEpochAndIntervals) {
  EXPECT_EQ(parse_time_spec("now", kNow).value(), kNow);
  EXPECT_EQ(parse_time_spec("1600000000", kNow).value(), 1'600'000'000);
  EXPECT_EQ(parse_time_spec("0", kNow).value(), 0);
  EXPECT_EQ(parse_time_spec("7D", kNow).value(), kNow - 7 * 86400);
  EXPECT_EQ(parse_time_spec("1h30m", kNow).value(), kNow - 5400);
  EXPECT_EQ(parse_time_spec("2W3D", kNow).value(), kNow - 17 * 86400);
  EXPECT_EQ(parse_time_spec("1M", kNow).value(), kNow - 30 * 86400);  // a month is 30 days
  EXPECT_EQ(parse_time_spec("1Y", kNow).value(), kNow - 365 * 86400);
  EXPECT_EQ(parse_time_spec("3D64s", kNow).value(), kNow - 3 * 86400 - 64);
  EXPECT_EQ(parse_time_spec("0D", kNow).value(), kNow);
}

TEST(TimeSpec, IntervalUnitsAreCaseSensitiveAndComplete) {
  for (const char* bad : {"7d", "1H", "2w", "D", "7D3", "7Dx", "1.5h", "-1D", "7 D"}) {
    EXPECT_FALSE(parse_time_spec(bad, kNow)) << bad;
  }
}

TEST(TimeSpec, UtcDatetimes) {
  ScopedTimeZone tz("UTC");
  EXPECT_EQ(parse_time_spec("20261126T063843Z", kNow).value(), 1'795'675'123);
  EXPECT_EQ(parse_time_spec("2026-11-26T06:38:43Z", kNow).value(), 1'795'675'123);
  EXPECT_EQ(parse_time_spec("2002-08-17T16:17:01-07:00", kNow).value(), 1'029'626'221);
  EXPECT_EQ(parse_time_spec("2002-08-17T16:17:01+02:00", kNow).value(), 1'029'593'821);
  // No zone: local standard time (UTC here).
  EXPECT_EQ(parse_time_spec("2002-08-17T16:17:01", kNow).value(), 1'029'601'021);
}

TEST(TimeSpec, DatesAreLocalStandardMidnight) {
  {
    ScopedTimeZone tz("UTC");
    EXPECT_EQ(parse_time_spec("2015/9/10", kNow).value(), 1'441'843'200);
    EXPECT_EQ(parse_time_spec("2015-09-10", kNow).value(), 1'441'843'200);
    EXPECT_EQ(parse_time_spec("9/10/2015", kNow).value(), 1'441'843'200);
    EXPECT_EQ(parse_time_spec("20150910Z", kNow).value(), 1'441'843'200);
  }
  {
    // September is summer time in Los Angeles (PDT, -07:00), but duplicity takes the zone's
    // standard offset (PST, -08:00): midnight is 08:00 UTC.
    ScopedTimeZone tz("America/Los_Angeles");
    EXPECT_EQ(parse_time_spec("2015-09-10", kNow).value(), 1'441'872'000);
    EXPECT_EQ(parse_time_spec("2015/9/10", kNow).value(), 1'441'872'000);
    EXPECT_EQ(parse_time_spec("2002-08-17T16:17:01", kNow).value(), 1'029'629'821);
    // A zone in the string wins over the local one.
    EXPECT_EQ(parse_time_spec("2002-08-17T16:17:01-07:00", kNow).value(), 1'029'626'221);
  }
}

TEST(TimeSpec, BadStringsAreInvalidArgument) {
  for (const char* bad : {"soon", "", "2015-13-01", "2015-09-10T12:00", "2015/9", "yesterday",
                          "2002-08-17T16:17:01+7", "1899-01-01"}) {
    auto t = parse_time_spec(bad, kNow);
    ASSERT_FALSE(t) << bad;
    EXPECT_EQ(t.error().kind, ErrorKind::kInvalidArgument);
    EXPECT_NE(t.error().message.find("bad time string"), std::string::npos);
  }
}

}  // namespace
}  // namespace dupfs::cli

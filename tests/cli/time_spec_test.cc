#include "cli/time_spec.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <ctime>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/process.h"
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

TEST(TimeSpec, PrettyTimeIsAsctimeOfLocalTime) {
  {
    ScopedTimeZone tz("UTC");
    EXPECT_EQ(pretty_time(1'795'675'123), "Thu Nov 26 06:38:43 2026");
    EXPECT_EQ(pretty_time(1'793'491'200), "Sun Nov  1 00:00:00 2026");
  }
  {
    ScopedTimeZone tz("Europe/Berlin");
    EXPECT_EQ(pretty_time(1'795'675'123), "Thu Nov 26 07:38:43 2026");
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

// The oracle: duplicity's own dup_time.genstrtotime, run by the Python that duplicity uses, for
// many strings in zones with and without daylight saving time and with odd offsets.
TEST(TimeSpec, SameSecondsAsDuplicity) {
  const std::vector<std::string> specs = {
      "now",
      "1600000000",
      "7D",
      "1M",
      "2W3D",
      "1h30m",
      "1Y2M3W4D5h6m7s",
      "2015/9/10",
      "2015-09-10",
      "2015-9-1",
      "9/10/2015",
      "12-31-1999",
      "20150910Z",
      "2015-02-31",
      "2002-08-17T16:17:01-07:00",
      "2002-08-17T16:17:01+05:45",
      "2002-08-17T16:17:01-03:30",
      "2002-08-17T16:17:01Z",
      "2002-08-17T16:17:01",
      "2015-07-01T12:00:00",
      "20261126T063843Z",
      "20261126T063843",
      "1970-01-01",
      "soon",
      "2015-09-10T12:00",
      "7d",
  };
  const std::vector<std::string> zones = {
      "UTC",          "America/Los_Angeles", "Europe/Berlin",
      "Asia/Kolkata", "America/St_Johns",    "Australia/Sydney"};
  std::string script =
      "import gettext, sys\n"
      "gettext.install('duplicity')\n"
      "from duplicity import dup_time\n"
      "for s in sys.argv[1:]:\n"
      "    try:\n"
      "        print(dup_time.genstrtotime(s, " +
      std::to_string(kNow) +
      "))\n"
      "    except Exception:\n"
      "        print('error')\n";
  for (const auto& zone : zones) {
    std::vector<std::string> argv{"/usr/bin/python3", "-c", script};
    argv.insert(argv.end(), specs.begin(), specs.end());
    auto r = test::run(argv, {{"TZ", zone}}, std::chrono::seconds(60));
    ASSERT_TRUE(r.ok()) << test::describe(argv, r);
    std::istringstream out(r.out);
    ScopedTimeZone tz(zone.c_str());
    for (const auto& spec : specs) {
      std::string expected;
      ASSERT_TRUE(std::getline(out, expected)) << "no answer from duplicity for " << spec;
      auto t = parse_time_spec(spec, kNow);
      std::string actual = t ? std::to_string(*t) : "error";
      EXPECT_EQ(actual, expected) << "'" << spec << "' in " << zone;
    }
  }
}

}  // namespace
}  // namespace dupfs::cli

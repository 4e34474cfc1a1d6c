// dup_time (docs/format.md §1.2). The expected values are duplicity 0.8.22's own answers
// (dup_time.genstrtotime, run with the TZ shown), above all for the strings where dupfs's two
// earlier parsers (file names, command line) disagreed; DupTimeOracle re-checks thousands of
// strings against it live.
#include "chain/format/dup_time.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/duplicity.h"
#include "tests/support/process.h"
#include "tests/support/time_zone.h"

namespace dupfs::chain {
namespace {

constexpr int64_t kNow = 1'700'000'000;

using test::ScopedTimeZone;

std::string show(std::optional<int64_t> t) { return t ? std::to_string(*t) : "error"; }

// gen_str_to_time with `now`, as the command line uses it.
std::string gen(std::string_view s, std::string_view sep = ":") {
  return show(gen_str_to_time(s, kNow, sep));
}

TEST(DupTime, FormatNameTime) {
  EXPECT_EQ(format_name_time(1795675123), "20261126T063843Z");
  EXPECT_EQ(format_name_time(0), "19700101T000000Z");
  for (int64_t t : {int64_t{1}, int64_t{1029626221}, int64_t{1795675123}, int64_t{4102444799}}) {
    EXPECT_EQ(string_to_time(format_name_time(t)), t);
  }
}

// Numbers inside time strings are read as Python's int() reads them. The file-name parser took
// "\x1c".."\x1f" for whitespace (str.isspace() does, int() does not).
TEST(DupTime, FieldsAreReadAsPythonInt) {
  ScopedTimeZone tz("UTC");
  EXPECT_EQ(gen("2002-08-17T16:17:01Z"), "1029601021");
  EXPECT_EQ(gen("2002-08-17T16:17:0 Z"), "1029601020");
  EXPECT_EQ(gen("2002-08-17T16:17:0\tZ"), "1029601020");
  EXPECT_EQ(gen("2002-08-17T16:17:0\vZ"), "1029601020");
  EXPECT_EQ(gen("2002-08-17T16:17:0\nZ"), "1029601020");
  EXPECT_EQ(gen("2002-08-17T16:17:0\x1cZ"), "error");
  EXPECT_EQ(gen("2002-08-17T16:17:0\x1fZ"), "error");
  EXPECT_EQ(gen("20261126T0638 3Z"), "1795675083");
  EXPECT_EQ(gen("2026112 T063843Z"), "1793601523");
  // Single underscores between digits, never two.
  EXPECT_EQ(gen("2002-8-17T16:1_7:01Z"), "1029601021");
  EXPECT_EQ(gen("2002-8-17T16:1__7:1Z"), "error");
  EXPECT_EQ(gen("1__2"), "error");
  EXPECT_EQ(gen("1_2"), "error");
  // Fields are cut at fixed places: what shifts them breaks the string.
  EXPECT_EQ(gen("2_002-08-17T16:17:01Z"), "error");
  EXPECT_EQ(gen("2002-08-17T16:17:0Z"), "error");
  EXPECT_EQ(gen(" 2002-08-17T16:17:01Z"), "error");
  EXPECT_EQ(gen("2002-08-17T16:17:01Z "), "error");
  // The 16th character of the current form is never looked at.
  EXPECT_EQ(gen("20261126T063843!"), "1795675123");
  // A zone's minutes are a signed int too; its sign applies to the hours only.
  EXPECT_EQ(gen("2002-08-17T16:17:01+05:+0"), "1029583021");
  EXPECT_EQ(gen("2002-08-17T16:17:01+05: 0"), "1029583021");
  EXPECT_EQ(gen("2002-08-17T16:17:01-03:30"), "1029610021");  // read as -02:30
}

// Epoch seconds and dates are matched by "^...$", and "$" also matches before a final newline;
// whitespace around a number is not allowed there.
TEST(DupTime, PatternsEndBeforeAFinalNewline) {
  ScopedTimeZone tz("UTC");
  EXPECT_EQ(gen("1600000000\n"), "1600000000");
  EXPECT_EQ(gen("2015/9/10\n"), "1441843200");
  EXPECT_EQ(gen("20150910Z\n"), "1441843200");
  EXPECT_EQ(gen("7D\n"), "error");
  EXPECT_EQ(gen(" 1600000000"), "error");
  EXPECT_EQ(gen("1600000000 "), "error");
  EXPECT_EQ(gen("+1600000000"), "error");
  EXPECT_EQ(gen("0"), "0");  // epoch seconds are returned as they are, 0 too
  EXPECT_EQ(gen("00"), "0");
  // A datetime that comes out as 0 is no match.
  EXPECT_EQ(gen("19700101T000000Z"), "error");
  EXPECT_EQ(gen("1970-01-01T00:00:00Z"), "error");
}

// The old form is mktime of the fields as local standard time minus Python's time.timezone:
// not UTC where the zone's standard offset changed (Moscow was +04:00 all year in 2012) or where
// tzdata's "standard" time is the summer one (Dublin). The file-name parser took timegm.
TEST(DupTime, OldFormIsMktimeMinusTimezone) {
  {
    ScopedTimeZone tz("Europe/Moscow");
    EXPECT_EQ(gen("2012-06-01T12:00:00Z"), "1338548400");
    EXPECT_EQ(gen("20120601T120000Z"), "1338552000");  // the current form is UTC
    EXPECT_EQ(gen("2012-06-01"), "1338494400");
  }
  {
    ScopedTimeZone tz("Europe/Dublin");
    EXPECT_EQ(gen("2002-08-17T16:17:01Z"), "1029597421");
    EXPECT_EQ(gen("2002-08-17T16:17:01"), "1029597421");
    EXPECT_EQ(gen("2015-09-10"), "1441839600");
  }
  {
    ScopedTimeZone tz("America/St_Johns");  // standard time -03:30
    EXPECT_EQ(gen("2012-06-01T12:00:00"), "1338564600");
    EXPECT_EQ(gen("2015/9/10"), "1441855800");
  }
}

TEST(DupTime, TimeSeparator) {
  ScopedTimeZone tz("UTC");
  EXPECT_EQ(gen("2002-08-17T16_17_01Z", "_"), "1029601021");
  EXPECT_EQ(gen("2002-08-17T16_17_01+02_00", "_"), "1029593821");
  EXPECT_EQ(gen("2002-08-17T16_17_01", "_"), "1029601021");
  EXPECT_EQ(gen("20261126T063843Z", "_"), "1795675123");
  // duplicity writes a date's midnight with ':' whatever the separator: dates never parse.
  EXPECT_EQ(gen("2015-09-10", "_"), "error");
  EXPECT_EQ(gen("2002-08-17T16_17_01Z"), "error");
  EXPECT_EQ(gen("2002-08-17T16:17:01Z", ""), "error");
}

TEST(DupTime, IntervalsAndNowOnlyWithNow) {
  EXPECT_EQ(gen("now"), std::to_string(kNow));
  EXPECT_EQ(gen("NOW"), "error");
  EXPECT_EQ(gen("0D"), std::to_string(kNow));
  EXPECT_EQ(gen("1Y2M3W4D5h6m7s"), "1661101633");
  EXPECT_EQ(gen("7D3"), "error");
  EXPECT_EQ(gen("3d"), "error");
  EXPECT_EQ(gen("99999999999999999999Y"), "error");  // beyond int64_t
  EXPECT_FALSE(gen_str_to_time("now", std::nullopt));
  EXPECT_FALSE(gen_str_to_time("7D", std::nullopt));
  EXPECT_EQ(gen_str_to_time("1600000000", std::nullopt), 1600000000);
}

TEST(DupTime, NonAsciiIsRefused) {
  ScopedTimeZone tz("UTC");
  EXPECT_EQ(gen("20261126T063843\xc3\xa9"), "error");  // duplicity: 16 characters, a time
  EXPECT_EQ(gen("2002-08-17T16:17:0\xc2\xa0Z"), "error");
  EXPECT_FALSE(string_to_time("20261126T06384\xc3\xa9"));
}

TEST(DupTime, PrettyTimeIsAsctimeOfLocalTime) {
  {
    ScopedTimeZone tz("UTC");
    EXPECT_EQ(pretty_time(1'795'675'123), "Thu Nov 26 06:38:43 2026");
    EXPECT_EQ(pretty_time(1'793'491'200), "Sun Nov  1 00:00:00 2026");
    EXPECT_EQ(pretty_time(-1), "Wed Dec 31 23:59:59 1969");
    EXPECT_EQ(pretty_time(int64_t{1} << 60), "1152921504606846976");
  }
  {
    ScopedTimeZone tz("Europe/Berlin");
    EXPECT_EQ(pretty_time(1'795'675'123), "Thu Nov 26 07:38:43 2026");
  }
}

// kStrftime is what verify and the backup statistics printed with strftime: the same text for
// every time localtime represents, glibc's leftovers for the others.
TEST(DupTime, PrettyTimeStrftimeVariant) {
  ScopedTimeZone tz("America/Los_Angeles");
  auto by_strftime = [](int64_t t) {
    time_t tt = static_cast<time_t>(t);
    struct tm tm = {};
    ::localtime_r(&tt, &tm);
    char buf[64];
    ::strftime(buf, sizeof buf, "%a %b %e %H:%M:%S %Y", &tm);
    return std::string(buf);
  };
  for (int64_t t : {int64_t{0}, int64_t{-1}, int64_t{951782400}, int64_t{1'795'675'123},
                    int64_t{-62'167'219'200}, int64_t{253'402'300'800}, int64_t{1'000'000'000'000},
                    int64_t{1} << 60, -(int64_t{1} << 60)}) {
    EXPECT_EQ(pretty_time(t, Unrepresentable::kStrftime), by_strftime(t)) << t;
  }
}

// ---- Differential test against duplicity 0.8.22's dup_time. ----

// argv: mode ("gen": genstrtotime(s, now); "name": file_naming's str2time, i.e. genstrtotime of
// the upper-cased text, here without intervals), separator, then the strings. One line each.
constexpr const char* kOracle = R"PY(
import sys, gettext
gettext.install('duplicity')
from duplicity import config, dup_time
mode, config.time_separator = sys.argv[1], sys.argv[2]
if mode == 'name':
    def no_interval(s):
        raise dup_time.TimeException()
    dup_time.intstringtoseconds = no_interval
out = []
for s in sys.argv[3:]:
    try:
        out.append(str(dup_time.genstrtotime(s.upper() if mode == 'name' else s, 1700000000)))
    except dup_time.TimeException:
        out.append('error')
    except Exception as e:
        out.append('EXC ' + type(e).__name__)
print('\n'.join(out))
)PY";

// Valid strings of every kind, and mutations of them (a character replaced, inserted or
// dropped) from an alphabet of what the parsers look at.
std::vector<std::string> oracle_strings() {
  std::vector<std::string> seeds = {"now",
                                    "1600000000",
                                    "0",
                                    "7D",
                                    "1M",
                                    "2W3D",
                                    "1h30m",
                                    "3D64s",
                                    "0D",
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
                                    "20261126t063843z",
                                    "20261126T063843",
                                    "1970-01-01",
                                    "2002-08-17T16_17_01-07_00",
                                    "2002-08-17T16_17_01Z",
                                    "2012-06-01T12:00:00Z",
                                    "2099-12-31T23:59:61Z",
                                    "1901-1-1",
                                    "1Y2M3W4D5h6m7s",
                                    "soon",
                                    "2015-09-10T12:00",
                                    "7d"};
  const std::string alphabet = "0123456789-/:_TZtz+ \t\n\v\x1c.DWMYdhms";
  std::mt19937 rng(20020817);
  auto below = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  std::vector<std::string> out = seeds;
  for (int i = 0; i < 3000; ++i) {
    std::string s = seeds[below(seeds.size())];
    for (size_t k = 1 + below(2); k > 0; --k) {
      char c = alphabet[below(alphabet.size())];
      size_t at = below(s.size() + 1);
      switch (below(3)) {
        case 0:
          if (at < s.size()) s[at] = c;
          break;
        case 1:
          s.insert(at, 1, c);
          break;
        default:
          if (at < s.size()) s.erase(at, 1);
          break;
      }
    }
    out.push_back(s);
  }
  return out;
}

TEST(DupTimeOracle, SameSecondsAsDuplicity) {
  if (access(test::kDuplicityPython, X_OK) != 0)
    GTEST_SKIP() << test::kDuplicityPython << " not available";
  const std::vector<std::string> strings = oracle_strings();
  struct Mode {
    const char* name;
    const char* sep;
  };
  for (const char* zone : {"UTC", "America/Los_Angeles", "Europe/Dublin", "Europe/Moscow",
                           "America/St_Johns", "Australia/Sydney", "Asia/Kolkata"}) {
    for (Mode mode : {Mode{"gen", ":"}, Mode{"name", ":"}, Mode{"name", "_"}}) {
      std::vector<std::string> argv = {test::kDuplicityPython, "-c", kOracle, mode.name, mode.sep};
      argv.insert(argv.end(), strings.begin(), strings.end());
      auto r = test::run(argv, {{"TZ", zone}}, std::chrono::seconds(120));
      ASSERT_TRUE(r.ok()) << test::describe(argv, r);
      std::istringstream lines(r.out);
      ScopedTimeZone tz(zone);
      size_t compared = 0, matched = 0;
      for (const auto& s : strings) {
        std::string want;
        ASSERT_TRUE(std::getline(lines, want)) << "no answer for '" << s << "'";
        if (test::has_huge_number(want)) continue;
        ASSERT_FALSE(want.starts_with("EXC")) << want << " for '" << s << "'";
        std::optional<int64_t> got;
        if (std::string_view(mode.name) == "gen") {
          got = gen_str_to_time(s, kNow, mode.sep);
        } else {
          std::string upper = s;
          for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
          got = gen_str_to_time(upper, std::nullopt, mode.sep);
        }
        EXPECT_EQ(show(got), want)
            << "'" << s << "' in " << zone << ", " << mode.name << " '" << mode.sep << "'";
        ++compared;
        matched += got.has_value();
      }
      // The mutations must keep enough strings valid to test acceptance, not only rejection.
      EXPECT_GT(matched, compared / 25) << zone << " " << mode.name;
    }
  }
}

}  // namespace
}  // namespace dupfs::chain

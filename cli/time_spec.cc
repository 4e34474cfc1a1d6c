#include "cli/time_spec.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <limits>
#include <optional>
#include <regex>
#include <string_view>
#include <vector>

namespace dupfs::cli {
namespace {

// Python's int(str) for the strings duplicity feeds it: surrounding whitespace, an optional
// sign, decimal digits with single underscores between them.
std::optional<int64_t> py_int(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  bool negative = false;
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s.front())) ||
      !std::isdigit(static_cast<unsigned char>(s.back()))) {
    return std::nullopt;
  }
  int64_t value = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '_') {
      if (s[i - 1] == '_') return std::nullopt;
      continue;
    }
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    if (value > (std::numeric_limits<int64_t>::max() - 9) / 10) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return negative ? -value : value;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    size_t at = s.find(sep, start);
    if (at == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, at - start));
    start = at + 1;
  }
}

// Python's time.timezone on glibc: seconds west of UTC of the zone's standard time, from the
// offsets of early January and early July of the current year (the larger one: the other is
// daylight saving time, in either hemisphere).
int64_t standard_offset_west() {
  constexpr time_t kYear = (365 * 24 + 6) * 3600;
  time_t t = (std::time(nullptr) / kYear) * kYear;
  std::tm jan{}, jul{};
  ::localtime_r(&t, &jan);
  t += kYear / 2;
  ::localtime_r(&t, &jul);
  return std::max<int64_t>(-jan.tm_gmtoff, -jul.tm_gmtoff);
}

// dup_time.gettzd(0): "Z" on UTC, else "+hh:mm" / "-hh:mm" of local standard time (hours and
// minutes from Python's floor division, as duplicity computes them).
std::string standard_tzd() {
  int64_t offset = -standard_offset_west();
  // Python's old_div on ints is floor division.
  int64_t minutes_east = offset >= 0 ? offset / 60 : -((-offset + 59) / 60);
  if (minutes_east == 0) return "Z";
  int64_t q = minutes_east >= 0 ? minutes_east / 60 : -((-minutes_east + 59) / 60);
  int64_t r = minutes_east - q * 60;
  return fmt::format("{}{:02}:{:02}", minutes_east > 0 ? '+' : '-', q < 0 ? -q : q, r < 0 ? -r : r);
}

// dup_time.tzdtoseconds: how far UTC is ahead of the zone ("Z", or "+hh:mm" with the sign
// applied to the hours only, as duplicity does).
std::optional<int64_t> tzd_to_seconds(std::string_view tzd) {
  if (tzd == "Z") return 0;
  if (tzd.size() != 6 || (tzd[0] != '-' && tzd[0] != '+') || tzd[3] != ':') return std::nullopt;
  auto hours = py_int(tzd.substr(0, 3));
  auto minutes = py_int(tzd.substr(4));
  if (!hours || !minutes) return std::nullopt;
  return -60 * (60 * *hours + *minutes);
}

// dup_time.stringtotime: "20261126T063843Z" (exactly 16 characters, UTC) or the w3 form
// "2002-08-17T16:17:01-07:00" / "...Z". nullopt when it does not parse.
std::optional<int64_t> string_to_time(std::string_view ts) {
  auto halves = split(ts.substr(0, 19), 'T');
  if (halves.size() != 2) return std::nullopt;
  std::string_view date = halves[0], daytime = halves[1];
  std::optional<int64_t> f[6];
  const bool compact = ts.size() == 16;
  auto slice = [](std::string_view s, size_t from, size_t to) {
    return from >= s.size() ? std::string_view{} : s.substr(from, to - from);
  };
  if (compact) {
    f[0] = py_int(slice(date, 0, 4));
    f[1] = py_int(slice(date, 4, 6));
    f[2] = py_int(slice(date, 6, 8));
    f[3] = py_int(slice(daytime, 0, 2));
    f[4] = py_int(slice(daytime, 2, 4));
    f[5] = py_int(slice(daytime, 4, 6));
  } else {
    auto d = split(date, '-');
    auto t = split(daytime, ':');
    if (d.size() != 3 || t.size() != 3) return std::nullopt;
    for (int i = 0; i < 3; ++i) {
      f[i] = py_int(d[i]);
      f[3 + i] = py_int(t[i]);
    }
  }
  for (const auto& v : f) {
    if (!v) return std::nullopt;
  }
  const int64_t year = *f[0], month = *f[1], day = *f[2], hour = *f[3], minute = *f[4],
                second = *f[5];
  if (!(1900 < year && year < 2100) || month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 ||
      hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 61) {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = static_cast<int>(year - 1900);
  tm.tm_mon = static_cast<int>(month - 1);
  tm.tm_mday = static_cast<int>(day);
  tm.tm_hour = static_cast<int>(hour);
  tm.tm_min = static_cast<int>(minute);
  tm.tm_sec = static_cast<int>(second);
  if (compact) return static_cast<int64_t>(::timegm(&tm));
  // duplicity: mktime of the fields as local standard time, minus time.timezone, plus the zone
  // written in the string.
  tm.tm_isdst = 0;
  const int64_t utc = static_cast<int64_t>(std::mktime(&tm)) - standard_offset_west();
  auto tzd = tzd_to_seconds(ts.size() > 19 ? ts.substr(19) : std::string_view{});
  if (!tzd) return std::nullopt;
  return utc + *tzd;
}

// dup_time.intstringtoseconds: "4D2s" -> seconds.
std::optional<int64_t> interval_seconds(std::string_view s) {
  if (s.size() < 2) return std::nullopt;
  int64_t total = 0;
  while (!s.empty()) {
    size_t digits = 0;
    while (digits < s.size() && std::isdigit(static_cast<unsigned char>(s[digits]))) ++digits;
    if (digits == 0 || digits == s.size()) return std::nullopt;
    int64_t unit = 0;
    switch (s[digits]) {
      case 's':
        unit = 1;
        break;
      case 'm':
        unit = 60;
        break;
      case 'h':
        unit = 3600;
        break;
      case 'D':
        unit = 86400;
        break;
      case 'W':
        unit = 7 * 86400;
        break;
      case 'M':
        unit = 30 * 86400;
        break;
      case 'Y':
        unit = 365 * 86400;
        break;
      default:
        return std::nullopt;
    }
    auto n = py_int(s.substr(0, digits));
    if (!n || *n > std::numeric_limits<int64_t>::max() / unit - total / unit - 1) {
      return std::nullopt;
    }
    total += *n * unit;
    s.remove_prefix(digits + 1);
  }
  return total;
}

}  // namespace

Result<int64_t> parse_time_spec(const std::string& text, int64_t now) {
  if (text == "now") return now;
  static const std::regex kInteger("^[0-9]+$");
  if (std::regex_match(text, kInteger)) {
    if (auto n = py_int(text)) return *n;
  } else {
    // genstrtotime treats a result of 0 as no match (`t = ... or ...; if t:`).
    auto t = string_to_time(text);
    if (!t || *t == 0) t = string_to_time(text + standard_tzd());
    if (t && *t != 0) return *t;
    if (auto seconds = interval_seconds(text)) return now - *seconds;
    static const std::regex kDate1("^([0-9]{4})[-/]([0-9]{1,2})[-/]([0-9]{1,2})$");
    static const std::regex kDate2("^([0-9]{1,2})[-/]([0-9]{1,2})[-/]([0-9]{4})$");
    static const std::regex kDate3("^([0-9]{4})([0-9]{2})([0-9]{2})Z$");
    std::smatch m;
    std::string year, month, day;
    if (std::regex_match(text, m, kDate1) || std::regex_match(text, m, kDate3)) {
      year = m[1], month = m[2], day = m[3];
    } else if (std::regex_match(text, m, kDate2)) {
      month = m[1], day = m[2], year = m[3];
    }
    if (!year.empty()) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%s-%02d-%02dT00:00:00", year.c_str(), std::stoi(month),
                    std::stoi(day));
      auto midnight = string_to_time(buf + standard_tzd());
      if (midnight && *midnight != 0) return *midnight;
    }
  }
  return error(ErrorKind::kInvalidArgument,
               "bad time string '{}': use now, an interval like 7D, 1M, 2W3D or 1h30m, a date "
               "like 2015/9/10 or 2015-09-10, a datetime like 2002-08-17T16:17:01-07:00, or "
               "epoch seconds",
               text);
}

std::string pretty_time(int64_t epoch) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t t = static_cast<time_t>(epoch);
  std::tm tm{};
  if (::localtime_r(&t, &tm) == nullptr) return std::to_string(epoch);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s %s %2d %02d:%02d:%02d %lld", kDays[tm.tm_wday % 7],
                kMonths[tm.tm_mon % 12], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(tm.tm_year) + 1900);
  return buf;
}

}  // namespace dupfs::cli

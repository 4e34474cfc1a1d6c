#include "chain/format/dup_time.h"

#include <fmt/format.h>
#include <time.h>

#include <algorithm>
#include <limits>
#include <vector>

namespace dupfs::chain {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_digit);
}

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// Python's floor division.
int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Python's int(str) in base 10, for ASCII: surrounding whitespace (Py_ISSPACE, not the
// separators "\x1c".."\x1f" that str.isspace() knows), an optional sign, decimal digits with
// single underscores between them.
std::optional<int64_t> py_int(std::string_view s) {
  auto space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  bool negative = false;
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s.empty() || !is_digit(s.front()) || !is_digit(s.back())) return std::nullopt;
  int64_t value = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      if (!is_digit(s[i + 1])) return std::nullopt;  // s.back() is a digit, so i + 1 is valid
      continue;
    }
    if (!is_digit(s[i])) return std::nullopt;
    if (value > (std::numeric_limits<int64_t>::max() - 9) / 10) return std::nullopt;
    value = value * 10 + (s[i] - '0');
  }
  return negative ? -value : value;
}

// Python's str.split(sep) (sep not empty).
std::vector<std::string_view> split(std::string_view s, std::string_view sep) {
  std::vector<std::string_view> parts;
  while (true) {
    size_t at = s.find(sep);
    parts.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return parts;
    s.remove_prefix(at + sep.size());
  }
}

// Python's s[from:to].
std::string_view slice(std::string_view s, size_t from, size_t to) {
  return from >= s.size() ? std::string_view() : s.substr(from, to - from);
}

// Python's time.timezone on glibc (timemodule.c, init_timezone): seconds west of UTC of the
// zone's standard time, from the offsets of early January and early July of the current year,
// the larger one (the other is daylight saving time, in either hemisphere). Not glibc's
// `timezone`, which differs for zones whose rules changed.
int64_t standard_offset_west() {
  constexpr time_t kYear = (365 * 24 + 6) * 3600;
  time_t t = (::time(nullptr) / kYear) * kYear;
  struct tm jan = {}, jul = {};
  ::localtime_r(&t, &jan);
  t += kYear / 2;
  ::localtime_r(&t, &jul);
  return std::max<int64_t>(-jan.tm_gmtoff, -jul.tm_gmtoff);
}

// dup_time.gettzd(0): "Z" on UTC, else "+hh<sep>mm" / "-hh<sep>mm" of local standard time, hours
// and minutes from Python's floor division as duplicity computes them (-03:30 is written
// "-04<sep>30", which tzd_seconds reads back as -03:30).
std::string standard_tzd(std::string_view sep) {
  const int64_t offset = floor_div(-standard_offset_west(), 60);  // minutes east
  if (offset == 0) return "Z";
  const int64_t hours = floor_div(offset, 60), minutes = offset - hours * 60;
  return fmt::format("{}{:02d}{}{:02d}", offset > 0 ? '+' : '-', hours < 0 ? -hours : hours, sep,
                     minutes);
}

// dup_time.tzdtoseconds: how far UTC is ahead of the zone ("Z", or "+hh<sep>mm" with the sign
// applied to the hours only, as duplicity does).
std::optional<int64_t> tzd_seconds(std::string_view tzd, std::string_view sep) {
  if (tzd == "Z") return 0;
  if (tzd.size() != 6 || (tzd[0] != '-' && tzd[0] != '+') || tzd.substr(3, 1) != sep) {
    return std::nullopt;
  }
  auto hours = py_int(tzd.substr(0, 3));
  auto minutes = py_int(tzd.substr(4));
  if (!hours || !minutes) return std::nullopt;
  return -60 * (60 * *hours + *minutes);
}

// dup_time.intstringtoseconds: "4D2s" -> seconds.
std::optional<int64_t> interval_seconds(std::string_view s) {
  if (s.size() < 2) return std::nullopt;
  int64_t total = 0;
  while (!s.empty()) {
    size_t digits = 0;
    while (digits < s.size() && is_digit(s[digits])) ++digits;
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
    if (!n || *n > (std::numeric_limits<int64_t>::max() - total) / unit) return std::nullopt;
    total += *n * unit;
    s.remove_prefix(digits + 1);
  }
  return total;
}

// Python's re.search(pattern + "$", s): `$` matches at the end or before a final "\n".
std::string_view before_final_newline(std::string_view s) {
  return s.ends_with('\n') ? s.substr(0, s.size() - 1) : s;
}

// genstrtotime's _genstr_date_regexp1..3: "2001-3-23" / "2001/3/23", "3/23/2001", "20010323Z".
std::optional<std::string> plain_date(std::string_view text) {
  std::string_view s = before_final_newline(text);
  auto is_sep = [](char c) { return c == '-' || c == '/'; };
  auto digits = [](std::string_view p, size_t lo, size_t hi) {
    return p.size() >= lo && p.size() <= hi && all_digits(p);
  };
  std::string_view year, month, day;
  if (s.size() == 9 && s.back() == 'Z' && all_digits(s.substr(0, 8))) {
    year = s.substr(0, 4), month = s.substr(4, 2), day = s.substr(6, 2);
  } else {
    size_t a = s.find_first_of("-/");
    size_t b = a == std::string_view::npos ? a : s.find_first_of("-/", a + 1);
    if (b == std::string_view::npos || std::any_of(s.begin() + b + 1, s.end(), is_sep)) {
      return std::nullopt;
    }
    std::string_view p0 = s.substr(0, a), p1 = s.substr(a + 1, b - a - 1), p2 = s.substr(b + 1);
    if (digits(p0, 4, 4) && digits(p1, 1, 2) && digits(p2, 1, 2)) {
      year = p0, month = p1, day = p2;
    } else if (digits(p0, 1, 2) && digits(p1, 1, 2) && digits(p2, 4, 4)) {
      year = p2, month = p0, day = p1;
    } else {
      return std::nullopt;
    }
  }
  return fmt::format("{}-{:02d}-{:02d}", year, *py_int(month), *py_int(day));
}

}  // namespace

std::string format_name_time(int64_t epoch) {
  time_t t = static_cast<time_t>(epoch);
  struct tm tm = {};
  ::gmtime_r(&t, &tm);
  char buf[64];
  size_t n = ::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return std::string(buf, n);
}

std::optional<int64_t> string_to_time(std::string_view ts, std::string_view sep) {
  if (!is_ascii(ts)) return std::nullopt;
  auto halves = split(slice(ts, 0, 19), "T");
  if (halves.size() != 2) return std::nullopt;
  std::string_view date = halves[0], daytime = halves[1];
  const bool compact = ts.size() == 16;  // the current form; any other length is the old one
  std::optional<int64_t> f[6];
  if (compact) {
    f[0] = py_int(slice(date, 0, 4));
    f[1] = py_int(slice(date, 4, 6));
    f[2] = py_int(slice(date, 6, 8));
    f[3] = py_int(slice(daytime, 0, 2));
    f[4] = py_int(slice(daytime, 2, 4));
    f[5] = py_int(slice(daytime, 4, 6));
  } else {
    if (sep.empty()) return std::nullopt;  // Python: "empty separator"
    auto d = split(date, "-");
    auto t = split(daytime, sep);
    if (d.size() != 3 || t.size() != 3) return std::nullopt;
    for (int i = 0; i < 3; ++i) {
      f[i] = py_int(d[i]);
      f[i + 3] = py_int(t[i]);
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
  struct tm tm = {};
  tm.tm_year = static_cast<int>(year - 1900);
  tm.tm_mon = static_cast<int>(month - 1);
  tm.tm_mday = static_cast<int>(day);
  tm.tm_hour = static_cast<int>(hour);
  tm.tm_min = static_cast<int>(minute);
  tm.tm_sec = static_cast<int>(second);
  if (compact) return static_cast<int64_t>(::timegm(&tm));  // calendar.timegm
  // duplicity: mktime of the fields as local standard time, minus time.timezone (the two only
  // cancel out where the zone's standard offset never changed), plus the zone in the string.
  tm.tm_isdst = 0;
  const int64_t utc = static_cast<int64_t>(::mktime(&tm)) - standard_offset_west();
  auto offset = tzd_seconds(ts.substr(std::min<size_t>(19, ts.size())), sep);
  if (!offset) return std::nullopt;
  return utc + *offset;
}

std::optional<int64_t> gen_str_to_time(std::string_view text, std::optional<int64_t> now,
                                       std::string_view sep) {
  if (now && text == "now") return *now;
  if (!is_ascii(text)) return std::nullopt;
  // _integer_regexp "^[0-9]+$"; int() ignores the newline `$` lets through.
  if (all_digits(before_final_newline(text))) return py_int(text);
  // `stringtotime(s) or stringtotime(s + gettzd(0))`, then `if t:`: a time of 0 is no match.
  auto t = string_to_time(text, sep);
  if (!t || *t == 0) t = string_to_time(std::string(text) + standard_tzd(sep), sep);
  if (t && *t != 0) return t;
  if (now) {
    if (auto seconds = interval_seconds(text)) return *now - *seconds;
  }
  // The midnight of a date. Its "00:00:00" is written with ':' whatever the separator, as
  // duplicity writes it (so with another --time-separator, dates never parse).
  auto date = plain_date(text);
  if (!date) return std::nullopt;
  t = string_to_time(*date + "T00:00:00" + standard_tzd(sep), sep);
  if (t && *t != 0) return t;
  return std::nullopt;
}

std::string pretty_time(int64_t epoch, Unrepresentable unrepresentable) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t t = static_cast<time_t>(epoch);
  struct tm tm = {};
  const bool represented = ::localtime_r(&t, &tm) != nullptr;
  char buf[64];
  if (!represented) {
    if (unrepresentable == Unrepresentable::kEpochSeconds) return std::to_string(epoch);
    // C locale (dupfs never calls setlocale): the same names as below.
    size_t n = ::strftime(buf, sizeof buf, "%a %b %e %H:%M:%S %Y", &tm);
    return std::string(buf, n);
  }
  // time.asctime: "%s %s%3d %.2d:%.2d:%.2d %d", English names whatever the locale.
  std::snprintf(buf, sizeof buf, "%s %s %2d %02d:%02d:%02d %lld", kDays[tm.tm_wday % 7],
                kMonths[tm.tm_mon % 12], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(tm.tm_year) + 1900);
  return buf;
}

}  // namespace dupfs::chain

#include "cli/time_spec.h"

#include <ctime>
#include <regex>

#include "chain/names.h"

namespace dupfs::cli {

Result<int64_t> parse_time_spec(const std::string& text, int64_t now) {
  if (text == "now") return now;
  static const std::regex kInteger("^[0-9]+$");
  if (std::regex_match(text, kInteger)) return std::stoll(text);
  static const std::regex kInterval("^([0-9]+[smhDWMY])+$");
  if (std::regex_match(text, kInterval)) {
    static const std::regex kPart("([0-9]+)([smhDWMY])");
    int64_t total = 0;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), kPart);
         it != std::sregex_iterator(); ++it) {
      int64_t n = std::stoll((*it)[1].str());
      switch ((*it)[2].str()[0]) {
        case 's':
          total += n;
          break;
        case 'm':
          total += n * 60;
          break;
        case 'h':
          total += n * 3600;
          break;
        case 'D':
          total += n * 86400;
          break;
        case 'W':
          total += n * 7 * 86400;
          break;
        case 'M':
          total += n * 30 * 86400;
          break;
        case 'Y':
          total += n * 365 * 86400;
          break;
      }
    }
    return now - total;
  }
  // Dates like 2015/9/10 or 9/10/2015: midnight local time.
  static const std::regex kDate1("^([0-9]{4})[-/]([0-9]{1,2})[-/]([0-9]{1,2})$");
  static const std::regex kDate2("^([0-9]{1,2})[-/]([0-9]{1,2})[-/]([0-9]{4})$");
  std::smatch m;
  int year = 0, month = 0, day = 0;
  if (std::regex_match(text, m, kDate1)) {
    year = std::stoi(m[1]);
    month = std::stoi(m[2]);
    day = std::stoi(m[3]);
  } else if (std::regex_match(text, m, kDate2)) {
    month = std::stoi(m[1]);
    day = std::stoi(m[2]);
    year = std::stoi(m[3]);
  }
  if (year != 0) {
    struct tm tm {};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_isdst = -1;
    return static_cast<int64_t>(std::mktime(&tm));
  }
  if (auto t = chain::parse_name_time(text); t && *t > 0 && text.size() > 8) return *t;
  return error(ErrorKind::kInvalidArgument,
               "bad time string '{}' (use an interval like 14D, 2W, 1M, 1Y, 3h, or a date "
               "like 2015/9/10 or 2015-09-10T12:00:00Z)",
               text);
}

}  // namespace dupfs::cli

#include "cli/time_spec.h"

namespace dupfs::cli {

Result<int64_t> parse_time_spec(const std::string& text, int64_t now) {
  if (auto t = chain::gen_str_to_time(text, now)) return *t;
  return error(ErrorKind::kInvalidArgument,
               "bad time string '{}': use now, an interval like 7D, 1M, 2W3D or 1h30m, a date "
               "like 2015/9/10 or 2015-09-10, a datetime like 2002-08-17T16:17:01-07:00, or "
               "epoch seconds",
               text);
}

}  // namespace dupfs::cli

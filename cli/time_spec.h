// duplicity's time strings, as --time, --full-if-older-than and remove-older-than take them.
#pragma once

#include <cstdint>
#include <string>

#include "backends/error.h"

namespace dupfs::cli {

// duplicity's time strings (dup_time.genstrtotime): "now", epoch seconds, intervals such as
// 14D, 1M, 2W, 1Y, 3h30m (relative to `now`), and dates/datetimes (2015/9/10, 2015-09-10,
// 2002-08-17T16:17:01-07:00, 20261126T063843Z). kInvalidArgument ("bad time string ...")
// otherwise.
Result<int64_t> parse_time_spec(const std::string& text, int64_t now);

}  // namespace dupfs::cli

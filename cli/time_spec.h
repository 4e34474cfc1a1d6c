// duplicity's time strings as --time, --full-if-older-than and remove-older-than take them, and
// the way duplicity prints times to people: chain/format/dup_time.h, with the command line's
// error.
#pragma once

#include <cstdint>
#include <string>

#include "backends/base/error.h"
#include "chain/format/dup_time.h"

namespace dupfs::cli {

// chain::gen_str_to_time(text, now): "now", epoch seconds, w3 datetimes
// ("2002-08-17T16:17:01-07:00", "20261126T063843Z"), intervals before `now` ("7D", "1h30m"),
// dates ("2015/9/10", "9/10/2015"), with duplicity's rules and quirks (see dup_time.h), so that
// both programs resolve a string to the same second (docs/actions.md).
// kInvalidArgument ("bad time string ...") otherwise.
Result<int64_t> parse_time_spec(const std::string& text, int64_t now);

// dup_time.timetopretty, "Thu Nov 26 06:36:16 2026".
using chain::pretty_time;

}  // namespace dupfs::cli

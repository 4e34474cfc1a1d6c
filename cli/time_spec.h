// duplicity's time strings, as --time, --full-if-older-than and remove-older-than take them, and
// the way duplicity prints times to people.
#pragma once

#include <cstdint>
#include <string>

#include "backends/base/error.h"

namespace dupfs::cli {

// duplicity's time strings, parsed as dup_time.genstrtotime parses them, in its order:
//   "now"                         `now`
//   epoch seconds                 "1600000000"
//   w3 datetimes                  "2002-08-17T16:17:01-07:00", "...Z", "20261126T063843Z";
//                                 without a zone ("2002-08-17T16:17:01") local standard time
//   intervals before `now`        "7D", "1M" (30 days), "2W3D", "1h30m", "1Y" (365 days); units
//                                 s m h D W M Y, case-sensitive
//   dates (midnight, local        "2015/9/10", "2015-09-10", "9/10/2015", "20150910Z"
//   standard time)
// "Local standard time" is duplicity's: the zone's offset without daylight saving time, even on
// a summer date. duplicity's quirks are kept on purpose, so that both programs resolve a string
// to the same second (see docs/actions.md): a parsed time of 0 counts as no match, and a zone
// like "-03:30" is read as -02:30 (dup_time.tzdtoseconds).
// kInvalidArgument ("bad time string ...") otherwise.
Result<int64_t> parse_time_spec(const std::string& text, int64_t now);

// duplicity's dup_time.timetopretty: local time as asctime prints it, "Thu Nov 26 06:36:16 2026"
// (day of month padded with a space: "Sun Nov  1 ...").
std::string pretty_time(int64_t epoch);

}  // namespace dupfs::cli

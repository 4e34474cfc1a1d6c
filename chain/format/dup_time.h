// duplicity's time strings (docs/format.md §1.2), ported from duplicity 0.8's dup_time.py: the
// one place where dupfs turns times into text and text into times, for file names (names.h)
// and for the command line (--time, remove-older-than, --full-if-older-than).
//
// The parsers keep duplicity's acceptance rules and quirks on purpose, so that both programs
// read a string as the same second or both refuse it:
//   - numbers are read as Python's int() reads them: surrounding ASCII whitespace (" \t\n\v\f\r",
//     not "\x1c".."\x1f"), an optional sign, single underscores between digits ("2_002"), so
//     "2002-08-17T16:17:0 Z" is a time;
//   - "$" in duplicity's patterns also matches before a final "\n": "1600000000\n" and
//     "2015/9/10\n" are accepted;
//   - the 16th character of a "YYYYMMDDTHHMMSSZ" time is never looked at;
//   - a zone "-03:30" is read as -02:30 (dup_time.tzdtoseconds signs the hours only);
//   - times without a zone are local *standard* time (Python's time.timezone: no daylight saving
//     time, even on a summer date);
//   - a time that comes out as 0 counts as no match where genstrtotime tests `if t:`.
// Two deliberate differences, for strings no duplicity writes and no one types: text with bytes
// outside ASCII is refused (duplicity reads it as Unicode, where int() also takes other scripts'
// digits and spaces), and numbers that do not fit int64_t are refused (Python's are unbounded).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dupfs::chain {

// dup_time.timetostring as duplicity 0.8 writes times into file names: UTC,
// "20261126T063843Z".
std::string format_name_time(int64_t epoch);

// dup_time.stringtotime: "20261126T063843Z" (exactly 16 characters, UTC) or, for any other
// length, the old form "2002-08-17T16:17:01-07:00" / "...Z", its time fields joined by
// `separator` (--time-separator; the zone's too). nullopt when it does not parse.
std::optional<int64_t> string_to_time(std::string_view text, std::string_view separator = ":");

// dup_time.genstrtotime, in its order:
//   "now"                         `now`
//   epoch seconds                 "1600000000"
//   string_to_time                "2002-08-17T16:17:01-07:00", "...Z", "20261126T063843Z"; without
//                                 a zone ("2002-08-17T16:17:01") local standard time
//   intervals before `now`        "7D", "1M" (30 days), "2W3D", "1h30m", "1Y" (365 days); units
//                                 s m h D W M Y, case-sensitive
//   dates (midnight, local        "2015/9/10", "2015-09-10", "9/10/2015", "20150910Z"
//   standard time)
// Without `now` (file names: a name's time must not depend on when it is read), "now" and
// intervals are not accepted. nullopt when nothing matches (duplicity's TimeException).
std::optional<int64_t> gen_str_to_time(std::string_view text, std::optional<int64_t> now,
                                       std::string_view separator = ":");

// What pretty_time prints for a time localtime() cannot represent (beyond the year 2^31).
enum class Unrepresentable {
  kEpochSeconds,  // the number itself
  kStrftime,      // strftime of the fields glibc filled in before it gave up (verify and the
                  // backup statistics printed that; their output is kept byte for byte)
};

// dup_time.timetopretty: local time as asctime prints it, "Thu Nov 26 06:36:16 2026" (day of the
// month padded with a space: "Sun Nov  1 ...").
std::string pretty_time(int64_t epoch,
                        Unrepresentable unrepresentable = Unrepresentable::kEpochSeconds);

}  // namespace dupfs::chain

// duplicity's remote file names (docs/format.md §1): parsing all three forms (long,
// --old-filenames,
// --short-filenames) and writing the long form.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "backends/base/error.h"
#include "chain/format/dup_time.h"  // format_name_time, the times in the names written here

namespace dupfs::chain {

enum class FileType { kFull, kInc, kFullSig, kNewSig };

struct ParsedName {
  FileType type = FileType::kFull;
  int64_t time = 0;        // kFull, kFullSig: the set's time (epoch seconds, UTC)
  int64_t start_time = 0;  // kInc, kNewSig: end time of the set it extends
  int64_t end_time = 0;    // kInc, kNewSig: its own time
  int volume = 0;          // volume number (1-based) for difftar volumes, else 0
  bool manifest = false;
  bool partial = false;     // ".part" / ".p"
  bool encrypted = false;   // ".gpg" / ".g"
  bool compressed = false;  // ends in "gz" / ".z"

  bool operator==(const ParsedName&) const = default;
};

// How names are matched: duplicity only recognises names carrying exactly the configured
// prefixes (general first, then the kind-specific one). Prefixes are matched literally (duplicity
// pastes them into its regular expressions unescaped; that difference only matters for prefixes
// holding regex metacharacters).
struct NamePrefixes {
  std::string general;    // --file-prefix
  std::string archive;    // --file-prefix-archive
  std::string manifest;   // --file-prefix-manifest
  std::string signature;  // --file-prefix-signature
  // --time-separator (0.8 and earlier): replaces ':' in old-form times ("2002-08-17T16_17_01Z").
  std::string time_separator = ":";
};

// nullopt for names that are not duplicity's (they are ignored), including .par2 and .jsonstat.
// Follows file_naming.parse of duplicity 0.8: short patterns first, then long ones; the first
// regex match decides, and a time that does not convert (or converts to 0) rejects the name.
// Deliberate differences, all for names no duplicity writes: interval times ("3D", which
// duplicity resolves relative to the current time) are rejected, so are times dup_time.h refuses
// (bytes beyond ASCII, numbers beyond int64_t), and volume number 0 or one that does not fit an
// int (duplicity asserts).
std::optional<ParsedName> parse_name(std::string_view name, const NamePrefixes& prefixes = {});

// Epoch seconds from a time string as found in names: what file_naming.parse reads in the long
// forms (gen_str_to_time of the upper-cased text, without `now`: "20261126T063843Z", the old
// form "2002-08-17T16:17:01-07:00" or "...Z" with NamePrefixes::time_separator, epoch seconds, a
// plain date), or else base-36 epoch seconds (lowercase "0-9a-z"). A string of decimal digits is
// read as decimal.
std::optional<int64_t> parse_name_time(std::string_view text,
                                       std::string_view time_separator = ":");

// The long-form names duplicity 0.8 writes. `suffix` is "" , ".gz" or ".gpg". Prefixes are
// applied as duplicity applies them (general + archive/manifest/signature).
std::string full_volume_name(int64_t time, int volume, std::string_view suffix,
                             const NamePrefixes& prefixes = {});
std::string inc_volume_name(int64_t start, int64_t end, int volume, std::string_view suffix,
                            const NamePrefixes& prefixes = {});
std::string full_manifest_name(int64_t time, std::string_view suffix,
                               const NamePrefixes& prefixes = {});
std::string inc_manifest_name(int64_t start, int64_t end, std::string_view suffix,
                              const NamePrefixes& prefixes = {});
std::string full_sig_name(int64_t time, std::string_view suffix, const NamePrefixes& prefixes = {});
std::string new_sig_name(int64_t start, int64_t end, std::string_view suffix,
                         const NamePrefixes& prefixes = {});

}  // namespace dupfs::chain

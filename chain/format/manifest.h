// Manifests (docs/format.md §2): a tolerant parser and duplicity's byte-exact writer.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/base/error.h"
#include "chain/format/index.h"

namespace dupfs::chain {

struct ManifestVolume {
  int number = 0;
  Index start;
  std::optional<int64_t> start_block;
  Index end;
  std::optional<int64_t> end_block;
  std::string hash_type;  // "SHA1" (preferred) or "MD5"; empty when none
  std::string hash_hex;   // lowercase hex
};

struct FileChange {
  std::string type;  // "new", "changed", "deleted"
  Index path;
};

struct Manifest {
  std::optional<std::string> hostname;
  std::optional<std::string> localdir;  // unquoted
  std::map<int, ManifestVolume> volumes;
  std::optional<std::vector<FileChange>> files;  // nullopt when there is no Filelist
  // Set by the parser when the "Filelist <n>" count differs from the entries that follow
  // (duplicity 0.8 logs "Manifest file ... is corrupt" and carries on; so do we).
  bool filelist_count_mismatch = false;
};

// Accepts any field order, optional Hostname/Localdir/Filelist, repeated volume entries (a later
// entry replaces an earlier one; entries numbered above the last one seen are dropped).
// kCorruption naming the line when the text is not a manifest: a line at the start of a row that
// is not Hostname/Localdir/Volume/Filelist, an indented line outside a volume or file list, a bad
// volume header, block number or quoting, a volume without StartingPath/EndingPath, or no volume
// at all. Indented lines in a volume block whose first word is unknown are ignored, as duplicity
// does. Lines made only of whitespace and a trailing '\r' are tolerated. Paths are unquoted,
// Filelist paths included.
Result<Manifest> parse_manifest(std::string_view text);

// The streamed layout duplicity 0.8 writes, byte for byte: Hostname (raw) and Localdir (quoted),
// each only when set and non-empty, then the volumes in number order, then "Filelist <n>" and its
// entries when `files` is set. The Hash line is left out when hash_type is empty.
std::string format_manifest(const Manifest& m);

// Volume numbers whose [start[:len(prefix)], end] range contains `prefix`, in order (§2.5).
std::vector<int> volumes_for_prefix(const Manifest& m, const Index& prefix);

}  // namespace dupfs::chain

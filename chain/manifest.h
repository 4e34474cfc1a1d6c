// Manifests (FORMAT.md §2): a tolerant parser and duplicity's byte-exact writer.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/error.h"
#include "chain/index.h"

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
};

// Accepts any field order, optional Hostname/Localdir/Filelist, repeated volume entries (a later
// entry replaces an earlier one; entries numbered above the last one seen are dropped).
// kCorruption naming the line when the text is not a manifest.
Result<Manifest> parse_manifest(std::string_view text);

// The streamed layout duplicity 0.8 writes (volumes, then Filelist).
std::string format_manifest(const Manifest& m);

// Volume numbers whose [start[:len(prefix)], end] range contains `prefix`, in order (§2.5).
std::vector<int> volumes_for_prefix(const Manifest& m, const Index& prefix);

}  // namespace dupfs::chain

// Signature files (FORMAT.md §4): what a sigtar says about each path of a set (its metadata;
// never sizes or data). Merging a chain's full and new signatures gives the tree at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/error.h"
#include "chain/difftar.h"

namespace dupfs::chain {

struct SigEntry {
  EntryKind kind;  // kSignature (regular file), kSnapshot (anything else), kDeleted
  Index index;
  TarType type = TarType::kFile;
  uint32_t mode = 0;
  int64_t uid = 0;
  int64_t gid = 0;
  std::string uname;  // owner names; restore maps them through the local passwd/group
  std::string gname;
  int64_t mtime = 0;
  std::string linkname;
  uint32_t devmajor = 0;
  uint32_t devminor = 0;
};

// The entries of a decoded sigtar, in stream order. kCorruption for a damaged tar.
Result<std::vector<SigEntry>> read_sigtar(std::string_view tar);

// The tree after applying `layers` in order (full signatures first): for each index the entry
// from the newest layer wins and deleted entries remove the path. Sorted by index.
using SigLayer = std::shared_ptr<const std::vector<SigEntry>>;
std::vector<SigEntry> merge_signatures(const std::vector<SigLayer>& layers);

}  // namespace dupfs::chain

// Entries of difftar volumes and sigtar files (docs/format.md §3.1, §4.1): the prefix of a tar
// entry's name says what it is, the rest is the index (and a chunk number for multivol pieces).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "chain/format/index.h"
#include "chain/format/tar.h"

namespace dupfs::chain {

enum class EntryKind : uint8_t {
  kSnapshot,          // snapshot/<path>: the whole object
  kDiff,              // diff/<path>: librsync delta against the previous version
  kDeleted,           // deleted/<path>
  kMultivolSnapshot,  // multivol_snapshot/<path>/<k>: chunk k of a snapshot
  kMultivolDiff,      // multivol_diff/<path>/<k>: chunk k of a delta
  kSignature,         // signature/<path> (sigtar only)
};

struct EntryName {
  EntryKind kind;
  Index index;
  int64_t chunk = 0;  // k for multivol pieces, else 0
};

// nullopt when the name has no known prefix or a malformed chunk number.
std::optional<EntryName> parse_entry_name(std::string_view tar_name);

inline bool is_snapshot_kind(EntryKind k) {
  return k == EntryKind::kSnapshot || k == EntryKind::kMultivolSnapshot;
}
inline bool is_diff_kind(EntryKind k) {
  return k == EntryKind::kDiff || k == EntryKind::kMultivolDiff;
}

// One tar entry of a volume, as the volume's catalog keeps it.
struct CatalogEntry {
  EntryName name;
  TarHeader header;  // header.name is cleared to save memory; data_offset/size locate the data
};

// Collects a volume's catalog as a TarParser finds its entries (entries that are not
// duplicity's are left out: nothing is served from them).
class CatalogBuilder : public TarVisitor {
 public:
  Status on_entry(const TarHeader& h) override;
  Status on_data(const TarHeader&, std::string_view) override { return {}; }
  Status on_entry_end(const TarHeader&) override { return {}; }
  std::vector<CatalogEntry> pending;  // found, not yet taken
};

}  // namespace dupfs::chain

// Tar headers exactly as Python >= 3.8's tarfile writes them for duplicity (docs/format.md
// §3.4-3.5): POSIX ustar blocks, preceded by a PAX 'x' header ("././@PaxHeader") when a name or
// link target is over 100 bytes or not ASCII, an owner name is over 32 bytes or not ASCII, or a
// number does not fit its octal field. Values that are not valid UTF-8 get "hdrcharset=BINARY" and
// are stored raw, so every byte of every name survives. Pure functions, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "chain/format/difftar.h"
#include "chain/format/index.h"
#include "chain/format/tar.h"

namespace dupfs::chain {

inline constexpr size_t kTarBlockSize = 512;
inline constexpr size_t kTarRecordSize = 10240;

// What one tar member says. `name` is the whole raw member name (prefix included, directories
// with their trailing '/'); the writer never adds or removes anything.
struct TarMember {
  std::string name;
  TarType type = TarType::kFile;
  uint32_t mode = 0;  // only the low 12 bits are written
  int64_t uid = 0;
  int64_t gid = 0;
  std::string uname;
  std::string gname;
  int64_t mtime = 0;  // callers store a negative mtime as 0, as duplicity does
  uint64_t size = 0;  // bytes of data that follow the header
  std::string linkname;
  uint32_t devmajor = 0;  // written for devices only
  uint32_t devminor = 0;
};

// The header blocks for `m` (a multiple of 512 bytes): the PAX extended header when needed,
// then the ustar header. Byte-identical to tarfile.TarInfo.tobuf(PAX_FORMAT) on Python 3.11.
std::string tar_header(const TarMember& m);

// Zero bytes that follow `size` data bytes up to the next 512-byte boundary.
inline size_t tar_padding(uint64_t size) {
  return static_cast<size_t>((kTarBlockSize - size % kTarBlockSize) % kTarBlockSize);
}

// The end of an encrypted volume (duplicity's TarBlockIter.get_footer): zero bytes up to the
// next 10240-byte record boundary after `offset` tar bytes, a whole record when already aligned.
std::string tar_volume_footer(uint64_t offset);

// The end of a tar closed by tarfile.TarFile.close() (signature files): two zero blocks, then
// zeros up to the next record boundary.
std::string tar_archive_end(uint64_t offset);

// Member names as duplicity forms them from an index (docs/format.md §3.1, §4.1).
//   difftar: "snapshot/./" for the root, "snapshot/a/b/" for directories, "deleted/a/b",
//            "multivol_snapshot/a/b/3", ...
//   sigtar:  "snapshot/" for the root, "signature/a/b", "deleted/a/b".
// `directory` adds the trailing '/' (never for deleted/ or multivol entries).
std::string difftar_member_name(EntryKind kind, const Index& index, bool directory,
                                int64_t chunk = 0);
std::string sigtar_member_name(EntryKind kind, const Index& index, bool directory);

// True when `bytes` is valid UTF-8 as Python's strict decoder sees it (no overlong forms, no
// surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view bytes);

}  // namespace dupfs::chain

// A push-mode tar parser: bytes go in as they are decoded (in pieces of any size), entries come
// out through a Visitor. Reads v7/ustar (with the 155-byte prefix), GNU long names ('L'/'K'),
// base-256 numbers and PAX 'x'/'g' headers (path, linkpath, uid, gid, uname, gname, size, mtime,
// hdrcharset). Stops at the first all-zero block and ignores everything after it; a stream that
// ends at an entry boundary without an end marker is fine. Not thread-safe; one per stream.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "backends/base/error.h"

namespace dupfs::chain {

enum class TarType { kFile, kHardlink, kSymlink, kCharDevice, kBlockDevice, kDirectory, kFifo };

struct TarHeader {
  std::string name;      // full raw name after long-name/PAX processing (e.g. "snapshot/a/b")
  std::string linkname;  // symlink target
  TarType type = TarType::kFile;
  uint32_t mode = 0;  // the low 12 bits: permissions, setuid, setgid, sticky
  int64_t uid = 0;
  int64_t gid = 0;
  std::string uname;
  std::string gname;
  int64_t mtime = 0;  // whole seconds (PAX fractions are floored)
  uint64_t size = 0;  // bytes of data that follow
  uint32_t devmajor = 0;
  uint32_t devminor = 0;
  uint64_t header_offset = 0;  // stream offset of the entry's first header block (incl. PAX/GNU)
  uint64_t data_offset = 0;    // stream offset of its data
};

class TarVisitor {
 public:
  virtual ~TarVisitor() = default;
  // Any error returned stops the parser and is returned from feed().
  virtual Status on_entry(const TarHeader& header) = 0;
  // The entry's data, in order, in pieces; never called for size 0.
  virtual Status on_data(const TarHeader& header, std::string_view piece) = 0;
  // After the last data byte (and for size 0 right after on_entry).
  virtual Status on_entry_end(const TarHeader& header) = 0;
};

class TarParser {
 public:
  explicit TarParser(TarVisitor& visitor) : visitor_(visitor) {}

  // Feeds the next bytes of the stream. kCorruption for a bad checksum, a name with a ".."
  // component or starting with '/', an impossible size or number, or a malformed PAX record.
  // After an error or the end marker, further bytes are ignored.
  Status feed(std::string_view bytes);

  // The stream has ended: kCorruption when it ended inside a header or an entry's data.
  Status finish();

  bool at_end_marker() const { return end_marker_; }
  uint64_t offset() const { return offset_; }  // bytes consumed so far

 private:
  enum class State { kHeader, kExtension, kData, kPadding, kEnd, kFailed };

  // Values from PAX records; unset fields leave the ustar header's value in place.
  struct PaxValues {
    std::optional<std::string> path, linkpath, uname, gname;
    std::optional<int64_t> uid, gid, mtime;
    std::optional<uint64_t> size;
  };

  Status parse_header();
  Status begin_extension(char typeflag, uint64_t size, uint64_t header_offset);
  Status finish_extension();
  Status begin_entry(char typeflag, uint64_t header_offset);
  Status parse_pax(std::string_view records, bool global);
  Status fail(Error error);

  TarVisitor& visitor_;
  uint64_t offset_ = 0;  // stops at the end of the end marker; junk after it is not counted
  bool end_marker_ = false;
  State state_ = State::kHeader;
  std::optional<Error> error_;  // set in kFailed; feed() and finish() return it again

  std::array<char, 512> block_{};  // the header block being assembled
  size_t block_fill_ = 0;

  TarHeader current_;       // the entry whose data is streaming (kData)
  uint64_t data_left_ = 0;  // data bytes of the current entry still to come
  uint64_t pad_left_ = 0;   // padding bytes still to skip after data or extension payload

  // 'x', 'g', 'L' or 'K' payload being collected (bounded by kMaxExtensionSize in tar.cc).
  char ext_type_ = 0;
  uint64_t ext_offset_ = 0;  // offset of its header block
  uint64_t ext_left_ = 0;
  std::string ext_data_;

  // Extensions ('x', 'L', 'K') that apply to the next entry header.
  bool ext_pending_ = false;
  uint64_t entry_start_ = 0;  // header offset of the first of them
  std::optional<std::string> long_name_, long_link_;
  PaxValues pax_;         // from 'x': this entry only
  PaxValues pax_global_;  // from 'g': every following entry
};

}  // namespace dupfs::chain

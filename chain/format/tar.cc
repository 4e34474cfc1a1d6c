// Streaming tar parser. Semantics follow Python's tarfile (duplicity's own reader) except where
// that would let damaged or hostile input through silently:
//
// * A header with a bad checksum or an unknown typeflag is an error anywhere in the stream
//   (tarfile quietly stops reading after the first entry).
// * Only regular entries ('0', '\0', '7') carry data. For the other types the size field is
//   ignored and reported as 0, as tarfile does (GNU tar would skip data behind them).
// * A '\0' (v7) entry whose name ends in '/' is a directory, as in tarfile and GNU tar.
// * PAX precedence: an 'x' record beats a 'g' record, which beats the GNU long name/link, which
//   beats the ustar name (with prefix) and link fields. An 'x' record with an empty value is
//   ignored; a 'g' record with an empty value removes that global value (POSIX).
// * Names are kept as raw bytes (hdrcharset is accepted whatever its value). A name that starts
//   with '/', has a ".." component or holds a NUL byte is rejected; so is such a hardlink target
//   (it names another member). Symlink targets are free-form.
// * Missing padding after the final entry's data is tolerated by finish(): the entry is complete
//   and the padding carries nothing. A stream ending anywhere else except an entry boundary is
//   truncated.
// * After an error, feed() and finish() return the same error again and process nothing.
#include "chain/format/tar.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

namespace dupfs::chain {
namespace {

constexpr size_t kBlockSize = 512;
constexpr uint64_t kMaxEntrySize = uint64_t{1} << 53;
// Upper bound for buffered PAX records and GNU long names, against hostile sizes.
constexpr uint64_t kMaxExtensionSize = uint64_t{1} << 20;

struct Field {
  size_t offset;
  size_t length;
};
constexpr Field kName{0, 100};
constexpr Field kMode{100, 8};
constexpr Field kUid{108, 8};
constexpr Field kGid{116, 8};
constexpr Field kSize{124, 12};
constexpr Field kMtime{136, 12};
constexpr Field kChecksum{148, 8};
constexpr size_t kTypeflag = 156;
constexpr Field kLinkname{157, 100};
constexpr Field kMagic{257, 6};
constexpr Field kUname{265, 32};
constexpr Field kGname{297, 32};
constexpr Field kDevmajor{329, 8};
constexpr Field kDevminor{337, 8};
constexpr Field kPrefix{345, 155};

std::string_view raw_field(const std::array<char, 512>& block, Field f) {
  return {block.data() + f.offset, f.length};
}

// A NUL-terminated string field (the terminator is optional when the field is full).
std::string_view string_field(std::string_view raw) {
  return raw.substr(0, std::min(raw.find('\0'), raw.size()));
}

std::string_view string_field(const std::array<char, 512>& block, Field f) {
  return string_field(raw_field(block, f));
}

uint64_t padding_for(uint64_t size) { return (kBlockSize - size % kBlockSize) % kBlockSize; }

// A numeric header field: octal digits (leading/trailing spaces, NUL-terminated, empty = 0), or
// GNU base-256 when the first byte has its high bit set. Base-256 is big-endian two's complement
// with 0x80 as a marker and 0x40 as the sign bit of the first byte.
std::optional<int64_t> parse_number(std::string_view raw) {
  const auto first = static_cast<unsigned char>(raw.front());
  if ((first & 0x80) != 0) {
    const bool negative = (first & 0x40) != 0;
    // Accumulate the magnitude (for negative numbers: of the one's complement).
    uint64_t acc = negative ? (~first & 0x3f) : (first & 0x3f);
    for (size_t i = 1; i < raw.size(); ++i) {
      auto byte = static_cast<unsigned char>(raw[i]);
      if (negative) byte = static_cast<unsigned char>(~byte);
      if (acc > (std::numeric_limits<uint64_t>::max() >> 8)) return std::nullopt;
      acc = (acc << 8) | byte;
    }
    if (acc > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    const auto value = static_cast<int64_t>(acc);
    return negative ? -value - 1 : value;
  }
  std::string_view s = string_field(raw);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  uint64_t value = 0;
  for (char c : s) {
    if (c < '0' || c > '7') return std::nullopt;
    value = value * 8 + static_cast<uint64_t>(c - '0');  // at most 12 digits: no overflow
  }
  return static_cast<int64_t>(value);
}

// A decimal PAX value without sign, up to max.
std::optional<uint64_t> parse_decimal(std::string_view s, uint64_t max) {
  if (s.empty()) return std::nullopt;
  uint64_t value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<uint64_t>(c - '0');
    if (value > (max - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

// A PAX time: [-]digits[.digits], floored to whole seconds.
std::optional<int64_t> parse_pax_time(std::string_view s) {
  bool negative = false;
  if (!s.empty() && s.front() == '-') {
    negative = true;
    s.remove_prefix(1);
  }
  std::string_view fraction;
  if (const size_t dot = s.find('.'); dot != std::string_view::npos) {
    fraction = s.substr(dot + 1);
    s = s.substr(0, dot);
  }
  if (!std::ranges::all_of(fraction, [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  const auto whole = parse_decimal(s, static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
  if (!whole) return std::nullopt;
  auto value = static_cast<int64_t>(*whole);
  if (!negative) return value;
  const bool has_fraction = std::ranges::any_of(fraction, [](char c) { return c != '0'; });
  return -value - (has_fraction ? 1 : 0);
}

// For messages: printable ASCII as is, other bytes as \xNN, cut after 200 bytes.
std::string printable(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < 200; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (s.size() > 200) out += "...";
  return out;
}

bool is_unsafe_name(std::string_view name) {
  if (name.starts_with('/') || name.find('\0') != std::string_view::npos) return true;
  size_t start = 0;
  while (true) {
    const size_t slash = name.find('/', start);
    if (name.substr(start, slash - start) == "..") return true;
    if (slash == std::string_view::npos) return false;
    // An empty component ("a//b"); only a trailing slash (a directory) may end a name.
    if (slash == start && start != 0 && slash + 1 < name.size()) return true;
    start = slash + 1;
  }
}

bool is_regular(char typeflag) { return typeflag == '0' || typeflag == '\0' || typeflag == '7'; }

std::optional<TarType> entry_type(char typeflag) {
  switch (typeflag) {
    case '0':
    case '\0':
    case '7':
      return TarType::kFile;
    case '1':
      return TarType::kHardlink;
    case '2':
      return TarType::kSymlink;
    case '3':
      return TarType::kCharDevice;
    case '4':
      return TarType::kBlockDevice;
    case '5':
      return TarType::kDirectory;
    case '6':
      return TarType::kFifo;
    default:
      return std::nullopt;
  }
}

}  // namespace

Status TarParser::fail(Error error) {
  state_ = State::kFailed;
  error_ = error;
  return std::unexpected(std::move(error));
}

Status TarParser::feed(std::string_view bytes) {
  if (state_ == State::kFailed) return std::unexpected(*error_);
  while (!bytes.empty() && state_ != State::kEnd) {
    Status status;
    size_t take = 0;
    switch (state_) {
      case State::kHeader:
        take = std::min(kBlockSize - block_fill_, bytes.size());
        std::memcpy(block_.data() + block_fill_, bytes.data(), take);
        block_fill_ += take;
        offset_ += take;
        if (block_fill_ == kBlockSize) {
          block_fill_ = 0;
          status = parse_header();
        }
        break;
      case State::kExtension:
        take = static_cast<size_t>(std::min<uint64_t>(ext_left_, bytes.size()));
        ext_data_.append(bytes.data(), take);
        ext_left_ -= take;
        offset_ += take;
        if (ext_left_ == 0) status = finish_extension();
        break;
      case State::kData:
        take = static_cast<size_t>(std::min<uint64_t>(data_left_, bytes.size()));
        data_left_ -= take;
        offset_ += take;
        status = visitor_.on_data(current_, bytes.substr(0, take));
        if (status && data_left_ == 0) {
          status = visitor_.on_entry_end(current_);
          pad_left_ = padding_for(current_.size);
          state_ = pad_left_ == 0 ? State::kHeader : State::kPadding;
        }
        break;
      case State::kPadding:
        take = static_cast<size_t>(std::min<uint64_t>(pad_left_, bytes.size()));
        pad_left_ -= take;
        offset_ += take;
        if (pad_left_ == 0) state_ = State::kHeader;
        break;
      case State::kEnd:
      case State::kFailed:
        break;
    }
    if (!status) return fail(std::move(status.error()));
    bytes.remove_prefix(take);
  }
  return {};
}

Status TarParser::finish() {
  switch (state_) {
    case State::kFailed:
      return std::unexpected(*error_);
    case State::kEnd:
      return {};
    case State::kHeader:
      if (block_fill_ != 0) {
        return error(ErrorKind::kCorruption,
                     "truncated tar stream: it ends {} bytes into the header block at offset {}",
                     block_fill_, offset_ - block_fill_);
      }
      break;
    case State::kExtension:
      return error(ErrorKind::kCorruption,
                   "truncated tar stream: it ends {} bytes short of the end of the extended "
                   "header at offset {}",
                   ext_left_, ext_offset_);
    case State::kData:
      return error(ErrorKind::kCorruption,
                   "truncated tar stream: it ends {} bytes short of the end of the data of '{}' "
                   "(header at offset {})",
                   data_left_, printable(current_.name), current_.header_offset);
    case State::kPadding:
      break;  // after an entry's data: tolerated, see the top of the file
  }
  if (ext_pending_) {
    return error(ErrorKind::kCorruption,
                 "truncated tar stream: it ends after the extended header at offset {}, before "
                 "the entry it belongs to",
                 entry_start_);
  }
  return {};
}

Status TarParser::parse_header() {
  const uint64_t header_offset = offset_ - kBlockSize;
  if (std::ranges::all_of(block_, [](char c) { return c == '\0'; })) {
    if (ext_pending_) {
      return error(ErrorKind::kCorruption,
                   "tar end-of-archive block at offset {} follows the extended header at offset "
                   "{} instead of its entry",
                   header_offset, entry_start_);
    }
    end_marker_ = true;
    state_ = State::kEnd;
    return {};
  }

  // The checksum field counts as eight spaces. Some old tars summed signed chars.
  int64_t unsigned_sum = 8 * ' ';
  int64_t signed_sum = 8 * ' ';
  for (size_t i = 0; i < kBlockSize; ++i) {
    if (i >= kChecksum.offset && i < kChecksum.offset + kChecksum.length) continue;
    unsigned_sum += static_cast<unsigned char>(block_[i]);
    signed_sum += static_cast<signed char>(block_[i]);
  }
  const auto checksum = parse_number(raw_field(block_, kChecksum));
  if (!checksum || (*checksum != unsigned_sum && *checksum != signed_sum)) {
    return error(ErrorKind::kCorruption, "bad tar header checksum at offset {} (not a tar header)",
                 header_offset);
  }

  const char typeflag = block_[kTypeflag];
  switch (typeflag) {
    case 'x':
    case 'g':
    case 'L':
    case 'K': {
      const auto size = parse_number(raw_field(block_, kSize));
      if (!size || *size < 0 || static_cast<uint64_t>(*size) > kMaxExtensionSize) {
        return error(ErrorKind::kCorruption,
                     "tar extended header '{}' at offset {} has an impossible size (limit {} "
                     "bytes)",
                     typeflag, header_offset, kMaxExtensionSize);
      }
      return begin_extension(typeflag, static_cast<uint64_t>(*size), header_offset);
    }
    default:
      return begin_entry(typeflag, header_offset);
  }
}

Status TarParser::begin_extension(char typeflag, uint64_t size, uint64_t header_offset) {
  if (typeflag != 'g' && !ext_pending_) {
    ext_pending_ = true;
    entry_start_ = header_offset;
  }
  ext_type_ = typeflag;
  ext_offset_ = header_offset;
  ext_left_ = size;
  ext_data_.clear();
  ext_data_.reserve(size);
  state_ = State::kExtension;
  if (size == 0) return finish_extension();
  return {};
}

Status TarParser::finish_extension() {
  switch (ext_type_) {
    case 'L':
      long_name_ = std::string(string_field(ext_data_));
      break;
    case 'K':
      long_link_ = std::string(string_field(ext_data_));
      break;
    case 'x':
    case 'g':
      if (auto status = parse_pax(ext_data_, ext_type_ == 'g'); !status) return status;
      break;
    default:
      break;
  }
  pad_left_ = padding_for(ext_data_.size());
  state_ = pad_left_ == 0 ? State::kHeader : State::kPadding;
  ext_data_.clear();
  if (ext_data_.capacity() > 64 * 1024) ext_data_.shrink_to_fit();  // don't keep a hostile 1 MiB
  return {};
}

// Records are "LEN key=value\n", LEN counting the whole record in decimal. A NUL ends the list
// (some writers pad with them).
Status TarParser::parse_pax(std::string_view records, bool global) {
  PaxValues& into = global ? pax_global_ : pax_;
  size_t pos = 0;
  while (pos < records.size() && records[pos] != '\0') {
    const auto malformed = [&](std::string_view why) {
      return error(ErrorKind::kCorruption,
                   "malformed PAX record at byte {} of the extended header at offset {}: {}", pos,
                   ext_offset_, why);
    };
    const size_t space = records.find(' ', pos);
    if (space == std::string_view::npos) return malformed("no length");
    const auto length =
        parse_decimal(records.substr(pos, space - pos), std::numeric_limits<uint64_t>::max());
    if (!length) return malformed("bad length");
    if (*length < 5 || *length > records.size() - pos || *length <= space - pos + 1) {
      return malformed("length out of range");
    }
    const std::string_view record = records.substr(pos, *length);
    if (record.back() != '\n') return malformed("no newline at the end");
    const std::string_view keyword_value =
        record.substr(space - pos + 1, record.size() - (space - pos + 1) - 1);
    const size_t equals = keyword_value.find('=');
    if (equals == std::string_view::npos || equals == 0) return malformed("no keyword=value");
    const std::string_view keyword = keyword_value.substr(0, equals);
    const std::string_view value = keyword_value.substr(equals + 1);

    if (value.empty()) {
      if (global) {
        if (keyword == "path") into.path.reset();
        if (keyword == "linkpath") into.linkpath.reset();
        if (keyword == "uname") into.uname.reset();
        if (keyword == "gname") into.gname.reset();
        if (keyword == "uid") into.uid.reset();
        if (keyword == "gid") into.gid.reset();
        if (keyword == "mtime") into.mtime.reset();
        if (keyword == "size") into.size.reset();
      }
    } else if (keyword == "path") {
      into.path = std::string(value);
    } else if (keyword == "linkpath") {
      into.linkpath = std::string(value);
    } else if (keyword == "uname") {
      into.uname = std::string(value);
    } else if (keyword == "gname") {
      into.gname = std::string(value);
    } else if (keyword == "uid" || keyword == "gid") {
      const auto id = parse_decimal(value, std::numeric_limits<int64_t>::max());
      if (!id) return malformed(fmt::format("bad {} '{}'", keyword, printable(value)));
      (keyword == "uid" ? into.uid : into.gid) = static_cast<int64_t>(*id);
    } else if (keyword == "size") {
      const auto size = parse_decimal(value, kMaxEntrySize);
      if (!size) return malformed(fmt::format("impossible size '{}'", printable(value)));
      into.size = *size;
    } else if (keyword == "mtime") {
      const auto mtime = parse_pax_time(value);
      if (!mtime) return malformed(fmt::format("bad mtime '{}'", printable(value)));
      into.mtime = *mtime;
    }
    // Other keywords (hdrcharset, atime, ctime, comment, SCHILY.*, ...) carry nothing we use.
    pos += *length;
  }
  return {};
}

Status TarParser::begin_entry(char typeflag, uint64_t header_offset) {
  const auto type = entry_type(typeflag);
  if (!type) {
    const auto c = static_cast<unsigned char>(typeflag);
    return error(ErrorKind::kCorruption, "unsupported tar entry type '{}' at offset {}",
                 c >= 0x20 && c < 0x7f ? std::string(1, typeflag) : fmt::format("\\x{:02x}", c),
                 header_offset);
  }

  int64_t numbers[7];
  const std::pair<Field, const char*> fields[7] = {
      {kMode, "mode"},   {kUid, "uid"},           {kGid, "gid"},          {kSize, "size"},
      {kMtime, "mtime"}, {kDevmajor, "devmajor"}, {kDevminor, "devminor"}};
  for (size_t i = 0; i < std::size(fields); ++i) {
    const auto value = parse_number(raw_field(block_, fields[i].first));
    if (!value) {
      return error(ErrorKind::kCorruption, "bad {} field in the tar header at offset {}",
                   fields[i].second, header_offset);
    }
    numbers[i] = *value;
  }
  const auto [mode, uid, gid, size, mtime, devmajor, devminor] = numbers;

  TarHeader h;
  h.header_offset = ext_pending_ ? entry_start_ : header_offset;
  h.data_offset = offset_;
  h.type = *type;
  h.mode = static_cast<uint32_t>(mode & 07777);
  h.uid = uid;
  h.gid = gid;
  h.mtime = mtime;
  if (size < 0 || static_cast<uint64_t>(size) > kMaxEntrySize) {
    return error(ErrorKind::kCorruption, "impossible size {} in the tar header at offset {}", size,
                 header_offset);
  }
  h.size = static_cast<uint64_t>(size);
  if (h.type == TarType::kCharDevice || h.type == TarType::kBlockDevice) {
    constexpr int64_t kMaxDev = std::numeric_limits<uint32_t>::max();
    if (devmajor < 0 || devmajor > kMaxDev || devminor < 0 || devminor > kMaxDev) {
      return error(ErrorKind::kCorruption,
                   "impossible device number in the tar header at offset {}", header_offset);
    }
    h.devmajor = static_cast<uint32_t>(devmajor);
    h.devminor = static_cast<uint32_t>(devminor);
  }
  h.uname = string_field(block_, kUname);
  h.gname = string_field(block_, kGname);

  // The ustar prefix; GNU headers ("ustar  \0") use those bytes for other things.
  const std::string_view prefix = string_field(block_, kPrefix);
  if (raw_field(block_, kMagic) == std::string_view("ustar\0", 6) && !prefix.empty()) {
    h.name = fmt::format("{}/{}", prefix, string_field(block_, kName));
  } else {
    h.name = string_field(block_, kName);
  }
  h.linkname = string_field(block_, kLinkname);
  if (long_name_) h.name = std::move(*long_name_);
  if (long_link_) h.linkname = std::move(*long_link_);
  for (const PaxValues* pax : {&pax_global_, &pax_}) {
    if (pax->path) h.name = *pax->path;
    if (pax->linkpath) h.linkname = *pax->linkpath;
    if (pax->uname) h.uname = *pax->uname;
    if (pax->gname) h.gname = *pax->gname;
    if (pax->uid) h.uid = *pax->uid;
    if (pax->gid) h.gid = *pax->gid;
    if (pax->mtime) h.mtime = *pax->mtime;
    if (pax->size) h.size = *pax->size;
  }
  ext_pending_ = false;
  long_name_.reset();
  long_link_.reset();
  pax_ = {};

  if (typeflag == '\0' && h.name.ends_with('/')) h.type = TarType::kDirectory;
  if (!is_regular(typeflag) || h.type != TarType::kFile) h.size = 0;

  if (is_unsafe_name(h.name)) {
    return error(ErrorKind::kCorruption, "unsafe name '{}' in the tar entry at offset {}",
                 printable(h.name), h.header_offset);
  }
  if (h.type == TarType::kHardlink && is_unsafe_name(h.linkname)) {
    return error(ErrorKind::kCorruption,
                 "unsafe hardlink target '{}' in the tar entry at offset {}", printable(h.linkname),
                 h.header_offset);
  }

  current_ = std::move(h);
  if (auto status = visitor_.on_entry(current_); !status) return status;
  if (current_.size == 0) {
    state_ = State::kHeader;
    return visitor_.on_entry_end(current_);
  }
  data_left_ = current_.size;
  state_ = State::kData;
  return {};
}

}  // namespace dupfs::chain

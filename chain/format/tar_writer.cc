#include "chain/format/tar_writer.h"

#include <fmt/core.h>

#include <cstring>
#include <utility>
#include <vector>

namespace dupfs::chain {
namespace {

constexpr size_t kNameLength = 100;
constexpr size_t kLinkLength = 100;
constexpr size_t kOwnerLength = 32;

// Length of the valid UTF-8 sequence starting at s[i], or 0 when none starts there.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

bool is_ascii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

// Python: os.fsdecode(bytes).encode("ascii", "replace"): every decoded character that is not
// ASCII (a valid multi-byte sequence, or one undecodable byte) becomes one '?'.
std::string ascii_replace(std::string_view s) {
  if (is_ascii(s)) return std::string(s);
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_sequence_length(s, i);
    if (n == 1) {
      out += s[i];
    } else {
      out += '?';
    }
    i += n == 0 ? 1 : n;
  }
  return out;
}

// tarfile.stn: the bytes truncated or NUL-padded to `length`.
void put_string(char* field, size_t length, std::string_view value) {
  std::memcpy(field, value.data(), std::min(length, value.size()));
}

// tarfile.itn for values known to fit: zero-padded octal digits and a NUL.
void put_octal(char* field, size_t digits, uint64_t value) {
  std::string text = fmt::format("{:0{}o}", value, digits - 1);
  std::memcpy(field, text.data(), digits - 1);
  field[digits - 1] = '\0';
}

char type_flag(TarType t) {
  switch (t) {
    case TarType::kFile:
      return '0';
    case TarType::kHardlink:
      return '1';
    case TarType::kSymlink:
      return '2';
    case TarType::kCharDevice:
      return '3';
    case TarType::kBlockDevice:
      return '4';
    case TarType::kDirectory:
      return '5';
    case TarType::kFifo:
      return '6';
  }
  return '0';
}

struct UstarFields {
  std::string_view name, linkname, uname, gname;
  char typeflag = '0';
  uint32_t mode = 0;
  uint64_t uid = 0, gid = 0, size = 0, mtime = 0;
  bool device = false;
  uint32_t devmajor = 0, devminor = 0;
};

// tarfile.TarInfo._create_header(info, USTAR_FORMAT, "ascii", "replace").
std::string ustar_block(const UstarFields& f) {
  std::string block(kTarBlockSize, '\0');
  char* b = block.data();
  put_string(b + 0, 100, ascii_replace(f.name));
  put_octal(b + 100, 8, f.mode & 07777);
  put_octal(b + 108, 8, f.uid);
  put_octal(b + 116, 8, f.gid);
  put_octal(b + 124, 12, f.size);
  put_octal(b + 136, 12, f.mtime);
  std::memset(b + 148, ' ', 8);
  b[156] = f.typeflag;
  put_string(b + 157, 100, ascii_replace(f.linkname));
  std::memcpy(b + 257,
              "ustar\0"
              "00",
              8);
  put_string(b + 265, 32, ascii_replace(f.uname));
  put_string(b + 297, 32, ascii_replace(f.gname));
  if (f.device) {
    put_octal(b + 329, 8, f.devmajor);
    put_octal(b + 337, 8, f.devminor);
  }
  unsigned sum = 0;
  for (unsigned char c : block) sum += c;
  std::string chk = fmt::format("{:06o}", sum);
  std::memcpy(b + 148, chk.data(), 6);
  b[154] = '\0';  // b[155] stays ' '
  return block;
}

// tarfile.TarInfo._create_pax_generic_header for type 'x'.
std::string pax_header(const std::vector<std::pair<std::string, std::string>>& records_in) {
  bool binary = false;
  for (const auto& [key, value] : records_in) {
    if (!is_valid_utf8(value)) binary = true;
  }
  std::string records;
  if (binary) records += "21 hdrcharset=BINARY\n";
  for (const auto& [key, value] : records_in) {
    size_t l = key.size() + value.size() + 3;
    size_t n = 0, p = 0;
    for (;;) {
      n = l + std::to_string(p).size();
      if (n == p) break;
      p = n;
    }
    records += std::to_string(p) + " " + key + "=" + value + "\n";
  }
  UstarFields f;
  f.name = "././@PaxHeader";
  f.typeflag = 'x';
  f.size = records.size();
  std::string out = ustar_block(f);
  out += records;
  out.append(tar_padding(records.size()), '\0');
  return out;
}

}  // namespace

bool is_valid_utf8(std::string_view bytes) {
  for (size_t i = 0; i < bytes.size();) {
    size_t n = utf8_sequence_length(bytes, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string tar_header(const TarMember& m) {
  std::vector<std::pair<std::string, std::string>> pax;
  // Strings: not ASCII, or longer than the field (PAX "path", "linkpath", "uname", "gname").
  const auto check_string = [&](const char* key, const std::string& value, size_t length) {
    if (!is_ascii(value) || value.size() > length) pax.emplace_back(key, value);
  };
  check_string("path", m.name, kNameLength);
  check_string("linkpath", m.linkname, kLinkLength);
  check_string("uname", m.uname, kOwnerLength);
  check_string("gname", m.gname, kOwnerLength);

  UstarFields f;
  f.name = m.name;
  f.linkname = m.linkname;
  f.uname = m.uname;
  f.gname = m.gname;
  f.typeflag = type_flag(m.type);
  f.mode = m.mode;
  f.device = m.type == TarType::kCharDevice || m.type == TarType::kBlockDevice;
  f.devmajor = m.devmajor;
  f.devminor = m.devminor;
  // Numbers that do not fit their octal field: 0 in the field, the decimal value in PAX.
  const auto check_number = [&](const char* key, int64_t value, size_t digits, uint64_t& field) {
    const uint64_t limit = uint64_t{1} << (3 * (digits - 1));
    if (value < 0 || static_cast<uint64_t>(value) >= limit) {
      field = 0;
      pax.emplace_back(key, std::to_string(value));
    } else {
      field = static_cast<uint64_t>(value);
    }
  };
  check_number("uid", m.uid, 8, f.uid);
  check_number("gid", m.gid, 8, f.gid);
  check_number("size", static_cast<int64_t>(m.size), 12, f.size);
  check_number("mtime", m.mtime, 12, f.mtime);

  std::string out;
  if (!pax.empty()) out = pax_header(pax);
  out += ustar_block(f);
  return out;
}

std::string tar_volume_footer(uint64_t offset) {
  return std::string(kTarRecordSize - offset % kTarRecordSize, '\0');
}

std::string tar_archive_end(uint64_t offset) {
  uint64_t end = offset + 2 * kTarBlockSize;
  uint64_t pad = (kTarRecordSize - end % kTarRecordSize) % kTarRecordSize;
  return std::string(2 * kTarBlockSize + pad, '\0');
}

namespace {

std::string joined(const Index& index) {
  std::string out;
  for (size_t i = 0; i < index.size(); ++i) {
    if (i > 0) out += '/';
    out += index[i];
  }
  return out;
}

std::string_view prefix_of(EntryKind kind) {
  switch (kind) {
    case EntryKind::kSnapshot:
      return "snapshot";
    case EntryKind::kDiff:
      return "diff";
    case EntryKind::kDeleted:
      return "deleted";
    case EntryKind::kMultivolSnapshot:
      return "multivol_snapshot";
    case EntryKind::kMultivolDiff:
      return "multivol_diff";
    case EntryKind::kSignature:
      return "signature";
  }
  return "snapshot";
}

}  // namespace

std::string difftar_member_name(EntryKind kind, const Index& index, bool directory, int64_t chunk) {
  // duplicity: ROPath.get_tarinfo names the root "." ("./" as a directory), then
  // DeltaTarBlockIter prefixes "<kind>/" (or "multivol_<kind>/" with "/<k>" appended).
  std::string path = index.empty() ? "." : joined(index);
  if (directory && kind != EntryKind::kDeleted) path += '/';
  std::string out(prefix_of(kind));
  out += '/';
  out += path;
  if (kind == EntryKind::kMultivolSnapshot || kind == EntryKind::kMultivolDiff) {
    out += '/';
    out += std::to_string(chunk);
  }
  return out;
}

std::string sigtar_member_name(EntryKind kind, const Index& index, bool directory) {
  // duplicity: "<kind>/" + b"/".join(index); tarfile appends '/' to directory names.
  std::string out(prefix_of(kind));
  out += '/';
  out += joined(index);
  if (directory && kind != EntryKind::kDeleted && out.back() != '/') out += '/';
  return out;
}

}  // namespace dupfs::chain

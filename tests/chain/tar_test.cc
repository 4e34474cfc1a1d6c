// Tests for the streaming tar parser: hand-built headers for the corner cases, and real archives
// written by Python's tarfile and GNU tar, cross-checked against Python's own reading of them.
#include "chain/format/tar.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace dupfs::chain {
namespace {

using ::testing::HasSubstr;

// ---------------------------------------------------------------------------------------------
// Building tar bytes by hand.

struct FieldPos {
  size_t offset;
  size_t length;
};
const std::map<std::string, FieldPos> kFields = {
    {"name", {0, 100}},     {"mode", {100, 8}},     {"uid", {108, 8}},
    {"gid", {116, 8}},      {"size", {124, 12}},    {"mtime", {136, 12}},
    {"chksum", {148, 8}},   {"typeflag", {156, 1}}, {"linkname", {157, 100}},
    {"magic", {257, 6}},    {"version", {263, 2}},  {"uname", {265, 32}},
    {"gname", {297, 32}},   {"devmajor", {329, 8}}, {"devminor", {337, 8}},
    {"prefix", {345, 155}},
};

enum class Magic { kUstar, kGnu, kV7 };

struct Spec {
  std::string name{};
  char type = '0';
  int64_t mode = 0644;
  int64_t uid = 1000;
  int64_t gid = 1000;
  int64_t mtime = 1700000000;
  uint64_t size = 0;
  std::string linkname{};
  std::string uname = "alice";
  std::string gname = "staff";
  Magic magic = Magic::kUstar;
  std::string prefix{};
  int64_t devmajor = 0;
  int64_t devminor = 0;
  std::map<std::string, std::string> raw{};  // field -> exact bytes (rest of the field NUL)
  bool signed_checksum = false;
  int checksum_error = 0;  // added to the correct checksum
};

void put(std::string& block, const std::string& field, std::string_view bytes) {
  const FieldPos f = kFields.at(field);
  ASSERT_LE(bytes.size(), f.length) << field;
  std::fill_n(block.begin() + static_cast<ptrdiff_t>(f.offset), f.length, '\0');
  std::copy(bytes.begin(), bytes.end(), block.begin() + static_cast<ptrdiff_t>(f.offset));
}

std::string octal(int64_t value, size_t width) {
  std::string digits = fmt::format("{:0{}o}", value, width - 1);
  return digits + '\0';
}

// GNU base-256: big-endian two's complement, first byte 0x80 (positive) or 0xff (negative).
std::string base256(int64_t value, size_t width) {
  std::string out(width, '\0');
  for (size_t i = width; i-- > 1;) {
    out[i] = static_cast<char>(value & 0xff);
    value >>= 8;  // arithmetic: negative numbers fill with 0xff
  }
  out[0] = static_cast<char>(value < 0 ? 0xff : 0x80);
  return out;
}

std::string header(const Spec& s) {
  std::string b(512, '\0');
  put(b, "name", s.name);
  put(b, "mode", octal(s.mode, 8));
  put(b, "uid", octal(s.uid, 8));
  put(b, "gid", octal(s.gid, 8));
  put(b, "size", octal(static_cast<int64_t>(s.size), 12));
  put(b, "mtime", octal(s.mtime, 12));
  b[156] = s.type;
  put(b, "linkname", s.linkname);
  if (s.magic == Magic::kUstar) {
    put(b, "magic", std::string_view("ustar\0", 6));
    put(b, "version", "00");
  } else if (s.magic == Magic::kGnu) {
    put(b, "magic", "ustar ");
    put(b, "version", std::string_view(" \0", 2));
  }
  if (s.magic != Magic::kV7) {
    put(b, "uname", s.uname);
    put(b, "gname", s.gname);
    put(b, "devmajor", octal(s.devmajor, 8));
    put(b, "devminor", octal(s.devminor, 8));
    put(b, "prefix", s.prefix);
  }
  for (const auto& [field, bytes] : s.raw) put(b, field, bytes);
  put(b, "chksum", "        ");
  int64_t sum = 0;
  for (char c : b) {
    sum += s.signed_checksum ? static_cast<signed char>(c) : static_cast<unsigned char>(c);
  }
  sum += s.checksum_error;
  put(b, "chksum", fmt::format("{:06o}", sum) + std::string("\0 ", 2));
  return b;
}

std::string padded(std::string data) {
  data.resize((data.size() + 511) / 512 * 512, '\0');
  return data;
}

// A header plus its data, padded; size is set from the data.
std::string entry(Spec s, const std::string& data = "") {
  s.size = data.size();
  return header(s) + padded(data);
}

std::string pax_record(const std::string& key, const std::string& value) {
  const size_t body = key.size() + value.size() + 3;  // ' ', '=', '\n'
  size_t length = body + 1;
  while (std::to_string(length).size() + body != length) ++length;
  return fmt::format("{} {}={}\n", length, key, value);
}

std::string pax_header(const std::string& records, char type = 'x') {
  return entry({.name = "././@PaxHeader", .type = type}, records);
}

std::string gnu_long(char type, const std::string& value) {
  return entry({.name = "././@LongLink", .type = type, .magic = Magic::kGnu}, value + '\0');
}

const std::string kEndMarker(1024, '\0');

std::string pattern(size_t n, unsigned seed = 1) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed * 7 + i / 256) & 0xff);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Recording what the parser reports.

struct Entry {
  TarHeader header;
  std::string data;
  bool ended = false;
};

class Recorder : public TarVisitor {
 public:
  Status on_entry(const TarHeader& h) override {
    if (!entries.empty() && !entries.back().ended) violations.push_back("on_entry before end");
    entries.push_back({h, "", false});
    return {};
  }
  Status on_data(const TarHeader& h, std::string_view piece) override {
    if (entries.empty() || entries.back().ended) violations.push_back("on_data outside entry");
    if (piece.empty()) violations.push_back("empty piece");
    if (h.name != entries.back().header.name) violations.push_back("on_data header changed");
    entries.back().data.append(piece);
    pieces.push_back(piece);
    return {};
  }
  Status on_entry_end(const TarHeader& h) override {
    if (entries.empty() || entries.back().ended) violations.push_back("on_entry_end twice");
    if (entries.back().data.size() != h.size) violations.push_back("on_entry_end early");
    entries.back().ended = true;
    return {};
  }

  std::vector<Entry> entries;
  std::vector<std::string_view> pieces;  // valid only while the fed buffer lives
  std::vector<std::string> violations;
};

struct Outcome {
  std::vector<Entry> entries;
  std::optional<Error> error;
  bool error_from_finish = false;
  bool at_end_marker = false;
  uint64_t offset = 0;
  std::vector<std::string> violations;

  const Entry* find(std::string_view name) const {
    for (const auto& e : entries) {
      if (e.header.name == name) return &e;
    }
    return nullptr;
  }
};

Outcome parse_pieces(const std::vector<std::string_view>& pieces) {
  Recorder recorder;
  TarParser parser(recorder);
  Outcome out;
  for (auto piece : pieces) {
    if (auto s = parser.feed(piece); !s) {
      out.error = s.error();
      break;
    }
  }
  if (!out.error) {
    if (auto s = parser.finish(); !s) {
      out.error = s.error();
      out.error_from_finish = true;
    }
  }
  out.entries = std::move(recorder.entries);
  out.violations = std::move(recorder.violations);
  out.at_end_marker = parser.at_end_marker();
  out.offset = parser.offset();
  return out;
}

Outcome parse(std::string_view stream, size_t chunk = 0) {
  std::vector<std::string_view> pieces;
  if (chunk == 0) chunk = std::max<size_t>(stream.size(), 1);
  for (size_t i = 0; i < stream.size(); i += chunk) pieces.push_back(stream.substr(i, chunk));
  return parse_pieces(pieces);
}

const char* type_name(TarType t) {
  switch (t) {
    case TarType::kFile:
      return "file";
    case TarType::kHardlink:
      return "hardlink";
    case TarType::kSymlink:
      return "symlink";
    case TarType::kCharDevice:
      return "chardev";
    case TarType::kBlockDevice:
      return "blockdev";
    case TarType::kDirectory:
      return "dir";
    case TarType::kFifo:
      return "fifo";
  }
  return "?";
}

// Everything observable, as text, for comparing two parses.
std::string describe(const Outcome& o) {
  std::ostringstream s;
  for (const auto& e : o.entries) {
    const auto& h = e.header;
    s << "name=" << h.name << " link=" << h.linkname << " type=" << type_name(h.type)
      << " mode=" << h.mode << " uid=" << h.uid << " gid=" << h.gid << " uname=" << h.uname
      << " gname=" << h.gname << " mtime=" << h.mtime << " size=" << h.size << " dev=" << h.devmajor
      << "," << h.devminor << " hdr@" << h.header_offset << " data@" << h.data_offset << " data#"
      << std::hash<std::string>{}(e.data) << "/" << e.data.size() << (e.ended ? " ended" : " open")
      << "\n";
  }
  if (o.error) {
    s << "error(" << kind_name(o.error->kind) << (o.error_from_finish ? ", finish" : ", feed")
      << "): " << o.error->message << "\n";
  }
  s << "end_marker=" << o.at_end_marker << " offset=" << o.offset;
  for (const auto& v : o.violations) s << "\nviolation: " << v;
  return s.str();
}

void expect_clean(const Outcome& o) {
  EXPECT_FALSE(o.error) << describe(o);
  EXPECT_TRUE(o.violations.empty()) << describe(o);
}

void expect_corruption(const Outcome& o, std::string_view substring) {
  ASSERT_TRUE(o.error) << describe(o);
  EXPECT_EQ(o.error->kind, ErrorKind::kCorruption) << describe(o);
  EXPECT_THAT(o.error->message, HasSubstr(std::string(substring))) << describe(o);
  EXPECT_TRUE(o.violations.empty()) << describe(o);
}

// ---------------------------------------------------------------------------------------------
// Hand-built streams.

TEST(TarParser, EmptyStreamIsComplete) {
  const Outcome o = parse("");
  expect_clean(o);
  EXPECT_TRUE(o.entries.empty());
  EXPECT_FALSE(o.at_end_marker);
  EXPECT_EQ(o.offset, 0u);
}

TEST(TarParser, RegularFileFieldsAndOffsets) {
  const std::string first = entry({.name = "snapshot/a.txt",
                                   .mode = 0100640,
                                   .uid = 1234,
                                   .gid = 5678,
                                   .mtime = 1700000123,
                                   .uname = "bob",
                                   .gname = "users"},
                                  "hello world");
  const std::string stream = first + entry({.name = "snapshot/b"}, "second") + kEndMarker;
  const Outcome o = parse(stream);
  expect_clean(o);
  ASSERT_EQ(o.entries.size(), 2u);
  const TarHeader& h = o.entries[0].header;
  EXPECT_EQ(h.name, "snapshot/a.txt");
  EXPECT_EQ(h.type, TarType::kFile);
  EXPECT_EQ(h.mode, 0640u);  // the file-type bits of the mode field are dropped
  EXPECT_EQ(h.uid, 1234);
  EXPECT_EQ(h.gid, 5678);
  EXPECT_EQ(h.uname, "bob");
  EXPECT_EQ(h.gname, "users");
  EXPECT_EQ(h.mtime, 1700000123);
  EXPECT_EQ(h.size, 11u);
  EXPECT_EQ(h.header_offset, 0u);
  EXPECT_EQ(h.data_offset, 512u);
  EXPECT_EQ(o.entries[0].data, "hello world");
  EXPECT_TRUE(o.entries[0].ended);
  EXPECT_EQ(o.entries[1].header.header_offset, first.size());
  EXPECT_EQ(o.entries[1].header.data_offset, first.size() + 512);
  EXPECT_EQ(o.entries[1].data, "second");
  EXPECT_TRUE(o.at_end_marker);
  EXPECT_EQ(o.offset, stream.size() - 512);  // the second zero block is not read
}

TEST(TarParser, ModeKeepsSetuidSetgidSticky) {
  const Outcome o = parse(entry({.name = "s", .mode = 0107755}));
  expect_clean(o);
  ASSERT_EQ(o.entries.size(), 1u);
  EXPECT_EQ(o.entries[0].header.mode, 07755u);
}

TEST(TarParser, UstarPrefixIsJoinedToName) {
  const std::string prefix = "snapshot/" + std::string(120, 'p');
  const Outcome o = parse(entry({.name = "leaf.txt", .prefix = prefix}, "x") +
                          entry({.name = "no-prefix"}, "y") + kEndMarker);
  expect_clean(o);
  ASSERT_EQ(o.entries.size(), 2u);
  EXPECT_EQ(o.entries[0].header.name, prefix + "/leaf.txt");
  EXPECT_EQ(o.entries[1].header.name, "no-prefix");
}

TEST(TarParser, FullLengthNameFieldsWithoutTerminator) {
  const std::string name(100, 'n');
  const std::string prefix(155, 'p');
  const std::string link(100, 'l');
  const Outcome o = parse(entry({.name = name, .prefix = prefix}) +
                          entry({.name = "sym", .type = '2', .linkname = link}));
  expect_clean(o);
  ASSERT_EQ(o.entries.size(), 2u);
  EXPECT_EQ(o.entries[0].header.name, prefix + "/" + name);
  EXPECT_EQ(o.entries[1].header.linkname, link);
}

TEST(TarParser, GnuMagicDoesNotUsePrefixBytes) {
  // GNU headers keep atime/ctime where ustar has its prefix.
  Spec s{.name = "snapshot/gnu", .magic = Magic::kGnu};
  s.raw["prefix"] = octal(1700000000, 12) + octal(1700000001, 12);
  const Outcome o = parse(entry(s, "data"));
  expect_clean(o);
  ASSERT_EQ(o.entries.size(), 1u);
  EXPECT_EQ(o.entries[0].header.name, "snapshot/gnu");
}

TEST(TarParser, GnuLongNameAndLongLink) {
  const std::string long_name = "snapshot/" + std::string(150, 'n') + "/file";
  const std::string long_target = "/somewhere/" + std::string(180, 't');
  const std::string stream =
      entry({.name = "snapshot/first"}, "1") + gnu_long('L', long_name) +
      entry({.name = long_name.substr(0, 100), .magic = Magic::kGnu}, "long data") +
      gnu_long('K', long_target) + gnu_long('L', long_name + "-link") +
      entry({.name = "truncated", .type = '2', .linkname = long_target.substr(0, 100)}) +
      kEndMarker;
  const Outcome o = parse(stream);
  expect_clean(o);
  ASSERT_EQ(o.entries.size(), 3u);
  EXPECT_EQ(o.entries[1].header.name, long_name);
  EXPECT_EQ(o.entries[1].data, "long data");
  EXPECT_EQ(o.entries[1].header.header_offset, 1024u);  // the 'L' header
  EXPECT_EQ(o.entries[1].header.data_offset, 1024u + 1024 + 512);
  EXPECT_EQ(o.entries[2].header.name, long_name + "-link");
  EXPECT_EQ(o.entries[2].header.type, TarType::kSymlink);
  EXPECT_EQ(o.entries[2].header.linkname, long_target);
  EXPECT_EQ(o.entries[2].header.header_offset, 3072u);  // the 'K' header
}

TEST(TarParser, PaxOverridesLongNameAndUstarFields) {
  const std::string records = pax_record("path", "snapshot/pax-name") +
                              pax_record("linkpath", "pax-target") + pax_record("uid", "3000000") +
                              pax_record("gid", "3000001") +
                              pax_record("uname", "longusername-" + std::string(40, 'u')) +
                              pax_record("gname", "g") + pax_record("mtime", "1700000000.75") +
                              pax_record("atime", "1.5") + pax_record("comment", "ignored");
  const std::string stream =
      gnu_long('L', "snapshot/gnu-name") + pax_header(records) +
      entry({.name = "ustar-name", .type = '2', .uid = 0, .gid = 0, .prefix = "pre"}) +
      entry({.name = "snapshot/plain"}, "p") + kEndMarker;
  const Outcome o = parse(stream);
  expect_clean(o);
  ASSERT_EQ(o.entries.size(), 2u);
  const TarHeader& h = o.entries[0].header;
  EXPECT_EQ(h.name, "snapshot/pax-name");
  EXPECT_EQ(h.linkname, "pax-target");
  EXPECT_EQ(h.uid, 3000000);
  EXPECT_EQ(h.gid, 3000001);
  EXPECT_EQ(h.uname, "longusername-" + std::string(40, 'u'));
  EXPECT_EQ(h.gname, "g");
  EXPECT_EQ(h.mtime, 1700000000);
  EXPECT_EQ(h.header_offset, 0u);
  // 'x' values apply to one entry only.
  const TarHeader& next = o.entries[1].header;
  EXPECT_EQ(next.name, "snapshot/plain");
  EXPECT_EQ(next.uid, 1000);
  EXPECT_EQ(next.uname, "alice");
}

TEST(TarParser, PaxBinaryNameKeepsRawBytes) {
  const std::string name = "snapshot/bad\xff\xfename.txt";
  const std::string records = pax_record("hdrcharset", "BINARY") + pax_record("path", name);
  const Outcome o = parse(pax_header(records) + entry({.name = "snapshot/bad??name.txt"}, "b"));
  expect_clean(o);
  ASSERT_EQ(o.entries.size(), 1u);
  EXPECT_EQ(o.entries[0].header.name, name);
  EXPECT_EQ(o.entries[0].data, "b");
}

TEST(TarParser, PaxMtimeIsFlooredToWholeSeconds) {
  const std::vector<std::pair<std::string, int64_t>> cases = {{"1700000000", 1700000000},
                                                              {"1700000000.123", 1700000000},
                                                              {"1700000000.999999999", 1700000000},
                                                              {"-1.5", -2},
                                                              {"-2", -2},
                                                              {"-0.5", -1},
                                                              {"-3.000", -3},
                                                              {"5.", 5},
                                                              {"0", 0}};
  for (const auto& [value, expected] : cases) {
    SCOPED_TRACE(value);
    const Outcome o = parse(pax_header(pax_record("mtime", value)) + entry({.name = "f"}));
    expect_clean(o);
    ASSERT_EQ(o.entries.size(), 1u);
    EXPECT_EQ(o.entries[0].header.mtime, expected);
  }
}

TEST(TarParser, PaxSizeReplacesHeaderSize) {
  // Header says 0 (as when the real size does not fit); the PAX size governs the data.
  Spec s{.name = "snapshot/big"};
  const std::string data = pattern(1500);
  const std::string stream = pax_header(pax_record("size", "1500")) + header(s) + padded(data) +
                             entry({.name = "after"}, "tail");
  const Outcome o = parse(stream);
  expect_clean(o);
  ASSERT_EQ(o.entries.size(), 2u);
  EXPECT_EQ(o.entries[0].header.size, 1500u);
  EXPECT_EQ(o.entries[0].data, data);
  EXPECT_EQ(o.entries[1].data, "tail");
}

TEST(TarParser, GlobalPaxAppliesToAllFollowingEntries) {
  const std::string stream =
      entry({.name = "before"}) +
      pax_header(
          pax_record("uname", "global") + pax_record("uid", "42") + pax_record("comment", "x"),
          'g') +
      entry({.name = "one"}) +
      pax_header(pax_record("uname", "local") + pax_record("gid", "7") + pax_record("uid", "") +
                 pax_record("mtime", "5") + pax_record("mtime", "")) +
      entry({.name = "two"}) + entry({.name = "three"}) +
      pax_header(pax_record("uname", "") + pax_record("mtime", "99"), 'g') +
      entry({.name = "four"}) + kEndMarker;
  const Outcome o = parse(stream);
  expect_clean(o);
  ASSERT_EQ(o.entries.size(), 5u);
  const auto& e = o.entries;
  EXPECT_EQ(e[0].header.uname, "alice");
  EXPECT_EQ(e[0].header.uid, 1000);
  EXPECT_EQ(e[1].header.uname, "global");
  EXPECT_EQ(e[1].header.uid, 42);
  EXPECT_EQ(e[1].header.header_offset, 512u + 1024);  // a 'g' header belongs to no entry
  EXPECT_EQ(e[2].header.uname, "local");              // 'x' beats 'g'
  EXPECT_EQ(e[2].header.uid, 42);                     // empty 'x' value: ignored
  EXPECT_EQ(e[2].header.gid, 7);
  EXPECT_EQ(e[2].header.mtime, 5);
  EXPECT_EQ(e[3].header.uname, "global");
  EXPECT_EQ(e[3].header.gid, 1000);
  EXPECT_EQ(e[4].header.uname, "alice");  // empty 'g' value removes the global value
  EXPECT_EQ(e[4].header.uid, 42);
  EXPECT_EQ(e[4].header.mtime, 99);
}

TEST(TarParser, MalformedPaxRecordsAreCorruption) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"100 path=a\n", "out of range"},                    // length beyond the data
      {"8 patha\n", "keyword=value"},                      // no '='
      {"7 =abc\n", "keyword=value"},                       // empty keyword
      {"3 a\n", "out of range"},                           // shorter than "5 x=\n"
      {"x path=a\n", "bad length"},                        // not a number
      {"10 path=ab!", "newline"},                          // no final newline
      {"8path=a\n", "no length"},                          // no space
      {"10 uid=-1\n", "bad uid"},                          // negative id
      {"11 gid=1x2\n", "bad gid"},                         // not a number
      {"13 mtime=1e9\n", "bad mtime"},                     // exponent
      {"26 size=18014398509481985\n", "impossible size"},  // 2^54 + 1
  };
  for (const auto& [records, message] : cases) {
    SCOPED_TRACE(records);
    const Outcome o = parse(entry({.name = "ok"}) + pax_header(records) + entry({.name = "f"}));
    expect_corruption(o, message);
    EXPECT_THAT(o.error->message, HasSubstr("offset 512"));
    ASSERT_EQ(o.entries.size(), 1u);
    EXPECT_FALSE(o.error_from_finish);
  }
}

TEST(TarParser, PaxRecordsMayEndWithNulPadding) {
  const std::string records = pax_record("path", "snapshot/n") + std::string(10, '\0');
  const Outcome o = parse(pax_header(records) + entry({.name = "x"}));
  expect_clean(o);
  ASSERT_EQ(o.entries.size(), 1u);
  EXPECT_EQ(o.entries[0].header.name, "snapshot/n");
}

TEST(TarParser, Base256NumericFields) {
  Spec s{.name = "snapshot/b256", .magic = Magic::kGnu};
  s.raw["size"] = base256(5, 12);
  s.raw["uid"] = base256(3000000, 8);
  s.raw["gid"] = base256(int64_t{1} << 40, 8);
  s.raw["mtime"] = base256(-1, 12);
  Spec t{.name = "snapshot/neg", .magic = Magic::kGnu};
  t.raw["mtime"] = base256(-3600, 12);
  const Outcome o = parse(header(s) + padded("12345") + entry(t) + kEndMarker);
  expect_clean(o);
  ASSERT_EQ(o.entries.size(), 2u);
  EXPECT_EQ(o.entries[0].header.size, 5u);
  EXPECT_EQ(o.entries[0].data, "12345");
  EXPECT_EQ(o.entries[0].header.uid, 3000000);
  EXPECT_EQ(o.entries[0].header.gid, int64_t{1} << 40);
  EXPECT_EQ(o.entries[0].header.mtime, -1);
  EXPECT_EQ(o.entries[1].header.mtime, -3600);
}

TEST(TarParser, OctalFieldsWithSpacesAndTerminators) {
  Spec s{.name = "snapshot/o"};
  s.raw["mode"] = "   755 ";  // leading spaces, space terminated, no NUL
  s.raw["uid"] = std::string("17\0\0\0\0\0\0", 8);
  s.raw["gid"] = "";  // empty: 0
  s.raw["size"] = "00000000003 ";
  s.raw["mtime"] = "12345670123";
  const Outcome o = parse(header(s) + padded("abc"));
  expect_clean(o);
  ASSERT_EQ(o.entries.size(), 1u);
  EXPECT_EQ(o.entries[0].header.mode, 0755u);
  EXPECT_EQ(o.entries[0].header.uid, 017);
  EXPECT_EQ(o.entries[0].header.gid, 0);
  EXPECT_EQ(o.entries[0].header.size, 3u);
  EXPECT_EQ(o.entries[0].header.mtime, 012345670123);
  EXPECT_EQ(o.entries[0].data, "abc");
}

TEST(TarParser, BadNumericFieldIsCorruption) {
  Spec s{.name = "snapshot/o"};
  s.raw["uid"] = "12a4";
  expect_corruption(parse(header(s)), "bad uid field in the tar header at offset 0");
  Spec t{.name = "snapshot/o"};
  t.raw["size"] = "1 2";
  expect_corruption(parse(entry({.name = "x"}) + header(t)), "bad size field");
}

TEST(TarParser, ImpossibleSizesAreCorruption) {
  Spec huge{.name = "snapshot/huge", .magic = Magic::kGnu};
  huge.raw["size"] = base256((int64_t{1} << 53) + 1, 12);
  expect_corruption(parse(header(huge)), "impossible size");

  Spec negative{.name = "snapshot/neg", .magic = Magic::kGnu};
  negative.raw["size"] = base256(-5, 12);
  expect_corruption(parse(header(negative)), "impossible size -5");

  Spec overflow{.name = "snapshot/overflow", .magic = Magic::kGnu};
  overflow.raw["size"] = std::string(1, '\x80') + std::string(11, '\xff');  // 2^88 - 1
  expect_corruption(parse(header(overflow)), "bad size field");

  // 2^53 itself is allowed; the stream then just ends early.
  Spec limit{.name = "snapshot/limit", .magic = Magic::kGnu};
  limit.raw["size"] = base256(int64_t{1} << 53, 12);
  const Outcome o = parse(header(limit));
  expect_corruption(o, "truncated tar stream");
  ASSERT_EQ(o.entries.size(), 1u);
  EXPECT_EQ(o.entries[0].header.size, uint64_t{1} << 53);
}

TEST(TarParser, OversizedExtensionIsRejectedAtItsHeader) {
  for (char type : {'L', 'K', 'x', 'g'}) {
    SCOPED_TRACE(type);
    Spec s{.name = "././@LongLink", .type = type, .size = (1u << 20) + 1};
    Recorder recorder;
    TarParser parser(recorder);
    const auto status = parser.feed(header(s));  // only the header: nothing to buffer yet
    ASSERT_FALSE(status);
    EXPECT_EQ(status.error().kind, ErrorKind::kCorruption);
    EXPECT_THAT(status.error().message, HasSubstr("impossible size"));
  }
  // Exactly 1 MiB is accepted.
  const std::string name = "snapshot/" + std::string((1u << 20) - 10, 'n');
  const Outcome o = parse(gnu_long('L', name) + entry({.name = "x"}));
  expect_clean(o);
  ASSERT_EQ(o.entries.size(), 1u);
  EXPECT_EQ(o.entries[0].header.name, name);
}

TEST(TarParser, EntryTypes) {
  const std::string stream =
      entry({.name = "snapshot/dir/", .type = '5', .mode = 0755}) +
      entry({.name = "snapshot/sym", .type = '2', .mode = 0777, .linkname = "../target"}) +
      entry({.name = "snapshot/hard", .type = '1', .linkname = "snapshot/dir/file"}) +
      entry({.name = "snapshot/null", .type = '3', .devmajor = 1, .devminor = 3}) +
      entry({.name = "snapshot/sda", .type = '4', .devmajor = 8, .devminor = 0}) +
      entry({.name = "snapshot/fifo", .type = '6'}) +
      entry({.name = "snapshot/contig", .type = '7'}, "contiguous") +
      entry({.name = "snapshot/old", .type = '\0', .magic = Magic::kV7}, "v7") +
      entry({.name = "snapshot/olddir/", .type = '\0', .magic = Magic::kV7}) + kEndMarker;
  const Outcome o = parse(stream);
  expect_clean(o);
  ASSERT_EQ(o.entries.size(), 9u);
  const auto& e = o.entries;
  EXPECT_EQ(e[0].header.type, TarType::kDirectory);
  EXPECT_EQ(e[0].header.name, "snapshot/dir/");  // the trailing slash is kept
  EXPECT_EQ(e[1].header.type, TarType::kSymlink);
  EXPECT_EQ(e[1].header.linkname, "../target");  // symlink targets are not checked
  EXPECT_EQ(e[1].header.mode, 0777u);
  EXPECT_EQ(e[2].header.type, TarType::kHardlink);
  EXPECT_EQ(e[2].header.linkname, "snapshot/dir/file");
  EXPECT_EQ(e[3].header.type, TarType::kCharDevice);
  EXPECT_EQ(e[3].header.devmajor, 1u);
  EXPECT_EQ(e[3].header.devminor, 3u);
  EXPECT_EQ(e[4].header.type, TarType::kBlockDevice);
  EXPECT_EQ(e[4].header.devmajor, 8u);
  EXPECT_EQ(e[4].header.devminor, 0u);
  EXPECT_EQ(e[5].header.type, TarType::kFifo);
  EXPECT_EQ(e[6].header.type, TarType::kFile);
  EXPECT_EQ(e[6].data, "contiguous");
  EXPECT_EQ(e[7].header.type, TarType::kFile);
  EXPECT_EQ(e[7].data, "v7");
  EXPECT_EQ(e[7].header.uname, "");
  EXPECT_EQ(e[8].header.type, TarType::kDirectory);
}

TEST(TarParser, NonRegularEntriesCarryNoData) {
  // As in Python's tarfile, a size field on a directory or link does not announce data.
  Spec dir{.name = "snapshot/d/", .type = '5', .size = 700};
  Spec sym{.name = "snapshot/s", .type = '2', .size = 3, .linkname = "t"};
  const Outcome o = parse(header(dir) + header(sym) + entry({.name = "snapshot/f"}, "f"));
  expect_clean(o);
  ASSERT_EQ(o.entries.size(), 3u);
  EXPECT_EQ(o.entries[0].header.size, 0u);
  EXPECT_EQ(o.entries[1].header.size, 0u);
  EXPECT_EQ(o.entries[2].header.data_offset, 1536u);
  EXPECT_EQ(o.entries[2].data, "f");
}

TEST(TarParser, UnknownTypeIsCorruption) {
  expect_corruption(parse(entry({.name = "a"}, "1") + entry({.name = "sparse", .type = 'S'})),
                    "unsupported tar entry type 'S' at offset 1024");
  expect_corruption(parse(entry({.name = "v", .type = 'V'})),
                    "unsupported tar entry type 'V' at offset 0");
  expect_corruption(parse(entry({.name = "b", .type = '\x01'})), "type '\\x01'");
}

TEST(TarParser, BadChecksumIsCorruption) {
  expect_corruption(parse(entry({.name = "x", .checksum_error = 1})),
                    "bad tar header checksum at offset 0");
  // Junk where the next header should be.
  std::string junk = pattern(512, 9);
  expect_corruption(parse(entry({.name = "ok"}, "data") + junk + entry({.name = "later"})),
                    "bad tar header checksum at offset 1024");
  // Text where a header should be (no valid checksum field at all).
  expect_corruption(parse(std::string(512, 'A')), "checksum at offset 0");
}

TEST(TarParser, SignedChecksumIsAccepted) {
  const std::string name = "snapshot/\xe9\xe8\xff";
  const Outcome o = parse(entry({.name = name, .signed_checksum = true}, "s"));
  expect_clean(o);
  ASSERT_EQ(o.entries.size(), 1u);
  EXPECT_EQ(o.entries[0].header.name, name);
}

TEST(TarParser, EmptyExact512And64KiBFiles) {
  const std::string d512 = pattern(512);
  const std::string d64k = pattern(65536, 3);
  const std::string stream = entry({.name = "snapshot/empty"}) +
                             entry({.name = "snapshot/512"}, d512) +
                             entry({.name = "snapshot/64k"}, d64k) + kEndMarker;
  for (size_t chunk : {size_t{0}, size_t{1}, size_t{511}, size_t{512}, size_t{513}, size_t{4096}}) {
    SCOPED_TRACE(chunk);
    const Outcome o = parse(stream, chunk);
    expect_clean(o);
    ASSERT_EQ(o.entries.size(), 3u);
    EXPECT_EQ(o.entries[0].header.size, 0u);
    EXPECT_EQ(o.entries[0].data, "");
    EXPECT_TRUE(o.entries[0].ended);
    EXPECT_EQ(o.entries[1].data, d512);
    EXPECT_EQ(o.entries[1].header.data_offset, 1024u);
    EXPECT_EQ(o.entries[2].header.header_offset, 1536u);  // no padding after 512 bytes
    EXPECT_EQ(o.entries[2].data, d64k);
    EXPECT_TRUE(o.at_end_marker);
  }
}

TEST(TarParser, EndMarkerThenJunkIsIgnored) {
  // As in encrypted volumes: one zero block, then bytes copied from elsewhere, including
  // something that looks like a valid header and a bad one.
  const std::string body = entry({.name = "snapshot/a"}, "a");
  const std::string stream = body + std::string(512, '\0') + entry({.name = "snapshot/ghost"}) +
                             pattern(30000, 5) + std::string(100, 'j');
  for (size_t chunk : {size_t{0}, size_t{1}, size_t{700}}) {
    SCOPED_TRACE(chunk);
    const Outcome o = parse(stream, chunk);
    expect_clean(o);
    ASSERT_EQ(o.entries.size(), 1u);
    EXPECT_EQ(o.entries[0].header.name, "snapshot/a");
    EXPECT_TRUE(o.at_end_marker);
    EXPECT_EQ(o.offset, body.size() + 512);
  }
  // Twenty zero blocks then junk.
  const Outcome o = parse(body + std::string(20 * 512, '\0') + pattern(1000));
  expect_clean(o);
  EXPECT_EQ(o.entries.size(), 1u);
  EXPECT_TRUE(o.at_end_marker);
}

TEST(TarParser, StreamWithoutEndMarkerIsComplete) {
  const std::string stream = entry({.name = "snapshot/a"}, "aaa") + entry({.name = "snapshot/b"});
  const Outcome o = parse(stream);
  expect_clean(o);
  EXPECT_EQ(o.entries.size(), 2u);
  EXPECT_FALSE(o.at_end_marker);
  EXPECT_EQ(o.offset, stream.size());
}

TEST(TarParser, TruncatedStreamsFailInFinish) {
  const std::string first = entry({.name = "snapshot/a"}, "aaa");
  const std::string second = entry({.name = "snapshot/b"}, pattern(1000));
  const std::string pax = pax_header(pax_record("path", "snapshot/c"));
  struct Case {
    std::string stream;
    std::string message;
  };
  const std::vector<Case> cases = {
      {first + second.substr(0, 300), "ends 300 bytes into the header block at offset 1024"},
      {first + second.substr(0, 512 + 999), "1 bytes short of the end of the data of 'snapshot/b'"},
      {first + second.substr(0, 512), "1000 bytes short"},
      {first + pax.substr(0, 512 + 5), "short of the end of the extended header at offset 1024"},
      {first + pax, "after the extended header at offset 1024, before the entry"},
      {first + gnu_long('L', "snapshot/long"), "after the extended header at offset 1024"},
      {first + gnu_long('L', "snapshot/long").substr(0, 513), "extended header at offset 1024"},
      {first + gnu_long('L', "snapshot/long") + second.substr(0, 10), "header block"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.message);
    const Outcome o = parse(c.stream);
    expect_corruption(o, c.message);
    EXPECT_TRUE(o.error_from_finish);
    EXPECT_THAT(o.error->message, HasSubstr("truncated tar stream"));
  }
}

TEST(TarParser, MissingFinalPaddingIsTolerated) {
  // The data is complete; only zero padding is missing, which carries nothing.
  const std::string first = entry({.name = "snapshot/a"}, "aaa");
  const std::string last = header({.name = "snapshot/b", .size = 1000}) + pattern(1000);
  for (size_t extra : {size_t{0}, size_t{1}, size_t{23}}) {
    SCOPED_TRACE(extra);
    const Outcome o = parse(first + last + std::string(extra, '\0'));
    expect_clean(o);
    ASSERT_EQ(o.entries.size(), 2u);
    EXPECT_EQ(o.entries[1].data, pattern(1000));
    EXPECT_TRUE(o.entries[1].ended);
  }
}

TEST(TarParser, ZeroBlockAfterExtendedHeaderIsCorruption) {
  const Outcome o = parse(pax_header(pax_record("path", "snapshot/p")) + kEndMarker);
  expect_corruption(o,
                    "end-of-archive block at offset 1024 follows the extended header at offset 0");
  EXPECT_FALSE(o.error_from_finish);
  EXPECT_FALSE(o.at_end_marker);
  EXPECT_TRUE(o.entries.empty());
}

TEST(TarParser, UnsafeNamesAreRejected) {
  const std::vector<std::string> unsafe = {"../x",    "a/../b", "/etc/passwd", "..",   "snap/..",
                                           "a/..//b", "//x",    "snapshot//x", "a//b/"};
  for (const auto& name : unsafe) {
    SCOPED_TRACE(name);
    expect_corruption(parse(entry({.name = "ok"}) + entry({.name = name}, "x")),
                      "unsafe name '" + name + "' in the tar entry at offset 512");
    expect_corruption(parse(gnu_long('L', name) + entry({.name = "short"})), "unsafe name");
    expect_corruption(parse(pax_header(pax_record("path", name)) + entry({.name = "short"})),
                      "unsafe name");
  }
  // Through the ustar prefix: "/abs" + "/" + "x".
  expect_corruption(parse(entry({.name = "x", .prefix = "/abs"})), "unsafe name '/abs/x'");
  expect_corruption(parse(entry({.name = "x", .prefix = ".."})), "unsafe name '../x'");
  // A NUL byte can only come from a PAX path or long name.
  expect_corruption(
      parse(pax_header(pax_record("path", std::string("a\0b", 3))) + entry({.name = "short"})),
      "unsafe name 'a\\x00b'");
  // A hardlink names another member, so its target must be safe too.
  expect_corruption(parse(entry({.name = "h", .type = '1', .linkname = "../../etc/shadow"})),
                    "unsafe hardlink target");
}

TEST(TarParser, SafeNamesThatLookSuspiciousAreAccepted) {
  const std::vector<std::string> names = {"..x",         "a..b/c", "a/.../b", "./a", "snapshot/./",
                                          "snapshot/a/", "x..",    "a/b..",   ""};
  std::string stream;
  for (const auto& n : names) stream += entry({.name = n});
  const Outcome o = parse(stream);
  expect_clean(o);
  ASSERT_EQ(o.entries.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(o.entries[i].header.name, names[i]);
}

// A stream exercising every kind of header, for the split tests.
std::string mixed_stream() {
  return pax_header(pax_record("gname", "global"), 'g') +
         pax_header(pax_record("hdrcharset", "BINARY") +
                    pax_record("path", "snapshot/bin\xff" + std::string(120, 'b'))) +
         entry({.name = "snapshot/bin?"}, pattern(700)) +
         gnu_long('L', "snapshot/" + std::string(130, 'L')) +
         gnu_long('K', "target/" + std::string(140, 'K')) +
         entry({.name = "x", .type = '2', .magic = Magic::kGnu}) +
         entry({.name = "f.txt", .prefix = "snapshot/" + std::string(110, 'p')}, "prefixed") +
         entry({.name = "snapshot/empty"}) + entry({.name = "snapshot/d/", .type = '5'}) +
         entry({.name = "snapshot/512"}, pattern(512, 2)) + kEndMarker + pattern(300, 4);
}

TEST(TarParserSplit, EveryTwoPieceSplitGivesTheSameResult) {
  const std::string stream = mixed_stream();
  const Outcome whole = parse(stream);
  expect_clean(whole);
  ASSERT_EQ(whole.entries.size(), 6u);
  const std::string expected = describe(whole);
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    const std::string_view s = stream;
    const Outcome o = parse_pieces({s.substr(0, cut), s.substr(cut)});
    ASSERT_EQ(describe(o), expected) << "cut at " << cut;
  }
}

TEST(TarParserSplit, ByteByByteAndRandomPieces) {
  const std::string stream = mixed_stream();
  const std::string expected = describe(parse(stream));
  EXPECT_EQ(describe(parse(stream, 1)), expected);
  std::mt19937 rng(12345);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::string_view> pieces;
    const std::string_view s = stream;
    for (size_t pos = 0; pos < s.size();) {
      const size_t n = std::uniform_int_distribution<size_t>(0, 1100)(rng);
      pieces.push_back(s.substr(pos, n));  // empty pieces are allowed too
      pos += n;
    }
    ASSERT_EQ(describe(parse_pieces(pieces)), expected) << "round " << round;
  }
}

TEST(TarParserSplit, ErrorsDoNotDependOnTheSplit) {
  const std::vector<std::string> streams = {
      entry({.name = "a"}, "aa") + entry({.name = "b", .checksum_error = 3}),
      entry({.name = "a"}, "aa") + pax_header("12 path=abc\n" + std::string(5, 'x')) +
          entry({.name = "x"}),
      entry({.name = "a"}, "aa") + entry({.name = "a/../../b"}),
      entry({.name = "a"}, pattern(2000)).substr(0, 1700),
  };
  for (const auto& stream : streams) {
    const Outcome whole = parse(stream);
    ASSERT_TRUE(whole.error);
    const std::string expected = describe(whole);
    EXPECT_EQ(describe(parse(stream, 1)), expected);
    for (size_t cut = 0; cut <= stream.size(); cut += 7) {
      const std::string_view s = stream;
      ASSERT_EQ(describe(parse_pieces({s.substr(0, cut), s.substr(cut)})), expected) << cut;
    }
  }
}

TEST(TarParserSplit, LargeDataInAnyPieceSize) {
  const std::string data = pattern((1u << 20) + 3, 6);
  const std::string stream =
      entry({.name = "snapshot/big"}, data) + entry({.name = "snapshot/next"}, "n") + kEndMarker;
  for (size_t chunk :
       {size_t{0}, size_t{1}, size_t{511}, size_t{513}, size_t{65536}, size_t{1} << 20}) {
    SCOPED_TRACE(chunk);
    const Outcome o = parse(stream, chunk);
    expect_clean(o);
    ASSERT_EQ(o.entries.size(), 2u);
    EXPECT_TRUE(o.entries[0].data == data);
    EXPECT_EQ(o.entries[1].data, "n");
  }
}

TEST(TarParserSplit, DataPiecesPointIntoTheFedBuffer) {
  const std::string data = pattern(200000);
  const std::string stream = entry({.name = "snapshot/big"}, data) + kEndMarker;
  Recorder recorder;
  TarParser parser(recorder);
  ASSERT_TRUE(parser.feed(stream));
  ASSERT_TRUE(parser.finish());
  ASSERT_EQ(recorder.pieces.size(), 1u);  // one piece, not copied
  EXPECT_EQ(recorder.pieces[0].data(), stream.data() + 512);
  EXPECT_EQ(recorder.pieces[0].size(), data.size());
}

// ---------------------------------------------------------------------------------------------
// Visitor errors.

class FailingVisitor : public Recorder {
 public:
  enum class At { kEntry, kData, kEnd };
  FailingVisitor(std::string name, At at) : name_(std::move(name)), at_(at) {}

  Status on_entry(const TarHeader& h) override {
    (void)Recorder::on_entry(h);
    if (at_ == At::kEntry && h.name == name_) return error(ErrorKind::kCancelled, "stop at entry");
    return {};
  }
  Status on_data(const TarHeader& h, std::string_view piece) override {
    (void)Recorder::on_data(h, piece);
    if (at_ == At::kData && h.name == name_) return error(ErrorKind::kIoError, "stop in data");
    return {};
  }
  Status on_entry_end(const TarHeader& h) override {
    (void)Recorder::on_entry_end(h);
    if (at_ == At::kEnd && h.name == name_) return error(ErrorKind::kNotFound, "stop at end");
    return {};
  }

 private:
  std::string name_;
  At at_;
};

TEST(TarParser, VisitorErrorsPropagateAndStick) {
  const std::string stream = entry({.name = "a"}, "aaa") + entry({.name = "b"}, pattern(3000)) +
                             entry({.name = "c"}, "ccc") + kEndMarker;
  struct Case {
    FailingVisitor::At at;
    ErrorKind kind;
    std::string message;
  };
  for (const auto& c : {Case{FailingVisitor::At::kEntry, ErrorKind::kCancelled, "stop at entry"},
                        Case{FailingVisitor::At::kData, ErrorKind::kIoError, "stop in data"},
                        Case{FailingVisitor::At::kEnd, ErrorKind::kNotFound, "stop at end"}}) {
    SCOPED_TRACE(c.message);
    for (size_t chunk : {stream.size(), size_t{100}}) {
      FailingVisitor visitor("b", c.at);
      TarParser parser(visitor);
      Status status;
      size_t pos = 0;
      for (; pos < stream.size() && status; pos += chunk) {
        status = parser.feed(std::string_view(stream).substr(pos, chunk));
      }
      ASSERT_FALSE(status);
      EXPECT_EQ(status.error().kind, c.kind);
      EXPECT_EQ(status.error().message, c.message);
      // The parser stops: no later entry is reported, and the error sticks.
      ASSERT_EQ(visitor.entries.size(), 2u);
      EXPECT_EQ(visitor.entries[1].header.name, "b");
      const auto again = parser.feed(std::string_view(stream).substr(std::min(pos, stream.size())));
      ASSERT_FALSE(again);
      EXPECT_EQ(again.error().kind, c.kind);
      EXPECT_EQ(again.error().message, c.message);
      const auto finished = parser.finish();
      ASSERT_FALSE(finished);
      EXPECT_EQ(finished.error().kind, c.kind);
      EXPECT_EQ(visitor.entries.size(), 2u);
      EXPECT_FALSE(parser.at_end_marker());
    }
  }
}

TEST(TarParser, CorruptionErrorSticksAcrossFeeds) {
  Recorder recorder;
  TarParser parser(recorder);
  const auto first = parser.feed(entry({.name = "x", .checksum_error = 5}));
  ASSERT_FALSE(first);
  const auto second = parser.feed(entry({.name = "valid"}));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().kind, ErrorKind::kCorruption);
  EXPECT_EQ(second.error().message, first.error().message);
  EXPECT_TRUE(recorder.entries.empty());
  EXPECT_FALSE(parser.finish());
}

// ---------------------------------------------------------------------------------------------
// Real archives from Python's tarfile and GNU tar.

using test::TempDir;
namespace fs = std::filesystem;

void write_file(const std::filesystem::path& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs argv (no shell); returns its stdout, throws when it fails.
std::string output_of(const std::vector<std::string>& argv,
                      const std::map<std::string, std::string>& env = {}) {
  test::ProcessResult r = test::run(argv, env);
  if (!r.ok()) throw std::runtime_error("command failed: " + test::describe(argv, r));
  return r.out;
}

std::string unhex(std::string_view token) {  // "x" + hex digits
  std::string out;
  for (size_t i = 1; i + 1 < token.size(); i += 2) {
    out += static_cast<char>(std::stoi(std::string(token.substr(i, 2)), nullptr, 16));
  }
  return out;
}

// Lists an archive the way duplicity reads it: Python's tarfile. One line per member; byte
// strings as "x" + hex.
constexpr std::string_view kPythonLister = R"(
import math, sys, tarfile
def h(s):
    if isinstance(s, str):
        s = s.encode('utf-8', 'surrogateescape')
    return 'x' + s.hex()
with tarfile.open(sys.argv[1], 'r:', encoding='utf-8', errors='surrogateescape') as t:
    for m in t:
        data = t.extractfile(m).read() if m.isreg() else b''
        print(h(m.name), h(m.type), m.mode & 0o7777, m.uid, m.gid, h(m.uname), h(m.gname),
              math.floor(m.mtime), m.size, m.devmajor, m.devminor, h(m.linkname), m.offset,
              m.offset_data, h(data))
)";

struct PythonMember {
  std::string name, typeflag, uname, gname, linkname, data;
  int64_t mode, uid, gid, mtime;
  uint64_t size, devmajor, devminor, offset, offset_data;
};

std::vector<PythonMember> python_list(const TempDir& dir, const std::filesystem::path& archive) {
  write_file(fs::path(dir.file("lister.py")), kPythonLister);
  std::istringstream lines(
      output_of({"/usr/bin/python3", dir.file("lister.py"), archive.string()}));
  std::vector<PythonMember> members;
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream f(line);
    std::string name, type, uname, gname, link, data;
    PythonMember m;
    f >> name >> type >> m.mode >> m.uid >> m.gid >> uname >> gname >> m.mtime >> m.size >>
        m.devmajor >> m.devminor >> link >> m.offset >> m.offset_data >> data;
    if (!f) throw std::runtime_error("bad lister line: " + line);
    m.name = unhex(name);
    m.typeflag = unhex(type);
    m.uname = unhex(uname);
    m.gname = unhex(gname);
    m.linkname = unhex(link);
    m.data = unhex(data);
    members.push_back(std::move(m));
  }
  return members;
}

std::optional<TarType> python_type(const std::string& typeflag) {
  static const std::map<std::string, TarType> types = {
      {"0", TarType::kFile},        {std::string(1, '\0'), TarType::kFile},
      {"7", TarType::kFile},        {"1", TarType::kHardlink},
      {"2", TarType::kSymlink},     {"3", TarType::kCharDevice},
      {"4", TarType::kBlockDevice}, {"5", TarType::kDirectory},
      {"6", TarType::kFifo}};
  const auto it = types.find(typeflag);
  if (it == types.end()) return std::nullopt;
  return it->second;
}

// Parses the archive in several piece sizes and compares every field with Python's reading.
Outcome parse_like_python(const TempDir& dir, const std::filesystem::path& archive) {
  const std::string bytes = read_file(archive);
  const Outcome o = parse(bytes);
  expect_clean(o);
  EXPECT_EQ(describe(parse(bytes, 1)), describe(o));
  EXPECT_EQ(describe(parse(bytes, 513)), describe(o));

  const std::vector<PythonMember> members = python_list(dir, archive);
  EXPECT_EQ(o.entries.size(), members.size());
  for (size_t i = 0; i < std::min(o.entries.size(), members.size()); ++i) {
    const TarHeader& h = o.entries[i].header;
    const PythonMember& m = members[i];
    SCOPED_TRACE(m.name);
    const auto type = python_type(m.typeflag);
    EXPECT_TRUE(type) << "typeflag " << m.typeflag;
    if (!type) continue;
    EXPECT_EQ(h.type, *type);
    // tarfile drops the trailing slash of directory names; we keep the raw name.
    std::string name = h.name;
    if (h.type == TarType::kDirectory && name.size() > 1 && name.ends_with('/')) name.pop_back();
    EXPECT_EQ(name, m.name);
    EXPECT_EQ(h.linkname, m.linkname);
    EXPECT_EQ(h.mode, static_cast<uint32_t>(m.mode));
    EXPECT_EQ(h.uid, m.uid);
    EXPECT_EQ(h.gid, m.gid);
    EXPECT_EQ(h.uname, m.uname);
    EXPECT_EQ(h.gname, m.gname);
    EXPECT_EQ(h.mtime, m.mtime);
    EXPECT_EQ(h.header_offset, m.offset);
    EXPECT_EQ(h.data_offset, m.offset_data);
    if (h.type == TarType::kFile) {
      EXPECT_EQ(h.size, m.size);
      EXPECT_TRUE(o.entries[i].data == m.data);
    } else {
      EXPECT_EQ(h.size, 0u);
    }
    if (h.type == TarType::kCharDevice || h.type == TarType::kBlockDevice) {
      EXPECT_EQ(h.devmajor, m.devmajor);
      EXPECT_EQ(h.devminor, m.devminor);
    }
  }
  return o;
}

// Writes an archive with tarfile from TarInfo objects, so that ids, devices and names need no
// privileges or special files.
constexpr std::string_view kPythonWriter = R"(
import io, sys, tarfile
fmt = {'pax': tarfile.PAX_FORMAT, 'gnu': tarfile.GNU_FORMAT}[sys.argv[2]]
kw = {'pax_headers': {'comment': 'dupfs test', 'gname': 'globalgroup'}} if sys.argv[2] == 'pax' else {}
with tarfile.open(sys.argv[1], 'w', format=fmt, encoding='utf-8', errors='surrogateescape', **kw) as t:
    def add(name, type=tarfile.REGTYPE, data=b'', **attrs):
        if isinstance(name, bytes):
            name = name.decode('utf-8', 'surrogateescape')
        ti = tarfile.TarInfo(name)
        ti.type = type
        ti.size = len(data)
        ti.mtime = 1700000000
        ti.mode = 0o644
        ti.uid, ti.gid, ti.uname, ti.gname = 1000, 1000, 'alice', 'staff'
        for k, v in attrs.items():
            setattr(ti, k, v)
        t.addfile(ti, io.BytesIO(data) if data else None)
    add('snapshot/', tarfile.DIRTYPE, mode=0o755)
    add('snapshot/' + 'd' * 120 + '/file.txt', data=b'long name data')
    add('snapshot/link', tarfile.SYMTYPE, linkname='target/' + 't' * 150, mode=0o777)
    add(b'snapshot/bad\xff\xfename.txt', data=b'binary name')
    add('snapshot/caf\u00e9.txt', data=b'utf-8 name')
    add('snapshot/bigid', data=b'id', uid=3000000, gid=3000001)
    add('snapshot/fifo', tarfile.FIFOTYPE)
    add('snapshot/null', tarfile.CHRTYPE, devmajor=1, devminor=3)
    add('snapshot/sda', tarfile.BLKTYPE, devmajor=7, devminor=0)
    add('snapshot/hard', tarfile.LNKTYPE, linkname='snapshot/bigid')
    add('snapshot/empty')
    add('snapshot/512', data=bytes(range(256)) * 2)
    add('snapshot/64k', data=(bytes(range(251)) * 300)[:65536])
    add('snapshot/old', data=b'old', mtime=-1)
    add('snapshot/frac', data=b'frac', mtime=-1.5)
    add('snapshot/setuid', data=b'su', mode=0o4755)
)";

class TarPythonArchive : public ::testing::TestWithParam<std::string> {};

TEST_P(TarPythonArchive, MatchesPythonsOwnReading) {
  TempDir dir;
  const auto archive = fs::path(dir.file("out.tar"));
  write_file(fs::path(dir.file("writer.py")), kPythonWriter);
  output_of({"/usr/bin/python3", dir.file("writer.py"), archive.string(), GetParam()});
  const std::string bytes = read_file(archive);
  const bool pax = GetParam() == "pax";
  if (pax) {
    EXPECT_NE(bytes.find("hdrcharset=BINARY"), std::string::npos);
    EXPECT_NE(bytes.find("uid=3000000"), std::string::npos);
  } else {
    EXPECT_NE(bytes.find("././@LongLink"), std::string::npos);
  }

  const Outcome o = parse_like_python(dir, archive);
  EXPECT_TRUE(o.at_end_marker);
  ASSERT_EQ(o.entries.size(), 16u) << describe(o);

  const Entry* e = o.find("snapshot/");
  ASSERT_NE(e, nullptr) << describe(o);
  EXPECT_EQ(e->header.type, TarType::kDirectory);
  EXPECT_EQ(e->header.mode, 0755u);
  EXPECT_EQ(e->header.gname, pax ? "globalgroup" : "staff");  // the 'g' header applies

  e = o.find("snapshot/" + std::string(120, 'd') + "/file.txt");
  ASSERT_NE(e, nullptr) << describe(o);
  EXPECT_EQ(e->data, "long name data");

  e = o.find("snapshot/link");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->header.type, TarType::kSymlink);
  EXPECT_EQ(e->header.linkname, "target/" + std::string(150, 't'));

  e = o.find("snapshot/bad\xff\xfename.txt");
  ASSERT_NE(e, nullptr) << describe(o);
  EXPECT_EQ(e->data, "binary name");
  ASSERT_NE(o.find("snapshot/caf\xc3\xa9.txt"), nullptr);

  e = o.find("snapshot/bigid");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->header.uid, 3000000);
  EXPECT_EQ(e->header.gid, 3000001);

  e = o.find("snapshot/null");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->header.type, TarType::kCharDevice);
  EXPECT_EQ(e->header.devmajor, 1u);
  EXPECT_EQ(e->header.devminor, 3u);
  e = o.find("snapshot/sda");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->header.type, TarType::kBlockDevice);
  EXPECT_EQ(e->header.devmajor, 7u);
  ASSERT_NE(o.find("snapshot/fifo"), nullptr);
  EXPECT_EQ(o.find("snapshot/fifo")->header.type, TarType::kFifo);
  e = o.find("snapshot/hard");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->header.type, TarType::kHardlink);
  EXPECT_EQ(e->header.linkname, "snapshot/bigid");

  ASSERT_NE(o.find("snapshot/empty"), nullptr);
  EXPECT_EQ(o.find("snapshot/empty")->header.size, 0u);
  ASSERT_NE(o.find("snapshot/512"), nullptr);
  EXPECT_EQ(o.find("snapshot/512")->data.size(), 512u);
  ASSERT_NE(o.find("snapshot/64k"), nullptr);
  EXPECT_EQ(o.find("snapshot/64k")->data.size(), 65536u);

  ASSERT_NE(o.find("snapshot/old"), nullptr);
  EXPECT_EQ(o.find("snapshot/old")->header.mtime, -1);
  ASSERT_NE(o.find("snapshot/frac"), nullptr);
  EXPECT_EQ(o.find("snapshot/frac")->header.mtime, pax ? -2 : -1);  // GNU stores whole seconds
  ASSERT_NE(o.find("snapshot/setuid"), nullptr);
  EXPECT_EQ(o.find("snapshot/setuid")->header.mode, 04755u);
}

INSTANTIATE_TEST_SUITE_P(TarFormats, TarPythonArchive, ::testing::Values("pax", "gnu"));

class TarGnuTarArchive : public ::testing::TestWithParam<std::string> {};

TEST_P(TarGnuTarArchive, MatchesPythonsOwnReading) {
  const std::string format = GetParam();
  const bool ustar = format == "ustar";
  TempDir dir;
  const fs::path root = fs::path(dir.file("snapshot"));
  const std::string deep = std::string(60, 'd') + "/" + std::string(60, 'e');
  fs::create_directories(root / deep);
  write_file(root / "empty", "");
  write_file(root / "512", pattern(512));
  write_file(root / "64k", pattern(65536, 2));
  write_file(root / deep / "file.txt", "deep");
  fs::create_symlink("target", root / "link");
  fs::create_hard_link(root / "512", root / "hard");
  ASSERT_EQ(mkfifo((root / "fifo").c_str(), 0644), 0);
  if (!ustar) {
    fs::create_symlink(std::string(150, 't'), root / "longlink");
    write_file(root / std::string(150, 'n'), "long");
    write_file(root / "bad\xff\xfename.txt", "binary name");
  }
  for (const auto& p : fs::recursive_directory_iterator(root)) {
    if (p.is_symlink()) continue;
    fs::permissions(p.path(), p.is_directory() ? fs::perms(0755) : fs::perms(0640));
  }
  const fs::path archive = fs::path(dir.file("out.tar"));
  output_of({"/usr/bin/tar", "--format=" + format, "--sort=name", "--mtime=@1700000000",
             fmt::format("--owner=alice:{}", ustar ? 1000 : 3000000),
             fmt::format("--group=staff:{}", ustar ? 1001 : 3000001), "-cf", archive.string(), "-C",
             dir.path(), "snapshot"},
            {{"LC_ALL", "C"}});

  const Outcome o = parse_like_python(dir, archive);
  EXPECT_TRUE(o.at_end_marker);
  ASSERT_EQ(o.entries.size(), ustar ? 10u : 13u) << describe(o);

  const Entry* e = o.find("snapshot/");
  ASSERT_NE(e, nullptr) << describe(o);
  EXPECT_EQ(e->header.type, TarType::kDirectory);
  EXPECT_EQ(e->header.mode, 0755u);
  EXPECT_EQ(e->header.uid, ustar ? 1000 : 3000000);
  EXPECT_EQ(e->header.gid, ustar ? 1001 : 3000001);
  EXPECT_EQ(e->header.uname, "alice");
  EXPECT_EQ(e->header.gname, "staff");
  EXPECT_EQ(e->header.mtime, 1700000000);

  e = o.find("snapshot/" + deep + "/file.txt");
  ASSERT_NE(e, nullptr) << describe(o);
  EXPECT_EQ(e->data, "deep");
  EXPECT_EQ(e->header.mode, 0640u);
  if (ustar) {
    // Stored through the prefix field.
    const std::string bytes = read_file(archive);
    const size_t at = static_cast<size_t>(e->header.header_offset);
    EXPECT_EQ(std::string(bytes.data() + at + 345), "snapshot/" + deep);
  }

  e = o.find("snapshot/link");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->header.type, TarType::kSymlink);
  EXPECT_EQ(e->header.linkname, "target");
  e = o.find("snapshot/hard");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->header.type, TarType::kHardlink);
  EXPECT_EQ(e->header.linkname, "snapshot/512");
  ASSERT_NE(o.find("snapshot/fifo"), nullptr);
  EXPECT_EQ(o.find("snapshot/fifo")->header.type, TarType::kFifo);
  ASSERT_NE(o.find("snapshot/empty"), nullptr);
  EXPECT_TRUE(o.find("snapshot/empty")->ended);
  ASSERT_NE(o.find("snapshot/512"), nullptr);
  EXPECT_EQ(o.find("snapshot/512")->data, pattern(512));
  ASSERT_NE(o.find("snapshot/64k"), nullptr);
  EXPECT_TRUE(o.find("snapshot/64k")->data == pattern(65536, 2));

  if (!ustar) {
    e = o.find("snapshot/longlink");
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->header.linkname, std::string(150, 't'));
    e = o.find("snapshot/" + std::string(150, 'n'));
    ASSERT_NE(e, nullptr) << describe(o);
    EXPECT_EQ(e->data, "long");
    e = o.find("snapshot/bad\xff\xfename.txt");
    ASSERT_NE(e, nullptr) << describe(o);
    EXPECT_EQ(e->data, "binary name");
  }
}

INSTANTIATE_TEST_SUITE_P(TarFormats, TarGnuTarArchive, ::testing::Values("gnu", "ustar", "pax"));

}  // namespace
}  // namespace dupfs::chain

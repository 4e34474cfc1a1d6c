// Walking a directory tree into a comparable description, and comparing two descriptions.
//
// The pattern for parity tests: scan the source tree (or a `duplicity restore` of it) and the
// dupfs mount, then EXPECT_THAT(diff_trees(expected, actual, options), IsEmpty()).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace dupfs::test {

struct EntryInfo {
  char type = '?';    // 'f' file, 'd' directory, 'l' symlink, 'p' fifo, 'c'/'b' device, 's' socket
  uint32_t mode = 0;  // permission bits including setuid/setgid/sticky (st_mode & 07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;        // files: length; symlinks: target length; everything else: 0
  int64_t mtime = 0;        // whole seconds (duplicity stores no fractions); 0 for directories when
                            // ScanOptions::compare_dir_mtime is false
  std::string sha256_hex;   // files, when ScanOptions::hash; empty otherwise
  std::string link_target;  // symlinks: raw target bytes
  uint64_t rdev_major = 0;  // devices only
  uint64_t rdev_minor = 0;

  bool operator==(const EntryInfo&) const = default;
};

// Keys are raw relative paths ("a/b", any bytes but NUL); the root itself is ".".
// std::map orders them bytewise (unsigned), like sorted duplicity indexes.
using Tree = std::map<std::string, EntryInfo>;

struct ScanOptions {
  bool compare_dir_mtime = true;  // false: record 0 as every directory's mtime
  bool hash = true;               // false: skip reading file contents (sha256_hex stays empty)
};

// Walks root with lstat semantics (symlinks are never followed; root itself may be a symlink to a
// directory or a mount point). Uses openat/fdopendir relative to directory fds, so names with any
// bytes work. Throws std::system_error naming the path on any failure (an EIO from a mount is a
// test failure, not a silently missing entry).
Tree scan_tree(const std::string& root, const ScanOptions& options = {});

// Describes one entry, e.g. "f 0644 0:0 size=5 mtime=1600000000 sha256=ab12..".
std::string describe_entry(const EntryInfo& e);

// Bytes as a readable, unambiguous string: printable ASCII as is, backslash as "\\", \n \t, every
// other byte as \xHH. So a path in a message shows exactly which bytes it has.
std::string escape_bytes(std::string_view s);

struct DiffOptions {
  bool ignore_dir_mtime = false;   // directories' mtimes (symlink mtimes are always ignored)
  bool ignore_root = false;        // the "." entry entirely
  bool ignore_root_mtime = false;  // only the mtime of "."
  bool ignore_sockets = false;     // sockets in either tree (duplicity skips them)
  bool ignore_owner = false;       // uid and gid
  bool ignore_content = false;     // sha256 (sizes are still compared)

  // Comparing a source tree with `duplicity restore` of it (0.8.22, as root): observed on
  // make_every_kind_tree, the only difference is that sockets are not backed up. Everything this
  // library records comes back equal: types, modes incl. setuid/setgid/sticky and 0000, numeric
  // owners without passwd entries (also on symlinks), file, directory and root mtimes, symlink
  // targets (dangling, > 100 bytes), device numbers, raw non-UTF-8 and long names. Hard links come
  // back as separate files with the same content, which a Tree does not distinguish.
  // Not covered by these options, because the fixtures avoid them: a negative mtime is restored
  // as 0, and a sub-second mtime is restored as floor(double(st_mtime)), so x.999999999 becomes
  // x + 1 (the float rounds up) while x.5 becomes x.
  static DiffOptions duplicity_restore() {
    DiffOptions o;
    o.ignore_sockets = true;
    return o;
  }
};

// Human-readable differences, one per line, in path order, e.g. "missing: a/b" (in expected, not
// in actual), "extra: c", "d/e: mode 0644 != 0600" (expected != actual). Empty when equal.
std::vector<std::string> diff_trees(const Tree& expected, const Tree& actual,
                                    const DiffOptions& options = {});

// For gtest: EXPECT_TRUE(trees_match(expected, actual, options)) prints every difference.
::testing::AssertionResult trees_match(const Tree& expected, const Tree& actual,
                                       const DiffOptions& options = {});

}  // namespace dupfs::test

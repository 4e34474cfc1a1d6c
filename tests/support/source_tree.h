// Building source trees for backups. Everything is deterministic (fixed seeds, fixed mtimes), so
// two builds give equal scan_tree() results and tests are repeatable. Requires root (chown, mknod).
// All functions throw std::system_error naming the path on failure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace dupfs::test {

// Paths inside make_every_kind_tree(), relative to its root, for tests that look at one entry.
namespace every_kind {
inline constexpr std::string_view kEmptyFile = "empty.txt";   // 0 bytes
inline constexpr std::string_view kFile64k = "exact64k.bin";  // exactly 65536 bytes
inline constexpr std::string_view kBigFile = "big.bin";       // kBigSize random bytes
inline constexpr uint64_t kBigSize = 3670016;                 // 3.5 MiB: > 3 volumes at 1 MiB
inline constexpr std::string_view kTextFile = "text/a.txt";   // small text
inline constexpr std::string_view kNestedFile = "dir/sub/deeper/nested.txt";
inline constexpr std::string_view kSymlink = "link_to_file";                // -> "text/a.txt"
inline constexpr std::string_view kDanglingSymlink = "dangling_link";       // -> "does/not/exist"
inline constexpr std::string_view kLongTargetSymlink = "long_target_link";  // target > 100 bytes
inline constexpr std::string_view kFifo = "fifo";
inline constexpr std::string_view kCharDevice = "null_device";   // c 1,3
inline constexpr std::string_view kBlockDevice = "loop_device";  // b 7,0
inline constexpr std::string_view kSocket = "socket";            // duplicity skips sockets
inline constexpr std::string_view kMode0000 = "modes/mode0000.txt";
inline constexpr std::string_view kMode0600 = "modes/mode0600.txt";
inline constexpr std::string_view kSetuid = "modes/setuid04755";       // mode 04755
inline constexpr std::string_view kPrivateDir = "modes/private0700";   // mode 0700, has a file
inline constexpr std::string_view kStickyDir = "modes/sticky01777";    // mode 01777, has a file
inline constexpr std::string_view kForeignFile = "owner/foreign.txt";  // kForeignUid:kForeignGid
inline constexpr std::string_view kForeignDir = "owner/foreign_dir";   // same owner
inline constexpr std::string_view kForeignSymlink = "owner/foreign_link";  // lchown'ed
inline constexpr uint32_t kForeignUid = 12345;                             // no passwd entry
inline constexpr uint32_t kForeignGid = 54321;                             // no group entry
inline constexpr std::string_view kHardlinkA = "hardlink_a.txt";  // same inode as kHardlinkB
inline constexpr std::string_view kHardlinkB = "hardlink_b.txt";
inline constexpr std::string_view kNonUtf8Name = "names/bad\xff\xfename.txt";
inline constexpr std::string_view kUnicodeName = "names/ünïcødé.txt";
// Also under names/: "with space.txt", "new\nline.txt", "double\"quote.txt", "single'quote.txt",
// "back\\slash.txt", "tab\there.txt", "-starts-with-dash.txt", a 154-byte name (150 'L' + ".txt"),
// and a file at the end of a path over 300 bytes (six nested 50-byte directory names).
}  // namespace every_kind

// Creates root (and missing parents) and fills it with one of everything duplicity stores: see
// every_kind above. Every entry, root included, gets its own fixed mtime; directories are stamped
// last, deepest first. root should be empty.
void make_every_kind_tree(const std::string& root);

// Creates root (and missing parents) and fills it with `files` small text files (0 to ~20 KB,
// varied content) spread over a few nested directories, all chosen from seed. Fixed mtimes.
void make_random_text_tree(const std::string& root, int files, uint32_t seed);

// n deterministic pseudo-random bytes (incompressible) from seed.
std::string pseudo_random_bytes(size_t n, uint64_t seed);

// size bytes alternating 4 KiB of pseudo-random bytes and 4 KiB of repeated text, from seed
// (partly compressible, like volume data).
std::string make_payload(size_t size, uint64_t seed = 1);

// Creates or truncates path (mode 0644 for a new file) and writes data.
void write_file(const std::string& path, std::string_view data);

// The whole content of path.
std::string read_file(const std::string& path);

// Sets atime and mtime of path (not following a symlink) to the given seconds.
void set_mtime(const std::string& path, int64_t mtime);

}  // namespace dupfs::test

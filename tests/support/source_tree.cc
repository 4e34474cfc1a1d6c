#include "tests/support/source_tree.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "tests/support/tree.h"

namespace dupfs::test {
namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw std::system_error(errno, std::generic_category(),
                          fmt::format("{} {}", what, escape_bytes(path)));
}

// splitmix64: tiny, fast, and the same output everywhere (std distributions are not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return next() % n; }

 private:
  uint64_t state_;
};

// Creates path and any missing parents.
void ensure_dir(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    errno = ec.value();
    fail("mkdir", path);
  }
}

// Records what was created so mtimes can be stamped at the end in a safe order.
class Builder {
 public:
  explicit Builder(std::string root) : root_(std::move(root)) { ensure_dir(root_); }

  std::string abs(std::string_view rel) const { return root_ + "/" + std::string(rel); }

  void file(std::string_view rel, std::string_view data, uint32_t mode = 0644) {
    write_file(abs(rel), data);
    chmod(rel, mode);
    stamp(rel);
  }
  void dir(std::string_view rel, uint32_t mode = 0755) {
    if (::mkdir(abs(rel).c_str(), 0700) != 0) fail("mkdir", abs(rel));
    chmod(rel, mode);
    dirs_.emplace_back(rel);
  }
  void symlink(std::string_view rel, const std::string& target) {
    if (::symlink(target.c_str(), abs(rel).c_str()) != 0) fail("symlink", abs(rel));
    stamp(rel);
  }
  void node(std::string_view rel, mode_t type_and_mode, dev_t dev) {
    if (::mknod(abs(rel).c_str(), type_and_mode, dev) != 0) fail("mknod", abs(rel));
    chmod(rel, type_and_mode & 07777);
    stamp(rel);
  }
  void hardlink(std::string_view existing, std::string_view rel) {
    if (::link(abs(existing).c_str(), abs(rel).c_str()) != 0) fail("link", abs(rel));
    // Same inode, so no stamp of its own: it shares the first name's mtime.
  }
  void socket(std::string_view rel) {
    // sun_path holds only 108 bytes; bind through /proc/self/fd/<dirfd> so any root works.
    std::string path = abs(rel);
    std::string parent = path.substr(0, path.rfind('/'));
    std::string name = path.substr(path.rfind('/') + 1);
    int dirfd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) fail("open", parent);
    int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string bind_path = fmt::format("/proc/self/fd/{}/{}", dirfd, name);
    std::memcpy(addr.sun_path, bind_path.c_str(),
                std::min(bind_path.size() + 1, sizeof addr.sun_path));
    int rc = s < 0 ? -1 : ::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    int e = errno;
    if (s >= 0) ::close(s);
    ::close(dirfd);
    errno = e;
    if (rc != 0) fail("bind unix socket", path);
    chmod(rel, 0755);
    stamp(rel);
  }
  void chmod(std::string_view rel, uint32_t mode) {
    if (::chmod(abs(rel).c_str(), mode) != 0) fail("chmod", abs(rel));
  }
  // lchown, then re-apply the mode, because chown clears setuid/setgid.
  void chown(std::string_view rel, uint32_t uid, uint32_t gid) {
    struct stat st;
    if (::lstat(abs(rel).c_str(), &st) != 0) fail("lstat", abs(rel));
    if (::lchown(abs(rel).c_str(), uid, gid) != 0) fail("lchown", abs(rel));
    if (!S_ISLNK(st.st_mode)) chmod(rel, st.st_mode & 07777);
  }

  // Stamps every non-directory in creation order, then directories deepest first, then root.
  // Touching a child's times does not change its directory's mtime, but creating children does,
  // hence directories last.
  void finish(int64_t base, int64_t step) {
    int64_t t = base;
    for (const auto& rel : others_) {
      set_mtime(abs(rel), t);
      t += step;
    }
    std::stable_sort(dirs_.begin(), dirs_.end(), [](const std::string& a, const std::string& b) {
      return std::count(a.begin(), a.end(), '/') > std::count(b.begin(), b.end(), '/');
    });
    for (const auto& rel : dirs_) {
      set_mtime(abs(rel), t);
      t += step;
    }
    set_mtime(root_, t);
  }

 private:
  void stamp(std::string_view rel) { others_.emplace_back(rel); }

  std::string root_;
  std::vector<std::string> others_;
  std::vector<std::string> dirs_;
};

std::string text_lines(Rng& rng, size_t approx_size) {
  static constexpr const char* kWords[] = {
      "duplicity", "volume",  "manifest", "signature", "delta", "snapshot",   "chain",
      "backup",    "restore", "archive",  "tar",       "block", "librsync",   "gpg",
      "the",       "a",       "of",       "and",       "to",    "in",         "is",
      "mount",     "fuse",    "inode",    "path",      "cache", "incremental"};
  std::string s;
  size_t line_len = 0;
  while (s.size() < approx_size) {
    const char* w = kWords[rng.below(std::size(kWords))];
    s += w;
    line_len += std::strlen(w);
    if (line_len > 40 + rng.below(40)) {
      s += '\n';
      line_len = 0;
    } else {
      s += ' ';
      ++line_len;
    }
  }
  s += '\n';
  return s;
}

}  // namespace

std::string pseudo_random_bytes(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng.next();
    std::memcpy(s.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return s;
}

void write_file(const std::string& path, std::string_view data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) fail("open for writing", path);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      errno = e;
      fail("write", path);
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) fail("close", path);
}

std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("open", path);
  std::string s;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      errno = e;
      fail("read", path);
    }
    if (n == 0) break;
    s.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return s;
}

void set_mtime(const std::string& path, int64_t mtime) {
  timespec times[2] = {{mtime, 0}, {mtime, 0}};
  if (::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) fail("utimensat", path);
}

void make_every_kind_tree(const std::string& root) {
  namespace ek = every_kind;
  Builder b(root);
  Rng rng(20240101);

  b.file(ek::kEmptyFile, "");
  b.file(ek::kFile64k, pseudo_random_bytes(65536, 64));
  b.file(ek::kBigFile, pseudo_random_bytes(ek::kBigSize, 35));

  b.dir("text");
  b.file(ek::kTextFile, "alpha\n");
  b.file("text/b.txt", text_lines(rng, 300));
  b.file("text/c.txt", "no trailing newline");
  b.dir("dir");
  b.dir("dir/sub");
  b.dir("dir/sub/deeper");
  b.dir("dir/empty_dir");
  b.file(ek::kNestedFile, "nested\n");
  b.file("dir/sub/sibling.txt", text_lines(rng, 5000));

  b.symlink(ek::kSymlink, "text/a.txt");
  b.symlink(ek::kDanglingSymlink, "does/not/exist");

  b.node(ek::kFifo, S_IFIFO | 0644, 0);
  b.node(ek::kCharDevice, S_IFCHR | 0666, makedev(1, 3));
  b.node(ek::kBlockDevice, S_IFBLK | 0660, makedev(7, 0));
  b.socket(ek::kSocket);

  b.dir("modes");
  b.file(ek::kMode0000, "no permissions\n", 0000);
  b.file(ek::kMode0600, "private\n", 0600);
  b.file(ek::kSetuid, "#!/bin/sh\necho setuid\n", 04755);
  b.dir(ek::kPrivateDir, 0700);
  b.file(std::string(ek::kPrivateDir) + "/inside.txt", "inside a 0700 directory\n");
  b.dir(ek::kStickyDir, 01777);
  b.file(std::string(ek::kStickyDir) + "/inside.txt", "inside a sticky directory\n", 0666);

  b.dir("owner");
  b.file(ek::kForeignFile, "owned by a uid with no passwd entry\n", 0640);
  b.chown(ek::kForeignFile, ek::kForeignUid, ek::kForeignGid);
  b.dir(ek::kForeignDir, 0750);
  b.file(std::string(ek::kForeignDir) + "/root_owned.txt", "root in a foreign directory\n");
  b.chown(ek::kForeignDir, ek::kForeignUid, ek::kForeignGid);
  b.symlink(ek::kForeignSymlink, "foreign.txt");
  b.chown(ek::kForeignSymlink, ek::kForeignUid, ek::kForeignGid);

  b.dir("names");
  for (const char* name : {"names/with space.txt", "names/new\nline.txt", "names/double\"quote.txt",
                           "names/single'quote.txt", "names/back\\slash.txt", "names/tab\there.txt",
                           "names/-starts-with-dash.txt"}) {
    b.file(name, fmt::format("file named {}\n", escape_bytes(name)));
  }
  b.file(ek::kNonUtf8Name, "a name that is not UTF-8\n");
  b.file(ek::kUnicodeName, "a UTF-8 name\n");
  b.file("names/" + std::string(150, 'L') + ".txt", "a 154-byte name\n");
  std::string long_path = "names";
  for (char c = 'a'; c < 'g'; ++c) {
    long_path += "/" + std::string(50, c);
    b.dir(long_path);
  }
  long_path += "/at_the_end_of_a_long_path.txt";
  b.file(long_path, "deep\n");
  b.symlink(ek::kLongTargetSymlink, long_path);  // > 300-byte target, not dangling

  b.file(ek::kHardlinkA, "shared by two names\n");
  b.hardlink(ek::kHardlinkA, ek::kHardlinkB);

  b.finish(1500000000, 3607);
}

void make_random_text_tree(const std::string& root, int files, uint32_t seed) {
  Builder b(root);
  Rng rng(seed);
  int ndirs = std::clamp(files / 5, 1, 20);
  std::vector<std::string> dirs;
  for (int i = 0; i < ndirs; ++i) {
    std::string name = fmt::format("dir{:02}", i);
    if (!dirs.empty() && rng.below(3) == 0) name = dirs[rng.below(dirs.size())] + "/" + name;
    b.dir(name);
    dirs.push_back(name);
  }
  for (int i = 0; i < files; ++i) {
    size_t size;
    switch (rng.below(10)) {
      case 0:
        size = 0;
        break;
      case 1:
        size = 5000 + rng.below(15000);
        break;
      default:
        size = 10 + rng.below(2000);
        break;
    }
    std::string dir = rng.below(8) == 0 ? std::string() : dirs[rng.below(dirs.size())] + "/";
    std::string content = size == 0 ? std::string() : text_lines(rng, size);
    b.file(fmt::format("{}file{:04}.txt", dir, i), content, rng.below(4) == 0 ? 0600 : 0644);
  }
  b.finish(1600000000 + static_cast<int64_t>(seed % 1000) * 100000, 61);
}

std::string make_payload(size_t size, uint64_t seed) {
  std::string out;
  out.reserve(size);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  size_t block = 0;
  while (out.size() < size) {
    size_t n = std::min<size_t>(4096, size - out.size());
    if (block++ % 2 == 0) {
      for (size_t i = 0; i < n; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push_back(static_cast<char>(x >> 24));
      }
    } else {
      static constexpr std::string_view kText = "duplicity difftar volume, dupfs test line. ";
      for (size_t i = 0; i < n; ++i) out.push_back(kText[(i + block) % kText.size()]);
    }
  }
  return out;
}

}  // namespace dupfs::test

#include "tests/support/tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <system_error>

#include "backends/base/fd.h"

namespace dupfs::test {
namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw std::system_error(errno, std::generic_category(),
                          fmt::format("scan_tree: {} {}", what, escape_bytes(path)));
}

std::string sha256_of_fd(int fd, const std::string& path) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("scan_tree: EVP_DigestInit_ex failed");
  }
  std::vector<unsigned char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("read", path);
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

EntryInfo info_from_stat(const struct stat& st) {
  EntryInfo e;
  switch (st.st_mode & S_IFMT) {
    case S_IFREG:
      e.type = 'f';
      break;
    case S_IFDIR:
      e.type = 'd';
      break;
    case S_IFLNK:
      e.type = 'l';
      break;
    case S_IFIFO:
      e.type = 'p';
      break;
    case S_IFCHR:
      e.type = 'c';
      break;
    case S_IFBLK:
      e.type = 'b';
      break;
    case S_IFSOCK:
      e.type = 's';
      break;
    default:
      e.type = '?';
      break;
  }
  e.mode = st.st_mode & 07777;
  e.uid = st.st_uid;
  e.gid = st.st_gid;
  if (e.type == 'f' || e.type == 'l') e.size = static_cast<uint64_t>(st.st_size);
  e.mtime = st.st_mtim.tv_sec;
  if (e.type == 'c' || e.type == 'b') {
    e.rdev_major = major(st.st_rdev);
    e.rdev_minor = minor(st.st_rdev);
  }
  return e;
}

void scan_dir(int dirfd, const std::string& root, const std::string& prefix,
              const ScanOptions& options, Tree& tree) {
  auto shown = [&](const std::string& rel) { return root + "/" + rel; };
  std::vector<std::string> names;
  {
    int dup_fd = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) fail("dup", shown(prefix));
    DIR* dir = ::fdopendir(dup_fd);
    if (dir == nullptr) {
      ::close(dup_fd);
      fail("fdopendir", shown(prefix));
    }
    struct Closer {
      void operator()(DIR* d) const { ::closedir(d); }
    };
    std::unique_ptr<DIR, Closer> owner(dir);
    for (;;) {
      errno = 0;
      dirent* d = ::readdir(dir);
      if (d == nullptr) {
        if (errno != 0) fail("readdir", shown(prefix));
        break;
      }
      std::string name = d->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
  }
  for (const auto& name : names) {
    std::string rel = prefix.empty() ? name : prefix + "/" + name;
    struct stat st;
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) fail("lstat", shown(rel));
    EntryInfo e = info_from_stat(st);
    if (e.type == 'f' && options.hash) {
      UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC));
      if (fd.get() < 0) fail("open", shown(rel));
      e.sha256_hex = sha256_of_fd(fd.get(), shown(rel));
    } else if (e.type == 'l') {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      for (;;) {
        ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
        if (n < 0) fail("readlink", shown(rel));
        if (static_cast<size_t>(n) < target.size()) {
          target.resize(static_cast<size_t>(n));
          break;
        }
        target.resize(target.size() * 2);  // the link grew or st_size was 0 (some FUSE fs)
      }
      e.link_target = std::move(target);
    } else if (e.type == 'd') {
      if (!options.compare_dir_mtime) e.mtime = 0;
      UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (fd.get() < 0) fail("open directory", shown(rel));
      scan_dir(fd.get(), root, rel, options, tree);
    }
    tree.emplace(rel, std::move(e));
  }
}

std::string mode_str(uint32_t m) { return fmt::format("{:04o}", m); }

}  // namespace

std::string escape_bytes(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c >= 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

Tree scan_tree(const std::string& root, const ScanOptions& options) {
  Tree tree;
  UniqueFd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) fail("open", root);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) fail("stat", root);
  EntryInfo e = info_from_stat(st);
  if (!options.compare_dir_mtime) e.mtime = 0;
  tree.emplace(".", std::move(e));
  scan_dir(fd.get(), root, "", options, tree);
  return tree;
}

std::string describe_entry(const EntryInfo& e) {
  std::string s = fmt::format("{} {} {}:{}", e.type, mode_str(e.mode), e.uid, e.gid);
  if (e.type == 'f') s += fmt::format(" size={}", e.size);
  s += fmt::format(" mtime={}", e.mtime);
  if (!e.sha256_hex.empty()) s += " sha256=" + e.sha256_hex.substr(0, 16) + "..";
  if (e.type == 'l') s += " -> " + escape_bytes(e.link_target);
  if (e.type == 'c' || e.type == 'b') s += fmt::format(" rdev={},{}", e.rdev_major, e.rdev_minor);
  return s;
}

std::vector<std::string> diff_trees(const Tree& expected, const Tree& actual,
                                    const DiffOptions& options) {
  std::vector<std::string> diffs;
  auto skipped = [&](const std::string& path, const EntryInfo& e) {
    if (options.ignore_root && path == ".") return true;
    return options.ignore_sockets && e.type == 's';
  };
  auto compare = [&](const std::string& path, const EntryInfo& x, const EntryInfo& y) {
    std::string p = escape_bytes(path);
    if (x.type != y.type) {
      diffs.push_back(fmt::format("{}: type {} != {} ({} / {})", p, x.type, y.type,
                                  describe_entry(x), describe_entry(y)));
      return;
    }
    if (x.mode != y.mode) {
      diffs.push_back(fmt::format("{}: mode {} != {}", p, mode_str(x.mode), mode_str(y.mode)));
    }
    if (!options.ignore_owner && (x.uid != y.uid || x.gid != y.gid)) {
      diffs.push_back(fmt::format("{}: owner {}:{} != {}:{}", p, x.uid, x.gid, y.uid, y.gid));
    }
    if (x.type == 'f' && x.size != y.size) {
      diffs.push_back(fmt::format("{}: size {} != {}", p, x.size, y.size));
    }
    bool check_mtime = x.type != 'l' && !(x.type == 'd' && options.ignore_dir_mtime) &&
                       !(path == "." && options.ignore_root_mtime);
    if (check_mtime && x.mtime != y.mtime) {
      diffs.push_back(fmt::format("{}: mtime {} != {}", p, x.mtime, y.mtime));
    }
    if (x.type == 'f' && !options.ignore_content && !x.sha256_hex.empty() &&
        !y.sha256_hex.empty() && x.sha256_hex != y.sha256_hex) {
      diffs.push_back(fmt::format("{}: content sha256 {} != {}", p, x.sha256_hex, y.sha256_hex));
    }
    if (x.type == 'l' && x.link_target != y.link_target) {
      diffs.push_back(fmt::format("{}: link target \"{}\" != \"{}\"", p,
                                  escape_bytes(x.link_target), escape_bytes(y.link_target)));
    }
    if ((x.type == 'c' || x.type == 'b') &&
        (x.rdev_major != y.rdev_major || x.rdev_minor != y.rdev_minor)) {
      diffs.push_back(fmt::format("{}: rdev {},{} != {},{}", p, x.rdev_major, x.rdev_minor,
                                  y.rdev_major, y.rdev_minor));
    }
  };

  auto a = expected.begin();
  auto b = actual.begin();
  while (a != expected.end() || b != actual.end()) {
    if (b == actual.end() || (a != expected.end() && a->first < b->first)) {
      if (!skipped(a->first, a->second)) {
        diffs.push_back(
            fmt::format("missing: {} ({})", escape_bytes(a->first), describe_entry(a->second)));
      }
      ++a;
    } else if (a == expected.end() || b->first < a->first) {
      if (!skipped(b->first, b->second)) {
        diffs.push_back(
            fmt::format("extra: {} ({})", escape_bytes(b->first), describe_entry(b->second)));
      }
      ++b;
    } else {
      if (!skipped(a->first, a->second) || !skipped(b->first, b->second)) {
        compare(a->first, a->second, b->second);
      }
      ++a;
      ++b;
    }
  }
  return diffs;
}

::testing::AssertionResult trees_match(const Tree& expected, const Tree& actual,
                                       const DiffOptions& options) {
  auto diffs = diff_trees(expected, actual, options);
  if (diffs.empty()) return ::testing::AssertionSuccess();
  auto r = ::testing::AssertionFailure();
  r << diffs.size() << " difference(s) between trees (expected != actual):";
  for (const auto& d : diffs) r << "\n  " << d;
  return r;
}

}  // namespace dupfs::test

// The walk of a backup source: selection.Select.Iterate over path.Path objects, with
// openat/fstatat relative to directory descriptors instead of full paths; see source_walk.h.
#include "chain/backup/source_walk.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "backends/base/log.h"

namespace dupfs::chain {

namespace {

class Walker {
 public:
  using Visit = std::function<Status(SourceEntry&&)>;

  Walker(const Selection& selection, const Visit& visit) : selection_(selection), visit_(visit) {}

  // Visits what is selected inside the directory open as `fd` (taken over). `index` and `path`
  // describe that directory (they are used as scratch and restored); `cursor` is the rules'
  // state after its path.
  Status walk_directory(int fd, Index& index, std::string& path, const Selection::Cursor& cursor) {
    DIR* dir = ::fdopendir(fd);
    if (dir == nullptr) {
      log_warning("Error listing directory {}: {}", quote_path(path), std::strerror(errno));
      ::close(fd);
      return {};
    }
    std::vector<std::string> names;
    bool listed = true;
    for (;;) {
      errno = 0;
      const dirent* e = ::readdir(dir);
      if (e == nullptr) {
        if (errno != 0) {
          log_warning("Error listing directory {}: {}", quote_path(path), std::strerror(errno));
          listed = false;
        }
        break;
      }
      if (e->d_name[0] == '.' &&
          (e->d_name[1] == '\0' || (e->d_name[1] == '.' && e->d_name[2] == '\0'))) {
        continue;
      }
      names.emplace_back(e->d_name);
    }
    Status status;
    if (listed) {
      std::sort(names.begin(), names.end());
      for (const std::string& name : names) {
        const size_t path_mark = path.size();
        if (path.back() != '/') path += '/';
        path += name;
        index.push_back(name);
        status = visit_child(::dirfd(dir), name, index, path, cursor);
        index.pop_back();
        path.resize(path_mark);
        if (!status) break;
      }
    }
    ::closedir(dir);
    return status;
  }

  Status emit(SourceEntry&& entry) {
    for (SourceEntry& p : pending_) {
      if (Status s = visit_(std::move(p)); !s) return s;
    }
    pending_.clear();
    return visit_(std::move(entry));
  }

 private:
  // One entry of a directory: `index` and `path` are already the entry's.
  Status visit_child(int dir_fd, const std::string& name, Index& index, std::string& path,
                     const Selection::Cursor& cursor) {
    SourceEntry entry;
    if (::fstatat(dir_fd, name.c_str(), &entry.st, AT_SYMLINK_NOFOLLOW) != 0) {
      int e = errno;
      if (e == ENOENT || e == ENOTDIR) {
        log_warning("{} vanished during the walk, skipped", quote_path(path));
      } else {
        log_warning("Error accessing possibly locked file {}: {}", quote_path(path),
                    std::strerror(e));
      }
      return {};
    }
    const mode_t mode = entry.st.st_mode;
    if (S_ISSOCK(mode)) {
      log_info("Skipping socket {}", quote_path(path));
      return {};
    }
    if (!S_ISREG(mode) && !S_ISDIR(mode) && !S_ISLNK(mode) && !S_ISFIFO(mode) && !S_ISCHR(mode) &&
        !S_ISBLK(mode)) {
      log_warning("Error initializing file {}: unknown file type 0{:o}", quote_path(path),
                  mode & S_IFMT);
      return {};
    }
    const bool is_dir = S_ISDIR(mode);
    Selection::Cursor inside;  // for a directory: the rules' state after its path
    const Selection::Verdict verdict =
        selection_.select_entry(cursor, name, path.size() == name.size() + 1, is_dir, &inside);
    if (verdict == Selection::Verdict::kExclude) return {};
    // Checked for a scanned regular file too, which duplicity then drops anyway.
    if ((S_ISREG(mode) || is_dir) && ::faccessat(dir_fd, name.c_str(), R_OK, 0) != 0) {
      log_warning("Error accessing possibly locked file {}: {}", quote_path(path),
                  std::strerror(errno));
      return {};
    }
    if (verdict == Selection::Verdict::kScan && !is_dir) return {};
    if (S_ISLNK(mode)) {
      auto target = read_link(dir_fd, name, entry.st);
      if (!target) {
        log_warning("Error reading symlink {}: {}", quote_path(path), target.error().message);
        return {};
      }
      entry.link_target = std::move(*target);
    }
    entry.index = index;
    entry.path = path;
    if (verdict == Selection::Verdict::kInclude) {
      if (Status s = emit(std::move(entry)); !s) return s;
      if (!is_dir) return {};
      return enter(dir_fd, name, index, path, inside);
    }
    // A directory to scan: visited just before the first thing selected inside it, if any.
    const size_t depth = pending_.size();
    pending_.push_back(std::move(entry));
    Status status = enter(dir_fd, name, index, path, inside);
    if (pending_.size() > depth) pending_.resize(depth);
    return status;
  }

  Status enter(int dir_fd, const std::string& name, Index& index, std::string& path,
               const Selection::Cursor& cursor) {
    int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      log_warning("Error listing directory {}: {}", quote_path(path), std::strerror(errno));
      return {};
    }
    return walk_directory(fd, index, path, cursor);
  }

  static Result<std::string> read_link(int dir_fd, const std::string& name, const struct stat& st) {
    size_t size = st.st_size > 0 ? static_cast<size_t>(st.st_size) + 1 : 256;
    for (;;) {
      std::string target(size, '\0');
      ssize_t n = ::readlinkat(dir_fd, name.c_str(), target.data(), target.size());
      if (n < 0) return make_error(ErrorKind::kIoError, std::strerror(errno));
      if (static_cast<size_t>(n) < target.size()) {
        target.resize(static_cast<size_t>(n));
        return target;
      }
      size *= 2;  // the link grew since lstat
    }
  }

  const Selection& selection_;
  const Visit& visit_;
  std::vector<SourceEntry> pending_;  // directories being scanned, outermost first
};

}  // namespace

Status walk_source(const std::string& source_root, const Selection& selection,
                   const std::function<Status(SourceEntry&&)>& visit) {
  if (!selection.made_for(source_root)) {
    return error(ErrorKind::kInvalidArgument, "the selection was made for {}, not for {}",
                 quote_path(selection.root()), quote_path(source_root));
  }
  SourceEntry root;
  root.path = selection.root();
  if (::lstat(root.path.c_str(), &root.st) != 0) {
    int e = errno;
    if (e == ENOENT || e == ENOTDIR) {
      return error(ErrorKind::kNotFound, "backup source directory {} does not exist",
                   quote_path(root.path));
    }
    return error(ErrorKind::kIoError, "cannot lstat the backup source {}: {}",
                 quote_path(root.path), std::strerror(e));
  }
  if (S_ISSOCK(root.st.st_mode)) {
    return error(ErrorKind::kUnsupported, "the backup source {} is a socket",
                 quote_path(root.path));
  }
  if (S_ISLNK(root.st.st_mode)) {
    std::string target(static_cast<size_t>(root.st.st_size) + 4096, '\0');
    ssize_t n = ::readlink(root.path.c_str(), target.data(), target.size());
    if (n < 0) {
      return error(ErrorKind::kIoError, "cannot read the symlink {}: {}", quote_path(root.path),
                   std::strerror(errno));
    }
    target.resize(static_cast<size_t>(n));
    root.link_target = std::move(target);
  }
  const bool is_dir = S_ISDIR(root.st.st_mode);
  const Selection::Cursor cursor = selection.cursor_at(root.path);
  Walker walker(selection, visit);
  Index index;
  std::string path = root.path;
  if (Status s = walker.emit(std::move(root)); !s) return s;
  if (!is_dir) return {};
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    log_warning("Error listing directory {}: {}", quote_path(path), std::strerror(errno));
    return {};
  }
  return walker.walk_directory(fd, index, path, cursor);
}

}  // namespace dupfs::chain

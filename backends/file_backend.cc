#include "backends/file_backend.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "backends/base/fd.h"

namespace dupfs {
namespace {

std::unexpected<Error> errno_error(int err, std::string_view what, const std::string& path) {
  ErrorKind kind = (err == ENOENT || err == ENOTDIR) ? ErrorKind::kNotFound
                   : err == EEXIST                   ? ErrorKind::kExists
                                                     : ErrorKind::kIoError;
  return error(kind, "{} {}: {}", what, path, std::strerror(err));
}

}  // namespace

Result<std::vector<std::string>> FileBackend::list() const {
  DIR* dir = ::opendir(dir_.c_str());
  if (dir == nullptr) return errno_error(errno, "cannot list", dir_);
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (e->d_type == DT_DIR) continue;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st;
      if (::fstatat(::dirfd(dir), e->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode)) continue;
    }
    names.push_back(std::move(name));
  }
  ::closedir(dir);
  return names;
}

Result<uint64_t> FileBackend::size(const std::string& name) const {
  struct stat st;
  if (::stat(path(name).c_str(), &st) != 0) return errno_error(errno, "cannot stat", path(name));
  return static_cast<uint64_t>(st.st_size);
}

Result<std::string> FileBackend::read_range(const std::string& name, uint64_t offset,
                                            size_t length) const {
  UniqueFd fd(::open(path(name).c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return errno_error(errno, "cannot open", path(name));
  std::string out(length, '\0');
  size_t got = 0;
  while (got < length) {
    ssize_t n = ::pread(fd.get(), out.data() + got, length - got, offset + got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(errno, "cannot read", path(name));
    }
    if (n == 0) break;
    got += n;
  }
  out.resize(got);
  return out;
}

Status FileBackend::write(const std::string& name, std::string_view data) {
  std::string final_path = path(name);
  struct stat st;
  if (::stat(final_path.c_str(), &st) == 0) {
    return error(ErrorKind::kExists, "refusing to overwrite {}", final_path);
  }
  std::string tmp = fmt::format("{}/.{}.dupfs-tmp.{}", dir_, name, std::random_device{}());
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (fd.get() < 0) return errno_error(errno, "cannot create", tmp);
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::unlink(tmp.c_str());
        return errno_error(err, "cannot write", tmp);
      }
      done += n;
    }
    if (::fsync(fd.get()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return errno_error(err, "cannot sync", tmp);
    }
  }
  // link() fails with EEXIST instead of replacing, so a concurrent writer can never be
  // overwritten; then drop the temporary name.
  if (::link(tmp.c_str(), final_path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return errno_error(err, "cannot create", final_path);
  }
  ::unlink(tmp.c_str());
  return {};
}

Status FileBackend::remove(const std::string& name) {
  if (::unlink(path(name).c_str()) != 0) return errno_error(errno, "cannot delete", path(name));
  return {};
}

Status make_private_dirs(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      std::string dir = path.substr(0, i);
      if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        return error(ErrorKind::kIoError, "cannot create {}: {}", dir, std::strerror(errno));
      }
    }
  }
  return {};
}

}  // namespace dupfs

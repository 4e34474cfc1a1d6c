#include "chain/restore/tree_writer.h"

#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "backends/backend_wrapper.h"
#include "backends/base/log.h"
#include "chain/format/delta.h"
#include "chain/format/difftar.h"
#include "chain/format/manifest.h"
#include "chain/format/names.h"
#include "chain/metadata/archive_dir.h"

namespace dupfs::chain {

namespace {

struct Attrs {
  int64_t uid = 0, gid = 0;
  uint32_t mode = 0;
  int64_t mtime = 0;
};

int remove_one(const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); }

// Removes whatever is at `path` (a whole tree for a directory). ENOENT is fine.
void remove_tree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    ::nftw(path.c_str(), remove_one, 16, FTW_DEPTH | FTW_PHYS);
  } else {
    ::unlink(path.c_str());
  }
}

void make_parents(const std::string& path) {
  for (size_t i = 1; i < path.size(); ++i) {
    if (path[i] == '/') ::mkdir(path.substr(0, i).c_str(), 0777);
  }
}

std::string errno_text(int e) { return fmt::format("[Errno {}] {}", e, std::strerror(e)); }

}  // namespace

struct TreeWriter::Impl {
  struct Job {
    std::string path;
    bool first = false, last = false;
    Attrs attrs;
    std::vector<DataPiece> pieces;
    size_t bytes = 0;
  };
  struct Worker {
    std::condition_variable cv;  // jobs arrived (or stop)
    std::deque<Job> jobs;
    std::thread thread;
    int fd = -1;
    std::string path;  // of the file open in fd
    bool broken = false;
  };

  std::string target;
  TreeWriterOptions options;
  OwnerMapper owners;
  std::mutex mu;
  std::condition_variable cv;  // the consumer waits for room or for the workers to be idle
  bool consumer_waiting = false;
  std::vector<std::unique_ptr<Worker>> workers;
  size_t in_flight = 0;  // bytes queued, not yet written
  size_t busy = 0;       // jobs queued or being written
  bool stop = false;
  std::optional<Error> first_error;
  uint64_t failures = 0;

  // The consumer thread's state.
  std::optional<Job> current;
  size_t next_worker = 0;
  size_t current_worker = 0;
  std::vector<std::pair<std::string, Attrs>> dirs;
  std::vector<std::string> untrusted;  // created since the last on_trusted(), in order

  explicit Impl(std::string t, TreeWriterOptions o)
      : target(std::move(t)), options(o), owners(o.numeric_owner) {
    for (unsigned i = 0; i < std::max(1u, options.threads); ++i) {
      workers.push_back(std::make_unique<Worker>());
    }
    for (auto& w : workers) {
      Worker* wp = w.get();
      wp->thread = std::thread([this, wp] { work(*wp); });
    }
  }
  ~Impl() {
    {
      std::lock_guard lock(mu);
      stop = true;
      for (auto& w : workers) w->cv.notify_all();
    }
    for (auto& w : workers) w->thread.join();
    for (auto& w : workers) {
      if (w->fd >= 0) ::close(w->fd);
    }
  }

  void record_failure(const std::string& message) {
    log_error("{}", message);
    std::lock_guard lock(mu);
    ++failures;
    if (!first_error) first_error = Error{ErrorKind::kIoError, message};
  }

  // chown, then (if that worked, as duplicity) chmod and the mtime; through `fd` when >= 0.
  void set_attrs(int fd, const std::string& path, const Attrs& a) {
    int r = fd >= 0 ? ::fchown(fd, static_cast<uid_t>(a.uid), static_cast<gid_t>(a.gid))
                    : ::lchown(path.c_str(), static_cast<uid_t>(a.uid), static_cast<gid_t>(a.gid));
    if (r != 0) {
      log_warning("Error '{}' processing {}", errno_text(errno), path);
      return;
    }
    struct timespec times[2] = {{0, UTIME_NOW}, {a.mtime, 0}};
    if (fd >= 0) {
      r = ::fchmod(fd, a.mode);
      if (r == 0) r = ::futimens(fd, times);
    } else {
      r = ::chmod(path.c_str(), a.mode);
      if (r == 0) r = ::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW);
    }
    if (r != 0) log_warning("Error '{}' processing {}", errno_text(errno), path);
  }

  int open_file(const std::string& path) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
      if (fd >= 0) return fd;
      if (errno == ENOENT) {
        make_parents(path);
      } else if (errno == ELOOP || errno == EISDIR || errno == ETXTBSY) {
        remove_tree(path);
      } else {
        return -1;
      }
    }
    return -1;
  }

  void run_job(Worker& w, Job& job) {
    if (job.first) {
      w.broken = false;
      w.path = job.path;
      w.fd = open_file(job.path);
      if (w.fd < 0) {
        w.broken = true;
        record_failure(fmt::format("cannot create {}: {}", job.path, std::strerror(errno)));
      }
    }
    if (!w.broken) {
      size_t i = 0;
      while (i < job.pieces.size()) {
        struct iovec iov[64];
        int n = 0;
        size_t want = 0;
        for (; i < job.pieces.size() && n < 64; ++i) {
          if (job.pieces[i].bytes.empty()) continue;
          iov[n].iov_base = const_cast<char*>(job.pieces[i].bytes.data());
          iov[n].iov_len = job.pieces[i].bytes.size();
          want += iov[n].iov_len;
          ++n;
        }
        // writev writes everything to a regular file unless it fails (ENOSPC, EIO).
        int k = 0;
        while (want > 0) {
          ssize_t got = ::writev(w.fd, iov + k, n - k);
          if (got < 0) {
            if (errno == EINTR) continue;
            w.broken = true;
            record_failure(fmt::format("cannot write {}: {}", w.path, std::strerror(errno)));
            break;
          }
          want -= static_cast<size_t>(got);
          size_t g = static_cast<size_t>(got);
          while (k < n && g >= iov[k].iov_len) g -= iov[k++].iov_len;
          if (k < n) {
            iov[k].iov_base = static_cast<char*>(iov[k].iov_base) + g;
            iov[k].iov_len -= g;
          }
        }
        if (w.broken) break;
      }
    }
    if (job.last) {
      if (w.fd >= 0) {
        if (!w.broken) set_attrs(w.fd, w.path, job.attrs);
        if (::close(w.fd) != 0 && !w.broken) {
          w.broken = true;
          record_failure(fmt::format("cannot write {}: {}", w.path, std::strerror(errno)));
        }
        w.fd = -1;
      }
      if (w.broken) ::unlink(w.path.c_str());
    }
  }

  void work(Worker& w) {
    std::unique_lock lock(mu);
    for (;;) {
      w.cv.wait(lock, [&] { return stop || !w.jobs.empty(); });
      if (w.jobs.empty()) return;
      Job job = std::move(w.jobs.front());
      w.jobs.pop_front();
      lock.unlock();
      run_job(w, job);
      size_t bytes = job.bytes;
      job.pieces.clear();
      lock.lock();
      in_flight -= bytes;
      --busy;
      if (consumer_waiting) cv.notify_one();
    }
  }

  void submit(Job job, size_t worker) {
    std::unique_lock lock(mu);
    consumer_waiting = true;
    cv.wait(lock, [&] { return in_flight < options.queue_bytes; });
    consumer_waiting = false;
    in_flight += job.bytes;
    ++busy;
    workers[worker]->jobs.push_back(std::move(job));
    workers[worker]->cv.notify_one();
  }

  void drain() {
    std::unique_lock lock(mu);
    consumer_waiting = true;
    cv.wait(lock, [&] { return busy == 0; });
    consumer_waiting = false;
  }

  std::string path_of(const Index& index) const {
    std::string p = target;
    for (const auto& c : index) {
      p += '/';
      p += c;
    }
    return p;
  }

  // Creates a non-regular object (not a directory); `make` returns 0 or -1 with errno.
  template <typename Make>
  bool create(const std::string& path, Make make) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (make() == 0) return true;
      if (errno == ENOENT) {
        make_parents(path);
      } else if (errno == EEXIST) {
        remove_tree(path);
      } else {
        break;
      }
    }
    log_warning("Error '{}' processing {}", errno_text(errno), path);
    return false;
  }
};

TreeWriter::TreeWriter(std::string target, TreeWriterOptions options)
    : impl_(std::make_unique<Impl>(std::move(target), options)) {}

TreeWriter::~TreeWriter() = default;

Status TreeWriter::on_object(const RestoredObject& object) {
  Impl& m = *impl_;
  const TarHeader& h = object.header;
  Attrs a{m.owners.uid(h), m.owners.gid(h), h.mode & 07777, std::max<int64_t>(h.mtime, 0)};
  std::string path = m.path_of(object.index);
  if (object.index.empty() && h.type != TarType::kDirectory) {
    // A single object restored as the target itself. duplicity deletes whatever tree is there;
    // dupfs replaces a file or an empty directory only.
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0) {
      if ((S_ISDIR(st.st_mode) ? ::rmdir(path.c_str()) : ::unlink(path.c_str())) != 0) {
        m.record_failure(fmt::format("cannot replace {} with the restored {}: {}", path,
                                     h.type == TarType::kFile ? "file" : "object",
                                     std::strerror(errno)));
        return {};
      }
    }
  }
  switch (h.type) {
    case TarType::kDirectory: {
      struct stat st;
      bool ok = ::mkdir(path.c_str(), 0777) == 0;
      if (!ok && errno == ENOENT) {
        make_parents(path);
        ok = ::mkdir(path.c_str(), 0777) == 0;
      }
      if (!ok && errno == EEXIST && ::lstat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode) &&
          (m.options.force || !object.index.empty())) {
        remove_tree(path);
        ok = ::mkdir(path.c_str(), 0777) == 0;
      }
      if (!ok && !(errno == EEXIST && ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))) {
        m.record_failure(fmt::format("cannot create directory {}: {}", path, std::strerror(errno)));
        return {};
      }
      if (ok) m.untrusted.push_back(path);
      m.dirs.emplace_back(std::move(path), a);
      return {};
    }
    case TarType::kFile:
      m.current = Impl::Job{};  // not emplace(): clang 16 rejects it for this nested struct
      m.current->path = path;
      m.current->first = true;
      m.current->attrs = a;
      m.current_worker = m.next_worker;
      m.next_worker = (m.next_worker + 1) % m.workers.size();
      m.untrusted.push_back(std::move(path));
      return {};
    case TarType::kSymlink:
      if (m.create(path, [&] { return ::symlink(h.linkname.c_str(), path.c_str()); })) {
        m.untrusted.push_back(path);
        if (::lchown(path.c_str(), static_cast<uid_t>(a.uid), static_cast<gid_t>(a.gid)) != 0) {
          log_warning("Error '{}' processing {}", errno_text(errno), path);
        }
      }
      return {};
    case TarType::kFifo:
    case TarType::kCharDevice:
    case TarType::kBlockDevice: {
      mode_t type = h.type == TarType::kFifo         ? S_IFIFO
                    : h.type == TarType::kCharDevice ? S_IFCHR
                                                     : S_IFBLK;
      dev_t dev = h.type == TarType::kFifo ? 0 : ::makedev(h.devmajor, h.devminor);
      if (m.create(path, [&] { return ::mknod(path.c_str(), type | 0600, dev); })) {
        m.untrusted.push_back(path);
        m.set_attrs(-1, path, a);
      }
      return {};
    }
    case TarType::kHardlink:
      log_warning("Error 'Hard links not supported yet' processing {}", path);
      return {};
  }
  return {};
}

Status TreeWriter::on_data(const DataPiece& piece) {
  Impl& m = *impl_;
  if (!m.current) return {};
  m.current->pieces.push_back(piece);
  m.current->bytes += piece.bytes.size();
  if (m.current->bytes >= (size_t{4} << 20)) {
    Impl::Job next;
    next.path = m.current->path;
    next.attrs = m.current->attrs;
    m.submit(std::move(*m.current), m.current_worker);
    m.current = std::move(next);
  }
  return {};
}

Status TreeWriter::on_object_end() {
  Impl& m = *impl_;
  if (!m.current) return {};
  m.current->last = true;
  m.submit(std::move(*m.current), m.current_worker);
  m.current.reset();
  return {};
}

void TreeWriter::on_trusted() { impl_->untrusted.clear(); }

Status TreeWriter::finish() {
  Impl& m = *impl_;
  m.drain();
  // Children before their parents: a directory's mtime is set after its last entry was made.
  for (auto it = m.dirs.rbegin(); it != m.dirs.rend(); ++it) m.set_attrs(-1, it->first, it->second);
  m.dirs.clear();
  std::lock_guard lock(m.mu);
  if (m.first_error) return std::unexpected(*m.first_error);
  return {};
}

void TreeWriter::discard_untrusted() {
  Impl& m = *impl_;
  if (m.current) {
    m.current->last = true;
    m.submit(std::move(*m.current), m.current_worker);
    m.current.reset();
  }
  m.drain();
  for (auto it = m.untrusted.rbegin(); it != m.untrusted.rend(); ++it) {
    struct stat st;
    if (::lstat(it->c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      ::rmdir(it->c_str());
    } else {
      ::unlink(it->c_str());
    }
  }
  m.untrusted.clear();
}

uint64_t TreeWriter::failures() const {
  std::lock_guard lock(impl_->mu);
  return impl_->failures;
}

}  // namespace dupfs::chain

#include "fs/fuse_ops.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "backends/base/log.h"
#include "fs/tree.h"

namespace dupfs::fs {
namespace {

// Snapshots never change: the kernel may keep names, attributes and pages for a long time.
constexpr double kTimeout = 86400.0;

Session& session(fuse_req_t req) { return *static_cast<Session*>(fuse_req_userdata(req)); }
Tree& tree(fuse_req_t req) { return *session(req).tree; }
bool no_open_support(fuse_req_t req) { return session(req).no_open.load(); }
bool no_opendir_support(fuse_req_t req) { return session(req).no_opendir.load(); }

struct stat to_stat(const Attr& a) {
  struct stat st {};
  st.st_ino = a.ino;
  st.st_mode = a.mode;
  st.st_nlink = a.nlink;
  st.st_uid = a.uid;
  st.st_gid = a.gid;
  st.st_size = static_cast<off_t>(a.size);
  st.st_blksize = 128 * 1024;
  st.st_blocks = static_cast<blkcnt_t>((a.size + 511) / 512);
  st.st_mtim.tv_sec = a.mtime;
  st.st_atim.tv_sec = a.mtime;
  st.st_ctim.tv_sec = a.mtime;
  st.st_rdev = a.rdev;
  return st;
}

// Replies with the errno of `e`; damage and storage failures are logged (they name the volume
// or path), ordinary misses are not.
void reply_error(fuse_req_t req, const Error& e) {
  int err = to_errno(e);
  if (err == EIO) log_error("{}", e.message);
  fuse_reply_err(req, err);
}

void op_init(void* userdata, struct fuse_conn_info* conn) {
  auto& s = *static_cast<Session*>(userdata);
  // readdirplus answers a directory's entries with their attributes where they are at hand
  // (see op_readdirplus), sparing a lookup round trip per entry.
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
  conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  if (conn->capable & FUSE_CAP_SPLICE_WRITE) conn->want |= FUSE_CAP_SPLICE_WRITE;
  conn->max_readahead = 1 << 20;
  // Symlink targets never change: let the kernel keep them (every path through
  // /snapshots/latest resolves that link).
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  s.no_open = (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) != 0;
  s.no_opendir = (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0;
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  ++session(req).lookups;
  auto a = tree(req).lookup(parent, name);
  if (!a) return reply_error(req, a.error());
  fuse_entry_param e{};
  e.ino = a->ino;
  e.generation = 1;
  e.attr = to_stat(*a);
  e.attr_timeout = kTimeout;
  e.entry_timeout = kTimeout;
  fuse_reply_entry(req, &e);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  ++session(req).getattrs;
  auto a = tree(req).getattr(ino);
  if (!a) return reply_error(req, a.error());
  struct stat st = to_stat(*a);
  fuse_reply_attr(req, &st, kTimeout);
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  ++session(req).readlinks;
  auto target = tree(req).readlink(ino);
  if (!target) return reply_error(req, target.error());
  fuse_reply_readlink(req, target->c_str());
}

// Opening needs nothing from the daemon (files are stateless, the mount is read-only, so the
// kernel refuses writes itself): ENOSYS tells a kernel with no-open support to stop sending
// open and release, and to keep page caches (FOPEN_KEEP_CACHE). Older kernels get a plain
// successful open with the same flags.
void op_open(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
    fuse_reply_err(req, EROFS);
    return;
  }
  if (no_open_support(req)) {
    fuse_reply_err(req, ENOSYS);
    return;
  }
  fi->keep_cache = 1;
  fi->noflush = 1;
  fuse_reply_open(req, fi);
}

// One buffer per worker thread, reused: a fresh allocation of a read's size (128 KiB and more)
// is an mmap, page faults and an munmap per request.
char* thread_buffer(size_t size) {
  thread_local std::unique_ptr<char[]> buf;
  thread_local size_t capacity = 0;
  if (capacity < size) {
    buf = std::make_unique_for_overwrite<char[]>(size);
    capacity = size;
  }
  return buf.get();
}

// cp, tar, rsync and file managers read a directory's files one after another, and each read
// of a small file is a round trip through the kernel (a request, two wakeups) that costs more
// than the bytes. So after the first read of a file, the files that follow it in its
// directory, when their bytes are decoded already, go straight into the kernel's page cache
// (notify_store): reading them then costs no request. Only bytes at hand are pushed, nothing
// is fetched or decoded for it; the kernel refuses inodes it does not know (ENOENT).
constexpr size_t kPushFiles = 32;
constexpr uint64_t kPushMaxFileSize = 1 << 20;

void push_following(Session& s, fuse_ino_t ino) {
  if (!s.push.load(std::memory_order_relaxed)) return;
  std::unique_lock lock(s.push_mu, std::try_to_lock);
  if (!lock.owns_lock()) return;
  for (uint64_t next : s.tree->files_after(ino, kPushFiles)) {
    if (s.pushed.contains(next)) continue;
    auto a = s.tree->attr_if_ready(next);
    if (!a) return;  // not catalogued yet: nor are the files after it
    if (a->size == 0) continue;
    // A larger file is left to the reader, and so is everything after it: pushing past it
    // would tell the decoder the reader got that far, and a small cache could drop the
    // file's blocks before the reader comes for them.
    if (a->size > kPushMaxFileSize) return;
    if (s.push_buffer.size() < a->size) s.push_buffer.resize(a->size);
    char* buf = s.push_buffer.data();
    auto n = s.tree->read_if_ready(next, 0, buf, a->size);
    if (!n) return;  // not decoded yet: nor are the files after it
    if (*n != a->size) continue;
    fuse_bufvec bv = FUSE_BUFVEC_INIT(*n);
    bv.buf[0].mem = buf;
    int rc = fuse_lowlevel_notify_store(s.se, next, 0, &bv, FUSE_BUF_NO_SPLICE);
    if (rc == 0) {
      ++s.pushes;
      if (s.pushed.size() >= Session::kMaxPushed) s.pushed.clear();
      s.pushed.insert(next);
    } else if (rc != -ENOENT) {
      s.push = false;
      log_info("the kernel refuses data pushed into its page cache ({}): reads only from now",
               std::strerror(-rc));
      return;
    }
  }
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  Session& s = session(req);
  ++s.reads;
  char* buf = thread_buffer(size);
  auto n = s.tree->read(ino, static_cast<uint64_t>(off), buf, size);
  if (!n) return reply_error(req, n.error());
  fuse_reply_buf(req, buf, *n);
  if (off == 0) push_following(s, ino);
}

void op_opendir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  if (no_opendir_support(req)) {
    fuse_reply_err(req, ENOSYS);  // as op_open: no more opendir/releasedir, cached listings
    return;
  }
  fi->cache_readdir = 1;
  fi->keep_cache = 1;
  fuse_reply_open(req, fi);
}

// Offers "." and ".." (offsets 0 and 1), then the tree's entries from offset 2, to `add` until
// the buffer is full, and sends the reply.
void reply_entries(fuse_req_t req, fuse_ino_t ino, off_t off, const DirFiller& add, const char* buf,
                   const size_t& used) {
  ++session(req).readdirs;
  uint64_t pos = static_cast<uint64_t>(off);
  if (pos == 0 && !add(".", ino, S_IFDIR, 1)) return (void)fuse_reply_buf(req, buf, used);
  if (pos <= 1) {
    if (!add("..", ino, S_IFDIR, 2)) return (void)fuse_reply_buf(req, buf, used);
    pos = 2;
  }
  auto st = tree(req).readdir(ino, pos - 2,
                              [&](std::string_view name, uint64_t e, uint32_t mode, uint64_t next) {
                                return add(name, e, mode, next + 2);
                              });
  if (!st) return reply_error(req, st.error());
  fuse_reply_buf(req, buf, used);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  char* buf = thread_buffer(size);  // not zeroed: fuse_add_direntry* fill what is sent
  size_t used = 0;
  auto add = [&](std::string_view name, uint64_t entry_ino, uint32_t mode, uint64_t next) {
    struct stat st {};
    st.st_ino = entry_ino;
    st.st_mode = mode;
    std::string n(name);
    size_t len =
        fuse_add_direntry(req, buf + used, size - used, n.c_str(), &st, static_cast<off_t>(next));
    if (len > size - used) return false;
    used += len;
    return true;
  };
  reply_entries(req, ino, off, add, buf, used);
}

// Like op_readdir, with attributes for the entries whose attributes are at hand without
// waiting (directories, links, devices, files whose volumes are catalogued). The others go out
// with node id 0, which tells the kernel to look them up when they are used: sizes of regular
// files may need a volume decoded, and listing a directory must not wait for that.
void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  char* buf = thread_buffer(size);  // not zeroed: fuse_add_direntry* fill what is sent
  size_t used = 0;
  auto add = [&](std::string_view name, uint64_t entry_ino, uint32_t mode, uint64_t next) {
    fuse_entry_param e{};
    std::optional<Attr> attr;
    if (name != "." && name != "..") attr = tree(req).attr_if_ready(entry_ino);
    if (attr) {
      e.ino = attr->ino;
      e.generation = 1;
      e.attr = to_stat(*attr);
      e.attr_timeout = kTimeout;
      e.entry_timeout = kTimeout;
    } else {
      e.attr.st_ino = entry_ino;
      e.attr.st_mode = mode;
    }
    std::string n(name);
    size_t len = fuse_add_direntry_plus(req, buf + used, size - used, n.c_str(), &e,
                                        static_cast<off_t>(next));
    if (len > size - used) return false;
    used += len;
    return true;
  };
  reply_entries(req, ino, off, add, buf, used);
}

void op_statfs(fuse_req_t req, fuse_ino_t) {
  FsStats s = tree(req).stats();
  struct statvfs sv {};
  sv.f_bsize = 4096;
  sv.f_frsize = 4096;
  sv.f_blocks = (s.bytes + 4095) / 4096;
  sv.f_files = s.files;
  sv.f_namemax = 255;
  sv.f_flag = ST_RDONLY;
  fuse_reply_statfs(req, &sv);
}

void op_access(fuse_req_t req, fuse_ino_t ino, int mask) {
  if (mask & W_OK) {
    fuse_reply_err(req, EROFS);
    return;
  }
  auto a = tree(req).getattr(ino);
  if (!a) return reply_error(req, a.error());
  fuse_reply_err(req, 0);
}

// duplicity keeps no extended attributes. ENOSYS makes the kernel answer EOPNOTSUPP from now
// on without asking (cp -a and file managers ask for every file).
void op_getxattr(fuse_req_t req, fuse_ino_t, const char*, size_t) { fuse_reply_err(req, ENOSYS); }
void op_listxattr(fuse_req_t req, fuse_ino_t, size_t) { fuse_reply_err(req, ENOSYS); }

void op_erofs_setxattr(fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) {
  fuse_reply_err(req, EROFS);
}
void op_erofs_removexattr(fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }
void op_erofs_setattr(fuse_req_t req, fuse_ino_t, struct stat*, int, fuse_file_info*) {
  fuse_reply_err(req, EROFS);
}
void op_erofs_mknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) {
  fuse_reply_err(req, EROFS);
}
void op_erofs_mkdir(fuse_req_t req, fuse_ino_t, const char*, mode_t) { fuse_reply_err(req, EROFS); }
void op_erofs_unlink(fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }
void op_erofs_symlink(fuse_req_t req, const char*, fuse_ino_t, const char*) {
  fuse_reply_err(req, EROFS);
}
void op_erofs_rename(fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*,
                     unsigned int) {
  fuse_reply_err(req, EROFS);
}
void op_erofs_link(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) {
  fuse_reply_err(req, EROFS);
}
void op_erofs_create(fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) {
  fuse_reply_err(req, EROFS);
}

fuse_lowlevel_ops make_operations() {
  fuse_lowlevel_ops ops{};
  ops.init = op_init;
  ops.lookup = op_lookup;
  ops.getattr = op_getattr;
  ops.readlink = op_readlink;
  ops.open = op_open;
  ops.read = op_read;
  ops.opendir = op_opendir;
  ops.readdir = op_readdir;
  ops.readdirplus = op_readdirplus;
  ops.statfs = op_statfs;
  ops.access = op_access;
  ops.getxattr = op_getxattr;
  ops.listxattr = op_listxattr;
  ops.setxattr = op_erofs_setxattr;
  ops.removexattr = op_erofs_removexattr;
  ops.setattr = op_erofs_setattr;
  ops.mknod = op_erofs_mknod;
  ops.mkdir = op_erofs_mkdir;
  ops.unlink = op_erofs_unlink;
  ops.rmdir = op_erofs_unlink;
  ops.symlink = op_erofs_symlink;
  ops.rename = op_erofs_rename;
  ops.link = op_erofs_link;
  ops.create = op_erofs_create;
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& operations() {
  static const fuse_lowlevel_ops ops = make_operations();
  return ops;
}

}  // namespace dupfs::fs

// stall_fs: a read-only passthrough FUSE filesystem whose reads can be made to hang, standing in
// for a hung NFS mount or a dying disk under a file:// backup location (issue 7: no read waits
// forever).
//
//   stall_fs BACKING_DIR MOUNTPOINT [fuse options, e.g. -f]
//
// SIGUSR1: from now on every read blocks (until SIGUSR2); SIGUSR2: blocked reads go on and new
// ones are served again. Listing and stat are never blocked.
#define FUSE_USE_VERSION 35
#include <dirent.h>
#include <fcntl.h>
#include <fuse3/fuse.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

std::string g_backing;
std::atomic<bool> g_stalled{false};

std::string backing_path(const char* path) { return g_backing + path; }

int do_getattr(const char* path, struct stat* st, fuse_file_info*) {
  return ::lstat(backing_path(path).c_str(), st) == 0 ? 0 : -errno;
}

int do_readdir(const char* path, void* buf, fuse_fill_dir_t fill, off_t, fuse_file_info*,
               fuse_readdir_flags) {
  DIR* d = ::opendir(backing_path(path).c_str());
  if (d == nullptr) return -errno;
  while (dirent* e = ::readdir(d)) fill(buf, e->d_name, nullptr, 0, fuse_fill_dir_flags{});
  ::closedir(d);
  return 0;
}

int do_open(const char* path, fuse_file_info* fi) {
  if ((fi->flags & O_ACCMODE) != O_RDONLY) return -EROFS;
  int fd = ::open(backing_path(path).c_str(), O_RDONLY);
  if (fd < 0) return -errno;
  fi->fh = static_cast<uint64_t>(fd);
  fi->direct_io = 1;  // every read reaches us: nothing is served from the page cache
  return 0;
}

int do_read(const char*, char* buf, size_t size, off_t off, fuse_file_info* fi) {
  while (g_stalled.load()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ssize_t n = ::pread(static_cast<int>(fi->fh), buf, size, off);
  return n < 0 ? -errno : static_cast<int>(n);
}

int do_release(const char*, fuse_file_info* fi) {
  ::close(static_cast<int>(fi->fh));
  return 0;
}

void on_signal(int sig) { g_stalled.store(sig == SIGUSR1); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: stall_fs BACKING_DIR MOUNTPOINT [fuse options]\n");
    return 2;
  }
  char resolved[PATH_MAX];
  if (::realpath(argv[1], resolved) == nullptr) {
    std::fprintf(stderr, "stall_fs: %s: %s\n", argv[1], std::strerror(errno));
    return 1;
  }
  g_backing = resolved;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGUSR1, &sa, nullptr);
  ::sigaction(SIGUSR2, &sa, nullptr);

  fuse_operations ops{};
  ops.getattr = do_getattr;
  ops.readdir = do_readdir;
  ops.open = do_open;
  ops.read = do_read;
  ops.release = do_release;
  std::vector<char*> args{argv[0]};
  for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
  return fuse_main(static_cast<int>(args.size()), args.data(), &ops, nullptr);
}

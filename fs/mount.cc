#include "fs/mount.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "backends/base/log.h"
#include "fs/fuse_ops.h"

namespace dupfs::fs {

Status check_mountpoint(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return error(ErrorKind::kInvalidArgument, "mountpoint {}: {}", path, std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    return error(ErrorKind::kInvalidArgument, "mountpoint {} is not a directory", path);
  }
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) {
    return error(ErrorKind::kInvalidArgument, "mountpoint {}: {}", path, std::strerror(errno));
  }
  bool empty = true;
  while (struct dirent* e = ::readdir(dir)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      empty = false;
      break;
    }
  }
  ::closedir(dir);
  if (!empty) return error(ErrorKind::kInvalidArgument, "mountpoint {} is not empty", path);
  return {};
}

Status serve(Tree& tree, const MountOptions& options) {
  std::vector<std::string> argv{"dupfs", "-o",
                                "ro,default_permissions,subtype=dupfs,fsname=" + options.fsname};
  for (const auto& o : options.fuse_options) {
    argv.push_back("-o");
    argv.push_back(o);
  }
  if (options.debug) argv.push_back("-d");
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(cargv.size()), cargv.data());

  Session session;
  session.tree = &tree;
  fuse_session* se = fuse_session_new(&args, &operations(), sizeof(fuse_lowlevel_ops), &session);
  fuse_opt_free_args(&args);
  if (se == nullptr) return error(ErrorKind::kInvalidArgument, "invalid FUSE options");
  session.se = se;
  if (fuse_set_signal_handlers(se) != 0) {
    fuse_session_destroy(se);
    return error(ErrorKind::kIoError, "cannot install signal handlers");
  }
  if (fuse_session_mount(se, options.mountpoint.c_str()) != 0) {
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return error(ErrorKind::kIoError, "cannot mount on {}", options.mountpoint);
  }
  fuse_daemonize(options.foreground ? 1 : 0);
  if (options.on_mounted) options.on_mounted();

  fuse_loop_config config{};
  config.clone_fd = 1;
  config.max_idle_threads = 16;
  int rc = fuse_session_loop_mt(se, &config);
  log_info("answered {} lookups, {} getattrs, {} reads, {} readdirs, {} readlinks; pushed {} files",
           session.lookups.load(), session.getattrs.load(), session.reads.load(),
           session.readdirs.load(), session.readlinks.load(), session.pushes.load());

  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  if (rc != 0 && rc != SIGINT && rc != SIGTERM && rc != SIGHUP) {
    return error(ErrorKind::kIoError, "FUSE session ended with error {}", rc);
  }
  return {};
}

}  // namespace dupfs::fs

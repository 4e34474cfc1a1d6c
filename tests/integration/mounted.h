// A dupfs mount owned by a test: started in the foreground as a Background process, waited for
// until the kernel shows it, and always unmounted (fusermount3 -u, then a lazy unmount and SIGKILL
// if the daemon does not go) when the object is destroyed.
#pragma once

#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace dupfs::test {

// open + read to the end, recording the first failing call and its errno.
struct ReadOutcome {
  bool ok = false;
  std::string data;
  int err = 0;
  std::string step;  // "open" or "read" when !ok
};

inline ReadOutcome read_through(const std::string& path) {
  ReadOutcome o;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    o.err = errno;
    o.step = "open";
    return o;
  }
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      o.err = errno;
      o.step = "read at " + std::to_string(o.data.size());
      ::close(fd);
      return o;
    }
    if (n == 0) break;
    o.data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  o.ok = true;
  return o;
}

inline bool is_mounted(const std::string& mountpoint) {
  std::ifstream f("/proc/self/mounts");
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string dev, dir;
    in >> dev >> dir;
    if (dir == mountpoint) return true;
  }
  return false;
}

class Mounted {
 public:
  // Runs `dupfs mount -f <args...> URL MOUNTPOINT` with `env` added; stdout and stderr go to
  // `log_path`. ok() once the kernel shows the mount (within 60 s), false if the daemon exited
  // first.
  Mounted(const std::string& url, const std::string& mountpoint, const std::string& log_path,
          const std::vector<std::string>& args, const std::map<std::string, std::string>& env)
      : mountpoint_(mountpoint), log_path_(log_path) {
    std::vector<std::string> argv{DUPFS_BINARY, "mount", "-f"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(url);
    argv.push_back(mountpoint);
    daemon_.emplace(argv, log_path, env);
    wait_until([&] { return is_mounted(mountpoint_) || !daemon_->running(); },
               std::chrono::seconds(60));
    ok_ = is_mounted(mountpoint_);
  }

  ~Mounted() { unmount(); }
  Mounted(const Mounted&) = delete;
  Mounted& operator=(const Mounted&) = delete;

  bool ok() const { return ok_; }
  std::string log() const {
    std::ifstream f(log_path_);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  // Unmounts and waits for the daemon (fusermount3 -u, then after 20 s a lazy unmount and
  // SIGKILL); returns its exit code, or -1 when it was unmounted before.
  int unmount() {
    if (!daemon_) {
      if (is_mounted(mountpoint_)) run({"fusermount3", "-uz", mountpoint_});
      return -1;
    }
    if (is_mounted(mountpoint_))
      run({"fusermount3", "-u", mountpoint_}, {}, std::chrono::seconds(30));
    std::optional<int> code = daemon_->wait(std::chrono::seconds(20));
    if (!code) {
      run({"fusermount3", "-uz", mountpoint_});
      code = daemon_->kill();
    }
    daemon_.reset();
    if (is_mounted(mountpoint_)) run({"fusermount3", "-uz", mountpoint_});
    return *code;
  }

  // The daemon's process id; -1 once it has been waited for.
  pid_t pid() const { return daemon_ ? daemon_->pid() : -1; }
  // Sends `sig` to the daemon; false when it is no longer running.
  bool signal(int sig) { return daemon_ && daemon_->signal(sig); }
  // Waits up to `timeout` for the daemon to exit: its exit code, or nullopt while it runs.
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    return daemon_ ? daemon_->wait(timeout) : std::optional<int>(-1);
  }

 private:
  std::string mountpoint_;
  std::string log_path_;
  std::optional<Background> daemon_;
  bool ok_ = false;
};

}  // namespace dupfs::test

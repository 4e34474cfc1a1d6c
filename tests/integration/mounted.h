// A dupfs mount owned by a test: started in the foreground as a child process, waited for until
// the kernel shows it, and always unmounted (fusermount3 -u, then a lazy unmount and SIGKILL if
// the daemon does not go) when the object is destroyed.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/process.h"

namespace dupfs::test {

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
  // Runs `dupfs mount -f <args...> URL MOUNTPOINT` with `env` added; stderr goes to `log_path`.
  Mounted(const std::string& url, const std::string& mountpoint, const std::string& log_path,
          const std::vector<std::string>& args, const std::map<std::string, std::string>& env)
      : mountpoint_(mountpoint), log_path_(log_path) {
    std::vector<std::string> argv{DUPFS_BINARY, "mount", "-f"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(url);
    argv.push_back(mountpoint);
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      ::dup2(fd, 2);
      ::dup2(fd, 1);
      int devnull = ::open("/dev/null", O_RDONLY);
      ::dup2(devnull, 0);
      for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      ::execv(cargv[0], cargv.data());
      ::_exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      if (is_mounted(mountpoint_)) {
        ok_ = true;
        return;
      }
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
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

  // Unmounts and waits for the daemon; returns its exit status (or -1).
  int unmount() {
    if (pid_ <= 0) {
      if (is_mounted(mountpoint_)) run({"fusermount3", "-uz", mountpoint_});
      return -1;
    }
    if (is_mounted(mountpoint_))
      run({"fusermount3", "-u", mountpoint_}, {}, std::chrono::seconds(30));
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        run({"fusermount3", "-uz", mountpoint_});
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
    if (is_mounted(mountpoint_)) run({"fusermount3", "-uz", mountpoint_});
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  pid_t pid() const { return pid_; }

 private:
  std::string mountpoint_;
  std::string log_path_;
  pid_t pid_ = -1;
  bool ok_ = false;
};

}  // namespace dupfs::test

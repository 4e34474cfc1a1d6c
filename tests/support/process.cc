#include "tests/support/process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <thread>

extern char** environ;

namespace dupfs::test {
namespace {

using Clock = std::chrono::steady_clock;

// Closes an fd once; -1 means closed.
void close_fd(int& fd) {
  if (fd >= 0) {
    ::close(fd);
    fd = -1;
  }
}

struct Pipe {
  int read = -1;
  int write = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      throw std::system_error(errno, std::generic_category(), "pipe2");
    }
    read = fds[0];
    write = fds[1];
  }
  ~Pipe() {
    close_fd(read);
    close_fd(write);
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
};

void set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// Reads what is available (at most max_reads buffers, so a chatty child cannot starve the
// timeout check); closes fd at EOF or on a hard error.
void read_some(int& fd, std::string& sink, int max_reads) {
  char buf[65536];
  for (int i = 0; i < max_reads; ++i) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      sink.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    close_fd(fd);
    return;
  }
}

std::string quote_arg(const std::string& s) {
  bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || std::strchr("-_./=:,+@%", c) != nullptr;
  });
  if (plain) return s;
  std::string q = "'";
  for (unsigned char c : s) {
    if (c == '\'' || c == '\\') {
      q += '\\';
      q += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      q += fmt::format("\\x{:02x}", c);
    } else {
      q += static_cast<char>(c);
    }
  }
  return q + "'";
}

std::string tail(const std::string& s, size_t n) {
  return s.size() <= n ? s : "..." + s.substr(s.size() - n);
}

// The environment a child gets: ours, minus the names in unset_env, with extra_env added or
// replacing values.
std::vector<std::string> child_environment(const std::map<std::string, std::string>& extra_env,
                                           const std::vector<std::string>& unset_env) {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  for (const auto& name : unset_env) env.erase(name);
  for (const auto& [name, value] : extra_env) env[name] = value;
  std::vector<std::string> strings;
  strings.reserve(env.size());
  for (const auto& [name, value] : env) strings.push_back(name + "=" + value);
  return strings;
}

// execve's form of `strings`: pointers into them, then a null pointer.
std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (auto& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

// A wait status as a shell reports it: the exit status, or 128 + N after signal N.
int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Forks a child in its own process group, with pipes for stdin, stdout and stderr and the
// default signal mask, and calls in_child(error_fd) there; the child _exit(127)s if in_child
// returns. Feeds stdin_data and collects stdout and stderr until the child exits or `timeout`
// passes (then kills its group). in_child writes an errno to error_fd when it cannot exec: the
// result is then exit code 127 with "cannot execute <what>: <reason>" as stderr.
// Everything in_child uses must be built before: only async-signal-safe calls after the fork.
ProcessResult fork_and_collect(const std::function<void(int error_fd)>& in_child,
                               const std::string& what, const std::string& stdin_data,
                               std::chrono::seconds timeout) {
  Pipe in, out, err, exec_error;

  // Writing to a child that already exited must not kill us: block SIGPIPE in this thread and
  // swallow the one we cause (if none was pending before).
  sigset_t pipe_set, old_mask, pending_before;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
  sigpending(&pending_before);
  bool sigpipe_was_pending = sigismember(&pending_before, SIGPIPE) == 1;

  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    throw std::system_error(e, std::generic_category(), "fork");
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(in.read, 0);
    ::dup2(out.write, 1);
    ::dup2(err.write, 2);
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t empty;
    sigemptyset(&empty);
    ::sigprocmask(SIG_SETMASK, &empty, nullptr);
    in_child(exec_error.write);
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also in the parent, so a timeout can never miss the group
  close_fd(in.read);
  close_fd(out.write);
  close_fd(err.write);
  close_fd(exec_error.write);

  ProcessResult result;
  int exec_errno = 0;
  ssize_t got;
  do {
    got = ::read(exec_error.read, &exec_errno, sizeof exec_errno);
  } while (got < 0 && errno == EINTR);
  int status = 0;
  if (got == static_cast<ssize_t>(sizeof exec_errno)) {
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    result.exit_code = 127;
    result.err = fmt::format("cannot execute {}: {}", what, std::strerror(exec_errno));
    return result;
  }

  set_nonblocking(out.read);
  set_nonblocking(err.read);
  set_nonblocking(in.write);
  if (stdin_data.empty()) close_fd(in.write);
  size_t written = 0;

  // A pidfd makes the child's exit a poll event; without one, poll in short ticks.
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  const auto deadline = Clock::now() + timeout;
  bool exited = false;
  for (;;) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    auto now = Clock::now();
    if (now >= deadline) break;
    pollfd fds[4];
    int n = 0;
    int out_i = -1, err_i = -1, in_i = -1;
    if (out.read >= 0) fds[out_i = n++] = {out.read, POLLIN, 0};
    if (err.read >= 0) fds[err_i = n++] = {err.read, POLLIN, 0};
    if (in.write >= 0) fds[in_i = n++] = {in.write, POLLOUT, 0};
    if (pidfd >= 0) fds[n++] = {pidfd, POLLIN, 0};
    auto remaining = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
    int wait_ms = static_cast<int>(std::min<long long>(remaining, pidfd >= 0 ? 1000 : 20));
    int r = ::poll(fds, static_cast<nfds_t>(n), wait_ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (out_i >= 0 && fds[out_i].revents != 0) read_some(out.read, result.out, 16);
    if (err_i >= 0 && fds[err_i].revents != 0) read_some(err.read, result.err, 16);
    if (in_i >= 0 && fds[in_i].revents != 0) {
      if (fds[in_i].revents & (POLLERR | POLLHUP)) {
        close_fd(in.write);
      } else {
        ssize_t w = ::write(in.write, stdin_data.data() + written, stdin_data.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == stdin_data.size()) {
          close_fd(in.write);
        }
      }
    }
  }

  if (!exited) {
    // Timed out (or poll failed): kill the whole group, then reap.
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.timed_out = true;
  }
  // What the child wrote before exiting is in the pipes; grandchildren may keep them open, so read
  // only what is there now.
  if (out.read >= 0) read_some(out.read, result.out, 64);
  if (err.read >= 0) read_some(err.read, result.err, 64);
  if (pidfd >= 0) ::close(pidfd);
  close_fd(in.write);

  sigset_t pending_after;
  sigpending(&pending_after);
  if (!sigpipe_was_pending && sigismember(&pending_after, SIGPIPE) == 1) {
    timespec zero{0, 0};
    ::sigtimedwait(&pipe_set, nullptr, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);

  result.exit_code = exit_code_of(status);
  return result;
}

}  // namespace

std::string describe(const std::vector<std::string>& argv, const ProcessResult& result) {
  std::string cmd;
  for (const auto& a : argv) {
    if (!cmd.empty()) cmd += ' ';
    cmd += quote_arg(a);
  }
  return fmt::format("command: {}\nexit code: {}{}\n--- stdout ---\n{}\n--- stderr ---\n{}\n", cmd,
                     result.exit_code, result.timed_out ? " (timed out, killed)" : "",
                     tail(result.out, 4000), tail(result.err, 8000));
}

ProcessResult run(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& extra_env, std::chrono::seconds timeout,
                  const std::string& stdin_data, const std::vector<std::string>& unset_env) {
  if (argv.empty()) throw std::invalid_argument("run: empty argv");
  std::vector<std::string> env = child_environment(extra_env, unset_env);
  std::vector<char*> envp = c_strings(env);
  std::vector<std::string> args = argv;
  std::vector<char*> cargv = c_strings(args);
  return fork_and_collect(
      [&](int error_fd) {
        ::execvpe(cargv[0], cargv.data(), envp.data());
        int e = errno;
        ssize_t ignored = ::write(error_fd, &e, sizeof e);
        (void)ignored;
      },
      argv[0], stdin_data, timeout);
}

ProcessResult run_in_child(const std::function<int()>& body, std::chrono::seconds timeout) {
  return fork_and_collect(
      [&](int error_fd) {
        ::close(error_fd);  // no exec to report; the parent reads output from now on
        int code = body();
        std::fflush(nullptr);
        ::_exit(code);
      },
      "", "", timeout);
}

Background::Background(const std::vector<std::string>& argv, const std::string& log_path,
                       const std::map<std::string, std::string>& extra_env) {
  if (argv.empty()) throw std::invalid_argument("Background: empty argv");
  std::vector<std::string> env = child_environment(extra_env, {});
  std::vector<char*> envp = c_strings(env);
  std::vector<std::string> args = argv;
  std::vector<char*> cargv = c_strings(args);
  pid_ = ::fork();
  if (pid_ < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid_ == 0) {
    ::setpgid(0, 0);
    int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log >= 0) {
      ::dup2(log, 1);
      ::dup2(log, 2);
    }
    if (null >= 0) ::dup2(null, 0);
    ::execvpe(cargv[0], cargv.data(), envp.data());
    ::_exit(127);
  }
  ::setpgid(pid_, pid_);  // also in the parent, so kill() can never miss the group
}

bool Background::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0 || (r < 0 && errno == EINTR)) return true;
  exit_code_ = r == pid_ ? exit_code_of(status) : -1;  // -1: reaped by somebody else
  pid_ = -1;
  return false;
}

bool Background::signal(int sig) { return running() && ::kill(pid_, sig) == 0; }

std::optional<int> Background::wait(std::chrono::milliseconds timeout) {
  if (!wait_until([this] { return !running(); }, timeout)) return std::nullopt;
  return exit_code_;
}

int Background::kill() {
  if (running()) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    int status = 0;
    pid_t r;
    while ((r = ::waitpid(pid_, &status, 0)) < 0 && errno == EINTR) {
    }
    exit_code_ = r == pid_ ? exit_code_of(status) : -1;
    pid_ = -1;
  }
  return exit_code_.value_or(-1);
}

Background::~Background() {
  if (!running()) return;
  ::kill(pid_, SIGTERM);
  if (!wait_until([this] { return !running(); }, std::chrono::seconds(10))) kill();
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace dupfs::test

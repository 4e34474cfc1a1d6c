// Test helpers: private temporary directories and temporary GnuPG homes driven by the real gpg.
// Header-only. Failures throw std::runtime_error (GoogleTest reports them as test failures).
//
// Every GpgHome kills the gpg-agent it caused to start when it is destroyed, so tests leave no
// agents behind. Passphrases reach gpg through a pipe (--passphrase-fd 0), never through the
// command line.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "tests/support/temp_dir.h"

extern char** environ;

namespace dupfs::test {

struct CommandResult {
  int exit_code = -1;  // 128 + signal number when killed by a signal
  std::string out;
  std::string err;
};

namespace gpg_home_detail {

inline void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Runs argv[0] (looked up in PATH) with `input` on its stdin, collecting stdout and stderr.
inline CommandResult run(const std::vector<std::string>& argv, std::string_view input = {}) {
  // A child that exits without reading its stdin must not kill us with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0 ||
      ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), "pipe2");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  int to_child = in_pipe[1], from_out = out_pipe[0], from_err = err_pipe[0];
  if (rc != 0) {
    close_fd(to_child);
    close_fd(from_out);
    close_fd(from_err);
    throw std::system_error(rc, std::generic_category(), "spawn " + argv[0]);
  }

  CommandResult result;
  if (input.empty()) {
    close_fd(to_child);
  } else {
    ::fcntl(to_child, F_SETFL, ::fcntl(to_child, F_GETFL) | O_NONBLOCK);
  }
  while (to_child >= 0 || from_out >= 0 || from_err >= 0) {
    pollfd fds[3];
    nfds_t n = 0;
    if (to_child >= 0) fds[n++] = {to_child, POLLOUT, 0};
    if (from_out >= 0) fds[n++] = {from_out, POLLIN, 0};
    if (from_err >= 0) fds[n++] = {from_err, POLLIN, 0};
    if (::poll(fds, n, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == to_child) {
        ssize_t w = ::write(to_child, input.data(), input.size());
        if (w > 0) input.remove_prefix(static_cast<size_t>(w));
        if (w < 0 && errno != EINTR && errno != EAGAIN) input = {};
        if (input.empty()) close_fd(to_child);
      } else {
        char buffer[8192];
        ssize_t r = ::read(fds[i].fd, buffer, sizeof buffer);
        if (r > 0) {
          (fds[i].fd == from_out ? result.out : result.err).append(buffer, static_cast<size_t>(r));
        } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
          close_fd(fds[i].fd == from_out ? from_out : from_err);
        }
      }
    }
  }
  close_fd(to_child);
  close_fd(from_out);
  close_fd(from_err);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace gpg_home_detail

// A temporary GNUPGHOME (mode 0700). All gpg calls made through it use --homedir, so neither
// the process environment nor ~/.gnupg is touched.
class GpgHome {
 public:
  GpgHome() : dir_("dupfs-gnupg-") { ::chmod(dir_.path().c_str(), 0700); }
  ~GpgHome() {
    try {
      gpg_home_detail::run({"gpgconf", "--homedir", dir_.path(), "--kill", "all"});
    } catch (...) {
    }
  }
  GpgHome(const GpgHome&) = delete;
  GpgHome& operator=(const GpgHome&) = delete;

  const std::string& path() const { return dir_.path(); }

  // Runs `gpg --batch --homedir H --pinentry-mode loopback <args>` with `input` on stdin
  // (e.g. a passphrase for --passphrase-fd 0). Does not check the exit code.
  CommandResult gpg(std::vector<std::string> args, std::string_view input = {}) const {
    std::vector<std::string> argv{"gpg",  "--batch",         "--no-tty", "--homedir",
                                  path(), "--pinentry-mode", "loopback"};
    argv.insert(argv.end(), args.begin(), args.end());
    return gpg_home_detail::run(argv, input);
  }

  // Like gpg(), but throws when gpg fails.
  CommandResult gpg_checked(std::vector<std::string> args, std::string_view input = {}) const {
    CommandResult r = gpg(args, input);
    if (r.exit_code != 0) {
      std::string command = "gpg";
      for (const auto& a : args) command += " " + a;
      throw std::runtime_error(command + " failed (exit " + std::to_string(r.exit_code) +
                               "): " + r.err);
    }
    return r;
  }

  // Makes a key pair (ed25519 signing key with a cv25519 encryption subkey: quick to make)
  // protected by `passphrase` (none when empty) and returns its fingerprint.
  std::string generate_key(const std::string& uid, const std::string& passphrase = "") const {
    CommandResult r = gpg_checked({"--passphrase-fd", "0", "--status-fd", "1", "--quick-gen-key",
                                   uid, "future-default", "default", "never"},
                                  passphrase + "\n");
    // [GNUPG:] KEY_CREATED B <fingerprint> ...
    static constexpr std::string_view kTag = "[GNUPG:] KEY_CREATED ";
    size_t at = r.out.find(kTag);
    if (at != std::string::npos) {
      size_t type_end = r.out.find(' ', at + kTag.size());
      if (type_end != std::string::npos) {
        size_t fpr_end = r.out.find_first_of(" \n", type_end + 1);
        return r.out.substr(type_end + 1, fpr_end - type_end - 1);
      }
    }
    throw std::runtime_error("gpg --quick-gen-key printed no KEY_CREATED: " + r.out + r.err);
  }

  // gpg --symmetric with gpg's defaults (AES256, iterated+salted S2K, compression, MDC), as
  // duplicity does. `extra` goes before --symmetric (e.g. {"--compress-algo", "none"}).
  void encrypt_symmetric(const std::string& in_file, const std::string& out_file,
                         const std::string& passphrase,
                         const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args{"--yes", "--passphrase-fd", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"--output", out_file, "--symmetric", in_file});
    gpg_checked(args, passphrase + "\n");
  }

  // gpg --encrypt to one recipient (trusted without a trust database).
  void encrypt_to(const std::string& in_file, const std::string& out_file,
                  const std::string& fingerprint,
                  const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args{"--yes", "--trust-model", "always", "--recipient", fingerprint};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"--output", out_file, "--encrypt", in_file});
    gpg_checked(args);
  }

  // gpg --sign --encrypt, as duplicity does with --encrypt-key and --sign-key.
  void sign_and_encrypt_to(const std::string& in_file, const std::string& out_file,
                           const std::string& recipient, const std::string& signer,
                           const std::string& signer_passphrase = "") const {
    gpg_checked(
        {"--yes", "--trust-model", "always", "--passphrase-fd", "0", "--default-key", signer,
         "--recipient", recipient, "--output", out_file, "--sign", "--encrypt", in_file},
        signer_passphrase + "\n");
  }

 private:
  TempDir dir_;
};

}  // namespace dupfs::test

// Storage on an SSH server through SFTP (libssh): duplicity's sftp:// and scp:// locations.
//
// Connections: at most BackendOptions::max_connections SSH sessions, each with one SFTP channel,
// opened on demand and reused; an operation holds one session for its duration, so parallel
// reads and uploads run side by side. Every session checks the server's host key against
// known_hosts before anything else is sent (an unknown host or a changed key is refused, kAuth),
// then logs in with ssh-agent, the identity files and ~/.ssh keys, then the password.
//
// Failures: an operation that fails on the connection (dropped, or silent for
// BackendOptions::timeout while an answer is due) drops that session and is tried again on a
// new one, up to num_retries tries with growing pauses; its error is returned after the last.
// Answers from the server (no such file, permission denied) are returned at once. A read never
// returns fewer bytes than asked for unless the object ends there.
//
// Threads: every method may be called from many threads at once. A watchdog thread shuts down
// the socket of a session whose server stays silent, which is what bounds every wait inside
// libssh. It starts on first use; a process that forks after that (dupfs mount opens the
// storage, then daemonizes) calls after_fork() in the child before using the storage there.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backends/backend.h"
#include "backends/ssh_url.h"

namespace dupfs {

class SftpBackend : public Backend {
 public:
  // Parses --ssh-options and, with --ssh-askpass, asks for the password; does not connect.
  static Result<std::unique_ptr<SftpBackend>> open(SshLocation location,
                                                   const BackendOptions& options);
  ~SftpBackend() override;
  SftpBackend(const SftpBackend&) = delete;
  SftpBackend& operator=(const SftpBackend&) = delete;

  Result<std::vector<std::string>> list() const override;
  Result<uint64_t> size(const std::string& name) const override;
  Result<std::string> read_range(const std::string& name, uint64_t offset,
                                 size_t length) const override;
  // Uploads to a temporary name in the same directory, then renames it into place with plain
  // SFTP rename, which never replaces an existing file. Creates the directory (and its parents)
  // when it does not exist, as duplicity does.
  Status write(const std::string& name, std::string_view data) override;
  Status remove(const std::string& name) override;
  std::string describe() const override { return location_.describe(); }
  // The watchdog started before a fork() runs in the parent only: the child starts its own on
  // first use (the sessions it inherited are looked after too). Nothing when there was no fork.
  void after_fork() override;

  struct Session;  // one SSH connection and its SFTP channel (sftp_backend.cc)

 private:
  SftpBackend(SshLocation location, SshOptions ssh, const BackendOptions& options,
              std::optional<std::string> password, std::string home);

  // A read's object and offset: acquire() prefers the idle session that already has requests
  // for exactly that in flight (the read-ahead of the previous piece).
  struct ReadHint {
    const std::string* path;
    uint64_t offset;
  };

  // Runs `op` on a session, with the retry policy above. `what` and `object` name the
  // operation in messages and log lines.
  template <typename T>
  Result<T> run(std::string_view what, const std::string& object,
                const std::function<Result<T>(Session&)>& op, const ReadHint* hint = nullptr) const;

  Result<std::unique_ptr<Session>> acquire(const ReadHint* hint) const;
  void release(std::unique_ptr<Session> session) const;
  Result<std::unique_ptr<Session>> connect() const;
  Status login(Session& session) const;
  std::string remote_path(const std::string& name) const;

  // The watchdog: its thread and the sessions it looks after.
  struct Watchdog {
    // Guards watched and stopping. Taken alone: never with pool_mu_, and no lock is taken
    // under it (lock order: leaf).
    std::mutex mu;
    std::condition_variable cv;     // with mu: tells the thread to stop
    std::vector<Session*> watched;  // every session that exists (registered while it does)
    bool stopping = false;
    std::once_flag started;
    std::thread thread;
    pid_t owner = 0;  // the process whose thread `thread` is; 0: not started
  };
  // Starts the watchdog on first use.
  void ensure_watchdog() const;
  void watchdog_loop(Watchdog& w) const;

  SshLocation location_;
  SshOptions ssh_;
  int num_retries_;
  std::chrono::seconds timeout_;
  int max_connections_;
  std::optional<std::string> password_;  // never logged
  std::string home_;                     // $HOME: ~/.ssh, known_hosts, ssh config
  // Bumped by every write and remove: a session's open read handle of an older generation is
  // not reused (the name may now be another file).
  mutable std::atomic<uint64_t> mutations_{0};

  // Guards idle_ and open_sessions_; pool_cv_ (with it) wakes an acquire() waiting for a
  // session. Held only to take or give back a session, never while connecting or talking to
  // the server, never together with Watchdog::mu (lock order: leaf).
  mutable std::mutex pool_mu_;
  mutable std::condition_variable pool_cv_;
  mutable std::vector<std::unique_ptr<Session>> idle_;
  mutable int open_sessions_ = 0;  // idle, in use and being connected

  // Replaced whole by after_fork(), when no other thread uses the object; else never changes.
  mutable std::unique_ptr<Watchdog> watch_ = std::make_unique<Watchdog>();
};

}  // namespace dupfs

// A real OpenSSH server for tests, on a loopback port. A TCP proxy to put in front of it (and cut)
// is in tcp_proxy.h, included here for the ssh tests.
//
// SshServer makes a host key, a user key and an authorized_keys file in a directory the test
// owns, writes an sshd_config there and runs `/usr/sbin/sshd -D -e -f <config>` listening on
// 127.0.0.1 only (root login with the user key only; SFTP served by internal-sftp inside the
// per-connection process). The destructor kills the server and every connection process it
// forked, including frozen ones. Needs root (as the CI runs the tests).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/support/tcp_proxy.h"

namespace dupfs::test {

class Background;

class SshServer {
 public:
  // `dir` must exist and outlive the server; files go into dir/sshd/. Throws std::runtime_error
  // when sshd cannot be started (its log is in the message).
  explicit SshServer(const std::string& dir);
  ~SshServer();
  SshServer(const SshServer&) = delete;
  SshServer& operator=(const SshServer&) = delete;

  int port() const { return port_; }
  pid_t pid() const;  // the listener's; -1 once it is gone
  // The user's private key (ed25519, no passphrase), accepted for root.
  const std::string& identity_file() const { return identity_; }
  // "ssh-ed25519 AAAA..." : the server's public host key.
  const std::string& host_public_key() const { return host_public_key_; }
  // A known_hosts line for the server on `port` ("[127.0.0.1]:port ssh-ed25519 AAAA...").
  std::string known_hosts_line(int port) const;
  std::string known_hosts_line() const { return known_hosts_line(port_); }
  // sshd's log (-e: everything it printed).
  std::string log() const;

  // Processes forked by the listener for connections (and their children).
  std::vector<pid_t> connection_pids() const;
  // SIGKILL to every connection process: every client connection drops at once.
  void kill_connections();
  // SIGSTOP / SIGCONT to the listener and every connection process: connected clients and new
  // connections get no answer (the kernel still accepts TCP connections).
  void freeze();
  void thaw();

 private:
  void start();
  std::string dir_;
  std::string identity_;
  std::string host_public_key_;
  int port_ = 0;
  std::unique_ptr<Background> server_;  // the listener
  bool frozen_ = false;
};

}  // namespace dupfs::test

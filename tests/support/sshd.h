// A real OpenSSH server for tests, on a loopback port, and a TCP proxy in front of it that a
// test can cut.
//
// SshServer makes a host key, a user key and an authorized_keys file in a directory the test
// owns, writes an sshd_config there and runs `/usr/sbin/sshd -D -e -f <config>` listening on
// 127.0.0.1 only (root login with the user key only; SFTP served by internal-sftp inside the
// per-connection process). The destructor kills the server and every connection process it
// forked, including frozen ones. Needs root (as the CI runs the tests).
//
// TcpProxy forwards 127.0.0.1:<its port> to another loopback port, counts the bytes going back
// to the client, and can cut every connection once a given number of further bytes went through
// (so a test can drop a connection in the middle of a transfer, deterministically).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

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

class TcpProxy {
 public:
  // Forwards connections on a free loopback port to 127.0.0.1:target_port.
  explicit TcpProxy(int target_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }
  // Every open connection is closed once `bytes` more bytes went from the server to clients
  // (reads), or from clients to the server (uploads).
  enum class Direction { kToClients, kToServer };
  void cut_after(uint64_t bytes, Direction direction = Direction::kToClients);
  // Bytes each way so far, and connections cut so far.
  uint64_t bytes_to_clients() const { return to_clients_.load(); }
  uint64_t bytes_to_server() const { return to_server_.load(); }
  int cuts() const { return cuts_.load(); }
  int connections() const { return connections_.load(); }

 private:
  void loop();
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  int target_port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> to_clients_{0};
  std::atomic<uint64_t> to_server_{0};
  std::atomic<int64_t> cut_at_{-1};         // counter value at which to cut; -1: never
  std::atomic<bool> cut_to_server_{false};  // which counter
  std::atomic<int> cuts_{0};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

}  // namespace dupfs::test

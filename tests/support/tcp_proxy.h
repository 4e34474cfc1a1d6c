// A loopback TCP proxy for tests: put it in front of a test server (sshd, s3rver, apache, an FTP
// server's control port) to count the bytes each way and to cut connections deterministically.
//
// TcpProxy forwards 127.0.0.1:<its port> to another loopback port, counts the bytes going back
// to the client, and can cut every connection once a given number of further bytes went through
// (so a test can drop a connection in the middle of a transfer, deterministically). It forwards
// one TCP port only: FTP data connections (passive mode) go around it, straight to the server.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

namespace dupfs::test {

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
  // The byte `bytes` further on in `direction` is passed on with its lowest bit flipped (once):
  // data damaged on the way, which TCP's checksum would not catch.
  void corrupt_after(uint64_t bytes, Direction direction);
  int corruptions() const { return corruptions_.load(); }
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
  std::atomic<int64_t> corrupt_at_{-1};         // counter value of the byte to flip; -1: none
  std::atomic<bool> corrupt_to_server_{false};  // which counter
  std::atomic<int> corruptions_{0};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

}  // namespace dupfs::test

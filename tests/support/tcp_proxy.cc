#include "tests/support/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <system_error>
#include <vector>

#include "tests/support/net.h"

namespace dupfs::test {

TcpProxy::TcpProxy(int target_port) : target_port_(target_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket");
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    ::close(listen_fd_);
    throw std::system_error(err, std::generic_category(), "proxy listen");
  }
  port_ = ntohs(addr.sin_port);
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw std::system_error(errno, std::generic_category(), "pipe2");
  }
  thread_ = std::thread([this] { loop(); });
}

TcpProxy::~TcpProxy() {
  stop_ = true;
  char b = 0;
  [[maybe_unused]] ssize_t n = ::write(wake_[1], &b, 1);
  thread_.join();
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

void TcpProxy::cut_after(uint64_t bytes, Direction direction) {
  cut_to_server_ = direction == Direction::kToServer;
  cut_at_ = static_cast<int64_t>((cut_to_server_ ? to_server_ : to_clients_).load() + bytes);
  char b = 0;
  [[maybe_unused]] ssize_t n = ::write(wake_[1], &b, 1);
}

void TcpProxy::corrupt_after(uint64_t bytes, Direction direction) {
  corrupt_to_server_ = direction == Direction::kToServer;
  corrupt_at_ =
      static_cast<int64_t>((corrupt_to_server_ ? to_server_ : to_clients_).load() + bytes);
}

void TcpProxy::loop() {
  struct Pair {
    int client;
    int server;
  };
  std::vector<Pair> pairs;
  auto close_all = [&] {
    for (auto& p : pairs) {
      ::close(p.client);
      ::close(p.server);
    }
    pairs.clear();
  };
  char buf[65536];
  while (!stop_) {
    std::vector<pollfd> fds;
    fds.push_back({listen_fd_, POLLIN, 0});
    fds.push_back({wake_[0], POLLIN, 0});
    for (const auto& p : pairs) {
      fds.push_back({p.client, POLLIN, 0});
      fds.push_back({p.server, POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), 200) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents != 0) {
      while (::read(wake_[0], buf, sizeof buf) > 0) {
      }
    }
    if (fds[0].revents & POLLIN) {
      int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        int server = connect_loopback(target_port_);
        if (server < 0) {
          ::close(client);
        } else {
          int one = 1;
          ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          ::setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          pairs.push_back({client, server});
          connections_++;
        }
      }
    }
    std::vector<size_t> dead;
    for (size_t i = 0; i < pairs.size(); ++i) {
      // Indexes in fds: 2 + 2i (client), 3 + 2i (server); pairs added above are not in fds.
      if (2 + 2 * i + 1 >= fds.size()) break;
      bool gone = false;
      for (int side = 0; side < 2 && !gone; ++side) {
        const pollfd& pf = fds[2 + 2 * i + side];
        if (pf.revents == 0) continue;
        int from = side == 0 ? pairs[i].client : pairs[i].server;
        int to = side == 0 ? pairs[i].server : pairs[i].client;
        ssize_t n = ::read(from, buf, sizeof buf);
        if (n <= 0) {
          gone = true;
          break;
        }
        const bool to_server = side == 0;
        if (int64_t at = corrupt_at_.load(); at >= 0 && corrupt_to_server_ == to_server) {
          auto before = static_cast<int64_t>((to_server ? to_server_ : to_clients_).load());
          if (at >= before && at < before + n) {
            buf[at - before] ^= 1;
            corrupt_at_ = -1;
            corruptions_++;
          }
        }
        // Blocking write: loopback peers read promptly.
        size_t off = 0;
        while (off < static_cast<size_t>(n)) {
          ssize_t w = ::send(to, buf + off, static_cast<size_t>(n) - off, MSG_NOSIGNAL);
          if (w <= 0) {
            gone = true;
            break;
          }
          off += static_cast<size_t>(w);
        }
        (side == 1 ? to_clients_ : to_server_) += static_cast<uint64_t>(n);
      }
      if (gone) dead.push_back(i);
    }
    for (auto it = dead.rbegin(); it != dead.rend(); ++it) {
      ::close(pairs[*it].client);
      ::close(pairs[*it].server);
      pairs.erase(pairs.begin() + static_cast<std::ptrdiff_t>(*it));
    }
    int64_t at = cut_at_.load();
    uint64_t counted = (cut_to_server_ ? to_server_ : to_clients_).load();
    if (at >= 0 && static_cast<int64_t>(counted) >= at) {
      cut_at_ = -1;
      close_all();
      cuts_++;
    }
  }
  close_all();
}

}  // namespace dupfs::test

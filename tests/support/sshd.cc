#include "tests/support/sshd.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "tests/support/process.h"

namespace dupfs::test {
namespace {

using Clock = std::chrono::steady_clock;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const std::string& path, const std::string& text, mode_t mode = 0600) {
  {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + path);
  }
  ::chmod(path.c_str(), mode);
}

// A loopback port nobody listens on right now.
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    ::close(fd);
    throw std::system_error(err, std::generic_category(), "bind 127.0.0.1:0");
  }
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

int connect_loopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// True once something on `port` answers with an SSH banner within `timeout`.
bool answers_ssh(int port, std::chrono::milliseconds timeout) {
  int fd = connect_loopback(port);
  if (fd < 0) return false;
  pollfd p{fd, POLLIN, 0};
  bool ok = false;
  if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
    char buf[64] = {};
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ok = n >= 4 && std::strncmp(buf, "SSH-", 4) == 0;
  }
  ::close(fd);
  return ok;
}

// Parent pid of every process, from /proc.
std::map<pid_t, pid_t> parents() {
  std::map<pid_t, pid_t> ppid;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return ppid;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;
    std::string stat = read_text("/proc/" + std::string(e->d_name) + "/stat");
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so parse after the last ')'.
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    std::string state;
    long parent = 0;
    rest >> state >> parent;
    ppid[static_cast<pid_t>(pid)] = static_cast<pid_t>(parent);
  }
  ::closedir(d);
  return ppid;
}

}  // namespace

SshServer::SshServer(const std::string& dir) : dir_(dir + "/sshd") {
  std::filesystem::create_directories(dir_);
  ::chmod(dir_.c_str(), 0700);
  // sshd refuses to start without its privilege separation directory, which only the
  // service's start creates.
  std::error_code ec;
  std::filesystem::create_directories("/run/sshd", ec);
  ::chmod("/run/sshd", 0755);

  auto keygen = [](const std::string& path) {
    std::filesystem::remove(path);
    std::filesystem::remove(path + ".pub");
    auto r = run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dupfs-test", "-f", path},
                 {}, std::chrono::seconds(30));
    if (!r.ok()) throw std::runtime_error("ssh-keygen failed: " + describe({"ssh-keygen"}, r));
  };
  keygen(dir_ + "/host_key");
  identity_ = dir_ + "/id_ed25519";
  keygen(identity_);
  std::string host_pub = read_text(dir_ + "/host_key.pub");
  // "ssh-ed25519 AAAA... comment" -> type and key only.
  std::istringstream words(host_pub);
  std::string type, key;
  words >> type >> key;
  host_public_key_ = type + " " + key;
  write_text(dir_ + "/authorized_keys", read_text(identity_ + ".pub"));
  start();
}

void SshServer::start() {
  std::string last_log;
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_port();
    std::string config = dir_ + "/sshd_config";
    std::ostringstream c;
    c << "Port " << port_ << "\n"
      << "ListenAddress 127.0.0.1\n"
      << "HostKey " << dir_ << "/host_key\n"
      << "PidFile none\n"
      << "AuthorizedKeysFile " << dir_ << "/authorized_keys\n"
      << "StrictModes no\n"
      << "UsePAM no\n"
      << "PermitRootLogin prohibit-password\n"
      << "PubkeyAuthentication yes\n"
      << "PasswordAuthentication no\n"
      << "KbdInteractiveAuthentication no\n"
      << "MaxStartups 100\n"
      << "MaxSessions 50\n"
      << "LogLevel VERBOSE\n"
      << "Subsystem sftp internal-sftp\n";
    write_text(config, c.str());
    std::string log_path = dir_ + "/sshd.log";
    server_ = std::make_unique<Background>(
        std::vector<std::string>{"/usr/sbin/sshd", "-D", "-e", "-f", config}, log_path);
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
      if (answers_ssh(port_, std::chrono::milliseconds(500))) return;
      if (!server_->running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    server_->kill();
    server_.reset();
    last_log = read_text(log_path);
  }
  throw std::runtime_error("sshd did not start: " + last_log);
}

SshServer::~SshServer() {
  if (!server_) return;
  for (pid_t p : connection_pids()) {
    ::kill(p, SIGKILL);
    ::kill(p, SIGCONT);
  }
  server_->kill();  // SIGKILL: it may be frozen
  // Connection processes were reparented when the listener died; make sure none is left.
  for (int i = 0; i < 50; ++i) {
    bool any = false;
    for (const auto& [pid, parent] : parents()) {
      std::string cmd = read_text("/proc/" + std::to_string(pid) + "/cmdline");
      if (cmd.find(dir_) != std::string::npos) {
        ::kill(pid, SIGKILL);
        any = true;
      }
    }
    if (!any) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string SshServer::known_hosts_line(int port) const {
  return "[127.0.0.1]:" + std::to_string(port) + " " + host_public_key_ + "\n";
}

std::string SshServer::log() const { return read_text(dir_ + "/sshd.log"); }

pid_t SshServer::pid() const { return server_ ? server_->pid() : -1; }

std::vector<pid_t> SshServer::connection_pids() const {
  std::vector<pid_t> found;
  if (pid() <= 0) return found;
  auto ppid = parents();
  std::vector<pid_t> frontier{pid()};
  while (!frontier.empty()) {
    pid_t parent = frontier.back();
    frontier.pop_back();
    for (const auto& [pid, pp] : ppid) {
      if (pp == parent) {
        found.push_back(pid);
        frontier.push_back(pid);
      }
    }
  }
  return found;
}

void SshServer::kill_connections() {
  auto pids = connection_pids();
  for (pid_t p : pids) ::kill(p, SIGKILL);
}

void SshServer::freeze() {
  server_->signal(SIGSTOP);
  for (pid_t p : connection_pids()) ::kill(p, SIGSTOP);
  frozen_ = true;
}

void SshServer::thaw() {
  for (pid_t p : connection_pids()) ::kill(p, SIGCONT);
  server_->signal(SIGCONT);
  frozen_ = false;
}

// ---------------------------------------------------------------------------------------------

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

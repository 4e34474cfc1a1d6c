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

#include "tests/support/net.h"
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

}  // namespace dupfs::test

#include "backends/sftp_backend.h"

#include <fcntl.h>
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <vector>

#include "backends/base/log.h"

namespace dupfs {
namespace {

using Clock = std::chrono::steady_clock;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// Requests in flight per read: 64 KiB each (every SFTP server answers reads of this size in
// full), 32 of them, so a 1 MiB read_range costs about one round trip.
constexpr uint32_t kReadChunk = 64 << 10;
constexpr size_t kReadWindow = 32;
constexpr size_t kWriteChunk = 64 << 10;

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string local_user() {
  if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr && pw->pw_name != nullptr) {
    return pw->pw_name;
  }
  if (const char* u = std::getenv("USER")) return u;
  return "root";
}

// libssh asks this for the passphrase of an encrypted key: the password, or nothing (never a
// prompt on the terminal from inside the library).
int key_passphrase(const char*, char* buf, size_t len, int, int, void* userdata) {
  const auto* password = static_cast<const std::optional<std::string>*>(userdata);
  if (password == nullptr || !password->has_value() || (*password)->size() + 1 > len) return -1;
  std::memcpy(buf, (*password)->c_str(), (*password)->size() + 1);
  return 0;
}

}  // namespace

struct SftpBackend::Session {
  ssh_session ssh = nullptr;
  sftp_session sftp = nullptr;
  ssh_callbacks_struct callbacks{};
  int watch_fd = -1;  // a duplicate of the socket, for the watchdog to shut down
  // Watchdog state: `busy` while an answer is due; silence is counted from `last_progress`.
  std::atomic<bool> busy{false};
  std::atomic<int64_t> last_progress{0};
  std::atomic<bool> timed_out{false};
  bool broken = false;  // the connection failed: the session is dropped, never reused
  bool reused = false;  // has served an operation before (may have gone stale while idle)
  bool fsync = false;   // fsync@openssh.com
  // The file last opened for reading, kept open for the next read of the same object.
  std::string read_path;
  sftp_file read_file = nullptr;
  uint64_t read_size = 0;
  uint64_t read_generation = 0;
  // Read requests sent for read_file past the last range served (read-ahead), in order.
  struct Ahead {
    uint64_t pos;
    uint32_t len;
    int id;
  };
  std::deque<Ahead> ahead;
  // Handles left open when the connection failed mid-operation: closing them then could wait on
  // a dead server, so they are freed with the session (their close fails fast once it is torn).
  std::vector<sftp_file> abandoned_files;
  std::vector<sftp_dir> abandoned_dirs;

  // Closes `f`, or leaves it for the destructor once the connection has failed.
  void close_file(sftp_file f) {
    if (broken) {
      abandoned_files.push_back(f);
    } else {
      sftp_close(f);
    }
  }
  void close_dir(sftp_dir d) {
    if (broken) {
      abandoned_dirs.push_back(d);
    } else {
      sftp_closedir(d);
    }
  }

  void touch() { last_progress.store(now_ns(), std::memory_order_relaxed); }
  // The error number libssh reports is sticky; cleared before each request so that a failure
  // without a status from the server is seen as one.
  void clear_error() {
    if (sftp != nullptr) sftp->errnum = SSH_FX_OK;
  }

  ~Session() {
    if (read_file != nullptr) sftp_close(read_file);
    for (sftp_file f : abandoned_files) sftp_close(f);
    for (sftp_dir d : abandoned_dirs) sftp_closedir(d);
    if (sftp != nullptr) sftp_free(sftp);
    if (ssh != nullptr) ssh_free(ssh);
  }
};

namespace {

// Marks the session busy for the watchdog for the lifetime of the object.
class Busy {
 public:
  explicit Busy(SftpBackend::Session& s) : s_(s) {
    s_.touch();
    s_.busy.store(true);
  }
  ~Busy() { s_.busy.store(false); }
  Busy(const Busy&) = delete;
  Busy& operator=(const Busy&) = delete;

 private:
  SftpBackend::Session& s_;
};

}  // namespace

SftpBackend::SftpBackend(SshLocation location, SshOptions ssh, const BackendOptions& options,
                         std::optional<std::string> password, std::string home)
    : location_(std::move(location)),
      ssh_(std::move(ssh)),
      num_retries_(std::max(1, options.num_retries)),
      timeout_(std::max<std::chrono::seconds>(options.timeout, std::chrono::seconds(1))),
      max_connections_(std::max(1, options.max_connections)),
      password_(std::move(password)),
      home_(std::move(home)) {}

Result<std::unique_ptr<SftpBackend>> SftpBackend::open(SshLocation location,
                                                       const BackendOptions& options) {
  std::string home = user_home();
  auto ssh = parse_ssh_options(options.ssh_options, home);
  if (!ssh) return std::unexpected(ssh.error());
  for (const auto& ignored : ssh->ignored) {
    log_debug("sftp: --ssh-options: '{}' is not used by dupfs", ignored);
  }
  // duplicity's order: the URL's password, then FTP_PASSWORD, then a prompt (--ssh-askpass).
  std::optional<std::string> password = location.password;
  if (!password) password = options.password;
  if (!password && options.ask_password) {
    std::string user = location.user.value_or(local_user());
    password = options.ask_password(fmt::format("Password for '{}@{}': ", user, location.host));
    if (!password) log_warning("--ssh-askpass: no terminal to ask for the SSH password on");
  }
  return std::unique_ptr<SftpBackend>(
      new SftpBackend(std::move(location), std::move(*ssh), options, std::move(password), home));
}

SftpBackend::~SftpBackend() {
  Watchdog& w = *watch_;
  if (w.owner == ::getpid()) {
    {
      std::lock_guard lock(w.mu);
      w.stopping = true;
    }
    w.cv.notify_all();
    w.thread.join();
  } else if (w.owner != 0) {
    // Started by the parent of a fork() nobody told after_fork() of: not ours to join.
    (void)watch_.release();
  }
  // No goodbye to the server: closing the sockets is enough for it, and a frozen server must
  // not hold up an unmount.
  for (auto& s : idle_) {
    if (s->watch_fd >= 0) {
      ::shutdown(s->watch_fd, SHUT_RDWR);
      ::close(s->watch_fd);
    }
    s->broken = true;
  }
  idle_.clear();
}

void SftpBackend::after_fork() {
  if (watch_->owner == 0 || watch_->owner == ::getpid()) return;  // no watchdog yet, or no fork
  // The parent's watchdog does not exist here and may have held its lock at the fork: its
  // state is left as it is (leaked) and this process starts over with a fresh one, which
  // looks after the sessions inherited (all idle: nothing else runs now).
  auto fresh = std::make_unique<Watchdog>();
  fresh->watched = watch_->watched;
  (void)watch_.release();
  watch_ = std::move(fresh);
}

void SftpBackend::ensure_watchdog() const {
  Watchdog& w = *watch_;
  std::call_once(w.started, [&] {
    w.owner = ::getpid();
    w.thread = std::thread([this, &w] { watchdog_loop(w); });
  });
}

void SftpBackend::watchdog_loop(Watchdog& w) const {
  auto tick = std::clamp<std::chrono::milliseconds>(
      std::chrono::duration_cast<std::chrono::milliseconds>(timeout_) / 8,
      std::chrono::milliseconds(50), std::chrono::milliseconds(500));
  const int64_t limit = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout_).count();
  std::unique_lock lock(w.mu);
  while (!w.stopping) {
    w.cv.wait_for(lock, tick);
    int64_t now = now_ns();
    for (Session* s : w.watched) {
      if (!s->busy.load() || s->timed_out.load()) continue;
      if (now - s->last_progress.load(std::memory_order_relaxed) < limit) continue;
      s->timed_out.store(true);
      // Every blocked libssh call on this session returns with an error now.
      ::shutdown(s->watch_fd, SHUT_RDWR);
    }
  }
}

std::string SftpBackend::remote_path(const std::string& name) const {
  if (location_.directory == ".") return name;
  if (location_.directory == "/") return "/" + name;
  return location_.directory + "/" + name;
}

namespace {

// What a failed libssh call on `s` means: the connection is gone (the session is marked broken
// and the operation may be tried again), or the server answered with an error.
Error failure(SftpBackend::Session& s, std::string_view what, const std::string& path,
              const std::string& host, std::chrono::seconds timeout) {
  if (s.timed_out.load()) {
    s.broken = true;
    return Error{ErrorKind::kTimeout, fmt::format("{} {} on {}: no answer from the server for {} s",
                                                  what, path, host, timeout.count())};
  }
  int code = s.sftp != nullptr ? sftp_get_error(s.sftp) : SSH_FX_OK;
  bool lost = ssh_is_connected(s.ssh) == 0 ||
              (s.sftp != nullptr && ssh_channel_is_open(s.sftp->channel) == 0) ||
              code == SSH_FX_OK || code == SSH_FX_BAD_MESSAGE || code == SSH_FX_NO_CONNECTION ||
              code == SSH_FX_CONNECTION_LOST;
  if (lost) {
    s.broken = true;
    return Error{ErrorKind::kIoError, fmt::format("{} {} on {}: connection lost ({})", what, path,
                                                  host, ssh_get_error(s.ssh))};
  }
  switch (code) {
    case SSH_FX_NO_SUCH_FILE:
    case SSH_FX_NO_SUCH_PATH:
      return Error{ErrorKind::kNotFound,
                   fmt::format("{} {} on {}: no such file or directory", what, path, host)};
    case SSH_FX_PERMISSION_DENIED:
      return Error{ErrorKind::kIoError,
                   fmt::format("{} {} on {}: permission denied", what, path, host)};
    case SSH_FX_FILE_ALREADY_EXISTS:
      return Error{ErrorKind::kExists,
                   fmt::format("{} {} on {}: already exists", what, path, host)};
    default:
      return Error{ErrorKind::kIoError, fmt::format("{} {} on {}: SFTP error {} ({})", what, path,
                                                    host, code, ssh_get_error(s.ssh))};
  }
}

}  // namespace

template <typename T>
Result<T> SftpBackend::run(std::string_view what, const std::string& object,
                           const std::function<Result<T>(Session&)>& op,
                           const ReadHint* hint) const {
  ensure_watchdog();
  std::optional<Error> last;
  bool stale_forgiven = false;
  for (int attempt = 1; attempt <= num_retries_; ++attempt) {
    if (attempt > 1) std::this_thread::sleep_for(retry_pause(attempt));
    auto session = acquire(hint);
    if (!session) {
      last = session.error();
      if (last->kind == ErrorKind::kAuth || last->kind == ErrorKind::kInvalidArgument) {
        return std::unexpected(*last);
      }
      log_warning("{} (try {} of {})", last->message, attempt, num_retries_);
      continue;
    }
    Session& s = **session;
    Result<T> result = [&] {
      Busy busy(s);
      s.clear_error();
      return op(s);
    }();
    if (!s.broken) {
      s.reused = true;
      release(std::move(*session));
      return result;
    }
    if (!result) last = result.error();
    bool stale = s.reused && !s.timed_out.load();
    {
      // Dropped: the socket goes first so that nothing below can wait on the server.
      std::lock_guard lock(watch_->mu);
      std::erase(watch_->watched, &s);
    }
    if (s.watch_fd >= 0) {
      ::shutdown(s.watch_fd, SHUT_RDWR);
      ::close(s.watch_fd);
      s.watch_fd = -1;
    }
    session->reset();
    {
      std::lock_guard lock(pool_mu_);
      --open_sessions_;
    }
    pool_cv_.notify_one();
    // The connection failed after the answer was complete (in the read-ahead): the answer holds.
    if (result) return result;
    if (stale && !stale_forgiven) {
      // A connection that went away while idle (server restarted, idle timeout) is not a try.
      stale_forgiven = true;
      --attempt;
      log_info("sftp: {}; reconnecting", last->message);
      continue;
    }
    log_warning("{} (try {} of {})", last->message, attempt, num_retries_);
  }
  if (!last) last = Error{ErrorKind::kIoError, fmt::format("{} {}: failed", what, object)};
  if (num_retries_ > 1) last->message += fmt::format(" (gave up after {} tries)", num_retries_);
  return std::unexpected(*last);
}

Result<std::unique_ptr<SftpBackend::Session>> SftpBackend::acquire(const ReadHint* hint) const {
  {
    std::unique_lock lock(pool_mu_);
    for (;;) {
      if (!idle_.empty()) {
        // The most recently used session, unless another has this read's answers in flight.
        auto pick = std::prev(idle_.end());
        if (hint != nullptr) {
          for (auto it = idle_.begin(); it != idle_.end(); ++it) {
            const Session& c = **it;
            if (c.read_path == *hint->path && !c.ahead.empty() &&
                c.ahead.front().pos == hint->offset) {
              pick = it;
              break;
            }
          }
        }
        auto s = std::move(*pick);
        idle_.erase(pick);
        return s;
      }
      if (open_sessions_ < max_connections_) {
        ++open_sessions_;
        break;
      }
      pool_cv_.wait(lock);
    }
  }
  auto s = connect();
  if (!s) {
    {
      std::lock_guard lock(pool_mu_);
      --open_sessions_;
    }
    pool_cv_.notify_one();
  }
  return s;
}

void SftpBackend::release(std::unique_ptr<Session> session) const {
  {
    std::lock_guard lock(pool_mu_);
    idle_.push_back(std::move(session));
  }
  pool_cv_.notify_one();
}

Result<std::unique_ptr<SftpBackend::Session>> SftpBackend::connect() const {
  auto s = std::make_unique<Session>();
  s->ssh = ssh_new();
  if (s->ssh == nullptr) return error(ErrorKind::kIoError, "cannot create an SSH session");
  ssh_session ssh = s->ssh;
  std::string ssh_dir = home_ + "/.ssh";
  std::string known_hosts = ssh_.user_known_hosts.value_or(ssh_dir + "/known_hosts");
  long timeout_s = static_cast<long>(timeout_.count());
  long timeout_us = 0;
  int no = 0, yes = 1;
  // ~/.ssh/config and /etc/ssh/ssh_config first, for what the URL leaves open (HostName, User,
  // Port, IdentityFile); what the URL and --ssh-options say is set after them and wins.
  // Everything from $HOME as duplicity (and OpenSSH) take it, not from the passwd entry.
  ssh_options_set(ssh, SSH_OPTIONS_HOST, location_.host.c_str());
  ssh_options_set(ssh, SSH_OPTIONS_SSH_DIR, ssh_dir.c_str());
  ssh_options_set(ssh, SSH_OPTIONS_PROCESS_CONFIG, &no);
  for (const std::string& config : {ssh_dir + "/config", std::string("/etc/ssh/ssh_config")}) {
    if (file_exists(config)) ssh_options_parse_config(ssh, config.c_str());
  }
  if (location_.user) ssh_options_set(ssh, SSH_OPTIONS_USER, location_.user->c_str());
  unsigned port = location_.port != 0 ? location_.port : ssh_.port.value_or(0);
  if (port != 0) ssh_options_set(ssh, SSH_OPTIONS_PORT, &port);
  ssh_options_set(ssh, SSH_OPTIONS_TIMEOUT, &timeout_s);
  ssh_options_set(ssh, SSH_OPTIONS_TIMEOUT_USEC, &timeout_us);
  ssh_options_set(ssh, SSH_OPTIONS_NODELAY, &yes);
  if (ssh_.ciphers) {
    ssh_options_set(ssh, SSH_OPTIONS_CIPHERS_C_S, ssh_.ciphers->c_str());
    ssh_options_set(ssh, SSH_OPTIONS_CIPHERS_S_C, ssh_.ciphers->c_str());
  }
  ssh_options_set(ssh, SSH_OPTIONS_KNOWNHOSTS, known_hosts.c_str());
  if (ssh_.global_known_hosts) {
    ssh_options_set(ssh, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, ssh_.global_known_hosts->c_str());
  }
  for (const auto& id : ssh_.identity_files) {
    ssh_options_set(ssh, SSH_OPTIONS_ADD_IDENTITY, id.c_str());
  }
  s->callbacks.userdata = const_cast<std::optional<std::string>*>(&password_);
  s->callbacks.auth_function = key_passphrase;
  ssh_callbacks_init(&s->callbacks);
  ssh_set_callbacks(ssh, &s->callbacks);

  std::string where = location_.describe();
  // Bounded by SSH_OPTIONS_TIMEOUT: the socket does not exist before.
  auto started = Clock::now();
  if (ssh_connect(ssh) != SSH_OK) {
    // A server that accepted the connection but never spoke is a timeout, not a refusal.
    bool silent = Clock::now() - started >= timeout_ - std::chrono::milliseconds(200);
    return error(silent ? ErrorKind::kTimeout : ErrorKind::kIoError, "cannot connect to {}: {}",
                 where, ssh_get_error(ssh));
  }
  s->watch_fd = ::fcntl(ssh_get_fd(ssh), F_DUPFD_CLOEXEC, 0);
  if (s->watch_fd < 0) {
    return error(ErrorKind::kIoError, "cannot connect to {}: {}", where, std::strerror(errno));
  }
  {
    std::lock_guard lock(watch_->mu);
    watch_->watched.push_back(s.get());
  }
  auto unwatch = [&] {
    std::lock_guard lock(watch_->mu);
    std::erase(watch_->watched, s.get());
    ::close(s->watch_fd);
    s->watch_fd = -1;
  };
  Status ready = [&]() -> Status {
    Busy busy(*s);
    if (auto st = login(*s); !st) return st;
    s->sftp = sftp_new(ssh);
    if (s->sftp == nullptr || sftp_init(s->sftp) != SSH_OK) {
      if (s->timed_out.load()) {
        return error(ErrorKind::kTimeout, "cannot start SFTP on {}: no answer for {} s", where,
                     timeout_.count());
      }
      return error(ErrorKind::kIoError, "cannot start SFTP on {}: {}", where, ssh_get_error(ssh));
    }
    s->fsync = sftp_extension_supported(s->sftp, "fsync@openssh.com", "1") != 0;
    return {};
  }();
  if (!ready) {
    unwatch();
    return std::unexpected(ready.error());
  }
  log_info("sftp: connected to {}", where);
  return s;
}

Status SftpBackend::login(Session& s) const {
  ssh_session ssh = s.ssh;
  std::string where = location_.describe();
  unsigned int port = 22;
  ssh_options_get_port(ssh, &port);
  char* host_c = nullptr;
  ssh_options_get(ssh, SSH_OPTIONS_HOST, &host_c);
  std::string host = host_c != nullptr ? host_c : location_.host;
  ssh_string_free_char(host_c);
  char* user_c = nullptr;
  ssh_options_get(ssh, SSH_OPTIONS_USER, &user_c);
  std::string user = user_c != nullptr ? user_c : local_user();
  ssh_string_free_char(user_c);
  std::string known_host = port == 22 ? host : fmt::format("[{}]:{}", host, port);
  std::string known_hosts = ssh_.user_known_hosts.value_or(home_ + "/.ssh/known_hosts");

  // 1. The host key, before anything of ours is sent.
  std::string offered = "a key";
  ssh_key key = nullptr;
  if (ssh_get_server_publickey(ssh, &key) == SSH_OK) {
    unsigned char* hash = nullptr;
    size_t hash_len = 0;
    if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hash_len) == 0) {
      char* fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hash_len);
      offered = fmt::format("the {} key {}", ssh_key_type_to_char(ssh_key_type(key)),
                            fp != nullptr ? fp : "?");
      ssh_string_free_char(fp);
      ssh_clean_pubkey_hash(&hash);
    }
    ssh_key_free(key);
  }
  switch (ssh_session_is_known_server(ssh)) {
    case SSH_KNOWN_HOSTS_OK:
      break;
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER:
      return error(ErrorKind::kAuth,
                   "host key verification failed for {}: it offered {}, which is not the key "
                   "recorded for it in {}. Someone may be intercepting the connection; if the "
                   "server's key was changed on purpose, remove the old entry with "
                   "`ssh-keygen -f {} -R '{}'` and connect once with ssh to record the new one. "
                   "Nothing was sent to the server",
                   known_host, offered, known_hosts, known_hosts, known_host);
    case SSH_KNOWN_HOSTS_NOT_FOUND:
    case SSH_KNOWN_HOSTS_UNKNOWN:
      return error(ErrorKind::kAuth,
                   "host {} is unknown: {} has no key for it (it offered {}). Check that "
                   "fingerprint, then record the key by connecting once with `ssh -p {} {}@{}` "
                   "(or add it to {}), and try again. Nothing was sent to the server",
                   known_host, known_hosts, offered, port, user, host, known_hosts);
    case SSH_KNOWN_HOSTS_ERROR:
    default:
      if (s.timed_out.load()) {
        return error(ErrorKind::kTimeout, "cannot connect to {}: no answer for {} s", where,
                     timeout_.count());
      }
      return error(ErrorKind::kIoError, "cannot check the host key of {}: {}", known_host,
                   ssh_get_error(ssh));
  }

  // 2. Log in: ssh-agent, identity files and ~/.ssh keys, then the password.
  auto transport_error = [&](std::string_view step) -> Status {
    if (s.timed_out.load()) {
      return error(ErrorKind::kTimeout, "SSH login to {}: no answer for {} s", where,
                   timeout_.count());
    }
    return error(ErrorKind::kIoError, "SSH login to {} ({}): {}", where, step, ssh_get_error(ssh));
  };
  int rc = ssh_userauth_none(ssh, nullptr);
  if (rc == SSH_AUTH_SUCCESS) return {};
  if (rc == SSH_AUTH_ERROR) return transport_error("none");
  rc = ssh_userauth_publickey_auto(ssh, nullptr, password_ ? password_->c_str() : nullptr);
  if (rc == SSH_AUTH_SUCCESS) return {};
  if (rc == SSH_AUTH_ERROR) return transport_error("public key");
  if (password_) {
    rc = ssh_userauth_password(ssh, nullptr, password_->c_str());
    if (rc == SSH_AUTH_SUCCESS) return {};
    if (rc == SSH_AUTH_ERROR && ssh_is_connected(ssh) == 0) return transport_error("password");
    // Servers that take passwords through PAM only ask for them this way.
    rc = ssh_userauth_kbdint(ssh, nullptr, nullptr);
    for (int round = 0; rc == SSH_AUTH_INFO && round < 4; ++round) {
      int prompts = ssh_userauth_kbdint_getnprompts(ssh);
      for (int i = 0; i < prompts; ++i) {
        ssh_userauth_kbdint_setanswer(ssh, static_cast<unsigned>(i), password_->c_str());
      }
      rc = ssh_userauth_kbdint(ssh, nullptr, nullptr);
    }
    if (rc == SSH_AUTH_SUCCESS) return {};
    if (rc == SSH_AUTH_ERROR && ssh_is_connected(ssh) == 0) return transport_error("password");
  }
  std::string tried = std::getenv("SSH_AUTH_SOCK") != nullptr ? "ssh-agent, " : "";
  for (const auto& id : ssh_.identity_files) tried += id + ", ";
  tried += "the keys in " + home_ + "/.ssh";
  if (password_) tried += ", a password";
  return error(ErrorKind::kAuth,
               "SSH login as {} to {} refused (tried {}). Name a key with "
               "--ssh-options=-oIdentityFile=PATH or load it into ssh-agent, or give the "
               "password in FTP_PASSWORD or with --ssh-askpass",
               user, where, tried);
}

Result<std::vector<std::string>> SftpBackend::list() const {
  const std::string& dir = location_.directory;
  const std::string host = location_.host;
  return run<std::vector<std::string>>(
      "cannot list", dir, [&](Session& s) -> Result<std::vector<std::string>> {
        sftp_dir d = sftp_opendir(s.sftp, dir.c_str());
        if (d == nullptr) return std::unexpected(failure(s, "cannot list", dir, host, timeout_));
        std::vector<std::string> names;
        while (sftp_attributes a = sftp_readdir(s.sftp, d)) {
          s.touch();
          std::string name = a->name != nullptr ? a->name : "";
          bool directory = a->type == SSH_FILEXFER_TYPE_DIRECTORY;
          sftp_attributes_free(a);
          if (name.empty() || name == "." || name == ".." || directory) continue;
          names.push_back(std::move(name));
        }
        if (sftp_dir_eof(d) == 0) {
          Error e = failure(s, "cannot list", dir, host, timeout_);
          s.close_dir(d);
          return std::unexpected(e);
        }
        sftp_closedir(d);
        return names;
      });
}

Result<uint64_t> SftpBackend::size(const std::string& name) const {
  std::string path = remote_path(name);
  return run<uint64_t>("cannot stat", path, [&](Session& s) -> Result<uint64_t> {
    sftp_attributes a = sftp_stat(s.sftp, path.c_str());
    if (a == nullptr)
      return std::unexpected(failure(s, "cannot stat", path, location_.host, timeout_));
    uint64_t size = a->size;
    sftp_attributes_free(a);
    return size;
  });
}

namespace {

// Collects and discards the answers of the session's read-ahead, so that the channel stays in
// step. A connection failure marks the session broken.
void drain_ahead(SftpBackend::Session& s, const std::string& host, std::chrono::seconds timeout) {
  if (s.ahead.empty()) return;
  std::string scratch(kReadChunk, '\0');
  for (const auto& a : s.ahead) {
    s.read_file->eof = 0;
    s.clear_error();
    if (sftp_async_read(s.read_file, scratch.data(), a.len, static_cast<uint32_t>(a.id)) < 0) {
      failure(s, "cannot read", s.read_path, host, timeout);
      if (s.broken) break;
    }
    s.touch();
  }
  s.ahead.clear();
}

}  // namespace

Result<std::string> SftpBackend::read_range(const std::string& name, uint64_t offset,
                                            size_t length) const {
  std::string path = remote_path(name);
  const std::string& host = location_.host;
  ReadHint hint{&path, offset};
  auto op = [&](Session& s) -> Result<std::string> {
    uint64_t generation = mutations_.load();
    if (s.read_file == nullptr || s.read_path != path || s.read_generation != generation) {
      if (s.read_file != nullptr) {
        drain_ahead(s, host, timeout_);
        if (s.broken) return std::unexpected(failure(s, "cannot read", path, host, timeout_));
        sftp_close(s.read_file);
      }
      s.read_file = nullptr;
      s.read_path.clear();
      s.clear_error();
      sftp_file f = sftp_open(s.sftp, path.c_str(), O_RDONLY, 0);
      if (f == nullptr) return std::unexpected(failure(s, "cannot open", path, host, timeout_));
      sftp_attributes a = sftp_fstat(f);
      if (a == nullptr) {
        Error e = failure(s, "cannot stat", path, host, timeout_);
        s.close_file(f);
        return std::unexpected(e);
      }
      s.read_size = a->size;
      sftp_attributes_free(a);
      s.read_file = f;
      s.read_path = path;
      s.read_generation = generation;
    }
    sftp_file f = s.read_file;
    if (offset >= s.read_size || length == 0) return std::string();
    size_t want = static_cast<size_t>(std::min<uint64_t>(length, s.read_size - offset));
    const uint64_t end = offset + want;
    std::string out(want, '\0');
    struct Pending {
      int id;
      uint64_t pos;  // in the object
      uint32_t len;
    };
    std::deque<Pending> pending;
    uint64_t next = offset;  // first byte not yet asked for
    // The read-ahead of the previous range serves this one when it starts exactly here.
    if (!s.ahead.empty()) {
      const auto& last = s.ahead.back();
      if (s.ahead.front().pos == offset && last.pos + last.len <= end) {
        for (const auto& a : s.ahead) pending.push_back({a.id, a.pos, a.len});
        next = last.pos + last.len;
        s.ahead.clear();
      } else {
        drain_ahead(s, host, timeout_);
        if (s.broken) return std::unexpected(failure(s, "cannot read", path, host, timeout_));
      }
    }
    size_t done = 0;
    bool short_read = false;
    std::optional<Error> err;
    auto send = [&](uint64_t pos, uint32_t len) -> int {
      sftp_seek64(f, pos);
      return sftp_async_read_begin(f, len);
    };
    while (done < want && !short_read && !err) {
      while (pending.size() < kReadWindow && next < end) {
        uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(kReadChunk, end - next));
        int id = send(next, len);
        if (id < 0) {
          err = failure(s, "cannot read", path, host, timeout_);
          break;
        }
        pending.push_back({id, next, len});
        next += len;
      }
      if (err || pending.empty()) break;
      Pending p = pending.front();
      pending.pop_front();
      f->eof = 0;
      int n = sftp_async_read(f, out.data() + (p.pos - offset), p.len, static_cast<uint32_t>(p.id));
      if (n < 0) {
        err = failure(s, "cannot read", path, host, timeout_);
        break;
      }
      s.touch();
      done += static_cast<size_t>(n);
      if (static_cast<uint32_t>(n) < p.len) short_read = true;
    }
    if (!s.broken) {
      // Answers still due are collected, so the channel stays in step for the next request.
      std::string scratch(kReadChunk, '\0');
      for (const Pending& p : pending) {
        f->eof = 0;
        if (sftp_async_read(f, scratch.data(), p.len, static_cast<uint32_t>(p.id)) < 0 &&
            s.broken) {
          break;
        }
      }
    }
    if (err) return std::unexpected(*err);
    if (short_read && done < want) {
      // The server answered less than asked (a cap on its side, or the file is shorter than
      // it said): go on one request at a time, so that no gap is ever returned as data.
      f->eof = 0;
      sftp_seek64(f, offset + done);
      while (done < want) {
        ssize_t n = sftp_read(f, out.data() + done, want - done);
        if (n < 0) return std::unexpected(failure(s, "cannot read", path, host, timeout_));
        if (n == 0) break;
        s.touch();
        done += static_cast<size_t>(n);
      }
    }
    out.resize(done);
    if (done == want && want == length && !short_read) {
      // A whole piece: readers of volumes go front to back, so the next piece is asked for now
      // and travels while the caller decodes this one.
      uint64_t stop = std::min<uint64_t>(s.read_size, end + length);
      for (uint64_t pos = end; pos < stop && s.ahead.size() < kReadWindow;) {
        uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(kReadChunk, stop - pos));
        int id = send(pos, len);
        if (id < 0) {
          failure(s, "cannot read ahead", path, host, timeout_);
          break;
        }
        s.ahead.push_back({pos, len, id});
        pos += len;
      }
    }
    return out;
  };
  return run<std::string>("cannot read", path, op, &hint);
}

Status SftpBackend::write(const std::string& name, std::string_view data) {
  std::string path = remote_path(name);
  const std::string& host = location_.host;
  mutations_.fetch_add(1);
  // What an earlier try left: its temporary file, and whether its rename was under way.
  std::string tmp;
  bool renaming = false;
  std::mt19937_64 random(std::random_device{}());
  auto result = run<void>("cannot upload", path, [&](Session& s) -> Status {
    if (!tmp.empty()) {
      if (renaming) {
        sftp_attributes before = sftp_stat(s.sftp, tmp.c_str());
        if (before != nullptr) {
          sftp_attributes_free(before);
        } else if (sftp_attributes now = sftp_stat(s.sftp, path.c_str()); now != nullptr) {
          bool ours = now->size == data.size();
          sftp_attributes_free(now);
          if (ours) return {};  // the rename landed before the connection went
        }
      }
      sftp_unlink(s.sftp, tmp.c_str());
      if (s.broken) return std::unexpected(failure(s, "cannot upload", path, host, timeout_));
      s.clear_error();
      tmp.clear();
    }
    if (sftp_attributes a = sftp_stat(s.sftp, path.c_str()); a != nullptr) {
      sftp_attributes_free(a);
      return error(ErrorKind::kExists, "refusing to overwrite {} on {}", path, host);
    }
    if (Error e = failure(s, "cannot upload", path, host, timeout_);
        e.kind != ErrorKind::kNotFound) {
      return std::unexpected(e);
    }
    s.clear_error();
    tmp = remote_path(fmt::format(".{}.dupfs-tmp.{:016x}", name, random()));
    renaming = false;
    constexpr int kFlags = O_WRONLY | O_CREAT | O_EXCL;
    sftp_file f = sftp_open(s.sftp, tmp.c_str(), kFlags, 0600);
    if (f == nullptr && location_.directory != "." &&
        sftp_get_error(s.sftp) == SSH_FX_NO_SUCH_FILE) {
      // duplicity creates the directory and its parents on first use.
      std::string dir;
      size_t start = 0;
      const std::string& full = location_.directory;
      while (start <= full.size()) {
        size_t slash = full.find('/', start);
        if (slash == std::string::npos) slash = full.size();
        dir = full.substr(0, slash);
        start = slash + 1;
        if (dir.empty() || dir.back() == '/') continue;
        s.clear_error();
        if (sftp_mkdir(s.sftp, dir.c_str(), 0755) != 0) {
          sftp_attributes a = sftp_stat(s.sftp, dir.c_str());
          if (a == nullptr) {
            tmp.clear();
            return std::unexpected(failure(s, "cannot create directory", dir, host, timeout_));
          }
          sftp_attributes_free(a);
        }
      }
      s.clear_error();
      f = sftp_open(s.sftp, tmp.c_str(), kFlags, 0600);
    }
    if (f == nullptr) {
      Error e = failure(s, "cannot create", tmp, host, timeout_);
      if (!s.broken) tmp.clear();
      return std::unexpected(e);
    }
    auto abandon = [&](std::string_view what) -> Status {
      Error e = failure(s, what, tmp, host, timeout_);
      s.close_file(f);
      if (!s.broken) {
        s.clear_error();
        sftp_unlink(s.sftp, tmp.c_str());
        tmp.clear();
      }
      return std::unexpected(e);
    };
    for (size_t pos = 0; pos < data.size();) {
      size_t len = std::min(kWriteChunk, data.size() - pos);
      ssize_t n = sftp_write(f, data.data() + pos, len);
      if (n != static_cast<ssize_t>(len)) return abandon("cannot write");
      s.touch();
      pos += len;
    }
    if (s.fsync && sftp_fsync(f) != 0) return abandon("cannot sync");
    if (sftp_close(f) != SSH_NO_ERROR) {
      Error e = failure(s, "cannot write", tmp, host, timeout_);
      if (!s.broken) {
        s.clear_error();
        sftp_unlink(s.sftp, tmp.c_str());
        tmp.clear();
      }
      return std::unexpected(e);
    }
    renaming = true;
    // Plain SFTP rename (not posix-rename@openssh.com): it never replaces an existing file.
    if (sftp_rename(s.sftp, tmp.c_str(), path.c_str()) != 0) {
      Error e = failure(s, "cannot rename into place", path, host, timeout_);
      if (s.broken) return std::unexpected(e);
      renaming = false;
      s.clear_error();
      sftp_unlink(s.sftp, tmp.c_str());
      tmp.clear();
      if (sftp_attributes a = sftp_stat(s.sftp, path.c_str()); a != nullptr) {
        sftp_attributes_free(a);
        return error(ErrorKind::kExists, "refusing to overwrite {} on {}", path, host);
      }
      return std::unexpected(e);
    }
    tmp.clear();
    return {};
  });
  mutations_.fetch_add(1);
  return result;
}

Status SftpBackend::remove(const std::string& name) {
  std::string path = remote_path(name);
  mutations_.fetch_add(1);
  return run<void>("cannot delete", path, [&](Session& s) -> Status {
    if (sftp_unlink(s.sftp, path.c_str()) != 0) {
      return std::unexpected(failure(s, "cannot delete", path, location_.host, timeout_));
    }
    return {};
  });
}

}  // namespace dupfs

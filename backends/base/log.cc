#include "backends/base/log.h"

#include <atomic>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace dupfs {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kNotice)};
// Guards g_file and keeps lines whole. A leaf, taken under any other lock (every layer logs
// with its own locks held).
std::mutex g_mu;
FILE* g_file = nullptr;

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::kError:
      return "error";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kNotice:
      return "notice";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kDebug:
      return "debug";
  }
  return "log";
}

}  // namespace

void set_log_level(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel log_level() { return static_cast<LogLevel>(g_level.load()); }

bool set_log_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "ae");
  if (f == nullptr) return false;
  std::lock_guard lock(g_mu);
  if (g_file != nullptr) std::fclose(g_file);
  g_file = f;
  return true;
}

void log_line(LogLevel level, std::string_view message) {
  std::string line = fmt::format("dupfs: {}: {}\n", level_name(level), message);
  std::lock_guard lock(g_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  if (g_file != nullptr) {
    std::time_t now = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
    std::fprintf(g_file, "%s %s", stamp, line.c_str());
    std::fflush(g_file);
  }
}

}  // namespace dupfs

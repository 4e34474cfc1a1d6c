// Logging: one line per event to stderr (or the file set with set_log_file). Messages name the
// object concerned and never carry a passphrase or decrypted data.
#pragma once

#include <fmt/core.h>

#include <string>
#include <string_view>

namespace dupfs {

enum class LogLevel { kError = 0, kWarning = 1, kNotice = 2, kInfo = 3, kDebug = 4 };

void set_log_level(LogLevel level);
LogLevel log_level();
// Appends log lines to `path` as well as stderr. Returns false when it cannot be opened.
bool set_log_file(const std::string& path);
void log_line(LogLevel level, std::string_view message);

template <typename... Args>
void log_error(fmt::format_string<Args...> f, Args&&... args) {
  log_line(LogLevel::kError, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void log_warning(fmt::format_string<Args...> f, Args&&... args) {
  if (log_level() >= LogLevel::kWarning) {
    log_line(LogLevel::kWarning, fmt::format(f, std::forward<Args>(args)...));
  }
}
template <typename... Args>
void log_info(fmt::format_string<Args...> f, Args&&... args) {
  if (log_level() >= LogLevel::kInfo) {
    log_line(LogLevel::kInfo, fmt::format(f, std::forward<Args>(args)...));
  }
}
template <typename... Args>
void log_debug(fmt::format_string<Args...> f, Args&&... args) {
  if (log_level() >= LogLevel::kDebug) {
    log_line(LogLevel::kDebug, fmt::format(f, std::forward<Args>(args)...));
  }
}

}  // namespace dupfs

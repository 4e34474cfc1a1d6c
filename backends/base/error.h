// One error type for all of dupfs. Every fallible function returns Result<T> (or Status);
// fs/ turns an Error into an errno in one function, cli/ into a message and exit code in one
// place. Messages name the object concerned (volume, path, URL).
#pragma once

#include <fmt/core.h>

#include <expected>
#include <string>
#include <utility>

namespace dupfs {

enum class ErrorKind {
  kNotFound,         // object or path does not exist
  kCorruption,       // stored data is damaged or not in the expected format
  kIoError,          // storage failed to read or write
  kAuth,             // wrong passphrase, missing secret key, refused login
  kInvalidArgument,  // bad user input (URL, option, path)
  kUnsupported,      // valid but not handled by this version
  kExists,           // refusing to overwrite
  kTimeout,          // storage did not answer in time
  kCancelled,        // the operation was abandoned (unmount, shutdown)
  kWouldBlock,       // the data is not at hand and the caller asked not to wait for it
};

// Whether asking again would get the same answer. Permanent errors (damage, refusals, things
// that are not there, requests that cannot be served) are answers about the data: results that
// are kept for reuse (memoized) keep them too. Transient ones (storage failed or did not answer
// in time, the request was abandoned or asked not to wait) say nothing about the data: they fail
// the request that met them, and the next request tries again. The one place this is decided.
constexpr bool is_permanent(ErrorKind k) {
  switch (k) {
    case ErrorKind::kNotFound:
    case ErrorKind::kCorruption:
    case ErrorKind::kAuth:
    case ErrorKind::kInvalidArgument:
    case ErrorKind::kUnsupported:
    case ErrorKind::kExists:
      return true;
    case ErrorKind::kIoError:
    case ErrorKind::kTimeout:
    case ErrorKind::kCancelled:
    case ErrorKind::kWouldBlock:
      return false;
  }
  return false;
}

struct Error {
  ErrorKind kind;
  std::string message;
};

template <typename T>
using Result = std::expected<T, Error>;
using Status = Result<void>;

inline std::unexpected<Error> make_error(ErrorKind kind, std::string message) {
  return std::unexpected<Error>(Error{kind, std::move(message)});
}

template <typename... Args>
std::unexpected<Error> error(ErrorKind kind, fmt::format_string<Args...> f, Args&&... args) {
  return make_error(kind, fmt::format(f, std::forward<Args>(args)...));
}

inline const char* kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::kNotFound:
      return "not found";
    case ErrorKind::kCorruption:
      return "corrupt";
    case ErrorKind::kIoError:
      return "I/O error";
    case ErrorKind::kAuth:
      return "authentication failed";
    case ErrorKind::kInvalidArgument:
      return "invalid argument";
    case ErrorKind::kUnsupported:
      return "unsupported";
    case ErrorKind::kExists:
      return "already exists";
    case ErrorKind::kTimeout:
      return "timed out";
    case ErrorKind::kCancelled:
      return "cancelled";
    case ErrorKind::kWouldBlock:
      return "not at hand";
  }
  return "error";
}

}  // namespace dupfs

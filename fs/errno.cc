#include <cerrno>

#include "fs/tree.h"

namespace dupfs::fs {

int to_errno(const Error& e) {
  switch (e.kind) {
    case ErrorKind::kNotFound:
      return ENOENT;
    case ErrorKind::kInvalidArgument:
      return EINVAL;
    case ErrorKind::kExists:
      return EEXIST;
    case ErrorKind::kCancelled:
      return EINTR;
    case ErrorKind::kWouldBlock:
      return EAGAIN;
    case ErrorKind::kCorruption:  // damage reads as an I/O error, never as wrong bytes
    case ErrorKind::kIoError:
    case ErrorKind::kAuth:
    case ErrorKind::kUnsupported:
    case ErrorKind::kTimeout:
      return EIO;
  }
  return EIO;
}

}  // namespace dupfs::fs

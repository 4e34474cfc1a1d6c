// Storage: the only way dupfs touches a backup location. Implementations know nothing of
// duplicity's names. All const methods are safe to call from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/error.h"

namespace dupfs {

class Backend {
 public:
  virtual ~Backend() = default;

  // Names of the objects directly in the location (no directories), in no particular order.
  // kNotFound when the location itself does not exist.
  virtual Result<std::vector<std::string>> list() const = 0;

  // Size in bytes of one object. kNotFound when it does not exist.
  virtual Result<uint64_t> size(const std::string& name) const = 0;

  // Up to `length` bytes starting at `offset`; fewer only at the end of the object (an empty
  // string at or past the end). kNotFound when the object does not exist.
  virtual Result<std::string> read_range(const std::string& name, uint64_t offset,
                                         size_t length) const = 0;

  // The whole object.
  virtual Result<std::string> read(const std::string& name) const;

  // Creates `name` with `data` atomically: readers see either nothing or all of it. Never
  // replaces an existing object (kExists).
  virtual Status write(const std::string& name, std::string_view data) = 0;

  // Deletes one object. kNotFound when it does not exist.
  virtual Status remove(const std::string& name) = 0;

  // The location, for messages (never carries a password).
  virtual std::string describe() const = 0;
};

// Opens the storage named by a duplicity URL (file:///path, file://relative, plain paths).
// kInvalidArgument for an unknown scheme. Does not touch the storage.
Result<std::unique_ptr<Backend>> open_backend(const std::string& url);

}  // namespace dupfs

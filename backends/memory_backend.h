// Storage in memory, for unit tests. Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "backends/backend.h"

namespace dupfs {

class MemoryBackend : public Backend {
 public:
  Result<std::vector<std::string>> list() const override;
  Result<uint64_t> size(const std::string& name) const override;
  Result<std::string> read_range(const std::string& name, uint64_t offset,
                                 size_t length) const override;
  Status write(const std::string& name, std::string_view data) override;
  Status remove(const std::string& name) override;
  std::string describe() const override { return "memory://"; }

  // Test access: replace or create an object without the no-overwrite rule.
  void put(const std::string& name, std::string data);

 private:
  mutable std::mutex mu_;  // guards objects_; a leaf (nothing is taken under it)
  std::map<std::string, std::string> objects_;
};

}  // namespace dupfs

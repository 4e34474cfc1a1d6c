#include "backends/memory_backend.h"

namespace dupfs {

Result<std::vector<std::string>> MemoryBackend::list() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> names;
  for (const auto& [name, data] : objects_) names.push_back(name);
  return names;
}

Result<uint64_t> MemoryBackend::size(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = objects_.find(name);
  if (it == objects_.end()) return error(ErrorKind::kNotFound, "no object {}", name);
  return it->second.size();
}

Result<std::string> MemoryBackend::read_range(const std::string& name, uint64_t offset,
                                              size_t length) const {
  std::lock_guard lock(mu_);
  auto it = objects_.find(name);
  if (it == objects_.end()) return error(ErrorKind::kNotFound, "no object {}", name);
  if (offset >= it->second.size()) return std::string();
  return it->second.substr(offset, length);
}

Status MemoryBackend::write(const std::string& name, std::string_view data) {
  std::lock_guard lock(mu_);
  if (objects_.contains(name)) return error(ErrorKind::kExists, "refusing to overwrite {}", name);
  objects_.emplace(name, std::string(data));
  return {};
}

Status MemoryBackend::remove(const std::string& name) {
  std::lock_guard lock(mu_);
  if (objects_.erase(name) == 0) return error(ErrorKind::kNotFound, "no object {}", name);
  return {};
}

void MemoryBackend::put(const std::string& name, std::string data) {
  std::lock_guard lock(mu_);
  objects_[name] = std::move(data);
}

}  // namespace dupfs

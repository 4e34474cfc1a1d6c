#include "backends/faulty_backend.h"

#include <algorithm>

namespace dupfs {

void FaultyBackend::fail_reads(const std::string& name, Error e) {
  std::lock_guard lock(mu_);
  faults_[name].error = std::move(e);
  faults_[name].error_from.reset();
}

void FaultyBackend::fail_reads_from(const std::string& name, uint64_t offset, Error e) {
  std::lock_guard lock(mu_);
  faults_[name].error = std::move(e);
  faults_[name].error_from = offset;
}

void FaultyBackend::flip_byte(const std::string& name, uint64_t offset) {
  std::lock_guard lock(mu_);
  faults_[name].flip = offset;
}

void FaultyBackend::truncate(const std::string& name, uint64_t length) {
  std::lock_guard lock(mu_);
  faults_[name].truncate = length;
}

void FaultyBackend::stall_reads(const std::string& name, std::chrono::milliseconds timeout) {
  std::lock_guard lock(mu_);
  faults_[name].stall = timeout;
}

void FaultyBackend::release_stalls() {
  std::lock_guard lock(mu_);
  for (auto& [name, fault] : faults_) fault.stall.reset();
  ++release_generation_;
  released_.notify_all();
}

void FaultyBackend::clear() {
  std::lock_guard lock(mu_);
  faults_.clear();
  ++release_generation_;
  released_.notify_all();
}

int FaultyBackend::read_count(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = reads_.find(name);
  return it == reads_.end() ? 0 : it->second;
}

uint64_t FaultyBackend::bytes_read(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = bytes_.find(name);
  return it == bytes_.end() ? 0 : it->second;
}

size_t FaultyBackend::longest_read() const {
  std::lock_guard lock(mu_);
  return longest_read_;
}

Result<uint64_t> FaultyBackend::size(const std::string& name) const {
  Fault fault;
  {
    std::lock_guard lock(mu_);
    if (auto it = faults_.find(name); it != faults_.end()) fault = it->second;
  }
  if (fault.error && !fault.error_from) return std::unexpected(*fault.error);
  auto n = BackendWrapper::size(name);
  if (n && fault.truncate && *fault.truncate < *n) return *fault.truncate;
  return n;
}

Result<std::string> FaultyBackend::read_range(const std::string& name, uint64_t offset,
                                              size_t length) const {
  Fault fault;
  {
    std::unique_lock lock(mu_);
    ++reads_[name];
    longest_read_ = std::max(longest_read_, length);
    if (auto it = faults_.find(name); it != faults_.end()) fault = it->second;
    if (fault.stall) {
      uint64_t generation = release_generation_;
      if (!released_.wait_for(lock, *fault.stall,
                              [&] { return release_generation_ != generation; })) {
        return error(ErrorKind::kTimeout, "reading {} timed out", name);
      }
    }
  }
  // Whether this read asks for a byte at or after `from`.
  auto reaches = [&](uint64_t from) {
    return length > 0 && (offset >= from || length > from - offset);
  };
  if (fault.error && (!fault.error_from || reaches(*fault.error_from))) {
    return std::unexpected(*fault.error);
  }
  if (fault.truncate) {
    if (offset >= *fault.truncate) return std::string();
    length = std::min<uint64_t>(length, *fault.truncate - offset);
  }
  auto data = BackendWrapper::read_range(name, offset, length);
  if (data && fault.flip && *fault.flip >= offset && *fault.flip < offset + data->size()) {
    (*data)[*fault.flip - offset] = static_cast<char>(~(*data)[*fault.flip - offset]);
  }
  if (data) {
    std::lock_guard lock(mu_);
    bytes_[name] += data->size();
  }
  return data;
}

}  // namespace dupfs

// A wrapper that forwards to another Backend and injects faults on demand: errors for chosen
// objects, flipped bytes, truncation, stalls. For tests of the failure paths. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "backends/backend_wrapper.h"

namespace dupfs {

class FaultyBackend : public BackendWrapper {
 public:
  explicit FaultyBackend(std::shared_ptr<Backend> base) : BackendWrapper(std::move(base)) {}

  // Every read of `name`, and its size, fails with `error`.
  void fail_reads(const std::string& name, Error error);
  // Reads of `name` that ask for bytes at or after `offset` fail with `error`; its size and the
  // bytes before `offset` still answer (storage failing in the middle of an object).
  void fail_reads_from(const std::string& name, uint64_t offset, Error error);
  // Reads of `name` return data whose byte at `offset` is inverted.
  void flip_byte(const std::string& name, uint64_t offset);
  // `name` appears to end after `length` bytes.
  void truncate(const std::string& name, uint64_t length);
  // Reads of `name` block until release_stalls() (or the timeout, then kTimeout).
  void stall_reads(const std::string& name, std::chrono::milliseconds timeout);
  void release_stalls();
  // Clears every fault.
  void clear();
  // Number of read_range calls seen for `name` (to check laziness).
  int read_count(const std::string& name) const;
  // Octets read_range returned for `name` (to check reads fetch only what they need).
  uint64_t bytes_read(const std::string& name) const;
  // The largest length asked of one read_range call, of any object (to check reads are bounded).
  size_t longest_read() const;

  Result<uint64_t> size(const std::string& name) const override;
  Result<std::string> read_range(const std::string& name, uint64_t offset,
                                 size_t length) const override;

 private:
  struct Fault {
    std::optional<Error> error;
    std::optional<uint64_t> error_from;  // error only from this offset on (fail_reads_from)
    std::optional<uint64_t> flip;
    std::optional<uint64_t> truncate;
    std::optional<std::chrono::milliseconds> stall;
  };
  // Guards faults_, reads_, bytes_ and release_generation_. A leaf: never held while calling the
  // target (a stalled read waits on released_ with it, which releases it).
  mutable std::mutex mu_;
  mutable std::condition_variable released_;  // with mu_: release_stalls() or clear() ran
  uint64_t release_generation_ = 0;
  std::map<std::string, Fault> faults_;
  mutable std::map<std::string, int> reads_;
  mutable std::map<std::string, uint64_t> bytes_;
  mutable size_t longest_read_ = 0;
};

}  // namespace dupfs

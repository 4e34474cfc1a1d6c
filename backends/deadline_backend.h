// A wrapper that bounds every read-side wait on a backend that can block without end: a file://
// location on a hung NFS mount or a dying disk, where read(2) may not return for minutes. Each
// list/size/read_range runs on a thread of its own; the caller waits at most `timeout` and then
// gets kTimeout (which the mount turns into EIO), while the thread stays behind until the call
// returns and its result is dropped. At most `max_abandoned` calls may be left behind at once;
// beyond that, calls fail with kTimeout without starting, so a dead location cannot use up
// threads. Writes and removals go straight through (dupfs-backup is not a reader anybody waits
// on, and a write given up on could still land later). Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>

#include "backends/backend.h"

namespace dupfs {

class DeadlineBackend : public Backend {
 public:
  DeadlineBackend(std::shared_ptr<Backend> base, std::chrono::milliseconds timeout,
                  int max_abandoned = 16);

  Result<std::vector<std::string>> list() const override;
  Result<uint64_t> size(const std::string& name) const override;
  Result<std::string> read_range(const std::string& name, uint64_t offset,
                                 size_t length) const override;
  Status write(const std::string& name, std::string_view data) override {
    return base_->write(name, data);
  }
  Status remove(const std::string& name) override { return base_->remove(name); }
  std::string describe() const override { return base_->describe(); }
  void after_fork() override { base_->after_fork(); }

  // Calls given up on whose thread has not returned yet.
  int abandoned() const { return abandoned_->load(); }

 private:
  template <typename T, typename F>
  Result<T> bounded(const std::string& what, F call) const;

  std::shared_ptr<Backend> base_;
  std::chrono::milliseconds timeout_;
  int max_abandoned_;
  // Shared with the threads, which may outlive this object.
  std::shared_ptr<std::atomic<int>> abandoned_ = std::make_shared<std::atomic<int>>(0);
};

}  // namespace dupfs

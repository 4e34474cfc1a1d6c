// A Backend that forwards every call to another one (its target), as leveldb's EnvWrapper does
// for Env: a wrapper that changes some calls derives from it and overrides only those, and a
// method added to Backend needs forwarding in one place only.
//
// Backend::read is the exception: it is not forwarded but stays Backend's composition of size()
// and read_range(), so a subclass that changes those (bounds, faults, a feed) changes whole
// reads too.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.h"

namespace dupfs {

class BackendWrapper : public Backend {
 public:
  // Shares `target`: every call, writes and removals too, goes to it.
  explicit BackendWrapper(std::shared_ptr<Backend> target)
      : target_(target.get()), writable_(target.get()), shared_(std::move(target)) {}

  // Borrows `target`, which must outlive the wrapper, for reading only: write and remove fail
  // with kInvalidArgument (the target was lent const).
  explicit BackendWrapper(const Backend& target) : target_(&target) {}

  Result<std::vector<std::string>> list() const override { return target_->list(); }
  Result<uint64_t> size(const std::string& name) const override { return target_->size(name); }
  Result<std::string> read_range(const std::string& name, uint64_t offset,
                                 size_t length) const override {
    return target_->read_range(name, offset, length);
  }
  Status write(const std::string& name, std::string_view data) override {
    if (writable_ == nullptr) return read_only(name);
    return writable_->write(name, data);
  }
  Status remove(const std::string& name) override {
    if (writable_ == nullptr) return read_only(name);
    return writable_->remove(name);
  }
  std::string describe() const override { return target_->describe(); }
  void after_fork() override {
    if (writable_ != nullptr) writable_->after_fork();
  }

 protected:
  const Backend& target() const { return *target_; }
  // The shared target, for work that may outlive the wrapper (null when borrowed).
  const std::shared_ptr<Backend>& shared_target() const { return shared_; }

 private:
  Status read_only(const std::string& name) const {
    return error(ErrorKind::kInvalidArgument, "{}: {} is open for reading only", name,
                 target_->describe());
  }

  const Backend* target_;
  Backend* writable_ = nullptr;
  std::shared_ptr<Backend> shared_;
};

}  // namespace dupfs

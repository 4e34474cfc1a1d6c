#include "backends/deadline_backend.h"

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

namespace dupfs {

DeadlineBackend::DeadlineBackend(std::shared_ptr<Backend> base, std::chrono::milliseconds timeout,
                                 int max_abandoned)
    : BackendWrapper(std::move(base)), timeout_(timeout), max_abandoned_(max_abandoned) {}

template <typename T, typename F>
Result<T> DeadlineBackend::bounded(const std::string& what, F call) const {
  struct Call {
    // Guards result and given_up, between the caller and the call's thread. A leaf: the call
    // itself runs without it.
    std::mutex mu;
    std::condition_variable done;  // with mu: the result is in
    std::optional<Result<T>> result;
    bool given_up = false;
  };
  if (abandoned_->load() >= max_abandoned_) {
    return error(ErrorKind::kTimeout, "{}: storage at {} has not answered {} earlier requests",
                 what, describe(), abandoned_->load());
  }
  auto c = std::make_shared<Call>();
  // The thread holds the backend and the counter too: it may finish after this object is gone.
  std::thread([c, call = std::move(call), base = shared_target(), abandoned = abandoned_] {
    Result<T> r = call(*base);
    std::lock_guard lock(c->mu);
    if (c->given_up) {
      abandoned->fetch_sub(1);
      return;
    }
    c->result.emplace(std::move(r));
    c->done.notify_one();
  }).detach();
  std::unique_lock lock(c->mu);
  if (!c->done.wait_for(lock, timeout_, [&] { return c->result.has_value(); })) {
    c->given_up = true;
    abandoned_->fetch_add(1);
    return error(ErrorKind::kTimeout, "{}: storage at {} did not answer within {} ms", what,
                 describe(), timeout_.count());
  }
  return std::move(*c->result);
}

Result<std::vector<std::string>> DeadlineBackend::list() const {
  return bounded<std::vector<std::string>>("listing", [](const Backend& b) { return b.list(); });
}

Result<uint64_t> DeadlineBackend::size(const std::string& name) const {
  return bounded<uint64_t>(name, [name](const Backend& b) { return b.size(name); });
}

Result<std::string> DeadlineBackend::read_range(const std::string& name, uint64_t offset,
                                                size_t length) const {
  return bounded<std::string>(name, [name, offset, length](const Backend& b) {
    return b.read_range(name, offset, length);
  });
}

}  // namespace dupfs

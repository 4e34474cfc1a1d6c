// A value computed once, on first use, and kept: the read path's manifests, layers and trees.
// What is kept is the value or a permanent error (is_permanent, backends/base/error.h); a
// transient error fails the callers of the load that met it, and the next caller loads again, so
// one storage hiccup never fails a backup set until the re-mount.
//
// The load runs with no lock held: a caller that only asks whether the value is there
// (if_loaded) never waits for storage, and callers arriving during a load wait on the
// condition variable for that load's outcome instead of loading again. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>

#include "backends/base/error.h"

namespace dupfs::chain {

template <typename T>
class Memoized {
 public:
  // The kept value or permanent error; else waits for the load under way, or runs `load`
  // (Result<T>()) in this thread when none is. Callers that waited for a load get its outcome,
  // transient errors included (one failure is not retried by every waiter in turn).
  template <typename Load>
  Result<const T*> get(Load&& load) {
    std::unique_lock lock(mu_);
    if (value_) return &*value_;
    if (error_) return std::unexpected(*error_);
    if (std::shared_ptr<Attempt> attempt = loading_) {
      cv_.wait(lock, [&] { return attempt->done; });
      if (attempt->error) return std::unexpected(*attempt->error);
      return &*value_;
    }
    auto attempt = std::make_shared<Attempt>();
    loading_ = attempt;
    lock.unlock();
    std::optional<Result<T>> result;
    {
      EndAttempt end{*this, *attempt, result};
      result.emplace(load());
    }
    if (!*result) return std::unexpected(result->error());
    return &*value_;  // never changes once set: safe to read without the lock
  }

  // The value when it was loaded; null otherwise (never loads, never waits).
  const T* if_loaded() const { return ready_.load(std::memory_order_acquire) ? &*value_ : nullptr; }

 private:
  struct Attempt {
    bool done = false;  // guarded by mu_
    std::optional<Error> error;
  };
  // Records an attempt's outcome and wakes its waiters when it goes out of scope, even when the
  // load threw (bad_alloc: then the attempt fails as abandoned).
  struct EndAttempt {
    Memoized& m;
    Attempt& attempt;
    std::optional<Result<T>>& result;
    ~EndAttempt() {
      std::lock_guard lock(m.mu_);
      m.loading_ = nullptr;
      attempt.done = true;
      if (result && *result) {
        m.value_.emplace(std::move(**result));
        m.ready_.store(true, std::memory_order_release);
      } else {
        attempt.error =
            result ? result->error() : Error{ErrorKind::kCancelled, "the load was abandoned"};
        if (is_permanent(attempt.error->kind)) m.error_ = attempt.error;
      }
      m.cv_.notify_all();
    }
  };
  // Guards value_ (until ready_), error_ and loading_, and the Attempts' fields. Held only to
  // look at or record an outcome, never across `load`: a leaf, no lock is taken under it. (A
  // caller must not hold a lock that its `load` takes: others would wait for the load, which
  // would wait for them.)
  std::mutex mu_;
  std::condition_variable cv_;        // signalled with mu_ when an attempt ends
  std::optional<T> value_;            // set once, then never changed
  std::optional<Error> error_;        // a permanent error, kept
  std::shared_ptr<Attempt> loading_;  // the load under way, if any
  std::atomic<bool> ready_{false};    // value_ is set
};

}  // namespace dupfs::chain

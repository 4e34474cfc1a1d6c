// Memoized<T>: one load for concurrent callers, no lock held across it, permanent errors kept,
// transient ones not.
#include "chain/read/memoized.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>
#include <vector>

namespace dupfs::chain {
namespace {

TEST(MemoizedTest, KeepsTheValue) {
  Memoized<int> m;
  EXPECT_EQ(m.if_loaded(), nullptr);
  int loads = 0;
  auto load = [&]() -> Result<int> { return ++loads * 10; };
  auto a = m.get(load);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(**a, 10);
  auto b = m.get(load);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(loads, 1);
  ASSERT_NE(m.if_loaded(), nullptr);
  EXPECT_EQ(*m.if_loaded(), 10);
}

TEST(MemoizedTest, TransientErrorsAreNotKept) {
  for (ErrorKind kind :
       {ErrorKind::kIoError, ErrorKind::kTimeout, ErrorKind::kCancelled, ErrorKind::kWouldBlock}) {
    SCOPED_TRACE(kind_name(kind));
    Memoized<int> m;
    int loads = 0;
    auto load = [&]() -> Result<int> {
      if (++loads == 1) return make_error(kind, "hiccup");
      return 7;
    };
    auto first = m.get(load);
    ASSERT_FALSE(first.has_value());
    EXPECT_EQ(first.error().kind, kind);
    EXPECT_EQ(m.if_loaded(), nullptr);
    auto second = m.get(load);
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ(**second, 7);
    EXPECT_EQ(loads, 2);
  }
}

TEST(MemoizedTest, PermanentErrorsAreKept) {
  for (ErrorKind kind : {ErrorKind::kCorruption, ErrorKind::kAuth, ErrorKind::kNotFound,
                         ErrorKind::kInvalidArgument, ErrorKind::kUnsupported}) {
    SCOPED_TRACE(kind_name(kind));
    Memoized<int> m;
    int loads = 0;
    auto load = [&]() -> Result<int> {
      if (++loads == 1) return make_error(kind, "damaged");
      return 7;
    };
    EXPECT_FALSE(m.get(load).has_value());
    auto second = m.get(load);
    ASSERT_FALSE(second.has_value());
    EXPECT_EQ(second.error().kind, kind);
    EXPECT_EQ(second.error().message, "damaged");
    EXPECT_EQ(loads, 1);
  }
}

// Callers arriving during a load wait for it and share its outcome (a transient error too);
// if_loaded answers at once meanwhile.
TEST(MemoizedTest, ConcurrentCallersShareOneLoad) {
  for (bool fail : {false, true}) {
    SCOPED_TRACE(fail ? "failing load" : "succeeding load");
    Memoized<int> m;
    std::atomic<int> loads{0};
    std::promise<void> go;
    std::shared_future<void> released = go.get_future().share();
    std::atomic<bool> started{false};
    auto load = [&]() -> Result<int> {
      ++loads;
      started = true;
      released.wait();
      if (fail) return make_error(ErrorKind::kIoError, "hiccup");
      return 42;
    };
    std::vector<std::future<Result<const int*>>> callers;
    callers.push_back(std::async(std::launch::async, [&] { return m.get(load); }));
    while (!started) std::this_thread::yield();
    for (int i = 0; i < 3; ++i) {
      callers.push_back(std::async(std::launch::async, [&] { return m.get(load); }));
    }
    EXPECT_EQ(m.if_loaded(), nullptr);  // does not wait for the load
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    go.set_value();
    for (auto& c : callers) {
      auto r = c.get();
      EXPECT_EQ(r.has_value(), !fail);
      if (r) {
        EXPECT_EQ(**r, 42);
      }
    }
    // Callers that came after the load started waited for it: at most a late starter loads
    // again (only when the first load failed).
    EXPECT_LE(loads.load(), fail ? 4 : 1);
  }
}

}  // namespace
}  // namespace dupfs::chain

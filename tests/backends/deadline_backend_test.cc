#include "backends/deadline_backend.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "backends/faulty_backend.h"
#include "backends/memory_backend.h"

namespace dupfs {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

// Waits (up to 10 s) until `d` has no abandoned call left.
bool drained(const DeadlineBackend& d) {
  auto deadline = steady_clock::now() + seconds(10);
  while (d.abandoned() > 0 && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  return d.abandoned() == 0;
}

TEST(DeadlineBackend, AnswersPassThrough) {
  auto mem = std::make_shared<MemoryBackend>();
  mem->put("v", "abcdef");
  DeadlineBackend d(mem, seconds(5));
  EXPECT_EQ(*d.read_range("v", 2, 3), "cde");
  EXPECT_EQ(*d.size("v"), 6u);
  EXPECT_EQ(d.list()->size(), 1u);
  EXPECT_EQ(d.read_range("nope", 0, 1).error().kind, ErrorKind::kNotFound);
  ASSERT_TRUE(d.write("w", "new"));
  EXPECT_EQ(*mem->read("w"), "new");
  EXPECT_EQ(d.abandoned(), 0);
}

TEST(DeadlineBackend, AStalledReadTimesOutAndTheNextOneWorks) {
  auto mem = std::make_shared<MemoryBackend>();
  mem->put("v", "abc");
  auto faulty = std::make_shared<FaultyBackend>(mem);
  faulty->stall_reads("v", seconds(60));
  DeadlineBackend d(faulty, milliseconds(200));
  auto start = steady_clock::now();
  auto r = d.read_range("v", 0, 3);
  auto waited = steady_clock::now() - start;
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kTimeout);
  EXPECT_NE(r.error().message.find("did not answer"), std::string::npos) << r.error().message;
  EXPECT_GE(waited, milliseconds(200));
  EXPECT_LT(waited, seconds(5));
  EXPECT_EQ(d.abandoned(), 1);
  // The storage comes back: the stuck call returns (its result dropped), new calls answer.
  faulty->release_stalls();
  EXPECT_TRUE(drained(d));
  EXPECT_EQ(*d.read_range("v", 0, 3), "abc");
}

TEST(DeadlineBackend, TooManyAbandonedCallsFailAtOnce) {
  auto mem = std::make_shared<MemoryBackend>();
  mem->put("v", "abc");
  auto faulty = std::make_shared<FaultyBackend>(mem);
  faulty->stall_reads("v", seconds(60));
  DeadlineBackend d(faulty, milliseconds(500), 2);
  EXPECT_EQ(d.read_range("v", 0, 1).error().kind, ErrorKind::kTimeout);
  EXPECT_EQ(d.read_range("v", 0, 1).error().kind, ErrorKind::kTimeout);
  EXPECT_EQ(d.abandoned(), 2);
  const int seen = faulty->read_count("v");
  auto start = steady_clock::now();
  auto r = d.read_range("v", 0, 1);
  EXPECT_EQ(r.error().kind, ErrorKind::kTimeout);
  EXPECT_LT(steady_clock::now() - start, milliseconds(500)) << "should fail without waiting";
  EXPECT_EQ(faulty->read_count("v"), seen) << "no new call may start";
  faulty->release_stalls();
  EXPECT_TRUE(drained(d));
}

TEST(DeadlineBackend, OutlivedByItsAbandonedCalls) {
  auto mem = std::make_shared<MemoryBackend>();
  mem->put("v", "abc");
  auto faulty = std::make_shared<FaultyBackend>(mem);
  faulty->stall_reads("v", seconds(60));
  {
    DeadlineBackend d(faulty, milliseconds(20));
    EXPECT_FALSE(d.read_range("v", 0, 1).has_value());
  }
  // The abandoned thread still holds the storage; releasing it must not touch freed memory.
  faulty->release_stalls();
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(*faulty->read_range("v", 0, 3), "abc");
}

}  // namespace
}  // namespace dupfs

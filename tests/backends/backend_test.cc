#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "backends/backend_wrapper.h"
#include "backends/faulty_backend.h"
#include "backends/file_backend.h"
#include "backends/memory_backend.h"
#include "tests/support/gpg_home.h"

namespace dupfs {
namespace {

using ScratchDir = test::TempDir;

// The same contract checks for every implementation.
void check_contract(Backend& b) {
  auto empty = b.list();
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->empty());
  ASSERT_TRUE(b.write("a", "hello world").has_value());
  ASSERT_TRUE(b.write("b", "").has_value());
  auto again = b.write("a", "other");
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().kind, ErrorKind::kExists);
  EXPECT_EQ(*b.read("a"), "hello world");
  EXPECT_EQ(*b.read_range("a", 6, 100), "world");
  EXPECT_EQ(*b.read_range("a", 0, 5), "hello");
  EXPECT_EQ(*b.read_range("a", 11, 5), "");
  EXPECT_EQ(*b.read_range("a", 50, 5), "");
  EXPECT_EQ(*b.size("a"), 11u);
  EXPECT_EQ(*b.read("b"), "");
  auto names = *b.list();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(b.read("missing").error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(b.size("missing").error().kind, ErrorKind::kNotFound);
  ASSERT_TRUE(b.remove("a").has_value());
  EXPECT_EQ(b.remove("a").error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(b.list()->size(), 1u);
}

TEST(BackendTest, MemoryContract) {
  MemoryBackend b;
  check_contract(b);
}

TEST(BackendTest, FileContract) {
  ScratchDir dir;
  FileBackend b(dir.path());
  check_contract(b);
  // No temporary files are left behind by writes.
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(e.path().filename().string().find("dupfs-tmp"), std::string::npos);
  }
}

TEST(BackendTest, FileListSkipsDirectoriesAndMissingLocationIsNotFound) {
  ScratchDir dir;
  std::filesystem::create_directory(dir.path() + "/sub");
  FileBackend b(dir.path());
  ASSERT_TRUE(b.write("x", "1").has_value());
  EXPECT_EQ(*b.list(), std::vector<std::string>{"x"});
  FileBackend missing(dir.path() + "/nope");
  EXPECT_EQ(missing.list().error().kind, ErrorKind::kNotFound);
}

TEST(BackendTest, OpenBackendUrls) {
  ScratchDir dir;
  auto b = open_backend("file://" + dir.path());
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ((*b)->describe(), "file://" + dir.path());
  EXPECT_TRUE(open_backend(dir.path()).has_value());
  auto bad = open_backend("gopher://host/x");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(bad.error().message.find("gopher"), std::string::npos);
}

TEST(BackendTest, FaultyInjectsErrorsFlipsAndTruncation) {
  auto mem = std::make_shared<MemoryBackend>();
  mem->put("v", "abcdef");
  FaultyBackend f(mem);
  f.flip_byte("v", 2);
  auto data = *f.read("v");
  EXPECT_EQ(data[2], static_cast<char>(~'c'));
  EXPECT_EQ(data.substr(3), "def");
  f.clear();
  f.truncate("v", 4);
  EXPECT_EQ(*f.read("v"), "abcd");
  f.fail_reads("v", Error{ErrorKind::kIoError, "boom"});
  EXPECT_EQ(f.read_range("v", 0, 1).error().kind, ErrorKind::kIoError);
  EXPECT_GE(f.read_count("v"), 3);
}

TEST(BackendTest, WrapperForwardsEverything) {
  auto mem = std::make_shared<MemoryBackend>();
  BackendWrapper w(mem);
  check_contract(w);
  EXPECT_EQ(w.describe(), mem->describe());
  EXPECT_EQ(*mem->read("b"), "");  // the writes went to the target
}

TEST(BackendTest, WrapperOfABorrowedTargetOnlyReads) {
  MemoryBackend mem;
  mem.put("v", "abc");
  BackendWrapper w(static_cast<const Backend&>(mem));
  EXPECT_EQ(*w.read("v"), "abc");
  EXPECT_EQ(*w.list(), std::vector<std::string>{"v"});
  EXPECT_EQ(w.write("x", "1").error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(w.remove("v").error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(*mem.list(), std::vector<std::string>{"v"});
}

TEST(BackendTest, FaultyFailsReadsFromAnOffset) {
  auto mem = std::make_shared<MemoryBackend>();
  mem->put("v", "abcdef");
  FaultyBackend f(mem);
  f.fail_reads_from("v", 4, Error{ErrorKind::kIoError, "boom"});
  EXPECT_EQ(*f.size("v"), 6u);
  EXPECT_EQ(*f.read_range("v", 0, 4), "abcd");
  EXPECT_EQ(f.read_range("v", 2, 3).error().message, "boom");
  EXPECT_EQ(f.read_range("v", 5, 1).error().kind, ErrorKind::kIoError);
  EXPECT_EQ(f.read("v").error().kind, ErrorKind::kIoError);
  EXPECT_GE(f.longest_read(), 4u);
  f.fail_reads("v", Error{ErrorKind::kIoError, "boom"});
  EXPECT_EQ(f.size("v").error().kind, ErrorKind::kIoError);
}

TEST(BackendTest, FaultyStallTimesOutOrIsReleased) {
  auto mem = std::make_shared<MemoryBackend>();
  mem->put("v", "abc");
  FaultyBackend f(mem);
  f.stall_reads("v", std::chrono::milliseconds(50));
  EXPECT_EQ(f.read_range("v", 0, 3).error().kind, ErrorKind::kTimeout);
  f.stall_reads("v", std::chrono::seconds(30));
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    f.release_stalls();
  });
  auto r = f.read_range("v", 0, 3);
  releaser.join();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, "abc");
}

}  // namespace
}  // namespace dupfs

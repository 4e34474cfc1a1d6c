// Errors that heal: an Archive over a real duplicity archive (full + incremental, no
// encryption) whose storage fails on demand (FaultyBackend). A transient storage error while a
// set's manifest, signatures or volumes are read fails that request only; the next request of
// the same set succeeds without re-opening. Permanent errors (damage) are kept.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "backends/faulty_backend.h"
#include "backends/file_backend.h"
#include "chain/format/names.h"
#include "chain/read/archive.h"
#include "tests/support/duplicity.h"
#include "tests/support/temp_dir.h"

namespace dupfs::chain {
namespace {

constexpr int64_t kFullTime = 1700000000;
constexpr int64_t kIncTime = 1700000600;

// Writes `data` to `path`, dated `age` ago: duplicity sees a file as changed by its mtime in
// whole seconds, which two writes within one second would share.
void write(const std::string& path, const std::string& data, std::chrono::seconds age) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
  std::filesystem::last_write_time(path, std::filesystem::file_time_type::clock::now() - age);
}

// The archive, made once for the suite.
struct Made {
  test::TempDir dir{"dupfs-archive-heal-"};
  std::string location;
  std::string full_manifest, inc_manifest, inc_signatures, inc_volume;
};

Made* made = nullptr;

class ArchiveHeal : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (access(test::kDuplicityBinary, X_OK) != 0) return;
    made = new Made;
    const std::string src = made->dir.file("src");
    std::filesystem::create_directories(src + "/sub");
    write(src + "/a.txt", "alpha, as of the full\n", std::chrono::hours(2));
    write(src + "/sub/b.txt", "beta\n", std::chrono::hours(2));
    made->location = made->dir.file("out");
    const std::string url = "file://" + made->location;
    const std::map<std::string, std::string> env{{"HOME", made->dir.path()}};
    auto r = test::duplicity(
        {"full", "--no-encryption", "--current-time", std::to_string(kFullTime), src, url}, env,
        std::chrono::seconds(120));
    ASSERT_TRUE(r.ok()) << r.err;
    write(src + "/a.txt", "alpha, as of the incremental\n", std::chrono::hours(1));
    write(src + "/c.txt", "gamma\n", std::chrono::hours(1));
    r = test::duplicity(
        {"incremental", "--no-encryption", "--current-time", std::to_string(kIncTime), src, url},
        env, std::chrono::seconds(120));
    ASSERT_TRUE(r.ok()) << r.err;
    for (const auto& e : std::filesystem::directory_iterator(made->location)) {
      std::string name = e.path().filename().string();
      auto p = parse_name(name);
      ASSERT_TRUE(p.has_value()) << name;
      if (p->type == FileType::kFull && p->manifest) made->full_manifest = name;
      if (p->type == FileType::kInc && p->manifest) made->inc_manifest = name;
      if (p->type == FileType::kInc && p->volume == 1) made->inc_volume = name;
      if (p->type == FileType::kNewSig) made->inc_signatures = name;
    }
    ASSERT_FALSE(made->full_manifest.empty());
    ASSERT_FALSE(made->inc_manifest.empty());
    ASSERT_FALSE(made->inc_volume.empty());
    ASSERT_FALSE(made->inc_signatures.empty());
  }
  static void TearDownTestSuite() {
    delete made;
    made = nullptr;
  }

  void SetUp() override {
    if (made == nullptr) GTEST_SKIP() << "duplicity not installed";
    faulty_ = std::make_shared<FaultyBackend>(std::make_shared<FileBackend>(made->location));
  }

  // Opens the archive with no local metadata cache: every manifest comes from storage.
  std::unique_ptr<Archive> open() {
    auto a = Archive::open(faulty_, ArchiveOptions{});
    EXPECT_TRUE(a.has_value()) << a.error().message;
    return a ? std::move(*a) : nullptr;
  }

  // The content of `path` in snapshot `i` (0: the full, 1: the incremental).
  static Result<std::string> read(Archive& archive, size_t i,
                                  const std::vector<std::string>& path) {
    auto snap = archive.snapshot(i);
    if (!snap) return std::unexpected(snap.error());
    uint32_t node = Snapshot::kRoot;
    for (const auto& c : path) {
      auto child = (*snap)->child(node, c);
      if (!child) return error(ErrorKind::kNotFound, "no {}", c);
      node = *child;
    }
    auto size = (*snap)->file_size(node);
    if (!size) return std::unexpected(size.error());
    std::string out(*size, '\0');
    auto n = (*snap)->read(node, 0, out.data(), out.size());
    if (!n) return std::unexpected(n.error());
    out.resize(*n);
    return out;
  }

  std::shared_ptr<FaultyBackend> faulty_;
};

// The full's manifest is read when a file is first read (only the newest is read at open). A
// storage failure then fails that read; the next read of the same set succeeds.
TEST_F(ArchiveHeal, ManifestReadFailureFailsOnlyThatRead) {
  for (ErrorKind kind : {ErrorKind::kIoError, ErrorKind::kTimeout}) {
    SCOPED_TRACE(kind_name(kind));
    faulty_->clear();
    faulty_->fail_reads(made->full_manifest, Error{kind, "connection reset by peer"});
    auto archive = open();
    ASSERT_TRUE(archive);
    ASSERT_EQ(archive->snapshot_count(), 2u);

    auto first = read(*archive, 0, {"a.txt"});
    ASSERT_FALSE(first.has_value());
    EXPECT_EQ(first.error().kind, kind) << first.error().message;
    EXPECT_NE(first.error().message.find(made->full_manifest), std::string::npos)
        << first.error().message;
    // Every file of every snapshot needs the full's volumes: they all fail meanwhile.
    EXPECT_FALSE(read(*archive, 1, {"c.txt"}).has_value());

    faulty_->clear();  // the storage is back
    auto again = read(*archive, 0, {"a.txt"});
    ASSERT_TRUE(again.has_value()) << again.error().message;
    EXPECT_EQ(*again, "alpha, as of the full\n");
    auto latest = read(*archive, 1, {"a.txt"});
    ASSERT_TRUE(latest.has_value()) << latest.error().message;
    EXPECT_EQ(*latest, "alpha, as of the incremental\n");
    auto sub = read(*archive, 1, {"sub", "b.txt"});
    ASSERT_TRUE(sub.has_value()) << sub.error().message;
    EXPECT_EQ(*sub, "beta\n");
  }
}

// Damage is an answer, not a failure to get one: it is kept, and the manifest is not read again.
TEST_F(ArchiveHeal, DamagedManifestIsKept) {
  faulty_->fail_reads(made->full_manifest, Error{ErrorKind::kCorruption, "bad CRC"});
  auto archive = open();
  ASSERT_TRUE(archive);
  auto first = read(*archive, 0, {"a.txt"});
  ASSERT_FALSE(first.has_value());
  EXPECT_EQ(first.error().kind, ErrorKind::kCorruption);
  const int reads = faulty_->read_count(made->full_manifest);
  faulty_->clear();
  auto again = read(*archive, 0, {"a.txt"});
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().kind, ErrorKind::kCorruption);
  EXPECT_EQ(faulty_->read_count(made->full_manifest), reads);
}

// A set without readable signatures gets its tree from its volumes, when first browsed. A
// storage failure while they are read fails that build; the next request builds the tree.
TEST_F(ArchiveHeal, TreeFromVolumesBuildFailureFailsOnlyThatRequest) {
  faulty_->fail_reads(made->inc_signatures, Error{ErrorKind::kCorruption, "bad CRC"});
  auto archive = open();
  ASSERT_TRUE(archive);
  faulty_->fail_reads(made->inc_volume, Error{ErrorKind::kIoError, "connection reset by peer"});
  auto snap = archive->snapshot(1);
  ASSERT_FALSE(snap.has_value());
  EXPECT_EQ(snap.error().kind, ErrorKind::kIoError) << snap.error().message;
  EXPECT_EQ(archive->snapshot_if_built(1), nullptr);

  faulty_->clear();
  snap = archive->snapshot(1);
  ASSERT_TRUE(snap.has_value()) << snap.error().message;
  EXPECT_EQ(archive->snapshot_if_built(1), *snap);
  auto c = read(*archive, 1, {"c.txt"});
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(*c, "gamma\n");
}

// A signature file that could not be read at open, for a transient reason, is read again when
// its set is first browsed (rather than decoding the set's volumes for its tree).
TEST_F(ArchiveHeal, SignaturesUnreadAtOpenAreReadAgain) {
  faulty_->fail_reads(made->inc_signatures, Error{ErrorKind::kTimeout, "no answer"});
  auto archive = open();
  ASSERT_TRUE(archive);
  const int reads = faulty_->read_count(made->inc_signatures);
  faulty_->clear();
  auto snap = archive->snapshot(1);
  ASSERT_TRUE(snap.has_value()) << snap.error().message;
  EXPECT_GT(faulty_->read_count(made->inc_signatures), reads);
  EXPECT_EQ(faulty_->read_count(made->inc_volume), 0) << "the tree came from the volumes";
  EXPECT_TRUE((*snap)->child(Snapshot::kRoot, "c.txt").has_value());
}

}  // namespace
}  // namespace dupfs::chain

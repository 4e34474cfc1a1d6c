// ArchiveDir (chain/metadata/archive_dir.h), duplicity's archive dir: copy names as duplicity
// gives them, fetching through the copies from a MemoryBackend, storing, listing, removing, the
// directory's permissions and the lock.
#include "chain/metadata/archive_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "backends/memory_backend.h"
#include "tests/support/source_tree.h"
#include "tests/support/temp_dir.h"

namespace dupfs::chain {
namespace {

using dupfs::test::TempDir;
using ::testing::UnorderedElementsAre;

constexpr int64_t kTime = 1'700'000'000;
constexpr int64_t kTime2 = 1'700'086'400;

std::string file_of(const std::string& path) { return test::read_file(path); }

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(ArchiveDir, CopyNamesAreDuplicitys) {
  const ArchiveDir dir("/cache");
  // Manifests: the stored name without its codec suffix.
  EXPECT_EQ(dir.copy_name(full_manifest_name(kTime, ".gpg")), full_manifest_name(kTime, ""));
  EXPECT_EQ(dir.copy_name(full_manifest_name(kTime, "")), full_manifest_name(kTime, ""));
  EXPECT_EQ(dir.copy_name(inc_manifest_name(kTime, kTime2, ".gpg")),
            inc_manifest_name(kTime, kTime2, ""));
  // Signature files: without the codec suffix, gzipped.
  const std::string full_sig = full_sig_name(kTime, "") + ".gz";
  EXPECT_EQ(dir.copy_name(full_sig_name(kTime, ".gpg")), full_sig);
  EXPECT_EQ(dir.copy_name(full_sig_name(kTime, ".gz")), full_sig);
  EXPECT_EQ(dir.copy_name(full_sig_name(kTime, "")), full_sig);
  EXPECT_EQ(dir.copy_name(new_sig_name(kTime, kTime2, ".gpg")),
            new_sig_name(kTime, kTime2, "") + ".gz");
  EXPECT_EQ(full_sig, "duplicity-full-signatures.20231114T221320Z.sigtar.gz");
  // --short-filenames names: ".z", as duplicity names them with that option.
  EXPECT_EQ(dir.copy_name("dfs.tp3jvk.st.g"), "dfs.tp3jvk.st.z");
  EXPECT_EQ(dir.copy_name("dns.tp3jvk.tp3jvm.st"), "dns.tp3jvk.tp3jvm.st.z");
  EXPECT_EQ(dir.copy_name("df.tp3jvk.m.g"), "df.tp3jvk.m");
  // Nothing else has a copy.
  EXPECT_EQ(dir.copy_name(full_volume_name(kTime, 1, ".gpg")), std::nullopt);
  EXPECT_EQ(dir.copy_name("df.tp3jvk.m.p"), std::nullopt);
  EXPECT_EQ(dir.copy_name("lockfile"), std::nullopt);
  EXPECT_EQ(dir.copy_name(".x.dupfs-tmp.1"), std::nullopt);
  EXPECT_EQ(dir.copy_path(full_manifest_name(kTime, ".gpg")),
            "/cache/" + full_manifest_name(kTime, ""));
  EXPECT_EQ(dir.copy_path(full_volume_name(kTime, 1, ".gpg")), "");

  // Prefixes: names are parsed with the location's, and copies keep them.
  NamePrefixes prefixes;
  prefixes.general = "P_";
  prefixes.signature = "S_";
  const ArchiveDir prefixed("/cache", prefixes);
  EXPECT_EQ(prefixed.copy_name(full_sig_name(kTime, ".gpg", prefixes)),
            full_sig_name(kTime, "", prefixes) + ".gz");
  EXPECT_EQ(dir.copy_name(full_sig_name(kTime, ".gpg", prefixes)), std::nullopt);
}

// A location with one set's manifest and signatures (gzip-coded, as --no-encryption stores them).
struct Location {
  MemoryBackend storage;
  const std::string manifest = full_manifest_name(kTime, "");
  const std::string sigs = full_sig_name(kTime, ".gz");
  const std::string manifest_text = "Hostname host\nLocaldir /src\n";
  const std::string sigtar = test::pseudo_random_bytes(300000, 7) + std::string(100000, 'x');
  Location() {
    storage.put(manifest, manifest_text);
    storage.put(sigs, gzip_compress(sigtar));
  }
};

TEST(ArchiveDir, FetchKeepsCopiesAndReadsThemNextTime) {
  TempDir tmp("dupfs-archive-dir-");
  Location loc;
  const ArchiveDir dir(tmp.file("a/b/cache"));
  EXPECT_FALSE(dir.has_copy(loc.manifest));

  auto manifest = dir.fetch(loc.storage, loc.manifest, {});
  ASSERT_TRUE(manifest.has_value()) << manifest.error().message;
  EXPECT_EQ(*manifest, loc.manifest_text);
  auto sigtar = dir.fetch(loc.storage, loc.sigs, {});
  ASSERT_TRUE(sigtar.has_value()) << sigtar.error().message;
  EXPECT_EQ(*sigtar, loc.sigtar);

  // The directory and its parents are private; the manifest's copy is plain, the signatures'
  // gzipped (what duplicity's GzipFile reads).
  for (const char* d : {"a", "a/b", "a/b/cache"}) EXPECT_EQ(mode_of(tmp.file(d)), 0700u) << d;
  EXPECT_THAT(dir.list(), UnorderedElementsAre(loc.manifest, full_sig_name(kTime, "") + ".gz"));
  EXPECT_EQ(file_of(dir.copy_path(loc.manifest)), loc.manifest_text);
  const std::string gz = file_of(dir.copy_path(loc.sigs));
  ASSERT_GE(gz.size(), 2u);
  EXPECT_EQ(gz.substr(0, 2), "\x1f\x8b");
  EXPECT_LT(gz.size(), loc.sigtar.size());
  EXPECT_TRUE(dir.has_copy(loc.sigs));
  EXPECT_EQ(dir.read_copy(loc.sigs).value_or(""), loc.sigtar);

  // Gone from storage: the copies answer.
  ASSERT_TRUE(loc.storage.remove(loc.manifest).has_value());
  ASSERT_TRUE(loc.storage.remove(loc.sigs).has_value());
  EXPECT_EQ(dir.fetch(loc.storage, loc.manifest, {}).value_or(""), loc.manifest_text);
  EXPECT_EQ(dir.fetch(loc.storage, loc.sigs, {}).value_or(""), loc.sigtar);
}

TEST(ArchiveDir, FetchFromStorageLeavesTheCopy) {
  TempDir tmp("dupfs-archive-dir-");
  Location loc;
  const ArchiveDir dir(tmp.path());
  dir.store(loc.manifest, "an older text\n");
  auto text = dir.fetch(loc.storage, loc.manifest, {}, ArchiveDir::Source::kStorage);
  ASSERT_TRUE(text.has_value()) << text.error().message;
  EXPECT_EQ(*text, loc.manifest_text);
  EXPECT_EQ(dir.read_copy(loc.manifest).value_or(""), "an older text\n");
  // Without a copy, what storage gave is kept.
  ASSERT_TRUE(dir.fetch(loc.storage, loc.sigs, {}, ArchiveDir::Source::kStorage).has_value());
  EXPECT_EQ(dir.read_copy(loc.sigs).value_or(""), loc.sigtar);
}

TEST(ArchiveDir, DamagedCopyIsFetchedAgainAndReplaced) {
  TempDir tmp("dupfs-archive-dir-");
  Location loc;
  const ArchiveDir dir(tmp.path());
  dir.store_encoded(loc.sigs, "not gzip at all");
  auto damaged = dir.read_copy(loc.sigs);
  ASSERT_FALSE(damaged.has_value());
  EXPECT_EQ(damaged.error().kind, ErrorKind::kCorruption);

  EXPECT_EQ(dir.fetch(loc.storage, loc.sigs, {}).value_or(""), loc.sigtar);
  EXPECT_EQ(dir.read_copy(loc.sigs).value_or(""), loc.sigtar);
}

TEST(ArchiveDir, StorageErrorsComeBackAndNothingIsKept) {
  TempDir tmp("dupfs-archive-dir-");
  MemoryBackend storage;
  const ArchiveDir dir(tmp.file("cache"));
  auto missing = dir.fetch(storage, full_manifest_name(kTime, ".gpg"), {});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  storage.put(full_sig_name(kTime, ".gz"), "damaged");
  auto damaged = dir.fetch(storage, full_sig_name(kTime, ".gz"), {});
  ASSERT_FALSE(damaged.has_value());
  EXPECT_EQ(damaged.error().kind, ErrorKind::kCorruption);
  EXPECT_TRUE(dir.list().empty());
}

TEST(ArchiveDir, StoreReplacesAndStoreEncodedKeepsTheBytes) {
  TempDir tmp("dupfs-archive-dir-");
  const ArchiveDir dir(tmp.file("cache"));
  const std::string sigs = new_sig_name(kTime, kTime2, ".gpg");
  dir.store(sigs, "first");
  dir.store(sigs, "second");
  EXPECT_EQ(dir.read_copy(sigs).value_or(""), "second");

  // The backup writer streams the copy through signature_encoding() itself.
  auto encoded = encode_to_string(ArchiveDir::signature_encoding(), "sigs", "streamed");
  ASSERT_TRUE(encoded.has_value());
  dir.store_encoded(sigs, *encoded);
  EXPECT_EQ(file_of(dir.copy_path(sigs)), *encoded);
  EXPECT_EQ(dir.read_copy(sigs).value_or(""), "streamed");
  // No temporary files stay behind.
  EXPECT_THAT(dir.list(), UnorderedElementsAre(new_sig_name(kTime, kTime2, "") + ".gz"));
  // Names without a copy are not stored.
  dir.store(full_volume_name(kTime, 1, ".gpg"), "volume");
  EXPECT_EQ(dir.list().size(), 1u);
}

TEST(ArchiveDir, ListAndRemove) {
  TempDir tmp("dupfs-archive-dir-");
  const ArchiveDir dir(tmp.file("cache"));
  EXPECT_TRUE(dir.list().empty());  // not there yet
  dir.store(full_manifest_name(kTime, ".gpg"), "m");
  dir.store(full_sig_name(kTime, ".gpg"), "s");
  dir.store(inc_manifest_name(kTime, kTime2, ".gpg"), "i");
  test::write_file(tmp.file("cache/other"), "x");
  std::filesystem::create_directories(tmp.file("cache/subdir"));
  EXPECT_THAT(dir.list(),
              UnorderedElementsAre(full_manifest_name(kTime, ""), full_sig_name(kTime, "") + ".gz",
                                   inc_manifest_name(kTime, kTime2, ""), "other"));

  dir.remove({"other", "no-such-file"});
  dir.remove_copy(full_sig_name(kTime, ".gpg"));
  dir.remove_copy(full_volume_name(kTime, 1, ".gpg"));  // never has a copy
  EXPECT_THAT(dir.list(), UnorderedElementsAre(full_manifest_name(kTime, ""),
                                               inc_manifest_name(kTime, kTime2, "")));
  EXPECT_FALSE(dir.has_copy(full_sig_name(kTime, ".gpg")));
}

TEST(ArchiveDir, WithoutADirectoryEverythingGoesToStorage) {
  Location loc;
  const ArchiveDir none;
  EXPECT_FALSE(none.enabled());
  EXPECT_EQ(none.fetch(loc.storage, loc.sigs, {}).value_or(""), loc.sigtar);
  none.store(loc.manifest, "x");
  EXPECT_FALSE(none.has_copy(loc.manifest));
  EXPECT_EQ(none.read_copy(loc.manifest).error().kind, ErrorKind::kNotFound);
  EXPECT_TRUE(none.list().empty());
  EXPECT_FALSE(none.create().has_value());
}

TEST(ArchiveDir, AnUnusableDirectoryOnlyCostsTheCopies) {
  TempDir tmp("dupfs-archive-dir-");
  Location loc;
  test::write_file(tmp.file("file"), "a file, not a directory");
  const ArchiveDir dir(tmp.file("file/cache"));
  auto created = dir.create();
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(created.error().kind, ErrorKind::kIoError);
  EXPECT_EQ(dir.fetch(loc.storage, loc.manifest, {}).value_or(""), loc.manifest_text);
  EXPECT_TRUE(dir.list().empty());
}

TEST(ArchiveDir, LockIsExclusiveAndCreatesTheDirectory) {
  TempDir tmp("dupfs-archive-dir-");
  const ArchiveDir dir(tmp.file("x/cache"));
  {
    ArchiveLock first;
    ASSERT_TRUE(first.acquire(dir, "test").has_value());
    EXPECT_EQ(mode_of(dir.path()), 0700u);
    EXPECT_TRUE(std::filesystem::exists(dir.path() + "/lockfile"));
    ArchiveLock second;
    auto held = second.acquire(dir, "test");
    ASSERT_FALSE(held.has_value());
    EXPECT_EQ(held.error().kind, ErrorKind::kExists);
    EXPECT_THAT(held.error().message, ::testing::HasSubstr("another test process is using"));
  }
  ArchiveLock again;
  EXPECT_TRUE(again.acquire(dir, "test").has_value());
}

}  // namespace
}  // namespace dupfs::chain

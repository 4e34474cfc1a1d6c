// The set writer on a MemoryBackend: what lands in storage and in the archive dir, read back with
// dupfs's own readers (names, collection, manifest, tar, sigtar). Restores by the real duplicity
// are in tests/integration/backup_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "backends/memory_backend.h"
#include "chain/backup/run_backup.h"
#include "chain/format/collection.h"
#include "chain/format/manifest.h"
#include "chain/format/names.h"
#include "chain/format/signature.h"
#include "chain/format/tar.h"
#include "chain/metadata/archive_dir.h"
#include "tests/support/process.h"
#include "tests/support/source_tree.h"
#include "tests/support/temp_dir.h"
#include "tests/support/walk_tree.h"

namespace dupfs::chain {
namespace {

SourceWalk walk_of(const std::string& root) {
  return [root](const std::function<Status(SourceEntry &&)>& visit) -> Status {
    Status result;
    test::walk_tree(root, [&](test::WalkedEntry&& e) {
      if (!result) return;
      SourceEntry s{std::move(e.index), std::move(e.path), e.st, std::move(e.link_target)};
      result = visit(std::move(s));
    });
    return result;
  };
}

struct Member {
  TarHeader header;
  std::string data;
  EntryName name;
};

class Collect : public TarVisitor {
 public:
  Status on_entry(const TarHeader& h) override {
    auto name = parse_entry_name(h.name);
    EXPECT_TRUE(name.has_value()) << h.name;
    members.push_back(Member{h, {}, name.value_or(EntryName{})});
    return {};
  }
  Status on_data(const TarHeader&, std::string_view piece) override {
    members.back().data.append(piece);
    return {};
  }
  Status on_entry_end(const TarHeader&) override { return {}; }
  std::vector<Member> members;
};

std::vector<Member> read_tar(std::string_view tar) {
  Collect c;
  TarParser p(c);
  EXPECT_TRUE(p.feed(tar).has_value());
  EXPECT_TRUE(p.finish().has_value());
  return std::move(c.members);
}

std::string sha1_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha1(), nullptr);
  std::string out;
  for (unsigned i = 0; i < len; ++i) out += fmt::format("{:02x}", md[i]);
  return out;
}

class BackupWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = dir_.file("src");
    std::filesystem::create_directories(src_);
    options_.encode.codec = Codec::kPlain;
    options_.volume_size = 1 << 20;
    options_.hostname = "testhost";
    options_.localdir = src_;
    options_.archive_dir = dir_.file("cache");
  }

  Result<BackupOutcome> backup(BackupAction action, int64_t time) {
    BackupRequest request;
    request.action = action;
    request.time = time;
    return run_backup(backend_, options_, request, walk_of(src_));
  }

  // Volumes of the set at `time` (a full when start == 0), decoded, in order.
  std::vector<std::string> volumes(const BackupSet& set) {
    std::vector<std::string> out;
    for (const auto& [n, name] : set.volumes) {
      auto data = decode_object_to_string(backend_, name, {});
      EXPECT_TRUE(data.has_value());
      out.push_back(data.value_or(""));
    }
    return out;
  }

  Collection collection() {
    auto names = backend_.list();
    EXPECT_TRUE(names.has_value());
    auto c = build_collection(*names);
    EXPECT_TRUE(c.has_value());
    return *c;
  }

  test::TempDir dir_{"dupfs-bw-"};
  std::string src_;
  MemoryBackend backend_;
  BackupOptions options_;
};

TEST_F(BackupWriterTest, FullSetVolumesManifestAndSignatures) {
  test::write_file(src_ + "/a.txt", "hello\n");
  test::write_file(src_ + "/big.bin", test::pseudo_random_bytes(3 * 1024 * 1024 + 100, 9));
  std::filesystem::create_directories(src_ + "/d/e");
  test::write_file(src_ + "/d/e/exact", test::pseudo_random_bytes(65536, 10));
  test::write_file(src_ + "/z with space", "z");
  ::symlink("a.txt", (src_ + "/link").c_str());

  auto outcome = backup(BackupAction::kAuto, 1700000000);
  ASSERT_TRUE(outcome.has_value()) << outcome.error().message;
  EXPECT_TRUE(outcome->full);
  // Upload order: volumes, signatures, manifest last.
  const auto& stored = outcome->stored_names;
  ASSERT_GE(stored.size(), 5u);
  EXPECT_EQ(stored.back(), "duplicity-full.20231114T221320Z.manifest");
  EXPECT_EQ(stored[stored.size() - 2], "duplicity-full-signatures.20231114T221320Z.sigtar");
  EXPECT_EQ(stored[0], "duplicity-full.20231114T221320Z.vol1.difftar");

  Collection c = collection();
  ASSERT_EQ(c.chains.size(), 1u);
  ASSERT_TRUE(c.matched_sig_chain.has_value());
  const BackupSet& set = c.chains[0].full;
  EXPECT_GE(set.volumes.size(), 3u);  // 3 MiB of random data at 1 MiB volumes

  auto text = backend_.read(set.manifest_name);
  ASSERT_TRUE(text.has_value());
  auto manifest = parse_manifest(*text);
  ASSERT_TRUE(manifest.has_value()) << manifest.error().message;
  EXPECT_EQ(format_manifest(*manifest), *text);  // the streamed layout, byte for byte
  EXPECT_EQ(manifest->hostname, "testhost");
  EXPECT_EQ(manifest->localdir, src_);
  ASSERT_TRUE(manifest->files.has_value());
  std::vector<std::string> files;
  for (const auto& f : *manifest->files) files.push_back(f.type + " " + index_to_string(f.path));
  EXPECT_THAT(files, ::testing::ElementsAre("new a.txt", "new big.bin", "new d/e/exact",
                                            "new z with space"));
  ASSERT_EQ(manifest->volumes.size(), set.volumes.size());

  // Every volume: hash of the stored bytes, and the manifest's range is its first and last
  // entry, with block numbers only for non-final chunks (docs/format.md §2.2).
  std::vector<Member> all;
  auto vols = volumes(set);
  for (size_t i = 0; i < vols.size(); ++i) {
    const ManifestVolume& mv = manifest->volumes.at(static_cast<int>(i + 1));
    auto raw = backend_.read(set.volumes.at(static_cast<int>(i + 1)));
    ASSERT_TRUE(raw.has_value());
    EXPECT_EQ(mv.hash_hex, sha1_hex(*raw));
    EXPECT_LE(raw->size(), options_.volume_size + 70000);
    auto members = read_tar(vols[i]);
    ASSERT_FALSE(members.empty());
    const auto block_of = [&](size_t k) -> std::optional<int64_t> {
      const Member& m = members[k];
      if (m.name.kind != EntryKind::kMultivolSnapshot) return std::nullopt;
      // Final chunk: the next member (here or in the next volume) is another path.
      bool final_chunk = true;
      if (k + 1 < members.size()) {
        final_chunk = members[k + 1].name.index != m.name.index;
      } else if (i + 1 < vols.size()) {
        auto next = read_tar(vols[i + 1]);
        final_chunk = next.empty() || next[0].name.index != m.name.index;
      }
      return final_chunk ? std::nullopt : std::optional<int64_t>(m.name.chunk);
    };
    EXPECT_EQ(mv.start, members.front().name.index);
    EXPECT_EQ(mv.start_block, block_of(0));
    EXPECT_EQ(mv.end, members.back().name.index);
    EXPECT_EQ(mv.end_block, block_of(members.size() - 1));
    for (auto& m : members) all.push_back(std::move(m));
  }
  // Entries in strict index order, the root first; chunks of exactly 64 KiB but the last.
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all[0].header.name, "snapshot/./");
  std::string big;
  std::vector<int64_t> exact_chunks;
  for (size_t k = 0; k < all.size(); ++k) {
    if (k > 0 && all[k].name.index == all[k - 1].name.index) {
      EXPECT_EQ(all[k].name.chunk, all[k - 1].name.chunk + 1);
      EXPECT_EQ(all[k - 1].data.size(), 65536u);
    } else if (k > 0) {
      EXPECT_LT(all[k - 1].name.index, all[k].name.index);
    }
    if (all[k].name.index == Index{"big.bin"}) big += all[k].data;
    if (all[k].name.index == Index{"d", "e", "exact"}) {
      exact_chunks.push_back(static_cast<int64_t>(all[k].data.size()));
    }
  }
  EXPECT_TRUE(big == test::read_file(src_ + "/big.bin"));
  EXPECT_THAT(exact_chunks, ::testing::ElementsAre(65536, 0));  // the empty last chunk

  // The signature file: one entry per object, signatures of the whole files.
  auto sigtar = decode_object_to_string(backend_, c.sig_chains[0].full_name, {});
  ASSERT_TRUE(sigtar.has_value());
  auto sigs = read_sigtar_with_signatures(*sigtar);
  ASSERT_TRUE(sigs.has_value());
  std::vector<std::string> sig_names;
  for (const auto& s : *sigs) sig_names.push_back(index_to_string(s.entry.index));
  EXPECT_THAT(sig_names, ::testing::ElementsAre(".", "a.txt", "big.bin", "d", "d/e", "d/e/exact",
                                                "link", "z with space"));
  EXPECT_EQ((*sigs)[1].entry.kind, EntryKind::kSignature);
  EXPECT_EQ((*sigs)[1].signature.size(), 12u + 12u);  // one 512-byte block
  EXPECT_EQ((*sigs)[6].entry.linkname, "a.txt");

  // The archive dir holds the plain manifest and the gzipped sigtar under the names the
  // mount looks for.
  EXPECT_EQ(test::read_file(options_.archive_dir + "/" + set.manifest_name), *text);
  const ArchiveDir archive_dir(options_.archive_dir);
  std::string cached_sig = archive_dir.copy_path(c.sig_chains[0].full_name);
  EXPECT_TRUE(cached_sig.ends_with(".sigtar.gz")) << cached_sig;
  auto copy = archive_dir.read_copy(c.sig_chains[0].full_name);
  ASSERT_TRUE(copy.has_value()) << copy.error().message;
  EXPECT_EQ(*copy, *sigtar);
}

TEST_F(BackupWriterTest, IncrementalWritesDiffsSnapshotsAndDeletions) {
  test::write_file(src_ + "/keep.txt", "keep");
  test::write_file(src_ + "/grow.txt", test::pseudo_random_bytes(100000, 1));
  test::write_file(src_ + "/chmod.txt", "chmod me");
  test::write_file(src_ + "/gone.txt", "bye");
  std::filesystem::create_directories(src_ + "/gonedir/sub");
  test::write_file(src_ + "/gonedir/sub/f", "f");
  for (const char* p : {"keep.txt", "grow.txt", "chmod.txt", "gone.txt", "gonedir/sub/f",
                        "gonedir/sub", "gonedir", "."}) {
    test::set_mtime(src_ + "/" + p, 1600000000);
  }
  ASSERT_TRUE(backup(BackupAction::kFull, 1700000000).has_value());

  std::string grown = test::read_file(src_ + "/grow.txt") + "more data";
  test::write_file(src_ + "/grow.txt", grown);
  test::set_mtime(src_ + "/grow.txt", 1600000100);
  ::chmod((src_ + "/chmod.txt").c_str(), 0600);
  std::filesystem::remove(src_ + "/gone.txt");
  std::filesystem::remove_all(src_ + "/gonedir");
  test::write_file(src_ + "/new.txt", "new");
  test::set_mtime(src_ + "/.", 1600000000);

  auto outcome = backup(BackupAction::kAuto, 1700000100);
  ASSERT_TRUE(outcome.has_value()) << outcome.error().message;
  EXPECT_FALSE(outcome->full);
  EXPECT_EQ(outcome->stored_names.back(),
            "duplicity-inc.20231114T221320Z.to.20231114T221500Z.manifest");
  Collection c = collection();
  ASSERT_EQ(c.chains.size(), 1u);
  ASSERT_EQ(c.chains[0].incs.size(), 1u);
  ASSERT_TRUE(c.matched_sig_chain.has_value());
  auto vols = volumes(c.chains[0].incs[0]);
  ASSERT_EQ(vols.size(), 1u);
  std::vector<std::string> names;
  std::map<std::string, std::string> data;
  for (auto& m : read_tar(vols[0])) {
    names.push_back(m.header.name);
    data[m.header.name] = m.data;
  }
  EXPECT_THAT(names, ::testing::ElementsAre("diff/chmod.txt", "deleted/gone.txt", "deleted/gonedir",
                                            "deleted/gonedir/sub", "deleted/gonedir/sub/f",
                                            "diff/grow.txt", "snapshot/new.txt"));
  // A metadata-only change is one COPY of the whole file.
  EXPECT_EQ(data["diff/chmod.txt"], std::string("rs\x02\x36\x45\x00\x08\x00", 8));
  auto patched = apply_delta(test::pseudo_random_bytes(100000, 1), data["diff/grow.txt"]);
  ASSERT_TRUE(patched.has_value());
  EXPECT_TRUE(*patched == grown);

  auto text = backend_.read(c.chains[0].incs[0].manifest_name);
  ASSERT_TRUE(text.has_value());
  EXPECT_THAT(*text, ::testing::EndsWith("Filelist 5\n"
                                         "    changed  chmod.txt\n"
                                         "    deleted  gone.txt\n"
                                         "    deleted  gonedir/sub/f\n"
                                         "    changed  grow.txt\n"
                                         "    new      new.txt\n"));
}

TEST_F(BackupWriterTest, UnchangedIncrementalIsOneEmptyVolume) {
  test::write_file(src_ + "/a", "a");
  test::set_mtime(src_ + "/a", 1600000000);
  test::set_mtime(src_, 1600000000);
  ASSERT_TRUE(backup(BackupAction::kFull, 1700000000).has_value());
  auto outcome = backup(BackupAction::kIncremental, 1700000100);
  ASSERT_TRUE(outcome.has_value()) << outcome.error().message;
  Collection c = collection();
  ASSERT_EQ(c.chains[0].incs.size(), 1u);
  const BackupSet& inc = c.chains[0].incs[0];
  ASSERT_EQ(inc.volumes.size(), 1u);
  auto raw = backend_.read(inc.volumes.at(1));
  ASSERT_TRUE(raw.has_value());
  EXPECT_TRUE(raw->empty());  // plain: 0 bytes (docs/format.md §3.3)
  auto text = backend_.read(inc.manifest_name);
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(*text, "Hostname testhost\nLocaldir " + src_ +
                       "\nVolume 1:\n    StartingPath   .  \n    EndingPath     .  \n"
                       "    Hash SHA1 da39a3ee5e6b4b0d3255bfef95601890afd80709\nFilelist 0\n");
}

TEST_F(BackupWriterTest, RefusesToOverwriteAndChecksTheSource) {
  test::write_file(src_ + "/a", "a");
  ASSERT_TRUE(backup(BackupAction::kFull, 1700000000).has_value());
  auto again = backup(BackupAction::kFull, 1700000000);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().kind, ErrorKind::kExists);
  options_.localdir = "/elsewhere";
  auto moved = backup(BackupAction::kIncremental, 1700000100);
  ASSERT_FALSE(moved.has_value());
  EXPECT_THAT(moved.error().message, ::testing::HasSubstr("directory has changed"));
}

TEST_F(BackupWriterTest, LeftoversOfInterruptedRunsAreDeleted) {
  test::write_file(src_ + "/a", "a");
  ASSERT_TRUE(backup(BackupAction::kFull, 1700000000).has_value());
  // An incremental that stored a volume and its signatures, but never its manifest.
  const std::string vol = inc_volume_name(1700000000, 1700000050, 1, "");
  const std::string sig = new_sig_name(1700000000, 1700000050, "");
  backend_.put(vol, "junk");
  backend_.put(sig, "junk");
  backend_.put(".duplicity-inc.x.dupfs-tmp.123", "junk");
  backend_.put("unrelated.txt", "not ours");
  auto outcome = backup(BackupAction::kIncremental, 1700000100);
  ASSERT_TRUE(outcome.has_value()) << outcome.error().message;
  auto names = backend_.list();
  ASSERT_TRUE(names.has_value());
  EXPECT_THAT(*names, ::testing::Not(::testing::Contains(vol)));
  EXPECT_THAT(*names, ::testing::Not(::testing::Contains(sig)));
  EXPECT_THAT(*names, ::testing::Not(::testing::Contains(".duplicity-inc.x.dupfs-tmp.123")));
  EXPECT_THAT(*names, ::testing::Contains("unrelated.txt"));
  Collection c = collection();
  ASSERT_EQ(c.chains.size(), 1u);
  EXPECT_EQ(c.chains[0].incs.size(), 1u);
  EXPECT_TRUE(c.incomplete.empty());
  EXPECT_TRUE(c.orphaned_sigs.empty());
  ASSERT_TRUE(c.matched_sig_chain.has_value());
  EXPECT_EQ(c.sig_chains[*c.matched_sig_chain].end_time(), 1700000100);
}

TEST_F(BackupWriterTest, ChainOfIncrementalsWithAndWithoutArchiveDir) {
  // Signatures are streamed from the archive dir's gzipped copies, or read from storage into
  // memory without one; both give the same sets.
  for (bool with_cache : {true, false}) {
    SCOPED_TRACE(with_cache ? "archive dir" : "no archive dir");
    MemoryBackend backend;
    BackupOptions options = options_;
    options.archive_dir = with_cache ? dir_.file(std::string("cache-chain")) : "";
    std::filesystem::remove_all(src_);
    std::filesystem::create_directories(src_);
    const auto run = [&](int64_t time) {
      BackupRequest request;
      request.time = time;
      auto r = run_backup(backend, options, request, walk_of(src_));
      EXPECT_TRUE(r.has_value()) << r.error().message;
      return r.value_or(BackupOutcome{});
    };
    test::write_file(src_ + "/a", "a");
    test::write_file(src_ + "/b", "b");
    test::set_mtime(src_ + "/a", 1600000000);
    test::set_mtime(src_ + "/b", 1600000000);
    test::set_mtime(src_, 1600000000);
    EXPECT_TRUE(run(1700000000).full);
    std::filesystem::remove(src_ + "/a");  // deleted in the first incremental
    test::set_mtime(src_, 1600000000);
    EXPECT_FALSE(run(1700000100).full);
    test::write_file(src_ + "/a", "a again");  // back in the second, as a new file
    test::set_mtime(src_ + "/a", 1600000200);
    test::set_mtime(src_, 1600000000);
    EXPECT_FALSE(run(1700000200).full);
    // A third incremental sees three layers merged: nothing changed since.
    auto last = run(1700000300);
    EXPECT_FALSE(last.full);
    EXPECT_EQ(last.statistics.delta_entries, 0);
    EXPECT_EQ(last.statistics.source_files, 3);  // the root, a, b
  }
}

TEST_F(BackupWriterTest, IncrementalWithoutChainIsRefused) {
  test::write_file(src_ + "/a", "a");
  auto r = backup(BackupAction::kIncremental, 1700000000);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
}

TEST_F(BackupWriterTest, GzipObjectsDecodeAndNameTheirCodec) {
  options_.encode.codec = Codec::kGzip;
  test::write_file(src_ + "/a", test::pseudo_random_bytes(200000, 3));
  auto outcome = backup(BackupAction::kFull, 1700000000);
  ASSERT_TRUE(outcome.has_value()) << outcome.error().message;
  EXPECT_EQ(outcome->stored_names.front(), "duplicity-full.20231114T221320Z.vol1.difftar.gz");
  EXPECT_EQ(outcome->stored_names.back(), "duplicity-full.20231114T221320Z.manifest");
  auto vol = decode_object_to_string(backend_, outcome->stored_names.front(), {});
  ASSERT_TRUE(vol.has_value()) << vol.error().message;
  auto members = read_tar(*vol);
  ASSERT_EQ(members.size(), 5u);  // root, 3 whole chunks of a, the last chunk
}

TEST(BackupStatisticsTest, DuplicitysLayout) {
  BackupStatistics s;
  s.start_time = 1700000000.25;
  s.end_time = 1700003725.5;
  s.source_files = 3;
  s.source_file_size = 5 * 1024 * 1024;
  s.total_destination_size_change = 1;
  std::string text = format_statistics(s);
  EXPECT_THAT(text, ::testing::StartsWith("--------------[ Backup Statistics ]--------------\n"
                                          "StartTime 1700000000.25 ("));
  EXPECT_THAT(text, ::testing::HasSubstr("ElapsedTime 3725.25 (1 hour 2 minutes 5.25 seconds)\n"));
  EXPECT_THAT(text, ::testing::HasSubstr("SourceFiles 3\nSourceFileSize 5242880 (5.00 MB)\n"));
  EXPECT_THAT(text, ::testing::HasSubstr("TotalDestinationSizeChange 1 (1 byte)\nErrors 0\n"));
  EXPECT_THAT(text, ::testing::EndsWith("\n-------------------------------------------------\n"));
}

}  // namespace
}  // namespace dupfs::chain

// ---------------------------------------------------------------------------------------------
// Encoders: every codec's output read back by the tools duplicity uses (gpg, gzip) and by
// dupfs's decoder, for sizes around the block and packet boundaries.

namespace dupfs::chain {
namespace {

std::string encode_all(const EncodeOptions& options, std::string_view plain, size_t piece) {
  std::string out;
  auto enc = make_encoder(options, "test object", [&out](std::string_view b) -> Status {
    out.append(b);
    return {};
  });
  EXPECT_TRUE(enc.has_value());
  if (!enc) return {};
  for (size_t i = 0; i < plain.size(); i += piece) {
    EXPECT_TRUE((*enc)->write(plain.substr(i, piece)).has_value());
  }
  EXPECT_TRUE((*enc)->finish().has_value());
  EXPECT_EQ((*enc)->bytes_out(), out.size());
  return out;
}

class EncodeTest : public ::testing::TestWithParam<size_t> {};

TEST_P(EncodeTest, GzipAndOpenPgpDecodeWithGzipGpgAndDupfs) {
  const size_t size = GetParam();
  // Half compressible text, half random, so both deflate paths are exercised.
  std::string plain;
  while (plain.size() < size / 2) plain += "the quick brown fox jumps over the lazy dog. ";
  plain.resize(size / 2);
  plain += test::pseudo_random_bytes(size - plain.size(), size);
  test::TempDir dir("dupfs-enc-");
  for (DeflateLevel level :
       {DeflateLevel{DeflateEngine::kIsal, 3}, DeflateLevel{DeflateEngine::kZlib, 6}}) {
    EncodeOptions gz;
    gz.codec = Codec::kGzip;
    gz.compression = level;
    std::string z = encode_all(gz, plain, 100000);
    test::write_file(dir.file("x.gz"), z);
    auto r = test::run({"gzip", "-dc", dir.file("x.gz")});
    ASSERT_TRUE(r.ok()) << r.err;
    EXPECT_TRUE(r.out == plain) << "gzip level " << level.level << ", size " << size;
  }
  EncodeOptions pgp;
  pgp.codec = Codec::kGpg;
  pgp.passphrase = "pass phrase";
  std::string c = encode_all(pgp, plain, 70000);
  test::write_file(dir.file("x.gpg"), c);
  test::TempDir home("dupfs-enc-gnupg-");
  ::chmod(home.path().c_str(), 0700);
  auto r = test::run({"gpg", "--batch", "--homedir", home.path(), "--pinentry-mode", "loopback",
                      "--passphrase-fd", "0", "--decrypt", dir.file("x.gpg")},
                     {}, std::chrono::seconds(120), "pass phrase\n");
  test::run({"gpgconf", "--homedir", home.path(), "--kill", "all"});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_TRUE(r.out == plain) << "gpg, size " << size;
  EXPECT_EQ(r.err.find("WARNING"), std::string::npos) << r.err;
  // And dupfs's own in-process decryptor.
  MemoryBackend mem;
  mem.put("x.gpg", c);
  Credentials creds;
  creds.passphrase = "pass phrase";
  auto back = decode_object_to_string(mem, "x.gpg", creds);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_TRUE(*back == plain);
}

INSTANTIATE_TEST_SUITE_P(Sizes, EncodeTest,
                         ::testing::Values(0, 1, 100, 65535, 65536, 65537, 262144, 524288, 524289,
                                           3 * 1024 * 1024 + 17));

}  // namespace
}  // namespace dupfs::chain

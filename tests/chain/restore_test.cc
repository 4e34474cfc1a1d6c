// Restore streaming (chain/restore/restore.h) and verify (chain/restore/verify.h) on small
// hand-made chains of plain volumes in a MemoryBackend: collation across sets, multivol chunks
// across volumes, deltas, deletions, prefixes, hash mismatches, and writing to / comparing with a
// local tree.
#include "chain/restore/restore.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "backends/memory_backend.h"
#include "chain/format/manifest.h"
#include "chain/format/sigtar.h"
#include "chain/format/tar_writer.h"
#include "chain/restore/tree_writer.h"
#include "chain/restore/verify.h"
#include "tests/support/source_tree.h"
#include "tests/support/temp_dir.h"

namespace dupfs::chain {
namespace {

using dupfs::test::TempDir;

std::string sha1_hex(std::string_view data) {
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (unsigned char c : d) {
    s += kHex[c >> 4];
    s += kHex[c & 0xf];
  }
  return s;
}

struct Member {
  EntryKind kind;
  Index index;
  TarType type = TarType::kFile;
  std::string data;
  int64_t chunk = 0;
  uint32_t mode = 0644;
  int64_t mtime = 1'600'000'000;
  std::string linkname;
};

Member mem(EntryKind kind, Index index, TarType type = TarType::kFile, std::string data = {},
           int64_t chunk = 0, uint32_t mode = 0644, int64_t mtime = 1'600'000'000,
           std::string linkname = {}) {
  return Member{kind,  std::move(index),   type, std::move(data), chunk, mode,
                mtime, std::move(linkname)};
}

std::string tar_of(const std::vector<Member>& members) {
  std::string out;
  for (const auto& m : members) {
    TarMember t;
    t.name = difftar_member_name(m.kind, m.index, m.type == TarType::kDirectory, m.chunk);
    t.type = m.kind == EntryKind::kDeleted ? TarType::kFile : m.type;
    t.mode = m.kind == EntryKind::kDeleted ? 0 : m.mode;
    t.uid = 0;
    t.gid = 0;
    t.uname = "root";
    t.gname = "root";
    t.mtime = m.kind == EntryKind::kDeleted ? 0 : m.mtime;
    t.size = m.data.size();
    t.linkname = m.linkname;
    out += tar_header(t);
    out += m.data;
    out.append(tar_padding(m.data.size()), '\0');
  }
  return out;
}

// A librsync delta: COPY (1-byte offset and length) of the basis, then a literal, then END.
std::string delta(uint8_t copy_offset, uint8_t copy_length, std::string_view literal) {
  std::string d = "\x72\x73\x02\x36";
  d += '\x45';
  d += static_cast<char>(copy_offset);
  d += static_cast<char>(copy_length);
  d += static_cast<char>(literal.size());
  d += literal;
  d += '\0';
  return d;
}

// Writes a set (its volumes as plain tars, and a plain manifest) into the backend.
void put_set(MemoryBackend& b, const std::string& stem,
             const std::vector<std::vector<Member>>& vols) {
  Manifest m;
  for (size_t v = 0; v < vols.size(); ++v) {
    std::string data = tar_of(vols[v]);
    std::string name = stem + ".vol" + std::to_string(v + 1) + ".difftar";
    b.put(name, data);
    ManifestVolume mv;
    mv.number = static_cast<int>(v + 1);
    mv.start = vols[v].front().index;
    mv.end = vols[v].back().index;
    mv.hash_type = "SHA1";
    mv.hash_hex = sha1_hex(data);
    m.volumes[mv.number] = mv;
  }
  b.put(stem + ".manifest", format_manifest(m));
}

constexpr char kFull[] = "duplicity-full.20240101T000000Z";
constexpr char kInc[] = "duplicity-inc.20240101T000000Z.to.20240102T000000Z";
constexpr int64_t kFullTime = 1704067200;  // 2024-01-01T00:00:00Z
constexpr int64_t kIncTime = kFullTime + 86400;

const std::string kBig = std::string(65536, 'B') + "tail of big";

// full: ., a.txt, big (two chunks over two volumes), dir/, dir/in.txt, gone.txt, l -> a.txt
// inc:  a.txt patched, gone.txt deleted, new.txt
std::shared_ptr<MemoryBackend> make_chain() {
  auto b = std::make_shared<MemoryBackend>();
  Member root = mem(EntryKind::kSnapshot, {}, TarType::kDirectory, "", 0, 0755);
  put_set(
      *b, kFull,
      {{root, mem(EntryKind::kSnapshot, {"a.txt"}, TarType::kFile, "hello world\n"),
        mem(EntryKind::kMultivolSnapshot, {"big"}, TarType::kFile, kBig.substr(0, 65536), 1)},
       {mem(EntryKind::kMultivolSnapshot, {"big"}, TarType::kFile, kBig.substr(65536), 2),
        mem(EntryKind::kSnapshot, {"dir"}, TarType::kDirectory, "", 0, 0700),
        mem(EntryKind::kSnapshot, {"dir", "in.txt"}, TarType::kFile, "inside\n", 0, 0600),
        mem(EntryKind::kSnapshot, {"gone.txt"}, TarType::kFile, "bye\n"),
        mem(EntryKind::kSnapshot, {"l"}, TarType::kSymlink, "", 0, 0777, 1'600'000'000, "a.txt")}});
  put_set(*b, kInc,
          {{mem(EntryKind::kDiff, {"a.txt"}, TarType::kFile, delta(0, 6, "there\n"), 0, 0600,
                1'600'000'100),
            mem(EntryKind::kDeleted, {"gone.txt"}),
            mem(EntryKind::kSnapshot, {"new.txt"}, TarType::kFile, "new\n")}});
  return b;
}

// Records what a restore delivers.
class Collect : public RestoreSink {
 public:
  struct Obj {
    RestoredObject o;
    std::string data;
  };
  Status on_object(const RestoredObject& o) override {
    objs.push_back({o, {}});
    return {};
  }
  Status on_data(const DataPiece& p) override {
    objs.back().data.append(p.bytes);
    return {};
  }
  Status on_object_end() override { return {}; }
  void on_trusted() override { trusted = objs.size(); }
  std::map<std::string, Obj> by_path() const {
    std::map<std::string, Obj> m;
    for (const auto& o : objs) m[index_to_string(o.o.index)] = o;
    return m;
  }
  std::vector<Obj> objs;
  size_t trusted = 0;
};

Result<std::vector<RestoreSet>> plan(const MemoryBackend& b, int64_t t, const Index& prefix = {}) {
  auto names = b.list();
  EXPECT_TRUE(names.has_value());
  auto c = build_collection(*names);
  EXPECT_TRUE(c.has_value());
  return plan_restore(b, *c, t, prefix, {}, "");
}

TEST(RestoreTest, LatestSetCollatesDeltasDeletionsAndChunks) {
  auto b = make_chain();
  auto sets = plan(*b, kIncTime);
  ASSERT_TRUE(sets.has_value()) << sets.error().message;
  ASSERT_EQ(sets->size(), 2u);
  EXPECT_EQ((*sets)[0].volumes.size(), 2u);
  Collect sink;
  RestoreResult result;
  auto st = read_restore(*b, {}, *sets, {}, sink, result);
  ASSERT_TRUE(st.has_value()) << st.error().message;
  std::vector<std::string> paths;
  for (const auto& o : sink.objs) paths.push_back(index_to_string(o.o.index));
  EXPECT_EQ(paths,
            (std::vector<std::string>{".", "a.txt", "big", "dir", "dir/in.txt", "l", "new.txt"}));
  auto m = sink.by_path();
  EXPECT_EQ(m["a.txt"].data, "hello there\n");
  EXPECT_EQ(m["a.txt"].o.header.mode, 0600u);  // the delta's metadata wins
  EXPECT_EQ(m["a.txt"].o.header.mtime, 1'600'000'100);
  EXPECT_EQ(m["big"].data, kBig);
  EXPECT_EQ(m["l"].o.header.type, TarType::kSymlink);
  EXPECT_EQ(m["l"].o.header.linkname, "a.txt");
  EXPECT_EQ(m["dir"].o.header.mode, 0700u);
  EXPECT_EQ(result.objects, 7u);
  EXPECT_EQ(result.skipped, 0u);
  EXPECT_EQ(sink.trusted, sink.objs.size());
}

TEST(RestoreTest, EarlierTimeReadsOnlyTheFull) {
  auto b = make_chain();
  auto sets = plan(*b, kFullTime + 10);
  ASSERT_TRUE(sets.has_value());
  ASSERT_EQ(sets->size(), 1u);
  Collect sink;
  RestoreResult result;
  ASSERT_TRUE(read_restore(*b, {}, *sets, {}, sink, result).has_value());
  auto m = sink.by_path();
  EXPECT_EQ(m["a.txt"].data, "hello world\n");
  EXPECT_EQ(m["gone.txt"].data, "bye\n");
  EXPECT_FALSE(m.contains("new.txt"));
}

TEST(RestoreTest, PrefixSelectsVolumesAndStripsThePrefix) {
  auto b = make_chain();
  auto sets = plan(*b, kIncTime, {"dir"});
  ASSERT_TRUE(sets.has_value());
  ASSERT_EQ((*sets)[0].volumes.size(), 1u);  // only vol2 holds dir/
  EXPECT_EQ((*sets)[0].volumes[0].name, std::string(kFull) + ".vol2.difftar");
  RestoreOptions o;
  o.prefix = {"dir"};
  Collect sink;
  RestoreResult result;
  ASSERT_TRUE(read_restore(*b, {}, *sets, o, sink, result).has_value());
  ASSERT_EQ(sink.objs.size(), 2u);
  EXPECT_EQ(index_to_string(sink.objs[0].o.index), ".");
  EXPECT_EQ(index_to_string(sink.objs[1].o.index), "in.txt");
  EXPECT_EQ(sink.objs[1].data, "inside\n");
}

TEST(RestoreTest, HashMismatchNamesTheVolumeAndNothingIsTrusted) {
  auto b = make_chain();
  std::string name = std::string(kFull) + ".vol1.difftar";
  std::string data = *b->read(name);
  data[data.size() - 10] ^= 1;  // inside big's first chunk: the tar still parses
  b->put(name, data);
  auto sets = plan(*b, kIncTime);
  ASSERT_TRUE(sets.has_value());
  Collect sink;
  RestoreResult result;
  auto st = read_restore(*b, {}, *sets, {}, sink, result);
  ASSERT_FALSE(st.has_value());
  EXPECT_NE(st.error().message.find(name), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("hash mismatch"), std::string::npos);
  ASSERT_TRUE(result.mismatched_volume.has_value());
  EXPECT_EQ(*result.mismatched_volume, name);
  EXPECT_EQ(sink.trusted, 0u);
}

TEST(RestoreTest, DeltaWithoutBasisIsSkippedAndCounted) {
  auto b = std::make_shared<MemoryBackend>();
  put_set(*b, kFull,
          {{mem(EntryKind::kSnapshot, {}, TarType::kDirectory, "", 0, 0755),
            mem(EntryKind::kDiff, {"orphan"}, TarType::kFile, delta(0, 0, "x")),
            mem(EntryKind::kSnapshot, {"z"}, TarType::kFile, "z\n")}});
  auto sets = plan(*b, kFullTime);
  ASSERT_TRUE(sets.has_value());
  Collect sink;
  RestoreResult result;
  ASSERT_TRUE(read_restore(*b, {}, *sets, {}, sink, result).has_value());
  EXPECT_EQ(result.skipped, 1u);
  ASSERT_EQ(sink.objs.size(), 2u);
  EXPECT_EQ(sink.objs[1].data, "z\n");
}

TEST(RestoreTest, TreeWriterWritesMetadataAndVerifyCompares) {
  auto b = make_chain();
  auto sets = plan(*b, kIncTime);
  ASSERT_TRUE(sets.has_value());
  TempDir dir;
  std::string target = dir.file("out");
  {
    TreeWriter w(target, {});
    RestoreResult result;
    ASSERT_TRUE(read_restore(*b, {}, *sets, {}, w, result).has_value());
    ASSERT_TRUE(w.finish().has_value());
  }
  EXPECT_EQ(test::read_file(target + "/a.txt"), "hello there\n");
  EXPECT_EQ(test::read_file(target + "/big"), kBig);
  struct stat st;
  ASSERT_EQ(::lstat((target + "/a.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_mtime, 1'600'000'100);
  ASSERT_EQ(::lstat((target + "/dir").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(st.st_mtime, 1'600'000'000);  // set after dir/in.txt was written
  ASSERT_EQ(::lstat((target + "/l").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_FALSE(std::filesystem::exists(target + "/gone.txt"));

  auto verify = [&](bool compare_data, std::vector<std::string>& lines) {
    VerifySink v(target, {compare_data, false}, [&](const std::string& l) { lines.push_back(l); });
    RestoreResult result;
    EXPECT_TRUE(read_restore(*b, {}, *sets, {}, v, result).has_value());
    v.finish();
    return std::make_pair(v.compared(), v.differences());
  };
  std::vector<std::string> lines;
  auto [n, d] = verify(true, lines);
  EXPECT_EQ(n, 7u);
  EXPECT_EQ(d, 0u) << (lines.empty() ? "" : lines[0]);

  // Same size and mtime, other bytes: only --compare-data sees it.
  test::write_file(target + "/a.txt", "HELLO there\n");
  test::set_mtime(target + "/a.txt", 1'600'000'100);
  ::chmod((target + "/a.txt").c_str(), 0600);
  test::write_file(target + "/extra", "x");
  test::set_mtime(target, 1'600'000'000);
  lines.clear();
  std::tie(n, d) = verify(true, lines);
  EXPECT_EQ(n, 8u);
  EXPECT_EQ(d, 2u);
  EXPECT_EQ(lines, (std::vector<std::string>{"Difference found: Data for file a.txt is different",
                                             "Difference found: New file extra"}));
  lines.clear();
  std::tie(n, d) = verify(false, lines);
  EXPECT_EQ(n, 8u);
  EXPECT_EQ(d, 0u);
}

TEST(RestoreTest, DiscardUntrustedRemovesWhatADamagedVolumeWrote) {
  auto b = make_chain();
  std::string name = std::string(kFull) + ".vol2.difftar";
  std::string data = *b->read(name);
  data[600] ^= 1;  // inside big's second chunk
  b->put(name, data);
  auto sets = plan(*b, kIncTime);
  ASSERT_TRUE(sets.has_value());
  TempDir dir;
  std::string target = dir.file("out");
  TreeWriter w(target, {});
  RestoreResult result;
  ASSERT_FALSE(read_restore(*b, {}, *sets, {}, w, result).has_value());
  w.discard_untrusted();
  EXPECT_FALSE(std::filesystem::exists(target + "/big"));  // its chunk 2 came from vol2
  EXPECT_FALSE(std::filesystem::exists(target + "/dir/in.txt"));
}

}  // namespace
}  // namespace dupfs::chain

namespace dupfs::chain {
namespace {

// verify's checks beyond duplicity's (docs/actions.md): signature files decoded to their end,
// each damaged or missing one named.
TEST(VerifyChecksTest, SignatureFilesDecodeOrAreNamed) {
  std::string tar;
  SigtarWriter w([&](std::string_view bytes) -> Status {
    tar.append(bytes);
    return {};
  });
  SigEntry dir;
  dir.kind = EntryKind::kSnapshot;
  dir.type = TarType::kDirectory;
  dir.mode = 0755;
  ASSERT_TRUE(w.add(sigtar_member_name(EntryKind::kSnapshot, {"d"}, true), dir));
  ASSERT_TRUE(w.finish());
  const std::string good = "duplicity-full-signatures.20240101T000000Z.sigtar.gz";
  const std::string flipped =
      "duplicity-new-signatures.20240101T000000Z.to.20240102T000000Z.sigtar.gz";
  const std::string garbage =
      "duplicity-new-signatures.20240102T000000Z.to.20240103T000000Z.sigtar";
  const std::string missing =
      "duplicity-new-signatures.20240103T000000Z.to.20240104T000000Z.sigtar.gz";
  MemoryBackend b;
  std::string gz = gzip_compress(tar);
  b.put(good, gz);
  gz[gz.size() / 2] = static_cast<char>(gz[gz.size() / 2] ^ 0xff);
  b.put(flipped, gz);
  b.put(garbage, std::string(1024, 'x'));
  EXPECT_TRUE(check_signature_files(b, {good}, {}).empty());
  auto errors = check_signature_files(b, {good, flipped, garbage, missing}, {});
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_NE(errors[0].message.find(flipped), std::string::npos) << errors[0].message;
  EXPECT_NE(errors[1].message.find(garbage), std::string::npos) << errors[1].message;
  EXPECT_NE(errors[2].message.find(missing), std::string::npos) << errors[2].message;
}

// Every kind of file no restore can use is named; an intact collection gives nothing.
TEST(VerifyChecksTest, UnusableFilesNameEveryKind) {
  std::vector<std::string> names{
      "duplicity-full.20240101T000000Z.manifest.gpg",
      "duplicity-full.20240101T000000Z.vol1.difftar.gpg",
      "duplicity-full-signatures.20240101T000000Z.sigtar.gpg",
      "duplicity-inc.20240101T000000Z.to.20240102T000000Z.manifest.gpg",
      "duplicity-inc.20240101T000000Z.to.20240102T000000Z.vol1.difftar.gpg",
      "duplicity-new-signatures.20240101T000000Z.to.20240102T000000Z.sigtar.gpg"};
  auto intact = build_collection(names);
  ASSERT_TRUE(intact.has_value());
  EXPECT_TRUE(unusable_files(*intact).empty());

  const std::vector<std::string> extra{
      // an interrupted backup: a volume, no manifest
      "duplicity-inc.20240102T000000Z.to.20240103T000000Z.vol1.difftar.gpg",
      // an incremental that fits no chain
      "duplicity-inc.20230101T000000Z.to.20230102T000000Z.manifest.gpg",
      // new signatures that fit no signature chain
      "duplicity-new-signatures.20230301T000000Z.to.20230302T000000Z.sigtar.gpg",
      // full signatures without their backup chain
      "duplicity-full-signatures.20000101T000000Z.sigtar.gpg"};
  names.insert(names.end(), extra.begin(), extra.end());
  auto damaged = build_collection(names);
  ASSERT_TRUE(damaged.has_value());
  auto lines = unusable_files(*damaged);
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  for (const auto& n : extra) EXPECT_NE(all.find(n), std::string::npos) << n << "\n" << all;

  // The newest of two incrementals without its signature file: duplicity drops it from the
  // chain; named.
  names = {"duplicity-full.20240101T000000Z.manifest.gpg",
           "duplicity-full.20240101T000000Z.vol1.difftar.gpg",
           "duplicity-full-signatures.20240101T000000Z.sigtar.gpg",
           "duplicity-inc.20240101T000000Z.to.20240102T000000Z.manifest.gpg",
           "duplicity-inc.20240101T000000Z.to.20240102T000000Z.vol1.difftar.gpg",
           "duplicity-new-signatures.20240101T000000Z.to.20240102T000000Z.sigtar.gpg",
           "duplicity-inc.20240102T000000Z.to.20240103T000000Z.manifest.gpg",
           "duplicity-inc.20240102T000000Z.to.20240103T000000Z.vol1.difftar.gpg"};
  auto dropped = build_collection(names);
  ASSERT_TRUE(dropped.has_value());
  lines = unusable_files(*dropped);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("duplicity-inc.20240102T000000Z.to.20240103T000000Z.manifest.gpg"),
            std::string::npos)
      << lines[0];
  auto sigs = signatures_for(*dropped, dropped->chains.at(0), 2000000000);
  EXPECT_EQ(sigs.names,
            (std::vector<std::string>{
                "duplicity-full-signatures.20240101T000000Z.sigtar.gpg",
                "duplicity-new-signatures.20240101T000000Z.to.20240102T000000Z.sigtar.gpg"}));
  EXPECT_TRUE(sigs.missing.empty());

  // A single incremental without its signature file stays in the chain (duplicity's quirk,
  // chain/format/collection.cc): its missing signature file is found by signatures_for.
  names.resize(5);
  auto kept = build_collection(names);
  ASSERT_TRUE(kept.has_value());
  ASSERT_EQ(kept->chains.size(), 1u);
  ASSERT_EQ(kept->chains[0].incs.size(), 1u);
  sigs = signatures_for(*kept, kept->chains[0], 2000000000);
  EXPECT_EQ(sigs.names,
            (std::vector<std::string>{"duplicity-full-signatures.20240101T000000Z.sigtar.gpg"}));
  EXPECT_EQ(sigs.missing, (std::vector<std::string>{
                              "duplicity-inc.20240101T000000Z.to.20240102T000000Z.manifest.gpg"}));
  // Up to the full only: nothing missing.
  sigs = signatures_for(*kept, kept->chains[0], kept->chains[0].start_time());
  EXPECT_TRUE(sigs.missing.empty());
}

// A manifest cached by an earlier run is checked at the location too.
TEST(VerifyChecksTest, CachedManifestsAreComparedWithTheLocation) {
  TempDir cache("dupfs-verify-cache-");
  auto b = make_chain();
  const std::vector<std::string> manifests{std::string(kFull) + ".manifest",
                                           std::string(kInc) + ".manifest"};
  EXPECT_TRUE(cached_manifests(manifests, cache.path()).empty());
  ASSERT_TRUE(plan_restore(*b, *build_collection(*b->list()), kIncTime, {}, {}, cache.path()));
  ASSERT_EQ(cached_manifests(manifests, cache.path()), manifests);
  EXPECT_TRUE(check_cached_manifests(*b, manifests, {}, cache.path()).empty());

  auto text = b->read_range(manifests[1], 0, 1 << 20);
  ASSERT_TRUE(text.has_value());
  std::string changed = *text;
  changed[changed.size() / 2] = static_cast<char>(changed[changed.size() / 2] ^ 0x01);
  b->put(manifests[1], changed);
  auto errors = check_cached_manifests(*b, manifests, {}, cache.path());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find(manifests[1]), std::string::npos) << errors[0].message;
  ASSERT_TRUE(b->remove(manifests[0]));
  errors = check_cached_manifests(*b, manifests, {}, cache.path());
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0].message.find(manifests[0]), std::string::npos) << errors[0].message;
}

TEST(OwnerMapperTest, NamesMapThroughPasswdUnlessNumeric) {
  TarHeader h;
  h.uid = 4242;
  h.gid = 4343;
  h.uname = "root";  // uid 0 on every system
  h.gname = "root";
  OwnerMapper by_name(false);
  EXPECT_EQ(by_name.uid(h), 0);
  EXPECT_EQ(by_name.gid(h), 0);
  EXPECT_EQ(by_name.uid(h), 0);  // cached
  OwnerMapper numeric(true);
  EXPECT_EQ(numeric.uid(h), 4242);
  EXPECT_EQ(numeric.gid(h), 4343);
  h.uname = "no-such-user-dupfs";
  h.gname = "";
  EXPECT_EQ(by_name.uid(h), 4242);  // unknown name: the stored id
  EXPECT_EQ(by_name.gid(h), 4343);  // no name: the stored id
}

}  // namespace
}  // namespace dupfs::chain

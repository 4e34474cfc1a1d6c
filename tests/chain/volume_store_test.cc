// BlockCache and VolumeStore over in-memory storage: budgets, pinning, restarts of evicted
// passes, damage, transient storage errors, concurrent readers.
#include "chain/read/volume_store.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <thread>

#include "backends/faulty_backend.h"
#include "backends/memory_backend.h"
#include "chain/codec/openpgp_encrypt.h"
#include "chain/metadata/volume_index.h"
#include "chain/read/block_cache.h"
#include "tests/support/gpg_home.h"
#include "tests/support/process.h"
#include "tests/support/source_tree.h"

namespace dupfs::chain {
namespace {

using test::TempDir;

VolumeStoreOptions options(size_t block_size = 256 * 1024, uint64_t readahead = 32 << 20,
                           std::string catalog_dir = "") {
  VolumeStoreOptions o;
  o.block_size = block_size;
  o.readahead_bytes = readahead;
  o.catalog_dir = std::move(catalog_dir);
  return o;
}

TEST(BlockCacheTest, EvictsLeastRecentlyUsedOverBudget) {
  BlockCache cache(3000);
  for (uint64_t b = 0; b < 3; ++b) cache.insert(1, b, std::make_shared<std::string>(1000, 'x'));
  EXPECT_EQ(cache.charged(), 3000u);
  ASSERT_TRUE(cache.lookup(1, 0));  // 0 becomes most recent; 1 is now the oldest
  cache.insert(1, 3, std::make_shared<std::string>(1000, 'y'));
  EXPECT_EQ(cache.charged(), 3000u);
  EXPECT_FALSE(cache.contains(1, 1));
  EXPECT_TRUE(cache.contains(1, 0));
  EXPECT_TRUE(cache.contains(1, 3));
}

TEST(BlockCacheTest, PinnedBlocksStayUntilReleased) {
  BlockCache cache(1000);
  Block pinned = std::make_shared<std::string>(1000, 'p');
  cache.insert(7, 0, pinned);
  cache.insert(7, 1, std::make_shared<std::string>(1000, 'q'));
  // Block 0 is older but held by a reader: block 1 went instead.
  EXPECT_TRUE(cache.contains(7, 0));
  EXPECT_FALSE(cache.contains(7, 1));
  pinned.reset();
  cache.insert(7, 2, std::make_shared<std::string>(1000, 'r'));
  EXPECT_FALSE(cache.contains(7, 0));
  EXPECT_EQ(cache.charged(), 1000u);
  cache.erase_volume(7);
  EXPECT_EQ(cache.charged(), 0u);
}

TEST(BlockCacheTest, PoolHandsBackBuffersOfBlocksGoneOutOfUse) {
  auto pool = BlockPool::create(4096, 2);
  std::string s = pool->take();
  EXPECT_TRUE(s.empty());
  EXPECT_GE(s.capacity(), 4096u);
  s.assign(4096, 'a');
  const char* first = s.data();
  Block b = pool->wrap(std::move(s));
  EXPECT_EQ(*b, std::string(4096, 'a'));
  Block copy = b;
  b.reset();
  EXPECT_EQ(*copy, std::string(4096, 'a'));  // still held: not back in the pool
  copy.reset();
  std::string again = pool->take();
  EXPECT_EQ(again.data(), first);  // the same buffer, emptied
  EXPECT_TRUE(again.empty());
  // The pool keeps at most two buffers; blocks may outlive the pool's other owners.
  std::vector<Block> blocks;
  for (int i = 0; i < 3; ++i) {
    std::string t = pool->take();
    t.assign(100, static_cast<char>('x' + i));
    blocks.push_back(pool->wrap(std::move(t)));
  }
  std::weak_ptr<BlockPool> weak = pool;
  pool.reset();
  EXPECT_FALSE(weak.expired());
  blocks.clear();
  EXPECT_TRUE(weak.expired());
}

// A plain (uncompressed) difftar volume made by Python's tarfile, as duplicity writes it.
std::string make_volume(const TempDir& dir, std::string* big_content) {
  *big_content = test::pseudo_random_bytes(200000, 42);
  test::write_file(dir.file("big"), *big_content);
  std::string script = R"(
import tarfile, io, sys
out = tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT)
def add(name, data, type=tarfile.REGTYPE):
    ti = tarfile.TarInfo(name); ti.size = len(data); ti.type = type; ti.mode = 0o644
    out.addfile(ti, io.BytesIO(data))
add('snapshot/./', b'', tarfile.DIRTYPE)
add('snapshot/a.txt', b'hello\n')
big = open(sys.argv[2], 'rb').read()
for k in range(0, 4):
    add('multivol_snapshot/big/%d' % (k + 1), big[k * 65536:(k + 1) * 65536])
add('snapshot/z.txt', b'last\n')
out.close()
)";
  auto r = test::run({"/usr/bin/python3", "-c", script, dir.file("vol.tar"), dir.file("big")});
  EXPECT_TRUE(r.ok()) << r.err;
  return test::read_file(dir.file("vol.tar"));
}

class VolumeStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    volume_ = make_volume(dir_, &big_);
    memory_ = std::make_shared<MemoryBackend>();
    memory_->put("vol1.difftar", volume_);
    faulty_ = std::make_shared<FaultyBackend>(memory_);
  }
  std::string sha1() {
    auto h = sha1_of_object(*memory_, "vol1.difftar");
    EXPECT_TRUE(h.has_value());
    return *h;
  }
  // The bytes of `big` read through the store in pieces of `piece`.
  std::string read_big(VolumeStore& store, uint32_t id, size_t piece) {
    auto entries = store.entries_for(id, Index{"big"});
    EXPECT_TRUE(entries.has_value());
    std::string out;
    for (const auto& e : *entries) {
      for (uint64_t off = 0; off < e.header.size; off += piece) {
        std::string buf(std::min<uint64_t>(piece, e.header.size - off), '\0');
        auto n = store.read(id, e.header.data_offset + off, buf.data(), buf.size());
        EXPECT_TRUE(n.has_value());
        out += buf;
      }
    }
    return out;
  }

  TempDir dir_{"dupfs-vstore-"};
  std::string volume_, big_;
  std::shared_ptr<MemoryBackend> memory_;
  std::shared_ptr<FaultyBackend> faulty_;
};

TEST_F(VolumeStoreTest, CatalogAndDataAcrossBlocks) {
  BlockCache cache(64 << 20);
  VolumeStore store(faulty_, {}, cache, options(4096));
  uint32_t id = store.add_volume("vol1.difftar", sha1());
  auto a = store.entries_for(id, Index{"a.txt"});
  ASSERT_TRUE(a.has_value());
  ASSERT_EQ(a->size(), 1u);
  EXPECT_EQ((*a)[0].name.kind, EntryKind::kSnapshot);
  auto chunks = store.entries_for(id, Index{"big"});
  ASSERT_TRUE(chunks.has_value());
  ASSERT_EQ(chunks->size(), 4u);
  EXPECT_EQ((*chunks)[3].name.chunk, 4);
  EXPECT_EQ(read_big(store, id, 10000), big_);
  EXPECT_TRUE(store.entries_for(id, Index{"missing"})->empty());
}

TEST_F(VolumeStoreTest, TinyBudgetRestartsPassesAndStaysCorrect) {
  BlockCache cache(8192);  // two blocks: everything else is evicted as soon as it is made
  VolumeStore store(faulty_, {}, cache, options(4096, 4096));
  uint32_t id = store.add_volume("vol1.difftar", sha1());
  EXPECT_EQ(read_big(store, id, 3000), big_);
  // Reading backwards forces a new pass for every evicted block.
  auto chunks = *store.entries_for(id, Index{"big"});
  std::string first(100, '\0');
  ASSERT_EQ(*store.read(id, chunks[0].header.data_offset, first.data(), 100), 100u);
  EXPECT_EQ(first, big_.substr(0, 100));
  EXPECT_GE(store.passes_started(), 2u);
}

// Reads that must not wait (pushing files into the kernel's page cache) get the bytes at hand
// or kWouldBlock, and never start a pass.
TEST_F(VolumeStoreTest, ReadsThatMustNotWaitStartNothing) {
  BlockCache cache(64 << 20);
  VolumeStore store(faulty_, {}, cache, options(4096));
  uint32_t id = store.add_volume("vol1.difftar", sha1());
  char buf[100];
  auto r = store.read(id, 0, buf, sizeof buf, false);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kWouldBlock);
  EXPECT_EQ(store.passes_started(), 0u);
  auto z = store.entries_for(id, Index{"z.txt"});  // decodes the whole volume
  ASSERT_TRUE(z.has_value());
  ASSERT_EQ(z->size(), 1u);
  auto n = store.read(id, (*z)[0].header.data_offset, buf, 5, false);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(std::string(buf, *n), "last\n");
  EXPECT_EQ(store.passes_started(), 1u);
}

TEST_F(VolumeStoreTest, HashMismatchServesNothing) {
  faulty_->flip_byte("vol1.difftar", volume_.size() / 2);
  BlockCache cache(64 << 20);
  VolumeStore store(faulty_, {}, cache, options());
  uint32_t id = store.add_volume("vol1.difftar", sha1());
  auto r = store.entries_for(id, Index{"z.txt"});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kCorruption);
  EXPECT_NE(r.error().message.find("vol1.difftar"), std::string::npos);
  char buf[16];
  EXPECT_FALSE(store.read(id, 0, buf, sizeof buf).has_value());
  EXPECT_EQ(cache.charged(), 0u);
}

TEST_F(VolumeStoreTest, TransientStorageErrorIsRetriedOnNextRequest) {
  faulty_->fail_reads("vol1.difftar", Error{ErrorKind::kIoError, "connection reset"});
  BlockCache cache(64 << 20);
  VolumeStore store(faulty_, {}, cache, options());
  uint32_t id = store.add_volume("vol1.difftar", "");
  auto r = store.entries_for(id, Index{"a.txt"});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kIoError);
  faulty_->clear();
  auto again = store.entries_for(id, Index{"a.txt"});
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->size(), 1u);
}

TEST_F(VolumeStoreTest, SixteenConcurrentReadersSeeTheRightBytes) {
  BlockCache cache(16384);
  VolumeStore store(faulty_, {}, cache, options(4096, 8192));
  uint32_t id = store.add_volume("vol1.difftar", sha1());
  auto chunks = *store.entries_for(id, Index{"big"});
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < 50; ++i) {
        const auto& c = chunks[rng() % chunks.size()];
        uint64_t off = rng() % c.header.size;
        size_t len = std::min<uint64_t>(1 + rng() % 9000, c.header.size - off);
        std::string buf(len, '\0');
        auto n = store.read(id, c.header.data_offset + off, buf.data(), len);
        uint64_t file_off = (c.name.chunk - 1) * 65536 + off;
        if (!n || *n != len || buf != big_.substr(file_off, len)) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST_F(VolumeStoreTest, CatalogPersistsAcrossStores) {
  TempDir catalogs("dupfs-catalogs-");
  std::string hash = sha1();
  {
    BlockCache cache(64 << 20);
    VolumeStore store(faulty_, {}, cache, options(256 * 1024, 32 << 20, catalogs.path()));
    uint32_t id = store.add_volume("vol1.difftar", hash);
    ASSERT_TRUE(store.entries_for(id, Index{"z.txt"}).has_value());
  }
  faulty_->fail_reads("vol1.difftar", Error{ErrorKind::kIoError, "offline"});
  BlockCache cache(64 << 20);
  VolumeStore store(faulty_, {}, cache, options(256 * 1024, 32 << 20, catalogs.path()));
  uint32_t id = store.add_volume("vol1.difftar", hash);
  // Answered from the persisted catalog without touching storage.
  auto z = store.entries_for(id, Index{"z.txt"});
  ASSERT_TRUE(z.has_value());
  EXPECT_EQ(z->size(), 1u);
  EXPECT_EQ(store.passes_started(), 0u);
}

// The way `cp -a` walks a volume: look an entry up, read its data (blocks the pass published,
// so cache hits), next entry. The pass must keep its read-ahead window ahead of such a reader
// without being asked: counting only the blocks asked of it, it stopped one window in and then
// moved only when a lookup waited for it (here it stopped before f019). Here each
// entry must be catalogued before the reader asks for it, given time (no timing bound).
TEST_F(VolumeStoreTest, PassStaysAheadOfAReaderServedFromTheCache) {
  std::string script = R"(
import tarfile, io, sys
out = tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT)
for i in range(300):
    data = bytes([i % 256]) * 3000
    ti = tarfile.TarInfo('snapshot/f%03d' % i); ti.size = len(data); ti.mode = 0o644
    out.addfile(ti, io.BytesIO(data))
out.close()
)";
  auto r = test::run({"/usr/bin/python3", "-c", script, dir_.file("many.tar")});
  ASSERT_TRUE(r.ok()) << r.err;
  memory_->put("many.difftar", test::read_file(dir_.file("many.tar")));
  auto hash = sha1_of_object(*memory_, "many.difftar");
  ASSERT_TRUE(hash.has_value());
  BlockCache cache(64 << 20);
  VolumeStore store(faulty_, {}, cache, options(4096, 16 * 4096));
  uint32_t id = store.add_volume("many.difftar", *hash);
  ASSERT_TRUE(store.entries_for(id, Index{"f000"}).has_value());  // starts the pass
  for (int i = 0; i < 300; ++i) {
    Index index{fmt::format("f{:03d}", i)};
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!store.catalog_covers(id, index) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_TRUE(store.catalog_covers(id, index)) << "the pass stopped before " << index[0];
    auto entries = store.entries_for(id, index);
    ASSERT_TRUE(entries.has_value());
    ASSERT_EQ(entries->size(), 1u);
    std::string buf(3000, '\0');
    auto n = store.read(id, (*entries)[0].header.data_offset, buf.data(), buf.size());
    ASSERT_TRUE(n.has_value());
    ASSERT_EQ(buf, std::string(3000, static_cast<char>(i % 256)));
  }
}

// Seek indexes (docs/seek.md): a whole pass records one; the next store reads any file from
// the seek point before it, fetching little more than the file, checks stored chunks, and
// refuses a damaged index.
class SeekIndexTest : public ::testing::TestWithParam<const char*> {
 protected:
  static constexpr char kPassphrase[] = "volume store seek passphrase";

  void SetUp() override {
    // 400 files of 40 KiB, text and random octets: about 16 MB of tar.
    std::string script = R"(
import tarfile, io, sys, random
out = tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT)
for i in range(400):
    r = random.Random(i)
    data = b''.join(b'file %d line %d\n' % (i, j) if r.random() < 0.8 else r.randbytes(64)
                    for j in range(2000))[:40960]
    ti = tarfile.TarInfo('snapshot/d/f%03d' % i); ti.size = len(data); ti.mode = 0o644
    out.addfile(ti, io.BytesIO(data))
out.close()
)";
    auto r = test::run({"/usr/bin/python3", "-c", script, dir_.file("vol.tar")});
    ASSERT_TRUE(r.ok()) << r.err;
    tar_ = test::read_file(dir_.file("vol.tar"));
    name_ = GetParam();
    std::string stored;
    if (name_.ends_with(".gz")) {
      stored = gzip_compress(tar_, 6);
    } else {
      SymmetricEncryptOptions o;
      o.s2k_count = 1024;
      SymmetricEncryptor e(
          kPassphrase,
          [&](std::string_view piece) -> Status {
            stored.append(piece);
            return {};
          },
          o);
      ASSERT_TRUE(e.write(tar_));
      ASSERT_TRUE(e.finish());
    }
    memory_ = std::make_shared<MemoryBackend>();
    memory_->put(name_, stored);
    faulty_ = std::make_shared<FaultyBackend>(memory_);
    sha1_ = *sha1_of_object(*memory_, name_);
    stored_size_ = stored.size();
  }

  Credentials credentials() const { return Credentials{std::string(kPassphrase), ""}; }
  VolumeStoreOptions opts() const { return options(256 * 1024, 32 << 20, archive_.path()); }

  // Reads file `i` through the store; checks its bytes against the tar.
  Status read_file(VolumeStore& store, uint32_t id, int i) {
    char name[16];
    std::snprintf(name, sizeof name, "f%03d", i);
    auto entries = store.entries_for(id, Index{"d", name});
    if (!entries) return std::unexpected(entries.error());
    EXPECT_EQ(entries->size(), 1u);
    const TarHeader& h = entries->front().header;
    std::string buf(h.size, '\0');
    auto n = store.read(id, h.data_offset, buf.data(), buf.size());
    if (!n) return std::unexpected(n.error());
    EXPECT_EQ(*n, h.size);
    EXPECT_TRUE(buf == std::string_view(tar_).substr(h.data_offset, h.size)) << name;
    return {};
  }

  // A first store reads the whole volume: the index is written.
  void record_index() {
    BlockCache cache(64 << 20);
    VolumeStore store(faulty_, credentials(), cache, opts());
    uint32_t id = store.add_volume(name_, sha1_);
    for (int i = 0; i < 400; i += 50) ASSERT_TRUE(read_file(store, id, i));
    ASSERT_TRUE(store.catalog(id).has_value());
  }

  std::string index_file() const { return archive_.file(volume_index_name(name_)); }

  TempDir dir_{"dupfs-seek-store-"};
  TempDir archive_{"dupfs-seek-archive-"};
  std::string tar_, name_, sha1_;
  uint64_t stored_size_ = 0;
  std::shared_ptr<MemoryBackend> memory_;
  std::shared_ptr<FaultyBackend> faulty_;
};

TEST_P(SeekIndexTest, LateFileCostsItsOwnBytes) {
  record_index();
  ASSERT_TRUE(std::filesystem::exists(index_file()));
  const uint64_t before = faulty_->bytes_read(name_);
  BlockCache cache(64 << 20);
  VolumeStore store(faulty_, credentials(), cache, opts());
  uint32_t id = store.add_volume(name_, sha1_);
  ASSERT_TRUE(read_file(store, id, 398));
  const uint64_t fetched = faulty_->bytes_read(name_) - before;
  EXPECT_LE(fetched, 40960u + (2u << 20)) << "of " << stored_size_;
  EXPECT_EQ(store.passes_started(), 1u);
  // Every other file too, in any order.
  std::mt19937 rng(3);
  for (int k = 0; k < 40; ++k) ASSERT_TRUE(read_file(store, id, static_cast<int>(rng() % 400)));
}

// dupfs-backup stores indexes next to the volumes: a mount with an empty archive dir uses
// the stored one (and keeps a copy).
TEST_P(SeekIndexTest, IndexInStorageIsUsedAndCopied) {
  record_index();
  const std::string stored_index = volume_index_name(name_);
  memory_->put(stored_index, test::read_file(index_file()));
  std::filesystem::remove(index_file());
  const uint64_t before = faulty_->bytes_read(name_);
  BlockCache cache(64 << 20);
  VolumeStoreOptions o = opts();
  o.remote_indexes = {stored_index};
  VolumeStore store(faulty_, credentials(), cache, o);
  uint32_t id = store.add_volume(name_, sha1_);
  ASSERT_TRUE(read_file(store, id, 398));
  EXPECT_LE(faulty_->bytes_read(name_) - before, 40960u + (2u << 20));
  EXPECT_EQ(faulty_->read_count(stored_index), 1);
  EXPECT_TRUE(std::filesystem::exists(index_file()));
}

TEST_P(SeekIndexTest, DamagedChunkFailsOnlyItsFiles) {
  record_index();
  faulty_->flip_byte(name_, stored_size_ / 2);
  BlockCache cache(64 << 20);
  VolumeStore store(faulty_, credentials(), cache, opts());
  uint32_t id = store.add_volume(name_, sha1_);
  int failed = 0;
  for (int i = 0; i < 400; ++i) {
    auto s = read_file(store, id, i);
    if (!s) {
      EXPECT_EQ(s.error().kind, ErrorKind::kCorruption) << s.error().message;
      ++failed;
    }
  }
  // The files decoded from the damaged chunk (and the seek segments it feeds) fail; the
  // others read.
  EXPECT_GT(failed, 0);
  EXPECT_LT(failed, 200);
  EXPECT_TRUE(read_file(store, id, 0));
  EXPECT_TRUE(read_file(store, id, 399));
}

TEST_P(SeekIndexTest, DamagedOrForeignIndexIsRebuilt) {
  record_index();
  std::string good = test::read_file(index_file());
  for (int round = 0; round < 2; ++round) {
    std::string bad = good;
    if (round == 0) {
      bad[bad.size() / 2] = static_cast<char>(bad[bad.size() / 2] ^ 1);
    } else {
      // Sealed under another passphrase.
      VolumeIndex other;
      other.volume = name_;
      other.sha1 = sha1_;
      other.stored_size = 1;
      other.chunk_sha256.resize(1);
      SecretBuffer pass("another", 7);
      bad = *encode_volume_index(other, &pass);
    }
    { std::ofstream(index_file(), std::ios::binary | std::ios::trunc) << bad; }
    BlockCache cache(64 << 20);
    {
      VolumeStore store(faulty_, credentials(), cache, opts());
      uint32_t id = store.add_volume(name_, sha1_);
      ASSERT_TRUE(read_file(store, id, 399));
      ASSERT_TRUE(store.catalog(id).has_value());
    }
    // Refused, decoded from the start, and written anew.
    std::string rebuilt = test::read_file(index_file());
    SecretBuffer pass(kPassphrase, sizeof kPassphrase - 1);
    auto index = decode_volume_index(rebuilt, &pass, name_, sha1_);
    ASSERT_TRUE(index) << index.error().message;
    EXPECT_TRUE(index->seek.has_value());
    EXPECT_EQ(index->catalog.size(), 400u);
  }
}

TEST_P(SeekIndexTest, NoPlaintextInTheArchiveDir) {
  record_index();
  std::string file = test::read_file(index_file());
  // A line of file 123 and a random run of file 7: neither in the index.
  EXPECT_EQ(file.find("file 123 line 5\n"), std::string::npos);
  EXPECT_EQ(file.find("snapshot/d/f123"), std::string::npos);
  EXPECT_EQ(file.find(std::string_view(tar_).substr(tar_.size() / 2, 32)), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Codecs, SeekIndexTest,
                         ::testing::Values("vol1.difftar.gpg", "vol1.difftar.gz"),
                         [](const auto& info) {
                           return std::string(
                               std::string_view(info.param).ends_with(".gz") ? "Gzip" : "Gpg");
                         });

}  // namespace
}  // namespace dupfs::chain

// Signatures and deltas: byte-identical signatures to duplicity's own librsync module, deltas
// that librsync's patch turns back into the new data, whatever the pieces fed in.
#include "chain/format/signature.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "tests/support/process.h"
#include "tests/support/source_tree.h"
#include "tests/support/temp_dir.h"

namespace dupfs::chain {
namespace {

std::string signature_of(std::string_view data, size_t piece = 65536) {
  SignatureGenerator gen(signature_block_length(data.size()));
  for (size_t i = 0; i < data.size(); i += piece) {
    EXPECT_TRUE(gen.update(data.substr(i, piece)).has_value());
  }
  auto sig = gen.finish();
  EXPECT_TRUE(sig.has_value());
  return sig.value_or("");
}

std::string delta_of(std::string_view basis, std::string_view target, size_t piece = 65536) {
  auto loaded = LoadedSignature::load(signature_of(basis));
  EXPECT_TRUE(loaded.has_value());
  if (!loaded) return {};
  DeltaGenerator gen(*loaded);
  std::string out;
  for (size_t i = 0; i < target.size(); i += piece) {
    EXPECT_TRUE(gen.update(target.substr(i, piece), out).has_value());
  }
  EXPECT_TRUE(gen.finish(out).has_value());
  return out;
}

TEST(SignatureTest, BlockLengthRule) {
  EXPECT_EQ(signature_block_length(0), 512u);
  EXPECT_EQ(signature_block_length(200000), 512u);
  EXPECT_EQ(signature_block_length(1023999), 512u);
  EXPECT_EQ(signature_block_length(1024000), 512u);
  EXPECT_EQ(signature_block_length(2047999), 512u);
  EXPECT_EQ(signature_block_length(2048000), 1024u);
  EXPECT_EQ(signature_block_length(3000000), 1024u);
  EXPECT_EQ(signature_block_length(3100000), 1536u);
  EXPECT_EQ(signature_block_length(4096000), 2048u);
  EXPECT_EQ(signature_block_length(1ull << 40), 2048u);
}

TEST(SignatureTest, LayoutOfKnownSizes) {
  // docs/format.md §4.2: 200 000 bytes -> 391 blocks of 512, 4704 bytes; empty -> 12-byte header.
  std::string sig = signature_of(test::pseudo_random_bytes(200000, 1));
  EXPECT_EQ(sig.size(), 4704u);
  EXPECT_EQ(sig.substr(0, 4), std::string("rs\x01\x36", 4));
  EXPECT_EQ(sig.substr(4, 8), std::string("\0\0\x02\0\0\0\0\x08", 8));
  EXPECT_EQ(signature_of("").size(), 12u);
  EXPECT_EQ(signature_of(test::pseudo_random_bytes(3100000, 2)).size(), 12u + 2019 * 12);
}

TEST(SignatureTest, IdenticalToDuplicitysLibrsyncModule) {
  test::TempDir dir("dupfs-sig-");
  for (size_t size : {size_t{0}, size_t{1}, size_t{511}, size_t{513}, size_t{65536},
                      size_t{1500000}, size_t{3100000}}) {
    std::string data = test::pseudo_random_bytes(size, size + 7);
    std::string path = dir.file("f" + std::to_string(size));
    test::write_file(path, data);
    // duplicity's SigGenerator, fed as FileWithSignature feeds it.
    auto r = test::run({"/usr/bin/python3.11", "-c",
                        "import sys\n"
                        "sys.path.insert(0, '/usr/lib/python3/dist-packages')\n"
                        "from duplicity import librsync, diffdir\n"
                        "data = open(sys.argv[1], 'rb').read()\n"
                        "g = librsync.SigGenerator(diffdir.get_block_size(len(data)))\n"
                        "for i in range(0, len(data), 32768): g.update(data[i:i+32768])\n"
                        "sys.stdout.write(g.getsig().hex())\n",
                        path});
    ASSERT_TRUE(r.ok()) << r.err;
    std::string ours = signature_of(data, 100000);
    std::string hex;
    for (unsigned char c : ours) hex += fmt::format("{:02x}", c);
    EXPECT_EQ(hex, r.out) << "size " << size;
  }
}

TEST(SignatureTest, DeltaRoundTripsThroughLibrsyncPatch) {
  std::mt19937_64 rng(42);
  std::string basis = test::pseudo_random_bytes(700000, 3);
  struct Case {
    const char* what;
    std::string target;
  };
  std::vector<Case> cases;
  cases.push_back({"same", basis});
  cases.push_back({"empty", ""});
  cases.push_back({"grown", basis + test::pseudo_random_bytes(100000, 4)});
  cases.push_back({"truncated", basis.substr(0, 123457)});
  std::string edited = basis;
  for (int i = 0; i < 50; ++i) edited[rng() % edited.size()] ^= 0x55;
  cases.push_back({"edited", edited});
  cases.push_back({"inserted", basis.substr(0, 1000) + "hello" + basis.substr(1000)});
  cases.push_back({"unrelated", test::pseudo_random_bytes(300000, 5)});
  for (const auto& c : cases) {
    for (size_t piece : {size_t{1000}, size_t{65536}, size_t{1} << 20}) {
      std::string delta = delta_of(basis, c.target, piece);
      ASSERT_GE(delta.size(), 4u) << c.what;
      EXPECT_EQ(delta.substr(0, 4), std::string("rs\x02\x36", 4)) << c.what;
      auto patched = apply_delta(basis, delta);
      ASSERT_TRUE(patched.has_value()) << c.what << ": " << patched.error().message;
      EXPECT_TRUE(*patched == c.target) << c.what << " piece " << piece;
    }
  }
}

TEST(SignatureTest, MetadataOnlyChangeIsOneCopy) {
  // docs/format.md §3.6: after chmod, a 10-byte file's delta is magic, COPY 0 10, END.
  std::string data = "0123456789";
  std::string delta = delta_of(data, data);
  EXPECT_EQ(delta, std::string("rs\x02\x36\x45\x00\x0a\x00", 8));
}

TEST(SignatureTest, GarbageIsNotASignature) {
  EXPECT_FALSE(LoadedSignature::load("not a signature at all").has_value());
}

}  // namespace
}  // namespace dupfs::chain

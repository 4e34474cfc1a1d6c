// Regressions for what the fuzz targets (tests/fuzz, docs/fuzzing.md) found.
#include <gtest/gtest.h>

#include <string>

#include "backends/memory_backend.h"
#include "chain/codec/decode.h"
#include "chain/codec/openpgp.h"
#include "chain/codec/openpgp_encrypt.h"

namespace dupfs::chain {
namespace {

Status refuse(std::string_view) { return make_error(ErrorKind::kCorruption, "the sink refuses"); }

// openpgp_fuzz: an error of the sink came back wrapped ("cannot decrypt ...: damaged data (...)")
// when the literal data was inside a compressed packet, as gpg and dupfs write it.
TEST(FuzzRegressionTest, DecryptorReturnsSinkErrorsFromCompressedPacketsUnchanged) {
  std::string message;
  SymmetricEncryptOptions options;
  options.s2k_count = 1024;
  SymmetricEncryptor enc(
      "fuzz",
      [&](std::string_view piece) -> Status {
        message.append(piece);
        return {};
      },
      options);
  ASSERT_TRUE(enc.write(std::string(1 << 20, 'x')));  // more than one sink piece
  ASSERT_TRUE(enc.finish());

  SymmetricDecryptor dec("fuzz", refuse);
  Status s = dec.feed(message);
  if (s) s = dec.finish();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, ErrorKind::kCorruption);
  EXPECT_EQ(s.error().message, "the sink refuses");
}

// Seen reviewing decode.cc after the above (gzip_fuzz checks it now): decode_object wrapped a
// kCorruption of the sink as "damaged gzip data", blaming the gzip framing for what the sink (a tar
// parser) reported.
TEST(FuzzRegressionTest, GzipDecodeReturnsSinkErrorsUnchanged) {
  MemoryBackend backend;
  backend.put("a.gz", gzip_compress(std::string(5000, 'x')));
  Status s = decode_object(backend, "a.gz", Credentials{}, refuse);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, ErrorKind::kCorruption);
  EXPECT_EQ(s.error().message, "the sink refuses");
}

}  // namespace
}  // namespace dupfs::chain

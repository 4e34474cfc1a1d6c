// Streaming deflate (RFC 1951) in raw, zlib (RFC 1950) or gzip (RFC 1952) framing, with ISA-L's
// igzip (levels 0-3) or zlib (levels 0-9). On a tar of real files, one core of a loaded
// machine: ISA-L 1 400 MB/s, 2 330 MB/s, 3 150 MB/s; zlib 1 70 MB/s, 3 50 MB/s, 6 25 MB/s.
// zlib matches ISA-L 3's size at level 2 and is 2-8 % smaller at 3-6 (see openpgp_encrypt.h). The
// state holds recent input (the history window): it may be plaintext of a volume about to be
// encrypted, and is wiped when the Deflater goes.
//
// gzip framing is what Python's GzipFile writes (docs/format.md §5.4): one member, FLG 0 (no file
// name), MTIME = now unless given, OS 255; XFL 0, or for zlib levels 1 and 9 the 4 and 2 that
// zlib and Python write.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "backends/base/error.h"

namespace dupfs::chain {

enum class DeflateEngine {
  kIsal,  // ISA-L isal_deflate, levels 0-3 (0 is the fastest, not "stored")
  kZlib,  // zlib deflate, levels 0-9 (0 is stored blocks, 6 is gpg's and gzip's default)
};

struct DeflateLevel {
  DeflateEngine engine = DeflateEngine::kIsal;
  int level = 1;

  bool operator==(const DeflateLevel&) const = default;
};

// Whether the engine has that level.
bool valid_deflate_level(DeflateLevel level);

class Deflater {
 public:
  enum class Format { kRaw, kZlib, kGzip };
  // Receives the compressed stream in order, in pieces of at most 256 KiB. An error aborts the
  // compression and is returned by the write() or finish() that called it.
  using Output = std::function<Status(std::string_view)>;

  // `gzip_mtime`: the gzip header's MTIME (nullopt: the current time); ignored for other
  // formats. An invalid level makes write() and finish() fail with kInvalidArgument.
  Deflater(Format format, DeflateLevel level, Output out,
           std::optional<uint32_t> gzip_mtime = std::nullopt);
  ~Deflater();
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;

  // The next bytes of the uncompressed data, any number of times, in pieces of any size. Output
  // is collected into pieces of 256 KiB: a call may produce none.
  Status write(std::string_view data);
  // The end of the data: hands over everything that is left, ending the stream (and writing
  // the zlib or gzip trailer). A second call does nothing.
  Status finish();

  // Uncompressed bytes accepted, and compressed bytes handed to the output, so far.
  uint64_t bytes_in() const;
  uint64_t bytes_out() const;

  // After an error, write() and finish() return it again.

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dupfs::chain

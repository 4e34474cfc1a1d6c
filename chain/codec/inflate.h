// Streaming inflate of raw deflate, zlib or gzip data with ISA-L's igzip, about twice as fast
// as zlib on duplicity's volumes (inflate is most of the cost of reading one). The state holds
// recent output (the history window) and is wiped when the Inflater goes: it may be plaintext
// of an encrypted volume.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "backends/base/error.h"

struct inflate_state;
struct z_stream_s;

namespace dupfs::chain {

class SeekBuilder;

class Inflater {
 public:
  enum class Format { kRaw, kZlib, kGzip };  // zlib and gzip checksums are verified
  using Output = std::function<Status(std::string_view)>;

  // With `seek`: zlib, offering every block boundary to `seek` (and all output, before).
  explicit Inflater(Format format, SeekBuilder* seek = nullptr);
  ~Inflater();
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  // Inflates `in`, handing the output to `out` in pieces of at most 256 KiB. Consumes all of
  // `in` unless the stream ends inside it: returns the number of bytes consumed. kCorruption
  // for invalid data or a checksum mismatch; errors of `out` come back as they are.
  Result<size_t> feed(std::string_view in, const Output& out);
  // The stream's end (and, for zlib and gzip, its checksum) has been seen.
  bool finished() const;
  // Ready for another stream of the same format (the next member of a gzip file).
  void reset();
  // A kRaw inflater (ISA-L) made ready to go on from a block boundary: `bits` (0-7) octets of
  // the stream's current octet `octet` were consumed before it, `window` is the output before
  // it. The next feed() starts with the octet after `octet`.
  Status resume(unsigned bits, uint8_t octet, std::string_view window);

 private:
  Result<size_t> feed_zlib(std::string_view in, const Output& out);

  Format format_;
  SeekBuilder* seek_;
  std::unique_ptr<inflate_state> state_;  // ISA-L (without seek_)
  std::unique_ptr<z_stream_s> zs_;        // zlib (with seek_)
  bool zlib_finished_ = false;
  std::unique_ptr<uint8_t[]> out_;
};

}  // namespace dupfs::chain

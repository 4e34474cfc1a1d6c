// In-process decryption of OpenPGP messages encrypted with a passphrase only (RFC 4880), the
// format `gpg --symmetric` writes for duplicity: SKESK v4 packets (S2K simple, salted or
// iterated+salted), one SEIPD v1 packet (CFB with a zero IV, MDC), optionally a compressed
// packet (uncompressed, ZIP or ZLIB), and one literal data packet whose contents are the
// object. Everything else (public-key messages, legacy data without MDC, AEAD, bzip2,
// signatures, ciphers other than AES and Camellia) is reported as kUnsupported before any byte
// reaches the sink, so that the caller can decrypt the object with gpg instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "backends/base/byte_sink.h"
#include "backends/base/error.h"

namespace dupfs::chain {

class SeekBuilder;

// A push decoder: the stored object goes in through feed() in pieces of any size, the literal
// data comes out through the sink in pieces of at most 256 KiB; memory use does not depend on
// the size of the message. Not thread-safe (one object per decode); decoders in different
// threads run in parallel.
//
// Errors, all with messages "cannot decrypt <name>: ...":
//   kUnsupported  the message needs gpg (see above); never after a byte reached the sink
//   kAuth         the passphrase is wrong (quick check of every passphrase-encrypted key)
//   kCorruption   damaged or truncated data, MDC mismatch, missing MDC, not OpenPGP
//   kIoError      a failure of OpenSSL or zlib (out of memory)
// An error returned by the sink is returned unchanged. After an error, feed() and finish()
// return the same error again.
//
// Literal data reaches the sink before the MDC at the end of the message is checked (that is
// what streaming means): only a successful finish() says that everything was authentic.
class SymmetricDecryptor {
 public:
  // `name` only appears in error messages. With `seek`, records seek points into it
  // (chain/codec/seek_builder.h; inflating with zlib, half as fast).
  SymmetricDecryptor(std::string_view passphrase, ByteSink sink, std::string name = "message",
                     SeekBuilder* seek = nullptr);
  ~SymmetricDecryptor();
  SymmetricDecryptor(const SymmetricDecryptor&) = delete;
  SymmetricDecryptor& operator=(const SymmetricDecryptor&) = delete;

  // The next bytes of the stored object.
  Status feed(std::string_view stored_bytes);
  // The end of the stored object: checks the MDC and hands over the last decrypted bytes.
  Status finish();

  // Whether the sink has been called (after which no kUnsupported is ever returned).
  bool produced_output() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dupfs::chain

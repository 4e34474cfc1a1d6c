// In-process encryption of OpenPGP messages with a passphrase (RFC 4880), writing what
// `gpg --symmetric` 2.2 writes for duplicity (docs/format.md §5.3), so that gpg, duplicity and
// SymmetricDecryptor (openpgp.h) read it:
//
//   SKESK v4      cipher (AES-256), S2K 3 (iterated+salted, SHA1, random 8-octet salt,
//                 count 65011712 by default), no encrypted session key: the S2K key is the key
//   SEIPD v1      new-format header, partial body lengths (2^18 octets; a short message gets
//                 a definite length), CFB with a zero IV and no resynchronisation:
//     16 random octets and a repetition of the last two
//     Compressed  old-format header, indeterminate length, algorithm 1 (ZIP: raw deflate);
//                 left out without compression (gpg --compress-algo none)
//       Literal   new-format header, partial body lengths (2^16 octets), mode 'b', empty
//                 file name, date = now
//     MDC         0xD3 0x14 and the SHA1 of everything before it in the SEIPD plaintext
//
// Streaming: plaintext goes in through write() in pieces of any size, ciphertext comes out
// through the sink in pieces of at most 2^18 + 6 octets; memory use (about 1 MB, most of it
// the deflater's) does not depend on the size of the message. Not thread-safe (one object per
// message); encryptors in different threads run in parallel. The passphrase, the key and all
// buffers of plaintext are wiped when the encryptor goes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "backends/base/byte_sink.h"
#include "backends/base/error.h"
#include "chain/codec/deflate.h"

namespace dupfs::chain {

struct SymmetricEncryptOptions {
  // The deflate inside the Compressed packet; nullopt: no Compressed packet, the literal data
  // packet directly inside the SEIPD (what gpg writes with --compress-algo none or -z 0).
  //
  // gpg deflates with zlib at level 6 and an 8 KiB window (windowBits -13); every level here
  // uses the full 32 KiB window. Against gpg's output, on a 569 MB tar of real files (headers,
  // python stdlib, libraries, docs), CPU time of one core for the whole encryption:
  //   ISA-L 2   +4.5 %  size,  0.13x gpg's time
  //   ISA-L 3   +2.6 %         0.25x
  //   zlib 3    +0.1 %         0.57x
  //   zlib 4    -3.1 %         0.72x
  // The default, ISA-L 3, stays within 5 % of gpg's size on text (+4.0 % on C headers and
  // perl) but not on shared libraries (+6.5 %); zlib 3 does (+2.3 %, +1.0 %).
  std::optional<DeflateLevel> compression = DeflateLevel{DeflateEngine::kIsal, 3};
  // Octets hashed by the S2K, rounded up to the next count OpenPGP can code (1024 ..
  // 65011712); gpg 2.2's default is the largest.
  uint32_t s2k_count = 65011712;
  // 7 AES-128, 8 AES-192, 9 AES-256 (gpg's default); others are kUnsupported.
  int cipher_algo = 9;
  // The literal data packet's date; nullopt: the time of the first write() or finish().
  std::optional<uint32_t> literal_date;
};

class SymmetricEncryptor {
 public:
  // The ciphertext goes to `sink`. Nothing happens before the first write() or finish()
  // (which derives the key: tens of milliseconds at the default S2K count).
  SymmetricEncryptor(std::string_view passphrase, ByteSink sink,
                     SymmetricEncryptOptions options = {});
  ~SymmetricEncryptor();
  SymmetricEncryptor(const SymmetricEncryptor&) = delete;
  SymmetricEncryptor& operator=(const SymmetricEncryptor&) = delete;

  // The next plaintext bytes, any number of times, in pieces of any size.
  Status write(std::string_view plaintext);
  // The end of the plaintext: writes the rest of the message (the MDC last). A message is
  // complete only after a successful finish(); a second call does nothing.
  //
  // Errors: kInvalidArgument for bad options (or write() after finish()), kUnsupported for a
  // cipher other than AES, kIoError when OpenSSL or the deflater fails; an error returned by
  // the sink is returned unchanged. After an error, write() and finish() return it again.
  Status finish();

  // Plaintext bytes accepted so far.
  uint64_t bytes_in() const;
  // Ciphertext bytes handed to the sink so far. Output lags input by what the stages hold: up
  // to 2^18 octets of ciphertext, 256 KiB of compressed data, 64 KiB of plaintext and whatever
  // the deflate engine buffers (up to a few hundred KiB of input).
  uint64_t bytes_out() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// The coded S2K count octet (RFC 4880 §3.7.1.3) for at least `count` octets, as gpg rounds:
// the smallest coded count not below `count`, 0xff for anything above 65011712.
uint8_t s2k_count_octet(uint32_t count);

}  // namespace dupfs::chain

// Encoding objects for storage (docs/format.md §5): plain, gzip (one member, as Python's GzipFile
// writes it; chain/codec/deflate.h) or OpenPGP (passphrase only: in process,
// chain/codec/openpgp_encrypt.h; to public keys, optionally signed: GnuPG through GPGME). Encoders
// stream: plaintext goes in through write() in pieces of any size, stored bytes come out through
// the sink as they are produced, and bytes_out() says how many so far (volumes are cut by stored
// size). Plaintext never touches the disk.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/base/error.h"
#include "chain/codec/decode.h"
#include "chain/codec/deflate.h"

namespace dupfs::chain {

struct EncodeOptions {
  Codec codec = Codec::kGpg;
  // kGpg: the symmetric passphrase when `recipients` is empty; otherwise the passphrase of
  // `sign_key`'s secret key (if signing). Reaches gpg only through the loopback pinentry.
  std::optional<std::string> passphrase;
  std::vector<std::string> recipients;  // --encrypt-key: key ids or fingerprints
  std::string sign_key;                 // --sign-key: sign as well (empty: no signature)
  std::string gnupg_home;               // empty: GNUPGHOME or ~/.gnupg
  // The deflate of gzip objects and inside in-process OpenPGP messages; nullopt: the codec's
  // default. Measured on the bench corpus (547 MB of tar) against duplicity's own output:
  //   OpenPGP: ISA-L level 3, 2.2 % larger than gpg's (which deflates with small buffers), at a
  //            fraction of the CPU time;
  //   gzip:    zlib level 4, about 3 % larger than Python's GzipFile at level 6 and about twice
  //            as fast (ISA-L 3 would be 8.6 % larger: Python's zlib uses the whole 32 KiB window).
  std::optional<DeflateLevel> compression;
  // Passphrase-only OpenPGP written in process (chain/codec/openpgp_encrypt.h: what gpg --symmetric
  // writes) instead of through GPGME; public keys and signatures always go through GPGME.
  bool in_process = true;
};

// The suffix of stored names for objects written with `codec`: ".gpg", ".gz" or "".
std::string_view suffix_for(Codec codec);

class Encoder {
 public:
  virtual ~Encoder() = default;
  // The next plaintext bytes.
  virtual Status write(std::string_view plain) = 0;
  // The end of the plaintext: flushes everything to the sink. Once only. The sink is never
  // called after finish() returns.
  virtual Status finish() = 0;
  // Stored bytes handed to the sink so far (safe to call from the writing thread only).
  virtual uint64_t bytes_out() const = 0;
};

// `name` only appears in messages. Errors: kInvalidArgument for an unknown key, kAuth for a
// missing or wrong signing passphrase, kIoError when gpg fails; the sink's own errors come back
// unchanged from write()/finish().
Result<std::unique_ptr<Encoder>> make_encoder(const EncodeOptions& options, std::string name,
                                              ByteSink sink);

// The whole encoded object (manifests).
Result<std::string> encode_to_string(const EncodeOptions& options, const std::string& name,
                                     std::string_view plain);

// Checks that every recipient and the signing key exist (before any work is done).
Status check_encryption_keys(const EncodeOptions& options);

}  // namespace dupfs::chain

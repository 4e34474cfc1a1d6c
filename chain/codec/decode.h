// Decoding stored objects: OpenPGP (passphrase-encrypted messages in process, see openpgp.h;
// anything else, e.g. public-key messages, through GPGME), gzip (ISA-L, see inflate.h) or
// plain, chosen per object from its name's suffix (docs/format.md §1.3). Decrypted bytes only ever
// go to memory.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.h"
#include "backends/base/byte_sink.h"
#include "backends/base/error.h"
#include "chain/codec/seek.h"

namespace dupfs::chain {

enum class Codec { kPlain, kGzip, kGpg };

// ".gpg"/".g" -> kGpg, ending in "gz" or ".z" -> kGzip, else kPlain.
Codec codec_for_name(std::string_view name);

// What decryption needs. The passphrase is used for symmetric decryption and as the secret
// key's passphrase; it never leaves this process except to gpg through GPGME's loopback
// pinentry. Keys derived from it are cached in this process's memory only. gnupg_home empty
// means GNUPGHOME or ~/.gnupg.
struct Credentials {
  std::optional<std::string> passphrase;
  std::string gnupg_home;
};

// Streams the stored object through its codec into `sink`, reading it from storage in pieces.
// kAuth for a wrong passphrase or a missing secret key, kCorruption for damaged data (bad
// packet, MDC or CRC failure, truncation), kNotFound / kIoError from storage.
// With `record`: the object's seek data goes to it after a successful decode, when the object
// can be seeked into (chain/codec/seek.h); recording inflates with zlib, about half as fast.
Status decode_object(const Backend& backend, const std::string& name,
                     const Credentials& credentials, const ByteSink& sink,
                     const SeekRecorder* record = nullptr);

// The whole decoded object (for manifests and signature files).
Result<std::string> decode_object_to_string(const Backend& backend, const std::string& name,
                                            const Credentials& credentials);

// Lowercase hex SHA1 of the stored bytes of an object, read in pieces.
Result<std::string> sha1_of_object(const Backend& backend, const std::string& name);

// The same, with the SHA-256 of every `chunk_size` octets (the last chunk shorter) for a seek
// index (chain/metadata/volume_index.h), and the object's size.
struct StoredHashes {
  std::string sha1;
  uint64_t size = 0;
  std::vector<std::array<uint8_t, 32>> chunk_sha256;
};
Result<StoredHashes> hash_object(const Backend& backend, const std::string& name,
                                 uint32_t chunk_size);

// gzip-compresses `data` as one member with zlib (tests build gzip objects with it; stored
// objects and archive dir copies go through make_encoder).
std::string gzip_compress(std::string_view data, int level = 6);

}  // namespace dupfs::chain

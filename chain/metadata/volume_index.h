// A volume's seek index (docs/seek.md): everything a read needs to serve any part of a volume
// without decoding it from its start, kept in the archive dir (and, for volumes dupfs-backup
// wrote, stored next to the volume) under a name duplicity ignores:
//   dupfs-seek.<volume name>.idx
// It holds the tar catalog, the stored bytes' SHA-256 per chunk (recorded only after the
// whole object's SHA1 matched the manifest, so ranged reads are checked without reading the
// whole object), and the codec's seek data (chain/codec/seek.h: session key, deflate windows).
//
// File: "dupfs-seek-1\n", a mode octet, then
//   mode 1 (sealed): S2K salt (8) and count octet (1), GCM nonce (12), AES-256-GCM ciphertext
//     of the payload, tag (16). The key is OpenPGP's iterated+salted S2K (SHA-256) of the
//     archive's passphrase; the associated data is everything before the ciphertext plus the
//     volume's name and SHA1, so an index of another volume, archive or passphrase fails.
//   mode 0 (clear, only without a passphrase): the payload, then the SHA-256 of everything
//     before it. A clear index never holds the seek data of an encrypted volume.
// Keys are derived once per salt and process (cached_s2k); a process seals with the salt of the
// first index it opened, so an archive dir's indexes converge on one salt and a mount derives
// one key, early (warm_index_key).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/base/error.h"
#include "chain/codec/s2k.h"
#include "chain/codec/seek.h"
#include "chain/format/difftar.h"

namespace dupfs::chain {

inline constexpr uint32_t kIndexChunkSize = 256 * 1024;

struct VolumeIndex {
  std::string volume;      // the volume's name in storage
  std::string sha1;        // its SHA1 (lowercase hex) as the manifest gives it
  uint64_t stored_size = 0;
  uint64_t decoded_size = 0;  // length of the tar stream
  uint32_t chunk_size = kIndexChunkSize;
  std::vector<std::array<uint8_t, 32>> chunk_sha256;  // stored bytes, chunk by chunk
  std::vector<CatalogEntry> catalog;                  // every tar entry, in stream order
  std::optional<SeekData> seek;
};

// "dupfs-seek.<volume>.idx", and back (nullopt for any other name).
std::string volume_index_name(std::string_view volume);
std::optional<std::string> volume_of_index_name(std::string_view name);

// The file's bytes. Sealed when `passphrase` is given (with the process's sealing salt), else
// clear, and then without the seek data of a kGpg volume.
Result<std::string> encode_volume_index(const VolumeIndex& index, const SecretBuffer* passphrase);

// The index in `file`, which must be the one of volume `volume` with SHA1 `sha1`. kCorruption
// for anything damaged, foreign or malformed (the caller ignores the file and rebuilds it);
// kAuth for a sealed file without a passphrase. Never trusts a count or length in the file
// beyond the bytes it has.
Result<VolumeIndex> decode_volume_index(std::string_view file, const SecretBuffer* passphrase,
                                        std::string_view volume, std::string_view sha1);

// Derives (and caches) the key of the sealed index file whose first bytes are `head` (at least
// kIndexHeadSize), so that the first read through an index does not wait for it. Does nothing
// for anything else.
inline constexpr size_t kIndexHeadSize = 64;
void warm_index_key(std::string_view head, const SecretBuffer& passphrase);

}  // namespace dupfs::chain

// Random access into a stored volume (docs/seek.md): what a first decoding pass records so that
// later reads can decode from the middle of the object, and the decoder that starts there.
//
// A volume's layers, outermost first (docs/format.md §1.3):
//   stored bytes
//     gpg:  SKESK/PKESK, then one SEIPD packet whose body is split into parts by partial body
//           lengths (`seipd` framing) -> C, the CFB stream (random prefix, data, MDC packet)
//   C from z_base on: the compressed stream Z (deflate, ZIP or ZLIB; gzip: Z is the stored
//           object itself, header included)
//   Z inflated -> D, which holds one literal data packet, also split into parts (`literal`
//           framing) -> T, the tar stream the catalog's offsets refer to.
// Without compression D is C; without encryption there is no literal packet (T is D) and, for
// plain volumes, D is the stored object.
//
// A seek point is a place where decoding can start afresh: a deflate block boundary (its bit
// offset in Z and the 32 KiB of D before it) at a known offset of D. CFB decryption resumes at
// any 16-octet block of C given the ciphertext block before it (read from storage) and the
// session key. Points are at most about kSeekSpacing stored bytes apart, so a read starting
// anywhere needs little more than its own bytes. Each point carries the CRC32 of D up to the
// next point: a decoder started at a point checks what it produced before passing it on, so a
// mistake in an index can cost a read (kCorruption) but never yield wrong bytes.
//
// SeekData holds plaintext (windows) and the session key: it is only ever kept sealed
// (chain/metadata/volume_index.h).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.h"
#include "backends/base/byte_sink.h"
#include "backends/base/error.h"
#include "chain/codec/s2k.h"

namespace dupfs::chain {

// About this many compressed (or, uncompressed, stored) bytes lie between two seek points; a
// point also follows after kSeekMaxDecoded decoded bytes, whichever comes first.
inline constexpr uint64_t kSeekSpacing = uint64_t{1} << 20;
inline constexpr uint64_t kSeekMaxDecoded = uint64_t{4} << 20;
inline constexpr size_t kDeflateWindow = 32 * 1024;
// A window as kept: raw deflate (zlib level 1), at most this long (incompressible windows
// grow a little).
inline constexpr size_t kMaxWindowRecord = kDeflateWindow + 256;

// Where the parts of one packet body lie in the stream around it: parts of `length` octets at
// outer offsets outer, outer + stride, ..., holding inner offsets inner, inner + length, ...
// (stride - length octets of length headers between them). Runs are in order.
struct FramingRun {
  uint64_t outer = 0;
  uint64_t inner = 0;
  uint64_t length = 0;
  uint64_t stride = 0;
  uint64_t count = 0;
  bool operator==(const FramingRun&) const = default;
};

struct Framing {
  std::vector<FramingRun> runs;

  // Records the next part (parts come in order, inner offsets contiguous).
  void add_part(uint64_t outer, uint64_t length);
  // Inner octets in all parts.
  uint64_t inner_size() const;
  // The outer offset of inner offset `inner` (< inner_size()).
  uint64_t outer_of(uint64_t inner) const;
  // The inner offset of the first inner octet at or after outer offset `outer` (inner_size()
  // past the last part).
  uint64_t inner_at(uint64_t outer) const;
  bool operator==(const Framing&) const = default;
};

enum class SeekCodec : uint8_t { kPlain = 0, kGzip = 1, kGpg = 2 };

struct SeekPoint {
  uint64_t out = 0;      // offset in D
  uint64_t in_bits = 0;  // bit offset in Z of the deflate block starting there (0 uncompressed)
  uint32_t crc = 0;      // CRC32 (gzip's) of D from `out` to the next point's (or D's end)
  // Up to kDeflateWindow octets of D before `out`, deflated (empty uncompressed).
  std::string window;
  bool operator==(const SeekPoint&) const = default;
};

struct SeekData {
  SeekCodec codec = SeekCodec::kPlain;
  // kGpg only.
  int cipher = 0;  // OpenPGP symmetric algorithm of the SEIPD
  SecretBuffer session_key;
  Framing seipd;  // stored offsets -> C
  // kGpg, kGzip: 0 none, 1 raw deflate (ZIP and gzip), 2 ZLIB.
  int compression = 0;
  uint64_t z_base = 0;  // kGpg: offset in C of Z's first octet (after the algorithm octet)
  Framing literal;      // kGpg: D -> T; empty for kGzip and kPlain (T is D)
  uint64_t d_size = 0;  // length of D
  std::vector<SeekPoint> points;  // by `out`; the first at the start of the data
};

// T offset of D offset `d` (the first tar octet at or after it).
uint64_t seek_t_of(const SeekData& seek, uint64_t d);
// Index of the last point whose T offset is <= t (points[0] when none).
size_t seek_point_for(const SeekData& seek, uint64_t t);

// What a first, whole pass recorded, when the volume's kind can be seeked into (nullopt for
// messages decrypted by gpg, bzip2, several gzip members, ...).
using SeekRecorder = std::function<void(SeekData)>;

// Reads stored bytes [offset, offset + length) after checking them (the caller's chunk
// hashes). Returns fewer only at the end of the object.
using StoredReader = std::function<Result<std::string>(uint64_t offset, size_t length)>;

// Decodes the volume from seek point `point` on, handing T to `sink` from the point's T offset
// (the caller skips what it does not need) until the sink returns kCancelled (returned as is)
// or T ends. D of each segment is checked against its CRC before any of it reaches the sink.
// kCorruption when a check fails or the data does not decode.
Status decode_from_point(const SeekData& seek, size_t point, const StoredReader& read,
                         const ByteSink& sink, const std::string& name);

}  // namespace dupfs::chain

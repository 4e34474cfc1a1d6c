// Internal to chain/codec: collects a volume's SeekData (seek.h) while a whole pass decodes
// it. The decoders tell it where packet parts lie, the key, and every octet of D (for the
// segment CRCs); the inflater offers block boundaries, which become points at about
// kSeekSpacing apart. Anything the decoders cannot describe (a second gzip member, a
// compressed packet split into parts, a literal header across parts) makes the volume
// unseekable: finish() then gives nothing, and reads decode from the start as before.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

#include "chain/codec/seek.h"

namespace dupfs::chain {

class SeekBuilder {
 public:
  explicit SeekBuilder(SeekCodec codec) { data_.codec = codec; }

  void fail() { ok_ = false; }
  bool ok() const { return ok_; }

  // kGpg: the SEIPD's cipher and session key; its parts (stored offsets; the version octet
  // already left out), in order.
  void set_key(int cipher, const uint8_t* key, size_t size) {
    data_.cipher = cipher;
    data_.session_key = SecretBuffer(key, size);
  }
  void seipd_part(uint64_t outer, uint64_t length) { data_.seipd.add_part(outer, length); }

  // Where D begins: compression 1 or 2 inflate Z from offset `z_base` of C (kGpg; 0 for
  // kGzip); compression 0: D is C (kGpg) or the stored object (kPlain), starting at `z_base`.
  // Starts D afresh: what was recorded of D before is dropped.
  void set_compression(int compression, uint64_t z_base) {
    data_.compression = compression;
    data_.z_base = z_base;
    data_.points.clear();
    d_ = compression == 0 ? z_base : 0;
    last_in_ = 0;
    crc_ = 0;
  }

  // kGpg: a part of the literal packet's body at D offset `outer` (length unknown: the
  // packet runs to the end of D, given by finish()). The first `header` octets of the body
  // are the literal header, not data.
  void literal_part(uint64_t outer, std::optional<uint64_t> length);
  void literal_header(uint64_t header);

  // The D offset of the next octet output() is given.
  uint64_t d() const { return d_; }
  // Whether a point at a block boundary here is due (the compressed input is at `in`).
  bool point_due(uint64_t in) const {
    return data_.points.empty() || in - last_in_ >= kSeekSpacing ||
           d_ - data_.points.back().out >= kSeekMaxDecoded;
  }
  // A point at the current D offset: decoding can start at bit `in_bits` of Z (ignored
  // uncompressed) with `window` (the D octets just before).
  void point(uint64_t in_bits, std::string_view window);
  // The next octets of D.
  void output(std::string_view d);

  // The data, when the whole object decoded and nothing made it unseekable.
  std::optional<SeekData> finish();

 private:
  SeekData data_;
  bool ok_ = true;
  uint64_t d_ = 0;
  uint64_t last_in_ = 0;
  uint32_t crc_ = 0;
  uint64_t literal_header_ = 0;
  std::optional<uint64_t> open_literal_part_;  // outer offset of a part running to the end
  // The first literal part, until the header's size is known.
  std::optional<std::pair<uint64_t, uint64_t>> pending_first_;
};

}  // namespace dupfs::chain

#include "chain/codec/seek.h"

#include <isa-l/crc.h>
#include <openssl/crypto.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "chain/codec/cfb.h"
#include "chain/codec/inflate.h"
#include "chain/codec/seek_builder.h"

namespace dupfs::chain {

// ---------------------------------------------------------------------------------------------
// Framing

void Framing::add_part(uint64_t outer, uint64_t length) {
  if (length == 0) return;
  if (!runs.empty()) {
    FramingRun& r = runs.back();
    if (r.length == length) {
      if (r.count == 1 && outer > r.outer) {
        r.stride = outer - r.outer;
        r.count = 2;
        return;
      }
      if (r.count > 1 && outer == r.outer + r.count * r.stride) {
        ++r.count;
        return;
      }
    }
  }
  runs.push_back(FramingRun{outer, inner_size(), length, 0, 1});
}

uint64_t Framing::inner_size() const {
  if (runs.empty()) return 0;
  const FramingRun& r = runs.back();
  return r.inner + r.count * r.length;
}

namespace {

// The run holding inner offset `inner` (runs.size() when past the end).
size_t run_of(const Framing& f, uint64_t inner) {
  auto it = std::upper_bound(f.runs.begin(), f.runs.end(), inner,
                             [](uint64_t x, const FramingRun& r) { return x < r.inner; });
  if (it == f.runs.begin()) return f.runs.size();
  --it;
  if (inner >= it->inner + it->count * it->length) return f.runs.size();
  return static_cast<size_t>(it - f.runs.begin());
}

// Octets from inner offset `inner` to the end of its part.
uint64_t part_rest(const Framing& f, uint64_t inner) {
  size_t i = run_of(f, inner);
  if (i == f.runs.size()) return 0;
  const FramingRun& r = f.runs[i];
  return r.length - (inner - r.inner) % r.length;
}

}  // namespace

uint64_t Framing::outer_of(uint64_t inner) const {
  size_t i = run_of(*this, inner);
  if (i == runs.size()) return UINT64_MAX;
  const FramingRun& r = runs[i];
  uint64_t k = (inner - r.inner) / r.length;
  return r.outer + k * r.stride + (inner - r.inner) % r.length;
}

uint64_t Framing::inner_at(uint64_t outer) const {
  for (const FramingRun& r : runs) {
    if (outer < r.outer) return r.inner;
    uint64_t k = r.count == 1 ? 0 : std::min((outer - r.outer) / r.stride, r.count - 1);
    uint64_t within = outer - (r.outer + k * r.stride);
    if (within < r.length) return r.inner + k * r.length + within;
    if (k + 1 < r.count) return r.inner + (k + 1) * r.length;  // in a header between parts
  }
  return inner_size();
}

uint64_t seek_t_of(const SeekData& seek, uint64_t d) {
  return seek.literal.runs.empty() ? d : seek.literal.inner_at(d);
}

size_t seek_point_for(const SeekData& seek, uint64_t t) {
  auto it =
      std::upper_bound(seek.points.begin(), seek.points.end(), t,
                       [&](uint64_t x, const SeekPoint& p) { return x < seek_t_of(seek, p.out); });
  return it == seek.points.begin() ? 0 : static_cast<size_t>(it - seek.points.begin()) - 1;
}

// ---------------------------------------------------------------------------------------------
// Windows, kept deflated (they are about 3 % of a volume's size otherwise)

namespace {

std::string deflate_window(std::string_view window) {
  if (window.empty()) return {};
  z_stream zs{};
  std::string out;
  if (deflateInit2(&zs, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) return out;
  out.resize(deflateBound(&zs, static_cast<uLong>(window.size())));
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(window.data()));
  zs.avail_in = static_cast<uInt>(window.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(rc == Z_STREAM_END ? zs.total_out : 0);
  deflateEnd(&zs);
  return out;
}

// The window of `p`, into `out` (kDeflateWindow octets of room); its length, or an error.
Result<size_t> inflate_window(const SeekPoint& p, uint8_t* out) {
  if (p.window.empty()) return 0;
  z_stream zs{};
  if (inflateInit2(&zs, -15) != Z_OK) return error(ErrorKind::kIoError, "inflateInit2 failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(p.window.data()));
  zs.avail_in = static_cast<uInt>(p.window.size());
  zs.next_out = out;
  zs.avail_out = static_cast<uInt>(kDeflateWindow);
  int rc = inflate(&zs, Z_FINISH);
  size_t n = zs.total_out;
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) return error(ErrorKind::kCorruption, "bad window in the seek index");
  return n;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// SeekBuilder

void SeekBuilder::literal_part(uint64_t outer, std::optional<uint64_t> length) {
  if (open_literal_part_) {
    fail();  // only the last part may run to the end
    return;
  }
  if (!length) {
    open_literal_part_ = outer;
    return;
  }
  if (data_.literal.runs.empty() && literal_header_ == 0) {
    pending_first_ = {outer, *length};  // the header's size is known later
    return;
  }
  data_.literal.add_part(outer, *length);
}

void SeekBuilder::literal_header(uint64_t header) {
  literal_header_ = header;
  if (pending_first_) {
    auto [outer, length] = *pending_first_;
    pending_first_.reset();
    if (length < header) {
      fail();  // a header across parts: not worth describing
      return;
    }
    data_.literal.add_part(outer + header, length - header);
  }
}

void SeekBuilder::point(uint64_t in_bits, std::string_view window) {
  if (!data_.points.empty()) data_.points.back().crc = crc_;
  crc_ = 0;
  std::string kept = deflate_window(window);
  if (kept.empty() && !window.empty()) fail();
  data_.points.push_back(SeekPoint{d_, in_bits, 0, std::move(kept)});
  last_in_ = in_bits / 8;
}

void SeekBuilder::output(std::string_view d) {
  while (!d.empty()) {
    size_t take = d.size();
    if (data_.compression == 0) {
      // Uncompressed: decoding can start anywhere, so points go at fixed distances.
      if (data_.points.empty() || d_ - data_.points.back().out >= kSeekSpacing) point(0, {});
      take = std::min<uint64_t>(take, data_.points.back().out + kSeekSpacing - d_);
    }
    crc_ = crc32_gzip_refl(crc_, reinterpret_cast<const unsigned char*>(d.data()), take);
    d_ += take;
    d.remove_prefix(take);
  }
}

std::optional<SeekData> SeekBuilder::finish() {
  if (pending_first_) literal_header(literal_header_);
  if (!ok_ || data_.points.empty()) return std::nullopt;
  if (open_literal_part_) {
    uint64_t outer = *open_literal_part_ + (data_.literal.runs.empty() ? literal_header_ : 0);
    if (outer > d_) return std::nullopt;
    data_.literal.add_part(outer, d_ - outer);
  }
  if (data_.codec == SeekCodec::kGpg && data_.literal.runs.empty()) return std::nullopt;
  data_.points.back().crc = crc_;
  data_.d_size = d_;
  return std::move(data_);
}

// ---------------------------------------------------------------------------------------------
// Decoding from a point

namespace {

constexpr size_t kStoredPiece = 256 * 1024;

// D, checked segment by segment against the points' CRCs, then mapped to T for the sink.
class SegmentSink {
 public:
  SegmentSink(const SeekData& seek, size_t point, const ByteSink& sink, const std::string& name)
      : seek_(seek), point_(point), sink_(sink), name_(name), start_(seek.points[point].out) {}
  ~SegmentSink() { OPENSSL_cleanse(buffer_.data(), buffer_.size()); }
  SegmentSink(const SegmentSink&) = delete;
  SegmentSink& operator=(const SegmentSink&) = delete;

  bool done() const { return start_ >= seek_.d_size; }

  Status write(std::string_view d) {
    while (!d.empty() && !done()) {
      uint64_t end = segment_end();
      size_t take =
          static_cast<size_t>(std::min<uint64_t>(d.size(), end - start_ - buffer_.size()));
      buffer_.append(d.substr(0, take));
      d.remove_prefix(take);
      if (start_ + buffer_.size() == end) {
        if (auto s = flush_segment(); !s) return s;
      }
    }
    return {};
  }

  // The decoder ran out of input.
  Status finish() {
    if (!done()) {
      return error(ErrorKind::kCorruption, "{}: decoded data ends early (at {} of {})", name_,
                   start_ + buffer_.size(), seek_.d_size);
    }
    return {};
  }

 private:
  uint64_t segment_end() const {
    return point_ + 1 < seek_.points.size() ? seek_.points[point_ + 1].out : seek_.d_size;
  }

  Status flush_segment() {
    uint32_t crc =
        crc32_gzip_refl(0, reinterpret_cast<const unsigned char*>(buffer_.data()), buffer_.size());
    if (crc != seek_.points[point_].crc) {
      return error(ErrorKind::kCorruption, "{}: decoded data at {} does not match its seek index",
                   name_, start_);
    }
    // T within [start_, end): the literal packet's parts.
    const uint64_t end = start_ + buffer_.size();
    uint64_t d = start_;
    while (d < end) {
      uint64_t from = d;
      uint64_t to = end;
      if (!seek_.literal.runs.empty()) {
        uint64_t t = seek_.literal.inner_at(d);
        if (t >= seek_.literal.inner_size()) break;
        from = seek_.literal.outer_of(t);
        if (from >= end) break;
        to = std::min(end, from + part_rest(seek_.literal, t));
      }
      std::string_view piece(buffer_.data() + (from - start_), to - from);
      if (auto s = sink_(piece); !s) return s;
      d = to;
    }
    OPENSSL_cleanse(buffer_.data(), buffer_.size());
    buffer_.clear();
    start_ = end;
    ++point_;
    return {};
  }

  const SeekData& seek_;
  size_t point_;
  const ByteSink& sink_;
  const std::string& name_;
  uint64_t start_;      // D offset of buffer_'s first octet
  std::string buffer_;  // D of the current segment so far
};

// Stored bytes read in pieces from `offset` on.
class StoredStream {
 public:
  StoredStream(const StoredReader& read, uint64_t offset) : read_(read), offset_(offset) {}

  // The next piece (empty at the end of the object).
  Result<std::string> next() {
    if (at_end_) return std::string();
    // Up to the next piece boundary: a reader that checks chunks reads whole ones.
    size_t length = kStoredPiece - static_cast<size_t>(offset_ % kStoredPiece);
    auto piece = read_(offset_, length);
    if (!piece) return piece;
    if (piece->size() < length) at_end_ = true;
    offset_ += piece->size();
    return piece;
  }

 private:
  const StoredReader& read_;
  uint64_t offset_;
  bool at_end_ = false;
};

// C from offset `c` on, taken out of the SEIPD's parts: stored pieces are read and their
// length headers left out.
class CStream {
 public:
  CStream(const SeekData& seek, const StoredReader& read, uint64_t c)
      : seek_(seek), read_(read), c_(c) {}

  // The next C octets (empty at the end).
  Result<std::string> next() {
    std::string out;
    while (out.empty()) {
      if (c_ >= seek_.seipd.inner_size()) return out;
      uint64_t stored = seek_.seipd.outer_of(c_);
      if (stored < piece_offset_ || stored >= piece_offset_ + piece_.size()) {
        size_t length = kStoredPiece - static_cast<size_t>(stored % kStoredPiece);
        auto piece = read_(stored, length);
        if (!piece) return piece;
        if (piece->empty()) return out;
        piece_ = std::move(*piece);
        piece_offset_ = stored;
      }
      // From here to the end of the part or of the piece, whichever is first.
      uint64_t rest =
          std::min<uint64_t>(part_rest(seek_.seipd, c_), piece_offset_ + piece_.size() - stored);
      out.assign(piece_, static_cast<size_t>(stored - piece_offset_), static_cast<size_t>(rest));
      c_ += rest;
      // Several parts of one piece go out together.
      while (c_ < seek_.seipd.inner_size() && out.size() < kStoredPiece) {
        uint64_t s = seek_.seipd.outer_of(c_);
        if (s < piece_offset_ || s >= piece_offset_ + piece_.size()) break;
        uint64_t r =
            std::min<uint64_t>(part_rest(seek_.seipd, c_), piece_offset_ + piece_.size() - s);
        out.append(piece_, static_cast<size_t>(s - piece_offset_), static_cast<size_t>(r));
        c_ += r;
      }
    }
    return out;
  }

 private:
  const SeekData& seek_;
  const StoredReader& read_;
  uint64_t c_;
  std::string piece_;
  uint64_t piece_offset_ = 0;
};

// Feeds Z (from the octet at bit in_bits / 8 on) to a resumed inflater, D to `out`.
class ZFeeder {
 public:
  ZFeeder(const SeekPoint& p, SegmentSink& out) : p_(p), out_(out) {}

  Status feed(std::string_view z) {
    if (z.empty() || out_.done() || inflater_.finished()) return {};
    if (!started_) {
      started_ = true;
      uint8_t window[kDeflateWindow];
      auto n = inflate_window(p_, window);
      if (!n) return std::unexpected(n.error());
      auto s =
          inflater_.resume(static_cast<unsigned>(p_.in_bits % 8), static_cast<uint8_t>(z.front()),
                           std::string_view(reinterpret_cast<char*>(window), *n));
      OPENSSL_cleanse(window, sizeof window);
      if (!s) return s;
      z.remove_prefix(1);
    }
    auto consumed = inflater_.feed(z, [&](std::string_view d) { return out_.write(d); });
    if (!consumed) return std::unexpected(consumed.error());
    return {};
  }

  bool done() const { return out_.done() || inflater_.finished(); }

 private:
  const SeekPoint& p_;
  SegmentSink& out_;
  Inflater inflater_{Inflater::Format::kRaw};
  bool started_ = false;
};

Status corrupt(const std::string& name, const Error& e) {
  if (e.kind == ErrorKind::kCorruption) {
    return error(ErrorKind::kCorruption, "{}: damaged data ({})", name, e.message);
  }
  return std::unexpected(e);
}

Status decode_plain_from(const SeekData& seek, size_t point, const StoredReader& read,
                         SegmentSink& out) {
  StoredStream in(read, seek.points[point].out);
  while (!out.done()) {
    auto piece = in.next();
    if (!piece) return std::unexpected(piece.error());
    if (piece->empty()) break;
    if (auto s = out.write(*piece); !s) return s;
  }
  return out.finish();
}

Status decode_gzip_from(const SeekData& seek, size_t point, const StoredReader& read,
                        SegmentSink& out, const std::string& name) {
  const SeekPoint& p = seek.points[point];
  StoredStream in(read, p.in_bits / 8);
  ZFeeder z(p, out);
  while (!z.done()) {
    auto piece = in.next();
    if (!piece) return std::unexpected(piece.error());
    if (piece->empty()) break;
    if (auto s = z.feed(*piece); !s) return corrupt(name, s.error());
  }
  return out.finish();
}

Status decode_gpg_from(const SeekData& seek, size_t point, const StoredReader& read,
                       SegmentSink& out, const std::string& name) {
  const SeekPoint& p = seek.points[point];
  const EVP_CIPHER* cipher = ecb_cipher(seek.cipher);
  if (cipher == nullptr || seek.session_key.size() != cipher_key_size(seek.cipher)) {
    return error(ErrorKind::kCorruption, "{}: unusable seek index (cipher {})", name, seek.cipher);
  }
  // Where C must be decrypted from, and the whole block it lies in.
  const uint64_t c = seek.compression != 0 ? seek.z_base + p.in_bits / 8 : p.out;
  const uint64_t block = c - c % kCfbBlockSize;
  uint8_t iv[kCfbBlockSize] = {};
  CStream in(seek, read, block >= kCfbBlockSize ? block - kCfbBlockSize : 0);
  std::string pending;  // C read but not yet decrypted
  if (block >= kCfbBlockSize) {
    while (pending.size() < kCfbBlockSize) {
      auto piece = in.next();
      if (!piece) return std::unexpected(piece.error());
      if (piece->empty()) return error(ErrorKind::kCorruption, "{}: truncated", name);
      pending += *piece;
    }
    std::memcpy(iv, pending.data(), kCfbBlockSize);
    pending.erase(0, kCfbBlockSize);
  }
  CfbDecryptor cfb;
  if (!cfb.init(cipher, seek.session_key.data(), iv)) {
    return error(ErrorKind::kIoError, "{}: decryption failed", name);
  }
  uint64_t skip = c - block;  // plaintext octets before the point
  std::optional<ZFeeder> z;
  if (seek.compression != 0) z.emplace(p, out);
  std::string plain;
  auto done = [&] { return z ? z->done() : out.done(); };
  while (!done()) {
    if (pending.empty()) {
      auto piece = in.next();
      if (!piece) return std::unexpected(piece.error());
      if (piece->empty()) break;
      pending = std::move(*piece);
    }
    plain.resize(pending.size());
    if (!cfb.decrypt(reinterpret_cast<const uint8_t*>(pending.data()),
                     reinterpret_cast<uint8_t*>(plain.data()), pending.size())) {
      return error(ErrorKind::kIoError, "{}: decryption failed", name);
    }
    pending.clear();
    std::string_view view = plain;
    size_t k = static_cast<size_t>(std::min<uint64_t>(skip, view.size()));
    view.remove_prefix(k);
    skip -= k;
    Status s = z ? z->feed(view) : out.write(view);
    if (!s) {
      OPENSSL_cleanse(plain.data(), plain.size());
      return corrupt(name, s.error());
    }
  }
  OPENSSL_cleanse(plain.data(), plain.size());
  return out.finish();
}

}  // namespace

Status decode_from_point(const SeekData& seek, size_t point, const StoredReader& read,
                         const ByteSink& sink, const std::string& name) {
  if (point >= seek.points.size()) {
    return error(ErrorKind::kInvalidArgument, "{}: no seek point {}", name, point);
  }
  SegmentSink out(seek, point, sink, name);
  switch (seek.codec) {
    case SeekCodec::kPlain:
      return decode_plain_from(seek, point, read, out);
    case SeekCodec::kGzip:
      return decode_gzip_from(seek, point, read, out, name);
    case SeekCodec::kGpg:
      return decode_gpg_from(seek, point, read, out, name);
  }
  return error(ErrorKind::kInvalidArgument, "{}: unknown codec", name);
}

}  // namespace dupfs::chain

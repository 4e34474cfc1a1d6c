#include "chain/codec/inflate.h"

#include <isa-l/igzip_lib.h>
#include <openssl/crypto.h>
#include <zlib.h>

#include <algorithm>
#include <limits>

#include "chain/codec/seek_builder.h"

namespace dupfs::chain {
namespace {

constexpr size_t kOutputSize = 256 * 1024;

uint32_t crc_flag(Inflater::Format f) {
  switch (f) {
    case Inflater::Format::kRaw:
      return ISAL_DEFLATE;
    case Inflater::Format::kZlib:
      return ISAL_ZLIB;
    case Inflater::Format::kGzip:
      return ISAL_GZIP;
  }
  return ISAL_DEFLATE;
}

const char* describe(int rc) {
  switch (rc) {
    case ISAL_INVALID_BLOCK:
      return "invalid deflate block";
    case ISAL_INVALID_SYMBOL:
      return "invalid deflate symbol";
    case ISAL_INVALID_LOOKBACK:
      return "invalid lookback distance";
    case ISAL_INVALID_WRAPPER:
      return "invalid gzip/zlib header";
    case ISAL_UNSUPPORTED_METHOD:
      return "unsupported compression method";
    case ISAL_INCORRECT_CHECKSUM:
      return "checksum mismatch";
    case ISAL_NEED_DICT:
      return "a preset dictionary is needed";
    default:
      return "inflate failed";
  }
}

int zlib_window_bits(Inflater::Format f) {
  switch (f) {
    case Inflater::Format::kRaw:
      return -15;
    case Inflater::Format::kZlib:
      return 15;
    case Inflater::Format::kGzip:
      return 15 + 16;
  }
  return -15;
}

}  // namespace

Inflater::Inflater(Format format, SeekBuilder* seek)
    : format_(format), seek_(seek), out_(std::make_unique_for_overwrite<uint8_t[]>(kOutputSize)) {
  if (seek_ != nullptr) {
    zs_ = std::make_unique<z_stream>();
  } else {
    state_ = std::make_unique<inflate_state>();
  }
  reset();
}

Inflater::~Inflater() {
  if (state_) OPENSSL_cleanse(state_.get(), sizeof(inflate_state));
  if (zs_) inflateEnd(zs_.get());
  OPENSSL_cleanse(out_.get(), kOutputSize);
}

void Inflater::reset() {
  if (zs_) {
    if (zs_->state != nullptr) inflateEnd(zs_.get());
    *zs_ = z_stream{};
    // Only fails without memory; the first inflate() then reports it.
    inflateInit2(zs_.get(), zlib_window_bits(format_));
    zlib_finished_ = false;
    return;
  }
  isal_inflate_init(state_.get());
  state_->crc_flag = crc_flag(format_);
}

Status Inflater::resume(unsigned bits, uint8_t octet, std::string_view window) {
  if (!state_ || format_ != Format::kRaw || bits > 7 || window.size() > 32 * 1024) {
    return error(ErrorKind::kInvalidArgument, "cannot resume this inflater");
  }
  reset();
  if (!window.empty() &&
      isal_inflate_set_dict(state_.get(),
                            reinterpret_cast<uint8_t*>(const_cast<char*>(window.data())),
                            static_cast<uint32_t>(window.size())) != COMP_OK) {
    return error(ErrorKind::kCorruption, "bad inflate window");
  }
  // igzip's bit buffer, filled from the low end as it reads octets (what the octet's consumed
  // low bits were is of no interest any more).
  state_->read_in = uint64_t{octet} >> bits;
  state_->read_in_length = static_cast<int32_t>(8 - bits);
  return {};
}

bool Inflater::finished() const {
  return zs_ ? zlib_finished_ : state_->block_state == ISAL_BLOCK_FINISH;
}

Result<size_t> Inflater::feed_zlib(std::string_view in, const Output& out) {
  z_stream& zs = *zs_;
  size_t consumed = 0;
  if (format_ == Format::kRaw && zs.total_in == 0 && zs.total_out == 0 && seek_->point_due(0)) {
    seek_->point(0, {});  // a raw stream starts with a block
  }
  while (!zlib_finished_) {
    const size_t chunk =
        std::min<size_t>(in.size() - consumed, std::numeric_limits<uint32_t>::max());
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data() + consumed));
    zs.avail_in = static_cast<uInt>(chunk);
    zs.next_out = out_.get();
    zs.avail_out = kOutputSize;
    // Z_BLOCK: return at every block boundary, where data_type tells the bit position.
    int rc = inflate(&zs, Z_BLOCK);
    consumed += chunk - zs.avail_in;
    if (rc == Z_STREAM_END) {
      zlib_finished_ = true;
    } else if (rc == Z_BUF_ERROR) {
      // No progress possible: the input is used up.
    } else if (rc != Z_OK) {
      return error(ErrorKind::kCorruption, "{}", zs.msg != nullptr ? zs.msg : "inflate failed");
    }
    size_t produced = kOutputSize - zs.avail_out;
    if (produced > 0) {
      std::string_view piece(reinterpret_cast<char*>(out_.get()), produced);
      seek_->output(piece);
      if (auto s = out(piece); !s) return std::unexpected(s.error());
    }
    // 128: just after a block (or the header); 64: in the last block, nothing follows.
    if (!zlib_finished_ && (zs.data_type & 128) != 0 && (zs.data_type & 64) == 0 &&
        seek_->point_due(zs.total_in)) {
      uint8_t window[32 * 1024];
      uInt length = 0;
      if (inflateGetDictionary(&zs, window, &length) != Z_OK) seek_->fail();
      seek_->point(uint64_t{zs.total_in} * 8 - static_cast<uint64_t>(zs.data_type & 7),
                   std::string_view(reinterpret_cast<char*>(window), length));
      OPENSSL_cleanse(window, length);
    }
    // Stopped at a block boundary, zlib may have more to do with no more input (the end of
    // the last block is only reported by the next call); else all input consumed and room
    // left in the output mean it is done with this input.
    if (rc == Z_BUF_ERROR ||
        (consumed == in.size() && zs.avail_out != 0 && (zs.data_type & 128) == 0)) {
      break;
    }
  }
  return consumed;
}

Result<size_t> Inflater::feed(std::string_view in, const Output& out) {
  if (zs_) return feed_zlib(in, out);
  size_t consumed = 0;
  while (!finished()) {
    const size_t chunk =
        std::min<size_t>(in.size() - consumed, std::numeric_limits<uint32_t>::max());
    state_->next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(in.data() + consumed));
    state_->avail_in = static_cast<uint32_t>(chunk);
    state_->next_out = out_.get();
    state_->avail_out = kOutputSize;
    int rc = isal_inflate(state_.get());
    consumed += chunk - state_->avail_in;
    if (rc < 0 || rc == ISAL_NEED_DICT) return error(ErrorKind::kCorruption, "{}", describe(rc));
    size_t produced = kOutputSize - state_->avail_out;
    if (produced > 0) {
      if (auto s = out(std::string_view(reinterpret_cast<char*>(out_.get()), produced)); !s) {
        return std::unexpected(s.error());
      }
    }
    // With room left in the output, all input consumed means all output produced.
    if (consumed == in.size() && state_->avail_out != 0) break;
  }
  if (finished() && state_->read_in_length >= 8) {
    // igzip reads ahead: whole bytes left in its bit buffer follow the stream. Give them back
    // when they came from this call; from an earlier one they are lost, so fail.
    size_t unread = static_cast<size_t>(state_->read_in_length) / 8;
    if (unread > consumed) {
      return error(ErrorKind::kCorruption, "data after the end of the compressed stream");
    }
    consumed -= unread;
    state_->read_in = 0;
    state_->read_in_length = 0;
  }
  return consumed;
}

}  // namespace dupfs::chain

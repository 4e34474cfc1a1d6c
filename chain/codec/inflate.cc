#include "chain/codec/inflate.h"

#include <isa-l/igzip_lib.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <limits>

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

}  // namespace

Inflater::Inflater(Format format)
    : format_(format),
      state_(std::make_unique<inflate_state>()),
      out_(std::make_unique_for_overwrite<uint8_t[]>(kOutputSize)) {
  reset();
}

Inflater::~Inflater() {
  OPENSSL_cleanse(state_.get(), sizeof(inflate_state));
  OPENSSL_cleanse(out_.get(), kOutputSize);
}

void Inflater::reset() {
  isal_inflate_init(state_.get());
  state_->crc_flag = crc_flag(format_);
}

bool Inflater::finished() const { return state_->block_state == ISAL_BLOCK_FINISH; }

Result<size_t> Inflater::feed(std::string_view in, const Output& out) {
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

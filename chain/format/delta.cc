#include "chain/format/delta.h"

#include <algorithm>
#include <string>

namespace dupfs::chain {

namespace {

constexpr uint32_t kDeltaMagic = 0x72730236;
// Nothing duplicity stores is larger; anything beyond is hostile input.
constexpr uint64_t kMaxLength = uint64_t{1} << 50;

// Sequential reads of a delta through a small buffer.
class DeltaCursor {
 public:
  DeltaCursor(const DeltaReader& read, uint64_t length) : read_(read), length_(length) {}
  uint64_t pos() const { return pos_; }
  Result<uint64_t> take(int width) {
    uint64_t v = 0;
    for (int i = 0; i < width; ++i) {
      auto b = byte();
      if (!b) return std::unexpected(b.error());
      v = (v << 8) | *b;
    }
    return v;
  }
  Result<uint8_t> byte() {
    if (at_ == buf_.size()) {
      if (pos_ >= length_) return error(ErrorKind::kCorruption, "delta is truncated");
      buf_.resize(std::min<uint64_t>(64 * 1024, length_ - pos_));
      auto n = read_(pos_, buf_.data(), buf_.size());
      if (!n) return std::unexpected(n.error());
      if (*n == 0) return error(ErrorKind::kCorruption, "delta is truncated");
      buf_.resize(*n);
      at_ = 0;
    }
    ++pos_;
    return static_cast<uint8_t>(buf_[at_++]);
  }
  // Skips literal bytes without copying them.
  Status skip(uint64_t n) {
    if (n > length_ - pos_) return error(ErrorKind::kCorruption, "delta literal is truncated");
    uint64_t buffered = buf_.size() - at_;
    if (n <= buffered) {
      at_ += n;
    } else {
      at_ = buf_.size();
    }
    pos_ += n;
    if (n > buffered) {
      // Continue reading from the new position next time.
      buf_.clear();
      at_ = 0;
    }
    return {};
  }

 private:
  const DeltaReader& read_;
  uint64_t length_;
  uint64_t pos_ = 0;
  std::string buf_;
  size_t at_ = 0;
};

int width_of(int code) { return 1 << code; }  // 0,1,2,3 -> 1,2,4,8 bytes

}  // namespace

Result<std::vector<DeltaCommand>> parse_delta(const DeltaReader& read, uint64_t length,
                                              uint64_t basis_size) {
  DeltaCursor in(read, length);
  auto magic = in.take(4);
  if (!magic) return std::unexpected(magic.error());
  if (*magic != kDeltaMagic) {
    return error(ErrorKind::kCorruption, "not a librsync delta (magic {:#x})", *magic);
  }
  std::vector<DeltaCommand> out;
  uint64_t produced = 0;
  for (;;) {
    auto op = in.byte();
    if (!op) return std::unexpected(op.error());
    if (*op == 0) break;  // END
    if (*op <= 0x44) {
      uint64_t len = *op;
      if (*op >= 0x41) {
        auto n = in.take(width_of(*op - 0x41));
        if (!n) return std::unexpected(n.error());
        len = *n;
      }
      if (len == 0 || len > kMaxLength) {
        return error(ErrorKind::kCorruption, "delta literal of absurd length {}", len);
      }
      uint64_t src = in.pos();
      if (auto st = in.skip(len); !st) return std::unexpected(st.error());
      if (!out.empty() && out.back().literal && out.back().src + out.back().length == src) {
        out.back().length += len;  // adjacent literals: one command
      } else {
        out.push_back(DeltaCommand{produced, len, true, src});
      }
      produced += len;
    } else if (*op <= 0x54) {
      int code = *op - 0x45;
      auto off = in.take(width_of(code / 4));
      if (!off) return std::unexpected(off.error());
      auto len = in.take(width_of(code % 4));
      if (!len) return std::unexpected(len.error());
      if (*len == 0 || *len > kMaxLength || *off > basis_size || *len > basis_size - *off) {
        return error(ErrorKind::kCorruption, "delta copies {} bytes at {} from a basis of {} bytes",
                     *len, *off, basis_size);
      }
      if (!out.empty() && !out.back().literal && out.back().src + out.back().length == *off) {
        out.back().length += *len;
      } else {
        out.push_back(DeltaCommand{produced, *len, false, *off});
      }
      produced += *len;
    } else {
      return error(ErrorKind::kCorruption, "unknown delta command {:#x}", *op);
    }
    if (produced > kMaxLength) return error(ErrorKind::kCorruption, "delta output too large");
  }
  return out;
}

}  // namespace dupfs::chain

#include "chain/codec/deflate.h"

#include <isa-l/igzip_lib.h>
#include <openssl/crypto.h>
#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <utility>

namespace dupfs::chain {
namespace {

constexpr size_t kOutputSize = size_t{256} << 10;
// Input is handed to the engines in pieces of at most this size (their counters are 32-bit).
constexpr size_t kMaxInput = size_t{1} << 30;
constexpr size_t kGzipHeaderSize = 10;

size_t isal_level_buffer_size(int level) {
  switch (level) {
    case 1:
      return ISAL_DEF_LVL1_DEFAULT;
    case 2:
      return ISAL_DEF_LVL2_DEFAULT;
    case 3:
      return ISAL_DEF_LVL3_DEFAULT;
    default:
      return 0;
  }
}

// zlib's allocations, wiped when freed: its window and hash chains hold recent input.
constexpr size_t kAllocHeader = 16;  // keeps malloc's alignment

voidpf wiping_alloc(voidpf, uInt items, uInt size) {
  const size_t n = size_t{items} * size;
  auto* base = static_cast<unsigned char*>(std::malloc(n + kAllocHeader));
  if (base == nullptr) return Z_NULL;
  std::memcpy(base, &n, sizeof n);
  return base + kAllocHeader;
}

void wiping_free(voidpf, voidpf address) {
  if (address == nullptr) return;
  auto* base = static_cast<unsigned char*>(address) - kAllocHeader;
  size_t n = 0;
  std::memcpy(&n, base, sizeof n);
  OPENSSL_cleanse(address, n);
  std::free(base);
}

}  // namespace

bool valid_deflate_level(DeflateLevel level) {
  switch (level.engine) {
    case DeflateEngine::kIsal:
      return level.level >= 0 && level.level <= ISAL_DEF_MAX_LEVEL;
    case DeflateEngine::kZlib:
      return level.level >= 0 && level.level <= 9;
  }
  return false;
}

class Deflater::Impl {
 public:
  Impl(Format format, DeflateLevel level, Output out, std::optional<uint32_t> gzip_mtime)
      : format_(format),
        level_(level),
        out_(std::move(out)),
        buffer_(std::make_unique<uint8_t[]>(kOutputSize)) {
    if (!valid_deflate_level(level)) {
      error_ = Error{ErrorKind::kInvalidArgument,
                     fmt::format("no deflate level {} in {}", level.level,
                                 level.engine == DeflateEngine::kIsal ? "ISA-L" : "zlib")};
      return;
    }
    const uint32_t mtime = gzip_mtime ? *gzip_mtime : static_cast<uint32_t>(std::time(nullptr));
    if (level.engine == DeflateEngine::kIsal) {
      init_isal(mtime);
    } else {
      init_zlib(mtime);
    }
  }

  ~Impl() {
    if (isal_) {
      OPENSSL_cleanse(isal_.get(), sizeof(isal_zstream));
      if (level_buffer_) OPENSSL_cleanse(level_buffer_.get(), level_buffer_size_);
    }
    if (zlib_) deflateEnd(zlib_.get());  // wiped by wiping_free
    OPENSSL_cleanse(buffer_.get(), kOutputSize);
  }

  Status write(std::string_view data) {
    if (error_) return std::unexpected(*error_);
    if (finished_) return error(ErrorKind::kInvalidArgument, "deflate: write after finish");
    return remember(run(reinterpret_cast<const uint8_t*>(data.data()), data.size(), false));
  }

  Status finish() {
    if (error_) return std::unexpected(*error_);
    if (finished_) return {};
    Status s = run(nullptr, 0, true);
    if (s && used_ > 0) s = emit();
    finished_ = static_cast<bool>(s);
    return remember(std::move(s));
  }

  uint64_t bytes_in() const { return bytes_in_; }
  uint64_t bytes_out() const { return bytes_out_; }

 private:
  void init_isal(uint32_t mtime) {
    isal_ = std::make_unique<isal_zstream>();
    isal_deflate_init(isal_.get());
    isal_->level = static_cast<uint32_t>(level_.level);
    level_buffer_size_ = isal_level_buffer_size(level_.level);
    if (level_buffer_size_ != 0) {
      level_buffer_ = std::make_unique<uint8_t[]>(level_buffer_size_);
      isal_->level_buf = level_buffer_.get();
      isal_->level_buf_size = static_cast<uint32_t>(level_buffer_size_);
    }
    switch (format_) {
      case Format::kRaw:
        isal_->gzip_flag = IGZIP_DEFLATE;
        break;
      case Format::kZlib:
        isal_->gzip_flag = IGZIP_ZLIB;  // header 78 01: "fastest"
        break;
      case Format::kGzip: {
        // igzip's own header has MTIME 0: ours, and igzip writes the trailer.
        isal_->gzip_flag = IGZIP_GZIP_NO_HDR;
        const uint8_t header[kGzipHeaderSize] = {0x1f,
                                                 0x8b,
                                                 8,  // deflate
                                                 0,  // FLG
                                                 static_cast<uint8_t>(mtime),
                                                 static_cast<uint8_t>(mtime >> 8),
                                                 static_cast<uint8_t>(mtime >> 16),
                                                 static_cast<uint8_t>(mtime >> 24),
                                                 0,  // XFL
                                                 255};
        std::memcpy(buffer_.get(), header, kGzipHeaderSize);
        used_ = kGzipHeaderSize;
        break;
      }
    }
  }

  void init_zlib(uint32_t mtime) {
    zlib_ = std::make_unique<z_stream>();
    zlib_->zalloc = wiping_alloc;
    zlib_->zfree = wiping_free;
    zlib_->opaque = nullptr;
    const int window_bits = format_ == Format::kRaw ? -15 : format_ == Format::kZlib ? 15 : 31;
    if (deflateInit2(zlib_.get(), level_.level, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
      zlib_.reset();
      error_ = Error{ErrorKind::kIoError, "deflate: zlib initialisation failed (out of memory)"};
      return;
    }
    if (format_ == Format::kGzip) {
      // zlib writes FLG 0 for this header, and the XFL Python writes (4 at level 1, 2 at 9).
      gzip_header_ = std::make_unique<gz_header>();
      gzip_header_->time = mtime;
      gzip_header_->os = 255;
      deflateSetHeader(zlib_.get(), gzip_header_.get());
    }
  }

  Status remember(Status s) {
    if (!s) error_ = s.error();
    return s;
  }

  Status emit() {
    const size_t n = std::exchange(used_, 0);
    bytes_out_ += n;
    return out_(std::string_view(reinterpret_cast<const char*>(buffer_.get()), n));
  }

  // Compresses `n` bytes (none when ending), ending the stream when `end`.
  Status run(const uint8_t* p, size_t n, bool end) {
    do {
      const size_t chunk = std::min(n, kMaxInput);
      const bool last = end && chunk == n;
      Status s = isal_ ? run_isal(p, chunk, last) : run_zlib(p, chunk, last);
      if (!s) return s;
      bytes_in_ += chunk;
      p += chunk;
      n -= chunk;
    } while (n > 0);
    return {};
  }

  Status run_isal(const uint8_t* p, size_t n, bool end) {
    if (n == 0 && !end) return {};
    isal_zstream& z = *isal_;
    z.next_in = const_cast<uint8_t*>(p);
    z.avail_in = static_cast<uint32_t>(n);
    z.end_of_stream = end ? 1 : 0;
    for (;;) {
      z.next_out = buffer_.get() + used_;
      z.avail_out = static_cast<uint32_t>(kOutputSize - used_);
      const uint32_t in_before = z.avail_in;
      const size_t used_before = used_;
      const int rc = isal_deflate(&z);
      used_ = kOutputSize - z.avail_out;
      if (rc != COMP_OK) return error(ErrorKind::kIoError, "deflate: ISA-L error {}", rc);
      if (used_ == kOutputSize) {
        if (auto s = emit(); !s) return s;
        continue;
      }
      // Room left in the output: all input taken, or (at the end) the stream complete.
      if (end ? z.internal_state.state == ZSTATE_END : z.avail_in == 0) return {};
      if (z.avail_in == in_before && used_ == used_before) {
        return error(ErrorKind::kIoError, "deflate: ISA-L made no progress");
      }
    }
  }

  Status run_zlib(const uint8_t* p, size_t n, bool end) {
    if (n == 0 && !end) return {};
    z_stream& z = *zlib_;
    z.next_in = const_cast<Bytef*>(p);
    z.avail_in = static_cast<uInt>(n);
    const int flush = end ? Z_FINISH : Z_NO_FLUSH;
    for (;;) {
      z.next_out = buffer_.get() + used_;
      z.avail_out = static_cast<uInt>(kOutputSize - used_);
      const int rc = deflate(&z, flush);
      used_ = kOutputSize - z.avail_out;
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
        return error(ErrorKind::kIoError, "deflate: zlib error {}", rc);
      }
      if (used_ == kOutputSize) {
        if (auto s = emit(); !s) return s;
        continue;
      }
      if (end ? rc == Z_STREAM_END : z.avail_in == 0) return {};
      if (rc == Z_BUF_ERROR) return error(ErrorKind::kIoError, "deflate: zlib made no progress");
    }
  }

  const Format format_;
  const DeflateLevel level_;
  Output out_;
  std::unique_ptr<uint8_t[]> buffer_;  // output being collected
  size_t used_ = 0;

  std::unique_ptr<isal_zstream> isal_;
  std::unique_ptr<uint8_t[]> level_buffer_;
  size_t level_buffer_size_ = 0;

  std::unique_ptr<z_stream> zlib_;
  std::unique_ptr<gz_header> gzip_header_;

  std::optional<Error> error_;
  bool finished_ = false;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
};

Deflater::Deflater(Format format, DeflateLevel level, Output out,
                   std::optional<uint32_t> gzip_mtime)
    : impl_(std::make_unique<Impl>(format, level, std::move(out), gzip_mtime)) {}

Deflater::~Deflater() = default;

Status Deflater::write(std::string_view data) { return impl_->write(data); }

Status Deflater::finish() { return impl_->finish(); }

uint64_t Deflater::bytes_in() const { return impl_->bytes_in(); }

uint64_t Deflater::bytes_out() const { return impl_->bytes_out(); }

}  // namespace dupfs::chain

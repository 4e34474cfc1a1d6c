// OpenPGP encryption with a passphrase: see openpgp_encrypt.h.
//
// Three stages, each pushing into the next:
//   literal   frames the plaintext as a literal data packet with partial body lengths;
//   inner     deflates that packet into the Compressed packet's body (or passes it on);
//   seipd     hashes the SEIPD plaintext for the MDC, encrypts it (CFB, OpenSSL) into the
//             current partial body chunk and hands full chunks to the sink.
// Partial body lengths need the length before the data, so each framing stage holds one
// chunk: a full chunk goes out as a partial length, whatever is held at finish() as the
// definite length that ends the packet (possibly 0). A packet that never filled its first
// chunk gets a definite length only (RFC 4880 wants the first partial length >= 512).
#include "chain/codec/openpgp_encrypt.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <ctime>
#include <span>
#include <utility>
#include <vector>

#include "chain/codec/s2k.h"

namespace dupfs::chain {
namespace {

constexpr int kSeipdExponent = 18;
constexpr size_t kSeipdChunk = size_t{1} << kSeipdExponent;
constexpr int kLiteralExponent = 16;
constexpr size_t kLiteralChunk = size_t{1} << kLiteralExponent;
// Room before a chunk for its header: a tag octet and up to five length octets.
constexpr size_t kHeadroom = 6;
constexpr size_t kBlockSize = 16;
constexpr size_t kPrefixSize = kBlockSize + 2;
constexpr size_t kSha1Size = 20;
constexpr size_t kSaltSize = 8;
constexpr int kS2kIteratedSalted = 3;
constexpr int kHashSha1 = 2;

constexpr uint8_t kSeipdTag = 0xc0 | 18;
constexpr uint8_t kLiteralTag = 0xc0 | 11;
// Old format, tag 8, indeterminate length; then algorithm 1 (ZIP).
constexpr uint8_t kCompressedHeader[] = {0x80 | (8 << 2) | 3, 1};
constexpr uint8_t kMdcHeader[] = {0xd3, 0x14};

const EVP_CIPHER* cfb_cipher(int algo) {
  switch (algo) {
    case 7:
      return EVP_aes_128_cfb128();
    case 8:
      return EVP_aes_192_cfb128();
    case 9:
      return EVP_aes_256_cfb128();
    default:
      return nullptr;
  }
}

// A new-format definite body length (RFC 4880 §4.2.2.1-3): writes 1, 2 or 5 octets.
size_t put_length(size_t n, uint8_t* out) {
  if (n < 192) {
    out[0] = static_cast<uint8_t>(n);
    return 1;
  }
  if (n < 8384) {
    n -= 192;
    out[0] = static_cast<uint8_t>(192 + (n >> 8));
    out[1] = static_cast<uint8_t>(n);
    return 2;
  }
  out[0] = 255;
  for (int i = 0; i < 4; ++i) out[1 + i] = static_cast<uint8_t>(n >> (24 - 8 * i));
  return 5;
}

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

}  // namespace

uint8_t s2k_count_octet(uint32_t count) {
  for (unsigned octet = 0; octet < 255; ++octet) {
    if (s2k_count(static_cast<uint8_t>(octet)) >= count) return static_cast<uint8_t>(octet);
  }
  return 255;
}

class SymmetricEncryptor::Impl {
 public:
  Impl(std::string_view passphrase, ByteSink sink, SymmetricEncryptOptions options)
      : passphrase_(passphrase.begin(), passphrase.end()),
        sink_(std::move(sink)),
        options_(options) {}

  ~Impl() {
    OPENSSL_cleanse(passphrase_.data(), passphrase_.size());
    if (literal_) OPENSSL_cleanse(literal_.get(), kLiteralChunk);
    // The deflater wipes itself, the cipher context its key schedule.
  }

  Status write(std::string_view plaintext) {
    if (error_) return std::unexpected(*error_);
    if (finished_) return error(ErrorKind::kInvalidArgument, "encrypt: write after finish");
    if (!started_) {
      if (auto s = remember(start()); !s) return s;
    }
    bytes_in_ += plaintext.size();
    return remember(
        literal_write(reinterpret_cast<const uint8_t*>(plaintext.data()), plaintext.size()));
  }

  Status finish() {
    if (error_) return std::unexpected(*error_);
    if (finished_) return {};
    if (!started_) {
      if (auto s = remember(start()); !s) return s;
    }
    if (auto s = remember(end()); !s) return s;
    finished_ = true;
    return {};
  }

  uint64_t bytes_in() const { return bytes_in_; }
  uint64_t bytes_out() const { return bytes_out_; }

 private:
  Status remember(Status s) {
    if (!s) error_ = s.error();
    return s;
  }

  // The key, the SKESK, and the beginning of the SEIPD plaintext: prefix, Compressed header.
  Status start() {
    started_ = true;
    const SymmetricEncryptOptions& o = options_;
    if (o.compression && !valid_deflate_level(*o.compression)) {
      return error(ErrorKind::kInvalidArgument, "encrypt: no deflate level {} in {}",
                   o.compression->level,
                   o.compression->engine == DeflateEngine::kIsal ? "ISA-L" : "zlib");
    }
    const EVP_CIPHER* cipher = cfb_cipher(o.cipher_algo);
    if (cipher == nullptr) {
      return error(ErrorKind::kUnsupported, "encrypt: cipher algorithm {}", o.cipher_algo);
    }

    std::array<uint8_t, kSaltSize> salt{};
    uint8_t prefix[kPrefixSize];
    if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1 ||
        RAND_bytes(prefix, static_cast<int>(kBlockSize)) != 1) {
      return error(ErrorKind::kIoError, "encrypt: no random numbers");
    }
    prefix[kBlockSize] = prefix[kBlockSize - 2];
    prefix[kBlockSize + 1] = prefix[kBlockSize - 1];

    const uint8_t count = s2k_count_octet(o.s2k_count);
    const size_t key_size = static_cast<size_t>(EVP_CIPHER_get_key_length(cipher));
    std::array<uint8_t, EVP_MAX_KEY_LENGTH> key{};
    Status derived =
        derive_s2k_key(std::string_view(passphrase_.data(), passphrase_.size()), kS2kIteratedSalted,
                       kHashSha1, salt, count, std::span(key.data(), key_size));
    OPENSSL_cleanse(passphrase_.data(), passphrase_.size());
    passphrase_.clear();
    if (!derived) {
      OPENSSL_cleanse(key.data(), key.size());
      return error(ErrorKind::kIoError, "encrypt: key derivation failed: {}",
                   derived.error().message);
    }
    static constexpr uint8_t kZeroIv[kBlockSize] = {};
    cipher_.reset(EVP_CIPHER_CTX_new());
    const bool keyed = cipher_ != nullptr &&
                       EVP_EncryptInit_ex(cipher_.get(), cipher, nullptr, key.data(), kZeroIv) == 1;
    OPENSSL_cleanse(key.data(), key.size());
    if (!keyed) return error(ErrorKind::kIoError, "encrypt: cannot initialise the cipher");
    mdc_.reset(EVP_MD_CTX_new());
    if (!mdc_ || EVP_DigestInit_ex(mdc_.get(), EVP_sha1(), nullptr) != 1) {
      return error(ErrorKind::kIoError, "encrypt: cannot initialise SHA1");
    }

    // SKESK v4: old format, tag 3, 13 octets; no encrypted session key.
    uint8_t skesk[2 + 13] = {0x80 | (3 << 2),    13,       4, static_cast<uint8_t>(o.cipher_algo),
                             kS2kIteratedSalted, kHashSha1};
    std::memcpy(skesk + 6, salt.data(), kSaltSize);
    skesk[14] = count;
    if (auto s = deliver(skesk, sizeof skesk); !s) return s;

    chunk_ = std::make_unique_for_overwrite<uint8_t[]>(kHeadroom + kSeipdChunk);
    chunk_[kHeadroom] = 1;  // SEIPD version, not encrypted
    chunk_used_ = 1;
    Status prefixed = seipd_plain(prefix, kPrefixSize);
    OPENSSL_cleanse(prefix, sizeof prefix);
    if (!prefixed) return prefixed;

    if (o.compression) {
      if (auto s = seipd_plain(kCompressedHeader, sizeof kCompressedHeader); !s) return s;
      deflater_.emplace(Deflater::Format::kRaw, *o.compression, [this](std::string_view out) {
        return seipd_plain(reinterpret_cast<const uint8_t*>(out.data()), out.size());
      });
    }

    // Literal body: format 'b', file name length 0, date.
    const uint32_t date =
        o.literal_date ? *o.literal_date : static_cast<uint32_t>(std::time(nullptr));
    literal_ = std::make_unique_for_overwrite<uint8_t[]>(kLiteralChunk);
    const uint8_t head[6] = {'b',
                             0,
                             static_cast<uint8_t>(date >> 24),
                             static_cast<uint8_t>(date >> 16),
                             static_cast<uint8_t>(date >> 8),
                             static_cast<uint8_t>(date)};
    std::memcpy(literal_.get(), head, sizeof head);
    literal_used_ = sizeof head;
    return {};
  }

  // The rest of the literal packet, the end of the deflate stream, the MDC.
  Status end() {
    if (auto s = literal_chunk(literal_.get(), literal_used_, true); !s) return s;
    OPENSSL_cleanse(literal_.get(), literal_used_);
    literal_used_ = 0;
    if (deflater_) {
      if (auto s = deflater_->finish(); !s) return s;
      deflater_.reset();
    }
    if (auto s = seipd_plain(kMdcHeader, sizeof kMdcHeader); !s) return s;
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(mdc_.get(), digest, &length) != 1 || length != kSha1Size) {
      return error(ErrorKind::kIoError, "encrypt: SHA1 failed");
    }
    Status s = seipd_plain(digest, kSha1Size, false);
    OPENSSL_cleanse(digest, sizeof digest);
    if (!s) return s;
    return seipd_emit(true);
  }

  // Stage 1: the literal data packet's body, in chunks of kLiteralChunk.
  Status literal_write(const uint8_t* p, size_t n) {
    while (n > 0) {
      if (literal_used_ == 0 && n >= kLiteralChunk) {
        // A whole chunk as it is.
        if (auto s = literal_chunk(p, kLiteralChunk, false); !s) return s;
        p += kLiteralChunk;
        n -= kLiteralChunk;
        continue;
      }
      const size_t k = std::min(n, kLiteralChunk - literal_used_);
      std::memcpy(literal_.get() + literal_used_, p, k);
      literal_used_ += k;
      p += k;
      n -= k;
      if (literal_used_ == kLiteralChunk) {
        if (auto s = literal_chunk(literal_.get(), kLiteralChunk, false); !s) return s;
        literal_used_ = 0;
      }
    }
    return {};
  }

  Status literal_chunk(const uint8_t* p, size_t n, bool last) {
    uint8_t header[kHeadroom];
    size_t h = 0;
    if (!literal_started_) {
      header[h++] = kLiteralTag;
      literal_started_ = true;
    }
    if (last) {
      h += put_length(n, header + h);
    } else {
      header[h++] = 0xe0 | kLiteralExponent;
    }
    if (auto s = inner(header, h); !s) return s;
    return inner(p, n);
  }

  // Stage 2: the packets inside the SEIPD, compressed or not.
  Status inner(const uint8_t* p, size_t n) {
    if (n == 0) return {};
    if (deflater_) return deflater_->write(std::string_view(reinterpret_cast<const char*>(p), n));
    return seipd_plain(p, n);
  }

  // Stage 3: SEIPD plaintext, hashed for the MDC (but the MDC's own digest) and encrypted.
  Status seipd_plain(const uint8_t* p, size_t n, bool hash = true) {
    if (hash && EVP_DigestUpdate(mdc_.get(), p, n) != 1) {
      return error(ErrorKind::kIoError, "encrypt: SHA1 failed");
    }
    while (n > 0) {
      const size_t k = std::min(n, kSeipdChunk - chunk_used_);
      int written = 0;
      if (EVP_EncryptUpdate(cipher_.get(), chunk_.get() + kHeadroom + chunk_used_, &written, p,
                            static_cast<int>(k)) != 1 ||
          written != static_cast<int>(k)) {
        return error(ErrorKind::kIoError, "encrypt: encryption failed");
      }
      chunk_used_ += k;
      p += k;
      n -= k;
      if (chunk_used_ == kSeipdChunk) {
        if (auto s = seipd_emit(false); !s) return s;
      }
    }
    return {};
  }

  // The chunk held, with its header: a partial length, or the last (definite) one.
  Status seipd_emit(bool last) {
    uint8_t header[kHeadroom];
    size_t h = 0;
    if (!seipd_started_) {
      header[h++] = kSeipdTag;
      seipd_started_ = true;
    }
    if (last) {
      h += put_length(chunk_used_, header + h);
    } else {
      header[h++] = 0xe0 | kSeipdExponent;
    }
    uint8_t* begin = chunk_.get() + kHeadroom - h;
    std::memcpy(begin, header, h);
    const size_t n = h + std::exchange(chunk_used_, 0);
    return deliver(begin, n);
  }

  Status deliver(const uint8_t* p, size_t n) {
    bytes_out_ += n;
    return sink_(std::string_view(reinterpret_cast<const char*>(p), n));
  }

  std::vector<char> passphrase_;  // until the key is derived
  ByteSink sink_;
  const SymmetricEncryptOptions options_;
  std::optional<Error> error_;
  bool started_ = false;
  bool finished_ = false;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;

  std::unique_ptr<uint8_t[]> literal_;  // the literal body's chunk being filled
  size_t literal_used_ = 0;
  bool literal_started_ = false;

  std::optional<Deflater> deflater_;

  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter> cipher_;
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> mdc_;
  std::unique_ptr<uint8_t[]> chunk_;  // kHeadroom, then the SEIPD body's chunk being filled
  size_t chunk_used_ = 0;
  bool seipd_started_ = false;
};

SymmetricEncryptor::SymmetricEncryptor(std::string_view passphrase, ByteSink sink,
                                       SymmetricEncryptOptions options)
    : impl_(std::make_unique<Impl>(passphrase, std::move(sink), options)) {}

SymmetricEncryptor::~SymmetricEncryptor() = default;

Status SymmetricEncryptor::write(std::string_view plaintext) { return impl_->write(plaintext); }

Status SymmetricEncryptor::finish() { return impl_->finish(); }

uint64_t SymmetricEncryptor::bytes_in() const { return impl_->bytes_in(); }

uint64_t SymmetricEncryptor::bytes_out() const { return impl_->bytes_out(); }

}  // namespace dupfs::chain

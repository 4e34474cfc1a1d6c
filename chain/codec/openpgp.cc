// OpenPGP decryption with a passphrase, in process (RFC 4880): see openpgp.h.
//
// The message is taken apart by three levels of the same push parser of packet headers
// (PacketParser), each calling a handler with the bodies of its packets in fragments:
//   level 0  the stored bytes: Marker, SKESK and PKESK packets, then the SEIPD packet, whose
//            body is decrypted into `plain_` in large pieces;
//   level 1  the decrypted SEIPD contents (after the random prefix, before the MDC, which is
//            held back): a compressed packet, whose body is inflated (chain/codec/inflate.h),
//            or the literal data packet itself (gpg --compress-algo none);
//   level 2  the decompressed data: the literal data packet.
// Literal data is collected into pieces of up to 256 KiB for the sink. Partial body lengths
// can appear at every level; the parser hides them from the handlers (but tells a SeekBuilder
// where the parts lie). CFB decryption: chain/codec/cfb.h.
#include "chain/codec/openpgp.h"

#include <fmt/core.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "chain/codec/cfb.h"
#include "chain/codec/inflate.h"
#include "chain/codec/s2k.h"
#include "chain/codec/seek_builder.h"

namespace dupfs::chain {
namespace {

// Upper bound of one piece handed to the sink.
constexpr size_t kSinkPieceSize = size_t{256} << 10;
// Decrypted bytes are processed in batches of this size.
constexpr size_t kPlainBufferSize = size_t{256} << 10;
// The MDC packet: 0xD3 0x14 and a SHA1.
constexpr size_t kMdcSize = 22;
constexpr size_t kSha1Size = 20;
// All the ciphers we implement have 16-octet blocks: the random prefix and its check octets.
constexpr size_t kBlockSize = kCfbBlockSize;
constexpr size_t kPrefixSize = kBlockSize + 2;
// An SKESK v4 is at most 2 + 11 + 1 + 32 octets; anything much longer is damage.
constexpr size_t kMaxSkeskSize = 1024;
// At most this many passphrase-encrypted session keys are tried (each costs a derivation).
constexpr size_t kMaxSkesks = 16;

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

const char* cipher_name(int algo) {
  switch (algo) {
    case 1:
      return "IDEA";
    case 2:
      return "3DES";
    case 3:
      return "CAST5";
    case 4:
      return "Blowfish";
    case 10:
      return "Twofish";
    default:
      return "unknown";
  }
}

// ---------------------------------------------------------------------------------------------
// Packet framing

// Receives the packets of one level, their bodies in fragments.
class PacketHandler {
 public:
  virtual Status begin(int tag) = 0;
  virtual Status body(const uint8_t* data, size_t size) = 0;
  virtual Status end() = 0;
  // A part of the current packet's body begins at input offset `outer` (length nullopt: it
  // runs to the end of the enclosing data). For seek points (seek_builder.h).
  virtual void part(uint64_t /*outer*/, std::optional<uint64_t> /*length*/) {}

 protected:
  ~PacketHandler() = default;
};

// What the parsers need from their decryptor: errors naming the object.
class Reporter {
 public:
  explicit Reporter(std::string name) : name_(std::move(name)) {}

  std::unexpected<Error> corrupt(std::string_view what) const {
    return error(ErrorKind::kCorruption, "cannot decrypt {}: damaged data ({})", name_, what);
  }
  std::unexpected<Error> not_openpgp() const {
    return error(ErrorKind::kCorruption, "cannot decrypt {}: not OpenPGP data", name_);
  }
  // kUnsupported, or kCorruption once the sink has seen data: a caller falling back to gpg
  // would hand the same bytes over twice.
  std::unexpected<Error> unsupported(std::string_view what) const {
    if (produced_output) return corrupt(what);
    return error(ErrorKind::kUnsupported, "cannot decrypt {}: unsupported ({})", name_, what);
  }
  std::unexpected<Error> auth(std::string_view what) const {
    return error(ErrorKind::kAuth, "cannot decrypt {}: {}", name_, what);
  }
  std::unexpected<Error> internal(std::string_view what) const {
    return error(ErrorKind::kIoError, "cannot decrypt {}: {}", name_, what);
  }

  bool produced_output = false;

 private:
  std::string name_;
};

// A push parser of a sequence of packets (RFC 4880 §4.2): old-format headers with one-, two-
// and four-octet lengths and the indeterminate length (to the end of the enclosing data),
// new-format headers with one-, two- and five-octet lengths and partial body lengths.
class PacketParser {
 public:
  PacketParser(PacketHandler& handler, const Reporter& reporter, const char* where)
      : handler_(handler), reporter_(reporter), where_(where) {}

  // Offsets given to PacketHandler::part count from `base` (the input's offset in its stream).
  void set_base(uint64_t base) { offset_ = base; }

  Status feed(const uint8_t* p, size_t n) {
    while (n > 0) {
      switch (state_) {
        case State::kTag: {
          uint8_t octet = *p++;
          --n;
          ++offset_;
          bool first = !started_;
          started_ = true;
          if ((octet & 0x80) == 0) {
            if (first && where_ == std::string_view("message")) return reporter_.not_openpgp();
            return reporter_.corrupt(fmt::format("invalid packet header in the {}", where_));
          }
          continuation_ = false;
          length_have_ = 0;
          if ((octet & 0x40) != 0) {
            new_format_ = true;
            tag_ = octet & 0x3f;
            length_need_ = 1;  // decided by the first length octet
          } else {
            new_format_ = false;
            tag_ = (octet >> 2) & 0x0f;
            int type = octet & 3;
            if (type == 3) {
              state_ = State::kToEnd;
              if (auto s = handler_.begin(tag_); !s) return s;
              handler_.part(offset_, std::nullopt);
              break;
            }
            length_need_ = size_t{1} << type;
          }
          state_ = State::kLength;
          break;
        }
        case State::kLength: {
          uint8_t octet = *p++;
          --n;
          ++offset_;
          length_[length_have_++] = octet;
          if (new_format_ && length_have_ == 1) {
            length_need_ = octet < 192 ? 1 : octet < 224 ? 2 : octet == 255 ? 5 : 1;
          }
          if (length_have_ < length_need_) break;
          partial_ = false;
          uint64_t length = 0;
          if (new_format_) {
            uint8_t o = length_[0];
            if (o < 192) {
              length = o;
            } else if (o < 224) {
              length = ((uint64_t{o} - 192) << 8) + length_[1] + 192;
            } else if (o == 255) {
              length = big_endian(length_ + 1, 4);
            } else {
              length = uint64_t{1} << (o & 0x1f);
              partial_ = true;
            }
          } else {
            length = big_endian(length_, length_need_);
          }
          remaining_ = length;
          state_ = State::kBody;
          length_have_ = 0;
          if (!continuation_) {
            if (auto s = handler_.begin(tag_); !s) return s;
          }
          handler_.part(offset_, length);
          break;
        }
        case State::kBody: {
          size_t k = static_cast<size_t>(std::min<uint64_t>(n, remaining_));
          if (auto s = handler_.body(p, k); !s) return s;
          p += k;
          n -= k;
          offset_ += k;
          remaining_ -= k;
          break;
        }
        case State::kToEnd:
          if (auto s = handler_.body(p, n); !s) return s;
          offset_ += n;
          n = 0;
          break;
      }
      if (state_ == State::kBody && remaining_ == 0) {
        if (partial_) {
          // Another length follows, for the next part of the same body.
          state_ = State::kLength;
          continuation_ = true;
          length_need_ = 1;
        } else {
          state_ = State::kTag;
          if (auto s = handler_.end(); !s) return s;
        }
      }
    }
    return {};
  }

  // The end of the enclosing data.
  Status finish() {
    switch (state_) {
      case State::kTag:
        return {};
      case State::kToEnd:
        state_ = State::kTag;
        return handler_.end();
      default:
        return reporter_.corrupt(fmt::format("truncated {}", where_));
    }
  }

  // Whether any octet was seen.
  bool started() const { return started_; }

 private:
  enum class State { kTag, kLength, kBody, kToEnd };

  static uint64_t big_endian(const uint8_t* p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | p[i];
    return v;
  }

  PacketHandler& handler_;
  const Reporter& reporter_;
  const char* where_;
  State state_ = State::kTag;
  bool started_ = false;
  bool new_format_ = false;
  bool continuation_ = false;  // reading the length of a further part of a partial body
  bool partial_ = false;       // the current part is not the last one
  int tag_ = 0;
  uint8_t length_[5] = {};
  size_t length_have_ = 0;
  size_t length_need_ = 0;
  uint64_t remaining_ = 0;  // octets left in the current part
  uint64_t offset_ = 0;     // of the next input octet
};

// Where literal data goes: pieces of up to kSinkPieceSize for the sink.
class Output {
 public:
  Output(ByteSink sink, Reporter& reporter) : sink_(std::move(sink)), reporter_(reporter) {}

  Status write(const uint8_t* p, size_t n) {
    while (n > 0) {
      if (length_ == 0 && n >= kSinkPieceSize) {
        // Large enough as it is.
        if (auto s = deliver(p, kSinkPieceSize); !s) return s;
        p += kSinkPieceSize;
        n -= kSinkPieceSize;
        continue;
      }
      if (buffer_.size() == 0) buffer_ = SecretBuffer(kSinkPieceSize);
      size_t k = std::min(n, kSinkPieceSize - length_);
      std::memcpy(buffer_.data() + length_, p, k);
      length_ += k;
      p += k;
      n -= k;
      if (length_ == kSinkPieceSize) {
        if (auto s = flush(); !s) return s;
      }
    }
    return {};
  }

  Status flush() {
    if (length_ == 0) return {};
    size_t n = std::exchange(length_, 0);
    return deliver(buffer_.data(), n);
  }

 private:
  Status deliver(const uint8_t* p, size_t n) {
    reporter_.produced_output = true;
    return sink_(std::string_view(reinterpret_cast<const char*>(p), n));
  }

  ByteSink sink_;
  Reporter& reporter_;
  SecretBuffer buffer_;
  size_t length_ = 0;
};

// Level 1 (the decrypted SEIPD contents) or level 2 (the decompressed data): one compressed
// packet (level 1 only) or one literal data packet, nothing after it.
class InnerLevel final : public PacketHandler {
 public:
  InnerLevel(Reporter& reporter, Output& output, int depth, InnerLevel* child, SeekBuilder* seek)
      : reporter_(reporter),
        output_(output),
        depth_(depth),
        child_(child),
        seek_(seek),
        parser_(*this, reporter, depth == 1 ? "encrypted data" : "compressed data") {}
  ~InnerLevel() = default;
  InnerLevel(const InnerLevel&) = delete;
  InnerLevel& operator=(const InnerLevel&) = delete;

  Status feed(const uint8_t* p, size_t n) {
    // Without a compressed packet, D (what holds the literal packet) is C itself.
    if (seek_ != nullptr && depth_ == 1 && !compressed_) {
      seek_->output(std::string_view(reinterpret_cast<const char*>(p), n));
    }
    return parser_.feed(p, n);
  }

  void set_base(uint64_t base) { parser_.set_base(base); }

  Status finish() {
    if (auto s = parser_.finish(); !s) return s;
    if (!done_) return reporter_.corrupt("no literal data");
    return {};
  }

  Status begin(int tag) override {
    if (done_) return reporter_.corrupt(fmt::format("packet type {} after the literal data", tag));
    switch (tag) {
      case 8:
        if (depth_ != 1) return reporter_.unsupported("nested compressed packets");
        mode_ = Mode::kCompressed;
        compressed_ = true;
        return {};
      case 11:
        mode_ = Mode::kLiteral;
        literal_phase_ = LiteralPhase::kFormat;
        return {};
      case 10:  // Marker
        mode_ = Mode::kSkip;
        return {};
      case 2:
      case 4:
        return reporter_.unsupported("signed data");
      default:
        return reporter_.unsupported(fmt::format("packet type {} in the encrypted data", tag));
    }
  }

  Status body(const uint8_t* p, size_t n) override {
    switch (mode_) {
      case Mode::kSkip:
        return {};
      case Mode::kCompressed:
        return compressed_body(p, n);
      case Mode::kLiteral:
        return literal_body(p, n);
    }
    return {};
  }

  void part(uint64_t outer, std::optional<uint64_t> length) override {
    if (seek_ == nullptr) return;
    if (mode_ == Mode::kCompressed) {
      // Z must be one run of C: a compressed packet in parts is not described.
      if (compressed_parts_++ > 0) seek_->fail();
      z_start_ = outer;
    } else if (mode_ == Mode::kLiteral) {
      seek_->literal_part(outer, length);
    }
  }

  Status end() override {
    switch (mode_) {
      case Mode::kSkip:
        return {};
      case Mode::kCompressed:
        if (!algo_known_) return reporter_.corrupt("empty compressed packet");
        if (algo_ != 0 && !inflater_->finished()) {
          return reporter_.corrupt("truncated compressed data");
        }
        done_ = true;
        return child_->finish();
      case Mode::kLiteral:
        if (literal_phase_ != LiteralPhase::kData) {
          return reporter_.corrupt("truncated literal data header");
        }
        done_ = true;
        return {};
    }
    return {};
  }

 private:
  enum class Mode { kSkip, kCompressed, kLiteral };
  enum class LiteralPhase { kFormat, kNameLength, kName, kDate, kData };

  Status compressed_body(const uint8_t* p, size_t n) {
    if (!algo_known_) {
      if (n == 0) return {};
      algo_ = *p++;
      --n;
      algo_known_ = true;
      switch (algo_) {
        case 0:
          break;
        case 1:  // ZIP: raw deflate
          inflater_.emplace(Inflater::Format::kRaw, seek_);
          break;
        case 2:  // ZLIB
          inflater_.emplace(Inflater::Format::kZlib, seek_);
          break;
        case 3:
          return reporter_.unsupported("BZIP2 compression");
        default:
          return reporter_.unsupported(fmt::format("compression algorithm {}", algo_));
      }
      if (seek_ != nullptr) {
        // Z starts after the algorithm octet; D is what it inflates to (or Z itself).
        seek_->set_compression(algo_, z_start_ + 1);
        child_->set_base(algo_ == 0 ? z_start_ + 1 : 0);
      }
    }
    if (n == 0) return {};
    if (algo_ == 0) {
      if (seek_ != nullptr) seek_->output(std::string_view(reinterpret_cast<const char*>(p), n));
      return child_->feed(p, n);
    }
    if (inflater_->finished()) return reporter_.corrupt("data after the compressed stream");
    bool child_failed = false;  // errors of the packets inside (and of the sink) pass unchanged
    auto consumed = inflater_->feed(std::string_view(reinterpret_cast<const char*>(p), n),
                                    [this, &child_failed](std::string_view out) {
                                      auto s = child_->feed(
                                          reinterpret_cast<const uint8_t*>(out.data()), out.size());
                                      if (!s) child_failed = true;
                                      return s;
                                    });
    if (!consumed) {
      if (!child_failed && consumed.error().kind == ErrorKind::kCorruption) {
        return reporter_.corrupt(consumed.error().message);
      }
      return std::unexpected(consumed.error());
    }
    if (*consumed != n) return reporter_.corrupt("data after the compressed stream");
    return {};
  }

  Status literal_body(const uint8_t* p, size_t n) {
    while (n > 0 && literal_phase_ != LiteralPhase::kData) {
      switch (literal_phase_) {
        case LiteralPhase::kFormat:  // 'b', 't', 'u'...: the data is passed on as it is
          ++p;
          --n;
          literal_phase_ = LiteralPhase::kNameLength;
          break;
        case LiteralPhase::kNameLength:
          name_length_ = header_left_ = *p++;
          --n;
          literal_phase_ = LiteralPhase::kName;
          break;
        case LiteralPhase::kName:
        case LiteralPhase::kDate: {
          size_t k = std::min(n, header_left_);
          p += k;
          n -= k;
          header_left_ -= k;
          break;
        }
        case LiteralPhase::kData:
          break;
      }
      if (header_left_ == 0 && literal_phase_ == LiteralPhase::kName) {
        literal_phase_ = LiteralPhase::kDate;
        header_left_ = 4;
      } else if (header_left_ == 0 && literal_phase_ == LiteralPhase::kDate) {
        literal_phase_ = LiteralPhase::kData;
        // format, name length, name, date
        if (seek_ != nullptr) seek_->literal_header(2 + name_length_ + 4);
      }
    }
    if (n == 0) return {};
    return output_.write(p, n);
  }

  Reporter& reporter_;
  Output& output_;
  const int depth_;
  InnerLevel* const child_;  // where the compressed packet's contents go (level 1)
  SeekBuilder* const seek_;  // records seek points, or nullptr
  PacketParser parser_;
  Mode mode_ = Mode::kSkip;
  bool done_ = false;  // a compressed or literal packet is complete: nothing may follow

  bool algo_known_ = false;
  int algo_ = 0;
  std::optional<Inflater> inflater_;

  LiteralPhase literal_phase_ = LiteralPhase::kFormat;
  size_t header_left_ = 0;
  size_t name_length_ = 0;

  bool compressed_ = false;  // a compressed packet began
  int compressed_parts_ = 0;
  uint64_t z_start_ = 0;  // input offset of the compressed packet's body
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Level 0 and the decryption

class SymmetricDecryptor::Impl final : public PacketHandler {
 public:
  Impl(std::string_view passphrase, ByteSink sink, std::string name, SeekBuilder* seek)
      : passphrase_(passphrase.data(), passphrase.size()),
        reporter_(std::move(name)),
        output_(std::move(sink), reporter_),
        seek_(seek),
        level2_(reporter_, output_, 2, nullptr, seek),
        level1_(reporter_, output_, 1, &level2_, seek),
        top_(*this, reporter_, "message") {}

  Status feed(std::string_view bytes) {
    if (error_) return std::unexpected(*error_);
    if (finished_) return reporter_.corrupt("data after the end of the message");
    return remember(top_.feed(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  }

  Status finish() {
    if (error_) return std::unexpected(*error_);
    if (finished_) return {};
    Status s = top_.finish();
    if (s && !seipd_done_) {
      s = top_.started() ? reporter_.corrupt("truncated message, no encrypted data")
                         : reporter_.not_openpgp();
    }
    finished_ = static_cast<bool>(s);
    return remember(std::move(s));
  }

  bool produced_output() const { return reporter_.produced_output; }

  Status begin(int tag) override {
    if (seipd_started_) return reporter_.corrupt("data after the encrypted data packet");
    switch (tag) {
      case 10:  // Marker
      case 1:   // PKESK: for gpg
        saw_pkesk_ = saw_pkesk_ || tag == 1;
        mode_ = Mode::kSkip;
        return {};
      case 3:
        mode_ = Mode::kSkesk;
        skesk_.clear();
        return {};
      case 18:
        mode_ = Mode::kSeipd;
        return seipd_begin();
      case 9:
        return reporter_.unsupported("encrypted data without integrity protection (no MDC)");
      case 20:
        return reporter_.unsupported("AEAD encrypted data");
      default:
        return reporter_.unsupported(fmt::format("packet type {} before the encrypted data", tag));
    }
  }

  Status body(const uint8_t* p, size_t n) override {
    switch (mode_) {
      case Mode::kSkip:
        return {};
      case Mode::kSkesk:
        if (skesk_.size() + n > kMaxSkeskSize) return reporter_.corrupt("oversized SKESK packet");
        skesk_.append(reinterpret_cast<const char*>(p), n);
        return {};
      case Mode::kSeipd:
        return seipd_body(p, n);
    }
    return {};
  }

  // The SEIPD's parts, without its version octet: where C lies in the stored bytes.
  void part(uint64_t outer, std::optional<uint64_t> length) override {
    if (seek_ == nullptr || mode_ != Mode::kSeipd) return;
    if (!length) {
      seek_->fail();
      return;
    }
    if (seipd_parts_++ == 0) {
      if (*length == 0) {
        seek_->fail();
        return;
      }
      ++outer;
      --*length;
    }
    seek_->seipd_part(outer, *length);
  }

  Status end() override {
    switch (mode_) {
      case Mode::kSkip:
        return {};
      case Mode::kSkesk:
        return parse_skesk();
      case Mode::kSeipd:
        return seipd_end();
    }
    return {};
  }

 private:
  enum class Mode { kSkip, kSkesk, kSeipd };

  struct Skesk {
    int cipher = 0;
    S2kSpec s2k;
    std::string encrypted_key;  // empty: the S2K key is the session key
  };

  Status remember(Status s) {
    if (!s) error_ = s.error();
    return s;
  }

  void note_unusable(std::string why) {
    if (unusable_.empty()) unusable_ = std::move(why);
  }

  // RFC 4880 §5.3.
  Status parse_skesk() {
    const auto* p = reinterpret_cast<const uint8_t*>(skesk_.data());
    const size_t n = skesk_.size();
    if (n < 1) return reporter_.corrupt("empty SKESK packet");
    if (p[0] != 4) {
      note_unusable(fmt::format("SKESK version {}", p[0]));
      return {};
    }
    if (n < 3) return reporter_.corrupt("truncated SKESK packet");
    Skesk k;
    k.cipher = p[1];
    k.s2k.type = p[2];
    size_t s2k_size = 0;
    switch (k.s2k.type) {
      case 0:
        s2k_size = 2;
        break;
      case 1:
        s2k_size = 10;
        break;
      case 3:
        s2k_size = 11;
        break;
      default:
        note_unusable(fmt::format("S2K type {}", k.s2k.type));
        return {};
    }
    if (n < 2 + s2k_size) return reporter_.corrupt("truncated SKESK packet");
    k.s2k.hash = p[3];
    if (k.s2k.type != 0) std::memcpy(k.s2k.salt.data(), p + 4, 8);
    if (k.s2k.type == 3) k.s2k.count_octet = p[12];
    k.encrypted_key.assign(skesk_, 2 + s2k_size);
    if (!s2k_hash_known(k.s2k.hash)) {
      note_unusable(fmt::format("S2K hash algorithm {}", k.s2k.hash));
    } else if (ecb_cipher(k.cipher) == nullptr) {
      note_unusable(fmt::format("cipher algorithm {} ({})", k.cipher, cipher_name(k.cipher)));
    } else if (skesks_.size() == kMaxSkesks) {
      note_unusable(fmt::format("more than {} SKESK packets", kMaxSkesks));
    } else {
      skesks_.push_back(std::move(k));
    }
    return {};
  }

  Status seipd_begin() {
    seipd_started_ = true;
    if (skesks_.empty()) {
      if (!unusable_.empty()) return reporter_.unsupported(unusable_);
      if (saw_pkesk_) return reporter_.unsupported("message encrypted to a public key");
      return reporter_.unsupported("no passphrase-encrypted session key");
    }
    return {};
  }

  Status seipd_body(const uint8_t* p, size_t n) {
    if (!version_known_) {
      if (n == 0) return {};
      if (*p != 1) return reporter_.unsupported(fmt::format("SEIPD version {}", *p));
      version_known_ = true;
      ++p;
      --n;
    }
    if (!keyed_) {
      size_t k = std::min(n, kPrefixSize - head_size_);
      std::memcpy(head_ + head_size_, p, k);
      head_size_ += k;
      p += k;
      n -= k;
      if (head_size_ < kPrefixSize) return {};
      if (auto s = choose_key(); !s) return s;
    }
    while (n > 0) {
      size_t k = std::min(n, plain_.size() - plain_size_);
      if (!cfb_.decrypt(p, plain_.data() + plain_size_, k)) {
        return reporter_.internal("decryption failed");
      }
      plain_size_ += k;
      plain_total_ += k;
      p += k;
      n -= k;
      if (plain_size_ == plain_.size()) {
        if (auto s = process_plain(plain_size_ - kMdcSize); !s) return s;
      }
    }
    return {};
  }

  // The session key whose quick check fits the first 18 octets (RFC 4880 §5.13).
  Status choose_key() {
    plain_ = SecretBuffer(kPlainBufferSize);
    std::string why_unsupported;
    for (const Skesk& k : skesks_) {
      auto key = cached_s2k(passphrase_, k.s2k, cipher_key_size(k.cipher));
      if (!key) return reporter_.internal("key derivation failed");
      int algo = k.cipher;
      SecretBuffer session;
      if (k.encrypted_key.empty()) {
        session = std::move(*key);
      } else {
        // octet 0: the session key's algorithm; then the key.
        SecretBuffer decrypted(k.encrypted_key.size());
        CfbDecryptor cfb;
        if (!cfb.init(ecb_cipher(k.cipher), key->data()) ||
            !cfb.decrypt(reinterpret_cast<const uint8_t*>(k.encrypted_key.data()), decrypted.data(),
                         decrypted.size())) {
          return reporter_.internal("decryption failed");
        }
        algo = decrypted.data()[0];
        size_t size = cipher_key_size(algo);
        if (size == 0 || size != decrypted.size() - 1) continue;  // a wrong passphrase
        if (ecb_cipher(algo) == nullptr) {
          // The right passphrase and a cipher we lack, or a wrong one: gpg will tell.
          why_unsupported = fmt::format("cipher algorithm {} ({})", algo, cipher_name(algo));
          continue;
        }
        session = SecretBuffer(decrypted.data() + 1, size);
      }
      if (!cfb_.init(ecb_cipher(algo), session.data()) ||
          !cfb_.decrypt(head_, plain_.data(), kPrefixSize)) {
        return reporter_.internal("decryption failed");
      }
      const uint8_t* q = plain_.data();
      if (q[kBlockSize - 2] == q[kBlockSize] && q[kBlockSize - 1] == q[kBlockSize + 1]) {
        keyed_ = true;
        if (seek_ != nullptr) {
          seek_->set_key(algo, session.data(), session.size());
          seek_->set_compression(0, kPrefixSize);  // until a compressed packet says otherwise
        }
        level1_.set_base(kPrefixSize);
        plain_size_ = plain_total_ = kPrefixSize;
        mdc_.reset(EVP_MD_CTX_new());
        if (!mdc_ || EVP_DigestInit_ex(mdc_.get(), EVP_sha1(), nullptr) != 1) {
          return reporter_.internal("cannot initialise SHA1");
        }
        return {};
      }
    }
    OPENSSL_cleanse(plain_.data(), kPrefixSize);
    if (!why_unsupported.empty()) return reporter_.unsupported(why_unsupported);
    if (!unusable_.empty()) return reporter_.unsupported(unusable_);
    if (saw_pkesk_) {
      return reporter_.unsupported("passphrase does not fit, message also encrypted to a key");
    }
    return reporter_.auth("bad passphrase");
  }

  // Hashes the first `n` decrypted octets for the MDC, passes them on (but the random
  // prefix), keeps the rest.
  Status process_plain(size_t n) {
    if (n == 0) return {};
    if (EVP_DigestUpdate(mdc_.get(), plain_.data(), n) != 1) return reporter_.internal("SHA1");
    size_t skip = std::min(prefix_left_, n);
    prefix_left_ -= skip;
    if (n > skip) {
      if (auto s = level1_.feed(plain_.data() + skip, n - skip); !s) return s;
    }
    std::memmove(plain_.data(), plain_.data() + n, plain_size_ - n);
    plain_size_ -= n;
    return {};
  }

  Status seipd_end() {
    if (!keyed_ || plain_total_ < kPrefixSize + kMdcSize) {
      return reporter_.corrupt("truncated encrypted data");
    }
    if (auto s = process_plain(plain_size_ - kMdcSize); !s) return s;
    const uint8_t* mdc = plain_.data();
    if (mdc[0] != 0xd3 || mdc[1] != 0x14) return reporter_.corrupt("missing MDC");
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_DigestUpdate(mdc_.get(), mdc, 2) != 1 ||
        EVP_DigestFinal_ex(mdc_.get(), digest, &length) != 1 || length != kSha1Size) {
      return reporter_.internal("SHA1");
    }
    if (CRYPTO_memcmp(digest, mdc + 2, kSha1Size) != 0) {
      return reporter_.corrupt("MDC mismatch");
    }
    OPENSSL_cleanse(plain_.data(), plain_size_);
    plain_size_ = 0;
    if (auto s = level1_.finish(); !s) return s;
    if (auto s = output_.flush(); !s) return s;
    seipd_done_ = true;
    return {};
  }

  SecretBuffer passphrase_;
  Reporter reporter_;
  Output output_;
  SeekBuilder* const seek_;
  int seipd_parts_ = 0;
  InnerLevel level2_;
  InnerLevel level1_;
  PacketParser top_;
  std::optional<Error> error_;
  bool finished_ = false;

  Mode mode_ = Mode::kSkip;
  std::string skesk_;  // body of the SKESK being read
  std::vector<Skesk> skesks_;
  std::string unusable_;  // why the first unusable SKESK is not used
  bool saw_pkesk_ = false;

  bool seipd_started_ = false;
  bool seipd_done_ = false;
  bool version_known_ = false;
  uint8_t head_[kPrefixSize] = {};  // the first ciphertext octets, for the quick check
  size_t head_size_ = 0;
  bool keyed_ = false;
  CfbDecryptor cfb_;
  MdCtx mdc_;
  SecretBuffer plain_;     // decrypted, not yet processed: the last 22 may be the MDC
  size_t plain_size_ = 0;  // octets in plain_
  uint64_t plain_total_ = 0;
  size_t prefix_left_ = kPrefixSize;  // random prefix octets not yet skipped
};

SymmetricDecryptor::SymmetricDecryptor(std::string_view passphrase, ByteSink sink, std::string name,
                                       SeekBuilder* seek)
    : impl_(std::make_unique<Impl>(passphrase, std::move(sink), std::move(name), seek)) {}

SymmetricDecryptor::~SymmetricDecryptor() = default;

Status SymmetricDecryptor::feed(std::string_view stored_bytes) { return impl_->feed(stored_bytes); }

Status SymmetricDecryptor::finish() { return impl_->finish(); }

bool SymmetricDecryptor::produced_output() const { return impl_->produced_output(); }

}  // namespace dupfs::chain

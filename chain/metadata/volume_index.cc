#include "chain/metadata/volume_index.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <mutex>

namespace dupfs::chain {
namespace {

constexpr std::string_view kMagic = "dupfs-seek-1\n";
constexpr std::string_view kNamePrefix = "dupfs-seek.";
constexpr std::string_view kNameSuffix = ".idx";
constexpr uint8_t kModeClear = 0;
constexpr uint8_t kModeSealed = 1;

constexpr size_t kSaltSize = 8;
constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;
constexpr size_t kKeySize = 32;
constexpr size_t kSha256Size = 32;
constexpr int kS2kIteratedSalted = 3;
constexpr int kS2kSha256 = 8;
constexpr uint8_t kS2kCountOctet = 0xff;

// Offsets in a sealed file: magic, mode, salt, count octet, nonce, then the ciphertext.
constexpr size_t kModeAt = kMagic.size();
constexpr size_t kSaltAt = kModeAt + 1;
constexpr size_t kCountAt = kSaltAt + kSaltSize;
constexpr size_t kNonceAt = kCountAt + 1;
constexpr size_t kSealedHead = kNonceAt + kNonceSize;
static_assert(kSealedHead <= kIndexHeadSize);

using Salt = std::array<uint8_t, kSaltSize>;

// The salt this process seals with: the first one of an index it opened, so that the indexes of
// an archive dir converge on one salt (and one key derivation per mount); before that, one
// random salt for the whole process.
struct SealingSalt {
  std::mutex mu;
  std::optional<Salt> opened;
  std::optional<Salt> random;
};

SealingSalt& sealing_salt() {
  static SealingSalt s;
  return s;
}

std::optional<Salt> salt_for_sealing() {
  SealingSalt& s = sealing_salt();
  std::lock_guard lock(s.mu);
  if (s.opened) return s.opened;
  if (!s.random) {
    Salt salt;
    if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) return std::nullopt;
    s.random = salt;
  }
  return s.random;
}

void note_opened_salt(const Salt& salt) {
  SealingSalt& s = sealing_salt();
  std::lock_guard lock(s.mu);
  if (!s.opened) s.opened = salt;
}

S2kSpec index_s2k(const Salt& salt, uint8_t count_octet) {
  S2kSpec spec;
  spec.type = kS2kIteratedSalted;
  spec.hash = kS2kSha256;
  spec.salt = salt;
  spec.count_octet = count_octet;
  return spec;
}

const uint8_t* bytes_of(std::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// The payload holds keys and plaintext: it is written once into a buffer that is wiped, never
// into a growing string (which would leave copies behind). A writer without a buffer counts.
class PayloadWriter {
 public:
  explicit PayloadWriter(uint8_t* out = nullptr) : out_(out) {}

  void bytes(const void* p, size_t n) {
    if (out_ != nullptr && n != 0) std::memcpy(out_ + size_, p, n);
    size_ += n;
  }
  void u64(uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
    bytes(b, sizeof b);
  }
  void str(std::string_view s) {
    u64(s.size());
    bytes(s.data(), s.size());
  }
  size_t size() const { return size_; }

 private:
  uint8_t* out_;
  size_t size_ = 0;
};

// Reads the payload; every count and length is checked against the bytes left.
class PayloadReader {
 public:
  explicit PayloadReader(std::string_view in) : in_(in) {}

  bool u64(uint64_t& v) {
    if (in_.size() < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<uint8_t>(in_[i])} << (8 * i);
    in_.remove_prefix(8);
    return true;
  }
  bool u32(uint32_t& v) {
    uint64_t x;
    if (!u64(x) || x > UINT32_MAX) return false;
    v = static_cast<uint32_t>(x);
    return true;
  }
  bool i64(int64_t& v) {
    uint64_t x;
    if (!u64(x)) return false;
    v = static_cast<int64_t>(x);
    return true;
  }
  // A length and that many bytes, at most `max`.
  std::optional<std::string_view> span(uint64_t max = UINT64_MAX) {
    uint64_t n;
    if (!u64(n) || n > max || n > in_.size()) return std::nullopt;
    std::string_view s = in_.substr(0, n);
    in_.remove_prefix(n);
    return s;
  }
  bool str(std::string& s, uint64_t max = UINT64_MAX) {
    auto v = span(max);
    if (v) s.assign(*v);
    return v.has_value();
  }
  bool raw(void* p, size_t n) {
    if (in_.size() < n) return false;
    std::memcpy(p, in_.data(), n);
    in_.remove_prefix(n);
    return true;
  }
  // A count of items that take at least `min_size` bytes each, if that many can follow.
  bool count(uint64_t& n, size_t min_size) { return u64(n) && n <= in_.size() / min_size; }
  bool at_end() const { return in_.empty(); }

 private:
  std::string_view in_;
};

// Fields: kind, index (count, components), chunk, linkname, 10 numbers, uname, gname (the
// layout of VolumeStore's catalog files).
constexpr size_t kMinEntrySize = 8 * (1 + 1 + 1 + 1 + 10 + 1 + 1);
constexpr size_t kRunSize = 5 * 8;
constexpr size_t kMinPointSize = 4 * 8;

void write_framing(PayloadWriter& w, const Framing& f) {
  w.u64(f.runs.size());
  for (const FramingRun& r : f.runs) {
    for (uint64_t x : {r.outer, r.inner, r.length, r.stride, r.count}) w.u64(x);
  }
}

bool read_framing(PayloadReader& r, Framing& f) {
  uint64_t n;
  if (!r.count(n, kRunSize)) return false;
  f.runs.resize(n);
  for (FramingRun& run : f.runs) {
    for (uint64_t* x : {&run.outer, &run.inner, &run.length, &run.stride, &run.count}) {
      if (!r.u64(*x)) return false;
    }
  }
  return true;
}

void write_payload(PayloadWriter& w, const VolumeIndex& index, bool with_seek) {
  w.str(index.volume);
  w.str(index.sha1);
  w.u64(index.stored_size);
  w.u64(index.decoded_size);
  w.u64(index.chunk_size);
  w.u64(index.chunk_sha256.size());
  for (const auto& h : index.chunk_sha256) w.bytes(h.data(), h.size());
  w.u64(index.catalog.size());
  for (const CatalogEntry& e : index.catalog) {
    const TarHeader& h = e.header;
    w.u64(static_cast<uint64_t>(e.name.kind));
    w.u64(e.name.index.size());
    for (const auto& c : e.name.index) w.str(c);
    w.u64(static_cast<uint64_t>(e.name.chunk));
    w.str(h.linkname);
    for (uint64_t x : {static_cast<uint64_t>(h.type), uint64_t{h.mode}, uint64_t(h.uid),
                       uint64_t(h.gid), uint64_t(h.mtime), h.size, uint64_t{h.devmajor},
                       uint64_t{h.devminor}, h.header_offset, h.data_offset}) {
      w.u64(x);
    }
    w.str(h.uname);
    w.str(h.gname);
  }
  w.u64(with_seek ? 1 : 0);
  if (!with_seek) return;
  const SeekData& s = *index.seek;
  w.u64(static_cast<uint64_t>(s.codec));
  w.u64(static_cast<uint64_t>(int64_t{s.cipher}));
  w.u64(s.session_key.size());
  w.bytes(s.session_key.data(), s.session_key.size());
  write_framing(w, s.seipd);
  w.u64(static_cast<uint64_t>(int64_t{s.compression}));
  w.u64(s.z_base);
  write_framing(w, s.literal);
  w.u64(s.d_size);
  w.u64(s.points.size());
  for (const SeekPoint& p : s.points) {
    w.u64(p.out);
    w.u64(p.in_bits);
    w.u64(p.crc);
    w.str(p.window);
  }
}

bool read_int(PayloadReader& r, int& v) {
  int64_t x;
  if (!r.i64(x) || x < INT_MIN || x > INT_MAX) return false;
  v = static_cast<int>(x);
  return true;
}

// nullopt (with `what` set) when the payload is malformed.
std::optional<VolumeIndex> read_payload(std::string_view payload, std::string_view& what) {
  PayloadReader r(payload);
  VolumeIndex index;
  uint64_t n;
  what = "header";
  if (!r.str(index.volume) || !r.str(index.sha1) || !r.u64(index.stored_size) ||
      !r.u64(index.decoded_size) || !r.u32(index.chunk_size)) {
    return std::nullopt;
  }
  what = "chunk hashes";
  if (!r.count(n, 32)) return std::nullopt;
  index.chunk_sha256.resize(n);
  for (auto& h : index.chunk_sha256) {
    if (!r.raw(h.data(), h.size())) return std::nullopt;
  }

  what = "catalog";
  if (!r.count(n, kMinEntrySize)) return std::nullopt;
  index.catalog.resize(n);
  for (CatalogEntry& e : index.catalog) {
    TarHeader& h = e.header;
    uint64_t kind, components, type;
    if (!r.u64(kind) || kind > static_cast<uint64_t>(EntryKind::kSignature) ||
        !r.count(components, 8)) {
      return std::nullopt;
    }
    e.name.kind = static_cast<EntryKind>(kind);
    e.name.index.resize(components);
    for (auto& c : e.name.index) {
      if (!r.str(c)) return std::nullopt;
    }
    if (!r.i64(e.name.chunk) || !r.str(h.linkname) || !r.u64(type) ||
        type > static_cast<uint64_t>(TarType::kFifo) || !r.u32(h.mode) || !r.i64(h.uid) ||
        !r.i64(h.gid) || !r.i64(h.mtime) || !r.u64(h.size) || !r.u32(h.devmajor) ||
        !r.u32(h.devminor) || !r.u64(h.header_offset) || !r.u64(h.data_offset) || !r.str(h.uname) ||
        !r.str(h.gname)) {
      return std::nullopt;
    }
    h.type = static_cast<TarType>(type);
  }

  what = "seek data";
  uint64_t has_seek, codec;
  if (!r.u64(has_seek) || has_seek > 1) return std::nullopt;
  if (has_seek == 1) {
    SeekData& s = index.seek.emplace();
    if (!r.u64(codec) || codec > static_cast<uint64_t>(SeekCodec::kGpg)) return std::nullopt;
    s.codec = static_cast<SeekCodec>(codec);
    if (!read_int(r, s.cipher)) return std::nullopt;
    auto key = r.span();
    if (!key) return std::nullopt;
    s.session_key = SecretBuffer(key->data(), key->size());
    if (!read_framing(r, s.seipd) || !read_int(r, s.compression) || s.compression < 0 ||
        s.compression > 2 || !r.u64(s.z_base) || !read_framing(r, s.literal) || !r.u64(s.d_size) ||
        !r.count(n, kMinPointSize)) {
      return std::nullopt;
    }
    s.points.resize(n);
    for (SeekPoint& p : s.points) {
      if (!r.u64(p.out) || !r.u64(p.in_bits) || !r.u32(p.crc) ||
          !r.str(p.window, kMaxWindowRecord)) {
        return std::nullopt;
      }
    }
  }
  what = "trailing bytes";
  if (!r.at_end()) return std::nullopt;
  return index;
}

// What makes an index unusable beyond its layout; nullopt when there is nothing.
std::optional<std::string_view> index_fault(const VolumeIndex& index) {
  if (index.chunk_size == 0) return "chunk size 0";
  // Readers look a chunk's hash up by offset: one hash for every chunk of the stored bytes.
  uint64_t chunks =
      index.stored_size / index.chunk_size + (index.stored_size % index.chunk_size != 0 ? 1 : 0);
  if (index.chunk_sha256.size() != chunks) return "chunk hashes do not cover the volume";
  for (const CatalogEntry& e : index.catalog) {
    if (e.name.kind > EntryKind::kSignature || e.header.type > TarType::kFifo) {
      return "unknown entry kind or type";
    }
  }
  if (index.seek) {
    const SeekData& s = *index.seek;
    if (s.codec > SeekCodec::kGpg || s.compression < 0 || s.compression > 2) {
      return "unknown codec or compression";
    }
    for (const SeekPoint& p : s.points) {
      if (p.window.size() > kMaxWindowRecord) return "window too long";
    }
  }
  return std::nullopt;
}

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};

// AES-256-GCM of `size` bytes from `in` to `out`, with associated data `aad` (in pieces):
// encrypting writes `tag`, decrypting checks it. false when OpenSSL fails or the tag differs.
bool gcm(bool encrypt, const SecretBuffer& key, const uint8_t* nonce,
         std::initializer_list<std::string_view> aad, const uint8_t* in, uint8_t* out, size_t size,
         uint8_t* tag) {
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter> ctx(EVP_CIPHER_CTX_new());
  const int enc = encrypt ? 1 : 0;
  if (!ctx || key.size() != kKeySize ||
      EVP_CipherInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr, enc) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr) != 1 ||
      EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, key.data(), nonce, enc) != 1) {
    return false;
  }
  // EVP counts in int: feed large inputs in pieces.
  auto update = [&](uint8_t* to, const uint8_t* from, size_t n) {
    while (n > 0) {
      const int piece = static_cast<int>(std::min<size_t>(n, size_t{1} << 30));
      int written = 0;
      if (EVP_CipherUpdate(ctx.get(), to, &written, from, piece) != 1) return false;
      if (to != nullptr) to += written;
      from += piece;
      n -= static_cast<size_t>(piece);
    }
    return true;
  };
  for (std::string_view a : aad) {
    if (!update(nullptr, bytes_of(a), a.size())) return false;
  }
  if (!update(out, in, size)) return false;
  if (!encrypt && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize, tag) != 1) {
    return false;
  }
  int final_size = 0;
  if (EVP_CipherFinal_ex(ctx.get(), out + size, &final_size) != 1) return false;
  return !encrypt || EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize, tag) == 1;
}

bool sha256(std::string_view data, uint8_t* digest) {
  unsigned int size = 0;
  return EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr) == 1 &&
         size == kSha256Size;
}

}  // namespace

std::string volume_index_name(std::string_view volume) {
  std::string name(kNamePrefix);
  name += volume;
  name += kNameSuffix;
  return name;
}

std::optional<std::string> volume_of_index_name(std::string_view name) {
  if (name.size() <= kNamePrefix.size() + kNameSuffix.size() || !name.starts_with(kNamePrefix) ||
      !name.ends_with(kNameSuffix)) {
    return std::nullopt;
  }
  std::string_view volume =
      name.substr(kNamePrefix.size(), name.size() - kNamePrefix.size() - kNameSuffix.size());
  if (volume.find('/') != std::string_view::npos) return std::nullopt;
  return std::string(volume);
}

Result<std::string> encode_volume_index(const VolumeIndex& index, const SecretBuffer* passphrase) {
  const std::string name = volume_index_name(index.volume);
  if (auto fault = index_fault(index)) {
    return error(ErrorKind::kInvalidArgument, "seek index {}: {}", name, *fault);
  }
  // In clear, the session key and plaintext windows of an encrypted volume would be given away.
  const bool with_seek =
      index.seek && (passphrase != nullptr || index.seek->codec != SeekCodec::kGpg);
  PayloadWriter counter;
  write_payload(counter, index, with_seek);
  SecretBuffer payload(counter.size());
  PayloadWriter writer(payload.data());
  write_payload(writer, index, with_seek);

  std::string file(kMagic);
  if (passphrase == nullptr) {
    file += static_cast<char>(kModeClear);
    file.append(reinterpret_cast<const char*>(payload.data()), payload.size());
    uint8_t digest[kSha256Size];
    if (!sha256(file, digest)) return error(ErrorKind::kIoError, "seek index {}: no SHA-256", name);
    file.append(reinterpret_cast<const char*>(digest), sizeof digest);
    return file;
  }

  auto salt = salt_for_sealing();
  if (!salt) return error(ErrorKind::kIoError, "seek index {}: no random numbers", name);
  auto key = cached_s2k(*passphrase, index_s2k(*salt, kS2kCountOctet), kKeySize);
  if (!key) return error(ErrorKind::kIoError, "seek index {}: key derivation failed", name);
  file.resize(kSealedHead + payload.size() + kTagSize);
  auto* out = reinterpret_cast<uint8_t*>(file.data());
  out[kModeAt] = kModeSealed;
  std::memcpy(out + kSaltAt, salt->data(), kSaltSize);
  out[kCountAt] = kS2kCountOctet;
  if (RAND_bytes(out + kNonceAt, kNonceSize) != 1) {
    return error(ErrorKind::kIoError, "seek index {}: no random numbers", name);
  }
  const std::string_view head(file.data(), kSealedHead);
  if (!gcm(true, *key, out + kNonceAt, {head, index.volume, index.sha1}, payload.data(),
           out + kSealedHead, payload.size(), out + kSealedHead + payload.size())) {
    return error(ErrorKind::kIoError, "seek index {}: encryption failed", name);
  }
  return file;
}

Result<VolumeIndex> decode_volume_index(std::string_view file, const SecretBuffer* passphrase,
                                        std::string_view volume, std::string_view sha1) {
  const std::string name = volume_index_name(volume);
  if (file.size() <= kModeAt || !file.starts_with(kMagic)) {
    return error(ErrorKind::kCorruption, "{} is not a seek index", name);
  }
  const uint8_t mode = static_cast<uint8_t>(file[kModeAt]);
  const auto damaged = [&] {
    return error(ErrorKind::kCorruption,
                 "seek index {} is damaged, or from another archive or passphrase", name);
  };

  std::optional<VolumeIndex> index;
  std::string_view what;
  if (mode == kModeClear) {
    // Written without a passphrase: with one, only a sealed index is trusted.
    if (passphrase != nullptr) {
      return error(ErrorKind::kCorruption,
                   "seek index {} is not sealed, but the archive has a "
                   "passphrase",
                   name);
    }
    if (file.size() < kModeAt + 1 + kSha256Size) return damaged();
    const std::string_view body = file.substr(0, file.size() - kSha256Size);
    uint8_t digest[kSha256Size];
    if (!sha256(body, digest)) return error(ErrorKind::kIoError, "seek index {}: no SHA-256", name);
    if (CRYPTO_memcmp(digest, file.data() + body.size(), kSha256Size) != 0) return damaged();
    index = read_payload(body.substr(kModeAt + 1), what);
  } else if (mode == kModeSealed) {
    if (passphrase == nullptr) {
      return error(ErrorKind::kAuth, "seek index {} is sealed: it needs the passphrase", name);
    }
    if (file.size() < kSealedHead + kTagSize) return damaged();
    Salt salt;
    std::memcpy(salt.data(), file.data() + kSaltAt, kSaltSize);
    auto key = cached_s2k(*passphrase, index_s2k(salt, bytes_of(file)[kCountAt]), kKeySize);
    if (!key) return error(ErrorKind::kIoError, "seek index {}: key derivation failed", name);
    const size_t size = file.size() - kSealedHead - kTagSize;
    SecretBuffer plain(size);
    uint8_t tag[kTagSize];
    std::memcpy(tag, file.data() + kSealedHead + size, kTagSize);
    // An empty ciphertext leaves `plain` without a buffer; OpenSSL still wants a pointer.
    uint8_t none[1];
    if (!gcm(false, *key, bytes_of(file) + kNonceAt, {file.substr(0, kSealedHead), volume, sha1},
             bytes_of(file) + kSealedHead, size != 0 ? plain.data() : none, size, tag)) {
      return damaged();
    }
    index = read_payload(
        std::string_view(reinterpret_cast<const char*>(plain.data()), plain.size()), what);
    if (index) note_opened_salt(salt);
  } else {
    return error(ErrorKind::kCorruption, "seek index {} has unknown mode {}", name, mode);
  }

  if (!index) return error(ErrorKind::kCorruption, "seek index {} is malformed: {}", name, what);
  if (auto fault = index_fault(*index)) {
    return error(ErrorKind::kCorruption, "seek index {} is malformed: {}", name, *fault);
  }
  if (mode == kModeClear && index->seek && index->seek->codec == SeekCodec::kGpg) {
    return error(ErrorKind::kCorruption,
                 "seek index {} holds an encrypted volume's seek data in "
                 "clear",
                 name);
  }
  if (index->volume != volume || index->sha1 != sha1) {
    return error(ErrorKind::kCorruption, "seek index {} is of {} (SHA1 {}), not of SHA1 {}", name,
                 index->volume, index->sha1, sha1);
  }
  return std::move(*index);
}

void warm_index_key(std::string_view head, const SecretBuffer& passphrase) {
  if (head.size() < kSealedHead || !head.starts_with(kMagic) ||
      static_cast<uint8_t>(head[kModeAt]) != kModeSealed) {
    return;
  }
  Salt salt;
  std::memcpy(salt.data(), head.data() + kSaltAt, kSaltSize);
  if (cached_s2k(passphrase, index_s2k(salt, bytes_of(head)[kCountAt]), kKeySize)) {
    note_opened_salt(salt);
  }
}

}  // namespace dupfs::chain

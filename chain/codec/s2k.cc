// The OpenPGP S2K function and the process's key cache: see s2k.h.
#include "chain/codec/s2k.h"

#include <fmt/core.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <vector>

#include "chain/codec/sha1x2.h"

namespace dupfs::chain {
namespace {

constexpr size_t kSha1Size = 20;
// The iterated S2K hashes repetitions of salt||passphrase in updates of about this size.
constexpr size_t kS2kChunkSize = size_t{64} << 10;
constexpr size_t kKeyCacheEntries = 256;

const EVP_MD* s2k_digest(int algo) {
  switch (algo) {
    case 1:
      return EVP_md5();
    case 2:
      return EVP_sha1();
    case 8:
      return EVP_sha256();
    case 9:
      return EVP_sha384();
    case 10:
      return EVP_sha512();
    case 11:
      return EVP_sha224();
    default:
      return nullptr;
  }
}

std::atomic<uint64_t> g_derivations{0};

// RFC 4880 §3.7.1. `salt` has 8 octets for types 1 and 3. False when OpenSSL fails.
bool s2k(std::string_view passphrase, int type, const EVP_MD* md, const uint8_t* salt,
         uint8_t count_octet, uint8_t* key, size_t key_length) {
  g_derivations.fetch_add(1, std::memory_order_relaxed);
  const size_t salt_length = type == 0 ? 0 : 8;
  SecretBuffer pattern(salt_length + passphrase.size());
  if (salt_length != 0) std::memcpy(pattern.data(), salt, salt_length);
  if (!passphrase.empty()) {
    std::memcpy(pattern.data() + salt_length, passphrase.data(), passphrase.size());
  }
  // The hashed octets: salt||passphrase repeated up to `total` octets, at least once.
  uint64_t total = pattern.size();
  if (type == 3) total = std::max<uint64_t>(s2k_count(count_octet), pattern.size());
  // Keys of 21 to 40 octets from SHA1 (AES-192/256): both contexts in one pass with SHA-NI,
  // about twice as fast as the loop below; false on CPUs without it.
  if (md == EVP_sha1() && key_length > kSha1Size && key_length <= 2 * kSha1Size &&
      s2k_sha1_ni(std::string_view(reinterpret_cast<const char*>(pattern.data()), pattern.size()),
                  total, std::span(key, key_length))) {
    return true;
  }
  // Whole repetitions in one buffer, so that consecutive updates continue the pattern.
  SecretBuffer repeated;
  const SecretBuffer* block = &pattern;
  if (total > pattern.size()) {
    size_t reps = std::max<size_t>(1, kS2kChunkSize / pattern.size());
    reps = static_cast<size_t>(
        std::min<uint64_t>(reps, (total + pattern.size() - 1) / pattern.size()));
    repeated = SecretBuffer(reps * pattern.size());
    for (size_t i = 0; i < reps; ++i) {
      std::memcpy(repeated.data() + i * pattern.size(), pattern.data(), pattern.size());
    }
    block = &repeated;
  }

  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx) return false;
  const size_t digest_size = static_cast<size_t>(EVP_MD_get_size(md));
  static constexpr uint8_t kZeros[64] = {};
  unsigned char digest[EVP_MAX_MD_SIZE];
  bool ok = true;
  // Keys longer than the digest: the i-th context is preloaded with i zero octets.
  for (size_t i = 0, done = 0; ok && done < key_length; ++i) {
    ok = EVP_DigestInit_ex(ctx.get(), md, nullptr) == 1;
    for (size_t zeros = i; ok && zeros > 0;) {
      size_t n = std::min(zeros, sizeof kZeros);
      ok = EVP_DigestUpdate(ctx.get(), kZeros, n) == 1;
      zeros -= n;
    }
    for (uint64_t left = total; ok && left > 0;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(left, block->size()));
      ok = EVP_DigestUpdate(ctx.get(), block->data(), n) == 1;
      left -= n;
    }
    unsigned int length = 0;
    ok = ok && EVP_DigestFinal_ex(ctx.get(), digest, &length) == 1 && length == digest_size;
    if (ok) {
      size_t n = std::min(digest_size, key_length - done);
      std::memcpy(key + done, digest, n);
      done += n;
    }
  }
  OPENSSL_cleanse(digest, sizeof digest);
  return ok;
}

// Derived keys of this process, in memory only, the oldest dropped first. A key being derived
// by one thread is waited for by others that need it, not derived again.
class KeyCache {
 public:
  // The key, or nullopt after having claimed the derivation of `id`: the caller must then
  // call done(id, key) or abandon(id).
  std::optional<SecretBuffer> find_or_claim(const SecretBuffer& id) {
    std::unique_lock lock(mu_);
    for (;;) {
      for (const auto& [entry_id, key] : entries_) {
        if (entry_id == id) return SecretBuffer(key.data(), key.size());
      }
      auto pending = std::find_if(pending_.begin(), pending_.end(),
                                  [&](const SecretBuffer* p) { return *p == id; });
      if (pending == pending_.end()) break;
      derived_.wait(lock);
    }
    pending_.push_back(&id);
    return std::nullopt;
  }
  void done(const SecretBuffer& id, const SecretBuffer& key) {
    std::lock_guard lock(mu_);
    entries_.emplace_back(SecretBuffer(id.data(), id.size()), SecretBuffer(key.data(), key.size()));
    while (entries_.size() > kKeyCacheEntries) entries_.pop_front();
    unclaim(id);
  }
  void abandon(const SecretBuffer& id) {
    std::lock_guard lock(mu_);
    unclaim(id);
  }
  void clear() {
    std::lock_guard lock(mu_);
    entries_.clear();
  }

 private:
  void unclaim(const SecretBuffer& id) {
    pending_.erase(std::remove(pending_.begin(), pending_.end(), &id), pending_.end());
    derived_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable derived_;
  std::deque<std::pair<SecretBuffer, SecretBuffer>> entries_;
  std::vector<const SecretBuffer*> pending_;  // ids being derived, owned by their threads
};

KeyCache& key_cache() {
  static KeyCache cache;
  return cache;
}

}  // namespace

void SecretBuffer::wipe() {
  if (data_) OPENSSL_cleanse(data_.get(), size_);
}

bool s2k_hash_known(int hash_algo) { return s2k_digest(hash_algo) != nullptr; }

uint32_t s2k_count(uint8_t octet) { return (uint32_t{16} + (octet & 15)) << ((octet >> 4) + 6); }

std::optional<SecretBuffer> cached_s2k(const SecretBuffer& passphrase, const S2kSpec& spec,
                                       size_t key_length) {
  // type, hash, salt, count, key length, passphrase
  SecretBuffer id(2 + spec.salt.size() + 1 + 1 + passphrase.size());
  uint8_t* p = id.data();
  *p++ = static_cast<uint8_t>(spec.type);
  *p++ = static_cast<uint8_t>(spec.hash);
  std::memcpy(p, spec.salt.data(), spec.salt.size());
  p += spec.salt.size();
  *p++ = spec.count_octet;
  *p++ = static_cast<uint8_t>(key_length);
  if (passphrase.size() != 0) std::memcpy(p, passphrase.data(), passphrase.size());

  KeyCache& cache = key_cache();
  if (auto key = cache.find_or_claim(id)) return key;
  // Whatever happens below, the claim is given up.
  struct Claim {
    KeyCache& cache;
    const SecretBuffer& id;
    bool done = false;
    ~Claim() {
      if (!done) cache.abandon(id);
    }
  } claim{cache, id};
  SecretBuffer key(key_length);
  std::string_view pass(reinterpret_cast<const char*>(passphrase.data()), passphrase.size());
  if (!s2k(pass, spec.type, s2k_digest(spec.hash), spec.salt.data(), spec.count_octet, key.data(),
           key_length)) {
    return std::nullopt;
  }
  cache.done(id, key);
  claim.done = true;
  return key;
}

uint64_t s2k_derivations() { return g_derivations.load(std::memory_order_relaxed); }

void clear_s2k_cache() { key_cache().clear(); }

Status derive_s2k_key(std::string_view passphrase, int type, int hash_algo,
                      std::span<const uint8_t> salt, uint8_t count_octet, std::span<uint8_t> key) {
  const EVP_MD* md = s2k_digest(hash_algo);
  if (md == nullptr) return error(ErrorKind::kUnsupported, "S2K hash algorithm {}", hash_algo);
  if (type != 0 && type != 1 && type != 3) {
    return error(ErrorKind::kUnsupported, "S2K type {}", type);
  }
  if (type != 0 && salt.size() != 8) {
    return error(ErrorKind::kInvalidArgument, "S2K salt of {} octets", salt.size());
  }
  if (!s2k(passphrase, type, md, salt.data(), count_octet, key.data(), key.size())) {
    return error(ErrorKind::kIoError, "S2K failed");
  }
  return {};
}

}  // namespace dupfs::chain

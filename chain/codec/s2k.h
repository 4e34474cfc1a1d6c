// The OpenPGP string-to-key function (RFC 4880 §3.7) and this process's cache of the keys it
// derived: the part of OpenPGP that turns a passphrase into a key, for the decryptor
// (chain/codec/openpgp.h) and the encryptor (chain/codec/openpgp_encrypt.h). An iterated S2K
// costs tens of milliseconds by design, and the same object is often decoded more than once (a
// mount reads a volume again once its blocks left the cache): the decryptor derives each key
// once per process.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

#include "backends/base/error.h"

namespace dupfs::chain {

// Bytes that are wiped when freed: keys, passphrases, plaintext.
class SecretBuffer {
 public:
  SecretBuffer() = default;
  explicit SecretBuffer(size_t size)
      : data_(size != 0 ? std::make_unique<uint8_t[]>(size) : nullptr), size_(size) {}
  SecretBuffer(const void* data, size_t size) : SecretBuffer(size) {
    if (size != 0) std::memcpy(data_.get(), data, size);
  }
  ~SecretBuffer() { wipe(); }
  SecretBuffer(SecretBuffer&& other) noexcept
      : data_(std::move(other.data_)), size_(std::exchange(other.size_, 0)) {}
  SecretBuffer& operator=(SecretBuffer&& other) noexcept {
    if (this != &other) {
      wipe();
      data_ = std::move(other.data_);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }

  uint8_t* data() { return data_.get(); }
  const uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }
  bool operator==(const SecretBuffer& other) const {
    return size_ == other.size_ && (size_ == 0 || std::memcmp(data(), other.data(), size_) == 0);
  }

 private:
  void wipe();  // OPENSSL_cleanse
  std::unique_ptr<uint8_t[]> data_;
  size_t size_ = 0;
};

// An S2K specifier, as an SKESK packet carries it (RFC 4880 §3.7.1).
struct S2kSpec {
  int type = 0;                   // 0 simple, 1 salted, 3 iterated+salted
  int hash = 0;                   // the hash algorithm
  std::array<uint8_t, 8> salt{};  // types 1 and 3
  uint8_t count_octet = 0;        // type 3: the coded count
};

// Whether the S2K function implements hash algorithm `hash_algo` (1 MD5, 2 SHA1, 8 SHA256,
// 9 SHA384, 10 SHA512, 11 SHA224).
bool s2k_hash_known(int hash_algo);

// The number of octets an iterated+salted S2K hashes, from its coded count octet.
uint32_t s2k_count(uint8_t count_octet);

// The S2K key of `key_length` octets for `passphrase` and `spec`, from the cache if this
// passphrase and specifier were seen before. The cache is in memory only and keeps the last 256
// keys; a key that one thread is deriving is waited for by the others that need it, not derived
// again. spec.type must be 0, 1 or 3 and spec.hash known. nullopt when OpenSSL fails.
std::optional<SecretBuffer> cached_s2k(const SecretBuffer& passphrase, const S2kSpec& spec,
                                       size_t key_length);

// Number of S2K key derivations performed by this process (cache misses of the decryptor and
// calls of derive_s2k_key).
uint64_t s2k_derivations();

// Empties the process-wide cache of derived keys (wiping them). For tests.
void clear_s2k_cache();

// The RFC 4880 §3.7.1 string-to-key function, uncached: fills `key` from `passphrase`.
// type 0 simple, 1 salted, 3 iterated+salted (`salt` 8 octets for 1 and 3; `count_octet` is
// the coded count of type 3); hash_algo 1 MD5, 2 SHA1, 8 SHA256, 9 SHA384, 10 SHA512,
// 11 SHA224. kUnsupported for other types or hashes, kInvalidArgument for a bad salt size.
Status derive_s2k_key(std::string_view passphrase, int type, int hash_algo,
                      std::span<const uint8_t> salt, uint8_t count_octet, std::span<uint8_t> key);

}  // namespace dupfs::chain

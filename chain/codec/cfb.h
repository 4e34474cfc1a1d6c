// CFB decryption as OpenPGP's SEIPD uses it (RFC 4880 §13.9: zero IV, no resynchronisation),
// shared by the in-process decryptor (openpgp.cc) and the decoder that resumes in the middle
// of a volume (seek.cc). Internal to chain/codec.
//
// CFB decryption is done as ECB encryption of the ciphertext shifted by one block, XORed
// with the ciphertext: P[i] = C[i] ^ E(C[i-1]). Every E() input is known in advance, so the
// blocks are independent and OpenSSL's pipelined AES-NI ECB code runs at several GB/s, where
// its CFB128 code, one block after the other, does about 0.5 GB/s for AES-256.
#pragma once

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace dupfs::chain {

// All the ciphers we implement have 16-octet blocks.
inline constexpr size_t kCfbBlockSize = 16;

// The ECB form of the ciphers we decrypt (CFB is built on it), nullptr for others.
inline const EVP_CIPHER* ecb_cipher(int algo) {
  switch (algo) {
    case 7:
      return EVP_aes_128_ecb();
    case 8:
      return EVP_aes_192_ecb();
    case 9:
      return EVP_aes_256_ecb();
    case 11:
      return EVP_camellia_128_ecb();
    case 12:
      return EVP_camellia_192_ecb();
    case 13:
      return EVP_camellia_256_ecb();
    default:
      return nullptr;
  }
}

// Key size of every cipher RFC 4880 names, 0 for unknown ones.
inline size_t cipher_key_size(int algo) {
  switch (algo) {
    case 1:   // IDEA
    case 3:   // CAST5
    case 4:   // Blowfish
    case 7:   // AES-128
    case 11:  // Camellia-128
      return 16;
    case 2:   // TripleDES
    case 8:   // AES-192
    case 12:  // Camellia-192
      return 24;
    case 9:   // AES-256
    case 10:  // Twofish
    case 13:  // Camellia-256
      return 32;
    default:
      return 0;
  }
}

inline void xor_into(uint8_t* out, const uint8_t* in, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    uint64_t a[2], b[2];
    std::memcpy(a, out + i, 16);
    std::memcpy(b, in + i, 16);
    a[0] ^= b[0];
    a[1] ^= b[1];
    std::memcpy(out + i, a, 16);
  }
  for (; i < n; ++i) out[i] ^= in[i];
}

class CfbDecryptor {
 public:
  CfbDecryptor() = default;
  ~CfbDecryptor() {
    EVP_CIPHER_CTX_free(ctx_);
    OPENSSL_cleanse(keystream_, sizeof keystream_);
  }
  CfbDecryptor(const CfbDecryptor&) = delete;
  CfbDecryptor& operator=(const CfbDecryptor&) = delete;

  // A 16-octet block cipher in ECB form and its key. False when OpenSSL fails.
  bool init(const EVP_CIPHER* cipher, const uint8_t* key) {
    if (ctx_ == nullptr && (ctx_ = EVP_CIPHER_CTX_new()) == nullptr) return false;
    if (EVP_CIPHER_get_block_size(cipher) != static_cast<int>(kCfbBlockSize) ||
        EVP_EncryptInit_ex(ctx_, cipher, nullptr, key, nullptr) != 1 ||
        EVP_CIPHER_CTX_set_padding(ctx_, 0) != 1) {
      return false;
    }
    std::memset(previous_, 0, sizeof previous_);
    used_ = 0;
    return true;
  }

  // The same, resuming at a block boundary: `iv` is the ciphertext block before it.
  bool init(const EVP_CIPHER* cipher, const uint8_t* key, const uint8_t* iv) {
    if (!init(cipher, key)) return false;
    std::memcpy(previous_, iv, kCfbBlockSize);
    return true;
  }

  // `in` and `out` must not overlap.
  bool decrypt(const uint8_t* in, uint8_t* out, size_t n) {
    size_t i = 0;
    // The rest of a block begun by an earlier call.
    if (used_ != 0) {
      while (used_ < kCfbBlockSize && i < n) {
        current_[used_] = in[i];
        out[i] = in[i] ^ keystream_[used_];
        ++used_;
        ++i;
      }
      if (used_ < kCfbBlockSize) return true;
      std::memcpy(previous_, current_, kCfbBlockSize);
      used_ = 0;
    }
    // Whole blocks: the keystream is E(previous block), E(in[0..16)), E(in[16..32)), ...
    size_t blocks = (n - i) / kCfbBlockSize;
    if (blocks > 0) {
      size_t bytes = blocks * kCfbBlockSize;
      if (!ecb(previous_, out + i, kCfbBlockSize)) return false;
      if (blocks > 1 && !ecb(in + i, out + i + kCfbBlockSize, bytes - kCfbBlockSize)) return false;
      xor_into(out + i, in + i, bytes);
      std::memcpy(previous_, in + i + bytes - kCfbBlockSize, kCfbBlockSize);
      i += bytes;
    }
    // The beginning of a block.
    if (i < n) {
      if (!ecb(previous_, keystream_, kCfbBlockSize)) return false;
      while (i < n) {
        current_[used_] = in[i];
        out[i] = in[i] ^ keystream_[used_];
        ++used_;
        ++i;
      }
    }
    return true;
  }

 private:
  bool ecb(const uint8_t* in, uint8_t* out, size_t n) {
    constexpr size_t kMaxUpdate = size_t{1} << 30;
    while (n > 0) {
      size_t chunk = std::min(n, kMaxUpdate);
      int written = 0;
      if (EVP_EncryptUpdate(ctx_, out, &written, in, static_cast<int>(chunk)) != 1 ||
          written != static_cast<int>(chunk)) {
        return false;
      }
      in += chunk;
      out += chunk;
      n -= chunk;
    }
    return true;
  }

  EVP_CIPHER_CTX* ctx_ = nullptr;
  uint8_t previous_[kCfbBlockSize] = {};   // the last whole ciphertext block (the IV at first)
  uint8_t current_[kCfbBlockSize] = {};    // ciphertext octets of the block being decrypted
  uint8_t keystream_[kCfbBlockSize] = {};  // E(previous_) while a block is being decrypted
  size_t used_ = 0;                        // octets of the current block done
};

}  // namespace dupfs::chain

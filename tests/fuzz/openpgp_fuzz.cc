// OpenPGP framing: SymmetricDecryptor (chain/codec/openpgp.cc), fed whole and in small pieces, in
// two modes:
//   - a stored message as duplicity's gpg writes it, with the passphrase the seeds were made
//     with ("fuzz"). CFB lets bit flips in the ciphertext reach the packets inside before the
//     MDC check fails. Keys derived by the S2K are cached by the decryptor, so seeds cost one
//     derivation each; mutated S2K specifiers cost one per iteration.
//   - input starting with 'I': the rest is the plaintext inside the SEIPD packet (compressed
//     and literal packets), which the target encrypts itself (SKESK with simple S2K, AES-128,
//     a valid MDC), so that the inner packet parsers see the fuzzer's bytes directly.
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "chain/codec/openpgp.h"
#include "chain/codec/s2k.h"
#include "fuzz_util.h"

using namespace dupfs::chain;

namespace {

dupfs::Status run(std::string_view in, size_t max_piece, uint64_t& out) {
  SymmetricDecryptor d("fuzz", [&](std::string_view piece) -> dupfs::Status {
    if (piece.empty()) dupfs::fuzz::fail("empty piece to the sink");
    out += piece.size();
    return {};
  });
  dupfs::Status st;
  if (max_piece == 0) {
    st = d.feed(in);
  } else {
    dupfs::fuzz::in_pieces(in, max_piece, [&](std::string_view piece) {
      if (st) st = d.feed(piece);
    });
  }
  if (st) st = d.finish();
  if (!st && st.error().kind == dupfs::ErrorKind::kUnsupported && d.produced_output()) {
    dupfs::fuzz::fail("kUnsupported after output");
  }
  return st;
}

// A new-format packet header with a definite length (RFC 4880 §4.2.2).
std::string packet_header(int tag, size_t length) {
  std::string h(1, static_cast<char>(0xC0 | tag));
  if (length < 192) {
    h += static_cast<char>(length);
  } else if (length < 8384) {
    h += static_cast<char>(((length - 192) >> 8) + 192);
    h += static_cast<char>((length - 192) & 0xff);
  } else {
    h += static_cast<char>(0xff);
    for (int shift = 24; shift >= 0; shift -= 8) h += static_cast<char>((length >> shift) & 0xff);
  }
  return h;
}

// SKESK v4 (AES-128, simple S2K with SHA1) + SEIPD v1 with `inner` and a valid MDC.
std::string encrypt_inner(std::string_view inner) {
  static const std::array<uint8_t, 16> key = [] {
    std::array<uint8_t, 16> k{};
    if (!derive_s2k_key("fuzz", 0, 2, {}, 0, k)) dupfs::fuzz::fail("derive_s2k_key");
    return k;
  }();
  std::string plain = "0123456789abcdef";  // the random prefix, then its last two octets again
  plain += "ef";
  plain += inner;
  plain += "\xd3\x14";
  uint8_t mdc[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const uint8_t*>(plain.data()), plain.size(), mdc);
  plain.append(reinterpret_cast<const char*>(mdc), sizeof mdc);

  std::string body(1, '\x01');
  body.resize(1 + plain.size());
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  const uint8_t iv[16] = {};
  int n = 0;
  if (ctx == nullptr ||
      EVP_EncryptInit_ex(ctx, EVP_aes_128_cfb128(), nullptr, key.data(), iv) != 1 ||
      EVP_EncryptUpdate(ctx, reinterpret_cast<uint8_t*>(body.data() + 1), &n,
                        reinterpret_cast<const uint8_t*>(plain.data()),
                        static_cast<int>(plain.size())) != 1) {
    dupfs::fuzz::fail("AES-CFB");
  }
  EVP_CIPHER_CTX_free(ctx);
  const std::string skesk("\x04\x07\x00\x02", 4);  // v4, AES-128, simple S2K, SHA1
  return packet_header(3, skesk.size()) + skesk + packet_header(18, body.size()) + body;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = dupfs::fuzz::as_view(data, size);
  std::string message;
  if (!in.empty() && in[0] == 'I') {
    message = encrypt_inner(in.substr(1));
    in = message;
  }
  uint64_t out_whole = 0, out_split = 0;
  auto whole = run(in, 0, out_whole);
  auto split = run(in, 97, out_split);
  // An error of the sink comes back unchanged.
  SymmetricDecryptor d("fuzz", [](std::string_view) -> dupfs::Status {
    return dupfs::make_error(dupfs::ErrorKind::kCorruption, "SINK-REFUSES");
  });
  auto refused = d.feed(in);
  if (refused) refused = d.finish();
  if (!refused && refused.error().message.find("SINK-REFUSES") != std::string::npos &&
      refused.error().message != "SINK-REFUSES") {
    dupfs::fuzz::fail("the sink's error came back changed");
  }
  if (whole.has_value() != split.has_value()) dupfs::fuzz::fail("whole and split disagree");
  if (whole && out_whole != out_split) dupfs::fuzz::fail("whole and split output differ");
  return 0;
}

// OpenPGP framing: SymmetricDecryptor (chain/openpgp.cc) on passphrase-encrypted messages as
// duplicity's gpg writes them, with the passphrase the seeds were made with ("fuzz"), fed whole
// and in small pieces. CFB lets bit flips in the ciphertext reach the packets inside (compressed,
// literal, MDC) before the MDC check fails. Keys derived by the S2K are cached by the decryptor,
// so seeds cost one derivation each; mutated S2K specifiers cost one per iteration.
#include <cstddef>
#include <cstdint>

#include "chain/openpgp.h"
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = dupfs::fuzz::as_view(data, size);
  uint64_t out_whole = 0, out_split = 0;
  auto whole = run(in, 0, out_whole);
  auto split = run(in, 97, out_split);
  if (whole.has_value() != split.has_value()) dupfs::fuzz::fail("whole and split disagree");
  if (whole && out_whole != out_split) dupfs::fuzz::fail("whole and split output differ");
  return 0;
}

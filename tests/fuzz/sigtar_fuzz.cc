// Signature files: read_sigtar, read_sigtar_with_signatures and the streaming SignedSigtarParser
// (fed in small pieces) on decoded sigtars; all three must agree, and the entries are merged.
#include <cstddef>
#include <cstdint>

#include "chain/format/sigtar.h"
#include "fuzz_util.h"

using namespace dupfs::chain;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = dupfs::fuzz::as_view(data, size);
  auto plain = read_sigtar(in);
  auto signed_entries = read_sigtar_with_signatures(in);
  if (plain.has_value() != signed_entries.has_value()) {
    dupfs::fuzz::fail("read_sigtar and read_sigtar_with_signatures disagree");
  }

  SignedSigtarParser parser;
  std::vector<SignedSigEntry> streamed;
  dupfs::Status st;
  dupfs::fuzz::in_pieces(in, 600, [&](std::string_view piece) {
    if (!st) return;
    st = parser.feed(piece);
    while (st && parser.has_entry()) streamed.push_back(parser.take());
  });
  if (st) st = parser.finish();
  while (st && parser.has_entry()) streamed.push_back(parser.take());
  if (st.has_value() != signed_entries.has_value()) {
    dupfs::fuzz::fail("SignedSigtarParser and read_sigtar_with_signatures disagree");
  }
  if (!signed_entries) return 0;
  if (streamed.size() != signed_entries->size() || plain->size() != streamed.size()) {
    dupfs::fuzz::fail("different numbers of entries");
  }
  for (size_t i = 0; i < streamed.size(); ++i) {
    if (streamed[i].signature != (*signed_entries)[i].signature ||
        streamed[i].entry.index != (*signed_entries)[i].entry.index) {
      dupfs::fuzz::fail("streamed entry differs");
    }
  }
  auto layer = std::make_shared<const std::vector<SigEntry>>(std::move(*plain));
  (void)merge_signatures({layer, layer});
  (void)merge_signed_signatures({std::move(streamed), std::move(*signed_entries)});
  return 0;
}

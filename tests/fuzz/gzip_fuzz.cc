// gzip framing: decode_object on a ".gz" object in a MemoryBackend (members, zero padding
// after a member, truncation, CRC and length checks), and the Inflater in its raw and zlib
// formats fed in small pieces.
#include <cstddef>
#include <cstdint>

#include "backends/memory_backend.h"
#include "chain/codec/decode.h"
#include "chain/codec/inflate.h"
#include "fuzz_util.h"

using namespace dupfs::chain;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = dupfs::fuzz::as_view(data, size);
  dupfs::MemoryBackend backend;
  backend.put("duplicity-full.20261126T063843Z.vol1.difftar.gz", std::string(in));
  uint64_t out = 0;
  (void)decode_object(backend, "duplicity-full.20261126T063843Z.vol1.difftar.gz", Credentials{},
                      [&](std::string_view piece) -> dupfs::Status {
                        out += piece.size();
                        return {};
                      });

  // An error of the sink comes back unchanged.
  auto refused =
      decode_object(backend, "duplicity-full.20261126T063843Z.vol1.difftar.gz", Credentials{},
                    [](std::string_view) -> dupfs::Status {
                      return dupfs::make_error(dupfs::ErrorKind::kCorruption, "SINK-REFUSES");
                    });
  if (!refused && refused.error().kind == dupfs::ErrorKind::kCorruption &&
      refused.error().message.find("SINK-REFUSES") != std::string::npos &&
      refused.error().message != "SINK-REFUSES") {
    dupfs::fuzz::fail("the sink's error came back changed");
  }

  for (auto format : {Inflater::Format::kRaw, Inflater::Format::kZlib}) {
    Inflater inflater(format);
    bool failed = false;
    dupfs::fuzz::in_pieces(in, 300, [&](std::string_view piece) {
      if (failed || inflater.finished()) return;
      auto used = inflater.feed(piece, [](std::string_view) -> dupfs::Status { return {}; });
      if (!used) {
        failed = true;
      } else if (*used > piece.size()) {
        dupfs::fuzz::fail("Inflater consumed more than it was given");
      }
    });
  }
  return 0;
}

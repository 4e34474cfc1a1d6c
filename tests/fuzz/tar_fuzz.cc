// The push tar parser on decoded difftar volumes, and parse_entry_name on every entry's name.
// The stream is parsed twice, whole and in small pieces: both must report the same entries, the
// same data and the same outcome.
#include <cstddef>
#include <cstdint>
#include <string>

#include "chain/format/difftar.h"
#include "chain/format/tar.h"
#include "fuzz_util.h"

using namespace dupfs::chain;

namespace {

class Recorder : public TarVisitor {
 public:
  std::string log;  // what the visitor saw, in order
  dupfs::Status on_entry(const TarHeader& h) override {
    if (auto e = parse_entry_name(h.name)) {
      log += "kind" + std::to_string(static_cast<int>(e->kind)) + "/" + std::to_string(e->chunk);
      for (const auto& part : e->index) {
        if (part.empty() || part == "." || part == "..") log += "[suspicious]";
      }
    }
    log += "E" + h.name + "|" + h.linkname + "|" + std::to_string(h.size) + "|" +
           std::to_string(h.data_offset) + "\n";
    return {};
  }
  dupfs::Status on_data(const TarHeader& h, std::string_view piece) override {
    if (piece.empty()) dupfs::fuzz::fail("on_data with an empty piece");
    data_seen += piece.size();
    if (data_seen > h.size) dupfs::fuzz::fail("more data than the header's size");
    log += piece;  // pieces differ with the split, the bytes do not
    return {};
  }
  dupfs::Status on_entry_end(const TarHeader& h) override {
    if (data_seen != h.size) dupfs::fuzz::fail("entry ended before its size");
    data_seen = 0;
    log += "X\n";
    return {};
  }
  uint64_t data_seen = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = dupfs::fuzz::as_view(data, size);
  Recorder whole;
  TarParser a(whole);
  auto fed_a = a.feed(in);
  auto end_a = fed_a ? a.finish() : fed_a;

  Recorder split;
  TarParser b(split);
  dupfs::Status fed_b;
  dupfs::fuzz::in_pieces(in, 700, [&](std::string_view piece) {
    if (fed_b) fed_b = b.feed(piece);
  });
  auto end_b = fed_b ? b.finish() : fed_b;

  // Data before an error may be delivered in different amounts; compare only on success.
  if (end_a.has_value() != end_b.has_value()) dupfs::fuzz::fail("whole and split disagree");
  if (end_a && whole.log != split.log) dupfs::fuzz::fail("whole and split saw different entries");
  if (end_a && a.offset() != b.offset()) dupfs::fuzz::fail("whole and split end at other offsets");
  return 0;
}

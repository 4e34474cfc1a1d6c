// duplicity's remote file names: parse_name (all three forms, with and without prefixes) and
// parse_name_time. A name that parses must be written back by the long-form writers to a name
// that parses to the same fields.
#include <cstddef>
#include <cstdint>

#include "chain/format/names.h"
#include "fuzz_util.h"

using namespace dupfs::chain;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = dupfs::fuzz::as_view(data, size);
  (void)parse_name_time(in);
  (void)parse_name_time(in, "_");
  NamePrefixes prefixes{"pre-", "a-", "m-", "s-", ":"};
  (void)parse_name(in, prefixes);
  auto p = parse_name(in);
  if (!p || p->partial) return 0;
  // Long-form times are years 1901..2099 (as duplicity's dup_time checks); short-form (base 36)
  // times have no such bound, so names with later times are not written back.
  auto in_range = [](int64_t t) { return t > 0 && t < 4102444800; };  // before 2100
  std::string suffix = p->encrypted ? ".gpg" : p->compressed ? ".gz" : "";
  std::string out;
  switch (p->type) {
    case FileType::kFull:
      if (!in_range(p->time)) return 0;
      out = p->manifest ? full_manifest_name(p->time, suffix)
                        : full_volume_name(p->time, p->volume, suffix);
      break;
    case FileType::kInc:
      if (!in_range(p->start_time) || !in_range(p->end_time)) return 0;
      out = p->manifest ? inc_manifest_name(p->start_time, p->end_time, suffix)
                        : inc_volume_name(p->start_time, p->end_time, p->volume, suffix);
      break;
    case FileType::kFullSig:
      if (!in_range(p->time)) return 0;
      out = full_sig_name(p->time, suffix);
      break;
    case FileType::kNewSig:
      if (!in_range(p->start_time) || !in_range(p->end_time)) return 0;
      out = new_sig_name(p->start_time, p->end_time, suffix);
      break;
  }
  auto again = parse_name(out);
  if (!again) dupfs::fuzz::fail("a written name does not parse");
  if (again->type != p->type || again->time != p->time || again->start_time != p->start_time ||
      again->end_time != p->end_time || again->volume != p->volume ||
      again->manifest != p->manifest || again->encrypted != p->encrypted ||
      again->compressed != p->compressed) {
    dupfs::fuzz::fail("a written name parses to other fields");
  }
  return 0;
}

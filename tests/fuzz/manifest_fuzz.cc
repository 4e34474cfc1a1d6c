// Manifests: parse_manifest on decoded manifest text; what parses is written back with
// format_manifest, and volumes_for_prefix is asked about the first volume's start.
#include <cstddef>
#include <cstdint>

#include "chain/format/manifest.h"
#include "fuzz_util.h"

using namespace dupfs::chain;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto m = parse_manifest(dupfs::fuzz::as_view(data, size));
  if (!m) return 0;
  std::string text = format_manifest(*m);
  (void)parse_manifest(text);
  if (!m->volumes.empty()) {
    (void)volumes_for_prefix(*m, m->volumes.begin()->second.start);
    (void)volumes_for_prefix(*m, m->volumes.rbegin()->second.end);
  }
  (void)volumes_for_prefix(*m, {});
  return 0;
}

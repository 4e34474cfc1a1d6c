// A decoded difftar volume as the mount reads it: VolumeStore over in-memory storage catalogs
// it (tar reader, entry names, hostile-volume checks), snapshot entries (multivol chunks joined)
// become whole FileVersions, diff entries are patched onto the whole version of the same path
// (or else the first one) with FileVersion::patched, and every version is read back whole:
// reads must return exactly the size each version announces, or fail cleanly.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "backends/memory_backend.h"
#include "chain/read/block_cache.h"
#include "chain/read/file_version.h"
#include "chain/read/volume_store.h"
#include "fuzz_util.h"

using namespace dupfs::chain;

namespace {

constexpr uint64_t kMaxRead = uint64_t{1} << 20;  // longer versions are read only in part

void read_all(VolumeStore& store, const FileVersion& v) {
  uint64_t size = std::min(v.size(), kMaxRead);
  std::string buf(4093, '\0');
  for (uint64_t off = 0; off < size;) {
    auto n = v.read(store, off, buf.data(), buf.size());
    if (!n) return;  // damage, reported cleanly
    if (*n == 0) dupfs::fuzz::fail("a version ends before its size");
    if (*n > buf.size()) dupfs::fuzz::fail("read returned more than asked");
    off += *n;
  }
  auto past = v.read(store, v.size(), buf.data(), buf.size());
  if (past && *past != 0) dupfs::fuzz::fail("read past the end returned data");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto backend = std::make_shared<dupfs::MemoryBackend>();
  backend->put("vol1.difftar", std::string(dupfs::fuzz::as_view(data, size)));
  BlockCache cache(8 << 20);
  VolumeStoreOptions options;
  options.block_size = 4096;
  options.readahead_bytes = 64 << 10;
  options.decode_slots = 1;
  VolumeStore store(backend, {}, cache, options);
  uint32_t id = store.add_volume("vol1.difftar", "");
  auto catalog = store.catalog(id);
  if (!catalog) return 0;

  std::map<Index, Stream> snapshots, deltas;
  for (const CatalogEntry& e : *catalog) {
    if (e.header.data_offset + e.header.size > size) {
      dupfs::fuzz::fail("catalog entry reaches past the volume");
    }
    if (is_snapshot_kind(e.name.kind)) {
      snapshots[e.name.index].append(id, e.header.data_offset, e.header.size);
    } else if (is_diff_kind(e.name.kind)) {
      deltas[e.name.index].append(id, e.header.data_offset, e.header.size);
    }
  }
  std::map<Index, std::shared_ptr<const FileVersion>> whole;
  for (auto& [index, stream] : snapshots) {
    auto v = FileVersion::whole(std::move(stream));
    read_all(store, *v);
    whole[index] = std::move(v);
  }
  for (auto& [index, stream] : deltas) {
    auto basis = whole.contains(index) ? whole[index]
                 : whole.empty()       ? nullptr
                                       : whole.begin()->second;
    if (!basis) basis = FileVersion::whole(Stream{});
    auto v = FileVersion::patched(store, stream, basis);
    if (!v) continue;
    read_all(store, **v);
    // A delta of the patched version onto itself: two levels deep.
    if (auto again = FileVersion::patched(store, stream, *v)) read_all(store, **again);
  }
  return 0;
}

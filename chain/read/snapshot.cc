#include "chain/read/snapshot.h"

#include <algorithm>
#include <future>
#include <unordered_map>

#include "chain/format/owners.h"

namespace dupfs::chain {

std::shared_ptr<const FileVersion> VersionCache::find(uint32_t volume, uint64_t offset) {
  std::lock_guard lock(mu_);
  auto it = map_.find({volume, offset});
  return it == map_.end() ? nullptr : it->second;
}

void VersionCache::insert(uint32_t volume, uint64_t offset, std::shared_ptr<const FileVersion> v) {
  std::lock_guard lock(mu_);
  map_.emplace(std::make_pair(volume, offset), std::move(v));
}

Snapshot::Snapshot(int64_t time,
                   const std::vector<std::shared_ptr<const std::vector<SigEntry>>>& layers,
                   std::vector<SetRef> sets, VolumeStore& store, VersionCache& versions,
                   bool numeric_owner)
    : time_(time), sets_(std::move(sets)), store_(store), versions_(versions) {
  const std::vector<SigEntry> entries = merge_signatures(layers);
  OwnerMapper owners;
  nodes_.push_back(Node{});  // the root, until its entry (index ()) fills it in
  nodes_[0].mode = 0755;
  // Entries come sorted by index, so a parent is always met before its children; the path of
  // directories just walked is a stack of (index depth -> node id).
  std::vector<uint32_t> stack{kRoot};
  for (const auto& e : entries) {
    if (e.kind == EntryKind::kDeleted) continue;
    Node n;
    n.type = e.type;
    n.mode = e.mode & 07777;
    n.uid = numeric_owner ? e.uid : owners.uid(e.uname, e.uid);
    n.gid = numeric_owner ? e.gid : owners.gid(e.gname, e.gid);
    n.mtime = std::max<int64_t>(e.mtime, 0);
    n.linkname = e.linkname;
    n.devmajor = e.devmajor;
    n.devminor = e.devminor;
    if (e.index.empty()) {
      n.children = std::move(nodes_[0].children);
      nodes_[0] = std::move(n);
      continue;
    }
    // The parent is the node for e.index minus its last component.
    size_t depth = e.index.size();
    if (stack.size() < depth) continue;  // parent missing from the signatures: skip subtree
    stack.resize(depth);
    uint32_t parent = stack.back();
    if (nodes_[parent].type != TarType::kDirectory) continue;
    n.name = e.index.back();
    n.parent = parent;
    uint32_t id = static_cast<uint32_t>(nodes_.size());
    nodes_.push_back(std::move(n));
    nodes_[parent].children.push_back(id);
    stack.push_back(id);
  }
  // Signature entries are in index order already; sort anyway so lookups can bisect even on
  // a stream written out of order.
  for (auto& n : nodes_) {
    std::sort(n.children.begin(), n.children.end(),
              [this](uint32_t a, uint32_t b) { return nodes_[a].name < nodes_[b].name; });
  }
}

std::optional<uint32_t> Snapshot::child(uint32_t dir, std::string_view name) const {
  const auto& kids = nodes_[dir].children;
  auto it =
      std::lower_bound(kids.begin(), kids.end(), name,
                       [this](uint32_t id, std::string_view n) { return nodes_[id].name < n; });
  if (it == kids.end() || nodes_[*it].name != name) return std::nullopt;
  return *it;
}

Index Snapshot::index_of(uint32_t id) const {
  Index index;
  while (id != kRoot) {
    index.push_back(nodes_[id].name);
    id = nodes_[id].parent;
  }
  std::reverse(index.begin(), index.end());
  return index;
}

Result<const SetVolumes::Volumes*> SetVolumes::volumes() {
  return volumes_.get([this]() -> Result<Volumes> {
    auto loaded = loader_();
    // Its captures (the manifest's text, read at open) are not needed once the outcome is kept.
    if (loaded || is_permanent(loaded.error().kind)) loader_ = nullptr;
    return loaded;
  });
}

Result<std::shared_ptr<const FileVersion>> Snapshot::resolve(uint32_t id) {
  {
    std::lock_guard lock(mu_);
    if (auto it = files_.find(id); it != files_.end()) return it->second;
  }
  const Index index = index_of(id);
  const std::string path = index_to_string(index);
  struct Found {
    uint32_t volume;
    CatalogEntry entry;
  };
  // The entries of this path in one set (docs/format.md §2.5: the volumes its manifest range
  // selects).
  auto entries_in = [&](const SetRef& ref) -> Result<std::vector<Found>> {
    std::vector<Found> found;
    auto set = ref.set->volumes();
    if (!set) return error(set.error().kind, "{}: {}", path, set.error().message);
    for (int number : volumes_for_prefix(*(*set)->manifest, index)) {
      auto vid = (*set)->ids.find(number);
      if (vid == (*set)->ids.end()) {
        auto missing = (*set)->missing.find(number);
        return error(ErrorKind::kCorruption, "{}: {} is missing", path,
                     missing != (*set)->missing.end()
                         ? missing->second
                         : fmt::format("volume {} of {}", number, ref.set->label()));
      }
      auto entries = store_.entries_for(vid->second, index);
      if (!entries) return error(entries.error().kind, "{}: {}", path, entries.error().message);
      for (auto& e : *entries) found.push_back(Found{vid->second, std::move(e)});
    }
    return found;
  };
  // Look only in the sets that touched the path; their volumes decode in parallel.
  std::vector<size_t> touched = sets_touching(index);
  std::vector<std::future<Result<std::vector<Found>>>> pending;
  for (size_t i = 1; i < touched.size(); ++i) {
    pending.push_back(std::async(std::launch::async, entries_in, std::cref(sets_[touched[i]])));
  }
  std::vector<std::pair<size_t, std::vector<Found>>> per_set;
  auto first = entries_in(sets_[touched[0]]);
  std::optional<Error> failure;
  if (first)
    per_set.emplace_back(touched[0], std::move(*first));
  else
    failure = first.error();
  for (size_t i = 1; i < touched.size(); ++i) {
    auto r = pending[i - 1].get();
    if (r)
      per_set.emplace_back(touched[i], std::move(*r));
    else if (!failure)
      failure = r.error();
  }
  if (failure) return std::unexpected(*failure);

  // docs/format.md §3.7: the newest whole copy (or deletion) resets the history; later deltas
  // apply in order.
  int base = -1;
  for (int s = static_cast<int>(per_set.size()) - 1; s >= 0 && base < 0; --s) {
    for (const auto& f : per_set[s].second) {
      if (!is_diff_kind(f.entry.name.kind)) base = s;
    }
  }
  if (base < 0) return error(ErrorKind::kCorruption, "{}: no data in the backup volumes", path);
  auto stream_of = [&](const std::vector<Found>& found, bool diff) -> Result<Stream> {
    Stream stream;
    for (const auto& f : found) {
      if (is_diff_kind(f.entry.name.kind) != diff || f.entry.name.kind == EntryKind::kDeleted ||
          f.entry.header.type != TarType::kFile) {
        return error(ErrorKind::kCorruption, "{}: unexpected {} entry in {}", path,
                     f.entry.name.kind == EntryKind::kDeleted ? "deleted" : "non-file",
                     store_.volume_name(f.volume));
      }
      stream.append(f.volume, f.entry.header.data_offset, f.entry.header.size);
    }
    return stream;
  };
  std::shared_ptr<const FileVersion> version;
  for (size_t s = base; s < per_set.size(); ++s) {
    const auto& found = per_set[s].second;
    if (found.empty()) continue;
    uint32_t key_volume = found.front().volume;
    uint64_t key_offset = found.front().entry.header.data_offset;
    if (auto cached = versions_.find(key_volume, key_offset)) {
      version = std::move(cached);
      continue;
    }
    auto stream = stream_of(found, static_cast<int>(s) != base);
    if (!stream) return std::unexpected(stream.error());
    if (static_cast<int>(s) == base) {
      version = FileVersion::whole(std::move(*stream));
    } else {
      auto patched = FileVersion::patched(store_, std::move(*stream), version);
      if (!patched) {
        return error(patched.error().kind, "{}: delta in {}: {}", path,
                     sets_[per_set[s].first].set->label(), patched.error().message);
      }
      version = std::move(*patched);
    }
    versions_.insert(key_volume, key_offset, version);
  }
  std::lock_guard lock(mu_);
  auto [it, inserted] = files_.emplace(id, std::move(version));
  return it->second;
}

std::vector<size_t> Snapshot::sets_touching(const Index& index) const {
  std::vector<size_t> touched{0};  // the full set holds every path of the chain's start
  for (size_t s = 1; s < sets_.size(); ++s) {
    const auto& changes = sets_[s].changes;
    bool touches =
        !changes || std::binary_search(
                        changes->begin(), changes->end(), index, [](const auto& a, const auto& b) {
                          if constexpr (std::is_same_v<std::decay_t<decltype(a)>, Index>) {
                            return a < b.index;
                          } else {
                            return a.index < b;
                          }
                        });
    if (touches) touched.push_back(s);
  }
  return touched;
}

std::optional<uint64_t> Snapshot::file_size_if_ready(uint32_t id) {
  if (nodes_[id].type != TarType::kFile) return 0;
  {
    std::lock_guard lock(mu_);
    if (auto it = files_.find(id); it != files_.end()) return it->second->size();
  }
  const Index index = index_of(id);
  for (size_t s : sets_touching(index)) {
    const SetVolumes::Volumes* set = sets_[s].set->volumes_if_loaded();
    if (!set) return std::nullopt;
    for (int number : volumes_for_prefix(*set->manifest, index)) {
      auto vid = set->ids.find(number);
      if (vid == set->ids.end() || !store_.catalog_covers(vid->second, index)) {
        return std::nullopt;
      }
    }
  }
  auto version = resolve(id);
  if (!version) return std::nullopt;
  return (*version)->size();
}

Result<uint64_t> Snapshot::file_size(uint32_t id) {
  if (nodes_[id].type != TarType::kFile) return 0;
  auto version = resolve(id);
  if (!version) return std::unexpected(version.error());
  return (*version)->size();
}

Result<size_t> Snapshot::read(uint32_t id, uint64_t offset, char* out, size_t length, bool wait) {
  if (nodes_[id].type != TarType::kFile) {
    return error(ErrorKind::kInvalidArgument, "not a regular file");
  }
  if (!wait && !file_size_if_ready(id)) {
    return error(ErrorKind::kWouldBlock, "{} not catalogued yet", index_to_string(index_of(id)));
  }
  auto version = resolve(id);
  if (!version) return std::unexpected(version.error());
  auto n = (*version)->read(store_, offset, out, length, wait);
  if (!n && n.error().kind == ErrorKind::kWouldBlock) return n;
  if (!n) return error(n.error().kind, "{}: {}", index_to_string(index_of(id)), n.error().message);
  return n;
}

}  // namespace dupfs::chain

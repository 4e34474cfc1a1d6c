#include "chain/snapshot.h"

#include <grp.h>
#include <pwd.h>

#include <algorithm>
#include <unordered_map>

namespace dupfs::chain {
namespace {

// Local ids for owner names, looked up once per name.
class OwnerMap {
 public:
  int64_t uid(const std::string& name, int64_t fallback) {
    if (name.empty()) return fallback;
    auto [it, fresh] = users_.try_emplace(name, -1);
    if (fresh) {
      struct passwd pw, *found = nullptr;
      char buf[4096];
      if (::getpwnam_r(name.c_str(), &pw, buf, sizeof buf, &found) == 0 && found) {
        it->second = found->pw_uid;
      }
    }
    return it->second >= 0 ? it->second : fallback;
  }
  int64_t gid(const std::string& name, int64_t fallback) {
    if (name.empty()) return fallback;
    auto [it, fresh] = groups_.try_emplace(name, -1);
    if (fresh) {
      struct group gr, *found = nullptr;
      char buf[4096];
      if (::getgrnam_r(name.c_str(), &gr, buf, sizeof buf, &found) == 0 && found) {
        it->second = found->gr_gid;
      }
    }
    return it->second >= 0 ? it->second : fallback;
  }

 private:
  std::unordered_map<std::string, int64_t> users_;
  std::unordered_map<std::string, int64_t> groups_;
};

}  // namespace

Snapshot::Snapshot(int64_t time, const std::vector<SigEntry>& entries, std::vector<SetVolumes> sets,
                   VolumeStore& store, bool numeric_owner)
    : time_(time), sets_(std::move(sets)), store_(store) {
  OwnerMap owners;
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

Result<std::shared_ptr<const Snapshot::FileData>> Snapshot::resolve(uint32_t id) {
  {
    std::lock_guard lock(mu_);
    if (auto it = files_.find(id); it != files_.end()) return it->second;
  }
  Index index = index_of(id);
  std::string path = index_to_string(index);
  // Entries for this path, per set, oldest first (FORMAT.md §3.7).
  struct Found {
    uint32_t volume;
    CatalogEntry entry;
  };
  std::vector<std::vector<Found>> per_set;
  for (const auto& set : sets_) {
    std::vector<Found> found;
    for (int number : volumes_for_prefix(*set.manifest, index)) {
      auto vid = set.volume_ids.find(number);
      if (vid == set.volume_ids.end()) {
        auto missing = set.missing.find(number);
        return error(ErrorKind::kCorruption, "{}: {} is missing", path,
                     missing != set.missing.end()
                         ? missing->second
                         : fmt::format("volume {} of {}", number, set.label));
      }
      auto entries = store_.entries_for(vid->second, index);
      if (!entries) {
        return error(entries.error().kind, "{}: {}", path, entries.error().message);
      }
      for (auto& e : *entries) found.push_back(Found{vid->second, std::move(e)});
    }
    per_set.push_back(std::move(found));
  }
  // The newest set that holds a whole copy (or a deletion) resets the history.
  int base = -1;
  for (int s = static_cast<int>(per_set.size()) - 1; s >= 0 && base < 0; --s) {
    for (const auto& f : per_set[s]) {
      if (!is_diff_kind(f.entry.name.kind)) base = s;
    }
  }
  if (base < 0) {
    return error(ErrorKind::kCorruption, "{}: no data in the backup volumes", path);
  }
  for (size_t s = base + 1; s < per_set.size(); ++s) {
    if (!per_set[s].empty()) {
      return error(ErrorKind::kUnsupported, "{}: incremental deltas are not supported yet", path);
    }
  }
  auto data = std::make_shared<FileData>();
  for (const auto& f : per_set[base]) {
    if (!is_snapshot_kind(f.entry.name.kind)) {
      return error(ErrorKind::kCorruption, "{}: unexpected entry kind in {}", path,
                   store_.volume_name(f.volume));
    }
    if (f.entry.header.type != TarType::kFile) {
      return error(ErrorKind::kCorruption, "{}: not a regular file in {}", path,
                   store_.volume_name(f.volume));
    }
    data->pieces.push_back(
        Piece{f.volume, f.entry.header.data_offset, f.entry.header.size, data->size});
    data->size += f.entry.header.size;
  }
  std::lock_guard lock(mu_);
  auto [it, inserted] = files_.emplace(id, std::move(data));
  return it->second;
}

Result<uint64_t> Snapshot::file_size(uint32_t id) {
  if (nodes_[id].type != TarType::kFile) return 0;
  auto data = resolve(id);
  if (!data) return std::unexpected(data.error());
  return (*data)->size;
}

Result<size_t> Snapshot::read(uint32_t id, uint64_t offset, char* out, size_t length) {
  if (nodes_[id].type != TarType::kFile) {
    return error(ErrorKind::kInvalidArgument, "not a regular file");
  }
  auto resolved = resolve(id);
  if (!resolved) return std::unexpected(resolved.error());
  const FileData& data = **resolved;
  if (offset >= data.size) return 0;
  length = std::min<uint64_t>(length, data.size - offset);
  // First piece that ends after `offset`.
  auto it = std::upper_bound(data.pieces.begin(), data.pieces.end(), offset,
                             [](uint64_t off, const Piece& p) { return off < p.file_offset; });
  if (it != data.pieces.begin()) --it;
  size_t done = 0;
  for (; it != data.pieces.end() && done < length; ++it) {
    uint64_t pos = offset + done;
    if (pos < it->file_offset || pos >= it->file_offset + it->length) continue;
    uint64_t within = pos - it->file_offset;
    size_t n = std::min<uint64_t>(length - done, it->length - within);
    auto got = store_.read(it->volume, it->offset + within, out + done, n);
    if (!got) {
      return error(got.error().kind, "{}: {}", index_to_string(index_of(id)), got.error().message);
    }
    if (*got != n) {
      return error(ErrorKind::kCorruption, "{}: data ends early in {}",
                   index_to_string(index_of(id)), store_.volume_name(it->volume));
    }
    done += n;
  }
  return done;
}

}  // namespace dupfs::chain

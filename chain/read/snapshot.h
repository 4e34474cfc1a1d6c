// The tree of one backup set as `duplicity restore --time T` would write it. Names, types and
// metadata come from the signature files (built once, at mount); sizes and data of regular
// files are resolved on first use from the volumes that the manifests' ranges select.
// Thread-safe: the tree is immutable after construction; file resolution is memoized (successes
// only: a file that failed to resolve is resolved again on the next request).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "chain/format/manifest.h"
#include "chain/format/sigtar.h"
#include "chain/read/file_version.h"
#include "chain/read/memoized.h"
#include "chain/read/volume_store.h"

namespace dupfs::chain {

// The volumes of one backup set, registered in the volume store when first needed: the set's
// manifest is fetched and parsed only then, so mounting reads signature files alone. Shared by
// every snapshot of the chain. Thread-safe.
class SetVolumes {
 public:
  struct Volumes {
    std::shared_ptr<const Manifest> manifest;
    std::map<int, uint32_t> ids;         // volume number -> VolumeStore id
    std::map<int, std::string> missing;  // volumes in the manifest but not in storage -> name
  };
  using Loader = std::function<Result<Volumes>()>;

  SetVolumes(std::string label, int64_t time, Loader loader)
      : label_(std::move(label)), time_(time), loader_(std::move(loader)) {}
  const std::string& label() const { return label_; }  // for messages: the manifest's name
  int64_t time() const { return time_; }               // the set's end time

  // Loads on the first call; concurrent callers wait for that one load (storage is read and
  // decrypted with no lock held). A permanent error is kept and returned to every later caller;
  // a transient one (is_permanent) only to the callers of that load: the next call loads again.
  Result<const Volumes*> volumes();
  // Null until loaded; never loads, never waits.
  const Volumes* volumes_if_loaded() const { return volumes_.if_loaded(); }

 private:
  const std::string label_;
  const int64_t time_;
  // Run by one load at a time (Memoized never runs two at once, nor one after a kept outcome);
  // dropped once its outcome is kept.
  Loader loader_;
  Memoized<Volumes> volumes_;
};

// A set as one snapshot reads it.
struct SetRef {
  std::shared_ptr<SetVolumes> set;
  // For an incremental with signatures: its new-signatures entries (the paths it changed,
  // sorted), so files it did not touch are never looked for in its volumes. Null: look always.
  std::shared_ptr<const std::vector<SigEntry>> changes;
};

struct Node {
  std::string name;  // component; "" for the root
  uint32_t parent = 0;
  TarType type = TarType::kDirectory;
  uint32_t mode = 0;  // permission bits (07777)
  int64_t uid = 0;
  int64_t gid = 0;
  int64_t mtime = 0;
  std::string linkname;
  uint32_t devmajor = 0;
  uint32_t devminor = 0;
  std::vector<uint32_t> children;  // sorted bytewise by name
};

// File versions by where their last entry lies (volume id, data offset): the same entry is the
// same version in every snapshot of a chain. Thread-safe.
class VersionCache {
 public:
  std::shared_ptr<const FileVersion> find(uint32_t volume, uint64_t offset);
  void insert(uint32_t volume, uint64_t offset, std::shared_ptr<const FileVersion> v);

 private:
  // Guards map_; held only to look up or insert (a leaf: no lock is taken under it).
  std::mutex mu_;
  std::map<std::pair<uint32_t, uint64_t>, std::shared_ptr<const FileVersion>> map_;
};

class Snapshot {
 public:
  // `entries`: the merged signature entries of the set (sorted by index). `sets`: the chain's
  // sets up to this one, oldest (the full) first.
  // Owners are shown as duplicity restores them: the uname/gname mapped through the local
  // passwd/group files, falling back to the numeric ids (always numeric with `numeric_owner`);
  // negative mtimes as 0.
  // `layers`: full signatures then each incremental's new signatures, merged into the tree.
  // `sets`: the chain's sets up to this one, oldest (the full) first. `versions` is shared by
  // the snapshots of an archive so a file version is parsed once for all of them.
  Snapshot(int64_t time, const std::vector<std::shared_ptr<const std::vector<SigEntry>>>& layers,
           std::vector<SetRef> sets, VolumeStore& store, VersionCache& versions,
           bool numeric_owner = false);

  int64_t time() const { return time_; }
  static constexpr uint32_t kRoot = 0;
  size_t node_count() const { return nodes_.size(); }
  const Node& node(uint32_t id) const { return nodes_[id]; }
  std::optional<uint32_t> child(uint32_t dir, std::string_view name) const;
  Index index_of(uint32_t id) const;

  // Size of a regular file (0 for other types). May decode volumes.
  Result<uint64_t> file_size(uint32_t id);
  // The size when it is known, or can be known without waiting for a volume to decode;
  // nullopt otherwise (and on errors, which file_size reports).
  std::optional<uint64_t> file_size_if_ready(uint32_t id);
  // Reads up to `length` bytes at `offset` of a regular file; fewer only at its end.
  // `wait` false: kWouldBlock unless the file's entries are catalogued and its bytes are
  // decoded already (see VolumeStore::read).
  Result<size_t> read(uint32_t id, uint64_t offset, char* out, size_t length, bool wait = true);

 private:
  Result<std::shared_ptr<const FileVersion>> resolve(uint32_t id);
  // The sets whose volumes may hold entries for `index`, oldest first (always the full).
  std::vector<size_t> sets_touching(const Index& index) const;

  int64_t time_;
  std::vector<Node> nodes_;
  std::vector<SetRef> sets_;
  VolumeStore& store_;
  VersionCache& versions_;
  // Guards files_; held only to look up or insert (a leaf: no lock is taken under it, and
  // resolving a file, which reads storage, happens outside it).
  std::mutex mu_;
  std::unordered_map<uint32_t, std::shared_ptr<const FileVersion>> files_;
};

}  // namespace dupfs::chain

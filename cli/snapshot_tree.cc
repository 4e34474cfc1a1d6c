#include "cli/snapshot_tree.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>

namespace dupfs::cli {
namespace {

uint32_t type_bits(chain::TarType t) {
  switch (t) {
    case chain::TarType::kFile:
    case chain::TarType::kHardlink:
      return S_IFREG;
    case chain::TarType::kDirectory:
      return S_IFDIR;
    case chain::TarType::kSymlink:
      return S_IFLNK;
    case chain::TarType::kCharDevice:
      return S_IFCHR;
    case chain::TarType::kBlockDevice:
      return S_IFBLK;
    case chain::TarType::kFifo:
      return S_IFIFO;
  }
  return S_IFREG;
}

}  // namespace

SnapshotTree::SnapshotTree(chain::Archive& archive)
    : archive_(archive), uid_(::getuid()), gid_(::getgid()) {
  for (size_t i = 0; i < archive_.snapshot_count(); ++i) {
    names_.push_back(chain::snapshot_dir_name(archive_.snapshot_time(i)));
  }
}

fs::Attr SnapshotTree::dir_attr(uint64_t ino, uint32_t mode) const {
  fs::Attr a;
  a.ino = ino;
  a.mode = mode;
  a.nlink = 2;
  a.uid = uid_;
  a.gid = gid_;
  a.mtime = archive_.snapshot_time(archive_.snapshot_count() - 1);
  return a;
}

Result<SnapshotTree::Located> SnapshotTree::locate(uint64_t ino) const {
  uint64_t s = ino >> 32;
  uint64_t n = ino & 0xffffffffu;
  if (s == 0 || s > archive_.snapshot_count()) return error(ErrorKind::kNotFound, "no inode");
  auto snap = archive_.snapshot(s - 1);
  if (!snap) return std::unexpected(snap.error());
  if (n >= (*snap)->node_count()) return error(ErrorKind::kNotFound, "no inode");
  return Located{snap->get(), static_cast<uint32_t>(n)};
}

Result<fs::Attr> SnapshotTree::node_attr(size_t snapshot, uint32_t id) {
  auto built = archive_.snapshot(snapshot);
  if (!built) return std::unexpected(built.error());
  return node_attr(snapshot, **built, id, true);
}

Result<fs::Attr> SnapshotTree::node_attr(size_t snapshot, chain::Snapshot& snap, uint32_t id,
                                         bool wait) {
  const chain::Node& n = snap.node(id);
  fs::Attr a;
  a.ino = ino_of(snapshot, id);
  a.mode = type_bits(n.type) | (n.mode & 07777);
  a.uid = static_cast<uint32_t>(n.uid);
  a.gid = static_cast<uint32_t>(n.gid);
  a.mtime = n.mtime;
  switch (n.type) {
    case chain::TarType::kDirectory: {
      a.nlink = 2;
      for (uint32_t c : n.children) {
        if (snap.node(c).type == chain::TarType::kDirectory) ++a.nlink;
      }
      break;
    }
    case chain::TarType::kSymlink:
      a.size = n.linkname.size();
      break;
    case chain::TarType::kCharDevice:
    case chain::TarType::kBlockDevice:
      a.rdev = makedev(n.devmajor, n.devminor);
      break;
    case chain::TarType::kFile:
    case chain::TarType::kHardlink: {
      if (!wait) {
        auto size = snap.file_size_if_ready(id);
        if (!size) return error(ErrorKind::kWouldBlock, "size not known yet");
        a.size = *size;
        break;
      }
      auto size = snap.file_size(id);
      if (!size) return std::unexpected(size.error());
      a.size = *size;
      break;
    }
    default:
      break;
  }
  return a;
}

std::optional<SnapshotTree::Built> SnapshotTree::built_node(uint64_t ino) const {
  size_t s = (ino >> 32) - 1;
  if ((ino >> 32) == 0 || s >= archive_.snapshot_count()) return std::nullopt;
  auto snap = archive_.snapshot_if_built(s);
  uint32_t id = static_cast<uint32_t>(ino & 0xffffffffu);
  if (!snap || id >= snap->node_count()) return std::nullopt;
  return Built{std::move(snap), s, id};
}

std::optional<fs::Attr> SnapshotTree::attr_if_ready(uint64_t ino) {
  if (ino == kRootIno || ino == kSnapshotsIno || ino == kLatestIno) {
    auto a = getattr(ino);
    return a ? std::optional<fs::Attr>(*a) : std::nullopt;
  }
  auto b = built_node(ino);
  if (!b) return std::nullopt;
  auto a = node_attr(b->index, *b->snapshot, b->node, false);
  return a ? std::optional<fs::Attr>(*a) : std::nullopt;
}

Result<fs::Attr> SnapshotTree::getattr(uint64_t ino) {
  if (ino == kRootIno) return dir_attr(kRootIno, S_IFDIR | 0555);
  if (ino == kSnapshotsIno) return dir_attr(kSnapshotsIno, S_IFDIR | 0555);
  if (ino == kLatestIno) {
    fs::Attr a = dir_attr(kLatestIno, S_IFLNK | 0777);
    a.nlink = 1;
    a.size = names_.back().size();
    return a;
  }
  auto loc = locate(ino);
  if (!loc) return std::unexpected(loc.error());
  return node_attr((ino >> 32) - 1, loc->node);
}

Result<fs::Attr> SnapshotTree::lookup(uint64_t parent, std::string_view name) {
  if (parent == kRootIno) {
    if (name == "snapshots") return getattr(kSnapshotsIno);
    return error(ErrorKind::kNotFound, "no such entry");
  }
  if (parent == kSnapshotsIno) {
    if (name == "latest") return getattr(kLatestIno);
    auto it = std::find(names_.begin(), names_.end(), name);
    if (it == names_.end()) return error(ErrorKind::kNotFound, "no such snapshot");
    return node_attr(it - names_.begin(), chain::Snapshot::kRoot);
  }
  auto loc = locate(parent);
  if (!loc) return std::unexpected(loc.error());
  auto child = loc->snapshot->child(loc->node, name);
  if (!child) return error(ErrorKind::kNotFound, "no such entry");
  return node_attr((parent >> 32) - 1, *child);
}

Status SnapshotTree::readdir(uint64_t ino, uint64_t offset, const fs::DirFiller& add) {
  if (ino == kRootIno) {
    if (offset == 0) add("snapshots", kSnapshotsIno, S_IFDIR, 1);
    return {};
  }
  if (ino == kSnapshotsIno) {
    for (uint64_t i = offset; i <= names_.size(); ++i) {
      bool more = i < names_.size()
                      ? add(names_[i], ino_of(i, chain::Snapshot::kRoot), S_IFDIR, i + 1)
                      : add("latest", kLatestIno, S_IFLNK, i + 1);
      if (!more) break;
    }
    return {};
  }
  auto loc = locate(ino);
  if (!loc) return std::unexpected(loc.error());
  const auto& kids = loc->snapshot->node(loc->node).children;
  size_t snap = (ino >> 32) - 1;
  for (uint64_t i = offset; i < kids.size(); ++i) {
    const chain::Node& c = loc->snapshot->node(kids[i]);
    if (!add(c.name, ino_of(snap, kids[i]), type_bits(c.type), i + 1)) break;
  }
  return {};
}

Result<std::string> SnapshotTree::readlink(uint64_t ino) {
  if (ino == kLatestIno) return names_.back();
  auto loc = locate(ino);
  if (!loc) return std::unexpected(loc.error());
  const chain::Node& n = loc->snapshot->node(loc->node);
  if (n.type != chain::TarType::kSymlink) return error(ErrorKind::kInvalidArgument, "not a link");
  return n.linkname;
}

Result<size_t> SnapshotTree::read(uint64_t ino, uint64_t offset, char* buf, size_t size) {
  auto loc = locate(ino);
  if (!loc) return std::unexpected(loc.error());
  return loc->snapshot->read(loc->node, offset, buf, size);
}

std::optional<size_t> SnapshotTree::read_if_ready(uint64_t ino, uint64_t offset, char* buf,
                                                  size_t size) {
  auto b = built_node(ino);
  if (!b) return std::nullopt;
  auto n = b->snapshot->read(b->node, offset, buf, size, false);
  return n ? std::optional<size_t>(*n) : std::nullopt;
}

std::vector<uint64_t> SnapshotTree::files_after(uint64_t ino, size_t max) {
  std::vector<uint64_t> out;
  auto b = built_node(ino);
  if (!b || b->node == chain::Snapshot::kRoot) return out;
  const chain::Snapshot* snap = b->snapshot.get();
  const size_t s = b->index;
  const uint32_t id = b->node;
  const std::string& name = snap->node(id).name;
  const auto& kids = snap->node(snap->node(id).parent).children;
  // Children are sorted bytewise by name.
  auto it = std::upper_bound(kids.begin(), kids.end(), name, [&](const std::string& n, uint32_t c) {
    return n < snap->node(c).name;
  });
  for (; it != kids.end() && out.size() < max; ++it) {
    if (snap->node(*it).type == chain::TarType::kFile) out.push_back(ino_of(s, *it));
  }
  return out;
}

fs::FsStats SnapshotTree::stats() {
  fs::FsStats s;
  s.files = 3 + archive_.snapshot_count();
  return s;
}

}  // namespace dupfs::cli

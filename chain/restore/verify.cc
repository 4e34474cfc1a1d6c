#include "chain/restore/verify.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "chain/format/dup_time.h"
#include "chain/format/sigtar.h"
#include "chain/metadata/archive_dir.h"

namespace dupfs::chain {

LocalWalk::LocalWalk(std::string root) : root_(std::move(root)) {}

namespace {

std::vector<std::string> sorted_names(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return names;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

const char* type_name(mode_t m) {
  if (S_ISREG(m)) return "reg";
  if (S_ISDIR(m)) return "dir";
  if (S_ISLNK(m)) return "sym";
  if (S_ISFIFO(m)) return "fifo";
  if (S_ISCHR(m)) return "chr";
  if (S_ISBLK(m)) return "blk";
  if (S_ISSOCK(m)) return "sock";
  return "unknown";
}

const char* type_name(TarType t) {
  switch (t) {
    case TarType::kFile:
      return "reg";
    case TarType::kDirectory:
      return "dir";
    case TarType::kSymlink:
      return "sym";
    case TarType::kFifo:
      return "fifo";
    case TarType::kCharDevice:
      return "chr";
    case TarType::kBlockDevice:
      return "blk";
    case TarType::kHardlink:
      return "hardlink";
  }
  return "unknown";
}

}  // namespace

const LocalWalk::Entry* LocalWalk::peek() {
  if (have_) return &current_;
  if (!started_) {
    started_ = true;
    if (::lstat(root_.c_str(), &current_.st) != 0) return nullptr;
    current_.index.clear();
    current_.path = root_;
    if (S_ISDIR(current_.st.st_mode)) stack_.push_back(Frame{{}, root_, sorted_names(root_), 0});
    have_ = true;
    return &current_;
  }
  while (!stack_.empty()) {
    Frame& f = stack_.back();
    if (f.pos == f.names.size()) {
      stack_.pop_back();
      continue;
    }
    const std::string& name = f.names[f.pos++];
    Entry e;
    e.index = f.prefix;
    e.index.push_back(name);
    e.path = f.path + "/" + name;
    if (::lstat(e.path.c_str(), &e.st) != 0) continue;  // vanished meanwhile
    if (S_ISSOCK(e.st.st_mode)) continue;               // duplicity skips sockets
    current_ = std::move(e);
    if (S_ISDIR(current_.st.st_mode)) {
      stack_.push_back(Frame{current_.index, current_.path, sorted_names(current_.path), 0});
    }
    have_ = true;
    return &current_;
  }
  return nullptr;
}

VerifySink::VerifySink(std::string local_dir, VerifyOptions options,
                       std::function<void(const std::string&)> report)
    : local_dir_(local_dir),
      options_(options),
      report_(std::move(report)),
      walk_(std::move(local_dir)),
      owners_(options.numeric_owner) {}

VerifySink::~VerifySink() {
  if (fd_ >= 0) ::close(fd_);
}

void VerifySink::on_trusted() {
  for (const auto& line : held_) report_(line);
  held_.clear();
}

void VerifySink::local_only(const LocalWalk::Entry& e) {
  ++compared_;
  if (!options_.compare_data) return;
  ++differences_;
  held_.push_back("Difference found: New file " + index_to_string(e.index));
}

Status VerifySink::on_object(const RestoredObject& object) {
  const Index& index = object.index;
  while (const LocalWalk::Entry* e = walk_.peek()) {
    if (!(e->index < index)) break;
    local_only(*e);
    walk_.pop();
  }
  ++compared_;
  current_ = index;
  data_differs_ = false;
  const LocalWalk::Entry* local = walk_.peek();
  if (local && local->index != index) local = nullptr;
  if (!options_.compare_data) {
    if (local) walk_.pop();
    return {};
  }
  const std::string path = index_to_string(index);
  auto report = [&](const std::string& line) {
    ++differences_;
    held_.push_back("Difference found: " + line);
  };
  if (!local) {
    report(fmt::format("File {} is missing", path));
    return {};
  }
  const struct stat st = local->st;
  const std::string local_path = local->path;
  walk_.pop();
  const TarHeader& h = object.header;
  if (std::string(type_name(st.st_mode)) != type_name(h.type)) {
    report(fmt::format("File {} has type {}, expected {}", path, type_name(st.st_mode),
                       type_name(h.type)));
    return {};
  }
  const int64_t uid = owners_.uid(h), gid = owners_.gid(h);
  const uint32_t mode = h.mode & 07777;
  const bool perms_equal = (st.st_mode & 07777) == mode && st.st_uid == static_cast<uid_t>(uid) &&
                           st.st_gid == static_cast<gid_t>(gid);
  auto perms_text = [](int64_t u, int64_t g, uint32_t m) {
    return fmt::format("{}:{} {:o}", u, g, m);
  };
  if (h.type == TarType::kFile || h.type == TarType::kDirectory || h.type == TarType::kFifo) {
    if (!perms_equal) {
      report(fmt::format("File {} has permissions {}, expected {}", path,
                         perms_text(st.st_uid, st.st_gid, st.st_mode & 07777),
                         perms_text(uid, gid, mode)));
      return {};
    }
    const int64_t mtime = std::max<int64_t>(h.mtime, 0);
    if (mtime != st.st_mtime && (mtime > 0 || st.st_mtime > 0)) {
      report(fmt::format("File {} has mtime {}, expected {}", path,
                         pretty_time(st.st_mtime, Unrepresentable::kStrftime),
                         pretty_time(mtime, Unrepresentable::kStrftime)));
      return {};
    }
    if (h.type == TarType::kFile) {
      fd_ = ::open(local_path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd_ < 0) data_differs_ = true;
    }
    return {};
  }
  if (h.type == TarType::kSymlink) {
    std::string target(4096, '\0');
    ssize_t n = ::readlink(local_path.c_str(), target.data(), target.size());
    target.resize(n < 0 ? 0 : static_cast<size_t>(n));
    if (target != h.linkname && target != h.linkname + "/") {
      report(fmt::format("Symlink {} points to {}, expected {}", path, target, h.linkname));
    }
    return {};
  }
  // Devices.
  if (!perms_equal) {
    report(fmt::format("File {} has permissions {}, expected {}", path,
                       perms_text(st.st_uid, st.st_gid, st.st_mode & 07777),
                       perms_text(uid, gid, mode)));
    return {};
  }
  if (::major(st.st_rdev) != h.devmajor || ::minor(st.st_rdev) != h.devminor) {
    report(fmt::format("Device file {} has numbers ({}, {}), expected ({}, {})", path,
                       ::major(st.st_rdev), ::minor(st.st_rdev), h.devmajor, h.devminor));
  }
  return {};
}

Status VerifySink::on_data(const DataPiece& piece) {
  if (fd_ < 0 || data_differs_) return {};
  std::string_view want = piece.bytes;
  while (!want.empty()) {
    buf_.resize(std::min<size_t>(want.size(), size_t{1} << 20));
    ssize_t n = ::read(fd_, buf_.data(), buf_.size());
    if (n <= 0 || std::memcmp(buf_.data(), want.data(), static_cast<size_t>(n)) != 0) {
      data_differs_ = true;
      return {};
    }
    want.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Status VerifySink::on_object_end() {
  if (fd_ >= 0) {
    char c;
    if (!data_differs_ && ::read(fd_, &c, 1) != 0) data_differs_ = true;  // local is longer
    ::close(fd_);
    fd_ = -1;
  } else if (!data_differs_) {
    return {};
  }
  if (data_differs_) {
    ++differences_;
    held_.push_back(
        fmt::format("Difference found: Data for file {} is different", index_to_string(current_)));
  }
  data_differs_ = false;
  return {};
}

void VerifySink::finish() {
  while (const LocalWalk::Entry* e = walk_.peek()) {
    local_only(*e);
    walk_.pop();
  }
  on_trusted();
}

std::vector<Error> check_signature_files(const Backend& backend,
                                         const std::vector<std::string>& names,
                                         const Credentials& credentials) {
  std::vector<Error> errors;
  for (const auto& name : names) {
    SignedSigtarParser parser;
    Status st = decode_object(backend, name, credentials, [&](std::string_view bytes) -> Status {
      if (auto fed = parser.feed(bytes); !fed) return fed;
      while (parser.has_entry()) (void)parser.take();
      return {};
    });
    if (st) st = parser.finish();
    if (!st) {
      errors.push_back(Error{st.error().kind, fmt::format("signature file {} is unreadable: {}",
                                                          name, st.error().message)});
    }
  }
  return errors;
}

std::vector<std::string> cached_manifests(const std::vector<std::string>& manifest_names,
                                          const std::string& archive_dir) {
  const ArchiveDir archive(archive_dir);
  std::vector<std::string> out;
  for (const auto& name : manifest_names) {
    if (archive.has_copy(name)) out.push_back(name);
  }
  return out;
}

std::vector<Error> check_cached_manifests(const Backend& backend,
                                          const std::vector<std::string>& manifest_names,
                                          const Credentials& credentials,
                                          const std::string& archive_dir) {
  const ArchiveDir archive(archive_dir);
  std::vector<Error> errors;
  for (const auto& name : manifest_names) {
    auto text = decode_object_to_string(backend, name, credentials);
    if (!text) {
      errors.push_back(Error{text.error().kind, fmt::format("manifest {} is unreadable: {}", name,
                                                            text.error().message)});
      continue;
    }
    auto copy = archive.read_copy(name);
    if (!copy) continue;  // removed meanwhile: nothing to compare with
    if (*copy != *text) {
      errors.push_back(Error{ErrorKind::kCorruption,
                             fmt::format("manifest {} differs from its copy in {}: one of them is "
                                         "damaged",
                                         name, archive_dir)});
    }
  }
  return errors;
}

ChainSignatures signatures_for(const Collection& collection, const BackupChain& chain,
                               int64_t time) {
  ChainSignatures out;
  const SignatureChain* sigs = nullptr;
  for (const auto& sc : collection.sig_chains) {
    if (sc.start_time == chain.start_time()) sigs = &sc;  // the last one, as sig_chain_for_time
  }
  for (const BackupSet* set : chain.sets_up_to(time)) {
    std::string name;
    if (sigs && set->is_full()) {
      name = sigs->full_name;
    } else if (sigs) {
      for (size_t i = 0; i < sigs->inc_names.size(); ++i) {
        if (sigs->inc_end_times[i] == set->end_time) name = sigs->inc_names[i];
      }
    }
    if (name.empty()) {
      out.missing.push_back(set->manifest_name);
    } else {
      out.names.push_back(std::move(name));
    }
  }
  return out;
}

std::vector<std::string> unusable_files(const Collection& collection) {
  std::vector<std::string> out;
  auto volume_list = [](const BackupSet& set) {
    std::string names;
    for (const auto& [number, name] : set.volumes) names += (names.empty() ? "" : ", ") + name;
    return names;
  };
  for (const auto& set : collection.incomplete) {
    if (set.manifest_name.empty()) {
      out.push_back(fmt::format("incomplete backup set (no manifest): {}", volume_list(set)));
    } else {
      out.push_back(fmt::format(
          "backup set {} is not part of the chain: its signature file is "
          "missing{}{}",
          set.manifest_name, set.volumes.empty() ? "" : "; volumes: ", volume_list(set)));
    }
  }
  for (const auto& set : collection.orphaned) {
    out.push_back(fmt::format("backup set {} belongs to no chain", set.manifest_name));
  }
  for (const auto& name : collection.orphaned_sigs) {
    out.push_back(fmt::format("signature file {} belongs to no chain", name));
  }
  for (const auto& sig : collection.sig_chains) {
    bool matched =
        std::any_of(collection.chains.begin(), collection.chains.end(),
                    [&](const BackupChain& c) { return c.start_time() == sig.start_time; });
    if (!matched) {
      std::string names = sig.full_name;
      for (const auto& n : sig.inc_names) names += ", " + n;
      out.push_back(fmt::format("signature files without a backup chain: {}", names));
    }
  }
  return out;
}

}  // namespace dupfs::chain

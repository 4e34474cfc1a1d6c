#include "chain/metadata/archive_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "backends/base/log.h"
#include "backends/file_backend.h"

namespace dupfs::chain {
namespace {

bool is_signature(const ParsedName& p) {
  return p.type == FileType::kFullSig || p.type == FileType::kNewSig;
}

// `name` without its codec suffix, as duplicity's resolve_basename strips it (os.path.splitext,
// the extension one of ".g", ".gpg", ".z", ".gz").
std::string_view without_codec_suffix(std::string_view name) {
  for (std::string_view suffix : {".gpg", ".g", ".gz", ".z"}) {
    if (name.ends_with(suffix)) return name.substr(0, name.size() - suffix.size());
  }
  return name;
}

}  // namespace

EncodeOptions ArchiveDir::signature_encoding() {
  EncodeOptions o;
  o.codec = Codec::kGzip;
  o.compression = DeflateLevel{DeflateEngine::kIsal, 1};
  return o;
}

Status ArchiveDir::create() const {
  if (!enabled()) return error(ErrorKind::kInvalidArgument, "no archive dir");
  return make_private_dirs(path_);
}

std::optional<std::string> ArchiveDir::copy_name(std::string_view remote_name) const {
  auto parsed = parse_name(remote_name, prefixes_);
  if (!parsed || parsed->partial || !(parsed->manifest || is_signature(*parsed))) {
    return std::nullopt;
  }
  std::string base(without_codec_suffix(remote_name));
  if (parsed->manifest) return base;
  // duplicity picks ".z" or ".gz" by --short-filenames, which named the stored file too.
  return base + (base.ends_with(".st") ? ".z" : ".gz");
}

std::string ArchiveDir::copy_path(std::string_view remote_name) const {
  auto local = copy_name(remote_name);
  return !enabled() || !local ? std::string() : path_ + "/" + *local;
}

bool ArchiveDir::has_copy(std::string_view remote_name) const {
  std::string path = copy_path(remote_name);
  return !path.empty() && ::access(path.c_str(), R_OK) == 0;
}

Result<std::string> ArchiveDir::read_copy(const std::string& remote_name) const {
  auto local = copy_name(remote_name);
  if (!enabled() || !local) {
    return error(ErrorKind::kNotFound, "no copy of {} in an archive dir", remote_name);
  }
  // The codec of the copy follows from its name (".gz"/".z": gzip), so the decoder reads it.
  return decode_object_to_string(FileBackend(path_), *local, {});
}

Result<std::string> ArchiveDir::fetch(const Backend& storage, const std::string& name,
                                      const Credentials& credentials, Source source) const {
  bool keep = enabled() && copy_name(name).has_value();
  if (keep && source == Source::kCopyFirst) {
    auto copy = read_copy(name);
    if (copy) return copy;
    if (copy.error().kind != ErrorKind::kNotFound) {
      log_warning("the copy of {} in {} is unreadable, reading it from {}: {}", name, path_,
                  storage.describe(), copy.error().message);
    }
  } else if (keep) {
    keep = !has_copy(name);
  }
  auto data = decode_object_to_string(storage, name, credentials);
  if (data && keep) store(name, *data);
  return data;
}

void ArchiveDir::store(const std::string& remote_name, std::string_view decoded) const {
  auto local = copy_name(remote_name);
  if (!enabled() || !local) return;
  // The copy's name says how it is kept, as it tells read_copy how to read it.
  if (codec_for_name(*local) != Codec::kGzip) return write_copy(*local, decoded);
  auto gz = encode_to_string(signature_encoding(), *local, decoded);
  if (!gz) {
    log_warning("cannot keep a copy of {} in {}: {}", remote_name, path_, gz.error().message);
    return;
  }
  write_copy(*local, *gz);
}

void ArchiveDir::store_encoded(const std::string& remote_name, std::string_view copy) const {
  auto local = copy_name(remote_name);
  if (!enabled() || !local) return;
  write_copy(*local, copy);
}

void ArchiveDir::write_copy(const std::string& local, std::string_view bytes) const {
  if (auto st = create(); !st) {
    log_warning("cannot keep a copy of {}: {}", local, st.error().message);
    return;
  }
  FileBackend dir(path_);
  // FileBackend never replaces a file; an older copy goes first.
  if (auto st = dir.remove(local); !st && st.error().kind != ErrorKind::kNotFound) {
    log_warning("cannot replace {}/{}: {}", path_, local, st.error().message);
    return;
  }
  // kExists: another process stored the same copy meanwhile.
  if (auto st = dir.write(local, bytes); !st && st.error().kind != ErrorKind::kExists) {
    log_warning("cannot keep a copy of {}: {}", local, st.error().message);
  }
}

std::vector<std::string> ArchiveDir::list() const {
  if (!enabled()) return {};
  auto names = FileBackend(path_).list();
  return names ? std::move(*names) : std::vector<std::string>{};
}

void ArchiveDir::remove(const std::vector<std::string>& local_names) const {
  if (!enabled()) return;
  FileBackend dir(path_);
  for (const auto& name : local_names) {
    if (auto st = dir.remove(name); st) {
      log_info("deleted {}/{} from the local metadata cache", path_, name);
    } else if (st.error().kind != ErrorKind::kNotFound) {
      log_warning("{}", st.error().message);
    }
  }
}

void ArchiveDir::remove_copy(std::string_view remote_name) const {
  if (auto local = copy_name(remote_name); local) remove({*local});
}

ArchiveLock::~ArchiveLock() {
  if (fd_ >= 0) ::close(fd_);
}

Status ArchiveLock::acquire(const ArchiveDir& dir, const char* program) {
  if (auto st = dir.create(); !st) return st;
  const std::string path = dir.path() + "/lockfile";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0 || ::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    return error(ErrorKind::kExists, "another {} process is using {} (lock {} is held)", program,
                 dir.path(), path);
  }
  return {};
}

}  // namespace dupfs::chain

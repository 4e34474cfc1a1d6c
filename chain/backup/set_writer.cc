#include "chain/backup/set_writer.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "backends/base/log.h"
#include "chain/format/collection.h"
#include "chain/format/dup_time.h"
#include "chain/format/manifest.h"
#include "chain/format/names.h"
#include "chain/format/owners.h"
#include "chain/format/signature.h"
#include "chain/format/tar_writer.h"
#include "chain/metadata/archive_dir.h"

namespace dupfs::chain {
namespace {

constexpr size_t kChunkSize = 64 * 1024;  // duplicity's multivol piece (get_read_size)
constexpr size_t kReadSize = 256 * 1024;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Python's os.stat().st_mtime: a double made from seconds and nanoseconds.
double python_mtime(const struct stat& st) {
  return static_cast<double>(st.st_mtim.tv_sec) + static_cast<double>(st.st_mtim.tv_nsec) * 1e-9;
}

// int(st_mtime), or 0 when negative (path.get_tarinfo).
int64_t tar_mtime(const struct stat& st) {
  double m = python_mtime(st);
  return m < 0 ? 0 : static_cast<int64_t>(m);
}

std::optional<TarType> tar_type_of(mode_t mode) {
  if (S_ISREG(mode)) return TarType::kFile;
  if (S_ISDIR(mode)) return TarType::kDirectory;
  if (S_ISLNK(mode)) return TarType::kSymlink;
  if (S_ISFIFO(mode)) return TarType::kFifo;
  if (S_ISCHR(mode)) return TarType::kCharDevice;
  if (S_ISBLK(mode)) return TarType::kBlockDevice;
  return std::nullopt;  // sockets and anything else: not stored
}

std::string sha1_hex(EVP_MD_CTX* ctx) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

// Encodes one stored object in a thread of its own: plaintext pieces are queued by push() (which
// blocks while more than `queue_limit` bytes wait), the encoder (compression, encryption) runs
// in the worker, the stored bytes are collected in memory with their SHA1, and, when an upload
// name is given, stored there once complete. Several workers run at once: volumes are encoded
// and uploaded in parallel while the main thread reads and diffs the source.
class EncodeWorker {
 public:
  struct Done {
    std::string stored;  // empty after an upload
    uint64_t size = 0;
    std::string sha1;
  };

  EncodeWorker(Backend* backend, std::string upload_name, size_t queue_limit)
      : backend_(backend), upload_name_(std::move(upload_name)), queue_limit_(queue_limit) {}
  ~EncodeWorker() {
    if (thread_.joinable()) {
      {
        std::lock_guard lock(mu_);
        closed_ = true;
        abandoned_ = true;
      }
      cv_.notify_all();
      thread_.join();
    }
  }
  EncodeWorker(const EncodeWorker&) = delete;
  EncodeWorker& operator=(const EncodeWorker&) = delete;

  Status start(const EncodeOptions& options, const std::string& name) {
    sha1_.reset(EVP_MD_CTX_new());
    if (!sha1_ || EVP_DigestInit_ex(sha1_.get(), EVP_sha1(), nullptr) != 1) {
      return error(ErrorKind::kIoError, "SHA1 unavailable");
    }
    auto enc = make_encoder(options, name, [this](std::string_view b) -> Status {
      stored_.append(b);
      EVP_DigestUpdate(sha1_.get(), b.data(), b.size());
      return {};
    });
    if (!enc) return std::unexpected(enc.error());
    encoder_ = std::move(*enc);
    thread_ = std::thread([this] { run(); });
    return {};
  }

  // Queues the next plaintext (moved from). Returns the worker's error once it has failed.
  Status push(std::string& piece) {
    if (piece.empty()) return {};
    const size_t n = piece.size();
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return error_ || queued_ < queue_limit_ || queue_.empty(); });
    if (error_) return std::unexpected(*error_);
    queue_.push_back(std::move(piece));
    piece.clear();
    queued_ += n;
    cv_.notify_all();
    return {};
  }

  // No more input.
  void close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }

  // Waits for the encoding (and upload) to end.
  Result<Done> wait() {
    close();
    if (thread_.joinable()) thread_.join();
    if (error_) return std::unexpected(*error_);
    return std::move(done_);
  }

  // Plaintext the encoder took, and stored bytes it produced, so far.
  uint64_t consumed() const { return consumed_.load(std::memory_order_relaxed); }
  uint64_t stored() const { return stored_out_.load(std::memory_order_relaxed); }

 private:
  void run() {
    Status st;
    for (;;) {
      std::string piece;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return closed_ || !queue_.empty(); });
        if (abandoned_) return;
        if (queue_.empty()) break;
        piece = std::move(queue_.front());
        queue_.pop_front();
        queued_ -= piece.size();
      }
      cv_.notify_all();
      if (st) st = encoder_->write(piece);
      // Plaintext is wiped as soon as it is encoded.
      OPENSSL_cleanse(piece.data(), piece.size());
      consumed_.fetch_add(piece.size(), std::memory_order_relaxed);
      stored_out_.store(encoder_->bytes_out(), std::memory_order_relaxed);
      if (!st) fail(st.error());
    }
    if (st) st = encoder_->finish();
    encoder_.reset();
    if (st) {
      done_.size = stored_.size();
      done_.sha1 = sha1_hex(sha1_.get());
      stored_out_.store(stored_.size(), std::memory_order_relaxed);
      if (!upload_name_.empty()) {
        if (auto up = backend_->write(upload_name_, stored_); !up) {
          st = error(up.error().kind, "cannot store {}: {}", upload_name_, up.error().message);
        }
        std::string().swap(stored_);
      } else {
        done_.stored = std::move(stored_);
      }
    }
    if (!st) fail(st.error());
  }

  void fail(const Error& e) {
    std::lock_guard lock(mu_);
    if (!error_) error_ = e;
    // Nothing more will be taken: wake any pusher.
    cv_.notify_all();
  }

  Backend* backend_;
  std::string upload_name_;
  size_t queue_limit_;
  std::unique_ptr<Encoder> encoder_;
  MdCtx sha1_;
  std::string stored_;
  Done done_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  size_t queued_ = 0;
  bool closed_ = false;
  bool abandoned_ = false;
  std::optional<Error> error_;
  std::atomic<uint64_t> consumed_{0};
  std::atomic<uint64_t> stored_out_{0};
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// SetWriter

class SetWriter::Impl {
 public:
  Impl(Backend& backend, const BackupOptions& options, int64_t time,
       std::optional<ChainState> previous)
      : backend_(backend), options_(options), time_(time), previous_(std::move(previous)) {}

  Status start() {
    stats_.start_time = now_seconds();
    if (previous_ && previous_->end_time >= time_) {
      return error(ErrorKind::kInvalidArgument,
                   "incremental time {} is not after the chain's end {}", format_name_time(time_),
                   format_name_time(previous_->end_time));
    }
    const std::string suffix(suffix_for(options_.encode.codec));
    const bool full = !previous_;
    sig_name_ =
        full ? full_sig_name(time_, suffix) : new_sig_name(previous_->end_time, time_, suffix);
    manifest_name_ = full ? full_manifest_name(time_, gpg() ? ".gpg" : "")
                          : inc_manifest_name(previous_->end_time, time_, gpg() ? ".gpg" : "");
    manifest_.hostname = options_.hostname;
    manifest_.localdir = options_.localdir;
    manifest_.files.emplace();
    sig_remote_ = std::make_unique<EncodeWorker>(nullptr, "", kQueueLimit);
    if (auto st = sig_remote_->start(options_.encode, sig_name_); !st) return st;
    if (archive_dir_.enabled()) {
      sig_cache_ = std::make_unique<EncodeWorker>(nullptr, "", kQueueLimit);
      const std::string copy = archive_dir_.copy_path(sig_name_);
      if (auto st = sig_cache_->start(ArchiveDir::signature_encoding(), copy); !st) return st;
    }
    sigtar_ = std::make_unique<SigtarWriter>([this](std::string_view tar) -> Status {
      sig_batch_.append(tar);
      return sig_batch_.size() >= kBatchSize ? push_sigtar() : Status{};
    });
    return {};
  }

  Status add(const SourceEntry& src) {
    if (finished_) return error(ErrorKind::kInvalidArgument, "backup set already finished");
    if (have_last_ && !(last_index_ < src.index)) {
      return error(ErrorKind::kInvalidArgument, "source objects out of order at {}",
                   index_to_string(src.index));
    }
    have_last_ = true;
    last_index_ = src.index;
    auto type = tar_type_of(src.st.st_mode);
    if (!type) {
      log_info("skipping {}: sockets are not backed up", index_to_string(src.index));
      return {};
    }
    std::optional<SignedSigEntry> matched;
    if (previous_) {
      if (auto st = load_prev_head(); !st) return st;
      while (prev_head_ && prev_head_->entry.index < src.index) {
        if (auto st = write_deleted(*prev_head_); !st) return st;
        if (auto st = advance_prev(); !st) return st;
      }
      if (prev_head_ && prev_head_->entry.index == src.index) {
        matched = std::move(prev_head_);
        if (auto st = advance_prev(); !st) return st;
      }
    }
    const SignedSigEntry* previous = matched ? &*matched : nullptr;
    if (previous != nullptr && unchanged(*previous, src, *type)) {
      ++stats_.source_files;
      stats_.source_file_size += src.st.st_size;
      return {};
    }
    return write_object(src, *type, previous);
  }

  Result<BackupStatistics> finish() {
    if (finished_) return error(ErrorKind::kInvalidArgument, "backup set already finished");
    finished_ = true;
    if (previous_) {
      if (auto st = load_prev_head(); !st) return std::unexpected(st.error());
      while (prev_head_) {
        if (auto st = write_deleted(*prev_head_); !st) return std::unexpected(st.error());
        if (auto st = advance_prev(); !st) return std::unexpected(st.error());
      }
    }
    stats_.end_time = now_seconds();
    // The last volume (a set always has at least one), then every volume stored.
    if (!volume_ && volumes_opened_ == 0) {
      if (auto st = open_volume(); !st) return std::unexpected(st.error());
    }
    if (volume_) {
      if (auto st = close_volume(); !st) return std::unexpected(st.error());
    }
    while (!in_flight_.empty()) {
      if (auto st = collect_oldest(); !st) return std::unexpected(st.error());
    }
    // The signature file.
    if (auto st = sigtar_->finish(); !st) return std::unexpected(st.error());
    if (auto st = push_sigtar(); !st) return std::unexpected(st.error());
    auto remote = sig_remote_->wait();
    if (!remote) return std::unexpected(remote.error());
    if (auto st = store(sig_name_, remote->stored); !st) return std::unexpected(st.error());
    if (sig_cache_) {
      auto cached = sig_cache_->wait();
      if (!cached) return std::unexpected(cached.error());
      archive_dir_.store_encoded(sig_name_, cached->stored);
    }
    // The manifest, last.
    std::string text = format_manifest(manifest_);
    std::string stored = text;
    if (gpg()) {
      auto enc = encode_to_string(options_.encode, manifest_name_, text);
      if (!enc) return std::unexpected(enc.error());
      stored = std::move(*enc);
    }
    archive_dir_.store(manifest_name_, text);
    if (auto st = store(manifest_name_, stored); !st) return std::unexpected(st.error());
    return stats_;
  }

  const std::vector<std::string>& stored_names() const { return stored_names_; }

 private:
  bool gpg() const { return options_.encode.codec == Codec::kGpg; }
  bool full() const { return !previous_; }

  // The previous chain's merged signatures are read one entry ahead of the source walk.
  Status load_prev_head() {
    if (prev_loaded_) return {};
    prev_loaded_ = true;
    return advance_prev();
  }
  Status advance_prev() {
    auto next = previous_->next();
    if (!next) return std::unexpected(next.error());
    prev_head_ = std::move(*next);
    return {};
  }

  // ---- change detection (docs/format.md §3.6, path.ROPath.__eq__)

  bool unchanged(const SignedSigEntry& prev, const SourceEntry& src, TarType type) {
    const SigEntry& e = prev.entry;
    if (e.type != type) return false;
    const auto perms_equal = [&] {
      return (src.st.st_mode & 07777) == (e.mode & 07777) &&
             static_cast<int64_t>(src.st.st_uid) == owners_.uid(e.uname, e.uid) &&
             static_cast<int64_t>(src.st.st_gid) == owners_.gid(e.gname, e.gid);
    };
    switch (type) {
      case TarType::kFile:
      case TarType::kDirectory:
      case TarType::kFifo: {
        if (!perms_equal()) return false;
        const double m = python_mtime(src.st);
        const int64_t stored = e.mtime < 0 ? 0 : e.mtime;
        if (static_cast<int64_t>(m) == stored) return true;
        return m <= 0 && stored <= 0;
      }
      case TarType::kSymlink:
        return src.link_target == e.linkname;
      case TarType::kCharDevice:
      case TarType::kBlockDevice:
        return perms_equal() && major(src.st.st_rdev) == e.devmajor &&
               minor(src.st.st_rdev) == e.devminor;
      case TarType::kHardlink:
        return false;
    }
    return false;
  }

  // ---- entries

  TarMember member_for(const SourceEntry& src, TarType type) {
    TarMember m;
    m.type = type;
    m.mode = src.st.st_mode & 07777;
    m.uid = src.st.st_uid;
    m.gid = src.st.st_gid;
    m.uname = owners_.user_name(src.st.st_uid);
    m.gname = owners_.group_name(src.st.st_gid);
    m.mtime = tar_mtime(src.st);
    if (type == TarType::kSymlink) m.linkname = src.link_target;
    if (type == TarType::kCharDevice || type == TarType::kBlockDevice) {
      m.devmajor = major(src.st.st_rdev);
      m.devminor = minor(src.st.st_rdev);
    }
    return m;
  }

  static SigEntry sig_entry_for(const TarMember& m) {
    SigEntry e;
    e.type = m.type;
    e.mode = m.mode;
    e.uid = m.uid;
    e.gid = m.gid;
    e.uname = m.uname;
    e.gname = m.gname;
    e.mtime = m.mtime;
    e.linkname = m.linkname;
    e.devmajor = m.devmajor;
    e.devminor = m.devminor;
    return e;
  }

  Status write_object(const SourceEntry& src, TarType type, const SignedSigEntry* previous) {
    TarMember m = member_for(src, type);
    const bool dir = type == TarType::kDirectory;
    if (type != TarType::kFile) {
      m.name = difftar_member_name(EntryKind::kSnapshot, src.index, dir);
      if (auto st = add_block(src.index, std::nullopt, m, {}); !st) return st;
      if (auto st = sigtar_->add(sigtar_member_name(EntryKind::kSnapshot, src.index, dir),
                                 sig_entry_for(m));
          !st) {
        return st;
      }
      ++stats_.source_files;
      stats_.source_file_size += src.st.st_size;
      ++stats_.new_files;
      stats_.new_file_size += src.st.st_size;
      ++stats_.delta_entries;
      return {};
    }
    return write_file(src, m, previous);
  }

  Status write_file(const SourceEntry& src, TarMember& m, const SignedSigEntry* previous) {
    const bool diff = previous != nullptr && previous->entry.kind == EntryKind::kSignature;
    const std::string where = index_to_string(src.index);
    int fd = ::open(src.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
    if (fd < 0 && errno == EPERM) fd = ::open(src.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      log_warning("Error {} getting delta for {}", std::strerror(errno), where);
      ++stats_.errors;
      return {};
    }
    struct Closer {
      int fd;
      ~Closer() { ::close(fd); }
    } closer{fd};
    std::optional<DeltaGenerator> delta;
    if (diff) {
      auto loaded = LoadedSignature::load(previous->signature);
      if (!loaded) {
        log_warning("Error {} getting delta for {}", loaded.error().message, where);
        ++stats_.errors;
        return {};
      }
      delta.emplace(std::move(*loaded));
    }
    SignatureGenerator sig(signature_block_length(static_cast<uint64_t>(src.st.st_size)));
    const EntryKind single = diff ? EntryKind::kDiff : EntryKind::kSnapshot;
    const EntryKind multi = diff ? EntryKind::kMultivolDiff : EntryKind::kMultivolSnapshot;
    int64_t chunk = 0;
    uint64_t read_total = 0;
    std::string& pending = pending_;
    pending.clear();
    // Emits every whole 64 KiB piece of `pending` as a non-final multivol chunk.
    const auto emit_whole_chunks = [&]() -> Status {
      size_t pos = 0;
      while (pending.size() - pos >= kChunkSize) {
        ++chunk;
        m.name = difftar_member_name(multi, src.index, false, chunk);
        if (auto st =
                add_block(src.index, chunk, m, std::string_view(pending).substr(pos, kChunkSize));
            !st) {
          return st;
        }
        pos += kChunkSize;
      }
      pending.erase(0, pos);
      return {};
    };
    read_buffer_.resize(kReadSize);
    for (;;) {
      ssize_t n = ::read(fd, read_buffer_.data(), read_buffer_.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        log_warning("Error {} reading {}", std::strerror(errno), where);
        ++stats_.errors;
        n = 0;
      }
      if (n == 0) break;
      std::string_view data(read_buffer_.data(), static_cast<size_t>(n));
      read_total += data.size();
      if (auto st = sig.update(data); !st) return st;
      if (delta) {
        if (auto st = delta->update(data, pending); !st) return st;
      } else {
        pending.append(data);
      }
      if (auto st = emit_whole_chunks(); !st) return st;
    }
    if (delta) {
      if (auto st = delta->finish(pending); !st) return st;
      if (auto st = emit_whole_chunks(); !st) return st;
    }
    // The last piece: the whole object when it fit in one, else the final (maybe empty) chunk.
    m.name = chunk == 0 ? difftar_member_name(single, src.index, false)
                        : difftar_member_name(multi, src.index, false, chunk + 1);
    if (auto st = add_block(src.index, std::nullopt, m, pending); !st) return st;
    pending.clear();
    auto signature = sig.finish();
    if (!signature) return std::unexpected(signature.error());
    if (auto st = sigtar_->add(sigtar_member_name(EntryKind::kSignature, src.index, false),
                               sig_entry_for(m), *signature);
        !st) {
      return st;
    }
    ++stats_.source_files;
    stats_.source_file_size += static_cast<int64_t>(read_total);
    ++stats_.delta_entries;
    if (diff) {
      ++stats_.changed_files;
      stats_.changed_file_size += src.st.st_size;
      manifest_.files->push_back(FileChange{"changed", src.index});
    } else {
      ++stats_.new_files;
      stats_.new_file_size += src.st.st_size;
      manifest_.files->push_back(FileChange{"new", src.index});
    }
    return {};
  }

  Status write_deleted(const SignedSigEntry& prev) {
    const Index& index = prev.entry.index;
    if (index.empty()) return {};  // the root is never deleted (duplicity LP #929067)
    TarMember m;
    m.name = difftar_member_name(EntryKind::kDeleted, index, false);
    if (auto st = add_block(index, std::nullopt, m, {}); !st) return st;
    SigEntry e;
    e.kind = EntryKind::kDeleted;
    if (auto st = sigtar_->add(sigtar_member_name(EntryKind::kDeleted, index, false), e); !st) {
      return st;
    }
    ++stats_.deleted_files;
    ++stats_.delta_entries;
    if (prev.entry.kind == EntryKind::kSignature) {
      manifest_.files->push_back(FileChange{"deleted", index});
    }
    return {};
  }

  // ---- volumes

  // The volume being filled. Its plaintext goes to its EncodeWorker in batches; closed
  // volumes stay in in_flight_ until their worker has encoded and stored them.
  struct Volume {
    int number = 0;
    std::string name;
    std::unique_ptr<EncodeWorker> worker;
    std::string batch;        // tar bytes not yet queued
    uint64_t tar_offset = 0;  // tar bytes of this volume so far
    bool has_blocks = false;
    Index first_index, last_index;
    std::optional<int64_t> first_block, last_block;
  };
  struct InFlight {
    std::string name;
    ManifestVolume entry;  // without its hash until stored
    std::unique_ptr<EncodeWorker> worker;
  };

  static constexpr size_t kBatchSize = 1 << 20;
  static constexpr size_t kQueueLimit = 8 << 20;

  Status push_sigtar() {
    if (sig_batch_.empty()) return {};
    if (sig_cache_) {
      std::string copy = sig_batch_;
      if (auto st = sig_cache_->push(copy); !st) return st;
    }
    return sig_remote_->push(sig_batch_);
  }

  // Room is measured as duplicity measures it (docs/format.md §6): against the stored size, keeping
  // 50 KiB + 16 KiB back for gpg, and a volume closes when less than one 64 KiB block fits. The
  // stored size of plaintext still queued for the encoder is estimated with the ratio the
  // encoder has shown so far (1 before it has seen 1 MiB).
  bool volume_full() const {
    uint64_t limit = options_.volume_size;
    if (gpg()) limit = limit > (66 << 10) ? limit - (66 << 10) : 0;
    const EncodeWorker& w = *volume_->worker;
    const uint64_t consumed = w.consumed();
    const uint64_t stored = w.stored();
    const double ratio =
        consumed >= (1 << 20) ? static_cast<double>(stored) / static_cast<double>(consumed) : 1.0;
    const uint64_t waiting = volume_->tar_offset > consumed ? volume_->tar_offset - consumed : 0;
    const uint64_t used = stored + static_cast<uint64_t>(static_cast<double>(waiting) * ratio);
    return used >= limit || limit - used < kChunkSize;
  }

  Status open_volume() {
    auto v = std::make_unique<Volume>();
    v->number = ++volumes_opened_;
    const std::string suffix(suffix_for(options_.encode.codec));
    v->name = full() ? full_volume_name(time_, v->number, suffix)
                     : inc_volume_name(previous_->end_time, time_, v->number, suffix);
    v->worker = std::make_unique<EncodeWorker>(&backend_, v->name, kQueueLimit);
    if (auto st = v->worker->start(options_.encode, v->name); !st) return st;
    volume_ = std::move(v);
    return {};
  }

  Status close_volume() {
    Volume& v = *volume_;
    if (gpg()) {
      // Encrypted volumes end with a tar footer (get_footer); gzip and plain ones do not.
      v.batch += tar_volume_footer(v.tar_offset);
    }
    if (auto st = v.worker->push(v.batch); !st) return st;
    v.worker->close();
    InFlight f;
    f.name = v.name;
    f.entry.number = v.number;
    f.entry.start = v.first_index;
    f.entry.start_block = v.first_block;
    f.entry.end = v.has_blocks ? v.last_index : v.first_index;
    f.entry.end_block = v.has_blocks ? v.last_block : v.first_block;
    f.worker = std::move(v.worker);
    in_flight_.push_back(std::move(f));
    volume_.reset();
    // Memory stays bounded by a few volumes: one per core is being encoded or stored, at most
    // kMaxVolumesInFlight (beyond that the single reading thread is the limit anyway).
    const size_t max_in_flight =
        std::clamp<size_t>(std::thread::hardware_concurrency(), 2, kMaxVolumesInFlight);
    while (in_flight_.size() >= max_in_flight) {
      if (auto st = collect_oldest(); !st) return st;
    }
    return {};
  }

  static constexpr size_t kMaxVolumesInFlight = 4;

  // Waits for the oldest closed volume to be stored and records it in the manifest.
  Status collect_oldest() {
    InFlight f = std::move(in_flight_.front());
    in_flight_.pop_front();
    auto done = f.worker->wait();
    if (!done) return std::unexpected(done.error());
    f.entry.hash_type = "SHA1";
    f.entry.hash_hex = done->sha1;
    stats_.total_destination_size_change += static_cast<int64_t>(done->size);
    stored_names_.push_back(f.name);
    log_info("stored {} ({} bytes)", f.name, done->size);
    if (options_.after_store) options_.after_store(f.name);
    const int number = f.entry.number;
    manifest_.volumes[number] = std::move(f.entry);
    if (options_.on_volume) {
      options_.on_volume(number, static_cast<uint64_t>(stats_.total_destination_size_change),
                         static_cast<uint64_t>(stats_.source_file_size));
    }
    return {};
  }

  // One tar block: `m`'s header (its size set to the data's), the data, the padding.
  // `block` is the manifest block number (non-final multivol chunks only).
  Status add_block(const Index& index, std::optional<int64_t> block, TarMember& m,
                   std::string_view data) {
    if (volume_ && volume_->has_blocks && volume_full()) {
      if (auto st = close_volume(); !st) return st;
    }
    if (!volume_) {
      if (auto st = open_volume(); !st) return st;
    }
    Volume& v = *volume_;
    m.size = data.size();
    const size_t before = v.batch.size();
    v.batch += tar_header(m);
    v.batch.append(data);
    v.batch.append(tar_padding(data.size()), '\0');
    v.tar_offset += v.batch.size() - before;
    stats_.raw_delta_size += static_cast<int64_t>(data.size());
    if (!v.has_blocks) {
      v.has_blocks = true;
      v.first_index = index;
      v.first_block = block;
    }
    v.last_index = index;
    v.last_block = block;
    if (v.batch.size() >= kBatchSize) return v.worker->push(v.batch);
    return {};
  }

  // ---- storage

  Status store(const std::string& name, std::string_view data) {
    if (auto st = backend_.write(name, data); !st) {
      return error(st.error().kind, "cannot store {}: {}", name, st.error().message);
    }
    stored_names_.push_back(name);
    log_info("stored {} ({} bytes)", name, data.size());
    if (options_.after_store) options_.after_store(name);
    return {};
  }

  Backend& backend_;
  BackupOptions options_;
  ArchiveDir archive_dir_{options_.archive_dir};
  int64_t time_;
  std::optional<ChainState> previous_;
  std::optional<SignedSigEntry> prev_head_;
  bool prev_loaded_ = false;
  bool finished_ = false;
  bool have_last_ = false;
  Index last_index_;
  OwnerMapper owners_;
  BackupStatistics stats_;
  Manifest manifest_;
  std::string sig_name_, manifest_name_;
  std::unique_ptr<EncodeWorker> sig_remote_, sig_cache_;
  std::string sig_batch_;
  std::unique_ptr<SigtarWriter> sigtar_;
  std::unique_ptr<Volume> volume_;
  std::deque<InFlight> in_flight_;
  int volumes_opened_ = 0;
  std::vector<std::string> stored_names_;
  std::string read_buffer_;
  std::string pending_;
};

SetWriter::SetWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SetWriter::~SetWriter() = default;

Result<std::unique_ptr<SetWriter>> SetWriter::start(Backend& backend, const BackupOptions& options,
                                                    int64_t time,
                                                    std::optional<ChainState> previous) {
  auto impl = std::make_unique<Impl>(backend, options, time, std::move(previous));
  if (auto st = impl->start(); !st) return std::unexpected(st.error());
  return std::unique_ptr<SetWriter>(new SetWriter(std::move(impl)));
}

Status SetWriter::add(const SourceEntry& source) { return impl_->add(source); }
Result<BackupStatistics> SetWriter::finish() { return impl_->finish(); }
const std::vector<std::string>& SetWriter::stored_names() const { return impl_->stored_names(); }

}  // namespace dupfs::chain

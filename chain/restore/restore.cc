#include "chain/restore/restore.h"

#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "backends/backend_wrapper.h"
#include "backends/base/log.h"
#include "chain/format/delta.h"
#include "chain/format/difftar.h"
#include "chain/format/manifest.h"
#include "chain/format/names.h"
#include "chain/metadata/archive_dir.h"

namespace dupfs::chain {

Result<std::vector<RestoreSet>> plan_restore(const Backend& backend, const Collection& collection,
                                             int64_t time, const Index& prefix,
                                             const Credentials& credentials,
                                             const std::string& archive_dir) {
  auto chain = find_chain_for_time(collection, time);
  if (!chain) return std::unexpected(chain.error());
  std::vector<const BackupSet*> sets = (*chain)->sets_up_to(time);
  // Manifests are decrypted in parallel: each costs a key derivation.
  const ArchiveDir archive(archive_dir);
  std::vector<std::future<Result<std::string>>> texts;
  for (const BackupSet* set : sets) {
    texts.push_back(std::async(std::launch::async, [&, set] {
      return archive.fetch(backend, set->manifest_name, credentials);
    }));
  }
  std::vector<RestoreSet> out;
  std::optional<Error> failure;
  for (size_t i = 0; i < sets.size(); ++i) {
    auto text = texts[i].get();
    if (failure) continue;
    if (!text) {
      failure = Error{text.error().kind, fmt::format("manifest {} is unreadable: {}",
                                                     sets[i]->manifest_name, text.error().message)};
      continue;
    }
    auto manifest = parse_manifest(*text);
    if (!manifest) {
      failure = Error{ErrorKind::kCorruption,
                      fmt::format("manifest {} is damaged: {}", sets[i]->manifest_name,
                                  manifest.error().message)};
      continue;
    }
    RestoreSet rs;
    rs.manifest_name = sets[i]->manifest_name;
    rs.time = sets[i]->end_time;
    for (int number : volumes_for_prefix(*manifest, prefix)) {
      auto file = sets[i]->volumes.find(number);
      if (file == sets[i]->volumes.end()) {
        // Named as its siblings are (the name it would have), for the user to look for.
        std::string name;
        if (!sets[i]->volumes.empty()) {
          const auto& [some, sibling] = *sets[i]->volumes.begin();
          std::string from = fmt::format(".vol{}.", some);
          if (auto pos = sibling.find(from); pos != std::string::npos) {
            name = sibling.substr(0, pos) + fmt::format(".vol{}.", number) +
                   sibling.substr(pos + from.size()) + ", ";
          }
        }
        failure = Error{ErrorKind::kCorruption,
                        fmt::format("{}volume {} of {} is missing from {}", name, number,
                                    sets[i]->manifest_name, backend.describe())};
        break;
      }
      RestoreVolume v;
      v.name = file->second;
      const ManifestVolume& mv = manifest->volumes.at(number);
      if (mv.hash_type == "SHA1") v.sha1 = mv.hash_hex;
      if (auto size = backend.size(v.name); size) v.stored_size = *size;
      rs.volumes.push_back(std::move(v));
    }
    out.push_back(std::move(rs));
  }
  if (failure) return std::unexpected(*failure);
  return out;
}

namespace {

constexpr size_t kReadPiece = size_t{1} << 20;

std::string hex_of(const unsigned char* d, unsigned n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < n; ++i) {
    s += kHex[d[i] >> 4];
    s += kHex[d[i] & 0xf];
  }
  return s;
}

// One volume read once: a thread reads its stored bytes ahead of the decoder (bounded) and
// hashes them; the decoder reads them through this Backend. Other names pass through.
class VolumeFeed : public BackendWrapper {
 public:
  VolumeFeed(const Backend& inner, std::string name, size_t readahead, RestoreProgress* progress)
      : BackendWrapper(inner), name_(std::move(name)), readahead_(readahead), progress_(progress) {
    thread_ = std::thread([this] { run(); });
  }
  ~VolumeFeed() override {
    {
      std::lock_guard lock(mu_);
      cancel_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // The SHA1 hex of every stored byte (reads to the end if the decoder stopped early).
  Result<std::string> digest() {
    std::unique_lock lock(mu_);
    resume_all_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return done_; });
    if (error_) return std::unexpected(*error_);
    return digest_;
  }

  Result<std::string> read_range(const std::string& n, uint64_t offset,
                                 size_t length) const override {
    if (n != name_ || offset != consumed_) return target().read_range(n, offset, length);
    std::string out;
    std::unique_lock lock(mu_);
    while (out.size() < length) {
      cv_.wait(lock, [&] { return !pieces_.empty() || done_; });
      if (pieces_.empty()) {
        if (error_) return std::unexpected(*error_);
        break;  // end of the object
      }
      std::string& front = pieces_.front();
      size_t take = std::min(length - out.size(), front.size() - front_used_);
      out.append(front, front_used_, take);
      front_used_ += take;
      if (front_used_ == front.size()) {
        buffered_ -= front.size();
        pieces_.pop_front();
        front_used_ = 0;
        cv_.notify_all();
      }
    }
    consumed_ += out.size();
    if (progress_) progress_->stored_read += out.size();
    return out;
  }

 private:
  void run() {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    EVP_DigestInit_ex(ctx.get(), EVP_sha1(), nullptr);
    uint64_t pos = 0;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return cancel_ || resume_all_ || buffered_ < readahead_; });
        if (cancel_) break;
      }
      auto piece = target().read_range(name_, pos, kReadPiece);
      if (!piece) {
        std::lock_guard lock(mu_);
        error_ = piece.error();
        break;
      }
      EVP_DigestUpdate(ctx.get(), piece->data(), piece->size());
      pos += piece->size();
      bool last = piece->size() < kReadPiece;
      {
        std::lock_guard lock(mu_);
        if (!resume_all_ && !piece->empty()) {
          buffered_ += piece->size();
          pieces_.push_back(std::move(*piece));
        }
      }
      cv_.notify_all();
      if (last) {
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        EVP_DigestFinal_ex(ctx.get(), d, &n);
        std::lock_guard lock(mu_);
        digest_ = hex_of(d, n);
        break;
      }
    }
    std::lock_guard lock(mu_);
    if (!error_ && digest_.empty()) error_ = Error{ErrorKind::kCancelled, "read cancelled"};
    done_ = true;
    cv_.notify_all();
  }

  const std::string name_;
  const size_t readahead_;
  RestoreProgress* progress_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable std::deque<std::string> pieces_;
  mutable size_t front_used_ = 0;
  mutable size_t buffered_ = 0;
  mutable uint64_t consumed_ = 0;
  bool cancel_ = false;
  bool resume_all_ = false;  // digest() asked: read to the end without buffering
  bool done_ = false;
  std::optional<Error> error_;
  std::string digest_;
  std::thread thread_;
};

// What a set's decoding thread hands to the collating thread.
struct Event {
  enum Type { kStart, kData, kEnd, kVolumeStart, kVolumeVerified, kError, kFinished };
  explicit Event(Type t) : type(t) {}
  Type type;
  EntryName name{};
  TarHeader header;
  DataPiece piece;
  std::optional<Error> error;
  std::optional<std::string> mismatched;  // kError: the volume whose hash did not match
};

// One set's volumes, decoded front to back by a thread of its own, as a stream of objects
// (multivol chunks joined, entries outside the prefix dropped, the prefix stripped).
class SetStream : public TarVisitor {
 public:
  SetStream(const Backend& backend, const Credentials& credentials, const RestoreSet& set,
            const RestoreOptions& options)
      : backend_(backend), credentials_(credentials), set_(set), options_(options) {
    thread_ = std::thread([this] { run(); });
  }
  ~SetStream() override {
    {
      std::lock_guard lock(mu_);
      cancel_ = true;
    }
    space_cv_.notify_all();
    thread_.join();
  }

  // The next event. Takes every queued event at once, so the two threads meet once per batch,
  // not once per piece.
  Event pop() {
    if (taken_.empty()) {
      std::unique_lock lock(mu_);
      consumer_waiting_ = true;
      data_cv_.wait(lock, [&] { return !queue_.empty(); });
      consumer_waiting_ = false;
      taken_.swap(queue_);
      queued_bytes_ = 0;
      if (producer_waiting_) space_cv_.notify_one();
    }
    Event e = std::move(taken_.front());
    taken_.pop_front();
    return e;
  }

  Status on_entry(const TarHeader& h) override {
    auto name = parse_entry_name(h.name);
    bool wanted = name.has_value() && name->kind != EntryKind::kSignature &&
                  index_has_prefix(name->index, options_.prefix);
    if (!wanted) {
      skipping_ = true;
      return close_open();
    }
    skipping_ = false;
    name->index.erase(name->index.begin(),
                      name->index.begin() + static_cast<ptrdiff_t>(options_.prefix.size()));
    bool multivol =
        name->kind == EntryKind::kMultivolSnapshot || name->kind == EntryKind::kMultivolDiff;
    EntryKind kind = name->kind == EntryKind::kMultivolSnapshot ? EntryKind::kSnapshot
                     : name->kind == EntryKind::kMultivolDiff   ? EntryKind::kDiff
                                                                : name->kind;
    if (open_ && open_multivol_ && multivol && kind == open_kind_ && name->index == open_index_) {
      return {};  // the next chunk of the open object
    }
    if (auto st = close_open(); !st) return st;
    Event e{Event::kStart};
    e.name = EntryName{kind, name->index, 0};
    e.header = h;
    e.header.name.clear();
    open_ = true;
    open_multivol_ = multivol;
    open_kind_ = kind;
    open_index_ = std::move(name->index);
    return push(std::move(e));
  }
  Status on_data(const TarHeader&, std::string_view piece) override {
    if (skipping_) return {};
    Event e{Event::kData};
    if (chunk_ && piece.data() >= chunk_->data() &&
        piece.data() + piece.size() <= chunk_->data() + chunk_->size()) {
      e.piece = DataPiece{chunk_, piece};
    } else {
      auto copy = std::make_shared<const std::string>(piece);
      e.piece = DataPiece{copy, *copy};
    }
    return push(std::move(e));
  }
  Status on_entry_end(const TarHeader&) override {
    if (skipping_ || open_multivol_) return {};
    return close_open();
  }

 private:
  Status close_open() {
    if (!open_) return {};
    open_ = false;
    return push(Event{Event::kEnd});
  }

  Status push(Event e) {
    std::unique_lock lock(mu_);
    size_t n = e.piece.bytes.size();
    producer_waiting_ = true;
    space_cv_.wait(lock, [&] { return cancel_ || queued_bytes_ < options_.queue_bytes; });
    producer_waiting_ = false;
    if (cancel_) return error(ErrorKind::kCancelled, "restore cancelled");
    queued_bytes_ += n;
    queue_.push_back(std::move(e));
    if (consumer_waiting_) data_cv_.notify_one();
    return {};
  }

  void fail(Error e, std::optional<std::string> mismatched = std::nullopt) {
    Event ev{Event::kError};
    ev.error = std::move(e);
    ev.mismatched = std::move(mismatched);
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(ev));  // never blocks: the consumer must see the error
    data_cv_.notify_one();
  }

  void run() {
    for (const RestoreVolume& vol : set_.volumes) {
      if (!push(Event{Event::kVolumeStart})) return;
      VolumeFeed feed(backend_, vol.name, options_.readahead_bytes, options_.progress);
      TarParser parser(*this);
      Status st = decode_object(feed, vol.name, credentials_, [&](std::string_view bytes) {
        chunk_ = std::make_shared<const std::string>(bytes);
        return parser.feed(*chunk_);
      });
      chunk_.reset();
      if (st) st = parser.finish();
      if (!st && st.error().kind == ErrorKind::kCancelled) return;
      auto digest = feed.digest();
      if (!digest) {
        if (digest.error().kind == ErrorKind::kCancelled) return;
        fail(Error{digest.error().kind,
                   fmt::format("volume {}: {}", vol.name, digest.error().message)});
        return;
      }
      if (!vol.sha1.empty() && *digest != vol.sha1) {
        fail(Error{ErrorKind::kCorruption,
                   fmt::format("Invalid data - SHA1 hash mismatch for file: {} (calculated "
                               "hash {}, manifest hash {})",
                               vol.name, *digest, vol.sha1)},
             vol.name);
        return;
      }
      if (!st) {
        const std::string& m = st.error().message;
        fail(Error{st.error().kind, m.find(vol.name) == std::string::npos
                                        ? fmt::format("volume {} is damaged: {}", vol.name, m)
                                        : m});
        return;
      }
      if (!push(Event{Event::kVolumeVerified})) return;
    }
    if (!close_open()) return;
    push(Event{Event::kFinished});
  }

  const Backend& backend_;
  const Credentials& credentials_;
  const RestoreSet& set_;
  const RestoreOptions& options_;

  // Decoding thread only.
  std::shared_ptr<const std::string> chunk_;  // the decoded bytes being parsed
  bool skipping_ = false;
  bool open_ = false;
  bool open_multivol_ = false;
  EntryKind open_kind_ = EntryKind::kSnapshot;
  Index open_index_;

  std::mutex mu_;
  std::condition_variable data_cv_;   // the consumer waits for events
  std::condition_variable space_cv_;  // the producer waits for room
  std::deque<Event> queue_;
  size_t queued_bytes_ = 0;
  bool consumer_waiting_ = false;
  bool producer_waiting_ = false;
  std::deque<Event> taken_;  // consumer thread only: events taken from queue_, not yet popped
  bool cancel_ = false;
  std::thread thread_;  // last: starts once everything above is set up
};

// The collating thread's view of one set: its current object.
class Cursor {
 public:
  explicit Cursor(SetStream& s) : s_(s) {}
  bool has() const { return has_; }
  const EntryName& name() const { return name_; }
  const TarHeader& header() const { return header_; }
  bool trusted() const { return started_ == verified_; }
  const std::optional<std::string>& mismatched() const { return mismatched_; }

  // Moves to the next object (the current one must have been read to its end).
  Status advance() {
    has_ = false;
    done_ = false;
    for (;;) {
      Event e = s_.pop();
      if (auto st = note(e); !st) return st;
      if (e.type == Event::kFinished) return {};
      if (e.type == Event::kStart) {
        has_ = true;
        name_ = std::move(e.name);
        header_ = std::move(e.header);
        return {};
      }
    }
  }
  // The next data piece of the current object; false at its end.
  Result<bool> piece(DataPiece& out) {
    if (done_) return false;
    for (;;) {
      Event e = s_.pop();
      if (auto st = note(e); !st) return std::unexpected(st.error());
      if (e.type == Event::kData) {
        out = std::move(e.piece);
        return true;
      }
      if (e.type == Event::kEnd) {
        done_ = true;
        return false;
      }
      if (e.type == Event::kFinished || e.type == Event::kStart) {
        return error(ErrorKind::kInvalidArgument, "restore: object ended unexpectedly");
      }
    }
  }
  Status drain() {
    DataPiece p;
    for (;;) {
      auto more = piece(p);
      if (!more) return std::unexpected(more.error());
      if (!*more) return {};
    }
  }
  Result<std::string> read_all() {
    std::string out;
    DataPiece p;
    for (;;) {
      auto more = piece(p);
      if (!more) return std::unexpected(more.error());
      if (!*more) return out;
      out.append(p.bytes);
    }
  }

 private:
  Status note(const Event& e) {
    if (e.type == Event::kVolumeStart) ++started_;
    if (e.type == Event::kVolumeVerified) ++verified_;
    if (e.type == Event::kError) {
      mismatched_ = e.mismatched;
      return std::unexpected(*e.error);
    }
    return {};
  }
  SetStream& s_;
  bool has_ = false;
  bool done_ = false;  // the current object's data has been read to its end
  EntryName name_{};
  TarHeader header_;
  int started_ = 0, verified_ = 0;
  std::optional<std::string> mismatched_;
};

// Applies a librsync delta (parsed by parse_delta) to a basis held in memory.
Result<std::string> apply_delta(const std::string& basis, const std::string& delta) {
  DeltaReader reader = [&](uint64_t off, char* out, size_t len) -> Result<size_t> {
    if (off >= delta.size()) return size_t{0};
    size_t n = std::min<uint64_t>(len, delta.size() - off);
    std::memcpy(out, delta.data() + off, n);
    return n;
  };
  auto commands = parse_delta(reader, delta.size(), basis.size());
  if (!commands) return std::unexpected(commands.error());
  std::string out;
  if (!commands->empty()) out.reserve(commands->back().out + commands->back().length);
  for (const DeltaCommand& c : *commands) {
    out.append(c.literal ? delta : basis, c.src, c.length);
  }
  return out;
}

}  // namespace

Status read_restore(const Backend& backend, const Credentials& credentials,
                    const std::vector<RestoreSet>& sets, const RestoreOptions& options,
                    RestoreSink& sink, RestoreResult& result) {
  if (options.progress) {
    uint64_t total = 0;
    for (const auto& s : sets) {
      for (const auto& v : s.volumes) total += v.stored_size;
    }
    options.progress->stored_total = total;
  }
  std::vector<std::unique_ptr<SetStream>> streams;
  std::vector<Cursor> cursors;
  for (const auto& s : sets)
    streams.push_back(std::make_unique<SetStream>(backend, credentials, s, options));
  for (auto& s : streams) cursors.emplace_back(*s);
  auto failed = [&](const Cursor& c, Error e) -> Status {
    if (c.mismatched()) result.mismatched_volume = c.mismatched();
    return std::unexpected(std::move(e));
  };
  for (auto& c : cursors) {
    if (auto st = c.advance(); !st) return failed(c, st.error());
  }
  std::vector<Cursor*> group;
  for (;;) {
    const Index* min = nullptr;
    for (auto& c : cursors) {
      if (c.has() && (!min || c.name().index < *min)) min = &c.name().index;
    }
    if (!min) break;
    const Index index = *min;
    group.clear();
    for (auto& c : cursors) {
      if (c.has() && c.name().index == index) group.push_back(&c);
    }
    // docs/format.md §3.7: everything before the newest whole copy or deletion is irrelevant.
    int base = -1;
    for (int i = static_cast<int>(group.size()) - 1; i >= 0 && base < 0; --i) {
      if (!is_diff_kind(group[i]->name().kind)) base = i;
    }
    std::string path = index_to_string(index);
    std::optional<std::string> problem;
    RestoredObject object{index, {}};
    std::optional<std::string> patched;  // data of a patched file
    Cursor* stream_from = nullptr;       // data streamed from this cursor
    bool emit = false;
    for (int i = 0; i < base; ++i) {
      if (auto st = group[i]->drain(); !st) return failed(*group[i], st.error());
    }
    const size_t diffs = group.size() - static_cast<size_t>(base) - 1;
    if (base < 0) {
      problem = "a delta without an earlier copy of the file";
    } else if (group[base]->name().kind == EntryKind::kDeleted) {
      if (diffs > 0) problem = "a delta after a deletion";
    } else if (group[base]->header().type != TarType::kFile) {
      if (diffs > 0) problem = "a delta of an object that is not a regular file";
      object.header = group[base]->header();
      emit = !problem;
    } else if (diffs == 0) {
      object.header = group[base]->header();
      object.header.size = 0;  // not known before the chunks have been read
      stream_from = group[base];
      emit = true;
    } else {
      auto data = group[base]->read_all();
      if (!data) return failed(*group[base], data.error());
      for (size_t i = base + 1; i < group.size() && !problem; ++i) {
        auto delta = group[i]->read_all();
        if (!delta) return failed(*group[i], delta.error());
        auto next = apply_delta(*data, *delta);
        if (!next) {
          problem = next.error().message;
        } else {
          *data = std::move(*next);
        }
      }
      object.header = group.back()->header();
      object.header.size = data->size();
      patched = std::move(*data);
      emit = !problem;
    }
    if (problem) {
      log_warning("Error '{}' patching {}", *problem, path);
      ++result.skipped;
    }
    if (emit) {
      if (auto st = sink.on_object(object); !st) return st;
      if (object.header.type == TarType::kFile) {
        uint64_t bytes = 0;
        if (patched) {
          auto owner = std::make_shared<const std::string>(std::move(*patched));
          if (!owner->empty()) {
            if (auto st = sink.on_data(DataPiece{owner, *owner}); !st) return st;
          }
          bytes = owner->size();
        } else if (stream_from) {
          DataPiece p;
          for (;;) {
            auto more = stream_from->piece(p);
            if (!more) return failed(*stream_from, more.error());
            if (!*more) break;
            bytes += p.bytes.size();
            if (auto st = sink.on_data(p); !st) return st;
          }
        }
        if (auto st = sink.on_object_end(); !st) return st;
        if (options.progress) options.progress->bytes += bytes;
      }
      ++result.objects;
      if (options.progress) ++options.progress->objects;
    }
    for (Cursor* c : group) {
      if (auto st = c->drain(); !st) return failed(*c, st.error());
    }
    for (Cursor* c : group) {
      if (auto st = c->advance(); !st) return failed(*c, st.error());
    }
    bool trusted = true;
    for (const auto& c : cursors) trusted = trusted && c.trusted();
    if (trusted) sink.on_trusted();
  }
  sink.on_trusted();
  return {};
}

}  // namespace dupfs::chain

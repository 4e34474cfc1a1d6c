#include "chain/backup/run_backup.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <zlib.h>

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

// One signature file of the chain, read entry by entry: from its gzipped copy in the archive dir
// (fetched, decoded and kept there first when missing), else from memory.
class SigLayer {
 public:
  static Result<std::unique_ptr<SigLayer>> open(const Backend& backend,
                                                const ArchiveDir& archive_dir,
                                                const std::string& name,
                                                const Credentials& credentials) {
    auto layer = std::unique_ptr<SigLayer>(new SigLayer(name));
    if (archive_dir.enabled()) {
      const std::string path = archive_dir.copy_path(name);
      if (!archive_dir.has_copy(name)) {
        // No copy yet: decode from storage and keep one (fetch does).
        auto text = archive_dir.fetch(backend, name, credentials);
        if (!text) return std::unexpected(text.error());
        if (!archive_dir.has_copy(name)) {
          layer->text_ = std::move(*text);
          return layer;
        }
      }
      layer->gz_ = gzopen(path.c_str(), "rb");
      if (layer->gz_ == nullptr) {
        return error(ErrorKind::kIoError, "cannot open {}: {}", path, std::strerror(errno));
      }
      gzbuffer(layer->gz_, 256 * 1024);
      return layer;
    }
    auto text = decode_object_to_string(backend, name, credentials);
    if (!text) return std::unexpected(text.error());
    layer->text_ = std::move(*text);
    return layer;
  }
  ~SigLayer() {
    if (gz_ != nullptr) gzclose(gz_);
  }

  // The next entry of the file; nullopt after the last.
  Result<std::optional<SignedSigEntry>> next() {
    while (!parser_.has_entry() && !done_) {
      std::string_view piece;
      if (gz_ != nullptr) {
        buffer_.resize(256 * 1024);
        int n = gzread(gz_, buffer_.data(), static_cast<unsigned>(buffer_.size()));
        if (n < 0) return error(ErrorKind::kCorruption, "signature file {}: bad gzip data", name_);
        piece = std::string_view(buffer_.data(), static_cast<size_t>(n));
      } else {
        piece = std::string_view(text_).substr(std::min(pos_, text_.size()), 256 * 1024);
        pos_ += piece.size();
      }
      Status st = piece.empty() ? parser_.finish() : parser_.feed(piece);
      if (piece.empty()) done_ = true;
      if (!st) {
        return error(ErrorKind::kCorruption, "signature file {} is damaged: {}", name_,
                     st.error().message);
      }
    }
    if (!parser_.has_entry()) return std::optional<SignedSigEntry>();
    return std::optional<SignedSigEntry>(parser_.take());
  }

 private:
  explicit SigLayer(std::string name) : name_(std::move(name)) {}
  std::string name_;
  gzFile gz_ = nullptr;
  std::string text_;
  size_t pos_ = 0;
  bool done_ = false;
  std::string buffer_;
  SignedSigtarParser parser_;
};

// The layers merged as duplicity's combine_path_iters merges them: in index order, for each
// index the entry of the newest layer, deleted entries dropped.
class MergedSignatures {
 public:
  explicit MergedSignatures(std::vector<std::unique_ptr<SigLayer>> layers)
      : layers_(std::move(layers)), heads_(layers_.size()) {}

  Result<std::optional<SignedSigEntry>> next() {
    if (!started_) {
      started_ = true;
      for (size_t i = 0; i < layers_.size(); ++i) {
        if (auto st = advance(i); !st) return std::unexpected(st.error());
      }
    }
    for (;;) {
      std::optional<size_t> best;
      for (size_t i = 0; i < heads_.size(); ++i) {
        if (!heads_[i]) continue;
        // The smallest index; among equal ones the newest layer (the later i).
        if (!best || !(heads_[*best]->entry.index < heads_[i]->entry.index)) best = i;
      }
      if (!best) return std::optional<SignedSigEntry>();
      const Index index = heads_[*best]->entry.index;
      SignedSigEntry winner = std::move(*heads_[*best]);
      for (size_t i = 0; i < heads_.size(); ++i) {
        if (i == *best || (heads_[i] && heads_[i]->entry.index == index)) {
          if (auto st = advance(i); !st) return std::unexpected(st.error());
        }
      }
      if (winner.entry.kind != EntryKind::kDeleted) return std::optional<SignedSigEntry>(winner);
    }
  }

 private:
  Status advance(size_t i) {
    auto e = layers_[i]->next();
    if (!e) return std::unexpected(e.error());
    heads_[i] = std::move(*e);
    return {};
  }
  std::vector<std::unique_ptr<SigLayer>> layers_;
  std::vector<std::optional<SignedSigEntry>> heads_;
  bool started_ = false;
};

Result<ChainState> load_chain_state(const Backend& backend, const BackupOptions& options,
                                    const Collection& collection, const Credentials& credentials) {
  const SignatureChain& sc = collection.sig_chains.at(*collection.matched_sig_chain);
  std::vector<std::string> names{sc.full_name};
  names.insert(names.end(), sc.inc_names.begin(), sc.inc_names.end());
  std::vector<std::unique_ptr<SigLayer>> layers;
  for (const auto& name : names) {
    auto layer = SigLayer::open(backend, ArchiveDir(options.archive_dir), name, credentials);
    if (!layer) {
      return error(layer.error().kind, "cannot read signatures {}: {}", name,
                   layer.error().message);
    }
    layers.push_back(std::move(*layer));
  }
  ChainState state;
  state.end_time = collection.latest_chain()->end_time();
  auto merged = std::make_shared<MergedSignatures>(std::move(layers));
  state.next = [merged] { return merged->next(); };
  return state;
}

// What an interrupted run left behind (docs/format.md §1.5): the volumes of sets without a
// manifest, signature files of sets that never completed (an orphaned new-signatures file would
// extend the signature chain past the backup chain, and neither duplicity nor dupfs-backup could
// continue it), and temporary files of FileBackend writes. Deleted as `duplicity cleanup --force`
// does; complete sets are never touched. Returns how many objects were deleted.
Result<int> remove_interrupted(Backend& backend, const std::vector<std::string>& names,
                               const Collection& collection, const ArchiveDir& archive_dir) {
  std::set<std::pair<int64_t, int64_t>> complete_fulls, complete_incs;
  const auto note = [&](const BackupSet& s) {
    if (!s.complete()) return;
    (s.is_full() ? complete_fulls : complete_incs).insert({s.start_time, s.end_time});
  };
  for (const auto& c : collection.chains) {
    note(c.full);
    for (const auto& i : c.incs) note(i);
  }
  for (const auto& s : collection.incomplete) note(s);
  for (const auto& s : collection.orphaned) note(s);
  for (const auto& s : collection.replaced) note(s);
  std::vector<std::string> doomed;
  for (const auto& s : collection.incomplete) {
    if (s.complete()) continue;
    for (const auto& [n, name] : s.volumes) doomed.push_back(name);
  }
  for (const auto& name : names) {
    if (name.starts_with(".") && name.find(".dupfs-tmp.") != std::string::npos) {
      doomed.push_back(name);
      continue;
    }
    auto p = parse_name(name);
    if (!p || p->partial) continue;
    if (p->type == FileType::kFullSig && !complete_fulls.count({p->time, p->time})) {
      doomed.push_back(name);
    } else if (p->type == FileType::kNewSig && !complete_incs.count({p->start_time, p->end_time})) {
      doomed.push_back(name);
    }
  }
  int removed = 0;
  for (const auto& name : doomed) {
    log_info("deleting {}, left by an interrupted backup", name);
    if (auto st = backend.remove(name); !st && st.error().kind != ErrorKind::kNotFound) {
      return error(st.error().kind, "cannot delete {} (left by an interrupted backup): {}", name,
                   st.error().message);
    }
    ++removed;
    archive_dir.remove_copy(name);
  }
  return removed;
}

Result<std::vector<std::string>> list_names(const Backend& backend) {
  auto names = backend.list();
  if (!names) {
    if (names.error().kind != ErrorKind::kNotFound) return std::unexpected(names.error());
    names = std::vector<std::string>{};
  }
  return names;
}

}  // namespace

Result<BackupOutcome> run_backup(Backend& backend, const BackupOptions& options,
                                 const BackupRequest& request, const SourceWalk& walk) {
  auto names = list_names(backend);
  if (!names) return std::unexpected(names.error());
  auto collection = build_collection(*names);
  if (!collection) return std::unexpected(collection.error());
  auto removed = remove_interrupted(backend, *names, *collection, ArchiveDir(options.archive_dir));
  if (!removed) return std::unexpected(removed.error());
  if (*removed > 0) {
    log_warning("deleted {} file(s) of an interrupted backup at {}", *removed, backend.describe());
    names = list_names(backend);
    if (!names) return std::unexpected(names.error());
    collection = build_collection(*names);
    if (!collection) return std::unexpected(collection.error());
  }
  for (const auto& w : collection->warnings) log_warning("{}", w);
  const BackupChain* chain = collection->latest_chain();

  bool full = request.action == BackupAction::kFull;
  if (!full) {
    if (chain == nullptr || !collection->matched_sig_chain) {
      if (request.action == BackupAction::kIncremental) {
        return error(ErrorKind::kInvalidArgument,
                     "cannot start an incremental backup: no signatures of a previous backup at "
                     "{}",
                     backend.describe());
      }
      if (chain != nullptr) log_warning("No signatures found, switching to full backup.");
      full = true;
    } else if (request.full_if_older_than && chain->full.end_time < *request.full_if_older_than) {
      log_info("Last full backup is too old, forcing full backup");
      full = true;
    }
  }

  std::optional<ChainState> previous;
  if (!full) {
    // The last set's manifest must name this host and directory (check_last_manifest).
    const BackupSet& last = chain->incs.empty() ? chain->full : chain->incs.back();
    auto text =
        ArchiveDir(options.archive_dir).fetch(backend, last.manifest_name, request.credentials);
    if (!text) return std::unexpected(text.error());
    auto manifest = parse_manifest(*text);
    if (!manifest) {
      return error(ErrorKind::kCorruption, "manifest {} is damaged: {}", last.manifest_name,
                   manifest.error().message);
    }
    if (!request.allow_source_mismatch) {
      if (manifest->hostname && !manifest->hostname->empty() &&
          *manifest->hostname != options.hostname) {
        return error(ErrorKind::kInvalidArgument,
                     "backup source host has changed (current {}, previous {}); use "
                     "--allow-source-mismatch if this is not a mistake",
                     options.hostname, *manifest->hostname);
      }
      if (manifest->localdir && !manifest->localdir->empty() &&
          *manifest->localdir != options.localdir) {
        return error(ErrorKind::kInvalidArgument,
                     "backup source directory has changed (current {}, previous {}); use "
                     "--allow-source-mismatch if this is not a mistake",
                     options.localdir, *manifest->localdir);
      }
    }
    auto state = load_chain_state(backend, options, *collection, request.credentials);
    if (!state) return std::unexpected(state.error());
    previous = std::move(*state);
  }

  // The set time: now, and after every set already stored (names must differ, and an
  // incremental must end after the chain).
  int64_t latest = 0;
  for (const auto& c : collection->chains) latest = std::max(latest, c.end_time());
  for (const auto& s : collection->incomplete) latest = std::max(latest, s.end_time);
  int64_t time = request.time.value_or(0);
  if (!request.time) {
    for (;;) {
      time = static_cast<int64_t>(std::time(nullptr));
      if (time > latest) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (latest - time > 5) {
        return error(ErrorKind::kInvalidArgument,
                     "the location holds a set from the future ({}); check the clock",
                     format_name_time(latest));
      }
    }
  }

  auto writer = SetWriter::start(backend, options, time, std::move(previous));
  if (!writer) return std::unexpected(writer.error());
  if (auto st = walk([&](SourceEntry&& src) { return (*writer)->add(src); }); !st) {
    return std::unexpected(st.error());
  }
  auto stats = (*writer)->finish();
  if (!stats) return std::unexpected(stats.error());
  BackupOutcome outcome;
  outcome.full = full;
  outcome.time = time;
  outcome.stored_names = (*writer)->stored_names();
  outcome.statistics = *stats;
  return outcome;
}

}  // namespace dupfs::chain

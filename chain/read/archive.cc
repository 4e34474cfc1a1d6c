#include "chain/read/archive.h"

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <semaphore>
#include <set>

#include "backends/base/log.h"
#include "chain/metadata/archive_dir.h"
#include "chain/metadata/volume_index.h"

namespace dupfs::chain {

namespace {

// The entries of signature file `name`, decoded to `text`.
Result<std::shared_ptr<const std::vector<SigEntry>>> parse_signatures(const std::string& name,
                                                                      const std::string& text) {
  auto entries = read_sigtar(text);
  if (!entries) return error(entries.error().kind, "{}: {}", name, entries.error().message);
  return std::make_shared<const std::vector<SigEntry>>(std::move(*entries));
}

}  // namespace

// Fetches manifests and signature files: from the archive dir when it has a copy, else from
// storage, keeping a copy of what it decoded. Thread-safe.
class Archive::MetadataFetcher {
 public:
  MetadataFetcher(std::shared_ptr<const Backend> backend, const ArchiveOptions& options)
      : backend_(std::move(backend)),
        credentials_(options.credentials),
        archive_dir_(options.archive_dir, options.prefixes) {}

  // The decoded bytes of a manifest or signature file; from storage when `remote` is set even
  // if a copy exists.
  Result<std::string> fetch(const std::string& name, bool remote) const {
    return archive_dir_.fetch(
        *backend_, name, credentials_,
        remote ? ArchiveDir::Source::kStorage : ArchiveDir::Source::kCopyFirst);
  }

  // The entries of a signature file.
  Result<std::shared_ptr<const std::vector<SigEntry>>> signatures(const std::string& name) const {
    auto text = fetch(name, false);
    if (!text) return std::unexpected(text.error());
    return parse_signatures(name, *text);
  }

 private:
  std::shared_ptr<const Backend> backend_;
  Credentials credentials_;
  ArchiveDir archive_dir_;
};

namespace {

// The name a volume of `set` would have, from the name of another of its volumes.
std::string expected_volume_name(const BackupSet& set, int number) {
  std::string label = fmt::format("volume {} of {}", number, set.manifest_name);
  if (set.volumes.empty()) return label;
  const auto& [some, name] = *set.volumes.begin();
  std::string from = fmt::format(".vol{}.", some);
  auto pos = name.find(from);
  if (pos == std::string::npos) return label;
  return name.substr(0, pos) + fmt::format(".vol{}.", number) + name.substr(pos + from.size());
}

}  // namespace

std::string snapshot_dir_name(int64_t time) {
  std::time_t t = time;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace {

// Derives the key of the newest seek index in `dir`, else in storage (docs/seek.md), so that the
// first read through an index does not wait for it: a process seals with the salt of the first
// index it opens, so an archive dir's indexes share one key.
void warm_seek_key(const std::string& dir, const std::string& passphrase, const Backend& backend,
                   const std::vector<std::string>& remote) {
  std::error_code ec;
  std::filesystem::path newest;
  std::filesystem::file_time_type newest_time{};
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (!volume_of_index_name(name)) continue;
    auto t = e.last_write_time(ec);
    if (!ec && (newest.empty() || t > newest_time)) {
      newest = e.path();
      newest_time = t;
    }
  }
  std::string head;
  if (!newest.empty()) {
    std::ifstream f(newest, std::ios::binary);
    head.resize(kIndexHeadSize);
    f.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<size_t>(f.gcount()));
  } else if (!remote.empty()) {
    // dupfs-backup seals a run's indexes with one salt: the newest set's is the likeliest.
    auto piece =
        backend.read_range(*std::max_element(remote.begin(), remote.end()), 0, kIndexHeadSize);
    if (piece) head = std::move(*piece);
  }
  if (!head.empty()) warm_index_key(head, SecretBuffer(passphrase.data(), passphrase.size()));
}

}  // namespace

Result<std::unique_ptr<Archive>> Archive::open(std::shared_ptr<Backend> backend,
                                               ArchiveOptions options) {
  auto names = backend->list();
  if (!names) {
    return std::unexpected(location_error(*backend, names.error()));
  }
  for (const auto& n : *names) {
    if (volume_of_index_name(n)) options.store.remote_indexes.push_back(n);
  }
  auto collection = build_collection(*names, options.prefixes);
  if (!collection) return std::unexpected(collection.error());
  if (collection->chains.empty()) {
    return error(ErrorKind::kNotFound, "no complete duplicity backup set found at {}",
                 backend->describe());
  }
  for (const auto& w : collection->warnings) log_warning("{}", w);
  for (const auto& s : collection->incomplete) {
    log_warning("ignoring incomplete backup set {} (no manifest)", format_name_time(s.end_time));
  }
  for (const auto& s : collection->orphaned) {
    log_warning("ignoring orphaned incremental set {} (it extends no chain)",
                format_name_time(s.end_time));
  }
  if (!options.archive_dir.empty()) {
    if (auto st = ArchiveDir(options.archive_dir).create(); !st) return std::unexpected(st.error());
    if (options.store.catalog_dir.empty()) options.store.catalog_dir = options.archive_dir;
  }

  // Every signature file of every chain and the newest manifest, fetched in parallel (each
  // decryption costs a key derivation; see docs/performance.md). The other manifests are read when
  // a file of their set is first read.
  std::map<int64_t, const SignatureChain*> sig_chain_of;  // full set time -> its signatures
  for (const auto& sc : collection->sig_chains) sig_chain_of[sc.start_time] = &sc;
  // The credentials are always checked against storage, even when everything else comes from
  // the cache: the newest manifest is decrypted from storage whenever it is encrypted.
  const std::string newest_manifest = collection->chains.back().sets().back()->manifest_name;
  std::vector<std::string> wanted{newest_manifest};
  for (const auto& chain : collection->chains) {
    if (auto it = sig_chain_of.find(chain.full.end_time); it != sig_chain_of.end()) {
      wanted.push_back(it->second->full_name);
      for (const auto& n : it->second->inc_names) wanted.push_back(n);
    }
  }
  auto fetcher = std::make_shared<const MetadataFetcher>(backend, options);
  const bool check_remote = codec_for_name(newest_manifest) == Codec::kGpg;
  // Signature files are parsed in the same tasks, in parallel too.
  struct Fetched {
    std::string text;  // a manifest's
    std::shared_ptr<const std::vector<SigEntry>> signatures;
  };
  std::counting_semaphore<64> slots(4);
  std::map<std::string, std::future<Result<Fetched>>> pending;
  for (const auto& name : wanted) {
    bool remote = check_remote && name == newest_manifest;
    bool sigs = name != newest_manifest;
    pending.emplace(name, std::async(std::launch::async, [&fetcher, &slots, name, remote, sigs] {
                      slots.acquire();
                      auto text = fetcher->fetch(name, remote);
                      slots.release();
                      if (!text) return Result<Fetched>(std::unexpected(text.error()));
                      if (!sigs) return Result<Fetched>(Fetched{std::move(*text), nullptr});
                      auto entries = parse_signatures(name, *text);
                      if (!entries) return Result<Fetched>(std::unexpected(entries.error()));
                      return Result<Fetched>(Fetched{{}, std::move(*entries)});
                    }));
  }
  std::future<void> warm;
  if (options.credentials.passphrase && options.store.seek_index) {
    warm = std::async(std::launch::async, [&options, &backend] {
      warm_seek_key(options.store.catalog_dir, *options.credentials.passphrase, *backend,
                    options.store.remote_indexes);
    });
  }
  std::map<std::string, Fetched> fetched;
  std::set<std::string> unread;  // failed on a transient error: read again when needed
  std::optional<Error> auth_error;
  for (auto& [name, fut] : pending) {
    auto r = fut.get();
    if (r) {
      fetched[name] = std::move(*r);
    } else if (r.error().kind == ErrorKind::kAuth) {
      auth_error = r.error();
    } else {
      // A damaged manifest or signature file costs the sets that need it, not the mount.
      log_error("{}", r.error().message);
      if (!is_permanent(r.error().kind)) unread.insert(name);
    }
  }
  if (warm.valid()) warm.wait();
  if (auth_error) return std::unexpected(*auth_error);

  auto archive = std::unique_ptr<Archive>(new Archive());
  archive->backend_ = backend;
  archive->fetcher_ = fetcher;
  archive->cache_ = std::make_unique<BlockCache>(options.cache_size);
  archive->store_ =
      std::make_unique<VolumeStore>(backend, options.credentials, *archive->cache_, options.store);
  archive->versions_ = std::make_unique<VersionCache>();
  archive->numeric_owner_ = options.numeric_owner;

  auto parse_sigs = [&](const std::string& name) -> std::shared_ptr<const std::vector<SigEntry>> {
    auto it = fetched.find(name);
    return it == fetched.end() ? nullptr : it->second.signatures;
  };

  for (const auto& chain : collection->chains) {
    // Each set's volumes are registered once, when first needed, and shared by every snapshot
    // that reads them.
    std::vector<std::shared_ptr<SetVolumes>> sets;
    for (const BackupSet* set : chain.sets()) {
      std::optional<std::string> text;
      if (auto it = fetched.find(set->manifest_name); it != fetched.end()) text = it->second.text;
      sets.push_back(std::make_shared<SetVolumes>(
          set->manifest_name, set->end_time,
          [archive = archive.get(), set = *set, text = std::move(text)] {
            return archive->load_volumes(set, text);
          }));
    }
    // The tree of each set comes from the chain's signatures: the full signatures plus the
    // new signatures of every incremental up to it. A set whose signature file is missing or
    // unreadable gets its layer from its volumes instead (decoded on first use).
    auto sc = sig_chain_of.find(chain.full.end_time);
    std::vector<std::shared_ptr<SetLayer>> layers;
    for (size_t k = 0; k < sets.size(); ++k) {
      auto layer = std::make_shared<SetLayer>();
      layer->set = sets[k];
      std::string sig_name;  // the set's signature file, "" when it has none
      if (sc != sig_chain_of.end()) {
        if (k == 0) {
          sig_name = sc->second->full_name;
        } else {
          const auto& times = sc->second->inc_end_times;
          auto t = std::find(times.begin(), times.end(), sets[k]->time());
          if (t != times.end()) sig_name = sc->second->inc_names[t - times.begin()];
        }
      }
      if (!sig_name.empty()) layer->signatures = parse_sigs(sig_name);
      if (!layer->signatures && unread.contains(sig_name)) {
        layer->signatures_to_retry = sig_name;
        log_warning("{} is read again when backup set {} is first browsed", sig_name,
                    format_name_time(sets[k]->time()));
      } else if (!layer->signatures) {
        log_warning("backup set {} has no readable signatures: its tree comes from its volumes",
                    format_name_time(sets[k]->time()));
      }
      layers.push_back(layer);
      auto spec = std::make_unique<SnapshotSpec>();
      spec->time = sets[k]->time();
      spec->layers = layers;
      archive->specs_.push_back(std::move(spec));
    }
  }
  if (archive->specs_.empty()) {
    return error(ErrorKind::kCorruption, "no backup set at {} could be read", backend->describe());
  }
  std::stable_sort(archive->specs_.begin(), archive->specs_.end(),
                   [](const auto& a, const auto& b) { return a->time < b->time; });
  archive->collection_ = std::move(*collection);
  return archive;
}

Result<SetVolumes::Volumes> Archive::load_volumes(const BackupSet& set,
                                                  const std::optional<std::string>& fetched) {
  auto text = fetched ? Result<std::string>(*fetched) : fetcher_->fetch(set.manifest_name, false);
  if (!text) {
    log_error("{}", text.error().message);
    return error(text.error().kind, "manifest {} is unreadable: {}", set.manifest_name,
                 text.error().message);
  }
  auto manifest = parse_manifest(*text);
  if (!manifest) {
    log_error("{}: {}", set.manifest_name, manifest.error().message);
    return error(ErrorKind::kCorruption, "manifest {} is damaged: {}", set.manifest_name,
                 manifest.error().message);
  }
  SetVolumes::Volumes sv;
  for (const auto& [number, file] : set.volumes) {
    std::string sha1;
    if (auto mv = manifest->volumes.find(number); mv != manifest->volumes.end()) {
      if (mv->second.hash_type == "SHA1") sha1 = mv->second.hash_hex;
    }
    sv.ids[number] = store_->add_volume(file, sha1);
  }
  const uint32_t* prev = nullptr;
  for (const auto& [number, vid] : sv.ids) {
    if (prev) store_->set_successor(*prev, vid);
    prev = &vid;
  }
  for (const auto& [number, mv] : manifest->volumes) {
    if (set.volumes.contains(number)) continue;
    std::string name = expected_volume_name(set, number);
    log_error("{} is missing from {}: the files in it will fail with EIO", name,
              backend_->describe());
    sv.missing[number] = name;
  }
  sv.manifest = std::make_shared<const Manifest>(std::move(*manifest));
  return sv;
}

// A set's layer without signatures: what its volumes hold, as a signature file would say it.
Result<std::shared_ptr<const std::vector<SigEntry>>> Archive::layer_from_volumes(SetVolumes& set) {
  auto volumes = set.volumes();
  if (!volumes) return std::unexpected(volumes.error());
  std::map<Index, SigEntry> entries;
  for (const auto& [number, vid] : (*volumes)->ids) {
    auto catalog = store_->catalog(vid);
    if (!catalog) return std::unexpected(catalog.error());
    for (const auto& e : *catalog) {
      if (e.name.kind == EntryKind::kMultivolSnapshot || e.name.kind == EntryKind::kMultivolDiff) {
        if (e.name.chunk != 1 && entries.contains(e.name.index)) continue;
      }
      SigEntry s;
      s.kind = e.name.kind == EntryKind::kDeleted ? EntryKind::kDeleted : EntryKind::kSnapshot;
      s.index = e.name.index;
      s.type = e.header.type;
      s.mode = e.header.mode;
      s.uid = e.header.uid;
      s.gid = e.header.gid;
      s.uname = e.header.uname;
      s.gname = e.header.gname;
      s.mtime = e.header.mtime;
      s.linkname = e.header.linkname;
      s.devmajor = e.header.devmajor;
      s.devminor = e.header.devminor;
      entries[e.name.index] = std::move(s);
    }
  }
  auto out = std::make_shared<std::vector<SigEntry>>();
  for (auto& [index, e] : entries) out->push_back(std::move(e));
  return std::shared_ptr<const std::vector<SigEntry>>(std::move(out));
}

Result<std::shared_ptr<const std::vector<SigEntry>>> Archive::layer_entries(SetLayer& layer) {
  auto entries = layer.entries.get([&]() -> Result<std::shared_ptr<const std::vector<SigEntry>>> {
    if (layer.signatures) return layer.signatures;
    if (!layer.signatures_to_retry.empty()) {
      auto sigs = fetcher_->signatures(layer.signatures_to_retry);
      if (sigs) return sigs;
      // As at open: the volumes say the same, at the cost of decoding them.
      log_warning("{}: the tree of backup set {} comes from its volumes", sigs.error().message,
                  format_name_time(layer.set->time()));
    }
    return layer_from_volumes(*layer.set);
  });
  if (!entries) return std::unexpected(entries.error());
  return **entries;
}

Result<std::shared_ptr<Snapshot>> Archive::build_snapshot(SnapshotSpec& spec) {
  std::vector<std::shared_ptr<const std::vector<SigEntry>>> layers;
  std::vector<SetRef> sets;
  for (const auto& layer : spec.layers) {
    auto entries = layer_entries(*layer);
    if (!entries) {
      auto e = error(entries.error().kind, "the tree of backup set {} cannot be built: {}",
                     format_name_time(spec.time), entries.error().message);
      log_error("{}", e.error().message);
      return e;
    }
    // An incremental's entries say which paths it touched.
    sets.push_back(SetRef{layer->set, sets.empty() ? nullptr : *entries});
    layers.push_back(std::move(*entries));
  }
  auto built = std::make_shared<Snapshot>(spec.time, layers, std::move(sets), *store_, *versions_,
                                          numeric_owner_);
  spec.layers.clear();
  return built;
}

std::shared_ptr<Snapshot> Archive::snapshot_if_built(size_t i) {
  const std::shared_ptr<Snapshot>* built = specs_.at(i)->built.if_loaded();
  return built ? *built : nullptr;
}

Result<std::shared_ptr<Snapshot>> Archive::snapshot(size_t i) {
  SnapshotSpec& spec = *specs_.at(i);
  auto built = spec.built.get([&] { return build_snapshot(spec); });
  if (!built) return std::unexpected(built.error());
  return **built;
}

}  // namespace dupfs::chain

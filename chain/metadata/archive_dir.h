// duplicity's archive dir (--archive-dir; docs/format.md §1.3, "The local cache"): a local
// directory of copies of a location's manifests and signature files, so that they need not be
// fetched and decrypted again. As duplicity keeps them (dup_main.sync_archive, resolve_basename): a
// manifest's copy is its decoded text, named like the stored object without its codec suffix
// ("duplicity-full.T.manifest"); a signature file's copy is its decoded sigtar gzipped, named
// without the codec suffix plus ".gz" (".z" for --short-filenames names:
// "duplicity-full-signatures.T.sigtar.gz", "dfs.T.st.z"). Copies hold clear text, so the
// directory and its missing parents are created private (0700; duplicity's os.makedirs leaves
// them to the umask). Volume catalogs (chain/read/volume_store.h) and the lock file live there
// too, under names of their own.
//
// Everything that reads, writes, lists or deletes copies goes through ArchiveDir: the mount
// (chain/read/archive.cc), restore and verify, the backup writer, and the prune actions.
// An ArchiveDir with an empty path is "no archive dir": every fetch goes to storage, nothing is
// kept, the listing is empty. Thread-safe (every method is const; the directory is the state).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.h"
#include "backends/base/error.h"
#include "chain/codec/decode.h"
#include "chain/codec/encode.h"
#include "chain/format/names.h"

namespace dupfs::chain {

class ArchiveDir {
 public:
  ArchiveDir() = default;
  // `prefixes`: how the location's names are parsed (copies keep the prefixes of their names).
  explicit ArchiveDir(std::string path, NamePrefixes prefixes = {})
      : path_(std::move(path)), prefixes_(std::move(prefixes)) {}

  // How signature files are gzipped for their copies, streamed (the backup writer) or whole
  // (store): one gzip member, ISA-L level 1. duplicity writes zlib level 6 (gpg.GzipWriteFile)
  // and reads any deflate (Python's GzipFile; duplicity 0.8 ran an incremental from such a
  // copy), as dupfs's readers do. Measured on a real sigtar (10 MB, 8,073 files): 29.8 % of its
  // size against zlib 6's 29.4 %, in 25 ms against 335 ms. The mount gzips every signature file
  // it fetches on its first open, and signature files grow with the source (8 % of it there).
  static EncodeOptions signature_encoding();

  const std::string& path() const { return path_; }
  bool enabled() const { return !path_.empty(); }

  // Creates the directory and its missing parents, each private (0700). kIoError naming the
  // directory that could not be made.
  Status create() const;

  // The name of the copy of the stored manifest or signature file `remote_name`; nullopt for
  // other names (volumes, names that are not duplicity's, partial files).
  std::optional<std::string> copy_name(std::string_view remote_name) const;
  // Where that copy is; "" without an archive dir or a copy name.
  std::string copy_path(std::string_view remote_name) const;
  // Whether a readable copy of `remote_name` is there.
  bool has_copy(std::string_view remote_name) const;

  // The decoded content of `remote_name`'s copy. kNotFound without one (or an archive dir);
  // kCorruption when it is damaged (a bad gzip stream).
  Result<std::string> read_copy(const std::string& remote_name) const;

  enum class Source {
    kCopyFirst,  // the copy when there is an intact one, else storage
    kStorage,    // storage, even when there is a copy (which is then left as it is)
  };
  // The decoded content of the manifest or signature file `name`: from its copy, else decoded
  // from `storage` (with `credentials`) and kept as a copy, replacing a damaged one. Errors are
  // storage's and the decoder's (kAuth, kCorruption, kNotFound); failing to keep a copy only logs
  // a warning.
  Result<std::string> fetch(const Backend& storage, const std::string& name,
                            const Credentials& credentials,
                            Source source = Source::kCopyFirst) const;

  // Keeps `decoded`, the content of the manifest or signature file `remote_name`, as its copy
  // (gzipped by signature_encoding() for a signature file), replacing an older copy: what was
  // just decoded or written is what the location holds. Creates the directory when needed.
  // A copy is only a cache: failing to keep one logs a warning and costs a later fetch, never
  // the caller's work. Does nothing without an archive dir or a copy name.
  void store(const std::string& remote_name, std::string_view decoded) const;
  // The same with the copy's bytes as they go to disk (for a signature file, as
  // signature_encoding() encodes them).
  void store_encoded(const std::string& remote_name, std::string_view copy) const;

  // The names of the files in the directory (copies, catalogs, the lock file, anything else);
  // empty when it does not exist.
  std::vector<std::string> list() const;
  // Deletes the files `local_names` (names in the directory, as list() gives them), logging each
  // one deleted; one already gone is no failure, another failure is a warning.
  void remove(const std::vector<std::string>& local_names) const;
  // Deletes the copy of the stored `remote_name`, if there is one.
  void remove_copy(std::string_view remote_name) const;

 private:
  void write_copy(const std::string& local, std::string_view bytes) const;
  std::string path_;
  NamePrefixes prefixes_;
};

// One process at a time per archive dir (duplicity locks its own too): an exclusive flock on
// <archive dir>/lockfile, held while the object lives. dupfs-backup takes it for its whole run,
// the destructive actions for theirs, so neither deletes what the other is writing.
class ArchiveLock {
 public:
  ArchiveLock() = default;
  ~ArchiveLock();
  ArchiveLock(const ArchiveLock&) = delete;
  ArchiveLock& operator=(const ArchiveLock&) = delete;

  // Creates the archive dir if needed (ArchiveDir::create). kExists ("another <program> process
  // is using ...") when the lock is held elsewhere.
  Status acquire(const ArchiveDir& dir, const char* program);

 private:
  int fd_ = -1;
};

}  // namespace dupfs::chain

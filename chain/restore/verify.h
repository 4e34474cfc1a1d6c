// `duplicity verify` against a local tree: a RestoreSink that collates the restored objects
// with a walk of the local directory (both in index order) and, with compare_data, compares
// them as duplicity's ROPath.compare_verbose does: type, then owner and mode, then mtime, then
// the data of regular files, symlink targets and device numbers. Without compare_data nothing
// is compared (duplicity 0.8's verify only proves the archive reads and counts the objects).
// Each difference is reported as duplicity logs it ("Difference found: File x has mtime ...,
// expected ..."). Single-threaded, like the sink calls.
#pragma once

#include <dirent.h>
#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "chain/restore/restore.h"

namespace dupfs::chain {

// A local tree in duplicity's index order (pre-order, each directory's entries sorted
// bytewise), with lstat of each object. Sockets are left out (duplicity's selection skips them);
// unreadable directories count as empty.
class LocalWalk {
 public:
  struct Entry {
    Index index;
    std::string path;
    struct stat st;
  };
  explicit LocalWalk(std::string root);
  // The next object, or nullopt at the end (also when the root does not exist).
  const Entry* peek();
  void pop() { have_ = false; }

 private:
  struct Frame {
    Index prefix;
    std::string path;
    std::vector<std::string> names;
    size_t pos = 0;
  };
  std::string root_;
  bool started_ = false;
  bool have_ = false;
  Entry current_;
  std::vector<Frame> stack_;
};

struct VerifyOptions {
  bool compare_data = false;
  bool numeric_owner = false;
};

class VerifySink : public RestoreSink {
 public:
  // `report` receives each difference line.
  VerifySink(std::string local_dir, VerifyOptions options,
             std::function<void(const std::string&)> report);
  ~VerifySink() override;
  Status on_object(const RestoredObject& object) override;
  Status on_data(const DataPiece& piece) override;
  Status on_object_end() override;
  // Differences are reported once the volumes they came from are known to be intact.
  void on_trusted() override;
  // The local objects after the last restored one ("New file"); reports what is left.
  void finish();

  uint64_t compared() const { return compared_; }
  uint64_t differences() const { return differences_; }

 private:
  void local_only(const LocalWalk::Entry& e);

  std::string local_dir_;
  VerifyOptions options_;
  std::function<void(const std::string&)> report_;
  std::vector<std::string> held_;  // differences not reported yet
  LocalWalk walk_;
  OwnerMapper owners_;
  uint64_t compared_ = 0;
  uint64_t differences_ = 0;
  // The regular file whose data is being compared.
  int fd_ = -1;
  bool data_differs_ = false;
  Index current_;
  std::string buf_;
};

// Each signature file in `names` (the signature chain of the sets a verify reads) decoded and
// parsed to its end, as an incremental backup reads it. One error per damaged or unreadable file,
// naming it; empty when all are intact. duplicity's verify does not read signatures; dupfs's does
// (docs/actions.md).
std::vector<Error> check_signature_files(const Backend& backend,
                                         const std::vector<std::string>& names,
                                         const Credentials& credentials);

// The signature files of `chain`'s sets up to `time` (its full set's signature chain), in chain
// order, and the manifest names of the sets that have none at the location.
struct ChainSignatures {
  std::vector<std::string> names;
  std::vector<std::string> missing;
};
ChainSignatures signatures_for(const Collection& collection, const BackupChain& chain,
                               int64_t time);

// Manifests a verify took from the local cache (`archive_dir`, plain copies named as
// plan_restore keeps them) checked at the location too: each decoded there and compared with the
// cached copy, so a damaged manifest at the location is not hidden by an intact cached one. One
// error per manifest, naming it. (Manifests not cached before the verify were read from the
// location by plan_restore already.)
std::vector<Error> check_cached_manifests(const Backend& backend,
                                          const std::vector<std::string>& manifest_names,
                                          const Credentials& credentials,
                                          const std::string& archive_dir);

// Of `manifest_names`, those with a plain copy in the local cache `archive_dir`.
std::vector<std::string> cached_manifests(const std::vector<std::string>& manifest_names,
                                          const std::string& archive_dir);

// What no restore at the location can use, one message per set or file, naming the stored files:
// incomplete sets (volumes without a manifest, or the newest incremental discarded for its
// missing signatures), orphaned sets, orphaned signature files and signature chains without a
// backup chain. duplicity only warns about the first kind; dupfs's verify fails on all of them.
std::vector<std::string> unusable_files(const Collection& collection);

}  // namespace dupfs::chain

// The sink that writes a restored tree to local files (dupfs restore).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "backends/base/error.h"
#include "chain/restore/restore.h"

namespace dupfs::chain {

struct TreeWriterOptions {
  bool numeric_owner = false;
  bool force = false;  // replace what is in the way (the target may hold files already)
  unsigned threads = 2;
  size_t queue_bytes = size_t{128} << 20;  // file data handed to writer threads, not yet written
};

// Writes a restored tree under `target` as duplicity's restore does: regular files, directories,
// symlinks (lchown only), fifos and devices; owner (uname/gname mapped unless numeric), mode and
// mtime through the file descriptor (atime = now); a failed chown (not root, a foreign owner)
// is logged and leaves mode and mtime alone, as duplicity. Directories get their attributes
// after everything else. When the root object is not a directory, `target` itself becomes it.
// File data is written by worker threads; nothing is fsynced.
class TreeWriter : public RestoreSink {
 public:
  TreeWriter(std::string target, TreeWriterOptions options);
  ~TreeWriter() override;
  Status on_object(const RestoredObject& object) override;
  Status on_data(const DataPiece& piece) override;
  Status on_object_end() override;
  void on_trusted() override;

  // Waits for the writers, then sets the directories' attributes. The first write error, if any.
  Status finish();
  // After a failed restore: waits for the writers and removes what came from volumes not known
  // to be intact (everything written since the last on_trusted()).
  void discard_untrusted();
  // Objects that could not be written completely (logged with their path).
  uint64_t failures() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dupfs::chain

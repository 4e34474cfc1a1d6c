// file:// storage: a local directory.
#pragma once

#include <string>

#include "backends/backend.h"

namespace dupfs {

class FileBackend : public Backend {
 public:
  explicit FileBackend(std::string dir) : dir_(std::move(dir)) {}

  Result<std::vector<std::string>> list() const override;
  Result<uint64_t> size(const std::string& name) const override;
  Result<std::string> read_range(const std::string& name, uint64_t offset,
                                 size_t length) const override;
  Status write(const std::string& name, std::string_view data) override;
  Status remove(const std::string& name) override;
  std::string describe() const override { return "file://" + dir_; }

 private:
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

// Creates the directory `path` and its missing parents, each private (0700): a local location
// (dupfs-backup creates a missing one, as duplicity does) or an archive dir. kIoError naming the
// directory that could not be made.
Status make_private_dirs(const std::string& path);

}  // namespace dupfs

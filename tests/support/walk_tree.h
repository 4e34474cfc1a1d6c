// A plain walk of a local tree in duplicity's index order (the root first, then depth first,
// each directory's entries sorted bytewise), with lstat results: what the backup writer takes,
// for tests that must not depend on the selection rules. Throws std::system_error on failure.
#pragma once

#include <sys/stat.h>

#include <functional>
#include <string>
#include <vector>

namespace dupfs::test {

struct WalkedEntry {
  std::vector<std::string> index;  // components relative to the root; {} for the root
  std::string path;
  struct stat st {};
  std::string link_target;  // symlinks only
};

// Calls visit for every object under root, root included.
void walk_tree(const std::string& root, const std::function<void(WalkedEntry&&)>& visit);

}  // namespace dupfs::test

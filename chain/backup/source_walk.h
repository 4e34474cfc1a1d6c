// The source side of a backup: a walk of the tree a Selection (selection.h) selects, in
// duplicity's order (index order: depth first, each directory's entries sorted bytewise, a
// directory before its contents), as duplicity's selection.Select and path.Path produce it.
#pragma once

#include <sys/stat.h>

#include <functional>
#include <string>

#include "backends/base/error.h"
#include "chain/backup/selection.h"
#include "chain/format/index.h"

namespace dupfs::chain {

// One selected object.
struct SourceEntry {
  Index index;              // relative to the source root; the root itself is {}
  std::string path;         // the local path (Selection::local_path_of(index))
  struct stat st {};        // lstat
  std::string link_target;  // symlinks only
};

// Calls `visit` for every selected object in duplicity's order, the root first. `source_root`
// must be the root `selection` was made for. Symlinks are never followed, and other filesystems
// are walked like any directory. Skipped, as duplicity skips them: sockets (logged at info level),
// objects that vanish during the walk, cannot be lstat'ed or whose link cannot be read (warning),
// regular files and directories that the rules would include or scan but that are not readable
// (access(R_OK) fails: warning; the object itself is not visited), and the contents of a
// directory that cannot be listed (warning; the directory itself is still visited when
// included). None of these stop the walk.
//
// Errors: kNotFound when the root does not exist, kInvalidArgument when `source_root` is not the
// selection's root, kIoError when the root cannot be lstat'ed. Errors of `visit` stop the walk
// and come back unchanged.
Status walk_source(const std::string& source_root, const Selection& selection,
                   const std::function<Status(SourceEntry&&)>& visit);

}  // namespace dupfs::chain

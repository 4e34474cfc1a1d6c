// The FUSE low-level operation table: one small function per operation, filled in one place.
#pragma once

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

namespace dupfs::fs {

// Operations for a read-only Tree; the session's userdata must be the Tree*.
const fuse_lowlevel_ops& operations();

}  // namespace dupfs::fs

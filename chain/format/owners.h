// Owner names and local ids (docs/format.md: tar members carry uid/gid and uname/gname), mapped
// as duplicity maps them through its cached_ops: restore and verify give a stored owner the local
// id of its name, falling back to the stored id; a backup stores the names of the local ids.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "chain/format/tar.h"

namespace dupfs::chain {

// Looks each name and id up once, in the system's user and group databases (getpwnam_r and
// kin, with a buffer as large as the entry needs). Not thread-safe: one per thread (a snapshot
// being built, a restore's or a verify's consumer, a backup run).
class OwnerMapper {
 public:
  // numeric_owner (duplicity's --numeric-owner): uid() and gid() give the stored ids, always.
  explicit OwnerMapper(bool numeric_owner = false) : numeric_(numeric_owner) {}

  // The local id of a stored owner: its name's in passwd/group, else (no name, an unknown one,
  // numeric_owner) the stored id.
  int64_t uid(const std::string& uname, int64_t stored);
  int64_t gid(const std::string& gname, int64_t stored);
  int64_t uid(const TarHeader& h) { return uid(h.uname, h.uid); }
  int64_t gid(const TarHeader& h) { return gid(h.gname, h.gid); }

  // The name stored for a local id (tarinfo uname/gname): "" when it has none.
  const std::string& user_name(uint32_t uid);
  const std::string& group_name(uint32_t gid);

 private:
  bool numeric_;
  std::unordered_map<std::string, std::optional<int64_t>> uids_, gids_;
  std::unordered_map<uint32_t, std::string> user_names_, group_names_;
};

}  // namespace dupfs::chain

#include "chain/format/owners.h"

#include <grp.h>
#include <pwd.h>

#include <cerrno>
#include <type_traits>
#include <vector>

namespace dupfs::chain {
namespace {

// One field of the entry a getpw*_r / getgr*_r call finds for `key`, or nullopt when there is
// none or the lookup fails. The buffer grows while the entry does not fit (ERANGE: a group with
// many members).
template <typename Out, typename Key, typename Entry, typename Field>
std::optional<Out> find(int (*get)(Key, Entry*, char*, size_t, Entry**),
                        std::type_identity_t<Key> key, Field Entry::*field) {
  constexpr size_t kMaxBuffer = size_t{1} << 24;
  std::vector<char> buffer(16384);
  for (;;) {
    Entry entry{};
    Entry* found = nullptr;
    int rc = get(key, &entry, buffer.data(), buffer.size(), &found);
    if (rc == ERANGE && buffer.size() < kMaxBuffer) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    if (rc != 0 || found == nullptr) return std::nullopt;
    return Out(entry.*field);
  }
}

}  // namespace

int64_t OwnerMapper::uid(const std::string& uname, int64_t stored) {
  if (numeric_ || uname.empty()) return stored;
  auto [it, fresh] = uids_.try_emplace(uname);
  if (fresh) it->second = find<int64_t>(::getpwnam_r, uname.c_str(), &passwd::pw_uid);
  return it->second.value_or(stored);
}

int64_t OwnerMapper::gid(const std::string& gname, int64_t stored) {
  if (numeric_ || gname.empty()) return stored;
  auto [it, fresh] = gids_.try_emplace(gname);
  if (fresh) it->second = find<int64_t>(::getgrnam_r, gname.c_str(), &group::gr_gid);
  return it->second.value_or(stored);
}

const std::string& OwnerMapper::user_name(uint32_t uid) {
  auto [it, fresh] = user_names_.try_emplace(uid);
  if (fresh) it->second = find<std::string>(::getpwuid_r, uid, &passwd::pw_name).value_or("");
  return it->second;
}

const std::string& OwnerMapper::group_name(uint32_t gid) {
  auto [it, fresh] = group_names_.try_emplace(gid);
  if (fresh) it->second = find<std::string>(::getgrgid_r, gid, &group::gr_name).value_or("");
  return it->second;
}

}  // namespace dupfs::chain

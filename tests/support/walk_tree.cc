#include "tests/support/walk_tree.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace dupfs::test {
namespace {

void walk(const std::string& path, std::vector<std::string>& index,
          const std::function<void(WalkedEntry&&)>& visit) {
  WalkedEntry e;
  e.index = index;
  e.path = path;
  if (::lstat(path.c_str(), &e.st) != 0) {
    throw std::system_error(errno, std::generic_category(), "lstat " + path);
  }
  if (S_ISLNK(e.st.st_mode)) {
    std::string target(4096, '\0');
    ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
    if (n < 0) throw std::system_error(errno, std::generic_category(), "readlink " + path);
    target.resize(static_cast<size_t>(n));
    e.link_target = target;
  }
  const bool dir = S_ISDIR(e.st.st_mode);
  visit(std::move(e));
  if (!dir) return;
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) throw std::system_error(errno, std::generic_category(), "opendir " + path);
  std::vector<std::string> names;
  while (dirent* de = ::readdir(d)) {
    std::string name = de->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    index.push_back(name);
    walk(path + "/" + name, index, visit);
    index.pop_back();
  }
}

}  // namespace

void walk_tree(const std::string& root, const std::function<void(WalkedEntry&&)>& visit) {
  std::vector<std::string> index;
  walk(root, index, visit);
}

}  // namespace dupfs::test

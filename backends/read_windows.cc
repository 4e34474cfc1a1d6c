#include "backends/read_windows.h"

#include <algorithm>

namespace dupfs {

Result<std::string> ReadWindows::read(const std::string& name, uint64_t offset, size_t length,
                                      const Fetch& fetch) const {
  std::string out;
  {
    std::lock_guard lock(mu_);
    for (auto it = windows_.begin(); it != windows_.end(); ++it) {
      if (it->name != name || offset < it->offset || offset > it->offset + it->data.size()) {
        continue;
      }
      size_t start = offset - it->offset;
      size_t take = std::min(length, it->data.size() - start);
      out.assign(it->data, start, take);
      bool at_end = it->at_end;
      // A window read to its end goes (one at the object's end stays: it answers "no more").
      if (start + take == it->data.size() && !at_end) windows_.erase(it);
      if (out.size() == length || at_end) return out;
      break;
    }
  }
  const uint64_t from = offset + out.size();
  const size_t need = length - out.size();
  const size_t want = std::max(need, window_);
  auto got = fetch(from, want);
  if (!got) return std::unexpected(std::move(got.error()));
  const bool at_end = got->size() < want;
  const size_t give = std::min(need, got->size());
  if (out.empty())
    out.assign(*got, 0, give);
  else
    out.append(*got, 0, give);
  if (got->size() > need || at_end) {
    // The whole piece is kept (what was given stays before the reader's next offset).
    Window w{name, from, std::move(*got), at_end};
    std::lock_guard lock(mu_);
    windows_.push_back(std::move(w));
    while (windows_.size() > max_windows_) windows_.pop_front();
  }
  return out;
}

void ReadWindows::forget(const std::string& name) const {
  std::lock_guard lock(mu_);
  std::erase_if(windows_, [&](const Window& w) { return w.name == name; });
}

}  // namespace dupfs

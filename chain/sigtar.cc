#include "chain/sigtar.h"

#include <algorithm>
#include <map>

#include "chain/tar.h"

namespace dupfs::chain {
namespace {

class SigVisitor : public TarVisitor {
 public:
  Status on_entry(const TarHeader& h) override {
    auto name = parse_entry_name(h.name);
    if (!name) return {};
    SigEntry e;
    e.kind = name->kind;
    e.index = std::move(name->index);
    e.type = h.type;
    e.mode = h.mode;
    e.uid = h.uid;
    e.gid = h.gid;
    e.uname = h.uname;
    e.gname = h.gname;
    e.mtime = h.mtime;
    e.linkname = h.linkname;
    e.devmajor = h.devmajor;
    e.devminor = h.devminor;
    if (e.kind == EntryKind::kSignature) e.type = TarType::kFile;
    entries.push_back(std::move(e));
    return {};
  }
  Status on_data(const TarHeader&, std::string_view) override { return {}; }
  Status on_entry_end(const TarHeader&) override { return {}; }
  std::vector<SigEntry> entries;
};

}  // namespace

Result<std::vector<SigEntry>> read_sigtar(std::string_view tar) {
  SigVisitor visitor;
  TarParser parser(visitor);
  if (auto st = parser.feed(tar); !st) return std::unexpected(st.error());
  if (auto st = parser.finish(); !st) return std::unexpected(st.error());
  return std::move(visitor.entries);
}

std::vector<SigEntry> merge_signatures(const std::vector<SigLayer>& layers) {
  std::map<Index, const SigEntry*> merged;
  for (const auto& layer : layers) {
    for (const auto& e : *layer) {
      if (e.kind == EntryKind::kDeleted) {
        merged.erase(e.index);
      } else {
        merged[e.index] = &e;
      }
    }
  }
  std::vector<SigEntry> out;
  out.reserve(merged.size());
  for (const auto& [index, e] : merged) out.push_back(*e);
  return out;
}

}  // namespace dupfs::chain

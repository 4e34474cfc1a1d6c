#include "chain/format/difftar.h"

#include <charconv>

namespace dupfs::chain {

std::optional<EntryName> parse_entry_name(std::string_view name) {
  struct Prefix {
    std::string_view text;
    EntryKind kind;
  };
  static constexpr Prefix kPrefixes[] = {
      {"snapshot/", EntryKind::kSnapshot},
      {"diff/", EntryKind::kDiff},
      {"deleted/", EntryKind::kDeleted},
      {"multivol_snapshot/", EntryKind::kMultivolSnapshot},
      {"multivol_diff/", EntryKind::kMultivolDiff},
      {"signature/", EntryKind::kSignature},
  };
  for (const auto& p : kPrefixes) {
    if (!name.starts_with(p.text) && name != p.text.substr(0, p.text.size() - 1)) continue;
    std::string_view rest =
        name.size() > p.text.size() ? name.substr(p.text.size()) : std::string_view();
    EntryName out{p.kind, {}, 0};
    if (p.kind == EntryKind::kMultivolSnapshot || p.kind == EntryKind::kMultivolDiff) {
      while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
      auto slash = rest.rfind('/');
      if (slash == std::string_view::npos) return std::nullopt;
      std::string_view num = rest.substr(slash + 1);
      auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), out.chunk);
      if (ec != std::errc() || ptr != num.data() + num.size() || out.chunk < 1) {
        return std::nullopt;
      }
      rest = rest.substr(0, slash);
    }
    out.index = index_from_path(rest);
    return out;
  }
  return std::nullopt;
}

Status CatalogBuilder::on_entry(const TarHeader& h) {
  auto name = parse_entry_name(h.name);
  if (!name) return {};
  CatalogEntry e{std::move(*name), h};
  e.header.name.clear();
  pending.push_back(std::move(e));
  return {};
}

}  // namespace dupfs::chain

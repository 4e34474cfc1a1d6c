#include "chain/format/manifest.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <utility>

namespace dupfs::chain {
namespace {

bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Python's bytes.split(): runs of ASCII whitespace separate fields.
std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    size_t start = i;
    while (i < line.size() && !is_space(line[i])) ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// A line as it can be shown in an error message: printable ASCII, the rest as \xNN, shortened.
std::string excerpt(std::string_view line) {
  constexpr size_t kMax = 60;
  std::string out;
  for (size_t i = 0; i < line.size() && i < kMax; ++i) {
    auto c = static_cast<unsigned char>(line[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (line.size() > kMax) out += "...";
  return out;
}

std::optional<int64_t> parse_int(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return std::nullopt;
  int64_t value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    if (value > (std::numeric_limits<int64_t>::max() - 9) / 10) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return negative ? -value : value;
}

// VolumeInfo.from_string's string_to_index: unquote, "." is the root, else split on '/'. An
// empty component (from "", "a//b", "/a") cannot be an index and could not be written back.
std::optional<Index> string_to_index(std::string_view field) {
  auto path = try_unquote_path(field);
  if (!path) return std::nullopt;
  if (*path == ".") return Index{};
  Index index;
  std::string_view rest = *path;
  while (true) {
    size_t slash = rest.find('/');
    if (slash == 0 || rest.empty()) return std::nullopt;
    index.emplace_back(rest.substr(0, slash));
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return index;
}

std::string index_field(const Index& index) {
  return index.empty() ? std::string(".") : quote_path(index_to_string(index));
}

class Parser {
 public:
  Result<Manifest> parse(std::string_view text) {
    size_t line_no = 0;
    while (!text.empty()) {
      size_t nl = text.find('\n');
      std::string_view line = text.substr(0, nl);
      text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
      ++line_no;
      if (line.ends_with('\r')) line.remove_suffix(1);
      if (trim(line).empty()) continue;
      Status st = is_space(line.front()) ? indented(line) : top_level(line);
      if (!st) {
        return error(ErrorKind::kCorruption, "not a duplicity manifest: line {} \"{}\": {}",
                     line_no, excerpt(line), st.error().message);
      }
    }
    if (Status st = finish_volume(); !st) {
      return error(ErrorKind::kCorruption, "not a duplicity manifest: {}", st.error().message);
    }
    finish_filelist();
    if (m_.volumes.empty()) {
      return error(ErrorKind::kCorruption, "not a duplicity manifest: no Volume entries");
    }
    // A restarted backup may list volumes 1, 2, 3, 2: what follows the last entry is stale.
    for (auto it = m_.volumes.upper_bound(latest_); it != m_.volumes.end();) {
      it = m_.volumes.erase(it);
    }
    return std::move(m_);
  }

 private:
  enum class State { kTop, kVolume, kFilelist };

  Status top_level(std::string_view line) {
    if (Status st = finish_volume(); !st) return st;
    finish_filelist();
    state_ = State::kTop;
    size_t end = 0;
    while (end < line.size() && !is_space(line[end])) ++end;
    std::string word = lower(line.substr(0, end));
    // The value starts after the one whitespace byte that follows the word (duplicity's regex).
    std::string_view value = end < line.size() ? line.substr(end + 1) : std::string_view();
    if (word == "hostname" || word == "localdir") {
      auto& slot = word == "hostname" ? m_.hostname : m_.localdir;
      if (slot) return {};  // duplicity takes the first occurrence
      auto unquoted = try_unquote_path(value);
      if (!unquoted) return make_error(ErrorKind::kCorruption, "bad quoting");
      slot = std::move(*unquoted);
      return {};
    }
    if (word == "filelist") {
      auto parts = fields(line);
      auto count = parts.size() == 2 ? parse_int(parts[1]) : std::nullopt;
      if (!count || *count < 0 || parts[1].front() == '-' || parts[1].front() == '+') {
        return make_error(ErrorKind::kCorruption, "expected \"Filelist <count>\"");
      }
      if (m_.files) return make_error(ErrorKind::kCorruption, "second Filelist");
      m_.files.emplace();
      filelist_count_ = *count;
      state_ = State::kFilelist;
      return {};
    }
    if (word == "volume") {
      // VolumeInfo.from_string: "Volume <digits>:" (case-insensitive), one space.
      std::string_view rest = line.substr(end);
      size_t colon = rest.find(':');
      std::string_view digits = colon == std::string_view::npos ? "" : rest.substr(1, colon - 1);
      auto number =
          rest.starts_with(' ') && !digits.empty() && digits.front() != '+' && digits.front() != '-'
              ? parse_int(digits)
              : std::nullopt;
      if (!number || *number > std::numeric_limits<int>::max()) {
        return make_error(ErrorKind::kCorruption, "expected \"Volume <number>:\"");
      }
      volume_ = ManifestVolume{};
      volume_->number = static_cast<int>(*number);
      hashes_.clear();
      state_ = State::kVolume;
      return {};
    }
    return make_error(ErrorKind::kCorruption,
                      "expected Hostname, Localdir, Volume or Filelist at the start of a line");
  }

  Status indented(std::string_view line) {
    auto parts = fields(line);
    switch (state_) {
      case State::kTop:
        return make_error(ErrorKind::kCorruption, "indented line outside a volume or file list");
      case State::kVolume:
        return volume_field(parts);
      case State::kFilelist: {
        // Type, then the (quoted) path; the path is the rest of the line so that an unquoted path
        // with inner spaces from some other writer survives.
        std::string_view rest = trim(line);
        rest.remove_prefix(parts[0].size());
        rest = trim(rest);
        if (rest.empty()) return make_error(ErrorKind::kCorruption, "file list entry without path");
        auto index = string_to_index(rest);
        if (!index) {
          return make_error(ErrorKind::kCorruption, "bad quoting or empty path component");
        }
        m_.files->push_back(FileChange{std::string(parts[0]), std::move(*index)});
        return {};
      }
    }
    return {};
  }

  Status volume_field(const std::vector<std::string_view>& parts) {
    std::string name = lower(parts[0]);
    if (name == "startingpath" || name == "endingpath") {
      if (parts.size() < 2) return make_error(ErrorKind::kCorruption, "missing path");
      auto index = string_to_index(parts[1]);
      if (!index) return make_error(ErrorKind::kCorruption, "bad quoting or empty path component");
      std::optional<int64_t> block;
      if (parts.size() > 2) {
        block = parse_int(parts[2]);
        if (!block) return make_error(ErrorKind::kCorruption, "block number is not a number");
      }
      if (name == "startingpath") {
        volume_->start = std::move(*index);
        volume_->start_block = block;
        has_start_ = true;
      } else {
        volume_->end = std::move(*index);
        volume_->end_block = block;
        has_end_ = true;
      }
    } else if (name == "hash") {
      if (parts.size() < 3) return make_error(ErrorKind::kCorruption, "expected Hash <type> <hex>");
      std::string type(parts[1]);
      auto it = std::find_if(hashes_.begin(), hashes_.end(),
                             [&](const auto& h) { return h.first == type; });
      if (it != hashes_.end()) {
        it->second = std::string(parts[2]);
      } else {
        hashes_.emplace_back(std::move(type), std::string(parts[2]));
      }
    }
    // Any other word is ignored, as duplicity ignores it.
    return {};
  }

  Status finish_volume() {
    if (!volume_) return {};
    ManifestVolume v = std::move(*volume_);
    volume_.reset();
    if (!has_start_ || !has_end_) {
      return make_error(ErrorKind::kCorruption,
                        fmt::format("volume {} has no StartingPath or EndingPath", v.number));
    }
    has_start_ = has_end_ = false;
    // VolumeInfo.get_best_hash: SHA1, then MD5, then whatever came first.
    const std::pair<std::string, std::string>* best = nullptr;
    for (const char* preferred : {"SHA1", "MD5"}) {
      for (const auto& h : hashes_) {
        if (!best && h.first == preferred) best = &h;
      }
    }
    if (!best && !hashes_.empty()) best = &hashes_.front();
    if (best) {
      v.hash_type = best->first;
      v.hash_hex = lower(best->second);
    }
    latest_ = v.number;
    m_.volumes[v.number] = std::move(v);
    return {};
  }

  void finish_filelist() {
    if (state_ == State::kFilelist && m_.files) {
      m_.filelist_count_mismatch = static_cast<int64_t>(m_.files->size()) != filelist_count_;
    }
  }

  Manifest m_;
  State state_ = State::kTop;
  std::optional<ManifestVolume> volume_;
  bool has_start_ = false;
  bool has_end_ = false;
  std::vector<std::pair<std::string, std::string>> hashes_;  // in order of appearance
  int latest_ = 0;                                           // number of the last volume entry seen
  int64_t filelist_count_ = 0;
};

}  // namespace

Result<Manifest> parse_manifest(std::string_view text) { return Parser().parse(text); }

std::string format_manifest(const Manifest& m) {
  std::string out;
  if (m.hostname && !m.hostname->empty()) out += "Hostname " + *m.hostname + "\n";
  if (m.localdir && !m.localdir->empty()) out += "Localdir " + quote_path(*m.localdir) + "\n";
  auto block = [](const std::optional<int64_t>& b) { return b ? std::to_string(*b) : " "; };
  for (const auto& [number, v] : m.volumes) {
    out += fmt::format("Volume {}:\n", number);
    out += fmt::format("    StartingPath   {} {}\n", index_field(v.start), block(v.start_block));
    out += fmt::format("    EndingPath     {} {}\n", index_field(v.end), block(v.end_block));
    if (!v.hash_type.empty()) out += fmt::format("    Hash {} {}\n", v.hash_type, v.hash_hex);
  }
  if (m.files) {
    out += fmt::format("Filelist {}\n", m.files->size());
    for (const FileChange& f : *m.files) {
      // Python's "%-7s": pad with spaces to 7 bytes, never truncate.
      std::string type = f.type;
      if (type.size() < 7) type.append(7 - type.size(), ' ');
      out += "    " + type + "  " + index_field(f.path) + "\n";
    }
  }
  return out;
}

std::vector<int> volumes_for_prefix(const Manifest& m, const Index& prefix) {
  std::vector<int> out;
  for (const auto& [number, v] : m.volumes) {
    Index start(v.start.begin(), v.start.begin() + static_cast<std::ptrdiff_t>(
                                                       std::min(v.start.size(), prefix.size())));
    if (start <= prefix && prefix <= v.end) out.push_back(number);
  }
  return out;
}

}  // namespace dupfs::chain

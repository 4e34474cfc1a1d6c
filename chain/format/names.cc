#include "chain/format/names.h"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <limits>
#include <vector>

namespace dupfs::chain {
namespace {

// ---- A tiny backtracking matcher for the shapes of file_naming.py's regular expressions. ----
//
// Each pattern is anchored at the start of the name and, like Python's re.search with "^", the
// first match found by backtracking decides the groups; the times are validated afterwards, so a
// name whose first match has a bad time is rejected even if another split would have worked.

enum class Tok {
  kLit,       // literal text
  kLazyAny,   // (.*?)         any bytes but '\n', as few as possible
  kLazyB36,   // ([0-9a-z]+?)  as few as possible
  kDigits,    // ([0-9]+)      as many as possible
  kB36,       // ([0-9a-z]+)   as many as possible
  kOptLit,    // (\.part)?     greedy optional literal
  kEndOrDot,  // ($|\.)        Python's $ also matches before a final '\n'
};

enum Group { kTime = 0, kEnd = 1, kNum = 2, kPartial = 3, kNumGroups = 4 };
using Groups = std::array<std::optional<std::string_view>, kNumGroups>;

struct Step {
  Tok tok;
  std::string lit;
  int group = -1;
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_b36(char c) { return is_digit(c) || (c >= 'a' && c <= 'z'); }

class Pattern {
 public:
  Pattern& lit(std::string s) { return add({Tok::kLit, std::move(s), -1}); }
  Pattern& lazy_any(int g) { return add({Tok::kLazyAny, {}, g}); }
  Pattern& lazy_b36(int g) { return add({Tok::kLazyB36, {}, g}); }
  Pattern& digits(int g) { return add({Tok::kDigits, {}, g}); }
  Pattern& b36(int g) { return add({Tok::kB36, {}, g}); }
  Pattern& opt(std::string s, int g) { return add({Tok::kOptLit, std::move(s), g}); }
  Pattern& end_or_dot() { return add({Tok::kEndOrDot, {}, -1}); }

  std::optional<Groups> match(std::string_view s) const {
    Groups g;
    if (at(s, 0, 0, g)) return g;
    return std::nullopt;
  }

 private:
  Pattern& add(Step st) {
    steps_.push_back(std::move(st));
    return *this;
  }

  bool at(std::string_view s, size_t i, size_t pos, Groups& g) const {
    if (i == steps_.size()) return true;
    const Step& st = steps_[i];
    switch (st.tok) {
      case Tok::kLit:
        return s.substr(pos).starts_with(st.lit) && at(s, i + 1, pos + st.lit.size(), g);
      case Tok::kLazyAny:
        for (size_t end = pos;; ++end) {
          g[st.group] = s.substr(pos, end - pos);
          if (at(s, i + 1, end, g)) return true;
          if (end == s.size() || s[end] == '\n') return false;
        }
      case Tok::kLazyB36:
        for (size_t end = pos + 1; end <= s.size() && is_b36(s[end - 1]); ++end) {
          g[st.group] = s.substr(pos, end - pos);
          if (at(s, i + 1, end, g)) return true;
        }
        return false;
      case Tok::kDigits:
      case Tok::kB36: {
        auto in_class = st.tok == Tok::kDigits ? is_digit : is_b36;
        size_t max = pos;
        while (max < s.size() && in_class(s[max])) ++max;
        for (size_t end = max; end > pos; --end) {
          g[st.group] = s.substr(pos, end - pos);
          if (at(s, i + 1, end, g)) return true;
        }
        return false;
      }
      case Tok::kOptLit:
        if (s.substr(pos).starts_with(st.lit)) {
          g[st.group] = s.substr(pos, st.lit.size());
          if (at(s, i + 1, pos + st.lit.size(), g)) return true;
        }
        g[st.group].reset();
        return at(s, i + 1, pos, g);
      case Tok::kEndOrDot:
        if (pos == s.size() || (pos + 1 == s.size() && s[pos] == '\n')) return at(s, i + 1, pos, g);
        return s[pos] == '.' && at(s, i + 1, pos + 1, g);
    }
    return false;
  }

  std::vector<Step> steps_;
};

// file_naming.parse's str2time for the long forms: genstrtotime of the upper-cased text, minus
// intervals (see parse_name).
std::optional<int64_t> long_time(std::string_view text, std::string_view sep) {
  std::string ts(text);
  for (char& c : ts) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return gen_str_to_time(ts, std::nullopt, sep);
}

bool all_of(std::string_view s, bool (*pred)(char)) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!pred(c)) return false;
  }
  return true;
}

// int() of the long forms' volume numbers ("[0-9]+"); nullopt when it does not fit.
std::optional<int64_t> decimal(std::string_view s) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

std::optional<int64_t> from_base36(std::string_view s) {
  if (!all_of(s, is_b36)) return std::nullopt;
  int64_t value = 0;
  for (char c : s) {
    int digit = is_digit(c) ? c - '0' : c - 'a' + 10;
    if (value > (std::numeric_limits<int64_t>::max() - digit) / 36) return std::nullopt;
    value = value * 36 + digit;
  }
  return value;
}

// file_naming.parse's str2time: the result must be a non-zero time.
std::optional<int64_t> name_time(std::optional<std::string_view> text, bool short_form,
                                 std::string_view sep) {
  if (!text) return std::nullopt;
  auto t = short_form ? from_base36(*text) : long_time(*text, sep);
  if (!t || *t == 0) return std::nullopt;
  return t;
}

std::optional<int> volume_number(std::optional<std::string_view> text, bool short_form) {
  if (!text) return std::nullopt;
  auto n = short_form ? from_base36(*text) : decimal(*text);
  if (!n || *n <= 0 || *n > std::numeric_limits<int>::max()) return std::nullopt;
  return static_cast<int>(*n);
}

struct Patterns {
  Pattern full_vol, full_vol_short, full_manifest, full_manifest_short;
  Pattern inc_vol, inc_vol_short, inc_manifest, inc_manifest_short;
  Pattern full_sig, full_sig_short, new_sig, new_sig_short;

  explicit Patterns(const NamePrefixes& p) {
    std::string archive = p.general + p.archive;
    std::string manifest = p.general + p.manifest;
    std::string sig = p.general + p.signature;
    full_vol.lit(archive + "duplicity-full.")
        .lazy_any(kTime)
        .lit(".vol")
        .digits(kNum)
        .lit(".difftar")
        .opt(".part", kPartial)
        .end_or_dot();
    full_vol_short.lit(archive + "df.")
        .lazy_b36(kTime)
        .lit(".")
        .b36(kNum)
        .lit(".dt")
        .opt(".p", kPartial)
        .end_or_dot();
    full_manifest.lit(manifest + "duplicity-full.")
        .lazy_any(kTime)
        .lit(".manifest")
        .opt(".part", kPartial)
        .end_or_dot();
    full_manifest_short.lit(manifest + "df.")
        .lazy_b36(kTime)
        .lit(".m")
        .opt(".p", kPartial)
        .end_or_dot();
    inc_vol.lit(archive + "duplicity-inc.")
        .lazy_any(kTime)
        .lit(".to.")
        .lazy_any(kEnd)
        .lit(".vol")
        .digits(kNum)
        .lit(".difftar")
        .end_or_dot();
    inc_vol_short.lit(archive + "di.")
        .lazy_b36(kTime)
        .lit(".")
        .lazy_b36(kEnd)
        .lit(".")
        .b36(kNum)
        .lit(".dt")
        .end_or_dot();
    inc_manifest.lit(manifest + "duplicity-inc.")
        .lazy_any(kTime)
        .lit(".to.")
        .lazy_any(kEnd)
        .lit(".manifest")
        .opt(".part", kPartial)
        .end_or_dot();
    inc_manifest_short.lit(manifest + "di.")
        .lazy_b36(kTime)
        .lit(".")
        .lazy_b36(kEnd)
        .lit(".m")
        .opt(".p", kPartial)
        .end_or_dot();
    full_sig.lit(sig + "duplicity-full-signatures.")
        .lazy_any(kTime)
        .lit(".sigtar")
        .opt(".part", kPartial)
        .end_or_dot();
    full_sig_short.lit(sig + "dfs.").lazy_b36(kTime).lit(".st").opt(".p", kPartial).end_or_dot();
    new_sig.lit(sig + "duplicity-new-signatures.")
        .lazy_any(kTime)
        .lit(".to.")
        .lazy_any(kEnd)
        .lit(".sigtar")
        .opt(".part", kPartial)
        .end_or_dot();
    new_sig_short.lit(sig + "dns.")
        .lazy_b36(kTime)
        .lit(".")
        .lazy_b36(kEnd)
        .lit(".st")
        .opt(".p", kPartial)
        .end_or_dot();
  }
};

// One of file_naming.parse's check_full / check_inc: the short volume and manifest patterns, or
// failing both, the long ones.
std::optional<ParsedName> check_set(std::string_view name, FileType type, const Pattern& vol_short,
                                    const Pattern& man_short, const Pattern& vol_long,
                                    const Pattern& man_long, std::string_view sep) {
  bool short_form = true;
  auto m1 = vol_short.match(name);
  auto m2 = m1 ? std::nullopt : man_short.match(name);
  if (!m1 && !m2) {
    short_form = false;
    m1 = vol_long.match(name);
    m2 = m1 ? std::nullopt : man_long.match(name);
  }
  if (!m1 && !m2) return std::nullopt;
  const Groups& g = m1 ? *m1 : *m2;
  ParsedName pr;
  pr.type = type;
  if (type == FileType::kFull) {
    auto t = name_time(g[kTime], short_form, sep);
    if (!t) return std::nullopt;
    pr.time = *t;
  } else {
    auto t0 = name_time(g[kTime], short_form, sep);
    auto t1 = name_time(g[kEnd], short_form, sep);
    if (!t0 || !t1) return std::nullopt;
    pr.start_time = *t0;
    pr.end_time = *t1;
  }
  if (m1) {
    auto n = volume_number(g[kNum], short_form);
    if (!n) return std::nullopt;
    pr.volume = *n;
  } else {
    pr.manifest = true;
    pr.partial = g[kPartial].has_value();
  }
  return pr;
}

// file_naming.parse's check_sig. A full-signatures match with a bad time rejects the name without
// trying the new-signatures patterns, as duplicity does.
std::optional<ParsedName> check_sig(std::string_view name, const Patterns& p,
                                    std::string_view sep) {
  bool short_form = true;
  auto m = p.full_sig_short.match(name);
  if (!m) {
    short_form = false;
    m = p.full_sig.match(name);
  }
  if (m) {
    auto t = name_time((*m)[kTime], short_form, sep);
    if (!t) return std::nullopt;
    ParsedName pr;
    pr.type = FileType::kFullSig;
    pr.time = *t;
    pr.partial = (*m)[kPartial].has_value();
    return pr;
  }
  short_form = true;
  m = p.new_sig_short.match(name);
  if (!m) {
    short_form = false;
    m = p.new_sig.match(name);
  }
  if (!m) return std::nullopt;
  auto t0 = name_time((*m)[kTime], short_form, sep);
  auto t1 = name_time((*m)[kEnd], short_form, sep);
  if (!t0 || !t1) return std::nullopt;
  ParsedName pr;
  pr.type = FileType::kNewSig;
  pr.start_time = *t0;
  pr.end_time = *t1;
  pr.partial = (*m)[kPartial].has_value();
  return pr;
}

}  // namespace

std::optional<ParsedName> parse_name(std::string_view name, const NamePrefixes& prefixes) {
  // par2+ backend companions (<file>.par2, <file>.volNN+MM.par2) and 2.2+ jsonstat files are not
  // set members for a 0.8 reader. duplicity's par2 backend hides the former from its listing.
  if (name.ends_with(".par2") || name.find(".jsonstat") != std::string_view::npos) {
    return std::nullopt;
  }
  const Patterns p(prefixes);
  std::string_view sep = prefixes.time_separator;
  auto pr = check_set(name, FileType::kFull, p.full_vol_short, p.full_manifest_short, p.full_vol,
                      p.full_manifest, sep);
  if (!pr) {
    pr = check_set(name, FileType::kInc, p.inc_vol_short, p.inc_manifest_short, p.inc_vol,
                   p.inc_manifest, sep);
  }
  if (!pr) pr = check_sig(name, p, sep);
  if (!pr) return std::nullopt;
  pr->compressed = name.ends_with(".z") || name.ends_with("gz");
  pr->encrypted = name.ends_with(".g") || name.ends_with(".gpg");
  return pr;
}

std::optional<int64_t> parse_name_time(std::string_view text, std::string_view time_separator) {
  if (auto t = long_time(text, time_separator)) return t;
  return from_base36(text);
}

std::string full_volume_name(int64_t time, int volume, std::string_view suffix,
                             const NamePrefixes& prefixes) {
  return fmt::format("{}{}duplicity-full.{}.vol{}.difftar{}", prefixes.general, prefixes.archive,
                     format_name_time(time), volume, suffix);
}

std::string inc_volume_name(int64_t start, int64_t end, int volume, std::string_view suffix,
                            const NamePrefixes& prefixes) {
  return fmt::format("{}{}duplicity-inc.{}.to.{}.vol{}.difftar{}", prefixes.general,
                     prefixes.archive, format_name_time(start), format_name_time(end), volume,
                     suffix);
}

std::string full_manifest_name(int64_t time, std::string_view suffix,
                               const NamePrefixes& prefixes) {
  return fmt::format("{}{}duplicity-full.{}.manifest{}", prefixes.general, prefixes.manifest,
                     format_name_time(time), suffix);
}

std::string inc_manifest_name(int64_t start, int64_t end, std::string_view suffix,
                              const NamePrefixes& prefixes) {
  return fmt::format("{}{}duplicity-inc.{}.to.{}.manifest{}", prefixes.general, prefixes.manifest,
                     format_name_time(start), format_name_time(end), suffix);
}

std::string full_sig_name(int64_t time, std::string_view suffix, const NamePrefixes& prefixes) {
  return fmt::format("{}{}duplicity-full-signatures.{}.sigtar{}", prefixes.general,
                     prefixes.signature, format_name_time(time), suffix);
}

std::string new_sig_name(int64_t start, int64_t end, std::string_view suffix,
                         const NamePrefixes& prefixes) {
  return fmt::format("{}{}duplicity-new-signatures.{}.to.{}.sigtar{}", prefixes.general,
                     prefixes.signature, format_name_time(start), format_name_time(end), suffix);
}

}  // namespace dupfs::chain

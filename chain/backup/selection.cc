// duplicity's file selection: globs compiled to bit-parallel automata and the rules made of them;
// see selection.h.
#include "chain/backup/selection.h"

#include <fcntl.h>
#include <locale.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wctype.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "backends/base/log.h"

namespace dupfs::chain {
namespace {

// ---------------------------------------------------------------------------------------------
// Text: duplicity works on Python str, so paths and patterns are code points.

// Python's UTF-8 decoder. Well-formed sequences (Unicode table 3-7: no overlongs, no encoded
// surrogates, nothing above U+10FFFF) become their code point. Every other byte becomes
// U+DC00 + byte (surrogateescape) or, when `strict`, makes the call fail. Returns the offset of
// the first invalid byte when strict, else npos.
size_t decode_utf8(std::string_view in, std::u32string& out, bool strict) {
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  const size_t n = in.size();
  size_t i = 0;
  while (i < n) {
    unsigned char b = s[i];
    if (b < 0x80) {
      out.push_back(b);
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    char32_t cp = 0;
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
      cp = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      cp = b & 0x0F;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      cp = b & 0x07;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    }
    bool ok = len != 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      unsigned char c = s[i + k];
      if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) ok = false;
      cp = (cp << 6) | (c & 0x3F);
    }
    if (ok) {
      out.push_back(cp);
      i += len;
    } else {
      if (strict) return i;
      out.push_back(0xDC00 + b);
      ++i;
    }
  }
  return std::string_view::npos;
}

std::u32string decode_escaped(std::string_view in) {
  std::u32string out;
  out.reserve(in.size());
  decode_utf8(in, out, false);
  return out;
}

// Inverse of decode_utf8 with surrogateescape, for messages.
std::string encode_escaped(std::u32string_view in) {
  std::string out;
  for (char32_t c : in) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c >= 0xDC80 && c <= 0xDCFF) {
      out.push_back(static_cast<char>(c - 0xDC00));
    } else if (c < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (c >> 12)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (c >> 18)));
      out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

// Unicode simple case mappings from glibc's C.UTF-8 locale (ASCII only if it is missing). A
// locale object of our own, so the process locale is never touched.
locale_t utf8_ctype() {
  static const locale_t loc = ::newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
  return loc;
}

char32_t to_lower(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  locale_t loc = utf8_ctype();
  if (loc == static_cast<locale_t>(0)) return c;
  return static_cast<char32_t>(::towlower_l(static_cast<wint_t>(c), loc));
}

char32_t to_upper(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 32 : c;
  locale_t loc = utf8_ctype();
  if (loc == static_cast<locale_t>(0)) return c;
  return static_cast<char32_t>(::towupper_l(static_cast<wint_t>(c), loc));
}

std::u32string lowered(std::u32string_view s) {
  std::u32string out(s);
  for (char32_t& c : out) c = to_lower(c);
  return out;
}

// Python's str.isspace(), which str.strip() uses.
bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

std::u32string_view strip(std::u32string_view s) {
  while (!s.empty() && is_python_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_python_space(s.back())) s.remove_suffix(1);
  return s;
}

// Path.get_canonical(): "." components and empty ones dropped; absolute stays absolute.
std::string canonical_root(std::string_view path) {
  std::string joined;
  size_t at = 0;
  while (at <= path.size()) {
    size_t slash = path.find('/', at);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view part = path.substr(at, slash - at);
    if (!part.empty() && part != ".") {
      if (!joined.empty()) joined += '/';
      joined += part;
    }
    at = slash + 1;
  }
  if (!path.empty() && path[0] == '/') return "/" + joined;
  return joined.empty() ? "." : joined;
}

std::string shown(std::string_view path) { return quote_path(path); }

// ---------------------------------------------------------------------------------------------
// Globs: globmatch.glob_to_regex, compiled to a bit-parallel NFA instead of a Python regex.

enum class TokenKind : uint8_t {
  kLiteral,      // re.escape(c)
  kAnyButSlash,  // ?  -> [^/]
  kStar,         // *  -> [^/]*
  kStarStar,     // ** -> .*   (re.S: '.' matches newlines too)
  kClass,        // [...]
};

struct CharClass {
  bool negate = false;
  std::vector<std::pair<char32_t, char32_t>> ranges;  // single characters are c..c
  bool operator==(const CharClass&) const = default;
};

struct Token {
  TokenKind kind = TokenKind::kLiteral;
  char32_t c = 0;        // kLiteral
  CharClass char_class;  // kClass
  bool operator==(const Token&) const = default;
  bool is_star() const { return kind == TokenKind::kStar || kind == TokenKind::kStarStar; }
};

bool class_has(const CharClass& cc, char32_t c) {
  for (const auto& [lo, hi] : cc.ranges) {
    if (c >= lo && c <= hi) return true;
  }
  return false;
}

// Whether one token accepts character c (a star: as one more character of its run).
bool token_accepts(const Token& t, char32_t c, bool ignore_case) {
  switch (t.kind) {
    case TokenKind::kLiteral:
      return ignore_case ? to_lower(c) == to_lower(t.c) : c == t.c;
    case TokenKind::kAnyButSlash:
    case TokenKind::kStar:
      return c != U'/';
    case TokenKind::kStarStar:
      return true;
    case TokenKind::kClass: {
      bool in = class_has(t.char_class, c);
      if (!in && ignore_case) {
        in = class_has(t.char_class, to_lower(c)) || class_has(t.char_class, to_upper(c));
      }
      return in != t.char_class.negate;
    }
  }
  return false;
}

// The inside of a class as Python's regex parser reads "[" + stuff + "]" after glob_to_regex
// has doubled backslashes (so every character is literal). `items` is stuff without the leading
// '^'; it holds no ']' except possibly first, where Python takes it literally.
Result<CharClass> parse_class(std::u32string_view items, bool negate) {
  CharClass cc;
  cc.negate = negate;
  std::u32string src(items);
  src += U']';
  size_t i = 0;
  while (i < src.size()) {
    char32_t c = src[i++];
    if (c == U']' && !cc.ranges.empty()) break;
    if (i < src.size() && src[i] == U'-') {
      ++i;
      if (i >= src.size()) return error(ErrorKind::kInvalidArgument, "unterminated character set");
      char32_t hi = src[i++];
      if (hi == U']') {
        cc.ranges.emplace_back(c, c);
        cc.ranges.emplace_back(U'-', U'-');
        break;
      }
      if (hi < c) {
        return error(ErrorKind::kInvalidArgument, "bad character range {}-{}",
                     encode_escaped(std::u32string(1, c)), encode_escaped(std::u32string(1, hi)));
      }
      cc.ranges.emplace_back(c, hi);
    } else {
      cc.ranges.emplace_back(c, c);
    }
  }
  return cc;
}

Result<std::vector<Token>> glob_to_tokens(std::u32string_view pat) {
  std::vector<Token> out;
  size_t i = 0;
  const size_t n = pat.size();
  while (i < n) {
    char32_t c = pat[i];
    bool double_star = c == U'*' && i + 1 < n && pat[i + 1] == U'*';
    ++i;
    Token t;
    if (double_star) {
      t.kind = TokenKind::kStarStar;
      ++i;
    } else if (c == U'*') {
      t.kind = TokenKind::kStar;
    } else if (c == U'?') {
      t.kind = TokenKind::kAnyButSlash;
    } else if (c == U'[') {
      size_t j = i;
      if (j < n && (pat[j] == U'!' || pat[j] == U'^')) ++j;
      if (j < n && pat[j] == U']') ++j;
      while (j < n && pat[j] != U']') ++j;
      if (j >= n) {
        t.c = U'[';  // no closing bracket: a literal '['
      } else {
        std::u32string_view stuff = pat.substr(i, j - i);
        i = j + 1;
        bool negate = stuff[0] == U'!' || stuff[0] == U'^';
        if (negate) stuff.remove_prefix(1);
        auto cc = parse_class(stuff, negate);
        if (!cc) return std::unexpected(cc.error());
        t.kind = TokenKind::kClass;
        t.char_class = std::move(*cc);
      }
    } else {
      t.c = c;
    }
    out.push_back(std::move(t));
  }
  return out;
}

// An NFA over a token list, run bit-parallel (shift-and): bit k set means "the first k tokens
// match exactly the input so far"; bit m (m = number of tokens) is the accepting state. A
// character moves bit k to k + 1 through a single-character token k; a star token k keeps bit
// k + 1 (its repetition) and, matching nothing, copies bit k to k + 1 (the closure).
struct Program {
  std::vector<Token> tokens;
  bool ignore_case = false;
  size_t words = 1;                    // 64-bit words per state set
  std::vector<uint64_t> ascii_single;  // [c * words]: bit k: single-char token k accepts c
  std::vector<uint64_t> ascii_star;    // [c * words]: bit k + 1: star token k accepts c
  std::vector<uint64_t> star_states;   // states whose token is a star (epsilon to k + 1)
  std::vector<uint64_t> scan_states;   // states whose full match means "scan"
  std::vector<uint64_t> initial;       // the state before any input
  size_t accept = 0;                   // == tokens.size()
  size_t offset = 0;                   // where its words start in a Cursor
  size_t slot = 0;                     // its index in a Cursor's comp flags

  // The masks for character c: pointers into the tables, or computed into scratch.
  std::pair<const uint64_t*, const uint64_t*> masks_for(char32_t c, uint64_t* single,
                                                        uint64_t* star) const {
    if (c < 128) return {&ascii_single[c * words], &ascii_star[c * words]};
    std::fill_n(single, words, 0);
    std::fill_n(star, words, 0);
    for (size_t k = 0; k < tokens.size(); ++k) {
      if (!token_accepts(tokens[k], c, ignore_case)) continue;
      const bool is_star = tokens[k].is_star();
      const size_t bit = is_star ? k + 1 : k;
      uint64_t* set = is_star ? star : single;
      set[bit / 64] |= uint64_t{1} << (bit % 64);
    }
    return {single, star};
  }

  // Epsilon moves: a star may match nothing, so state k of a star token implies state k + 1.
  void closure(uint64_t* v) const {
    for (;;) {
      bool grew = false;
      uint64_t carry = 0;
      for (size_t i = 0; i < words; ++i) {
        uint64_t x = v[i] & star_states[i];
        uint64_t shifted = (x << 1) | carry;
        carry = x >> 63;
        if (shifted & ~v[i]) {
          v[i] |= shifted;
          grew = true;
        }
      }
      if (!grew) return;
    }
  }
};

void set_bit(std::vector<uint64_t>& v, size_t base, size_t bit) {
  v[base + bit / 64] |= uint64_t{1} << (bit % 64);
}

Program make_program(std::vector<Token> tokens, bool ignore_case) {
  Program p;
  p.tokens = std::move(tokens);
  p.ignore_case = ignore_case;
  p.accept = p.tokens.size();
  p.words = (p.accept + 1 + 63) / 64;
  p.ascii_single.assign(128 * p.words, 0);
  p.ascii_star.assign(128 * p.words, 0);
  p.star_states.assign(p.words, 0);
  p.scan_states.assign(p.words, 0);
  for (size_t k = 0; k < p.tokens.size(); ++k) {
    const Token& t = p.tokens[k];
    if (t.is_star()) set_bit(p.star_states, 0, k);
    for (char32_t c = 0; c < 128; ++c) {
      if (!token_accepts(t, c, ignore_case)) continue;
      if (t.is_star()) {
        set_bit(p.ascii_star, c * p.words, k + 1);
      } else {
        set_bit(p.ascii_single, c * p.words, k);
      }
    }
  }
  p.initial.assign(p.words, 0);
  p.initial[0] = 1;
  p.closure(p.initial.data());
  return p;
}

struct RunResult {
  bool comp = false;   // ^glob($|/) matches: the path or a directory above it
  bool exact = false;  // ^glob$ matches
  bool scan = false;   // the whole path matches one of the scan states
};

// Runs `p` over `segment`, starting from state `start` with `start_comp` (the glob already
// matched a directory of the text before `segment`).
// * final: the path ends with `segment`; the result says what matched. Python's '$' also
//   matches just before a final '\n', so a path ending in a newline matches as if the newline
//   were not there (duplicity's regexes do the same).
// * not final: more text follows `segment`; the state after it goes to `end` and comp is
//   reported for matches followed by '/' inside it.
RunResult run_segment(const Program& p, const uint64_t* start, bool start_comp,
                      std::u32string_view segment, bool final, bool need_exact, uint64_t* end) {
  RunResult r;
  r.comp = start_comp;
  const size_t n = segment.size();
  const size_t accept_word = p.accept / 64;
  const uint64_t accept_bit = uint64_t{1} << (p.accept % 64);

  if (p.words == 1) {  // the common case, on scalars
    uint64_t d = start[0];
    const uint64_t stars = p.star_states[0];
    for (size_t pos = 0;; ++pos) {
      bool at_end = final && (pos == n || (pos + 1 == n && segment[pos] == U'\n'));
      if (d & accept_bit) {
        if (at_end) {
          r.comp = r.exact = true;
        } else if (pos < n && segment[pos] == U'/') {
          r.comp = true;
        }
      }
      if (at_end && (d & p.scan_states[0])) r.scan = true;
      if (pos == n || d == 0 || (final && r.comp && !need_exact)) break;
      char32_t c = segment[pos];
      uint64_t single, star;
      if (c < 128) {
        single = p.ascii_single[c];
        star = p.ascii_star[c];
      } else {
        uint64_t scratch_single = 0, scratch_star = 0;
        auto masks = p.masks_for(c, &scratch_single, &scratch_star);
        single = *masks.first;
        star = *masks.second;
      }
      d = ((d & single) << 1) | (d & star);
      for (uint64_t grow = (d & stars) << 1; grow & ~d; grow = (d & stars) << 1) d |= grow;
    }
    if (end != nullptr) end[0] = d;
    return r;
  }

  const size_t w = p.words;
  std::vector<uint64_t> mem(4 * w);
  uint64_t* d = mem.data();
  uint64_t* scratch_single = d + w;
  uint64_t* scratch_star = d + 2 * w;
  uint64_t* next = d + 3 * w;
  std::copy_n(start, w, d);
  auto any_of = [&](const uint64_t* v, const std::vector<uint64_t>& mask) {
    for (size_t i = 0; i < w; ++i) {
      if (v[i] & mask[i]) return true;
    }
    return false;
  };
  for (size_t pos = 0;; ++pos) {
    bool at_end = final && (pos == n || (pos + 1 == n && segment[pos] == U'\n'));
    if (d[accept_word] & accept_bit) {
      if (at_end) {
        r.comp = r.exact = true;
      } else if (pos < n && segment[pos] == U'/') {
        r.comp = true;
      }
    }
    if (at_end && any_of(d, p.scan_states)) r.scan = true;
    bool alive = false;
    for (size_t i = 0; i < w; ++i) alive = alive || d[i] != 0;
    if (pos == n || !alive || (final && r.comp && !need_exact)) break;
    auto [single, star] = p.masks_for(segment[pos], scratch_single, scratch_star);
    uint64_t carry = 0;
    for (size_t i = 0; i < w; ++i) {
      uint64_t x = d[i] & single[i];
      next[i] = ((x << 1) | carry) | (d[i] & star[i]);
      carry = x >> 63;
    }
    p.closure(next);
    std::swap(d, next);
  }
  if (end != nullptr) std::copy_n(d, w, end);
  return r;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Rules: selection.Select's selection functions made from globs.

namespace {

struct Rule {
  bool include = false;
  bool match_all = false;  // the pattern "**" (glob_get_sf's shortcut): decides every path
  bool ends_with_slash = false;
  // [0]: the glob, its scan states marked. When a leading part of the glob does not compile to
  // a leading part of its tokens (a class spanning a '/'), that part gets a program of its own.
  std::vector<Program> programs;
  std::string name;  // for messages
};

// selection function results, as in selection.py
constexpr int kNone = -1;
constexpr int kExcluded = 0;
constexpr int kIncluded = 1;
constexpr int kScanned = 2;

// The state of every program of a list of rules after a prefix of a path (a directory's path):
// d holds each program's state at program.offset, comp its comp so far at program.slot.
using Cursor = Selection::Cursor;

// Gives each program of `rules` its place in a Cursor; returns the cursor before any input.
Cursor place_programs(std::vector<Rule>& rules) {
  Cursor c;
  for (Rule& rule : rules) {
    for (Program& p : rule.programs) {
      p.offset = c.d.size();
      p.slot = c.comp.size();
      c.d.insert(c.d.end(), p.initial.begin(), p.initial.end());
      c.comp.push_back(0);
    }
  }
  return c;
}

// globmatch.select_fn_from_glob's test_fn for the path (text before) + `segment`, where
// `cursor` holds the state after the text before.
int evaluate(const Rule& rule, const Cursor& cursor, std::u32string_view segment, bool is_dir) {
  const int include = rule.include ? kIncluded : kExcluded;
  if (rule.match_all) return include;
  const Program& main = rule.programs[0];
  RunResult r = run_segment(main, &cursor.d[main.offset], cursor.comp[main.slot] != 0, segment,
                            true, rule.ends_with_slash, nullptr);
  if (r.comp) {
    if (!rule.ends_with_slash || !r.exact) return include;
    return is_dir ? include : kNone;
  }
  if (!rule.include) return kNone;
  if (r.scan) return kScanned;
  for (size_t i = 1; i < rule.programs.size(); ++i) {
    const Program& p = rule.programs[i];
    if (run_segment(p, &cursor.d[p.offset], false, segment, true, false, nullptr).scan) {
      return kScanned;
    }
  }
  return kNone;
}

// The cursor after `segment` more text.
void extend(const std::vector<Rule>& rules, const Cursor& from, std::u32string_view segment,
            Cursor& to) {
  to.d.resize(from.d.size());
  to.comp.resize(from.comp.size());
  for (const Rule& rule : rules) {
    for (const Program& p : rule.programs) {
      RunResult r = run_segment(p, &from.d[p.offset], from.comp[p.slot] != 0, segment, false, false,
                                &to.d[p.offset]);
      to.comp[p.slot] = r.comp ? 1 : 0;
    }
  }
}

// selection.Select.Select for (text before) + `segment`.
Selection::Verdict select_with(const std::vector<Rule>& rules, const Cursor& cursor,
                               std::u32string_view segment, bool is_dir) {
  if (rules.empty()) return Selection::Verdict::kInclude;
  bool scan_pending = false;
  int result = kNone;
  for (const Rule& rule : rules) {
    result = evaluate(rule, cursor, segment, is_dir);
    if (result == kScanned) {
      scan_pending = true;
    } else if (result == kExcluded || result == kIncluded) {
      break;
    }
  }
  if (scan_pending && result != kIncluded) result = kScanned;
  switch (result) {
    case kExcluded:
      return Selection::Verdict::kExclude;
    case kScanned:
      return Selection::Verdict::kScan;
    default:
      return Selection::Verdict::kInclude;
  }
}

// select_fn_from_glob(glob, include, ignore_case) without the include flag.
Result<Rule> compile_glob(std::u32string glob, bool ignore_case) {
  Rule rule;
  if (glob == U"/") {
    glob = U"/**";  // includes everything
  } else if (glob.back() == U'/') {
    rule.ends_with_slash = true;
    glob.pop_back();
  }
  auto tokens = glob_to_tokens(glob);
  if (!tokens) return std::unexpected(tokens.error());
  rule.programs.push_back(make_program(*tokens, ignore_case));
  // rule.programs[0] is the glob; it is not kept as a reference, as own programs are appended.

  // The scan regex: every leading run of '/'-separated parts of the glob, cut after its first
  // "**" (a directory that may hold a match).
  std::u32string cut = glob;
  if (size_t at = cut.find(U"**"); at != std::u32string::npos) cut.resize(at + 2);
  std::vector<std::u32string> parts;
  for (size_t at = 0;;) {
    size_t slash = cut.find(U'/', at);
    parts.push_back(cut.substr(at, slash == std::u32string::npos ? slash : slash - at));
    if (slash == std::u32string::npos) break;
    at = slash + 1;
  }
  for (size_t i = 1; i + 1 < parts.size(); ++i) {
    if (parts[i].empty()) {
      return error(ErrorKind::kInvalidArgument, "consecutive '/'s found in globbing string");
    }
  }
  std::u32string prefix;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) prefix += U'/';
    prefix += parts[i];
    std::u32string text = prefix.empty() ? std::u32string(U"/") : prefix;
    auto prefix_tokens = glob_to_tokens(text);
    if (!prefix_tokens) return std::unexpected(prefix_tokens.error());
    Program& main = rule.programs[0];
    if (prefix_tokens->size() <= main.tokens.size() &&
        std::equal(prefix_tokens->begin(), prefix_tokens->end(), main.tokens.begin())) {
      set_bit(main.scan_states, 0, prefix_tokens->size());
    } else {
      Program own = make_program(std::move(*prefix_tokens), ignore_case);
      set_bit(own.scan_states, 0, own.accept);
      rule.programs.push_back(std::move(own));
    }
  }
  return rule;
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// selection.glob_get_sf / glob_get_normal_sf. `origin` names the option for messages.
Result<Rule> make_rule(std::u32string glob, bool include, std::string_view root,
                       std::u32string_view root_uc, bool root_is_dir, const std::string& origin) {
  const std::string shown_glob = quoted(encode_escaped(glob));
  Rule rule;
  if (glob == U"**") {
    rule.match_all = true;
  } else {
    bool ignore_case = false;
    static constexpr std::u32string_view kIgnoreCase = U"ignorecase:";
    if (glob.size() >= kIgnoreCase.size() &&
        lowered(glob.substr(0, kIgnoreCase.size())) == kIgnoreCase) {
      glob = lowered(glob.substr(kIgnoreCase.size()));
      ignore_case = true;
    }
    if (glob.empty()) {
      return error(ErrorKind::kInvalidArgument, "{}: empty file specification {}", origin,
                   shown_glob);
    }
    // The glob must be able to match the root or something under it. duplicity checks this
    // case-sensitively, with the glob already lowercased for ignorecase:.
    auto check = compile_glob(glob, false);
    if (!check) {
      return error(ErrorKind::kInvalidArgument, "{}: error while processing expression {}: {}",
                   origin, shown_glob, check.error().message);
    }
    check->include = true;
    std::vector<Rule> alone{std::move(*check)};
    Cursor start = place_programs(alone);
    check = std::move(alone[0]);
    if (evaluate(*check, start, root_uc, root_is_dir) == kNone) {
      return error(ErrorKind::kInvalidArgument,
                   "{}: the file specification {} cannot match any files in the base directory "
                   "'{}'; useful file specifications begin with the base directory or some "
                   "pattern (such as '**') which matches the base directory",
                   origin, quoted(encode_escaped(glob)), root);
    }
    if (ignore_case) {
      auto compiled = compile_glob(glob, true);
      if (!compiled) return std::unexpected(compiled.error());
      rule = std::move(*compiled);
    } else {
      rule = std::move(*check);
    }
  }
  rule.include = include;
  rule.name = origin;
  return rule;
}

Result<std::string> read_whole_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return error(ErrorKind::kInvalidArgument, "error opening filelist {}: {}", shown(path),
                 std::strerror(errno));
  }
  std::string data;
  char buffer[65536];
  for (;;) {
    ssize_t r = ::read(fd, buffer, sizeof buffer);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      ::close(fd);
      return error(ErrorKind::kInvalidArgument, "error reading filelist {}: {}", shown(path),
                   std::strerror(e));
    }
    if (r == 0) break;
    data.append(buffer, static_cast<size_t>(r));
  }
  ::close(fd);
  return data;
}

// selection.filelist_globbing_get_sfs: one rule per pattern line.
Status add_filelist(std::vector<Rule>& rules, const std::string& list_path, bool include_default,
                    const SelectionFlags& flags, std::string_view root, std::u32string_view root_uc,
                    bool root_is_dir) {
  const char* option = include_default ? "--include-filelist" : "--exclude-filelist";
  auto data = read_whole_file(list_path);
  if (!data) return std::unexpected(data.error());
  log_info("Reading globbing filelist {}", shown(list_path));
  // io.open(..., "rt", encoding="UTF-8"): strict UTF-8 (a BOM stays), universal newlines.
  std::u32string raw;
  if (size_t bad = decode_utf8(*data, raw, true); bad != std::string_view::npos) {
    return error(ErrorKind::kInvalidArgument,
                 "{} {}: not UTF-8 (invalid byte 0x{:02x} at offset {}); duplicity reads "
                 "filelists as UTF-8",
                 option, shown(list_path), static_cast<unsigned char>((*data)[bad]), bad);
  }
  std::u32string text;
  text.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == U'\r') {
      text.push_back(U'\n');
      if (i + 1 < raw.size() && raw[i + 1] == U'\n') ++i;
    } else {
      text.push_back(raw[i]);
    }
  }
  const char32_t separator = flags.null_separator ? U'\0' : U'\n';
  size_t line_number = 0;
  for (size_t at = 0; at <= text.size();) {
    size_t end = text.find(separator, at);
    if (end == std::u32string::npos) end = text.size();
    std::u32string_view line = std::u32string_view(text).substr(at, end - at);
    at = end + 1;
    ++line_number;
    // filelist_sanitise_line
    line = strip(line);
    if (line.empty() || line[0] == U'#') continue;
    bool include = include_default;
    if (line.starts_with(U"+ ")) {
      include = true;
      line.remove_prefix(2);
    } else if (line.starts_with(U"- ")) {
      include = false;
      line.remove_prefix(2);
    }
    if (line.size() >= 2 && ((line.front() == U'\'' && line.back() == U'\'') ||
                             (line.front() == U'"' && line.back() == U'"'))) {
      line = line.substr(1, line.size() - 2);
    } else if (line.size() == 1 && (line[0] == U'\'' || line[0] == U'"')) {
      line = {};  // Python: "'".startswith("'") and .endswith("'"), so it becomes ""
    }
    if (line.empty()) continue;
    std::string origin = fmt::format("{} {} line {}: {} {}", option, shown(list_path), line_number,
                                     include ? "include" : "exclude", quoted(encode_escaped(line)));
    auto rule = make_rule(std::u32string(line), include, root, root_uc, root_is_dir, origin);
    if (!rule) return std::unexpected(rule.error());
    rules.push_back(std::move(*rule));
  }
  return {};
}

}  // namespace

struct Selection::Rules {
  std::vector<Rule> list;
  Cursor start;  // before any input
};

Result<Selection> Selection::make(const std::string& source_root,
                                  const std::vector<SelectionOption>& options,
                                  const SelectionFlags& flags) {
  if (source_root.empty()) {
    return error(ErrorKind::kInvalidArgument, "the source directory is an empty path");
  }
  Selection selection;
  selection.root_ = canonical_root(source_root);
  const std::u32string root_uc = decode_escaped(selection.root_);
  struct stat st {};
  const bool root_is_dir = ::lstat(selection.root_.c_str(), &st) != 0 || S_ISDIR(st.st_mode);

  auto rules = std::make_shared<Rules>();
  for (const SelectionOption& option : options) {
    switch (option.kind) {
      case SelectionOption::Kind::kInclude:
      case SelectionOption::Kind::kExclude: {
        bool include = option.kind == SelectionOption::Kind::kInclude;
        std::string origin =
            fmt::format("{} {}", include ? "--include" : "--exclude", quoted(option.value));
        auto rule = make_rule(decode_escaped(option.value), include, selection.root_, root_uc,
                              root_is_dir, origin);
        if (!rule) return std::unexpected(rule.error());
        rules->list.push_back(std::move(*rule));
        break;
      }
      case SelectionOption::Kind::kIncludeFilelist:
      case SelectionOption::Kind::kExcludeFilelist: {
        bool include = option.kind == SelectionOption::Kind::kIncludeFilelist;
        Status added = add_filelist(rules->list, option.value, include, flags, selection.root_,
                                    root_uc, root_is_dir);
        if (!added) return std::unexpected(added.error());
        break;
      }
    }
  }
  // selection.parse_last_excludes
  if (!rules->list.empty() && rules->list.back().include) {
    return error(ErrorKind::kInvalidArgument,
                 "the last selection expression, {}, only specifies that files be included; "
                 "because the default is to include all files, the expression is redundant "
                 "(duplicity refuses this, as it probably isn't what you meant)",
                 rules->list.back().name);
  }
  rules->start = place_programs(rules->list);
  selection.rules_ = std::move(rules);
  return selection;
}

size_t Selection::rule_count() const { return rules_ ? rules_->list.size() : 0; }

std::string Selection::local_path_of(const Index& index) const {
  std::string path = root_;
  for (const std::string& component : index) {
    if (path.back() != '/') path += '/';
    path += component;
  }
  return path;
}

Selection::Verdict Selection::select(std::string_view local_path, bool is_dir) const {
  return select_decoded(decode_escaped(local_path), is_dir);
}

Selection::Verdict Selection::select_decoded(std::u32string_view path, bool is_dir) const {
  if (!rules_) return Verdict::kInclude;
  return select_with(rules_->list, rules_->start, path, is_dir);
}

bool Selection::made_for(std::string_view source_root) const {
  return !source_root.empty() && canonical_root(source_root) == root_;
}

Selection::Cursor Selection::cursor_at(std::string_view dir) const {
  Cursor cursor;
  if (rules_) extend(rules_->list, rules_->start, decode_escaped(dir), cursor);
  return cursor;
}

Selection::Verdict Selection::select_entry(const Cursor& dir, std::string_view name,
                                           bool dir_is_slash, bool is_dir, Cursor* inside) const {
  // The text the rules have not seen yet: "/" (unless the directory is "/") and the name.
  thread_local std::u32string segment;
  segment.clear();
  if (!dir_is_slash) segment.push_back(U'/');
  decode_utf8(name, segment, false);
  if (!rules_) return Verdict::kInclude;
  const Verdict verdict = select_with(rules_->list, dir, segment, is_dir);
  if (is_dir && inside != nullptr && verdict != Verdict::kExclude) {
    extend(rules_->list, dir, segment, *inside);
  }
  return verdict;
}

}  // namespace dupfs::chain

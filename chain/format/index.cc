#include "chain/format/index.h"

namespace dupfs::chain {
namespace {

// Python's bytes regex class (\s|[\\"']) used by duplicity's Quote(): ASCII whitespace, backslash
// and both quote characters.
bool needs_escape(unsigned char c) {
  switch (c) {
    case ' ':
    case '\t':
    case '\n':
    case '\r':
    case '\v':
    case '\f':
    case '\\':
    case '"':
    case '\'':
      return true;
    default:
      return false;
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string index_to_string(const Index& index) {
  if (index.empty()) return ".";
  std::string out;
  for (size_t i = 0; i < index.size(); ++i) {
    if (i > 0) out += '/';
    out += index[i];
  }
  return out;
}

Index index_from_path(std::string_view path) {
  Index index;
  while (!path.empty()) {
    size_t slash = path.find('/');
    std::string_view part = path.substr(0, slash);
    if (!part.empty() && part != ".") index.emplace_back(part);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return index;
}

bool index_has_prefix(const Index& index, const Index& prefix) {
  if (prefix.size() > index.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (index[i] != prefix[i]) return false;
  }
  return true;
}

std::string quote_path(std::string_view path) {
  bool any = false;
  for (char c : path) {
    if (needs_escape(static_cast<unsigned char>(c))) {
      any = true;
      break;
    }
  }
  if (!any) return std::string(path);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char c : path) {
    auto u = static_cast<unsigned char>(c);
    if (needs_escape(u)) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::optional<std::string> try_unquote_path(std::string_view field) {
  if (field.empty() || field.front() != '"') return std::string(field);
  if (field.size() < 2 || field.back() != '"') return std::nullopt;
  std::string out;
  std::string_view inner = field.substr(1, field.size() - 2);
  for (size_t i = 0; i < inner.size(); ++i) {
    if (inner[i] != '\\') {
      out += inner[i];
      continue;
    }
    if (i + 3 >= inner.size()) return std::nullopt;
    if (inner[i + 1] != 'x') return std::nullopt;
    int hi = hex_value(inner[i + 2]);
    int lo = hex_value(inner[i + 3]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 3;
  }
  return out;
}

std::string unquote_path(std::string_view field) {
  auto unquoted = try_unquote_path(field);
  return unquoted ? *std::move(unquoted) : std::string(field);
}

}  // namespace dupfs::chain

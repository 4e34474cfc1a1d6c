// An index is a path relative to the backup root, held as raw byte components (duplicity's
// vocabulary). The root is the empty index, printed as ".". std::vector<std::string>'s operator<
// compares component by component, bytewise (char_traits<char> compares as unsigned char), which
// is exactly duplicity's order.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dupfs::chain {

using Index = std::vector<std::string>;

// "." for the root, else the components joined with '/'.
std::string index_to_string(const Index& index);

// Splits on '/', dropping empty and "." components; "", "." and "./" give the root.
Index index_from_path(std::string_view path);

// True when `prefix` is a (non-strict) prefix of `index`.
bool index_has_prefix(const Index& index, const Index& prefix);

// duplicity's manifest quoting: a path holding whitespace, a backslash or a quote is written
// with each such byte as \xNN inside double quotes; any other path is written raw.
std::string quote_path(std::string_view path);
// Inverse of quote_path; a field not starting with '"' is returned unchanged. A malformed quoted
// field (no closing quote, a backslash not followed by xNN) is also returned unchanged.
std::string unquote_path(std::string_view field);
// Like unquote_path, but nullopt for a malformed quoted field (duplicity's Unquote asserts there).
std::optional<std::string> try_unquote_path(std::string_view field);

}  // namespace dupfs::chain

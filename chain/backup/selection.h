// duplicity's file selection (--include/--exclude and their filelists, first matching rule wins),
// as duplicity's selection.Select applies it; the walk that uses it is in source_walk.h.
//
// Matching follows duplicity 0.8's selection.py and globmatch.py exactly:
// * A pattern is matched against the *local path* of an object: the source root as given,
//   canonicalised like duplicity's Path.get_canonical() ("." components and repeated or trailing
//   slashes dropped; a relative root stays relative), joined with the index by '/'. So patterns
//   must be written the way the source was given: "/src/home" for the source "/src/", "src/home"
//   for the source "./src".
// * Paths and command-line patterns are compared as Unicode code points, decoded from UTF-8 with
//   Python's surrogateescape (each byte of an invalid sequence is its own code point), so '?'
//   matches one character, not one byte. Filelists must be valid UTF-8, as duplicity reads them.
// * `*` matches within one component, `**` across '/', `?` one character but '/', `[...]` a
//   class as in a Python regular expression (ranges, leading '!' or '^' negates; a negated class
//   matches '/' too), "ignorecase:" (any case) lowercases the pattern and compares ignoring case.
// * A pattern matches an object if it matches its local path or a directory above it; an include
//   pattern also asks to *scan* a directory whose path matches a leading part of the pattern (cut
//   after the first `**`): such a directory is selected only if something inside it is. A
//   pattern ending in '/' matches only directories (things inside them match anyway).
// * For each object the rules are tried in order; the first that includes or excludes decides;
//   a scan request earlier than an exclude turns the exclude into a scan. No decision: included.
// * The root is always selected, whatever the rules say.
// * Quirks kept because duplicity has them: Python's '$' also matches before a final newline, so
//   "/src/foo" matches an object named "foo\n"; the check that an "ignorecase:" pattern can match
//   under the root is made with case on the lowercased pattern, so "ignorecase:/Src/x" is refused
//   for the root "/Src".
// * Not reproduced exactly: case-insensitive comparison uses Unicode simple case mappings (glibc's
//   C.UTF-8); Python lowercases a few characters (such as U+0130) into two.
//
// Cost: globs are compiled to bit-parallel automata, and the walk keeps each directory's automaton
// states (Selection::Cursor), so an object costs one run over its own name per rule.
//
// Thread safety: a Selection is immutable after make(); select() and select_entry() may be called
// from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/base/error.h"
#include "chain/format/index.h"

namespace dupfs::chain {

// One selection option as given on the command line, in command-line order.
struct SelectionOption {
  enum class Kind { kInclude, kExclude, kIncludeFilelist, kExcludeFilelist };
  Kind kind;
  std::string value;  // a shell pattern, or the path of a filelist
};

// Settings that change how options are read.
struct SelectionFlags {
  // duplicity's --null-separator: filelist entries are separated by NUL bytes, not newlines.
  bool null_separator = false;
};

// The compiled rules.
//
// make() fails with kInvalidArgument, naming the pattern and where it came from, when duplicity
// refuses to start:
// * a pattern that cannot match anything under the source root ("cannot match any files in the
//   base directory"; a relative pattern such as "foo/*" for an absolute root is one);
// * a pattern with consecutive '/' (before any `**`);
// * an empty pattern or an invalid class range such as "[z-a]" (duplicity crashes on both);
// * an unreadable filelist or one that is not UTF-8;
// * a last rule that only includes (duplicity: "only specifies that files be included ...
//   redundant"): the rules must end with an exclude when there are any.
// Filelist paths are used as given: duplicity's ~ and $VAR expansion is the caller's business.
// Filelist lines are stripped of surrounding whitespace; blank lines and lines starting with '#'
// are skipped; "+ " and "- " prefixes make a line an include or an exclude whatever the list;
// one pair of surrounding quotes (' or ") is then removed.
class Selection {
 public:
  static Result<Selection> make(const std::string& source_root,
                                const std::vector<SelectionOption>& options,
                                const SelectionFlags& flags = {});

  // duplicity's Select.Select: what the rules say about one object.
  enum class Verdict {
    kExclude,  // not selected, and a directory is not entered
    kInclude,  // selected (a directory is entered)
    kScan,     // a directory to enter; selected only if something inside it is selected
  };
  // `local_path` is the object's path as duplicity spells it (local_path_of()); `is_dir` whether
  // it is a directory (only patterns ending in '/' care). The root is not special here.
  Verdict select(std::string_view local_path, bool is_dir) const;

  // The canonical source root patterns are matched against ("/src", "src", ".", "/").
  const std::string& root() const { return root_; }
  // root() joined with the index: the path duplicity matches patterns against and opens.
  std::string local_path_of(const Index& index) const;
  // The number of rules (one per pattern, counting filelist lines).
  size_t rule_count() const;
  // Whether this selection was made for `source_root` (the same root once canonicalised).
  bool made_for(std::string_view source_root) const;

  // Matching one directory at a time, for the walk. A Cursor is the rules' state after the local
  // path of a directory; an entry inside then costs one run over its own name per rule.
  struct Cursor {
    std::vector<uint64_t> d;    // the automata's states
    std::vector<uint8_t> comp;  // per automaton: whether a directory above matched already
  };
  // The cursor after the local path `dir` (for the walk's start: root()).
  Cursor cursor_at(std::string_view dir) const;
  // select() for the entry `name` of the directory whose cursor is `dir` (`dir_is_slash`: that
  // directory is "/", so no '/' separates it from the name). For a directory that is not
  // excluded, `inside` (unless null) receives the cursor after the entry's own path.
  Verdict select_entry(const Cursor& dir, std::string_view name, bool dir_is_slash, bool is_dir,
                       Cursor* inside) const;

 private:
  struct Rules;  // compiled patterns, shared by copies

  Selection() = default;
  // select() for a path already decoded to code points.
  Verdict select_decoded(std::u32string_view path, bool is_dir) const;

  std::string root_;
  std::shared_ptr<const Rules> rules_;
};

}  // namespace dupfs::chain

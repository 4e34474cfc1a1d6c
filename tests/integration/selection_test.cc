// File selection and the source walk against the real duplicity 0.8.22.
//
// * Walks: `duplicity full --no-encryption --no-compression <options> SRC file://OUT`, then
//   `duplicity list-current-files`; the set of paths must equal what walk_source yields for the
//   same options, and walk_source's order must be strictly increasing index order. The tree has
//   names that sort differently bytewise and in a locale (capitals, dots, '_', spaces, UTF-8 and
//   invalid bytes), sockets, symlinks and a fifo. Cases: the FILE SELECTION section of
//   duplicity's man page and the user stories (excluding a directory, including two and
//   excluding everything else, `**/*.tmp`, filelists with +/- lines, an include under an
//   excluded directory), plus a relative source path.
// * Refusals: the options duplicity refuses to start with are refused by Selection::make too.
// * Verdicts: random patterns and paths are given to duplicity's own selection.Select (through
//   /usr/bin/python3 and the installed duplicity modules) and to Selection::select; every
//   verdict (include, exclude, scan) and every refusal must agree.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "chain/backup/source_walk.h"
#include "chain/format/index.h"
#include "tests/support/duplicity.h"
#include "tests/support/process.h"
#include "tests/support/source_tree.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tree.h"

namespace dupfs::test {
namespace {

using chain::Index;
using chain::Selection;
using chain::SelectionOption;
using chain::SourceEntry;
using Kind = SelectionOption::Kind;

constexpr auto kCommandTimeout = std::chrono::seconds(120);

// --------------------------------------------------------------------------------------------
// The tree

void make_dir(const std::string& path) { std::filesystem::create_directories(path); }

void make_file(const std::string& root, const std::string& rel) {
  std::string path = root + "/" + rel;
  make_dir(std::filesystem::path(path).parent_path());
  write_file(path, "content of " + rel + "\n");
}

void make_socket(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof addr.sun_path) << path;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << path;
  ::close(fd);
}

// A tree for the man page's examples (usr/...) and the user stories (home, etc, Videos, ...).
void make_selection_tree(const std::string& root) {
  for (const char* f : {
           "usr/local/bin/prog",
           "usr/local/bin/Prog.sh",
           "usr/local/doc/python/index.html",
           "usr/local/doc/README",
           "usr/local/man/man1/prog.1",
           "usr/local/lib/netscape/x.so",
           "usr/doc/readme",
           "usr/5fOO/hello/there/world.py",
           "usr/5fOO/hello/there/world.txt",
           "usr/5foo/other/deep/mod.PY",
           "usr/Xfoo/a/b.py",
           "usr/share/empty.py",
           "var/log/syslog",
           "var/cache/x.tmp",
           "home/klaus/Videos/holiday.mp4",
           "home/klaus/Documents/letter.txt",
           "home/klaus/Documents/draft.tmp",
           "home/klaus/.cache/thumbs/1.png",
           "home/klaus/.bashrc",
           "home/anna/notes.TMP",
           "home/anna/notes.tmp",
           "home/anna/sub dir/file with spaces.txt",
           "etc/passwd",
           "etc/ssh/sshd_config",
           "src/Videos/clip.mkv",
           "src/main.cc",
           "src/build/main.o",
           "src/build/cache/obj.tmp",
           "Videos/film.mkv",
           "Videos/Shorts/a.mkv",
           "videos/lower.mkv",
           "VIDEOS.txt",
           "B",
           "a",
           "_under",
           ".dot",
           ".dot.d/inner",
           "a b/c d",
           "a-b",
           "a.b",
           "a_b",
           "A",
           "caf\xc3\xa9/menu",
           "\xc3\x84rger.txt",
           "na\xefve.txt",
           "raw\xff\xfe/inner.tmp",
           "tmp.tmp/inside",
           "x.tmp",
           "Z",
       }) {
    make_file(root, f);
  }
  make_dir(root + "/empty");
  make_dir(root + "/usr/local/include");
  make_dir(root + "/home/klaus/cache/");
  make_file(root, "home/klaus/cachefile");
  ASSERT_EQ(::symlink("../etc/passwd", (root + "/home/passwd_link").c_str()), 0);
  ASSERT_EQ(::symlink("usr", (root + "/usr_link").c_str()), 0);
  ASSERT_EQ(::symlink("nowhere", (root + "/home/klaus/dangling").c_str()), 0);
  ASSERT_EQ(::mkfifo((root + "/var/fifo").c_str(), 0644), 0);
  make_socket(root + "/var/socket");
  make_socket(root + "/home/klaus/.cache/sock");
}

// --------------------------------------------------------------------------------------------
// duplicity's side

std::vector<std::string> option_args(const std::vector<SelectionOption>& options) {
  std::vector<std::string> args;
  for (const auto& o : options) {
    switch (o.kind) {
      case Kind::kInclude:
        args.push_back("--include");
        break;
      case Kind::kExclude:
        args.push_back("--exclude");
        break;
      case Kind::kIncludeFilelist:
        args.push_back("--include-filelist");
        break;
      case Kind::kExcludeFilelist:
        args.push_back("--exclude-filelist");
        break;
    }
    args.push_back(o.value);
  }
  return args;
}

// "Thu Nov 26 11:34:24 2026 path": the fixed-width time.asctime() prefix of a listing line.
bool starts_with_time(const std::string& line) {
  return line.size() > 25 && line[3] == ' ' && line[7] == ' ' && line[10] == ' ' &&
         line[13] == ':' && line[16] == ':' && line[19] == ' ' && line[24] == ' ';
}

// The set of paths in `duplicity list-current-files` output ("." for the root).
std::set<std::string> parse_listing(const std::string& out) {
  std::set<std::string> paths;
  std::string current;
  bool have = false;
  size_t at = 0;
  while (at < out.size()) {
    size_t end = out.find('\n', at);
    if (end == std::string::npos) end = out.size();
    std::string line = out.substr(at, end - at);
    at = end + 1;
    if (starts_with_time(line)) {
      if (have) paths.insert(current);
      current = line.substr(25);
      have = true;
    } else if (have) {
      current += "\n" + line;  // a name with a newline in it
    }
  }
  if (have) paths.insert(current);
  return paths;
}

struct DuplicityRun {
  ProcessResult backup;
  std::set<std::string> listed;
};

// A full backup of `source` with the options, and its listing.
DuplicityRun duplicity_selects(const TempDir& tmp, const std::string& name,
                               const std::string& source,
                               const std::vector<SelectionOption>& options) {
  DuplicityRun r;
  const std::string out = tmp.file("out-" + name);
  const std::string cache = tmp.file("cache-" + name);
  const std::map<std::string, std::string> env{{"HOME", tmp.path()}};
  std::vector<std::string> args{"full", "--no-encryption",      "--no-compression", "--archive-dir",
                                cache,  "--no-print-statistics"};
  for (auto& a : option_args(options)) args.push_back(a);
  args.push_back(source);
  args.push_back("file://" + out);
  r.backup = duplicity(args, env, kCommandTimeout);
  if (!r.backup.ok()) return r;
  std::vector<std::string> list{"list-current-files", "--no-encryption", "--archive-dir", cache,
                                "file://" + out};
  ProcessResult listing = duplicity(list, env, kCommandTimeout);
  EXPECT_TRUE(listing.ok()) << describe(list, listing);
  r.listed = parse_listing(listing.out);
  return r;
}

// --------------------------------------------------------------------------------------------
// Our side

struct Walked {
  std::vector<Index> order;
  std::set<std::string> paths;
};

Walked walk(const std::string& source, const Selection& selection) {
  Walked w;
  Status st = chain::walk_source(source, selection, [&](SourceEntry&& e) -> Status {
    w.paths.insert(chain::index_to_string(e.index));
    w.order.push_back(std::move(e.index));
    return {};
  });
  EXPECT_TRUE(st) << st.error().message;
  return w;
}

std::string show_set(const std::set<std::string>& s) {
  std::string out;
  for (const auto& p : s) out += "  " + escape_bytes(p) + "\n";
  return out.empty() ? "  (none)\n" : out;
}

// --------------------------------------------------------------------------------------------
// Walks compared with duplicity

// How the source directory is given to duplicity and to Selection::make.
enum class SourceForm {
  kAbsolute,  // /tmp/dupfs-selection-XXXXXX/src/
  kRelative,  // src, with the current directory the temp dir: the only form whose patterns
              // have no capitals from mkdtemp, which "ignorecase:" would lowercase and
              // duplicity's root check then refuses (see IgnorecaseRootWithCapitalsRefused)
  kUpwards,   // ../../tmp/dupfs-selection-XXXXXX/src, relative to the current directory
};

struct WalkCase {
  std::string name;
  // Patterns and filelist lines may hold "SRC", replaced by the source path as given.
  std::vector<SelectionOption> options;
  std::map<std::string, std::string> filelists;  // name -> content (also with SRC)
  SourceForm form = SourceForm::kAbsolute;
};

// For gtest's messages: the case's name, not its bytes.
void PrintTo(const WalkCase& c, std::ostream* os) { *os << c.name; }

WalkCase walk_case(std::string name, std::vector<SelectionOption> options,
                   std::map<std::string, std::string> filelists = {},
                   SourceForm form = SourceForm::kAbsolute) {
  return WalkCase{std::move(name), std::move(options), std::move(filelists), form};
}

// Changes the current directory for the life of the object (duplicity inherits it).
class CurrentDirectory {
 public:
  explicit CurrentDirectory(const std::string& path) : old_(std::filesystem::current_path()) {
    std::filesystem::current_path(path);
  }
  ~CurrentDirectory() { std::filesystem::current_path(old_); }
  CurrentDirectory(const CurrentDirectory&) = delete;
  CurrentDirectory& operator=(const CurrentDirectory&) = delete;

 private:
  std::filesystem::path old_;
};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

// `path` written relative to the current directory, with one "../" per component of it.
std::string relative_to_cwd(const std::string& absolute) {
  std::string cwd = std::filesystem::current_path();
  std::string rel;
  for (char c : cwd) {
    if (c == '/') rel += "../";
  }
  return rel + absolute.substr(1);
}

class SelectionWalk : public ::testing::TestWithParam<WalkCase> {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new TempDir("dupfs-selection-");
    make_selection_tree(tmp_->file("src"));
  }
  static void TearDownTestSuite() {
    delete tmp_;
    tmp_ = nullptr;
  }
  static TempDir* tmp_;
};
TempDir* SelectionWalk::tmp_ = nullptr;

TEST_P(SelectionWalk, SameAsDuplicity) {
  const WalkCase& c = GetParam();
  std::string source = tmp_->file("src");
  std::optional<CurrentDirectory> cwd;
  if (c.form == SourceForm::kRelative) {
    cwd.emplace(tmp_->path());
    source = "src";
  } else if (c.form == SourceForm::kUpwards) {
    source = relative_to_cwd(source);
  }
  // Patterns are written against the source as given (no trailing slash: duplicity drops it).
  std::vector<SelectionOption> options;
  for (SelectionOption o : c.options) {
    if (o.kind == Kind::kIncludeFilelist || o.kind == Kind::kExcludeFilelist) {
      std::string list = tmp_->file("list-" + c.name + "-" + o.value);
      write_file(list, replace_all(c.filelists.at(o.value), "SRC", source));
      o.value = list;
    } else {
      o.value = replace_all(o.value, "SRC", source);
    }
    options.push_back(o);
  }

  DuplicityRun dup = duplicity_selects(*tmp_, c.name, source + "/", options);
  ASSERT_TRUE(dup.backup.ok()) << describe({"duplicity full ..."}, dup.backup);
  auto selection = Selection::make(source + "/", options);
  ASSERT_TRUE(selection) << selection.error().message;
  Walked ours = walk(source, *selection);

  for (size_t i = 1; i < ours.order.size(); ++i) {
    EXPECT_LT(ours.order[i - 1], ours.order[i])
        << "out of order: " << escape_bytes(chain::index_to_string(ours.order[i - 1])) << " then "
        << escape_bytes(chain::index_to_string(ours.order[i]));
  }
  EXPECT_EQ(ours.order.size(), ours.paths.size());
  ASSERT_FALSE(ours.order.empty());
  EXPECT_TRUE(ours.order[0].empty()) << "the root comes first";

  std::set<std::string> missing, extra;
  std::set_difference(dup.listed.begin(), dup.listed.end(), ours.paths.begin(), ours.paths.end(),
                      std::inserter(missing, missing.end()));
  std::set_difference(ours.paths.begin(), ours.paths.end(), dup.listed.begin(), dup.listed.end(),
                      std::inserter(extra, extra.end()));
  EXPECT_TRUE(missing.empty() && extra.empty())
      << "duplicity backed up but walk_source did not select:\n"
      << show_set(missing) << "walk_source selected but duplicity did not back up:\n"
      << show_set(extra) << "duplicity backed up " << dup.listed.size() << " paths";
  // Guard against a vacuous comparison (an empty listing parse).
  EXPECT_TRUE(dup.listed.count(".")) << show_set(dup.listed);
}

SelectionOption inc(const std::string& p) { return {Kind::kInclude, p}; }
SelectionOption exc(const std::string& p) { return {Kind::kExclude, p}; }
SelectionOption inc_list(const std::string& n) { return {Kind::kIncludeFilelist, n}; }
SelectionOption exc_list(const std::string& n) { return {Kind::kExcludeFilelist, n}; }

INSTANTIATE_TEST_SUITE_P(
    Cases, SelectionWalk,
    ::testing::Values(
        walk_case("NoOptions", {}),
        // User stories
        walk_case("ExcludeVideos", {exc("SRC/home/klaus/Videos")}),
        walk_case("IncludeHomeEtcExcludeAll", {inc("SRC/home"), inc("SRC/etc"), exc("**")}),
        walk_case("IncludeHomeEtcExcludeRoot", {inc("SRC/home"), inc("SRC/etc"), exc("SRC")}),
        walk_case("ExcludeTmpEverywhere", {exc("**/*.tmp")}),
        walk_case("IncludeFilelistWithMinusLines", {inc_list("l")},
                  {{"l",
                    "# what to keep\n"
                    "- SRC/home/klaus/.cache\n"
                    "- **/*.tmp\n"
                    "SRC/home\n"
                    "\n"
                    "SRC/etc\n"
                    "- **\n"}}),
        walk_case("NestedIncludeUnderExcludedDirectory",
                  {exc("SRC/home"), inc("SRC/home/klaus/Documents"), exc("SRC/var")}),
        walk_case("IncludeInsideExcludedDirectoryFirst",
                  {inc("SRC/home/klaus/Documents"), exc("SRC/home"), exc("SRC/var")}),
        // duplicity's man page, FILE SELECTION
        walk_case("ManIncludeExcludeSame", {inc("SRC/usr"), exc("SRC/usr")}),
        walk_case("ManLocalBin", {inc("SRC/usr/local/bin"), exc("SRC/usr/local")}),
        walk_case("ManExcludeLocal", {exc("SRC/usr/local")}),
        walk_case("ManIncludeLocal", {inc("SRC/usr/local"), exc("**")}),
        walk_case("ManIgnorecasePython", {inc("ignorecase:SRC/usr/[a-z0-9]foo/*/**.py"), exc("**")},
                  {}, SourceForm::kRelative),
        walk_case("ManFilelist", {inc_list("l"), exc("**")},
                  {{"l",
                    "SRC/usr/local\n- SRC/usr/local/doc\nSRC/usr/local/bin\n+ SRC/var\n- "
                    "SRC/var\n"}}),
        walk_case("FilelistEndingInExcludeAll", {inc_list("l")},
                  {{"l", "SRC/usr/local/bin\n+ SRC/etc\n- **\n"}}),
        // Globs
        walk_case("StarAndQuestion", {exc("SRC/*/*.tmp"), exc("SRC/?"), exc("SRC/a?b")}),
        walk_case("ClassesAndNonAscii",
                  {exc("SRC/[A-Z]*"), exc("SRC/caf?"), exc("SRC/na?ve.txt"), exc("SRC/[!a]")}),
        walk_case("IgnorecaseVideos", {exc("ignorecase:SRC/videos")}, {}, SourceForm::kRelative),
        walk_case("IgnorecaseMixedCasePattern",
                  {exc("IGNORECASE:SRC/HOME/*/DOCUMENTS"), exc("ignorecase:**/*.TMP")}, {},
                  SourceForm::kRelative),
        walk_case("DirectoriesOnly", {exc("SRC/**/cache/"), exc("SRC/**/tmp.tmp/")}),
        walk_case("RawBytes", {exc("SRC/raw\xff\xfe"), exc("SRC/*\xc3\xa9")}),
        walk_case("IncludeDoubleStarPy", {inc("SRC/**.py"), exc("**")}),
        walk_case("ExcludeFilelistWithPlusLines", {exc_list("l")},
                  {{"l", "+ SRC/home/anna\nSRC/home\n'SRC/a b'\n  SRC/Videos  \n"}}),
        walk_case("IncludeSymlinkAndSocketDirs",
                  {inc("SRC/home/passwd_link"), inc("SRC/var"), exc("**")}),
        walk_case("RelativeSource", {exc("SRC/home"), exc("**/*.tmp")}, {}, SourceForm::kRelative),
        walk_case("UpwardsSource", {exc("SRC/usr"), exc("SRC/*/*.tmp")}, {}, SourceForm::kUpwards)),
    [](const ::testing::TestParamInfo<WalkCase>& info) { return info.param.name; });

// The fixture tree of the other integration tests: every kind of object duplicity stores.
TEST(SelectionEveryKind, SameAsDuplicity) {
  TempDir tmp("dupfs-selection-");
  std::string source = tmp.file("src");
  make_every_kind_tree(source);
  DuplicityRun dup = duplicity_selects(tmp, "every", source, {});
  ASSERT_TRUE(dup.backup.ok()) << describe({"duplicity full ..."}, dup.backup);
  auto selection = Selection::make(source, {});
  ASSERT_TRUE(selection);
  Walked ours = walk(source, *selection);
  EXPECT_EQ(ours.paths, dup.listed) << "ours:\n"
                                    << show_set(ours.paths) << "duplicity:\n"
                                    << show_set(dup.listed);
  EXPECT_FALSE(ours.paths.count(std::string(every_kind::kSocket)));
}

// --------------------------------------------------------------------------------------------
// Unreadable objects, as an unprivileged user (root reads everything)

constexpr uid_t kNobody = 65534;

// Walks in a child process running as nobody; returns the paths in walk order.
std::vector<std::string> walk_as_nobody(const std::string& source,
                                        const std::vector<SelectionOption>& options) {
  ProcessResult r = run_in_child(
      [&]() -> int {
        if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) {
          return 2;
        }
        auto selection = Selection::make(source, options);
        if (!selection) return 3;
        std::string out;
        Status st = chain::walk_source(source, *selection, [&](SourceEntry&& e) -> Status {
          out += chain::index_to_string(e.index);
          out += '\0';
          return {};
        });
        if (!st) return 4;
        for (size_t at = 0; at < out.size();) {
          ssize_t w = ::write(1, out.data() + at, out.size() - at);
          if (w <= 0) return 5;
          at += static_cast<size_t>(w);
        }
        return 0;
      },
      kCommandTimeout);
  EXPECT_FALSE(r.timed_out) << "the walk as nobody timed out";
  EXPECT_EQ(r.exit_code, 0) << "child exit code " << r.exit_code << ": " << r.err;
  const std::string& data = r.out;
  std::vector<std::string> paths;
  for (size_t at = 0; at < data.size();) {
    size_t end = data.find('\0', at);
    paths.push_back(data.substr(at, end - at));
    at = end + 1;
  }
  return paths;
}

TEST(SelectionUnreadable, SameAsDuplicityAsNobody) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to nobody";
  TempDir tmp("dupfs-selection-");
  ASSERT_EQ(::chmod(tmp.path().c_str(), 0755), 0);
  const std::string source = tmp.file("src");
  for (const char* f : {"ok/f", "locked/f", "search_only/f", "list_only/f", "secret", "open",
                        "scan/deep/locked/x.py", "scan/deep/y.py", "scan/unreadable.py"}) {
    make_file(source, f);
  }
  ASSERT_EQ(::chmod((source + "/locked").c_str(), 0700), 0);       // no access at all
  ASSERT_EQ(::chmod((source + "/search_only").c_str(), 0711), 0);  // not readable
  ASSERT_EQ(::chmod((source + "/list_only").c_str(), 0744), 0);    // readable, not searchable
  ASSERT_EQ(::chmod((source + "/secret").c_str(), 0600), 0);
  ASSERT_EQ(::chmod((source + "/scan/deep/locked").c_str(), 0700), 0);
  ASSERT_EQ(::chmod((source + "/scan/unreadable.py").c_str(), 0600), 0);
  const std::string out = tmp.file("out"), cache = tmp.file("cache");
  make_dir(out);
  make_dir(cache);
  ASSERT_EQ(::chown(out.c_str(), kNobody, kNobody), 0);
  ASSERT_EQ(::chown(cache.c_str(), kNobody, kNobody), 0);

  const std::vector<std::vector<SelectionOption>> option_sets{{},
                                                              {inc(source + "/**.py"), exc("**")}};
  for (const auto& options : option_sets) {
    std::filesystem::remove_all(out);
    std::filesystem::remove_all(cache);
    make_dir(out);
    make_dir(cache);
    ASSERT_EQ(::chown(out.c_str(), kNobody, kNobody), 0);
    ASSERT_EQ(::chown(cache.c_str(), kNobody, kNobody), 0);
    const std::map<std::string, std::string> env{{"HOME", tmp.path()}};
    std::vector<std::string> backup{
        "setpriv",        "--reuid=65534", "--regid=65534",        "--clear-groups",
        kDuplicityBinary, "full",          "--no-encryption",      "--no-compression",
        "--archive-dir",  cache,           "--no-print-statistics"};
    for (auto& a : option_args(options)) backup.push_back(a);
    backup.push_back(source);
    backup.push_back("file://" + out);
    ProcessResult b = run(backup, env, kCommandTimeout);
    ASSERT_TRUE(b.ok()) << describe(backup, b);
    std::vector<std::string> list{"setpriv",         "--reuid=65534",  "--regid=65534",
                                  "--clear-groups",  kDuplicityBinary, "list-current-files",
                                  "--no-encryption", "--archive-dir",  cache,
                                  "file://" + out};
    ProcessResult l = run(list, env, kCommandTimeout);
    ASSERT_TRUE(l.ok()) << describe(list, l);
    std::set<std::string> listed = parse_listing(l.out);

    std::vector<std::string> ours = walk_as_nobody(source, options);
    EXPECT_EQ(std::set<std::string>(ours.begin(), ours.end()), listed)
        << "ours:\n"
        << show_set(std::set<std::string>(ours.begin(), ours.end())) << "duplicity:\n"
        << show_set(listed);
    EXPECT_TRUE(std::is_sorted(ours.begin(), ours.end(), [](const auto& a, const auto& b) {
      return chain::index_from_path(a) < chain::index_from_path(b);
    }));
    if (options.empty()) {
      // What duplicity does, spelled out: unreadable files and directories are left out, a
      // directory that can be listed but not searched is kept without its contents.
      EXPECT_FALSE(listed.count("secret"));
      EXPECT_FALSE(listed.count("locked"));
      EXPECT_FALSE(listed.count("search_only"));
      EXPECT_TRUE(listed.count("list_only"));
      EXPECT_FALSE(listed.count("list_only/f"));
      EXPECT_TRUE(listed.count("ok/f"));
    } else {
      EXPECT_TRUE(listed.count("scan/deep/y.py"));
      EXPECT_FALSE(listed.count("scan/unreadable.py"));
    }
  }
}

// --------------------------------------------------------------------------------------------
// Refusals

struct RefusalCase {
  std::string name;
  std::vector<SelectionOption> options;
  std::string our_message;  // a part of Selection::make's message
};

void PrintTo(const RefusalCase& c, std::ostream* os) { *os << c.name; }

class SelectionRefusal : public ::testing::TestWithParam<RefusalCase> {};

TEST_P(SelectionRefusal, BothRefuse) {
  const RefusalCase& c = GetParam();
  TempDir tmp("dupfs-selection-");
  std::string source = tmp.file("src");
  make_file(source, "a/b");
  std::vector<SelectionOption> options;
  for (SelectionOption o : c.options) {
    o.value = replace_all(o.value, "SRC", source);
    options.push_back(o);
  }
  DuplicityRun dup = duplicity_selects(tmp, "refused", source, options);
  EXPECT_FALSE(dup.backup.ok()) << describe({"duplicity full ..."}, dup.backup);
  auto ours = Selection::make(source, options);
  ASSERT_FALSE(ours);
  EXPECT_EQ(ours.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(ours.error().message.find(c.our_message), std::string::npos) << ours.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SelectionRefusal,
    ::testing::Values(
        RefusalCase{"OutsideRoot", {exc("/etc")}, "cannot match any files in the base directory"},
        RefusalCase{"RelativePattern", {exc("a/b")}, "cannot match any files"},
        RefusalCase{"LastIncludes", {exc("SRC/a/b"), inc("SRC/a")}, "only specifies"},
        RefusalCase{"ConsecutiveSlashes", {exc("SRC//a")}, "consecutive '/'"},
        RefusalCase{"BadRange", {exc("SRC/[z-a]")}, "bad character range"},
        RefusalCase{"Empty", {exc("")}, "empty"}),
    [](const ::testing::TestParamInfo<RefusalCase>& info) { return info.param.name; });

// duplicity lowercases an ignorecase: pattern before checking, with case, that it can match the
// root: a root spelled with capitals refuses a pattern spelled like it.
TEST(SelectionRefusalQuirk, IgnorecaseRootWithCapitalsRefused) {
  TempDir tmp("dupfs-selection-");
  make_file(tmp.file("Src"), "a/b");
  CurrentDirectory cwd(tmp.path());
  std::vector<SelectionOption> options{exc("ignorecase:Src/a")};
  DuplicityRun dup = duplicity_selects(tmp, "quirk", "Src", options);
  EXPECT_FALSE(dup.backup.ok()) << describe({"duplicity full ..."}, dup.backup);
  EXPECT_NE((dup.backup.out + dup.backup.err).find("cannot match any files"), std::string::npos)
      << describe({"duplicity full ..."}, dup.backup);
  auto ours = Selection::make("Src", options);
  ASSERT_FALSE(ours);
  EXPECT_NE(ours.error().message.find("cannot match any files"), std::string::npos);
  // Spelled in lowercase it is refused too ("src/a" does not match "Src" with case) ...
  DuplicityRun lower = duplicity_selects(tmp, "quirk-lower", "Src", {exc("ignorecase:src/a")});
  EXPECT_FALSE(lower.backup.ok()) << describe({"duplicity full ..."}, lower.backup);
  EXPECT_FALSE(Selection::make("Src", {exc("ignorecase:src/a")}));
  // ... but a wildcard in place of the capital passes the check, and then case is ignored.
  DuplicityRun wild = duplicity_selects(tmp, "quirk-wild", "Src", {exc("ignorecase:?RC/A")});
  ASSERT_TRUE(wild.backup.ok()) << describe({"duplicity full ..."}, wild.backup);
  auto selection = Selection::make("Src", {exc("ignorecase:?RC/A")});
  ASSERT_TRUE(selection) << selection.error().message;
  EXPECT_EQ(walk("Src", *selection).paths, wild.listed);
  EXPECT_EQ(wild.listed, (std::set<std::string>{"."}));
}

// --------------------------------------------------------------------------------------------
// Verdicts from duplicity's own selection.Select

// Reads cases from stdin (NUL-separated fields) and prints one line per case: the verdicts of
// duplicity's Select for each path (0, 1, 2), or "E" when duplicity refuses the options.
constexpr char kOracle[] = R"PY(
import os, sys, gettext
gettext.install('duplicity')
from duplicity import log
log.setup()
log.setverbosity(log.ERROR)
from duplicity import selection

class FakePath:
    def __init__(self, name, isdir):
        self.uc_name = os.fsdecode(name)
        self.dir = isdir
    def isdir(self):
        return self.dir

fields = sys.stdin.buffer.read().split(b'\0')
pos = 0
def take():
    global pos
    pos += 1
    return fields[pos - 1]
out = []
while pos < len(fields) and fields[pos] == b'CASE':
    take()
    root = take()
    opts = [(take() == b'+', os.fsdecode(take())) for _ in range(int(take()))]
    paths = [(take() == b'd', take()) for _ in range(int(take()))]
    sel = object.__new__(selection.Select)
    sel.selection_functions = []
    sel.rootpath = FakePath(root, True)
    sel.prefix = sel.rootpath.uc_name
    try:
        for include, pattern in opts:
            sel.add_selection_func(sel.glob_get_sf(pattern, 1 if include else 0))
        if sel.selection_functions and not sel.selection_functions[-1].exclude:
            raise Exception('redundant')
    except Exception:
        out.append('E')
        continue
    out.append(''.join(str(sel.Select(FakePath(p, d))) for d, p in paths))
sys.stdout.write('\n'.join(out) + '\n')
)PY";

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }

 private:
  uint64_t state_;
};

struct VerdictCase {
  std::string root;
  std::vector<std::pair<bool, std::string>> options;  // include?, pattern
  std::vector<std::pair<bool, std::string>> paths;    // is_dir, local path
};

VerdictCase random_case(Rng& rng) {
  static const std::vector<std::string> roots{"/r", "/r", "/", "/R", "r", "."};
  static const std::vector<std::string> names{
      "a",        "b",   "A",    "ab",    ".x",  "x.tmp", "a.TMP",    "\xc3\xbc",
      "\xc3\x9c", "ue",  "\xff", "a\xff", "[",   "]",     "-",        "a b",
      "foo\n",    "foo", "F",    "tmp",   "c-d", "\\",    "\xe2\x82", "\xef\xbf\xbd",
      "_",        "9"};
  static const std::vector<std::string> pieces{
      "a",    "b",     "A",      "*",        "**",       "?",  "[a-c]", "[!a]", "[]a]",  "[^b]",
      "x*",   "*.tmp", "**.tmp", "\xc3\xbc", "\xc3\x9c", "?b", "[A-Z]", "\xff", "[",     "foo",
      "[a-]", "[\\]",  "a?",     "*b*",      "[!]]",     ".x", "tmp",   "F",    "[a/b]", "ue"};
  VerdictCase c;
  c.root = rng.pick(roots);
  std::string root_uc = c.root;
  // Paths: the root and things under it.
  c.paths.emplace_back(true, c.root);
  for (int i = 0; i < 30; ++i) {
    std::string p = c.root;
    int depth = 1 + static_cast<int>(rng.below(4));
    for (int d = 0; d < depth; ++d) {
      if (p.back() != '/') p += '/';
      p += rng.pick(names);
    }
    c.paths.emplace_back(rng.below(2) == 0, p);
  }
  // Patterns: mostly under the root, sometimes not.
  int count = 1 + static_cast<int>(rng.below(3));
  for (int i = 0; i < count; ++i) {
    std::string pat;
    switch (rng.below(8)) {
      case 0:
        pat = "**";
        break;
      case 1:
        pat = "/";
        break;
      case 2:
        pat = "**/";
        break;
      case 3:
        pat = "ignorecase:" + c.root;
        break;
      case 4:
        pat = rng.pick(pieces);
        break;
      default:
        pat = c.root;
        break;
    }
    int parts = static_cast<int>(rng.below(4));
    for (int k = 0; k < parts; ++k) {
      if (pat.empty() || pat.back() != '/') pat += '/';
      pat += rng.pick(pieces);
      if (rng.below(6) == 0) pat += rng.pick(pieces);
    }
    if (rng.below(5) == 0) pat += "/";
    if (rng.below(30) == 0) pat += "/x";
    if (pat.empty()) pat = "**";
    bool include = i + 1 < count ? rng.below(2) == 0 : rng.below(10) == 0;
    c.options.emplace_back(include, pat);
  }
  return c;
}

TEST(SelectionVerdicts, RandomPatternsAgreeWithDuplicitysSelect) {
  constexpr int kCases = 3000;
  // DUPFS_SELECTION_SEED picks another set of cases (for hunting differences by hand).
  const char* seed = std::getenv("DUPFS_SELECTION_SEED");
  Rng rng(seed != nullptr ? std::strtoull(seed, nullptr, 10) : 20240611);
  std::vector<VerdictCase> cases;
  std::string input;
  auto field = [&](const std::string& s) {
    input += s;
    input += '\0';
  };
  for (int i = 0; i < kCases; ++i) {
    cases.push_back(random_case(rng));
    const VerdictCase& c = cases.back();
    field("CASE");
    field(c.root);
    field(std::to_string(c.options.size()));
    for (const auto& [include, pattern] : c.options) {
      field(include ? "+" : "-");
      field(pattern);
    }
    field(std::to_string(c.paths.size()));
    for (const auto& [is_dir, path] : c.paths) {
      field(is_dir ? "d" : "f");
      field(path);
    }
  }
  std::vector<std::string> argv{"/usr/bin/python3", "-c", kOracle};
  ProcessResult r = run(argv, {}, kCommandTimeout, input);
  ASSERT_TRUE(r.ok()) << describe({"python3 -c <oracle>"}, r);
  std::vector<std::string> lines;
  for (size_t at = 0; at < r.out.size();) {
    size_t end = r.out.find('\n', at);
    if (end == std::string::npos) end = r.out.size();
    lines.push_back(r.out.substr(at, end - at));
    at = end + 1;
  }
  ASSERT_EQ(lines.size(), cases.size());

  int failures = 0, refused = 0, scans = 0;
  for (size_t i = 0; i < cases.size() && failures < 20; ++i) {
    const VerdictCase& c = cases[i];
    std::vector<SelectionOption> options;
    std::string shown = "root " + escape_bytes(c.root) + ", options:";
    for (const auto& [include, pattern] : c.options) {
      options.push_back({include ? Kind::kInclude : Kind::kExclude, pattern});
      shown += std::string(include ? " --include " : " --exclude ") + escape_bytes(pattern);
    }
    auto selection = Selection::make(c.root, options);
    if (lines[i] == "E") {
      ++refused;
      if (selection) {
        ++failures;
        ADD_FAILURE() << "duplicity refuses, we accept: " << shown;
      }
      continue;
    }
    if (!selection) {
      ++failures;
      ADD_FAILURE() << "we refuse, duplicity accepts: " << shown << ": "
                    << selection.error().message;
      continue;
    }
    ASSERT_EQ(lines[i].size(), c.paths.size()) << shown;
    for (size_t k = 0; k < c.paths.size(); ++k) {
      const auto& [is_dir, path] = c.paths[k];
      Selection::Verdict v = selection->select(path, is_dir);
      char ours = v == Selection::Verdict::kExclude   ? '0'
                  : v == Selection::Verdict::kInclude ? '1'
                                                      : '2';
      if (ours == '2') ++scans;
      if (ours != lines[i][k]) {
        ++failures;
        ADD_FAILURE() << shown << ": " << (is_dir ? "directory " : "file ") << escape_bytes(path)
                      << ": duplicity says " << lines[i][k] << ", we say " << ours;
      }
    }
  }
  std::printf("%d cases, %d refused by both, %d scan verdicts\n", kCases, refused, scans);
  // The generator must exercise every outcome.
  EXPECT_GT(refused, kCases / 20);
  EXPECT_LT(refused, kCases * 3 / 4);
  EXPECT_GT(scans, 100);
}

}  // namespace
}  // namespace dupfs::test

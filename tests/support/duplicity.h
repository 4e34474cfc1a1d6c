// Running the real duplicity (the test oracle, Debian's 0.8.22) from tests.
//
// Thin wrappers over run(): no shell, arguments passed as given. duplicity's argument order is
//   duplicity full|incremental [options] SOURCE_DIR URL
//   duplicity restore [options] URL TARGET_DIR
// and options may appear anywhere. Encryption options (--no-encryption, --encrypt-key, ...) and
// PASSPHRASE/GNUPGHOME belong to the caller.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace dupfs::test {

inline constexpr const char* kDuplicityBinary = "/usr/bin/duplicity";
// The Python duplicity runs on, for scripts that call duplicity's modules as an oracle.
inline constexpr const char* kDuplicityPython = "/usr/bin/python3.11";

// Whether an oracle's answer holds a number beyond int64_t: duplicity's integers are unbounded,
// dupfs's stop there (and refuse what does not fit), so such answers are not compared.
inline bool has_huge_number(const std::string& line) {
  size_t run = 0;
  for (char c : line) {
    run = (c >= '0' && c <= '9') ? run + 1 : 0;
    if (run > 18) return true;
  }
  return false;
}

// The entry lines of a list-current-files listing, duplicity's or dupfs's
// ("Thu Nov 26 14:04:35 2026 path"), without the header lines around them.
std::vector<std::string> listed_entries(const std::string& out);

// The "Verify complete: ..." line of a verify's output, duplicity's or dupfs's ("" without one).
std::string verify_summary(const std::string& out);

// Runs `duplicity args...` with the current environment plus env.
//
// duplicity keeps a local cache (the archive dir) that must never be the real ~/.cache of the user
// running the tests. If args already contain --archive-dir, they are passed unchanged. Otherwise
// env must set HOME (a per-test temp dir), and "--archive-dir HOME/.cache/duplicity" is added
// right after the command word; without either, std::invalid_argument is thrown.
ProcessResult duplicity(const std::vector<std::string>& args,
                        const std::map<std::string, std::string>& env = {},
                        std::chrono::seconds timeout = std::chrono::seconds(600));

// `duplicity restore [--time time] extra... url target`. time may be empty (latest backup); it is
// anything duplicity accepts: a time string such as 2024-01-02T03:04:05Z, seconds since the
// epoch, or an interval like 1h. extra carries encryption options, --archive-dir,
// --file-to-restore,
// --numeric-owner and the like. duplicity refuses an existing target (exit code 11, "Restore
// destination directory ... already exists") unless extra has --force.
ProcessResult duplicity_restore(const std::string& url, const std::string& target,
                                const std::string& time, const std::vector<std::string>& extra = {},
                                const std::map<std::string, std::string>& env = {},
                                std::chrono::seconds timeout = std::chrono::seconds(600));

}  // namespace dupfs::test

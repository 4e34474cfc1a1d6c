// duplicity's actions other than backup, as `dupfs <action>` subcommands. Each group adds its
// subcommands (with duplicity's option names) to the app; a parsed subcommand runs its action
// from its callback and stores the exit code in `exit_code`.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "backends/backend.h"
#include "chain/read/archive.h"

namespace dupfs::cli {

// What every command that reads an archive passes to chain::Archive::open: the passphrase
// (passphrase_for), GNUPGHOME, and the metadata cache (`archive_dir`, or the default for `url`).
chain::ArchiveOptions archive_options(const Backend& backend, const std::string& url,
                                      const std::string& archive_dir);

// collection-status, list-current-files, remove-older-than, remove-all-but-n-full,
// remove-all-inc-of-but-n-full, cleanup (cli/status_actions.cc).
void add_status_actions(CLI::App& app, int& exit_code);

// restore, verify (cli/restore_actions.cc).
void add_restore_actions(CLI::App& app, int& exit_code);

}  // namespace dupfs::cli

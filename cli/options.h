// Option values shared by dupfs's commands: sizes, the passphrase, the metadata cache location.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "backends/backend.h"
#include "backends/error.h"

namespace dupfs::cli {

// "512M", "1G", "64K", "123" (bytes). kInvalidArgument otherwise.
Result<uint64_t> parse_size(const std::string& text);

// PASSPHRASE from the environment (then removed from it, so child processes never see it),
// else a prompt on the terminal when the location holds encrypted files and one is attached;
// nullopt otherwise.
std::optional<std::string> passphrase_for(const Backend& backend);

// ~/.cache/dupfs/<id of the URL> (XDG_CACHE_HOME respected).
std::string default_archive_dir(const std::string& url);

}  // namespace dupfs::cli

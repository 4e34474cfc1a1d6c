#include "cli/actions.h"

#include <cstdlib>

#include "cli/options.h"

namespace dupfs::cli {

chain::ArchiveOptions archive_options(const Backend& backend, const std::string& url,
                                      const std::string& archive_dir) {
  chain::ArchiveOptions options;
  options.credentials.passphrase = passphrase_for(backend);
  if (const char* home = std::getenv("GNUPGHOME")) options.credentials.gnupg_home = home;
  options.archive_dir = archive_dir.empty() ? default_archive_dir(url) : archive_dir;
  return options;
}

}  // namespace dupfs::cli

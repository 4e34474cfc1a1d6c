#include "cli/actions.h"

namespace dupfs::cli {

void add_status_actions(CLI::App&, int&) {}

}  // namespace dupfs::cli

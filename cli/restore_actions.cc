#include "cli/actions.h"

namespace dupfs::cli {

void add_restore_actions(CLI::App&, int&) {}

}  // namespace dupfs::cli

// duplicity's backup statistics: what a run counts, and the block it prints at the end.
#pragma once

#include <cstdint>
#include <string>

namespace dupfs::chain {

// duplicity's statistics (statistics.py, StatsDeltaProcess).
struct BackupStatistics {
  double start_time = 0;
  double end_time = 0;
  int64_t source_files = 0;
  int64_t source_file_size = 0;
  int64_t new_files = 0;
  int64_t new_file_size = 0;
  int64_t deleted_files = 0;
  int64_t changed_files = 0;
  int64_t changed_file_size = 0;
  int64_t changed_delta_size = 0;
  int64_t delta_entries = 0;
  int64_t raw_delta_size = 0;
  int64_t total_destination_size_change = 0;
  int64_t errors = 0;
};

// The block duplicity prints after a backup ("--------------[ Backup Statistics ]---..."),
// times in the local time zone. Ends with a newline.
std::string format_statistics(const BackupStatistics& s);

}  // namespace dupfs::chain

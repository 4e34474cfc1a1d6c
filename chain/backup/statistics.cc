#include "chain/backup/statistics.h"

#include <fmt/core.h>

#include <cmath>
#include <cstdlib>
#include <utility>
#include <vector>

#include "chain/format/dup_time.h"

namespace dupfs::chain {

namespace {

// statistics.py inttopretty for a float number of seconds.
std::string pretty_interval(double seconds) {
  std::vector<std::string> parts;
  double hours = std::floor(seconds / 3600);
  seconds -= hours * 3600;
  if (hours > 1) parts.push_back(fmt::format("{} hours", static_cast<int64_t>(hours)));
  if (hours == 1) parts.push_back("1 hour");
  double minutes = std::floor(seconds / 60);
  seconds -= minutes * 60;
  if (minutes > 1) parts.push_back(fmt::format("{} minutes", static_cast<int64_t>(minutes)));
  if (minutes == 1) parts.push_back("1 minute");
  if (seconds == 1) {
    parts.push_back("1 second");
  } else if (parts.empty() || seconds > 1) {
    parts.push_back(fmt::format("{:.2f} seconds", seconds));
  }
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : " ") + p;
  return out;
}

// statistics.py get_byte_summary_string.
std::string byte_summary(int64_t count) {
  std::string sign = count < 0 ? "-" : "";
  double c = std::fabs(static_cast<double>(count));
  static const std::pair<double, const char*> kUnits[] = {
      {1099511627776.0, "TB"}, {1073741824.0, "GB"}, {1048576.0, "MB"}, {1024.0, "KB"}};
  for (const auto& [unit, name] : kUnits) {
    if (c >= unit) {
      double v = c / unit;
      int precision = v >= 100 ? 0 : v >= 10 ? 1 : 2;
      return fmt::format("{}{:.{}f} {}", sign, v, precision, name);
    }
  }
  int64_t n = std::llabs(count);
  if (n == 1) return sign + "1 byte";
  return fmt::format("{}{} bytes", sign, n);
}

}  // namespace

std::string format_statistics(const BackupStatistics& s) {
  std::string header = "--------------[ Backup Statistics ]--------------";
  std::string out = header + "\n";
  // dup_time.timetopretty of statistics.py's float times (truncated: they are never negative).
  const auto pretty = [](double t) {
    return pretty_time(static_cast<int64_t>(t), Unrepresentable::kStrftime);
  };
  out += fmt::format("StartTime {:.2f} ({})\n", s.start_time, pretty(s.start_time));
  out += fmt::format("EndTime {:.2f} ({})\n", s.end_time, pretty(s.end_time));
  double elapsed = s.end_time - s.start_time;
  out += fmt::format("ElapsedTime {:.2f} ({})\n", elapsed, pretty_interval(elapsed));
  const auto bytes = [&](const char* name, int64_t v) {
    out += fmt::format("{} {} ({})\n", name, v, byte_summary(v));
  };
  out += fmt::format("SourceFiles {}\n", s.source_files);
  bytes("SourceFileSize", s.source_file_size);
  out += fmt::format("NewFiles {}\n", s.new_files);
  bytes("NewFileSize", s.new_file_size);
  out += fmt::format("DeletedFiles {}\n", s.deleted_files);
  out += fmt::format("ChangedFiles {}\n", s.changed_files);
  bytes("ChangedFileSize", s.changed_file_size);
  bytes("ChangedDeltaSize", s.changed_delta_size);
  out += fmt::format("DeltaEntries {}\n", s.delta_entries);
  bytes("RawDeltaSize", s.raw_delta_size);
  bytes("TotalDestinationSizeChange", s.total_destination_size_change);
  out += fmt::format("Errors {}\n", s.errors);
  out += std::string(header.size(), '-') + "\n";
  return out;
}

}  // namespace dupfs::chain

#include "tests/support/duplicity.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace dupfs::test {
namespace {

bool has_archive_dir(const std::vector<std::string>& args) {
  return std::any_of(args.begin(), args.end(), [](const std::string& a) {
    return a == "--archive-dir" || a.starts_with("--archive-dir=");
  });
}

}  // namespace

ProcessResult duplicity(const std::vector<std::string>& args,
                        const std::map<std::string, std::string>& env,
                        std::chrono::seconds timeout) {
  std::vector<std::string> argv{kDuplicityBinary};
  if (has_archive_dir(args)) {
    argv.insert(argv.end(), args.begin(), args.end());
  } else {
    auto home = env.find("HOME");
    if (home == env.end() || home->second.empty()) {
      throw std::invalid_argument(
          "duplicity(): pass --archive-dir or set HOME in env, so the real ~/.cache is not used");
    }
    // After the command word when there is one, so the command line reads naturally.
    size_t at = (!args.empty() && !args[0].starts_with("-")) ? 1 : 0;
    argv.insert(argv.end(), args.begin(), args.begin() + static_cast<std::ptrdiff_t>(at));
    argv.push_back("--archive-dir");
    argv.push_back(home->second + "/.cache/duplicity");
    argv.insert(argv.end(), args.begin() + static_cast<std::ptrdiff_t>(at), args.end());
  }
  return run(argv, env, timeout);
}

ProcessResult duplicity_restore(const std::string& url, const std::string& target,
                                const std::string& time, const std::vector<std::string>& extra,
                                const std::map<std::string, std::string>& env,
                                std::chrono::seconds timeout) {
  std::vector<std::string> args{"restore"};
  if (!time.empty()) {
    args.push_back("--time");
    args.push_back(time);
  }
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(url);
  args.push_back(target);
  return duplicity(args, env, timeout);
}

std::vector<std::string> listed_entries(const std::string& out) {
  static const std::vector<std::string> kDays{"Mon ", "Tue ", "Wed ", "Thu ",
                                              "Fri ", "Sat ", "Sun "};
  std::vector<std::string> lines;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    bool entry = line.size() > 25 && std::any_of(kDays.begin(), kDays.end(),
                                                 [&](auto& d) { return line.starts_with(d); });
    if (entry) lines.push_back(line);
  }
  return lines;
}

std::string verify_summary(const std::string& out) {
  size_t at = out.find("Verify complete:");
  return at == std::string::npos ? std::string() : out.substr(at, out.find('\n', at) - at);
}

}  // namespace dupfs::test

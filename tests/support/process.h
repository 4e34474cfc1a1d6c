// Running child processes from tests without a shell.
//
// run() forks and execs argv directly (execvp-style PATH search, no shell), so arguments may hold
// spaces, quotes, newlines or any other bytes. The child gets its own process group; on timeout the
// whole group is killed with SIGKILL. stdout and stderr are captured separately; stdin is fed from
// a string (empty: the child sees EOF at once).
//
// Thread-safe: each call uses only its own pipes. While writing stdin the calling thread blocks
// SIGPIPE (and swallows one it caused), so a child that exits early never kills the test process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace dupfs::test {

struct ProcessResult {
  // The child's exit status; 128 + N if it died of signal N (as a shell reports it); 127 if argv[0]
  // could not be executed (err then says why).
  int exit_code = -1;
  std::string out;         // everything the child wrote to stdout
  std::string err;         // everything the child wrote to stderr
  bool timed_out = false;  // the timeout expired and the process group was killed

  bool ok() const { return exit_code == 0 && !timed_out; }
};

// A one-paragraph summary (command, exit code, timeout, tails of stdout/stderr) for assertion
// messages: EXPECT_TRUE(r.ok()) << describe(argv, r);
std::string describe(const std::vector<std::string>& argv, const ProcessResult& result);

// Runs argv[0] (searched in PATH when it has no '/') with arguments argv[1..].
// The child's environment is the current one, minus the names in unset_env, with extra_env
// added or replacing existing values. Waits until the child exits (its stdout/stderr are read until
// then; output written afterwards by daemons it left behind is not waited for) or until timeout.
ProcessResult run(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& extra_env = {},
                  std::chrono::seconds timeout = std::chrono::seconds(600),
                  const std::string& stdin_data = "",
                  const std::vector<std::string>& unset_env = {});

// A child process that runs beside the test (a server, a FUSE filesystem, a run to be killed):
// argv[0] started with extra_env added to the environment, stdout and stderr appended to
// log_path and stdin from /dev/null, in its own process group.
// The destructor ends it: SIGTERM, then SIGKILL to the group after 10 s, and waits for it.
class Background {
 public:
  Background(const std::vector<std::string>& argv, const std::string& log_path,
             const std::map<std::string, std::string>& extra_env = {});
  ~Background();
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  pid_t pid() const { return pid_; }
  bool running();  // false once it exited (reaped)

 private:
  pid_t pid_ = -1;
};

// Polls `done` every 20 ms until it returns true (true) or `timeout` passes (false).
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout);

}  // namespace dupfs::test

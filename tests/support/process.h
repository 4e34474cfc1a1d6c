// Running child processes from tests without a shell: the one place tests fork, exec and wait.
//
// run() forks and execs argv directly (execvp-style PATH search, no shell), so arguments may hold
// spaces, quotes, newlines or any other bytes. The child gets its own process group; on timeout the
// whole group is killed with SIGKILL. stdout and stderr are captured separately; stdin is fed from
// a string (empty: the child sees EOF at once). run_in_child() does the same for a function run in
// a forked copy of the test process; Background runs a program beside the test.
//
// Thread-safe: each call uses only its own pipes. While writing stdin the calling thread blocks
// SIGPIPE (and swallows one it caused), so a child that exits early never kills the test process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
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

// Runs `body` in a forked copy of this process (no exec), with stdout and stderr captured, the
// timeout and the process group as run() has them; body's return value is the exit code. For
// code that must run apart from the test process (under another uid, say). The child runs only
// `body`, flushes stdio and _exit()s (no destructors, no atexit handlers); as after any fork,
// body must not need a lock that another thread of the test held at that moment.
ProcessResult run_in_child(const std::function<int()>& body,
                           std::chrono::seconds timeout = std::chrono::seconds(600));

// A child process that runs beside the test (a server, a FUSE filesystem, a run to be killed):
// argv[0] (searched in PATH when it has no '/') started with extra_env added to the environment,
// stdout and stderr appended to log_path and stdin from /dev/null, in its own process group.
// The destructor ends it if it still runs: SIGTERM, then SIGKILL to the group after 10 s, and
// waits for it. Exit codes are reported as run() reports them (128 + N for signal N).
class Background {
 public:
  Background(const std::vector<std::string>& argv, const std::string& log_path,
             const std::map<std::string, std::string>& extra_env = {});
  ~Background();
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  // Its process id; -1 once it has been waited for (a reused id is never signalled, and -1 is
  // never passed to kill(2) by signal()).
  pid_t pid() const { return pid_; }
  bool running();  // false once it exited (reaped)
  // Sends `sig` to the process (not its group); false, and nothing sent, once it was reaped.
  bool signal(int sig);
  // Waits up to `timeout` for it to exit: its exit code, or nullopt while it still runs. Once it
  // exited, every call returns that code at once (-1 if somebody else reaped it).
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // Ends it now: SIGKILL to its process group (stopped processes die too), then waits for it.
  // Its exit code (that of its earlier exit if it was no longer running).
  int kill();

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// Polls `done` every 20 ms until it returns true (true) or `timeout` passes (false).
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout);

}  // namespace dupfs::test

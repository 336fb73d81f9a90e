// ChildProcess: a program sessiond-bench started (a sessiond node, a redis-server), which it must
// be able to kill -9 mid-run and must never leave behind.
//
// The child gets its own process group (so a terminal's Ctrl-C reaches only the bench, which then
// stops its children in order) and PR_SET_PDEATHSIG=SIGKILL (so it dies even if the bench is
// killed with -9 and cleans up nothing). Linux delivers that signal when the *thread* that forked
// exits, so spawn from a thread that outlives the child (the bench's main thread).
// stdout and stderr go to a log file, whose tail explains an early exit.
//
// Threading: one owner; not thread-safe, except pid() which is fixed after Spawn.
#ifndef SESSIOND_TOOLS_BENCH_CHILD_PROCESS_H_
#define SESSIOND_TOOLS_BENCH_CHILD_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sessiond/status.h"

namespace sessiond::bench {

class ChildProcess {
 public:
  // Starts `argv[0]` (a path, or a name looked up in PATH) with `argv`, output appended to
  // `log_path`. INTERNAL with the reason when fork/exec fails; a program that cannot be executed
  // shows as an early exit (status 127) with the reason in the log.
  static Result<std::unique_ptr<ChildProcess>> Spawn(const std::vector<std::string>& argv,
                                                     const std::string& log_path);

  // Kills (SIGKILL) and reaps the child if it still runs.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  const std::vector<std::string>& argv() const { return argv_; }

  // True while the child has not exited (reaps it if it has).
  bool Running();
  // Sends `signal` to the child. No-op once it has exited.
  void Signal(int signal);
  // Waits up to `timeout` for the child to exit; true if it has.
  bool WaitForExit(std::chrono::milliseconds timeout);
  // SIGTERM, then SIGKILL if it has not exited within `grace`. Returns once it has exited.
  void Stop(std::chrono::milliseconds grace);

  // How it ended, once it has: "exited with status 1" or "killed by signal 9".
  std::optional<std::string> ExitDescription();

  // Resident set size (VmRSS) in bytes, from /proc; nullopt once exited or unreadable.
  std::optional<uint64_t> ResidentBytes() const;
  // CPU time it has used so far, user plus system, in seconds (/proc/PID/stat); nullopt once it
  // has exited.
  std::optional<double> CpuSeconds() const;

  // The last `max_lines` lines of the log (for error messages).
  std::string LogTail(size_t max_lines = 5) const;

 private:
  ChildProcess(pid_t pid, std::vector<std::string> argv, std::string log_path)
      : pid_(pid), argv_(std::move(argv)), log_path_(std::move(log_path)) {}
  void Reap(bool block);

  pid_t pid_;
  std::vector<std::string> argv_;
  std::string log_path_;
  std::optional<int> wait_status_;  // set once reaped
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_CHILD_PROCESS_H_

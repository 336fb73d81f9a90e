// ProgressLine: the one live status line sessiond-bench keeps on stderr while it runs.
//
// On a terminal the line is rewritten in place; otherwise (CI logs, a pipe) a line is printed at
// most every `plain_interval`, so logs stay readable.
//
// Threading: one owner (the bench's main thread).
#ifndef SESSIOND_TOOLS_BENCH_PROGRESS_LINE_H_
#define SESSIOND_TOOLS_BENCH_PROGRESS_LINE_H_

#include <chrono>
#include <cstdio>
#include <string>

namespace sessiond::bench {

class ProgressLine {
 public:
  explicit ProgressLine(std::FILE* out = stderr,
                        std::chrono::milliseconds plain_interval = std::chrono::seconds(5));
  ~ProgressLine() { Finish(); }

  // Shows `text` as the current status.
  void Update(const std::string& text);
  // Prints a message of its own on a line, keeping the status line below it.
  void Message(const std::string& text);
  // Ends the status line (so later output starts on a fresh line).
  void Finish();

 private:
  std::FILE* out_;
  bool tty_;
  std::chrono::milliseconds plain_interval_;
  std::chrono::steady_clock::time_point last_plain_{};
  std::string shown_;  // what the terminal line shows now, "" when none
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_PROGRESS_LINE_H_

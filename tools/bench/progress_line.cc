#include "tools/bench/progress_line.h"

#include <unistd.h>

namespace sessiond::bench {

ProgressLine::ProgressLine(std::FILE* out, std::chrono::milliseconds plain_interval)
    : out_(out), tty_(::isatty(::fileno(out)) == 1), plain_interval_(plain_interval) {}

void ProgressLine::Update(const std::string& text) {
  if (tty_) {
    // \r to the line start, ESC[K to erase what a longer previous line left.
    std::fprintf(out_, "\r\033[K%s", text.c_str());
    std::fflush(out_);
    shown_ = text;
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (now - last_plain_ < plain_interval_) return;
  last_plain_ = now;
  std::fprintf(out_, "%s\n", text.c_str());
  std::fflush(out_);
}

void ProgressLine::Message(const std::string& text) {
  if (tty_ && !shown_.empty()) {
    std::fprintf(out_, "\r\033[K%s\n%s", text.c_str(), shown_.c_str());
  } else {
    std::fprintf(out_, "%s\n", text.c_str());
  }
  std::fflush(out_);
}

void ProgressLine::Finish() {
  if (tty_ && !shown_.empty()) {
    std::fprintf(out_, "\r\033[K");
    std::fflush(out_);
  }
  shown_.clear();
}

}  // namespace sessiond::bench

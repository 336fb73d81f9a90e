// sessiond: parse the configuration, run the daemon, exit with its code.
#include <cstdio>
#include <exception>

#include "sessiond/config.h"
#include "sessiond/daemon.h"
#include "sessiond/malloc_tuning.h"

int main(int argc, char** argv) {
  // Before any thread starts: a joining node's transfer worker builds ~1 GB of blocks.
  if (sessiond::TuneMalloc().refused)
    std::fputs("sessiond: glibc refused a malloc setting\n", stderr);
  sessiond::ParsedCommandLine parsed = sessiond::ParseDaemonConfig(argc, argv);
  if (!parsed.config) {
    std::fputs(parsed.output.c_str(), parsed.exit_code == 0 ? stdout : stderr);
    return parsed.exit_code;
  }
  try {
    sessiond::Daemon daemon(std::move(*parsed.config));
    return daemon.Run();
  } catch (const std::exception& e) {
    // Only start-up can throw (Asio reports a failure to set up the loop or signals this way).
    std::fprintf(stderr, "sessiond: cannot start: %s\n", e.what());
    return 1;
  }
}

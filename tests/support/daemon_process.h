// DaemonProcess: a real sessiond process for an integration test, on loopback and port 0.
//
//   DaemonProcess node("n1");
//   ASSERT_TRUE(node.Start({"--mode", "standalone", "--node-id", "n1"}));
//   auto client = node.Connect();
//
// Start() runs SESSIOND_BIN_DIR/sessiond with the given flags plus, unless they already name
// them, `--listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --peer-listen 127.0.0.1:0 --port-file
// DIR/ports.json`, then waits (bounded) for the port file the daemon writes once it listens.
// The child's stdout and stderr go to DIR/sessiond.log, DIR being a fresh directory per
// DaemonProcess; a failed start reports the log's tail. The child is killed if the test process
// dies (PR_SET_PDEATHSIG), and by the destructor if still running. The directory is removed
// when the test passed and kept (its path printed) when it failed.
//
// Threading: use a DaemonProcess from one test thread.
#ifndef SESSIOND_TESTS_SUPPORT_DAEMON_PROCESS_H_
#define SESSIOND_TESTS_SUPPORT_DAEMON_PROCESS_H_

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sessiond/client.h"
#include "sessiond/endpoint.h"
#include "sessiond/status.h"

namespace sessiond::test {

// An HTTP answer from the admin endpoint.
struct HttpReply {
  int status = 0;
  std::string body;
};

class DaemonProcess {
 public:
  // `name` appears in the directory name and in failure messages (e.g. the node id).
  explicit DaemonProcess(std::string name = "sessiond");
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  // Spawns the daemon and waits up to `timeout` for its port file. May be called again after
  // the process exited (a restart: same directory, the log is appended to). Fails with the
  // log's tail when the daemon exits or writes no port file in time.
  ::testing::AssertionResult Start(std::vector<std::string> args = {},
                                   std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // True while the child has not been reaped (it may have exited but not been waited for).
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  uint16_t client_port() const { return client_port_; }
  uint16_t peer_port() const { return peer_port_; }
  uint16_t admin_port() const { return admin_port_; }
  const std::string& unix_path() const { return unix_path_; }
  // The client endpoint, 127.0.0.1:client_port.
  Endpoint endpoint() const;
  std::string endpoint_text() const;
  // "127.0.0.1:peer_port", for another node's --peers.
  std::string peer_text() const;
  std::string admin_text() const;

  // Options for a client of this daemon alone.
  ClientOptions client_options() const;
  // A blocking client connected to this daemon.
  Result<std::unique_ptr<Client>> Connect() const;

  // SIGKILL, then reaps the process.
  void Kill9();
  // SIGTERM (graceful shutdown); WaitExit() then says how it ended.
  void Terminate();
  // Waits up to `timeout` for the process to exit and reaps it. Returns its exit code, 128 +
  // the signal number if a signal ended it, or -1 if it is still running after `timeout`.
  // After the process was reaped, returns how it ended.
  int WaitExit(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // GET `path` from the admin endpoint; UNAVAILABLE when it cannot be reached in `timeout`.
  Result<HttpReply> HttpGet(const std::string& path,
                            std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;

  // The last `lines` lines of the daemon's log.
  std::string LogTail(size_t lines = 40) const;
  const std::string& dir() const { return dir_; }
  const std::string& log_path() const { return log_path_; }

 private:
  // Reads the port file; false until it is complete.
  bool ReadPortFile();

  const std::string name_;
  std::string dir_;
  std::string log_path_;
  std::string port_file_;
  pid_t pid_ = -1;
  int exit_status_ = -1;  // as WaitExit returns it, once reaped
  uint16_t client_port_ = 0;
  uint16_t peer_port_ = 0;
  uint16_t admin_port_ = 0;
  std::string unix_path_;
};

// GET `path` from HOST:PORT over a plain blocking socket with `timeout` per read and write.
Result<HttpReply> HttpGet(const std::string& host, uint16_t port, const std::string& path,
                          std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace sessiond::test

#endif  // SESSIOND_TESTS_SUPPORT_DAEMON_PROCESS_H_

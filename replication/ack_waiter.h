// AckWaiter: writes waiting for peers to confirm a change (--replication-ack sync).
//
// The clustered modes answer a sync write only when every peer the change must reach has
// confirmed it. A waiter holds the peers still expected, a deadline, and the outcome: OK once
// the last expected peer is released (it acked, died or left), or whatever the mode decides at
// the deadline. Several writes may share one waiter (the changes of one event-loop turn).
//
// Threading: on the manager's event loop, like the manager that owns it.
#ifndef SESSIOND_REPLICATION_ACK_WAITER_H_
#define SESSIOND_REPLICATION_ACK_WAITER_H_

#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "sessiond/asio.h"
#include "sessiond/status.h"

namespace sessiond {

class AckWaiter {
 public:
  AckWaiter(const asio::any_io_executor& executor, std::chrono::milliseconds timeout)
      : deadline_(executor) {
    deadline_.expires_after(timeout);
  }

  // Waits for `node` too. A node that is not `required` (a proxy told of a new session, say)
  // is waited for, but missing it at the deadline need not fail the write.
  void Expect(std::string_view node, bool required = true) {
    waiting_.emplace(node);
    if (!required) best_effort_.emplace(node);
  }
  // `node` no longer holds the write up (it acked, died or left); the last one finishes it OK.
  void Release(std::string_view node) {
    auto it = waiting_.find(node);
    if (it == waiting_.end()) return;
    waiting_.erase(it);
    if (waiting_.empty()) Finish(Status::Ok());
  }
  // Ends the wait with `status` (the first outcome wins) and runs the OnFinish callback.
  void Finish(Status status) {
    if (done_) return;
    done_ = true;
    status_ = std::move(status);
    deadline_.cancel();
    if (on_finish_) std::exchange(on_finish_, nullptr)();
  }
  // Called once, when the wait ends: where the owner drops its bookkeeping of this waiter.
  void OnFinish(std::function<void()> callback) { on_finish_ = std::move(callback); }

  bool done() const { return done_; }
  const std::set<std::string, std::less<>>& waiting() const { return waiting_; }
  // Whether every peer still waited for was expected as not required.
  bool OnlyBestEffortLeft() const {
    for (const std::string& node : waiting_) {
      if (best_effort_.count(node) == 0) return false;
    }
    return true;
  }

  // Suspends until the wait ends and returns its outcome. At the deadline the outcome is what
  // `at_deadline` makes of the peers still waited for. A waiter that expects nobody yet keeps
  // waiting (its peers may be named after the write joined it, when its batch is sent).
  asio::awaitable<Status> Wait(std::function<Status(const AckWaiter&)> at_deadline) {
    while (!done_) {
      boost::system::error_code ec;
      co_await deadline_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (done_ || ec) continue;
      Finish(at_deadline(*this));
    }
    co_return status_;
  }

 private:
  asio::steady_timer deadline_;
  std::set<std::string, std::less<>> waiting_;
  std::set<std::string, std::less<>> best_effort_;
  bool done_ = false;
  Status status_;
  std::function<void()> on_finish_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_ACK_WAITER_H_

// ConnectionContext: what a request needs from the client connection it arrived on, beyond its
// one response: a way to push later responses (watch events) and a place to keep a watch alive.
//
// ClientConnection implements it; request handler tests implement it with a recording fake.
// Threading: every method is called on the connection's (and the manager's) event loop.
#ifndef SESSIOND_SESSIOND_CONNECTION_CONTEXT_H_
#define SESSIOND_SESSIOND_CONNECTION_CONTEXT_H_

#include <cstdint>
#include <memory>

#include "replication/session_manager.h"
#include "sessiond/status.h"
#include "sessiond/v1/sessiond.pb.h"

namespace sessiond {

class ConnectionContext {
 public:
  virtual ~ConnectionContext() = default;

  // Queues `event` as a response carrying `watch_request_id`. Called from inside a manager's
  // event dispatch, so it must neither block nor call back into the manager; a connection that
  // cannot keep up ends itself (later, outside the dispatch) rather than buffer without bound.
  virtual void PushWatchEvent(uint64_t watch_request_id, const v1::SessionEvent& event) = 0;

  // Keeps `handle` until the connection closes. Returns RESOURCE_EXHAUSTED (and drops the handle,
  // ending that watch) when the connection already holds as many watches as it may.
  virtual Status AdoptWatch(std::unique_ptr<WatchHandle> handle) = 0;
};

}  // namespace sessiond

#endif  // SESSIOND_SESSIOND_CONNECTION_CONTEXT_H_

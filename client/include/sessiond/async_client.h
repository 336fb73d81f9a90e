// AsyncClient: the coroutine API of the sessiond client library.
//
// One connection to the first reachable endpoint of a list; every call is one request on it,
// and concurrent calls are pipelined (each response is matched by request_id). When the
// connection breaks, calls in flight fail with UNAVAILABLE (they are not retried: a write may
// or may not have been applied) and the next call connects again, trying the next endpoint of
// the list first. Every call has a deadline; a call that misses it fails with UNAVAILABLE.
//
// Threading: an AsyncClient belongs to one executor; call it only from coroutines running on
// that executor (an io_context run by one thread, or a strand).
#ifndef SESSIOND_ASYNC_CLIENT_H_
#define SESSIOND_ASYNC_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sessiond/asio.h"
#include "sessiond/endpoint.h"
#include "sessiond/frame.h"
#include "sessiond/status.h"
#include "sessiond/v1/sessiond.pb.h"

namespace sessiond {

struct ClientOptions {
  // Tried in order; the first that accepts a connection is used.
  std::vector<Endpoint> endpoints;
  std::chrono::milliseconds connect_timeout{1000};
  // Deadline of a call that names none.
  std::chrono::milliseconds default_deadline{5000};
  FrameOptions frames;
};

// Zero means the ClientOptions' default_deadline.
using Deadline = std::chrono::milliseconds;

class AsyncClient {
 public:
  AsyncClient(asio::any_io_executor executor, ClientOptions options);
  ~AsyncClient();
  AsyncClient(const AsyncClient&) = delete;
  AsyncClient& operator=(const AsyncClient&) = delete;

  // Connects now rather than at the first call. UNAVAILABLE when no endpoint accepts.
  asio::awaitable<Status> Connect();

  asio::awaitable<Result<v1::Session>> Create(v1::CreateRequest request, Deadline deadline = {});
  asio::awaitable<Result<v1::Session>> Get(std::string id, bool touch = false,
                                           Deadline deadline = {});
  asio::awaitable<Result<v1::Session>> Update(v1::UpdateRequest request, Deadline deadline = {});
  asio::awaitable<Status> Invalidate(std::string id, Deadline deadline = {});
  asio::awaitable<Result<v1::Session>> RotateId(std::string id, Deadline deadline = {});
  asio::awaitable<Result<std::vector<v1::Session>>> FindByPrincipal(std::string principal,
                                                                    Deadline deadline = {});
  asio::awaitable<Status> Ping(Deadline deadline = {});
  asio::awaitable<Result<v1::NodeStats>> Stats(Deadline deadline = {});

  // Starts a watch (all sessions when `ids` is empty). Once the daemon has answered OK, `on_event`
  // is called on this client's executor for every event until the watch ends; `on_end` is called
  // once when it ends (connection lost or client closed) with the reason.
  // Returns the watch's request id, which CancelWatch takes.
  asio::awaitable<Result<uint64_t>> Watch(std::vector<std::string> ids,
                                          std::function<void(const v1::SessionEvent&)> on_event,
                                          std::function<void(const Status&)> on_end = {},
                                          Deadline deadline = {});
  // Stops delivering a watch's events locally (the protocol has no unwatch; the daemon's side
  // ends with the connection).
  void CancelWatch(uint64_t watch_id);

  // Sends any request (request_id is assigned here) and returns the daemon's response as is,
  // whatever its status. Transport failures and missed deadlines return UNAVAILABLE.
  asio::awaitable<Result<v1::ClientResponse>> Call(v1::ClientRequest request,
                                                   Deadline deadline = {});

  // Closes the connection; calls in flight fail with UNAVAILABLE.
  void Close();

  // The endpoint of the current connection, or "" when not connected.
  std::string connected_endpoint() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sessiond

#endif  // SESSIOND_ASYNC_CLIENT_H_

// Client: the blocking API of the sessiond client library.
//
// A thin wrapper over AsyncClient with its own I/O thread. It is thread-safe: calls from many
// threads at once share one connection and are pipelined on it. Semantics (failover, deadlines,
// UNAVAILABLE on a broken connection) are AsyncClient's.
#ifndef SESSIOND_CLIENT_H_
#define SESSIOND_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sessiond/async_client.h"
#include "sessiond/status.h"
#include "sessiond/v1/sessiond.pb.h"

namespace sessiond {

class WatchStream;

class Client {
 public:
  // Connects to the first endpoint that accepts. UNAVAILABLE when none does.
  static Result<std::unique_ptr<Client>> Connect(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Result<v1::Session> Create(const v1::CreateRequest& request, Deadline deadline = {});
  Result<v1::Session> Get(const std::string& id, bool touch = false, Deadline deadline = {});
  Result<v1::Session> Update(const v1::UpdateRequest& request, Deadline deadline = {});
  Status Invalidate(const std::string& id, Deadline deadline = {});
  Result<v1::Session> RotateId(const std::string& id, Deadline deadline = {});
  Result<std::vector<v1::Session>> FindByPrincipal(const std::string& principal,
                                                   Deadline deadline = {});
  Status Ping(Deadline deadline = {});
  Result<v1::NodeStats> Stats(Deadline deadline = {});

  // Starts a watch; its events are read with WatchStream::Next.
  Result<std::unique_ptr<WatchStream>> Watch(const std::vector<std::string>& ids,
                                             Deadline deadline = {});

  // Sends any request and returns the response as is (see AsyncClient::Call).
  Result<v1::ClientResponse> Call(const v1::ClientRequest& request, Deadline deadline = {});

 private:
  class Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class WatchStream;
};

// The events of one watch, buffered (bounded) until read.
class WatchStream {
 public:
  ~WatchStream();
  // The next event; UNAVAILABLE once the watch has ended (the reason in the message), or when
  // `timeout` passes with no event (then the stream is still usable).
  Result<v1::SessionEvent> Next(std::chrono::milliseconds timeout);

 private:
  friend class Client;
  class Impl;
  explicit WatchStream(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace sessiond

#endif  // SESSIOND_CLIENT_H_

// RedisPool: a few pipelined connections to one Redis, each re-established in the background
// with backoff whenever it is lost, used round-robin or (kFirstUp) one at a time with the others
// standing by.
//
// While no connection is up, commands fail at once with UNAVAILABLE and a sentence that says
// why (the last connection error) and that sessiond is reconnecting; nothing waits for Redis to
// come back. Every new connection authenticates and selects the database (RedisConnection),
// then runs the pool's set-up commands (SCRIPT LOAD, CLIENT TRACKING...) before it serves.
//
// Threading: one single-threaded executor, as RedisConnection. The pool's background work
// holds shared state, so the pool may be destroyed at any time; Stop() (or the destructor)
// closes every connection.
#ifndef SESSIOND_REPLICATION_REDIS_REDIS_POOL_H_
#define SESSIOND_REPLICATION_REDIS_REDIS_POOL_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "replication/redis/redis_command.h"
#include "replication/redis/redis_connection.h"
#include "replication/redis/redis_reply.h"
#include "replication/redis/redis_url.h"
#include "sessiond/asio.h"
#include "sessiond/status.h"

namespace sessiond {

struct RedisPoolOptions {
  size_t connections = 4;
  enum class Use {
    // Commands go to the connections in turn.
    kRoundRobin,
    // Every command goes to the first connection that is up; the others take over when it
    // drops. Redis runs commands one at a time whatever the connection, and commands sent
    // together on one connection are read, run and answered together: one read and one write
    // for a whole batch, on both sides, where connections in turn each carry a smaller one.
    kFirstUp,
  };
  Use use = Use::kRoundRobin;
  RedisConnectionOptions connection;
  // Waits between reconnection attempts of one connection (see Backoff).
  std::chrono::milliseconds backoff_initial{50};
  std::chrono::milliseconds backoff_max{2000};
};

class RedisPool {
 public:
  // The commands a new connection runs before it serves. Called at every connect, so it may
  // answer differently each time; a non-OK result, an error reply or a failure drops that
  // connection, which then retries after its backoff.
  using SetupCommands = std::function<Result<std::vector<RedisCommand>>()>;
  // Told, on the executor, whenever one of the pool's connections closes after it had served.
  using ClosedHandler = std::function<void(const Status& reason)>;

  RedisPool(asio::any_io_executor executor, RedisUrl url, RedisPoolOptions options);
  RedisPool(const RedisPool&) = delete;
  RedisPool& operator=(const RedisPool&) = delete;
  ~RedisPool();

  // Call before Start().
  void SetSetupCommands(SetupCommands setup);
  void SetClosedHandler(ClosedHandler handler);

  // Begins connecting every connection in the background; returns at once.
  void Start();
  // Closes every connection and ends the background work. Pending commands fail UNAVAILABLE.
  void Stop();

  // Sends `command` on the next connection that is up and returns its reply (possibly an error
  // reply). UNAVAILABLE when none is up or the connection fails meanwhile.
  asio::awaitable<Result<RedisReply>> Execute(RedisCommand command);
  // Sends `commands` together on one connection; their replies in order.
  asio::awaitable<Result<std::vector<RedisReply>>> ExecuteAll(std::vector<RedisCommand> commands);

  // Returns true once at least one connection is up, false if `timeout` passes first.
  asio::awaitable<bool> WaitConnected(std::chrono::milliseconds timeout);

  // Closes every connection now with `reason`; each reconnects after its backoff and runs the
  // set-up commands again (used when what they set up has become stale). Every connection
  // that serves after this call ran its set-up commands after it, including one that was
  // half-way through set-up when it was made.
  void DropAll(const Status& reason);

  // Connections up now.
  size_t connected() const;
  // Why the last connection attempt failed or the last connection closed; OK before any.
  Status last_error() const;
  // Connections established since Start().
  uint64_t connects() const;
  // The sentence a request gets while no connection is up.
  Status UnreachableStatus() const;

 private:
  struct State;
  static asio::awaitable<void> MaintainSlot(std::shared_ptr<State> state, size_t index);
  static asio::awaitable<Status> RunSetup(std::shared_ptr<State> state,
                                          std::shared_ptr<RedisConnection> connection);

  std::shared_ptr<State> state_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_REDIS_REDIS_POOL_H_

// RedisConnection: one TCP connection to Redis, pipelined; TLS over it for rediss:// URLs
// (RedisStream), the same for every kind of connection (pool, subscriber, near cache).
//
// Commands are written as soon as they are submitted (those submitted while a write is in
// flight go out together in the next one) and their replies are matched in order against a
// FIFO of pending commands, as RESP requires. Every command has a deadline: when the oldest
// pending command passes it, Redis is taken to be gone, the connection is closed and every
// pending command fails UNAVAILABLE, since the replies still to come could no longer be
// matched to anything. A closed connection stays closed; RedisPool and RedisSubscriber make new
// ones.
//
// In subscriber mode (SetPushHandler), pub/sub "message" and "pmessage" arrays go to the push
// handler instead of the FIFO; replies to SUBSCRIBE and PING still match their commands.
//
// Threading: everything runs on the executor given to Connect, which must be single-threaded
// (or a strand); call every method from it. The object keeps itself alive while its read,
// write and deadline coroutines run, so callers may drop their pointer at any time.
#ifndef SESSIOND_REPLICATION_REDIS_REDIS_CONNECTION_H_
#define SESSIOND_REPLICATION_REDIS_REDIS_CONNECTION_H_

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "replication/redis/redis_command.h"
#include "replication/redis/redis_reply.h"
#include "replication/redis/redis_stream.h"
#include "replication/redis/redis_tls_context.h"
#include "replication/redis/redis_url.h"
#include "sessiond/asio.h"
#include "sessiond/status.h"

struct redisReader;  // hiredis

namespace sessiond {

struct RedisConnectionOptions {
  // Bounds name resolution, the TCP connect, the TLS handshake and the AUTH/SELECT handshake
  // together.
  std::chrono::milliseconds connect_timeout{1000};
  // How long a command may wait for its reply before the connection is declared dead.
  std::chrono::milliseconds command_timeout{1000};
  // Commands awaiting replies on this connection; more fail UNAVAILABLE at once.
  size_t max_pending = 16384;
  // CLIENT SETNAME, so operators can tell sessiond's connections apart; "" = none.
  std::string client_name;
  // TLS settings for a rediss:// URL, shared by every connection made with these options;
  // ignored for redis://. Null with rediss:// means the system trust store and no client
  // certificate.
  std::shared_ptr<RedisTlsContext> tls;
};

class RedisConnection : public std::enable_shared_from_this<RedisConnection> {
 public:
  using Replies = std::vector<RedisReply>;
  // A pub/sub message: the whole ["message", channel, payload] array.
  using PushHandler = std::function<void(RedisReply message)>;
  // Called once, on the executor, when the connection closes for any reason.
  using CloseHandler = std::function<void(const Status& reason)>;

  // Resolves and connects to url.host:url.port, runs the TLS handshake when url.tls (the
  // server's certificate checked against url.host), then authenticates, selects url.db, names
  // the client and PINGs, all within options.connect_timeout. UNAVAILABLE, with a sentence
  // naming the Redis and what went wrong, when any step fails.
  static asio::awaitable<Result<std::shared_ptr<RedisConnection>>> Connect(
      asio::any_io_executor executor, RedisUrl url, RedisConnectionOptions options);

  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;
  ~RedisConnection();

  // Sends `command` and returns its reply, which may be an error reply (that is Redis's
  // answer). UNAVAILABLE when the connection is or becomes closed, or the deadline passes.
  asio::awaitable<Result<RedisReply>> Execute(RedisCommand command);
  // Sends `commands` in one write and returns their replies in order; all or nothing.
  // REQUIRES: not empty.
  asio::awaitable<Result<Replies>> ExecuteAll(std::vector<RedisCommand> commands);
  // Sends one command that Redis answers with `replies` replies (SUBSCRIBE a b c answers three
  // times). REQUIRES: replies > 0.
  asio::awaitable<Result<Replies>> ExecuteExpecting(RedisCommand command, size_t replies);

  // Routes pub/sub messages to `handler` from now on (subscriber mode).
  void SetPushHandler(PushHandler handler) { push_handler_ = std::move(handler); }
  // Replaces the close handler. If the connection is already closed it is not called.
  void SetCloseHandler(CloseHandler handler) { close_handler_ = std::move(handler); }

  // Closes the socket and fails every pending command with `reason`. Idempotent.
  void Close(const Status& reason);

  bool is_open() const { return open_; }
  // Commands sent or queued and not yet answered.
  size_t pending() const { return pending_.size(); }
  const RedisUrl& url() const { return url_; }

 private:
  class Completion;
  template <typename Handler>
  class CompletionFor;

  struct Pending {
    size_t replies_expected;
    Replies replies;
    std::chrono::steady_clock::time_point deadline;
    std::string command_name;
    std::unique_ptr<Completion> completion;
  };

  RedisConnection(const asio::any_io_executor& executor, RedisUrl url,
                  RedisConnectionOptions options);

  template <typename Token>
  auto AsyncSubmit(std::string_view bytes, size_t replies, std::string command_name, Token&& token);
  void Submit(std::string_view bytes, size_t replies, std::string command_name,
              std::unique_ptr<Completion> completion);

  void Start();
  asio::awaitable<void> ReadLoop(std::shared_ptr<RedisConnection> self);
  asio::awaitable<void> WriteLoop(std::shared_ptr<RedisConnection> self);
  asio::awaitable<void> DeadlineLoop(std::shared_ptr<RedisConnection> self);
  // Hands one parsed reply to the push handler or the oldest pending command.
  void Dispatch(RedisReply reply);

  asio::any_io_executor executor_;
  const RedisUrl url_;
  const RedisConnectionOptions options_;
  RedisStream stream_;
  asio::steady_timer deadline_timer_;
  redisReader* reader_;  // owned
  std::vector<char> read_buffer_;
  std::string out_;      // submitted, not yet handed to a write
  std::string writing_;  // the bytes of the write in flight
  bool write_in_flight_ = false;
  std::deque<Pending> pending_;
  bool open_ = true;
  PushHandler push_handler_;
  CloseHandler close_handler_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_REDIS_REDIS_CONNECTION_H_

// RedisSubscriber: one connection in pub/sub mode, kept subscribed to a fixed set of channels,
// and to the optional ones its owner wants at the moment (Want / Unwant), across reconnects
// (with backoff), and pinged while idle so a silently dead link is noticed.
//
// It tells its owner when it is subscribed (with the connection's CLIENT ID, which CLIENT
// TRACKING ... REDIRECT needs), when the subscription is lost (messages published meanwhile are
// gone: Redis pub/sub keeps nothing for absent subscribers), and every message.
//
// Threading: one single-threaded executor; handlers run on it. The background work holds shared
// state, so the subscriber may be destroyed at any time; Stop() or the destructor ends it.
#ifndef SESSIOND_REPLICATION_REDIS_REDIS_SUBSCRIBER_H_
#define SESSIOND_REPLICATION_REDIS_REDIS_SUBSCRIBER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "replication/redis/redis_connection.h"
#include "replication/redis/redis_reply.h"
#include "replication/redis/redis_url.h"
#include "sessiond/asio.h"
#include "sessiond/status.h"

namespace sessiond {

struct RedisSubscriberOptions {
  RedisConnectionOptions connection;
  std::chrono::milliseconds backoff_initial{50};
  std::chrono::milliseconds backoff_max{2000};
  // A PING this often while subscribed; a PING unanswered within the command timeout drops the
  // connection, so a dead link costs at most this plus that timeout.
  std::chrono::milliseconds ping_interval{1000};
};

class RedisSubscriber {
 public:
  struct Handlers {
    // Runs on each new connection before it subscribes, e.g. to CONFIG SET
    // notify-keyspace-events. Optional.
    std::function<asio::awaitable<void>(std::shared_ptr<RedisConnection>)> prepare;
    // Subscribed to every channel; `client_id` is the connection's CLIENT ID. Optional.
    std::function<void(int64_t client_id)> on_subscribed;
    // The subscription is gone (and messages published until on_subscribed are lost). Optional.
    std::function<void(const Status& reason)> on_lost;
    // A message: its channel and payload (a string, or an array for tracking invalidations).
    std::function<void(const std::string& channel, const RedisReply& payload)> on_message;
  };

  RedisSubscriber(asio::any_io_executor executor, RedisUrl url, RedisSubscriberOptions options,
                  std::vector<std::string> channels, Handlers handlers);
  RedisSubscriber(const RedisSubscriber&) = delete;
  RedisSubscriber& operator=(const RedisSubscriber&) = delete;
  ~RedisSubscriber();

  // Begins connecting in the background; returns at once.
  void Start();
  // Closes the connection and ends the background work; no handler runs afterwards.
  void Stop();

  // Returns OK once every message Redis published before this call reached the subscription has
  // been handed to on_message: a PING travels the same connection behind them. UNAVAILABLE when
  // not subscribed or the connection fails meanwhile. The barriers asked for in one turn of the
  // event loop share one PING, sent at the end of that turn.
  asio::awaitable<Status> Barrier();
  uint64_t barrier_pings() const;

  // Subscribes to `channel` as well, now and after every reconnect, until Unwant. Returns once
  // Redis confirmed the subscription (so every message published after that reaches
  // on_message), or at once when already subscribed to it, or when the connection is down (it
  // subscribes when it is back; messages published meanwhile are lost, as for every channel).
  asio::awaitable<void> Want(std::string channel);
  // Unsubscribes from a channel Want added.
  void Unwant(const std::string& channel);
  // Whether `channel` is wanted and its subscription confirmed on the current connection.
  bool SubscribedTo(const std::string& channel) const;

  bool subscribed() const;
  // The CLIENT ID of the subscribed connection; 0 when not subscribed.
  int64_t client_id() const;
  // Why the subscription was last lost or could not be made; OK before any failure.
  Status last_error() const;
  // Subscriptions made since Start().
  uint64_t subscriptions() const;

 private:
  struct State;
  static asio::awaitable<void> Run(std::shared_ptr<State> state);
  static asio::awaitable<Status> Subscribe(std::shared_ptr<State> state,
                                           std::shared_ptr<RedisConnection> connection);
  // SUBSCRIBE (or UNSUBSCRIBE) `channel` on the current connection, and for a SUBSCRIBE that
  // got confirmed, note it (or undo it if the channel stopped being wanted meanwhile).
  static asio::awaitable<void> Change(std::shared_ptr<State> state, std::string channel,
                                      bool subscribe);
  static asio::awaitable<void> WantIn(std::shared_ptr<State> state, std::string channel);
  struct BarrierBatch;
  static asio::awaitable<void> Ping(std::shared_ptr<State> state,
                                    std::shared_ptr<BarrierBatch> batch);

  std::shared_ptr<State> state_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_REDIS_REDIS_SUBSCRIBER_H_

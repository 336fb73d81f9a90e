#include "replication/redis/redis_subscriber.h"

#include <optional>
#include <random>
#include <set>
#include <utility>

#include "replication/redis/backoff.h"
#include "replication/redis/redis_command.h"

namespace sessiond {

struct RedisSubscriber::State {
  State(const asio::any_io_executor& executor, RedisUrl url, RedisSubscriberOptions options,
        std::vector<std::string> channels, Handlers handlers)
      : executor(executor),
        url(std::move(url)),
        options(std::move(options)),
        channels(std::move(channels)),
        handlers(std::move(handlers)),
        wake(executor),
        backoff(this->options.backoff_initial, this->options.backoff_max, std::random_device()()) {}

  asio::any_io_executor executor;
  const RedisUrl url;
  const RedisSubscriberOptions options;
  const std::vector<std::string> channels;
  Handlers handlers;
  asio::steady_timer wake;  // backoff, ping interval, or the connection closing
  Backoff backoff;
  std::shared_ptr<RedisConnection> connection;  // set while subscribed
  std::set<std::string> wanted;                 // optional channels (Want)
  std::set<std::string> subscribed;             // of those, confirmed on `connection`
  int64_t client_id = 0;
  bool started = false;
  bool stopped = false;
  Status last_error;
  uint64_t subscriptions = 0;
  std::shared_ptr<BarrierBatch> open_barrier;  // not sent yet: a Barrier() now joins it
  uint64_t barrier_pings = 0;
};

// The callers of Barrier() in one loop turn, answered by one PING. `done` never fires on its
// own: it is cancelled when the PONG (or the failure) is in.
struct RedisSubscriber::BarrierBatch {
  explicit BarrierBatch(const asio::any_io_executor& executor) : done(executor) {
    done.expires_at(asio::steady_timer::time_point::max());
  }
  asio::steady_timer done;
  std::optional<Status> result;
};

RedisSubscriber::RedisSubscriber(asio::any_io_executor executor, RedisUrl url,
                                 RedisSubscriberOptions options, std::vector<std::string> channels,
                                 Handlers handlers)
    : state_(std::make_shared<State>(executor, std::move(url), std::move(options),
                                     std::move(channels), std::move(handlers))) {}

RedisSubscriber::~RedisSubscriber() { Stop(); }

void RedisSubscriber::Start() {
  if (state_->started) return;
  state_->started = true;
  asio::co_spawn(state_->executor, Run(state_), asio::detached);
}

void RedisSubscriber::Stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  state_->wake.cancel();
  if (state_->connection) state_->connection->Close(Unavailable("sessiond is shutting down"));
}

asio::awaitable<Status> RedisSubscriber::Subscribe(std::shared_ptr<State> state,
                                                   std::shared_ptr<RedisConnection> connection) {
  RedisCommand client_id{"CLIENT", "ID"};
  Result<RedisReply> id = co_await connection->Execute(std::move(client_id));
  if (!id.ok()) co_return id.status();
  if (!id->is_integer()) {
    co_return Unavailable("Redis at " + state->url.Describe() + " answered CLIENT ID with " +
                          id->Describe() + "; sessiond needs Redis 6 or later");
  }
  if (state->handlers.prepare) co_await state->handlers.prepare(connection);
  if (state->stopped || !connection->is_open()) co_return Unavailable("closed during set-up");

  // From here on messages may arrive, interleaved with the SUBSCRIBE confirmations.
  std::weak_ptr<State> weak = state;
  connection->SetPushHandler([weak](RedisReply message) {
    std::shared_ptr<State> state = weak.lock();
    if (!state || state->stopped || !state->handlers.on_message) return;
    const auto& parts = message.elements();
    // ["message", channel, payload] or ["pmessage", pattern, channel, payload].
    const size_t channel_at = parts[0].IsText("message") ? 1 : 2;
    if (parts.size() != channel_at + 2) return;
    state->handlers.on_message(parts[channel_at].text(), parts[channel_at + 1]);
  });
  std::vector<std::string> args{"SUBSCRIBE"};
  args.insert(args.end(), state->channels.begin(), state->channels.end());
  const std::set<std::string> extra = state->wanted;
  args.insert(args.end(), extra.begin(), extra.end());
  Result<std::vector<RedisReply>> confirmations =
      co_await connection->ExecuteExpecting(RedisCommand(args), args.size() - 1);
  if (!confirmations.ok()) co_return confirmations.status();
  for (const RedisReply& reply : *confirmations) {
    if (!reply.is_array() || reply.elements().empty() || !reply.elements()[0].IsText("subscribe")) {
      co_return Unavailable("Redis at " + state->url.Describe() + " answered SUBSCRIBE with " +
                            reply.Describe() + "; is it a Redis that supports pub/sub?");
    }
  }
  state->client_id = id->integer();
  state->subscribed = extra;
  co_return Status::Ok();
}

asio::awaitable<void> RedisSubscriber::Change(std::shared_ptr<State> state, std::string channel,
                                              bool subscribe) {
  std::shared_ptr<RedisConnection> connection = state->connection;
  if (!connection || !connection->is_open()) co_return;
  RedisCommand command{subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE", channel};
  Result<std::vector<RedisReply>> confirmed =
      co_await connection->ExecuteExpecting(std::move(command), 1);
  // A failure has closed the connection; the next one subscribes to what is wanted then.
  if (!subscribe || !confirmed.ok() || state->connection != connection) co_return;
  if (state->wanted.contains(channel)) {
    state->subscribed.insert(channel);
  } else if (!state->subscribed.contains(channel)) {
    co_await Change(state, std::move(channel), false);  // unwanted while it was on its way
  }
}

asio::awaitable<void> RedisSubscriber::Want(std::string channel) {
  // Not a coroutine itself: the state is taken now, so the subscriber may be gone by the time a
  // spawned Want runs.
  return WantIn(state_, std::move(channel));
}

asio::awaitable<void> RedisSubscriber::WantIn(std::shared_ptr<State> state, std::string channel) {
  state->wanted.insert(channel);
  if (state->subscribed.contains(channel) || state->stopped) co_return;
  co_await Change(state, std::move(channel), true);
}

void RedisSubscriber::Unwant(const std::string& channel) {
  state_->wanted.erase(channel);
  if (state_->subscribed.erase(channel) > 0) {
    asio::co_spawn(state_->executor, Change(state_, channel, false), asio::detached);
  }
}

bool RedisSubscriber::SubscribedTo(const std::string& channel) const {
  return subscribed() && state_->subscribed.contains(channel);
}

asio::awaitable<void> RedisSubscriber::Run(std::shared_ptr<State> state) {
  while (!state->stopped) {
    Result<std::shared_ptr<RedisConnection>> connected =
        co_await RedisConnection::Connect(state->executor, state->url, state->options.connection);
    if (state->stopped) {
      if (connected.ok()) (*connected)->Close(Unavailable("sessiond is shutting down"));
      break;
    }
    if (!connected.ok()) {
      state->last_error = connected.status();
    } else {
      std::shared_ptr<RedisConnection> connection = std::move(connected).value();
      Status subscribed = co_await Subscribe(state, connection);
      if (!subscribed.ok() || state->stopped || !connection->is_open()) {
        connection->Close(subscribed.ok() ? Unavailable("closed during set-up") : subscribed);
        if (!subscribed.ok()) state->last_error = subscribed;
      } else {
        auto reason = std::make_shared<Status>();
        connection->SetCloseHandler([state, reason](const Status& why) {
          *reason = why;
          state->wake.cancel();
        });
        state->connection = connection;
        state->backoff.Reset();
        ++state->subscriptions;
        // Wanted while the subscription was being made: subscribe to those too.
        for (const std::string& channel : state->wanted) {
          if (!state->subscribed.contains(channel)) {
            asio::co_spawn(state->executor, Change(state, channel, true), asio::detached);
          }
        }
        if (state->handlers.on_subscribed) state->handlers.on_subscribed(state->client_id);
        // Idle: PING now and then. The reply's deadline is what notices a dead link; the PING
        // itself is not awaited here so this loop keeps waking on close.
        while (connection->is_open() && !state->stopped) {
          state->wake.expires_after(state->options.ping_interval);
          boost::system::error_code ec;
          co_await state->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
          if (!ec && connection->is_open() && connection->pending() == 0) {
            asio::co_spawn(
                state->executor,
                [connection]() -> asio::awaitable<void> {
                  RedisCommand ping{"PING"};
                  Result<RedisReply> pong = co_await connection->Execute(std::move(ping));
                  (void)pong;  // a failure has already closed the connection
                },
                asio::detached);
          }
        }
        if (reason->ok()) {
          *reason = Unavailable("the subscription connection to Redis at " + state->url.Describe() +
                                " was closed");
        }
        state->connection.reset();
        state->subscribed.clear();
        state->client_id = 0;
        state->last_error = *reason;
        if (!state->stopped && state->handlers.on_lost) state->handlers.on_lost(*reason);
      }
    }
    if (state->stopped) break;
    state->wake.expires_after(state->backoff.Next());
    boost::system::error_code ec;
    co_await state->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

asio::awaitable<Status> RedisSubscriber::Barrier() {
  std::shared_ptr<State> state = state_;
  if (!state->connection || !state->connection->is_open()) {
    co_return Unavailable("the event subscription to Redis at " + state->url.Describe() +
                          " is down (" + state->last_error.message() +
                          "); sessiond is reconnecting");
  }
  // A PING already on its way may have passed an invalidation sent after it left, so a caller
  // waits for a PING sent after it asked: the batch still open, or a new one sent at the end of
  // this turn (asio::post), whose PONG answers everyone who joined it.
  std::shared_ptr<BarrierBatch> batch = state->open_barrier;
  if (!batch) {
    batch = std::make_shared<BarrierBatch>(state->executor);
    state->open_barrier = batch;
    asio::post(state->executor, [state, batch] {
      if (state->open_barrier == batch) state->open_barrier.reset();
      asio::co_spawn(state->executor, Ping(state, batch), asio::detached);
    });
  }
  if (!batch->result) {
    boost::system::error_code ec;
    co_await batch->done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return batch->result.value_or(Unavailable("the event subscription's PING was cut short"));
}

asio::awaitable<void> RedisSubscriber::Ping(std::shared_ptr<State> state,
                                            std::shared_ptr<BarrierBatch> batch) {
  std::shared_ptr<RedisConnection> connection = state->connection;
  if (!connection || !connection->is_open()) {
    batch->result = Unavailable("the event subscription to Redis at " + state->url.Describe() +
                                " went down before its PING");
  } else {
    ++state->barrier_pings;
    RedisCommand ping{"PING"};
    Result<RedisReply> pong = co_await connection->Execute(std::move(ping));
    batch->result = pong.ok() ? Status::Ok() : pong.status();
  }
  batch->done.cancel();
}

uint64_t RedisSubscriber::barrier_pings() const { return state_->barrier_pings; }

bool RedisSubscriber::subscribed() const {
  return state_->connection && state_->connection->is_open();
}

int64_t RedisSubscriber::client_id() const { return subscribed() ? state_->client_id : 0; }

Status RedisSubscriber::last_error() const { return state_->last_error; }

uint64_t RedisSubscriber::subscriptions() const { return state_->subscriptions; }

}  // namespace sessiond

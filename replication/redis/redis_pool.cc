#include "replication/redis/redis_pool.h"

#include <algorithm>
#include <list>
#include <random>
#include <utility>

#include "replication/redis/backoff.h"

namespace sessiond {

struct RedisPool::State {
  struct Slot {
    Slot(const asio::any_io_executor& executor, const RedisPoolOptions& options, uint64_t seed)
        : wake(executor), backoff(options.backoff_initial, options.backoff_max, seed) {}
    std::shared_ptr<RedisConnection> connection;  // null while down
    asio::steady_timer wake;  // sleeps out the backoff, or until the connection closes
    Backoff backoff;
  };

  State(const asio::any_io_executor& executor, RedisUrl url, RedisPoolOptions options)
      : executor(executor), url(std::move(url)), options(std::move(options)) {
    std::random_device entropy;
    slots.reserve(this->options.connections);
    for (size_t i = 0; i < std::max<size_t>(this->options.connections, 1); ++i) {
      slots.push_back(std::make_unique<Slot>(executor, this->options, entropy()));
    }
  }

  // Wakes everyone in WaitConnected.
  void NotifyChanged() {
    for (asio::steady_timer* waiter : waiters) waiter->cancel();
  }

  asio::any_io_executor executor;
  const RedisUrl url;
  const RedisPoolOptions options;
  std::vector<std::unique_ptr<Slot>> slots;
  size_t next = 0;  // round-robin cursor

  // The slot to try `tried` slots into a command's search for an open connection.
  size_t NextSlot(size_t tried) {
    if (options.use == RedisPoolOptions::Use::kFirstUp) return tried;
    return next++ % slots.size();
  }
  bool started = false;
  bool stopped = false;
  Status last_error;
  uint64_t connects = 0;
  // Bumped by DropAll: a connection whose set-up began before the bump must not serve.
  uint64_t epoch = 0;
  SetupCommands setup;
  ClosedHandler closed_handler;
  std::list<asio::steady_timer*> waiters;
};

RedisPool::RedisPool(asio::any_io_executor executor, RedisUrl url, RedisPoolOptions options)
    : state_(std::make_shared<State>(executor, std::move(url), std::move(options))) {}

RedisPool::~RedisPool() { Stop(); }

void RedisPool::SetSetupCommands(SetupCommands setup) { state_->setup = std::move(setup); }

void RedisPool::SetClosedHandler(ClosedHandler handler) {
  state_->closed_handler = std::move(handler);
}

void RedisPool::Start() {
  if (state_->started) return;
  state_->started = true;
  for (size_t i = 0; i < state_->slots.size(); ++i) {
    asio::co_spawn(state_->executor, MaintainSlot(state_, i), asio::detached);
  }
}

void RedisPool::Stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  for (auto& slot : state_->slots) {
    slot->wake.cancel();
    if (slot->connection) slot->connection->Close(Unavailable("sessiond is shutting down"));
  }
  state_->NotifyChanged();
}

asio::awaitable<void> RedisPool::MaintainSlot(std::shared_ptr<State> state, size_t index) {
  State::Slot& slot = *state->slots[index];
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
      const uint64_t epoch = state->epoch;
      Status setup = co_await RunSetup(state, connection);
      if (setup.ok() && state->epoch != epoch) {
        // DropAll ran meanwhile, so what this set-up established may already be stale.
        connection->Close(Unavailable("set-up overtaken by a reset"));
        continue;
      }
      if (!setup.ok() || state->stopped || !connection->is_open()) {
        connection->Close(setup.ok() ? Unavailable("closed during set-up") : setup);
        if (!setup.ok()) state->last_error = setup;
      } else {
        // Shared with the close handler, which is posted and may run after this frame moves on.
        auto reason = std::make_shared<Status>();
        connection->SetCloseHandler([state, &slot, reason](const Status& why) {
          *reason = why;
          state->last_error = why;  // now, for requests that come before this loop wakes
          slot.wake.cancel();       // `state` keeps the slot alive
        });
        slot.connection = connection;
        slot.backoff.Reset();
        ++state->connects;
        state->NotifyChanged();
        while (connection->is_open() && !state->stopped) {
          slot.wake.expires_at(asio::steady_timer::time_point::max());
          boost::system::error_code ec;
          co_await slot.wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        if (reason->ok()) {
          *reason =
              Unavailable("the connection to Redis at " + state->url.Describe() + " was closed");
        }
        slot.connection.reset();
        state->last_error = *reason;
        state->NotifyChanged();
        if (state->closed_handler && !state->stopped) state->closed_handler(*reason);
      }
    }
    if (state->stopped) break;
    slot.wake.expires_after(slot.backoff.Next());
    boost::system::error_code ec;
    co_await slot.wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

asio::awaitable<Status> RedisPool::RunSetup(std::shared_ptr<State> state,
                                            std::shared_ptr<RedisConnection> connection) {
  if (!state->setup) co_return Status::Ok();
  Result<std::vector<RedisCommand>> commands = state->setup();
  if (!commands.ok()) co_return commands.status();
  if (commands->empty()) co_return Status::Ok();
  std::vector<std::string> names;
  for (const RedisCommand& command : *commands) names.push_back(command.name());
  Result<std::vector<RedisReply>> replies = co_await connection->ExecuteAll(*std::move(commands));
  if (!replies.ok()) co_return replies.status();
  for (size_t i = 0; i < replies->size(); ++i) {
    if ((*replies)[i].is_error()) {
      co_return Unavailable("Redis at " + state->url.Describe() + " refused " + names[i] +
                            " while sessiond set up a connection (" + (*replies)[i].text() +
                            "); sessiond retries, but check the Redis configuration");
    }
  }
  co_return Status::Ok();
}

asio::awaitable<Result<RedisReply>> RedisPool::Execute(RedisCommand command) {
  std::shared_ptr<State> state = state_;
  for (size_t tried = 0; tried < state->slots.size(); ++tried) {
    State::Slot& slot = *state->slots[state->NextSlot(tried)];
    if (slot.connection && slot.connection->is_open()) {
      std::shared_ptr<RedisConnection> connection = slot.connection;
      co_return co_await connection->Execute(std::move(command));
    }
  }
  co_return UnreachableStatus();
}

asio::awaitable<Result<std::vector<RedisReply>>> RedisPool::ExecuteAll(
    std::vector<RedisCommand> commands) {
  std::shared_ptr<State> state = state_;
  for (size_t tried = 0; tried < state->slots.size(); ++tried) {
    State::Slot& slot = *state->slots[state->NextSlot(tried)];
    if (slot.connection && slot.connection->is_open()) {
      std::shared_ptr<RedisConnection> connection = slot.connection;
      co_return co_await connection->ExecuteAll(std::move(commands));
    }
  }
  co_return UnreachableStatus();
}

asio::awaitable<bool> RedisPool::WaitConnected(std::chrono::milliseconds timeout) {
  std::shared_ptr<State> state = state_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  asio::steady_timer timer(state->executor);
  while (connected() == 0 && !state->stopped && std::chrono::steady_clock::now() < deadline) {
    timer.expires_at(deadline);
    auto registration = state->waiters.insert(state->waiters.end(), &timer);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    state->waiters.erase(registration);
  }
  co_return connected() > 0;
}

void RedisPool::DropAll(const Status& reason) {
  ++state_->epoch;
  for (auto& slot : state_->slots) {
    if (slot->connection) slot->connection->Close(reason);
  }
}

size_t RedisPool::connected() const {
  return std::count_if(state_->slots.begin(), state_->slots.end(), [](const auto& slot) {
    return slot->connection && slot->connection->is_open();
  });
}

Status RedisPool::last_error() const { return state_->last_error; }

uint64_t RedisPool::connects() const { return state_->connects; }

Status RedisPool::UnreachableStatus() const {
  const Status& why = state_->last_error;
  if (why.ok()) {
    return Unavailable("sessiond is not connected to Redis at " + state_->url.Describe() +
                       " yet; retry in a moment");
  }
  return Unavailable("Redis at " + state_->url.Describe() + " is unreachable (" + why.message() +
                     "); sessiond keeps reconnecting on its own and serves again once it is back");
}

}  // namespace sessiond

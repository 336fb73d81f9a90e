#include "replication/redis/redis_connection.h"

#include <hiredis/hiredis.h>

#include <cstdlib>
#include <utility>

namespace sessiond {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kReadChunk = size_t{64} * 1024;

std::string Ms(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + " ms"; }

}  // namespace

// A suspended caller, resumed on its own executor with the result (never inline, so a reply's
// dispatch never runs a caller's code in the middle of the read loop).
class RedisConnection::Completion {
 public:
  virtual ~Completion() = default;
  virtual void Complete(Result<Replies> result) = 0;
};

template <typename Handler>
class RedisConnection::CompletionFor final : public RedisConnection::Completion {
 public:
  CompletionFor(Handler handler, asio::any_io_executor fallback)
      : handler_(std::move(handler)), fallback_(std::move(fallback)) {}

  void Complete(Result<Replies> result) override {
    auto executor = asio::get_associated_executor(handler_, fallback_);
    asio::post(executor, [handler = std::move(handler_), result = std::move(result)]() mutable {
      std::move(handler)(std::move(result));
    });
  }

 private:
  Handler handler_;
  asio::any_io_executor fallback_;
};

RedisConnection::RedisConnection(const asio::any_io_executor& executor, RedisUrl url,
                                 RedisConnectionOptions options)
    : executor_(executor),
      url_(std::move(url)),
      options_(std::move(options)),
      stream_(executor, url_.tls ? options_.tls : nullptr),
      deadline_timer_(executor),
      reader_(redisReaderCreate()),
      read_buffer_(kReadChunk) {
  if (reader_ == nullptr) std::abort();  // out of memory
}

RedisConnection::~RedisConnection() { redisReaderFree(reader_); }

asio::awaitable<Result<std::shared_ptr<RedisConnection>>> RedisConnection::Connect(
    asio::any_io_executor executor, RedisUrl url, RedisConnectionOptions options) {
  const std::string where = url.Describe();
  const std::chrono::milliseconds connect_timeout = options.connect_timeout;
  if (url.tls && !options.tls) {
    RedisTlsOptions system_trust;
    Result<std::shared_ptr<RedisTlsContext>> made = RedisTlsContext::Create(system_trust);
    if (!made.ok()) co_return Unavailable(made.status().message());
    options.tls = std::move(made).value();
  }
  std::shared_ptr<RedisConnection> connection(
      new RedisConnection(executor, std::move(url), std::move(options)));

  // One timer bounds every step. Its handler may run after this frame is gone (a timer that
  // has already fired cannot be cancelled), so it holds what it touches.
  struct Watch {
    explicit Watch(asio::any_io_executor executor) : resolver(executor) {}
    asio::ip::tcp::resolver resolver;
    bool done = false;
    bool timed_out = false;
  };
  auto watch = std::make_shared<Watch>(executor);
  asio::steady_timer timer(executor);
  timer.expires_after(connect_timeout);
  timer.async_wait([watch, connection](boost::system::error_code ec) {
    if (ec || watch->done) return;
    watch->timed_out = true;
    watch->resolver.cancel();
    connection->Close(Unavailable("timed out"));
    connection->stream_.Close();
  });
  auto finish = [&] {
    watch->done = true;
    timer.cancel();
  };
  bool tls_handshaking = false;
  auto failure = [&](std::string what) -> Status {
    finish();
    connection->Close(Unavailable(what));
    if (watch->timed_out && tls_handshaking) {
      // A plain port reads a TLS hello as an unfinished command and waits for the rest.
      return Unavailable("Redis at " + where + " did not finish the TLS handshake within " +
                         Ms(connect_timeout) +
                         "; check that the port in rediss:// is Redis's tls-port (a plain port "
                         "does not answer TLS)");
    }
    if (watch->timed_out) {
      return Unavailable("could not reach Redis at " + where + " within " + Ms(connect_timeout) +
                         "; check that it is running and reachable from this host");
    }
    return Unavailable(std::move(what));
  };

  boost::system::error_code ec;
  auto endpoints = co_await watch->resolver.async_resolve(
      connection->url_.host, std::to_string(connection->url_.port),
      asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    co_return failure("cannot resolve the Redis host '" + connection->url_.host + "' (" +
                      ec.message() + "); check --redis");
  }
  co_await asio::async_connect(connection->stream_.socket(), endpoints,
                               asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    co_return failure("cannot connect to Redis at " + where + " (" + ec.message() +
                      "); check that it is running and reachable from this host");
  }
  connection->stream_.socket().set_option(asio::ip::tcp::no_delay(true), ec);
  connection->stream_.socket().set_option(asio::socket_base::keep_alive(true), ec);
  tls_handshaking = true;
  Status secured = co_await connection->stream_.Handshake(connection->url_.host, where);
  if (!secured.ok()) co_return failure(secured.message());
  tls_handshaking = false;
  connection->Start();

  // The handshake goes out as one write: one round trip whatever it holds. The PING at the end
  // proves the server answers commands as this login.
  std::vector<RedisCommand> handshake;
  const RedisUrl& u = connection->url_;
  if (!u.password.empty()) {
    handshake.push_back(u.user.empty() ? RedisCommand{"AUTH", u.password}
                                       : RedisCommand{"AUTH", u.user, u.password});
  }
  if (u.db != 0) handshake.push_back(RedisCommand{"SELECT", std::to_string(u.db)});
  if (!connection->options_.client_name.empty()) {
    handshake.push_back(RedisCommand{"CLIENT", "SETNAME", connection->options_.client_name});
  }
  handshake.push_back(RedisCommand{"PING"});
  Result<Replies> replies = co_await connection->ExecuteAll(std::move(handshake));
  if (!replies.ok()) {
    co_return failure("Redis at " + where +
                      " accepted the connection but did not complete the handshake: " +
                      replies.status().message() +
                      (u.tls ? "" : "; if that port is Redis's tls-port, use rediss://"));
  }
  for (const RedisReply& reply : *replies) {
    if (!reply.is_error()) continue;
    if (reply.IsErrorCode("WRONGPASS") || reply.IsErrorCode("NOAUTH") ||
        reply.IsErrorCode("NOPERM")) {
      co_return failure("Redis at " + where + " refused the login (" + reply.text() +
                        "); check the user and password in --redis or --redis-password-file");
    }
    co_return failure("Redis at " + where + " refused the connection set-up (" + reply.text() +
                      "); check the database number in --redis");
  }
  finish();
  if (!connection->is_open()) {
    co_return failure("the connection to Redis at " + where + " closed during set-up");
  }
  co_return connection;
}

void RedisConnection::Start() {
  auto self = shared_from_this();
  asio::co_spawn(executor_, ReadLoop(self), asio::detached);
  asio::co_spawn(executor_, DeadlineLoop(self), asio::detached);
}

template <typename Token>
auto RedisConnection::AsyncSubmit(std::string_view bytes, size_t replies, std::string command_name,
                                  Token&& token) {
  // `bytes` is copied into the write buffer as the operation starts, which use_awaitable does
  // within the co_await that holds the command.
  return asio::async_initiate<Token, void(Result<Replies>)>(
      [this](auto handler, std::string_view bytes, size_t replies, std::string command_name) {
        using Handler = std::decay_t<decltype(handler)>;
        Submit(bytes, replies, std::move(command_name),
               std::make_unique<CompletionFor<Handler>>(std::move(handler), executor_));
      },
      token, bytes, replies, std::move(command_name));
}

asio::awaitable<Result<RedisReply>> RedisConnection::Execute(RedisCommand command) {
  Result<Replies> replies = co_await ExecuteExpecting(std::move(command), 1);
  if (!replies.ok()) co_return replies.status();
  co_return std::move(replies->front());
}

asio::awaitable<Result<RedisConnection::Replies>> RedisConnection::ExecuteAll(
    std::vector<RedisCommand> commands) {
  std::string bytes;
  for (const RedisCommand& command : commands) bytes += command.bytes();
  co_return co_await AsyncSubmit(bytes, commands.size(), commands.front().name(),
                                 asio::use_awaitable);
}

asio::awaitable<Result<RedisConnection::Replies>> RedisConnection::ExecuteExpecting(
    RedisCommand command, size_t replies) {
  co_return co_await AsyncSubmit(command.bytes(), replies, command.name(), asio::use_awaitable);
}

void RedisConnection::Submit(std::string_view bytes, size_t replies, std::string command_name,
                             std::unique_ptr<Completion> completion) {
  if (!open_) {
    completion->Complete(Unavailable("the connection to Redis at " + url_.Describe() +
                                     " is closed; retry, sessiond is reconnecting"));
    return;
  }
  if (pending_.size() >= options_.max_pending) {
    completion->Complete(Unavailable(
        std::to_string(pending_.size()) + " commands are already waiting on a connection to " +
        "Redis at " + url_.Describe() + "; Redis is not keeping up with this load, retry later"));
    return;
  }
  const bool was_idle = pending_.empty();
  pending_.push_back(Pending{replies,
                             {},
                             Clock::now() + options_.command_timeout,
                             std::move(command_name),
                             std::move(completion)});
  pending_.back().replies.reserve(replies);
  out_ += bytes;
  if (!write_in_flight_) {
    write_in_flight_ = true;
    asio::co_spawn(executor_, WriteLoop(shared_from_this()), asio::detached);
  }
  // The deadline loop sleeps forever while nothing is pending; wake it to arm this deadline.
  if (was_idle) deadline_timer_.cancel();
}

// `self` keeps the connection alive while the loop runs.
asio::awaitable<void> RedisConnection::WriteLoop(std::shared_ptr<RedisConnection> /*self*/) {
  while (open_ && !out_.empty()) {
    writing_.swap(out_);
    boost::system::error_code ec;
    co_await stream_.async_write(asio::buffer(writing_),
                                 asio::redirect_error(asio::use_awaitable, ec));
    writing_.clear();
    if (ec) {
      Close(Unavailable("writing to Redis at " + url_.Describe() + " failed (" +
                        stream_.DescribeError(ec) +
                        "); a request in flight may or may not have been applied"));
      break;
    }
  }
  write_in_flight_ = false;
}

// `self` keeps the connection alive while the loop runs.
asio::awaitable<void> RedisConnection::ReadLoop(std::shared_ptr<RedisConnection> /*self*/) {
  while (open_) {
    boost::system::error_code ec;
    size_t n = co_await stream_.async_read_some(asio::buffer(read_buffer_),
                                                asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      Close(Unavailable("the connection to Redis at " + url_.Describe() + " was lost (" +
                        stream_.DescribeError(ec) +
                        "); a request in flight may or may not have been applied"));
      co_return;
    }
    if (!open_) co_return;
    if (redisReaderFeed(reader_, read_buffer_.data(), n) != REDIS_OK) std::abort();  // OOM
    for (;;) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
        Close(Internal("Redis at " + url_.Describe() + " sent bytes that are not RESP (" +
                       std::string(reader_->errstr) + "); is that port really a Redis?"));
        co_return;
      }
      if (raw == nullptr) break;
      RedisReply reply = RedisReply::FromHiredis(static_cast<const redisReply*>(raw));
      freeReplyObject(raw);
      Dispatch(std::move(reply));
      if (!open_) co_return;
    }
  }
}

void RedisConnection::Dispatch(RedisReply reply) {
  if (push_handler_ && reply.is_array() && !reply.elements().empty() &&
      (reply.elements()[0].IsText("message") || reply.elements()[0].IsText("pmessage"))) {
    push_handler_(std::move(reply));
    return;
  }
  if (pending_.empty()) {
    Close(Internal("Redis at " + url_.Describe() + " sent a reply no command asked for (" +
                   reply.Describe().substr(0, 200) + ")"));
    return;
  }
  Pending& head = pending_.front();
  head.replies.push_back(std::move(reply));
  if (head.replies.size() < head.replies_expected) return;
  std::unique_ptr<Completion> completion = std::move(head.completion);
  Replies replies = std::move(head.replies);
  pending_.pop_front();
  completion->Complete(std::move(replies));
}

// `self` keeps the connection alive while the loop runs.
asio::awaitable<void> RedisConnection::DeadlineLoop(std::shared_ptr<RedisConnection> /*self*/) {
  while (open_) {
    if (pending_.empty()) {
      deadline_timer_.expires_at(Clock::time_point::max());
    } else {
      const Pending& oldest = pending_.front();
      if (Clock::now() >= oldest.deadline) {
        Close(Unavailable("Redis at " + url_.Describe() + " did not answer " + oldest.command_name +
                          " within " + Ms(options_.command_timeout) +
                          "; the connection was dropped and sessiond is reconnecting, and a "
                          "request in flight may or may not have been applied"));
        co_return;
      }
      deadline_timer_.expires_at(oldest.deadline);
    }
    boost::system::error_code ec;
    co_await deadline_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

void RedisConnection::Close(const Status& reason) {
  if (!open_) return;
  open_ = false;
  stream_.Close();
  deadline_timer_.cancel();
  out_.clear();
  std::deque<Pending> pending = std::move(pending_);
  pending_.clear();
  for (Pending& p : pending) p.completion->Complete(reason);
  if (close_handler_) {
    asio::post(executor_, [handler = std::move(close_handler_), reason]() { handler(reason); });
    close_handler_ = nullptr;
  }
}

}  // namespace sessiond

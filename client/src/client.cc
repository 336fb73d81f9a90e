#include "sessiond/client.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

namespace sessiond {
namespace {

// Events a WatchStream holds unread before it gives up on its reader.
constexpr size_t kWatchQueueCapacity = 4096;
// How long ~Client waits for its I/O thread to finish on its own (a host name being resolved
// cannot be interrupted) before stopping it.
constexpr std::chrono::seconds kShutdownGrace{1};

// What a WatchStream needs of its Client: a way to cancel the watch while the Client lives.
// Shared by the Client and its streams, either of which may go first.
struct ClientLink {
  std::mutex mu;
  // Posts a watch's cancellation to the Client's I/O thread. Guarded by mu (held while it runs,
  // so the Client cannot go meanwhile); empty once the Client is being destroyed.
  std::function<void(uint64_t)> cancel_watch;
};

}  // namespace

class Client::Impl {
 public:
  explicit Impl(ClientOptions options);
  ~Impl();

  // Runs `body(client)` on the I/O thread and waits for its result. `body` returns an
  // awaitable<T>; T is Status or a Result. Any thread may call this except the I/O thread.
  template <typename T, typename Body>
  T Run(Body body);

  // Stops delivering a watch's events. Any thread.
  void PostCancelWatch(uint64_t watch_id) {
    asio::post(io_, [this, watch_id] {
      if (client_) client_->CancelWatch(watch_id);
    });
  }

  const std::shared_ptr<ClientLink>& link() const { return link_; }
  // I/O thread only.
  AsyncClient* async_client() { return client_.get(); }

 private:
  asio::io_context io_{1};  // one thread runs it
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::unique_ptr<AsyncClient> client_;  // used and destroyed on the I/O thread only
  std::shared_ptr<ClientLink> link_;
  std::promise<void> stopped_;
  std::future<void> stopped_future_;
  std::thread thread_;
};

// A watch's events between the I/O thread (Push, End) and the reader (Next).
class WatchStream::Impl {
 public:
  explicit Impl(std::shared_ptr<ClientLink> link) : link_(std::move(link)) {}

  // I/O thread. Queues `event`; ends the stream instead when the reader is too far behind.
  // Returns false once the stream has ended and wants no more events.
  bool Push(const v1::SessionEvent& event) {
    bool queued = false;
    {
      std::lock_guard lock(mu_);
      if (end_) return false;
      if (events_.size() >= kWatchQueueCapacity) {
        // Dropping events silently would leave the reader with a wrong picture; ending the
        // stream tells it to resynchronise.
        end_ = Unavailable("watch fell behind by " + std::to_string(events_.size() + 1) +
                           " events; read faster or watch fewer ids");
      } else {
        events_.push_back(event);
        queued = true;
      }
    }
    cv_.notify_one();
    return queued;
  }

  // I/O thread. Ends the stream (the first reason wins); events already queued are still read.
  void End(const Status& reason) {
    {
      std::lock_guard lock(mu_);
      if (!end_) end_ = reason;
    }
    cv_.notify_one();
  }

  // Any one reader thread.
  Result<v1::SessionEvent> Next(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [this] { return !events_.empty() || end_.has_value(); });
    if (!events_.empty()) {
      v1::SessionEvent event = std::move(events_.front());
      events_.pop_front();
      return event;
    }
    if (end_) return *end_;
    return Unavailable("no watch event arrived within " + std::to_string(timeout.count()) +
                       " ms; the watch is still open, call Next again");
  }

  void set_watch_id(uint64_t id) {
    std::lock_guard lock(mu_);
    watch_id_ = id;
  }
  uint64_t watch_id() {
    std::lock_guard lock(mu_);
    return watch_id_;
  }

  // Called by ~WatchStream: the Client (if it still exists) stops delivering to this stream.
  void Cancel() {
    uint64_t id;
    {
      std::lock_guard lock(mu_);
      id = watch_id_;
      if (!end_) end_ = Unavailable("the watch stream was closed");
    }
    if (id == 0) return;
    std::lock_guard lock(link_->mu);
    if (link_->cancel_watch) link_->cancel_watch(id);
  }

 private:
  const std::shared_ptr<ClientLink> link_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<v1::SessionEvent> events_;  // guarded by mu_; at most kWatchQueueCapacity
  std::optional<Status> end_;            // guarded by mu_
  uint64_t watch_id_ = 0;                // guarded by mu_; 0 until the daemon accepted the watch
};

Client::Impl::Impl(ClientOptions options)
    : work_(io_.get_executor()),
      client_(std::make_unique<AsyncClient>(io_.get_executor(), std::move(options))),
      link_(std::make_shared<ClientLink>()),
      stopped_future_(stopped_.get_future()) {
  link_->cancel_watch = [this](uint64_t watch_id) { PostCancelWatch(watch_id); };
  thread_ = std::thread([this] {
    io_.run();
    stopped_.set_value();
  });
}

Client::Impl::~Impl() {
  {
    std::lock_guard lock(link_->mu);
    link_->cancel_watch = nullptr;
  }
  // Closing on the I/O thread ends every call and watch with UNAVAILABLE; their waiters then
  // return, and run() returns once nothing is left to do.
  asio::post(io_, [this] { client_.reset(); });
  work_.reset();
  if (stopped_future_.wait_for(kShutdownGrace) == std::future_status::timeout) io_.stop();
  thread_.join();
}

template <typename T, typename Body>
T Client::Impl::Run(Body body) {
  // The result travels as an optional because co_spawn needs a default-constructible value.
  auto task = [this, body = std::move(body)]() mutable -> asio::awaitable<std::optional<T>> {
    if (!client_) co_return T(Unavailable("the client was closed; create a new one"));
    co_return co_await body(*client_);
  };
  std::future<std::optional<T>> future = asio::co_spawn(io_, std::move(task), asio::use_future);
  try {
    std::optional<T> result = future.get();
    if (!result) return T(Internal("a client call ended without a result; this is a bug"));
    return std::move(*result);
  } catch (const std::future_error&) {
    // The I/O thread was stopped with the call still queued: the client is being destroyed.
    return T(Unavailable("the client was closed before the call finished"));
  } catch (const std::exception& e) {
    return T(Internal(std::string("a client call failed unexpectedly: ") + e.what()));
  }
}

Result<std::unique_ptr<Client>> Client::Connect(ClientOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  Status status = impl->Run<Status>([](AsyncClient& client) { return client.Connect(); });
  if (!status.ok()) return status;
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Client::~Client() = default;

// The arguments are captured by reference: the calling thread waits in Run until the call is
// over, and every AsyncClient call copies what it needs before it first suspends.

Result<v1::Session> Client::Create(const v1::CreateRequest& request, Deadline deadline) {
  return impl_->Run<Result<v1::Session>>(
      [&](AsyncClient& client) { return client.Create(request, deadline); });
}

Result<v1::Session> Client::Get(const std::string& id, bool touch, Deadline deadline) {
  return impl_->Run<Result<v1::Session>>(
      [&](AsyncClient& client) { return client.Get(id, touch, deadline); });
}

Result<v1::Session> Client::Update(const v1::UpdateRequest& request, Deadline deadline) {
  return impl_->Run<Result<v1::Session>>(
      [&](AsyncClient& client) { return client.Update(request, deadline); });
}

Status Client::Invalidate(const std::string& id, Deadline deadline) {
  return impl_->Run<Status>([&](AsyncClient& client) { return client.Invalidate(id, deadline); });
}

Result<v1::Session> Client::RotateId(const std::string& id, Deadline deadline) {
  return impl_->Run<Result<v1::Session>>(
      [&](AsyncClient& client) { return client.RotateId(id, deadline); });
}

Result<std::vector<v1::Session>> Client::FindByPrincipal(const std::string& principal,
                                                         Deadline deadline) {
  return impl_->Run<Result<std::vector<v1::Session>>>(
      [&](AsyncClient& client) { return client.FindByPrincipal(principal, deadline); });
}

Status Client::Ping(Deadline deadline) {
  return impl_->Run<Status>([&](AsyncClient& client) { return client.Ping(deadline); });
}

Result<v1::NodeStats> Client::Stats(Deadline deadline) {
  return impl_->Run<Result<v1::NodeStats>>(
      [&](AsyncClient& client) { return client.Stats(deadline); });
}

Result<v1::ClientResponse> Client::Call(const v1::ClientRequest& request, Deadline deadline) {
  return impl_->Run<Result<v1::ClientResponse>>(
      [&](AsyncClient& client) { return client.Call(request, deadline); });
}

Result<std::unique_ptr<WatchStream>> Client::Watch(const std::vector<std::string>& ids,
                                                   Deadline deadline) {
  auto stream = std::make_shared<WatchStream::Impl>(impl_->link());
  // The handlers run on the I/O thread, and only while the AsyncClient (so this Client) lives.
  auto on_event = [impl = impl_.get(), stream](const v1::SessionEvent& event) {
    if (stream->Push(event)) return;
    // The stream has ended: stop the events at the source rather than drop each one here.
    if (const uint64_t id = stream->watch_id(); id != 0 && impl->async_client() != nullptr) {
      impl->async_client()->CancelWatch(id);
    }
  };
  auto on_end = [stream](const Status& reason) { stream->End(reason); };
  Result<uint64_t> watch_id =
      impl_->Run<Result<uint64_t>>([&](AsyncClient& client) -> asio::awaitable<Result<uint64_t>> {
        Result<uint64_t> id = co_await client.Watch(ids, on_event, on_end, deadline);
        // Set on the I/O thread before any later event is handled, so overflow can cancel.
        if (id.ok()) stream->set_watch_id(*id);
        co_return id;
      });
  if (!watch_id.ok()) return watch_id.status();
  return std::unique_ptr<WatchStream>(new WatchStream(std::move(stream)));
}

WatchStream::WatchStream(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

WatchStream::~WatchStream() { impl_->Cancel(); }

Result<v1::SessionEvent> WatchStream::Next(std::chrono::milliseconds timeout) {
  return impl_->Next(timeout);
}

}  // namespace sessiond

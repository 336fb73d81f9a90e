// libFuzzer target: the bytes a client can send, through frame decoding and request dispatch.
//
// The first input byte picks how the rest is read: even, as raw bytes off the socket (exercising
// the frame decoder: lengths, flags, lz4); odd, as one ClientRequest payload that is framed here
// (so the fuzzer reaches dispatch without first having to learn the framing). Each decoded request
// goes through RequestHandler into a StandaloneManager, as on the daemon's event loop.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "replication/clock.h"
#include "replication/session_id.h"
#include "replication/standalone_manager.h"
#include "sessiond/asio.h"
#include "sessiond/connection_context.h"
#include "sessiond/frame.h"
#include "sessiond/request_handler.h"

namespace sessiond {
namespace {

// Keeps watches alive and counts pushed events, as a connection would.
class FuzzConnection final : public ConnectionContext {
 public:
  void PushWatchEvent(uint64_t, const v1::SessionEvent&) override { ++events_; }
  Status AdoptWatch(std::unique_ptr<WatchHandle> handle) override {
    if (watches_.size() >= 4) return ResourceExhausted("too many watches on this connection");
    watches_.push_back(std::move(handle));
    return Status::Ok();
  }

 private:
  size_t events_ = 0;
  std::vector<std::unique_ptr<WatchHandle>> watches_;
};

// Ids are deterministic so that a crash reproduces from its input alone.
class CountingIds final : public IdGenerator {
 public:
  std::string NewId() override {
    std::string id = "fuzzsession" + std::to_string(next_++);
    id.resize(kSessionIdTextBytes, 'A');
    return id;
  }

 private:
  uint64_t next_ = 0;
};

}  // namespace
}  // namespace sessiond

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sessiond;
  if (size == 0) return 0;
  const bool raw = (data[0] & 1) == 0;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);

  FrameOptions frames;
  frames.max_frame_bytes = 1 << 20;
  FrameDecoder decoder(frames);
  if (raw) {
    decoder.Feed(rest);
  } else {
    std::string framed;
    if (!AppendFrame(framed, rest, frames).ok()) return 0;
    decoder.Feed(framed);
  }

  asio::io_context io;
  ManualClock clock;
  CountingIds ids;
  SessionLimits limits;
  limits.max_value_bytes = 4096;
  limits.max_attributes = 16;
  limits.max_sessions = 64;
  StandaloneManager manager(
      io.get_executor(),
      ManagerOptions{.node_id = "fuzz", .limits = limits, .clock = &clock, .ids = &ids});
  RequestHandler handler(manager, nullptr);
  FuzzConnection connection;

  std::string payload;
  std::vector<std::pair<v1::ClientRequest, v1::ClientResponse>> calls;
  while (decoder.Next(&payload) == FrameDecoder::State::kFrame) {
    v1::ClientRequest request;
    if (!request.ParseFromString(payload)) break;  // the daemon closes the connection here
    calls.emplace_back(std::move(request), v1::ClientResponse());
  }
  // Requests run one after another, the way pipelined requests interleave on the loop.
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        (void)co_await manager.Start();
        for (auto& [request, response] : calls) {
          co_await handler.Handle(request, connection, response);
          std::string out;
          (void)AppendMessageFrame(out, response, frames);
          clock.AdvanceMs(1000);
          manager.ExpireDue();
        }
        co_await manager.Stop();
      },
      asio::detached);
  io.run();
  return 0;
}

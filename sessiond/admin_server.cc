#include "sessiond/admin_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <utility>

#include "replication/json_string.h"
#include "replication/log_errors.h"

namespace sessiond {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;

constexpr auto kIoTimeout = 10s;
constexpr size_t kMaxRequestBodyBytes = 64u << 10;
constexpr size_t kMaxHeaderBytes = 16u << 10;

}  // namespace

AdminServer::AdminServer(asio::any_io_executor executor, SessionManager& manager,
                         const Metrics& metrics)
    : executor_(executor), manager_(manager), metrics_(metrics), acceptor_(executor) {}

AdminServer::~AdminServer() = default;

Result<uint16_t> AdminServer::Listen(const Endpoint& endpoint) {
  boost::system::error_code ec;
  asio::ip::address address = asio::ip::make_address(endpoint.host, ec);
  if (ec) {
    asio::ip::tcp::resolver resolver(executor_);
    auto results = resolver.resolve(endpoint.host, "", ec);
    if (ec || results.empty()) {
      return Unavailable("cannot resolve --admin-listen host '" + endpoint.host +
                         "'; use an IP address such as 127.0.0.1");
    }
    address = results.begin()->endpoint().address();
  }
  const asio::ip::tcp::endpoint bind_to(address, endpoint.port);
  acceptor_.open(bind_to.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(bind_to, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    acceptor_.close();
    return Unavailable("cannot listen for admin HTTP on " + endpoint.ToString() + ": " +
                       ec.message() +
                       "; pick a free port with --admin-listen (port 0 picks one) or stop what "
                       "holds it");
  }
  return acceptor_.local_endpoint().port();
}

void AdminServer::Start() { asio::co_spawn(executor_, Accept(), LogErrors("admin acceptor")); }

void AdminServer::Stop() {
  stopped_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (asio::ip::tcp::socket* socket : open_) socket->close(ignored);
}

asio::awaitable<void> AdminServer::Accept() {
  while (!stopped_) {
    boost::system::error_code ec;
    asio::ip::tcp::socket socket =
        co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (stopped_) co_return;
    if (ec) {
      spdlog::warn("accepting an admin connection failed: {}; retrying", ec.message());
      asio::steady_timer pause(executor_);
      pause.expires_after(100ms);
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    if (open_.size() >= kMaxConnections) {
      spdlog::warn("refusing an admin connection: {} are open, the most allowed", open_.size());
      socket.close(ec);
      continue;
    }
    asio::co_spawn(executor_, Serve(std::move(socket)), LogErrors("admin connection"));
  }
}

asio::awaitable<void> AdminServer::Serve(asio::ip::tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  open_.insert(&stream.socket());
  beast::flat_buffer buffer;
  boost::system::error_code ec;
  while (!stopped_) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kMaxRequestBodyBytes);
    parser.header_limit(kMaxHeaderBytes);
    stream.expires_after(kIoTimeout);
    co_await http::async_read(stream, buffer, parser,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    const http::request<http::string_body>& request = parser.get();
    const beast::string_view method = request.method_string();
    const beast::string_view target = request.target();
    AdminResponse answer = Route(std::string_view(method.data(), method.size()),
                                 std::string_view(target.data(), target.size()));
    http::response<http::string_body> response(static_cast<http::status>(answer.status),
                                               request.version());
    response.set(http::field::server, "sessiond");
    response.set(http::field::content_type, answer.content_type);
    if (answer.status == 405) response.set(http::field::allow, "GET");
    response.keep_alive(request.keep_alive());
    response.body() = std::move(answer.body);
    response.prepare_payload();
    stream.expires_after(kIoTimeout);
    co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !response.keep_alive()) break;
  }
  open_.erase(&stream.socket());
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
}

AdminResponse AdminServer::Route(std::string_view method, std::string_view target) const {
  const std::string_view path = target.substr(0, target.find('?'));
  const bool known = path == "/healthz" || path == "/readyz" || path == "/metrics" ||
                     path == "/cluster" || path == "/digest";
  if (!known) {
    return {404, "text/plain; charset=utf-8",
            "not found: the admin endpoint serves /healthz, /readyz, /metrics, /cluster and "
            "/digest\n"};
  }
  if (method != "GET") {
    return {405, "text/plain; charset=utf-8",
            "method not allowed: the admin endpoint answers GET only\n"};
  }
  if (path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
  if (path == "/readyz") {
    const Readiness readiness = manager_.Ready();
    std::string body = readiness.ready ? "ready" : "not ready";
    if (!readiness.detail.empty()) body += ": " + readiness.detail;
    body += "\n";
    return {readiness.ready ? 200u : 503u, "text/plain; charset=utf-8", std::move(body)};
  }
  if (path == "/metrics") {
    std::string body = metrics_.RenderPrometheus(manager_.Stats(), manager_.Ready().ready);
    manager_.AppendMetrics(body);
    if (cluster_ != nullptr) cluster_->View().AppendPrometheus(body);
    return {200, "text/plain; version=0.0.4; charset=utf-8", std::move(body)};
  }
  if (path == "/digest") return DigestResponse();
  return {200, "application/json", ClusterJson()};
}

AdminResponse AdminServer::DigestResponse() const {
  const std::optional<ContentDigest> digest = manager_.Digest();
  if (!digest) {
    return {404, "text/plain; charset=utf-8",
            fmt::format("this node holds no sessions itself in {} mode, so it has no digest; "
                        "compare the store behind it instead\n",
                        manager_.mode())};
  }
  std::string out = "{\"node_id\":";
  AppendJsonString(out, node_.node_id);
  out += ",\"mode\":";
  AppendJsonString(out, node_.mode);
  out += fmt::format(",\"sessions\":{},\"digest\":\"{:016x}\",\"ready\":{}}}\n", digest->sessions,
                     digest->hash, manager_.Ready().ready);
  return {200, "application/json", std::move(out)};
}

std::string AdminServer::ClusterJson() const {
  const v1::NodeStats stats = manager_.Stats();
  std::string out = "{\"node_id\":";
  AppendJsonString(out, node_.node_id);
  out += ",\"mode\":";
  AppendJsonString(out, node_.mode);
  // 64-bit numbers travel as strings, as protobuf's JSON mapping does: a JSON reader that keeps
  // numbers as doubles would round them.
  out += ",\"incarnation\":\"" + std::to_string(node_.incarnation) + "\"";
  out += ",\"ready\":";
  out += manager_.Ready().ready ? "true" : "false";
  out += ",\"listen\":{\"client\":";
  AppendJsonString(out, node_.client_address);
  out += ",\"client_port\":" + std::to_string(node_.client_port);
  out += ",\"peer_port\":" + std::to_string(node_.peer_port);
  out += ",\"admin_port\":" + std::to_string(node_.admin_port);
  out += ",\"unix\":";
  AppendJsonString(out, node_.unix_path);
  out += "},\"sessions\":" + std::to_string(stats.sessions());
  // The mode's counters (sessions held as primary, backup and proxy in backup mode, ...), in
  // name order so that the answer is stable.
  out += ",\"counters\":{";
  std::map<std::string, uint64_t> counters(stats.counters().begin(), stats.counters().end());
  bool first = true;
  for (const auto& [name, value] : counters) {
    if (!first) out += ",";
    first = false;
    AppendJsonString(out, name);
    out += ":" + std::to_string(value);
  }
  out += "},\"members\":[";
  if (cluster_ == nullptr) {
    out += "{\"node_id\":";
    AppendJsonString(out, node_.node_id);
    out += ",\"peer_address\":\"\",\"incarnation\":\"" + std::to_string(node_.incarnation) +
           "\",\"state\":\"alive\",\"self\":true}]}\n";
    return out;
  }
  const ClusterView view = cluster_->View();
  first = true;
  for (const MemberView& m : view.members) {
    if (!first) out += ",";
    first = false;
    out += "{\"node_id\":";
    AppendJsonString(out, m.member.node_id);
    out += ",\"peer_address\":";
    AppendJsonString(out, m.member.self ? view.advertise_address : m.member.address);
    out += ",\"incarnation\":\"" + std::to_string(m.member.incarnation) + "\"";
    out += ",\"state\":";
    AppendJsonString(out, MemberStateName(m.member.state));
    out += ",\"self\":";
    out += m.member.self ? "true" : "false";
    if (!m.member.self) {
      // Lag is what the peer has not acknowledged yet: messages, and bytes still queued here.
      out += fmt::format(
          ",\"link\":\"{}\",\"queue_frames\":{},\"queue_bytes\":{},\"unacked\":{},"
          "\"rtt_ms\":{},\"heard_ago_ms\":{},\"bytes_sent\":{},\"bytes_received\":{}",
          m.linked ? "up" : "down", m.queue_frames, m.queue_bytes, m.unacked(), m.rtt_ms,
          m.heard_ago_ms, m.counters.bytes_out, m.counters.bytes_in);
    }
    out += "}";
  }
  out += "],\"cluster\":" + view.ToJson() + "}\n";
  return out;
}

}  // namespace sessiond

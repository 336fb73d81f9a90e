#include "sessiond/admin_server.h"

#include <spdlog/spdlog.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <utility>

#include "sessiond/log_errors.h"

namespace sessiond {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;

constexpr auto kIoTimeout = 10s;
constexpr size_t kMaxRequestBodyBytes = 64u << 10;
constexpr size_t kMaxHeaderBytes = 16u << 10;

void AppendJsonString(std::string& out, std::string_view text) {
  out.push_back('"');
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

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
  const bool known =
      path == "/healthz" || path == "/readyz" || path == "/metrics" || path == "/cluster";
  if (!known) {
    return {404, "text/plain; charset=utf-8",
            "not found: the admin endpoint serves /healthz, /readyz, /metrics and /cluster\n"};
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
    return {200, "text/plain; version=0.0.4; charset=utf-8",
            metrics_.RenderPrometheus(manager_.Stats(), manager_.Ready().ready)};
  }
  return {200, "application/json", ClusterJson()};
}

std::string AdminServer::ClusterJson() const {
  std::vector<ClusterMember> members;
  if (members_) members = members_();
  if (members.empty()) {
    members.push_back(ClusterMember{node_.node_id, "", node_.incarnation, "alive", true});
  }
  std::string out = "{\"node_id\":";
  AppendJsonString(out, node_.node_id);
  out += ",\"mode\":";
  AppendJsonString(out, node_.mode);
  out += ",\"incarnation\":" + std::to_string(node_.incarnation);
  out += ",\"ready\":";
  out += manager_.Ready().ready ? "true" : "false";
  out += ",\"listen\":{\"client\":";
  AppendJsonString(out, node_.client_address);
  out += ",\"client_port\":" + std::to_string(node_.client_port);
  out += ",\"peer_port\":" + std::to_string(node_.peer_port);
  out += ",\"admin_port\":" + std::to_string(node_.admin_port);
  out += ",\"unix\":";
  AppendJsonString(out, node_.unix_path);
  out += "},\"members\":[";
  for (size_t i = 0; i < members.size(); ++i) {
    const ClusterMember& member = members[i];
    if (i > 0) out += ",";
    out += "{\"node_id\":";
    AppendJsonString(out, member.node_id);
    out += ",\"peer_address\":";
    AppendJsonString(out, member.peer_address);
    out += ",\"incarnation\":" + std::to_string(member.incarnation);
    out += ",\"state\":";
    AppendJsonString(out, member.state);
    out += ",\"self\":";
    out += member.self ? "true" : "false";
    out += "}";
  }
  out += "]}\n";
  return out;
}

}  // namespace sessiond

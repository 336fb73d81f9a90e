#include "tools/bench/http_get.h"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "sessiond/asio.h"

namespace sessiond::bench {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {

asio::awaitable<void> Exchange(beast::tcp_stream& stream, asio::ip::tcp::endpoint to,
                               std::string target, std::string host,
                               std::chrono::milliseconds timeout, boost::system::error_code& ec,
                               HttpResponse& out) {
  stream.expires_after(timeout);
  co_await stream.async_connect(to, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  http::request<http::empty_body> request{http::verb::get, target, 11};
  request.set(http::field::host, host);
  request.set(http::field::user_agent, "sessiond-bench");
  request.set(http::field::connection, "close");
  co_await http::async_write(stream, request, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64u << 20);  // /metrics of a busy node is well below this
  co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  out.status = parser.get().result_int();
  out.body = std::move(parser.get().body());
}

}  // namespace

Result<HttpResponse> HttpGet(const Endpoint& server, std::string_view target,
                             std::chrono::milliseconds timeout) {
  if (server.kind != Endpoint::Kind::kTcp) {
    return InvalidArgument("the admin endpoint must be HOST:PORT, not " + server.ToString());
  }
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(server.host, ec);
  if (ec) {
    return InvalidArgument("admin host " + server.host + " is not an IP address; use one");
  }
  asio::io_context io;
  beast::tcp_stream stream(io);
  HttpResponse response;
  asio::co_spawn(io,
                 Exchange(stream, asio::ip::tcp::endpoint(address, server.port),
                          std::string(target), server.host, timeout, ec, response),
                 asio::detached);
  io.run();
  if (ec) {
    return Unavailable("GET http://" + server.ToString() + std::string(target) +
                       " failed: " + ec.message());
  }
  return response;
}

}  // namespace sessiond::bench

#include "tools/sessionctl/admin_http_client.h"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>

#include "sessiond/asio.h"

namespace sessiond::sessionctl {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;

// One GET on its own loop, so that Beast's per-operation deadlines apply.
asio::awaitable<void> Fetch(const Endpoint& admin, std::string target,
                            std::chrono::milliseconds timeout,
                            std::optional<Result<std::string>>& result) {
  auto executor = co_await asio::this_coro::executor;
  const std::string where = admin.ToString();
  boost::system::error_code ec;
  asio::ip::tcp::resolver resolver(executor);
  auto addresses = co_await resolver.async_resolve(admin.host, std::to_string(admin.port),
                                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    result = Unavailable("cannot resolve the admin endpoint " + where + ": " + ec.message());
    co_return;
  }
  beast::tcp_stream stream(executor);
  stream.expires_after(timeout);
  co_await stream.async_connect(addresses, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    result = Unavailable("cannot reach the admin endpoint " + where + ": " + ec.message() +
                         "; is the daemon running, and is --admin its --admin-listen address?");
    co_return;
  }
  http::request<http::empty_body> request(http::verb::get, target, 11);
  request.set(http::field::host, admin.host);
  request.set(http::field::user_agent, "sessionctl");
  co_await http::async_write(stream, request, asio::redirect_error(asio::use_awaitable, ec));
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  if (!ec) {
    co_await http::async_read(stream, buffer, response,
                              asio::redirect_error(asio::use_awaitable, ec));
  }
  if (ec) {
    result = Unavailable("the admin endpoint " + where + " did not answer GET " + target + ": " +
                         ec.message());
    co_return;
  }
  if (response.result() != http::status::ok) {
    result = Unavailable("the admin endpoint " + where + " answered GET " + target + " with " +
                         std::to_string(response.result_int()) + ": " + response.body());
    co_return;
  }
  result = std::move(response.body());
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
}

}  // namespace

Result<std::string> AdminHttpClient::Get(std::string_view path) const {
  asio::io_context io(1);
  std::optional<Result<std::string>> result;
  asio::co_spawn(io, Fetch(admin_, std::string(path), timeout_, result), asio::detached);
  io.run();
  if (!result) return Internal("the admin request ended without an answer; this is a bug");
  return std::move(*result);
}

}  // namespace sessiond::sessionctl

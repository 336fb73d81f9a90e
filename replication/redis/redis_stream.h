// RedisStream: the byte stream under a RedisConnection: a plain TCP socket (redis://) or TLS
// over one (rediss://). Everything above it (connect, pipelining, deadlines) is the same for
// both; only the handshake after the TCP connect and the reads and writes differ.
//
//   RedisStream stream(executor, tls);             // tls null: plain TCP
//   co_await asio::async_connect(stream.socket(), endpoints, ...);
//   Status s = co_await stream.Handshake(host, where);   // OK at once without TLS
//   co_await stream.async_read_some(buffer, token);
//
// TLS: the server's certificate must chain to the context's CAs and name `host` (as a DNS name,
// sent as SNI too, or as an IP address). One read and one write may be in flight together.
//
// Threading: one single-threaded executor, as RedisConnection.
#ifndef SESSIOND_REPLICATION_REDIS_REDIS_STREAM_H_
#define SESSIOND_REPLICATION_REDIS_REDIS_STREAM_H_

#include <memory>
#include <string>
#include <utility>
#include <variant>

#include "replication/redis/redis_tls_context.h"
#include "sessiond/asio.h"
#include "sessiond/status.h"

namespace sessiond {

class RedisStream {
 public:
  using Socket = asio::ip::tcp::socket;
  using TlsStream = asio::ssl::stream<Socket>;

  // Plain TCP when `tls` is null; otherwise TLS with that context (kept alive by the stream).
  RedisStream(const asio::any_io_executor& executor, std::shared_ptr<RedisTlsContext> tls);
  RedisStream(const RedisStream&) = delete;
  RedisStream& operator=(const RedisStream&) = delete;

  // The TCP socket underneath: connect it, set its options, close it.
  Socket& socket();
  bool is_tls() const { return tls_context_ != nullptr; }

  // After the TCP connect: the TLS handshake, the certificate checked against `host`. OK at once
  // without TLS. UNAVAILABLE with a sentence naming the cause (the certificate did not verify,
  // and why; Redis refused this client's certificate; the port does not speak TLS...), `where`
  // naming the Redis.
  asio::awaitable<Status> Handshake(const std::string& host, const std::string& where);

  template <typename Token>
  auto async_read_some(asio::mutable_buffer buffer, Token&& token) {
    if (auto* tls = std::get_if<TlsStream>(&stream_)) {
      return tls->async_read_some(buffer, std::forward<Token>(token));
    }
    return std::get<Socket>(stream_).async_read_some(buffer, std::forward<Token>(token));
  }

  // Writes all of `buffer`.
  template <typename Token>
  auto async_write(asio::const_buffer buffer, Token&& token) {
    if (auto* tls = std::get_if<TlsStream>(&stream_)) {
      return asio::async_write(*tls, buffer, std::forward<Token>(token));
    }
    return asio::async_write(std::get<Socket>(stream_), buffer, std::forward<Token>(token));
  }

  // Shuts the socket down and closes it; pending operations end with an error. No TLS
  // close_notify is sent: the connection is being abandoned, and Redis does not need one.
  void Close();

  // What an I/O error on this stream means, in words: TLS alerts and truncation explained
  // ("Redis refused this node's client certificate ..."), otherwise the error's message.
  std::string DescribeError(const boost::system::error_code& ec) const;

 private:
  std::shared_ptr<RedisTlsContext> tls_context_;  // null: plain TCP
  std::variant<std::monostate, Socket, TlsStream> stream_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_REDIS_REDIS_STREAM_H_

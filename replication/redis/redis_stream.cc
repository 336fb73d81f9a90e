#include "replication/redis/redis_stream.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace sessiond {
namespace {

bool IsTlsError(const boost::system::error_code& ec, int reason) {
  return ec.category() == asio::error::get_ssl_category() && ERR_GET_REASON(ec.value()) == reason;
}

}  // namespace

RedisStream::RedisStream(const asio::any_io_executor& executor,
                         std::shared_ptr<RedisTlsContext> tls)
    : tls_context_(std::move(tls)) {
  if (tls_context_) {
    stream_.emplace<TlsStream>(executor, tls_context_->context());
  } else {
    stream_.emplace<Socket>(executor);
  }
}

RedisStream::Socket& RedisStream::socket() {
  if (auto* tls = std::get_if<TlsStream>(&stream_)) return tls->next_layer();
  return std::get<Socket>(stream_);
}

void RedisStream::Close() {
  boost::system::error_code ignored;
  socket().shutdown(Socket::shutdown_both, ignored);
  socket().close(ignored);
}

asio::awaitable<Status> RedisStream::Handshake(const std::string& host, const std::string& where) {
  auto* tls = std::get_if<TlsStream>(&stream_);
  if (tls == nullptr) co_return Status::Ok();
  SSL* ssl = tls->native_handle();
  // OpenSSL checks the name itself during verification, so a mismatch is a verification error
  // with its own reason ("hostname mismatch", "IP address mismatch").
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  boost::system::error_code not_an_address;
  asio::ip::make_address(host, not_an_address);
  if (!not_an_address) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());  // no SNI for an address (RFC 6066)
  } else {
    SSL_set_tlsext_host_name(ssl, host.c_str());
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
  }
  boost::system::error_code ec;
  co_await tls->async_handshake(asio::ssl::stream_base::client,
                                asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) co_return Status::Ok();
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK && IsTlsError(ec, SSL_R_CERTIFICATE_VERIFY_FAILED)) {
    std::string sentence = "the Redis server's certificate at " + where +
                           " did not verify against " + tls_context_->TrustDescription() + ": " +
                           X509_verify_cert_error_string(verify);
    if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      sentence += " (it does not name '" + host +
                  "'); use the host name or address the certificate was issued for in --redis";
    } else {
      sentence += "; give --redis-tls-ca-file the CA certificate that signed Redis's tls-cert-file";
    }
    co_return Unavailable(std::move(sentence));
  }
  co_return Unavailable("the TLS handshake with Redis at " + where + " failed (" +
                        DescribeError(ec) + ")");
}

std::string RedisStream::DescribeError(const boost::system::error_code& ec) const {
  if (!is_tls()) return ec == asio::error::eof ? std::string("closed by Redis") : ec.message();
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
    return "closed by Redis";
  }
  if (IsTlsError(ec, SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED) ||
      IsTlsError(ec, SSL_R_SSLV3_ALERT_BAD_CERTIFICATE) ||
      IsTlsError(ec, SSL_R_TLSV1_ALERT_UNKNOWN_CA) ||
      IsTlsError(ec, SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN)) {
    const std::string& cert = tls_context_->options().cert_file;
    return "Redis refused this node's client certificate: " + ec.message() +
           (cert.empty() ? std::string("; it wants one (tls-auth-clients yes): give "
                                       "--redis-tls-cert-file and --redis-tls-key-file")
                         : "; check that its tls-ca-cert-file holds the CA that signed "
                           "--redis-tls-cert-file " +
                               cert);
  }
  if (IsTlsError(ec, SSL_R_WRONG_VERSION_NUMBER) || IsTlsError(ec, SSL_R_PACKET_LENGTH_TOO_LONG)) {
    return ec.message() +
           "; that port does not seem to speak TLS: name Redis's tls-port in rediss://, or use "
           "redis:// for its plain port";
  }
  return ec.message();
}

}  // namespace sessiond

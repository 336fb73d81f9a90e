#include "replication/redis/redis_tls_context.h"

#include <openssl/ssl.h>

#include <utility>

namespace sessiond {

RedisTlsContext::RedisTlsContext(RedisTlsOptions options)
    : options_(std::move(options)), context_(asio::ssl::context::tls_client) {}

Result<std::shared_ptr<RedisTlsContext>> RedisTlsContext::Create(RedisTlsOptions options) {
  std::shared_ptr<RedisTlsContext> tls(new RedisTlsContext(std::move(options)));
  const RedisTlsOptions& o = tls->options_;
  asio::ssl::context& context = tls->context_;
  SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_2_VERSION);
  context.set_verify_mode(asio::ssl::verify_peer);

  boost::system::error_code ec;
  if (o.ca_file.empty()) {
    context.set_default_verify_paths(ec);
    if (ec) {
      return InvalidArgument("cannot load the system's trusted CA certificates for TLS to Redis (" +
                             ec.message() + "); name the CA with --redis-tls-ca-file");
    }
  } else {
    context.load_verify_file(o.ca_file, ec);
    if (ec) {
      return InvalidArgument("--redis-tls-ca-file '" + o.ca_file +
                             "' cannot be used as CA certificates (" + ec.message() +
                             "); give a readable PEM file holding the CA that signed Redis's "
                             "certificate");
    }
  }
  if (o.cert_file.empty() != o.key_file.empty()) {
    return InvalidArgument(
        "--redis-tls-cert-file and --redis-tls-key-file go together; give both (a client "
        "certificate and its key) or neither");
  }
  if (!o.cert_file.empty()) {
    context.use_certificate_chain_file(o.cert_file, ec);
    if (ec) {
      return InvalidArgument("--redis-tls-cert-file '" + o.cert_file +
                             "' cannot be used as a client certificate (" + ec.message() +
                             "); give a readable PEM certificate");
    }
    context.use_private_key_file(o.key_file, asio::ssl::context::pem, ec);
    if (ec) {
      // OpenSSL also checks here that the key is the certificate's ("key values mismatch").
      return InvalidArgument("--redis-tls-key-file '" + o.key_file +
                             "' cannot be used as the key of --redis-tls-cert-file '" +
                             o.cert_file + "' (" + ec.message() +
                             "); give the unencrypted PEM private key of that certificate");
    }
    if (SSL_CTX_check_private_key(context.native_handle()) != 1) {
      return InvalidArgument("--redis-tls-key-file '" + o.key_file +
                             "' is not the key of --redis-tls-cert-file '" + o.cert_file +
                             "'; give the key that belongs to that certificate");
    }
  }
  return tls;
}

std::string RedisTlsContext::TrustDescription() const {
  return options_.ca_file.empty() ? std::string("the system trust store")
                                  : "--redis-tls-ca-file " + options_.ca_file;
}

}  // namespace sessiond

// RedisTlsContext: the OpenSSL client context that every TLS connection to one Redis shares: the
// trusted CAs, the optional client certificate, TLS 1.2 at least, peer verification on.
//
// Made once (RedisManager makes it at construction) so a bad file is reported once, at start,
// rather than at every reconnect.
//
// Threading: immutable once made; connections on any thread may use it.
#ifndef SESSIOND_REPLICATION_REDIS_REDIS_TLS_CONTEXT_H_
#define SESSIOND_REPLICATION_REDIS_REDIS_TLS_CONTEXT_H_

#include <memory>
#include <string>

#include "replication/redis/redis_tls_options.h"
#include "sessiond/asio.h"
// clang-format off
#include <boost/asio/ssl.hpp>
// clang-format on
#include "sessiond/status.h"

namespace sessiond {

class RedisTlsContext {
 public:
  // Loads the CA file (or the system trust store when options.ca_file is empty) and the client
  // certificate and key when given. INVALID_ARGUMENT with a sentence naming the file and the
  // flag when one cannot be read or used (the key does not match the certificate, ...).
  static Result<std::shared_ptr<RedisTlsContext>> Create(RedisTlsOptions options);

  RedisTlsContext(const RedisTlsContext&) = delete;
  RedisTlsContext& operator=(const RedisTlsContext&) = delete;

  asio::ssl::context& context() { return context_; }
  const RedisTlsOptions& options() const { return options_; }
  // What the server's certificate is checked against, for error sentences:
  // "--redis-tls-ca-file PATH" or "the system trust store".
  std::string TrustDescription() const;

 private:
  explicit RedisTlsContext(RedisTlsOptions options);

  const RedisTlsOptions options_;
  asio::ssl::context context_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_REDIS_REDIS_TLS_CONTEXT_H_

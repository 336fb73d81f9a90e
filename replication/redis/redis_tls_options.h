// RedisTlsOptions: the files TLS to Redis (rediss://) uses. Plain data, so the daemon's
// configuration can carry it without seeing OpenSSL; RedisTlsContext loads it.
#ifndef SESSIOND_REPLICATION_REDIS_REDIS_TLS_OPTIONS_H_
#define SESSIOND_REPLICATION_REDIS_REDIS_TLS_OPTIONS_H_

#include <string>

namespace sessiond {

struct RedisTlsOptions {
  // PEM file of the CA certificates the server's certificate must chain to; "" = the system
  // trust store.
  std::string ca_file;
  // PEM client certificate (or chain) and its private key, for a Redis with
  // tls-auth-clients yes. Both or neither.
  std::string cert_file;
  std::string key_file;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_REDIS_REDIS_TLS_OPTIONS_H_

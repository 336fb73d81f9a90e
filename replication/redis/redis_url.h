// RedisUrl: where a Redis is and how to log in to it, parsed from
// redis://[user:password@]HOST:PORT[/DB], or rediss://... for TLS.
#ifndef SESSIOND_REPLICATION_REDIS_REDIS_URL_H_
#define SESSIOND_REPLICATION_REDIS_REDIS_URL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "sessiond/status.h"

namespace sessiond {

struct RedisUrl {
  // Parses `text`. User and password may be percent-encoded (%40 for '@'); "redis://secret@h"
  // means a password with the default user, as redis-cli reads it. Returns INVALID_ARGUMENT with
  // a sentence showing the accepted form when `text` is not one. rediss:// sets `tls`.
  static Result<RedisUrl> Parse(std::string_view text);

  // Replaces `password` with the contents of the file at `path`, less one trailing newline, so
  // the secret need not appear on a command line. INVALID_ARGUMENT when it cannot be read.
  Status LoadPasswordFile(const std::string& path);

  // "HOST:PORT/DB": what logs and error sentences show. Never contains the password.
  std::string Describe() const;

  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  uint32_t db = 0;
  std::string user;      // "" = the default user
  std::string password;  // "" = no AUTH
  bool tls = false;      // rediss://: TLS, the server's certificate checked against `host`
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_REDIS_REDIS_URL_H_

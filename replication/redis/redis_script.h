// RedisScript: a Lua script run by its SHA1 (EVALSHA), so each call sends a 40-byte digest
// rather than the source. Redis forgets scripts when it restarts or on SCRIPT FLUSH; callers
// then get NOSCRIPT and send Load() once before calling again.
#ifndef SESSIOND_REPLICATION_REDIS_REDIS_SCRIPT_H_
#define SESSIOND_REPLICATION_REDIS_REDIS_SCRIPT_H_

#include <string>
#include <string_view>
#include <vector>

#include "replication/redis/redis_command.h"

namespace sessiond {

class RedisScript {
 public:
  // `name` is for error sentences ("the update script").
  RedisScript(std::string name, std::string source);

  const std::string& name() const { return name_; }
  const std::string& source() const { return source_; }
  // Lower-case hex SHA1 of the source: the name Redis files it under.
  const std::string& sha1() const { return sha1_; }

  // SCRIPT LOAD <source>.
  RedisCommand Load() const;
  // EVALSHA <sha1> <keys.size()> keys... args...
  // The views need only last for the call: the command copies them.
  RedisCommand Call(const std::vector<std::string_view>& keys,
                    const std::vector<std::string_view>& args) const;

 private:
  std::string name_;
  std::string source_;
  std::string sha1_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_REDIS_REDIS_SCRIPT_H_

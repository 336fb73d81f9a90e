// RedisCommand: one command in RESP form, encoded once by hiredis's redisFormatCommandArgv and
// then only copied into a connection's write buffer.
#ifndef SESSIOND_REPLICATION_REDIS_REDIS_COMMAND_H_
#define SESSIOND_REPLICATION_REDIS_REDIS_COMMAND_H_

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace sessiond {

class RedisCommand {
 public:
  // `args` is the command and its arguments, binary-safe: {"HGET", key, field}. REQUIRES: not
  // empty.
  RedisCommand(std::initializer_list<std::string_view> args);
  explicit RedisCommand(const std::vector<std::string_view>& args);
  explicit RedisCommand(const std::vector<std::string>& args);

  // The RESP bytes to write.
  const std::string& bytes() const { return bytes_; }
  // The command's name as given ("EVALSHA"), for error sentences.
  const std::string& name() const { return name_; }

 private:
  void Encode(const char* const* argv, const size_t* lengths, size_t argc);

  std::string bytes_;
  std::string name_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_REDIS_REDIS_COMMAND_H_

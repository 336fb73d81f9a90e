// RedisReply: one RESP2 reply, owned, copied out of the tree hiredis's reader builds.
//
// Small and value-typed so replies can cross coroutine boundaries without hiredis's manual
// freeing. An error reply ("-ERR ...") is a reply, not a failure: it is Redis's answer, and
// the caller decides what it means.
#ifndef SESSIOND_REPLICATION_REDIS_REDIS_REPLY_H_
#define SESSIOND_REPLICATION_REDIS_REDIS_REPLY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

struct redisReply;  // hiredis

namespace sessiond {

class RedisReply {
 public:
  enum class Type { kNil, kString, kStatus, kError, kInteger, kArray };

  // A nil reply.
  RedisReply() = default;

  static RedisReply String(std::string text) { return RedisReply(Type::kString, std::move(text)); }
  static RedisReply StatusText(std::string text) {
    return RedisReply(Type::kStatus, std::move(text));
  }
  static RedisReply Error(std::string text) { return RedisReply(Type::kError, std::move(text)); }
  static RedisReply Integer(int64_t value);
  static RedisReply Array(std::vector<RedisReply> elements);

  // A deep copy of `reply` (REQUIRES: not null). The caller still frees `reply`.
  static RedisReply FromHiredis(const redisReply* reply);

  Type type() const { return type_; }
  bool is_nil() const { return type_ == Type::kNil; }
  bool is_error() const { return type_ == Type::kError; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_integer() const { return type_ == Type::kInteger; }
  // A bulk or status string.
  bool is_text() const { return type_ == Type::kString || type_ == Type::kStatus; }

  // The text of a string, status or error reply; "" for the other types.
  const std::string& text() const { return text_; }
  // The value of an integer reply; 0 for the other types.
  int64_t integer() const { return integer_; }
  // The elements of an array reply; empty for the other types.
  const std::vector<RedisReply>& elements() const { return elements_; }
  std::vector<RedisReply>& elements() { return elements_; }

  // True when this is a string or status reply equal to `text`.
  bool IsText(std::string_view text) const { return is_text() && text_ == text; }
  // True when this is an error reply whose first word (the error code) is `code`, e.g. NOSCRIPT.
  bool IsErrorCode(std::string_view code) const;

  // A short rendering for logs and test failures, e.g. `["OK", 3, nil]`.
  std::string Describe() const;

 private:
  RedisReply(Type type, std::string text) : type_(type), text_(std::move(text)) {}

  Type type_ = Type::kNil;
  std::string text_;
  int64_t integer_ = 0;
  std::vector<RedisReply> elements_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_REDIS_REDIS_REPLY_H_

// JsonValue: a parsed JSON document (RFC 8259), for the daemon's port file and for checking the
// reports sessiond-bench writes. No JSON library is among the project's packages, and the bench
// needs only this much.
//
// The parser is strict: one value, no trailing commas, no comments, strings must be valid escapes,
// nesting at most 256 deep. Numbers are kept as double and, when they are integers that fit,
// exactly as int64.
#ifndef SESSIOND_TOOLS_BENCH_JSON_VALUE_H_
#define SESSIOND_TOOLS_BENCH_JSON_VALUE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sessiond/status.h"

namespace sessiond::bench {

class JsonValue {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  // Parses `text`; INVALID_ARGUMENT naming the byte offset and what was expected otherwise.
  static Result<JsonValue> Parse(std::string_view text);

  JsonValue() = default;

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  // Accessors return a neutral value (false, 0, "", empty) for the wrong type.
  bool as_bool() const { return type_ == Type::kBool && bool_; }
  double as_double() const { return type_ == Type::kNumber ? number_ : 0.0; }
  // The exact integer, when the number is one that fits in int64.
  std::optional<int64_t> as_int64() const;
  const std::string& as_string() const;
  const std::vector<JsonValue>& as_array() const;
  const std::map<std::string, JsonValue>& as_object() const;

  // The member `key` of an object, or nullptr (not an object, or no such key).
  const JsonValue* Find(std::string_view key) const;

 private:
  friend class JsonParser;

  Type type_ = Type::kNull;
  bool bool_ = false;
  double number_ = 0.0;
  std::optional<int64_t> integer_;
  std::string string_;
  std::vector<JsonValue> array_;
  std::map<std::string, JsonValue> object_;
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_JSON_VALUE_H_

// JsonWriter: builds a JSON document as text, with correct escaping and no trailing commas.
//
//   JsonWriter w;
//   w.BeginObject();
//   w.Key("mode").String("delta");
//   w.Key("p99_ms").Number(1.25);
//   w.EndObject();
//   std::string text = w.Take();
//
// Non-finite numbers are written as null (JSON has no NaN). Output is indented two spaces so a
// person can read the report. Misuse (a value without a key inside an object) is a programming
// error, caught by assert.
#ifndef SESSIOND_TOOLS_BENCH_JSON_WRITER_H_
#define SESSIOND_TOOLS_BENCH_JSON_WRITER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sessiond::bench {

class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  // The key of the next value; only inside an object.
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view value);
  JsonWriter& Number(double value);
  JsonWriter& Integer(int64_t value);
  JsonWriter& Unsigned(uint64_t value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();

  // The document so far; call once it is complete.
  std::string Take();

  // `value` as a quoted JSON string.
  static std::string Quote(std::string_view value);

 private:
  struct Level {
    bool object;
    bool empty = true;
    bool has_key = false;
  };
  void BeforeValue();
  void Newline();

  std::string out_;
  std::vector<Level> stack_;
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_JSON_WRITER_H_

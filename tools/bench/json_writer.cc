#include "tools/bench/json_writer.h"

#include <fmt/format.h>

#include <cassert>
#include <cmath>

#include "replication/json_string.h"

namespace sessiond::bench {

std::string JsonWriter::Quote(std::string_view value) { return JsonString(value); }

void JsonWriter::Newline() {
  out_ += '\n';
  out_.append(stack_.size() * 2, ' ');
}

void JsonWriter::BeforeValue() {
  if (stack_.empty()) return;
  Level& level = stack_.back();
  if (level.object) {
    assert(level.has_key && "a value inside an object needs a Key() first");
    level.has_key = false;
    return;
  }
  if (!level.empty) out_ += ',';
  level.empty = false;
  Newline();
}

JsonWriter& JsonWriter::Key(std::string_view key) {
  assert(!stack_.empty() && stack_.back().object && !stack_.back().has_key);
  Level& level = stack_.back();
  if (!level.empty) out_ += ',';
  level.empty = false;
  level.has_key = true;
  Newline();
  out_ += Quote(key);
  out_ += ": ";
  return *this;
}

JsonWriter& JsonWriter::BeginObject() {
  BeforeValue();
  out_ += '{';
  stack_.push_back(Level{.object = true});
  return *this;
}

JsonWriter& JsonWriter::EndObject() {
  assert(!stack_.empty() && stack_.back().object);
  const bool empty = stack_.back().empty;
  stack_.pop_back();
  if (!empty) Newline();
  out_ += '}';
  return *this;
}

JsonWriter& JsonWriter::BeginArray() {
  BeforeValue();
  out_ += '[';
  stack_.push_back(Level{.object = false});
  return *this;
}

JsonWriter& JsonWriter::EndArray() {
  assert(!stack_.empty() && !stack_.back().object);
  const bool empty = stack_.back().empty;
  stack_.pop_back();
  if (!empty) Newline();
  out_ += ']';
  return *this;
}

JsonWriter& JsonWriter::String(std::string_view value) {
  BeforeValue();
  out_ += Quote(value);
  return *this;
}

JsonWriter& JsonWriter::Number(double value) {
  BeforeValue();
  if (!std::isfinite(value)) {
    out_ += "null";
  } else {
    // Shortest text that reads back as the same double.
    out_ += fmt::format("{}", value);
  }
  return *this;
}

JsonWriter& JsonWriter::Integer(int64_t value) {
  BeforeValue();
  out_ += std::to_string(value);
  return *this;
}

JsonWriter& JsonWriter::Unsigned(uint64_t value) {
  BeforeValue();
  out_ += std::to_string(value);
  return *this;
}

JsonWriter& JsonWriter::Bool(bool value) {
  BeforeValue();
  out_ += value ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::Null() {
  BeforeValue();
  out_ += "null";
  return *this;
}

std::string JsonWriter::Take() {
  assert(stack_.empty() && "Take() before the document was closed");
  out_ += '\n';
  return std::move(out_);
}

}  // namespace sessiond::bench

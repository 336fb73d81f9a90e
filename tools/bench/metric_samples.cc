#include "tools/bench/metric_samples.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <vector>

namespace sessiond::bench {
namespace {

bool IsNameChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

std::string Escape(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<double> ParseValue(std::string_view token) {
  if (token == "+Inf" || token == "Inf") return std::numeric_limits<double>::infinity();
  if (token == "-Inf") return -std::numeric_limits<double>::infinity();
  if (token == "NaN") return std::numeric_limits<double>::quiet_NaN();
  const std::string s(token);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || *end != '\0') return std::nullopt;
  return v;
}

}  // namespace

Result<MetricSamples> MetricSamples::Parse(std::string_view text) {
  MetricSamples out;
  size_t line_number = 0;
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    ++line_number;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    size_t p = 0;
    while (p < line.size() && (line[p] == ' ' || line[p] == '\t')) ++p;
    if (p == line.size() || line[p] == '#') continue;

    auto bad = [&](const std::string& why) {
      return InvalidArgument("metrics line " + std::to_string(line_number) + " (" +
                             std::string(line.substr(0, 80)) + ") is not a sample: " + why);
    };
    Series series;
    const size_t name_start = p;
    while (p < line.size() && IsNameChar(line[p], p == name_start)) ++p;
    if (p == name_start) return bad("no metric name");
    series.name = std::string(line.substr(name_start, p - name_start));
    if (p < line.size() && line[p] == '{') {
      ++p;
      for (;;) {
        while (p < line.size() && (line[p] == ' ' || line[p] == ',')) ++p;
        if (p < line.size() && line[p] == '}') {
          ++p;
          break;
        }
        const size_t label_start = p;
        while (p < line.size() && IsNameChar(line[p], p == label_start)) ++p;
        if (p == label_start) return bad("a label name was expected");
        std::string label(line.substr(label_start, p - label_start));
        if (p + 1 >= line.size() || line[p] != '=' || line[p + 1] != '"') {
          return bad("a label needs =\"value\"");
        }
        p += 2;
        std::string value;
        bool closed = false;
        while (p < line.size()) {
          const char c = line[p++];
          if (c == '"') {
            closed = true;
            break;
          }
          if (c == '\\' && p < line.size()) {
            const char e = line[p++];
            value += e == 'n' ? '\n' : e;
          } else {
            value += c;
          }
        }
        if (!closed) return bad("an unterminated label value");
        series.labels[std::move(label)] = std::move(value);
      }
    }
    while (p < line.size() && (line[p] == ' ' || line[p] == '\t')) ++p;
    size_t value_end = p;
    while (value_end < line.size() && line[value_end] != ' ' && line[value_end] != '\t') {
      ++value_end;
    }
    const std::optional<double> value = ParseValue(line.substr(p, value_end - p));
    if (!value) return bad("no number after the name");
    series.value = *value;

    std::string key = series.name;
    if (!series.labels.empty()) {
      key += '{';
      bool first = true;
      for (const auto& [label, v] : series.labels) {
        if (!first) key += ',';
        first = false;
        key += label + "=\"" + Escape(v) + "\"";
      }
      key += '}';
    }
    out.samples_[key] = series.value;
    out.by_name_[series.name].push_back(std::move(series));
  }
  return out;
}

std::optional<double> MetricSamples::Get(std::string_view key) const {
  auto it = samples_.find(std::string(key));
  if (it == samples_.end()) return std::nullopt;
  return it->second;
}

std::optional<double> MetricSamples::Sum(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) return std::nullopt;
  double sum = 0;
  for (const auto& s : it->second) sum += s.value;
  return sum;
}

std::optional<double> MetricSamples::SumWhere(std::string_view name, std::string_view label,
                                              std::string_view value) const {
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) return std::nullopt;
  std::optional<double> sum;
  for (const auto& s : it->second) {
    auto l = s.labels.find(std::string(label));
    if (l != s.labels.end() && l->second == value) sum = sum.value_or(0) + s.value;
  }
  return sum;
}

}  // namespace sessiond::bench

// MetricSamples: one scrape of a Prometheus text exposition, as "name{labels}" -> value.
//
// Keys are canonical: labels sorted by name, values re-escaped, so
// `sessiond_requests_total{status="OK",op="get"}` and `{op="get",status="OK"}` are one key:
// `sessiond_requests_total{op="get",status="OK"}`. A sample without labels is keyed by its name.
// Comments (# HELP, # TYPE) and timestamps are skipped.
#ifndef SESSIOND_TOOLS_BENCH_METRIC_SAMPLES_H_
#define SESSIOND_TOOLS_BENCH_METRIC_SAMPLES_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sessiond/status.h"

namespace sessiond::bench {

class MetricSamples {
 public:
  // Parses the text format (version 0.0.4). INVALID_ARGUMENT naming the line that is not a sample.
  static Result<MetricSamples> Parse(std::string_view text);

  // The value of one series: `key` as the canonical form above.
  std::optional<double> Get(std::string_view key) const;
  // The sum over every series of metric `name` (all label sets); nullopt when it has none.
  std::optional<double> Sum(std::string_view name) const;
  // The sum over the series of `name` that carry label `label` with value `value`.
  std::optional<double> SumWhere(std::string_view name, std::string_view label,
                                 std::string_view value) const;

  const std::map<std::string, double>& all() const { return samples_; }
  size_t size() const { return samples_.size(); }

 private:
  struct Series {
    std::string name;
    std::map<std::string, std::string> labels;
    double value;
  };
  std::map<std::string, double> samples_;
  std::map<std::string, std::vector<Series>> by_name_;
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_METRIC_SAMPLES_H_

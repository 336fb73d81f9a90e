#include "sessiond/latency_histogram.h"

#include <fmt/format.h>

namespace sessiond {
namespace {

// "le" values as Prometheus writes them: seconds, shortest exact form.
std::string SecondsText(int64_t ns) { return fmt::format("{}", static_cast<double>(ns) / 1e9); }

void AppendSample(std::string& out, std::string_view name, std::string_view suffix,
                  std::string_view labels, std::string_view extra_label, std::string_view value) {
  out.append(name).append(suffix);
  if (!labels.empty() || !extra_label.empty()) {
    out.push_back('{');
    out.append(labels);
    if (!labels.empty() && !extra_label.empty()) out.push_back(',');
    out.append(extra_label);
    out.push_back('}');
  }
  out.push_back(' ');
  out.append(value);
  out.push_back('\n');
}

}  // namespace

void LatencyHistogram::Record(std::chrono::nanoseconds latency) {
  const int64_t ns = latency.count() < 0 ? 0 : latency.count();
  size_t i = 0;
  while (i < kBoundsNs.size() && ns > kBoundsNs[i]) ++i;
  ++buckets_[i];
  ++count_;
  sum_ns_ += ns;
}

void LatencyHistogram::AppendPrometheus(std::string& out, std::string_view name,
                                        std::string_view labels) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= kBoundsNs.size(); ++i) {
    cumulative += buckets_[i];
    std::string le = i < kBoundsNs.size() ? "le=\"" + SecondsText(kBoundsNs[i]) + "\""
                                          : std::string("le=\"+Inf\"");
    AppendSample(out, name, "_bucket", labels, le, std::to_string(cumulative));
  }
  AppendSample(out, name, "_sum", labels, "",
               fmt::format("{}", static_cast<double>(sum_ns_) / 1e9));
  AppendSample(out, name, "_count", labels, "", std::to_string(count_));
}

}  // namespace sessiond

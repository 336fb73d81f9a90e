#include "tools/bench/metrics_scraper.h"

#include <string>

#include "tools/bench/http_get.h"

namespace sessiond::bench {

Result<MetricSamples> MetricsScraper::Scrape() const {
  Result<HttpResponse> response = HttpGet(admin_, "/metrics", timeout_);
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return Unavailable("GET http://" + admin_.ToString() + "/metrics answered " +
                       std::to_string(response->status) + ": " + response->body.substr(0, 200));
  }
  return MetricSamples::Parse(response->body);
}

}  // namespace sessiond::bench

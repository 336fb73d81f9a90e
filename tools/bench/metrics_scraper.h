// MetricsScraper: reads a sessiond node's /metrics and parses it into MetricSamples.
//
// The bench scrapes every node before and after a measured run and reports the differences
// (peer bytes and frames per operation). Blocking (HttpGet); call from the bench's main thread.
#ifndef SESSIOND_TOOLS_BENCH_METRICS_SCRAPER_H_
#define SESSIOND_TOOLS_BENCH_METRICS_SCRAPER_H_

#include <chrono>

#include "sessiond/endpoint.h"
#include "sessiond/status.h"
#include "tools/bench/metric_samples.h"

namespace sessiond::bench {

// The series the bench reads, in one place so the daemon's names and the bench's agree.
// Peer-link traffic, summed over every peer label; absent in modes without peer links. The names
// replication/cluster/cluster_view.cc emits.
inline constexpr char kMetricPeerSentBytes[] = "sessiond_peer_bytes_sent_total";
inline constexpr char kMetricPeerSentFrames[] = "sessiond_peer_frames_sent_total";
// Sessions held by a node (a gauge); used to see state transfer and re-replication settle.
inline constexpr char kMetricSessions[] = "sessiond_sessions";
// Sessions whose configured redundancy is not met right now (backup mode: a missing backup;
// delta: replicas still catching up). 0 means fully redundant. Absent until the modes export it.
inline constexpr char kMetricUnderReplicated[] = "sessiond_sessions_under_replicated";
inline constexpr char kMetricReady[] = "sessiond_ready";

class MetricsScraper {
 public:
  explicit MetricsScraper(Endpoint admin,
                          std::chrono::milliseconds timeout = std::chrono::milliseconds(2000))
      : admin_(std::move(admin)), timeout_(timeout) {}

  // GET /metrics and parse it. UNAVAILABLE when the node does not answer 200 in time,
  // INVALID_ARGUMENT when the text is not the Prometheus format.
  Result<MetricSamples> Scrape() const;

  const Endpoint& admin() const { return admin_; }

 private:
  Endpoint admin_;
  std::chrono::milliseconds timeout_;
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_METRICS_SCRAPER_H_

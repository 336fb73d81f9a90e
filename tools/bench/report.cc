#include "tools/bench/report.h"

#include <fmt/format.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <utility>

#include "tools/bench/bench_mode.h"
#include "tools/bench/json_writer.h"

namespace sessiond::bench {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

// Three significant digits, the precision the histogram guarantees and a reader needs.
std::string Sig3(double v) {
  if (!std::isfinite(v)) return "-";
  const double a = std::fabs(v);
  if (a == 0) return "0";
  if (a < 0.01) return fmt::format("{:.4f}", v);
  if (a < 1) return fmt::format("{:.3f}", v);
  if (a < 10) return fmt::format("{:.2f}", v);
  if (a < 100) return fmt::format("{:.1f}", v);
  return fmt::format("{:.0f}", v);
}

std::string Opt(const std::optional<double>& v) { return v ? Sig3(*v) : "-"; }

void AddVerdict(LostWriteLedger::Verdict& into, const LostWriteLedger::Verdict& v) {
  into.sessions_checked += v.sessions_checked;
  into.sessions_lost += v.sessions_lost;
  into.sessions_with_lost_writes += v.sessions_with_lost_writes;
  into.sessions_unreadable += v.sessions_unreadable;
  into.acknowledged_writes += v.acknowledged_writes;
  into.writes_lost += v.writes_lost;
  into.writes_unverified += v.writes_unverified;
  into.failed_writes += v.failed_writes;
  into.unexpected_values += v.unexpected_values;
}

void WriteLatency(JsonWriter& w, const Histogram& h) {
  w.BeginObject();
  w.Key("count").Integer(h.TotalCount());
  if (h.TotalCount() > 0) {
    w.Key("p50").Number(Ms(h.ValueAtPercentile(50)));
    w.Key("p90").Number(Ms(h.ValueAtPercentile(90)));
    w.Key("p99").Number(Ms(h.ValueAtPercentile(99)));
    w.Key("p99_9").Number(Ms(h.ValueAtPercentile(99.9)));
    w.Key("max").Number(Ms(h.Max()));
    w.Key("mean").Number(h.Mean() / 1e6);
  }
  w.EndObject();
}

void WriteOpStats(JsonWriter& w, const OpStats& s) {
  w.BeginObject();
  w.Key("ok").Unsigned(s.ok);
  w.Key("failed").Unsigned(s.failed());
  w.Key("errors").BeginObject();
  for (const auto& [code, n] : s.errors) w.Key(code).Unsigned(n);
  w.EndObject();
  w.Key("latency_ms");
  WriteLatency(w, s.latency);
  w.EndObject();
}

void WriteVerdict(JsonWriter& w, const LostWriteLedger::Verdict& v) {
  w.BeginObject();
  w.Key("sessions_checked").Unsigned(v.sessions_checked);
  w.Key("sessions_lost").Unsigned(v.sessions_lost);
  w.Key("sessions_with_lost_writes").Unsigned(v.sessions_with_lost_writes);
  w.Key("sessions_unreadable").Unsigned(v.sessions_unreadable);
  w.Key("acknowledged_writes").Unsigned(v.acknowledged_writes);
  w.Key("writes_lost").Unsigned(v.writes_lost);
  w.Key("writes_unverified").Unsigned(v.writes_unverified);
  w.Key("failed_writes").Unsigned(v.failed_writes);
  w.Key("unexpected_values").Unsigned(v.unexpected_values);
  w.EndObject();
}

void WriteFailover(JsonWriter& w, const FailoverOutcome& f) {
  w.BeginObject();
  w.Key("victim_node").Integer(f.victim + 1);
  w.Key("killed_at_s").Number(f.killed_at_s);
  w.Key("failed_requests").Unsigned(f.failed_requests);
  w.Key("failed_after_kill").Unsigned(f.failed_after_kill);
  w.Key("sessions_lost").Unsigned(f.verdict.sessions_lost);
  w.Key("writes_lost").Unsigned(f.verdict.writes_lost);
  w.Key("acknowledged_writes").Unsigned(f.verdict.acknowledged_writes);
  w.Key("writes_check");
  WriteVerdict(w, f.verdict);
  w.Key("redundancy_restored_s");
  if (f.redundancy_restored_s) {
    w.Number(*f.redundancy_restored_s);
  } else {
    w.Null();
  }
  w.Key("redundancy_note").String(f.redundancy_note);
  w.EndObject();
}

void WriteOptional(JsonWriter& w, const std::optional<double>& v) {
  if (v) {
    w.Number(*v);
  } else {
    w.Null();
  }
}

void WriteLag(JsonWriter& w, const WorkloadResult& r) {
  if (r.lag_probes == 0) {
    w.Null();
    return;
  }
  w.BeginObject();
  w.Key("probes").Unsigned(r.lag_probes);
  w.Key("unseen").Unsigned(r.lag_unseen);
  w.Key("seen_on_first_read").Unsigned(r.lag_seen_first_read);
  if (r.lag.TotalCount() > 0) {
    w.Key("p50").Number(Ms(r.lag.ValueAtPercentile(50)));
    w.Key("p90").Number(Ms(r.lag.ValueAtPercentile(90)));
    w.Key("p99").Number(Ms(r.lag.ValueAtPercentile(99)));
    w.Key("max").Number(Ms(r.lag.Max()));
  }
  // The lag is an upper bound, over by at most the round trip of the read that saw the value.
  if (r.lag_read_rtt.TotalCount() > 0) {
    w.Key("read_rtt_p50").Number(Ms(r.lag_read_rtt.ValueAtPercentile(50)));
    w.Key("read_rtt_p99").Number(Ms(r.lag_read_rtt.ValueAtPercentile(99)));
  }
  w.EndObject();
}

void WriteRedisMemory(JsonWriter& w, const std::optional<RedisMemory>& m) {
  if (!m) {
    w.Null();
    return;
  }
  w.BeginObject();
  w.Key("keys").Unsigned(m->keys);
  w.Key("used_memory_delta").Integer(m->used_memory_delta);
  w.Key("used_bytes_per_key").Number(m->used_bytes_per_key);
  w.Key("sample_keys").Unsigned(m->sample_keys);
  w.Key("memory_usage_bytes").Number(m->memory_usage_bytes);
  w.Key("encoding").String(m->encoding);
  w.EndObject();
}

// "342 B/session in Redis (used_memory growth over 2000 sessions); MEMORY USAGE of a session hash
// 264 B, listpack"
std::string RedisMemoryNote(const RedisMemory& m) {
  return fmt::format(
      "Redis holds a session in {:.0f} B (used_memory growth over {} sessions); MEMORY USAGE "
      "of a session hash {:.0f} B (mean of {}), encoding {}",
      m.used_bytes_per_key, m.keys, m.memory_usage_bytes, m.sample_keys,
      m.encoding.empty() ? "unknown" : m.encoding);
}

std::string DaemonModeOf(const std::string& mode) {
  Result<BenchMode> parsed = BenchMode::Parse(mode);
  return parsed.ok() ? parsed->daemon_mode : mode;
}

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string Status2(const std::string& not_run) {
  if (not_run.empty()) return "ok";
  return not_run.rfind("unavailable", 0) == 0 ? "unavailable" : "failed";
}

// The gnuplot label of a summary: the mode, with the cluster size when sizes differ.
std::string Label(const ModeSummary& s, bool several_sizes) {
  return several_sizes ? s.mode + " n=" + std::to_string(s.nodes) : s.mode;
}

bool WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  return static_cast<bool>(out);
}

}  // namespace

Report::Report(ReportContext context, std::vector<ModeRun> runs)
    : context_(std::move(context)), runs_(std::move(runs)) {
  std::map<std::pair<std::string, int>, size_t> index;
  for (size_t i = 0; i < runs_.size(); ++i) {
    const ModeRun& run = runs_[i];
    auto [it, inserted] = index.try_emplace({run.mode, run.nodes}, summaries_.size());
    if (inserted) {
      summaries_.emplace_back();
      summaries_.back().mode = run.mode;
      summaries_.back().nodes = run.nodes;
    }
    ModeSummary& s = summaries_[it->second];
    s.repetitions.push_back(i);
  }

  for (ModeSummary& s : summaries_) {
    double peer_bytes = 0, peer_frames = 0, rss = 0, redis_rss = 0, offered = 0, calibrated = 0,
           load_average = 0, node_cpu = 0, redis_cpu = 0;
    int peer_n = 0, rss_n = 0, redis_n = 0, calibrated_n = 0, load_n = 0, node_cpu_n = 0,
        redis_cpu_n = 0;
    for (size_t i : s.repetitions) {
      const ModeRun& run = runs_[i];
      if (!run.not_run.empty()) {
        if (s.not_run.empty()) s.not_run = run.not_run;
        continue;
      }
      ++s.runs;
      offered += run.offered_rate;
      if (run.calibrated_max_rate) {
        calibrated += *run.calibrated_max_rate;
        ++calibrated_n;
      }
      if (run.load_average) {
        load_average += *run.load_average;
        ++load_n;
      }
      if (run.redis_memory && !s.redis_memory) s.redis_memory = run.redis_memory;
      if (run.node_cpu_us_per_op) {
        node_cpu += *run.node_cpu_us_per_op;
        ++node_cpu_n;
      }
      if (run.redis_cpu_us_per_op) {
        redis_cpu += *run.redis_cpu_us_per_op;
        ++redis_cpu_n;
      }
      const double throughput = run.load.throughput();
      s.throughput_min = s.runs == 1 ? throughput : std::min(s.throughput_min, throughput);
      s.throughput_max = std::max(s.throughput_max, throughput);
      s.load.measured += run.load.measured;
      s.load.all.Merge(run.load.all);
      for (int op = 0; op < kOpCount; ++op) s.load.by_op[op].Merge(run.load.by_op[op]);
      s.load.late_sends += run.load.late_sends;
      s.load.lag.Merge(run.load.lag);
      s.load.lag_read_rtt.Merge(run.load.lag_read_rtt);
      s.load.lag_seen_first_read += run.load.lag_seen_first_read;
      s.load.lag_probes += run.load.lag_probes;
      s.load.lag_unseen += run.load.lag_unseen;
      s.load.interrupted = s.load.interrupted || run.load.interrupted;
      if (run.peer_bytes_per_op) {
        peer_bytes += *run.peer_bytes_per_op;
        peer_frames += run.peer_frames_per_op.value_or(0);
        ++peer_n;
      }
      for (const auto& node_rss : run.node_rss_bytes) {
        if (node_rss) {
          rss += static_cast<double>(*node_rss);
          ++rss_n;
        }
      }
      if (run.redis_rss_bytes) {
        redis_rss += static_cast<double>(*run.redis_rss_bytes);
        ++redis_n;
      }
      if (run.verdict) {
        if (!s.verdict) s.verdict.emplace();
        AddVerdict(*s.verdict, *run.verdict);
      }
      if (run.failover) {
        if (!s.failover) {
          s.failover = run.failover;
        } else {
          FailoverOutcome& f = *s.failover;
          f.failed_requests += run.failover->failed_requests;
          f.failed_after_kill += run.failover->failed_after_kill;
          AddVerdict(f.verdict, run.failover->verdict);
          if (!run.failover->redundancy_restored_s) {
            f.redundancy_restored_s.reset();
            f.redundancy_note = run.failover->redundancy_note;
          } else if (f.redundancy_restored_s) {
            f.redundancy_restored_s =
                std::max(*f.redundancy_restored_s, *run.failover->redundancy_restored_s);
          }
        }
      }
    }
    if (s.runs > 0) s.not_run.clear();
    if (peer_n > 0) {
      s.peer_bytes_per_op = peer_bytes / peer_n;
      s.peer_frames_per_op = peer_frames / peer_n;
    }
    if (rss_n > 0) s.rss_mb_per_node = rss / rss_n / kMiB;
    if (redis_n > 0) s.redis_rss_mb = redis_rss / redis_n / kMiB;
    if (s.runs > 0) s.offered_rate = offered / s.runs;
    if (calibrated_n > 0) s.calibrated_max_rate = calibrated / calibrated_n;
    if (load_n > 0) s.load_average = load_average / load_n;
    if (node_cpu_n > 0) s.node_cpu_us_per_op = node_cpu / node_cpu_n;
    if (redis_cpu_n > 0) s.redis_cpu_us_per_op = redis_cpu / redis_cpu_n;
  }

  // Ratios against the baselines of the same size, measured in this run.
  for (ModeSummary& s : summaries_) {
    if (s.runs == 0) continue;
    for (const ModeSummary& base : summaries_) {
      if (base.runs == 0 || base.nodes != s.nodes || &base == &s) continue;
      const double base_throughput = base.load.throughput();
      if (base_throughput <= 0) continue;
      const double ratio = s.load.throughput() / base_throughput;
      if (base.mode == "standalone") s.vs_standalone = ratio;
      if (base.mode == "redis-direct") s.vs_redis_direct = ratio;
    }
  }
}

std::string Report::Table() const {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = {"mode",        "nodes",
                                     "ops/s",       "p50 ms",
                                     "p90",         "p99",
                                     "p99.9",       "max",
                                     "fail%",       "lag p50/p99 ms",
                                     "peer B/op",   "peer frames/op",
                                     "RSS MB/node", "CPU us/op node+redis",
                                     "load"};
  if (context_.failover) {
    header.insert(header.end(),
                  {"lost sessions", "lost writes", "failed req", "redundant after s"});
  }
  std::vector<std::string> notes;
  for (const ModeSummary& s : summaries_) {
    std::vector<std::string> row = {s.mode, std::to_string(s.nodes)};
    const std::string where = s.mode + " n=" + std::to_string(s.nodes);
    if (s.runs == 0) {
      row.push_back(s.not_run);
      rows.push_back(std::move(row));
      continue;
    }
    const Histogram& h = s.load.all.latency;
    const uint64_t total = s.load.all.ok + s.load.all.failed();
    row.push_back(fmt::format("{:.0f}", s.load.throughput()));
    for (double p : {50.0, 90.0, 99.0, 99.9}) row.push_back(Sig3(Ms(h.ValueAtPercentile(p))));
    row.push_back(Sig3(Ms(h.Max())));
    row.push_back(total == 0 ? "-" : Sig3(100.0 * s.load.all.failed() / total));
    if (s.load.lag_probes == 0) {
      row.push_back("-");
    } else if (s.load.lag.TotalCount() == 0) {
      row.push_back("never seen");
    } else {
      row.push_back(Sig3(Ms(s.load.lag.ValueAtPercentile(50))) + "/" +
                    Sig3(Ms(s.load.lag.ValueAtPercentile(99))) +
                    (s.load.lag_unseen > 0 ? fmt::format(" ({} unseen)", s.load.lag_unseen) : ""));
    }
    row.push_back(Opt(s.peer_bytes_per_op));
    row.push_back(Opt(s.peer_frames_per_op));
    std::string rss = Opt(s.rss_mb_per_node);
    if (s.redis_rss_mb) rss += " +redis " + Sig3(*s.redis_rss_mb);
    row.push_back(rss);
    row.push_back((s.node_cpu_us_per_op ? Sig3(*s.node_cpu_us_per_op) : "-") +
                  (s.redis_cpu_us_per_op ? "+" + Sig3(*s.redis_cpu_us_per_op) : ""));
    row.push_back(s.load_average ? fmt::format("{:.1f}", *s.load_average) : "-");
    const std::string daemon_mode = DaemonModeOf(s.mode);
    if (s.offered_rate > 0) {
      notes.push_back(
          s.calibrated_max_rate
              ? fmt::format("{}: open loop at {:.0f} requests/s, {:.2g} of the {:.0f}/s a "
                            "closed-loop run of the same mode served just before",
                            where, s.offered_rate, s.offered_rate / *s.calibrated_max_rate,
                            *s.calibrated_max_rate)
              : fmt::format("{}: open loop at {:.0f} requests/s", where, s.offered_rate));
    }
    if (s.vs_standalone && (daemon_mode == "delta" || daemon_mode == "backup")) {
      notes.push_back(fmt::format("{}: throughput {:.2f}x standalone's (same run, same size)",
                                  where, *s.vs_standalone));
    }
    if (s.vs_redis_direct && daemon_mode == "redis") {
      notes.push_back(fmt::format(
          "{}: throughput {:.2f}x redis-direct's: the sidecar costs {:.0f}% (same run, same "
          "size)",
          where, *s.vs_redis_direct, 100.0 * (1.0 - *s.vs_redis_direct)));
    }
    if (s.redis_memory) notes.push_back(where + ": " + RedisMemoryNote(*s.redis_memory));
    if (s.load.lag_probes > 0 && s.load.lag_read_rtt.TotalCount() > 0) {
      notes.push_back(fmt::format(
          "{}: {:.1f}% of {} lag probes were visible at the first read at node 2 (for those the "
          "lag is below one read round trip: p50 {} ms, p99 {} ms)",
          where, 100.0 * s.load.lag_seen_first_read / s.load.lag_probes, s.load.lag_probes,
          Sig3(Ms(s.load.lag_read_rtt.ValueAtPercentile(50))),
          Sig3(Ms(s.load.lag_read_rtt.ValueAtPercentile(99)))));
    }
    if (daemon_mode == "redis" && s.redis_cpu_us_per_op) {
      for (const ModeSummary& direct : summaries_) {
        if (direct.mode != "redis-direct" || direct.nodes != s.nodes || direct.runs == 0 ||
            !direct.redis_cpu_us_per_op || *s.redis_cpu_us_per_op <= 0) {
          continue;
        }
        notes.push_back(fmt::format(
            "{}: redis-server spent {:.1f} us of CPU per operation against redis-direct's {:.1f}: "
            "where Redis is the bottleneck this mode serves {:.2f}x redis-direct's operations",
            where, *s.redis_cpu_us_per_op, *direct.redis_cpu_us_per_op,
            *direct.redis_cpu_us_per_op / *s.redis_cpu_us_per_op));
      }
    }
    if (context_.failover) {
      if (s.failover) {
        const FailoverOutcome& f = *s.failover;
        row.push_back(std::to_string(f.verdict.sessions_lost));
        row.push_back(std::to_string(f.verdict.writes_lost) + "/" +
                      std::to_string(f.verdict.acknowledged_writes));
        row.push_back(std::to_string(f.failed_requests));
        row.push_back(f.redundancy_restored_s ? Sig3(*f.redundancy_restored_s) : "-");
        if (!f.redundancy_note.empty()) notes.push_back(where + ": " + f.redundancy_note);
      } else {
        row.insert(row.end(), {"-", "-", "-", "-"});
      }
    }
    if (s.load.interrupted) notes.push_back(where + ": interrupted, partial numbers");
    if (s.load.late_sends > 0) {
      notes.push_back(
          fmt::format("{}: {} requests went out more than 1 ms late (the load "
                      "generator or the system fell behind the rate)",
                      where, s.load.late_sends));
    }
    if (!s.load.all.errors.empty()) {
      std::string errors;
      for (const auto& [code, n] : s.load.all.errors) {
        errors += (errors.empty() ? "" : ", ") + fmt::format("{} {}", n, code);
      }
      notes.push_back(where + " failures: " + errors);
    }
    rows.push_back(std::move(row));
  }

  std::vector<size_t> width(header.size(), 0);
  for (size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& row : rows) {
    // A "not run" row's reason spans the remaining columns; it does not widen them.
    const size_t columns = row.size() < header.size() ? 2 : row.size();
    for (size_t c = 0; c < columns; ++c) width[c] = std::max(width[c], row[c].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t c = 0; c < cells.size(); ++c) {
      if (c > 0) out += "  ";
      if (cells.size() < header.size() && c + 1 == cells.size()) {
        out += cells[c];
      } else if (c < 2) {
        out += fmt::format("{:<{}}", cells[c], width[c]);
      } else {
        out += fmt::format("{:>{}}", cells[c], width[c]);
      }
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(header);
  for (const auto& row : rows) out += line(row);
  for (const auto& note : notes) out += "  * " + note + "\n";
  return out;
}

std::string Report::Json() const {
  JsonWriter w;
  w.BeginObject();
  w.Key("tool").String("sessiond-bench");
  w.Key("schema").Integer(1);
  w.Key("started_at").String(context_.started_at);
  w.Key("command").String(context_.command_line);
  const WorkloadOptions& wl = context_.workload;
  w.Key("workload").BeginObject();
  w.Key("sessions").Integer(wl.sessions);
  w.Key("attributes").Integer(wl.attributes);
  w.Key("value_bytes").Unsigned(wl.value_bytes);
  w.Key("mix").String(wl.mix.ToString());
  w.Key("sticky").Number(wl.sticky);
  w.Key("connections_per_node").Integer(wl.connections);
  w.Key("threads").Integer(wl.threads);
  w.Key("loop").String(wl.rate > 0 || context_.rate_of_max > 0 ? "open" : "closed");
  w.Key("rate").Number(wl.rate);
  w.Key("warmup_s").Number(wl.warmup.count() / 1000.0);
  w.Key("duration_s").Number(wl.duration.count() / 1000.0);
  w.Key("repetitions").Integer(context_.repetitions);
  w.EndObject();
  w.Key("network").BeginObject();
  w.Key("link_delay_ms").Number(context_.link_delay_ms);
  w.Key("link_jitter_ms").Number(context_.link_jitter_ms);
  w.Key("link_bandwidth_bytes_per_s").Unsigned(context_.link_bandwidth_bytes_per_s);
  w.EndObject();
  w.Key("replication_ack").String(context_.replication_ack);
  w.Key("rate_of_max").Number(context_.rate_of_max);
  w.Key("failover").Bool(context_.failover);

  w.Key("results").BeginArray();
  for (const ModeSummary& s : summaries_) {
    w.BeginObject();
    w.Key("mode").String(s.mode);
    w.Key("nodes").Integer(s.nodes);
    w.Key("status").String(Status2(s.runs > 0 ? "" : s.not_run));
    w.Key("reason").String(s.runs > 0 ? "" : s.not_run);
    if (s.runs > 0) {
      w.Key("throughput_ops_per_s").Number(s.load.throughput());
      w.Key("throughput_min").Number(s.throughput_min);
      w.Key("throughput_max").Number(s.throughput_max);
      w.Key("measured_s").Number(std::chrono::duration<double>(s.load.measured).count());
      w.Key("requests");
      WriteOpStats(w, s.load.all);
      w.Key("by_op").BeginObject();
      for (int op = 0; op < kOpCount; ++op) {
        w.Key(OpName(static_cast<Op>(op)));
        WriteOpStats(w, s.load.by_op[op]);
      }
      w.EndObject();
      w.Key("late_sends").Unsigned(s.load.late_sends);
      w.Key("replication_lag_ms");
      WriteLag(w, s.load);
      w.Key("peer_bytes_per_op");
      WriteOptional(w, s.peer_bytes_per_op);
      w.Key("peer_frames_per_op");
      WriteOptional(w, s.peer_frames_per_op);
      w.Key("rss_mb_per_node");
      WriteOptional(w, s.rss_mb_per_node);
      w.Key("redis_rss_mb");
      WriteOptional(w, s.redis_rss_mb);
      w.Key("redis_memory");
      WriteRedisMemory(w, s.redis_memory);
      w.Key("offered_rate").Number(s.offered_rate);
      w.Key("calibrated_max_rate");
      WriteOptional(w, s.calibrated_max_rate);
      w.Key("throughput_vs_standalone");
      WriteOptional(w, s.vs_standalone);
      w.Key("throughput_vs_redis_direct");
      WriteOptional(w, s.vs_redis_direct);
      w.Key("load_average");
      WriteOptional(w, s.load_average);
      w.Key("node_cpu_us_per_op");
      WriteOptional(w, s.node_cpu_us_per_op);
      w.Key("redis_cpu_us_per_op");
      WriteOptional(w, s.redis_cpu_us_per_op);
      w.Key("writes_check");
      if (s.verdict) {
        WriteVerdict(w, *s.verdict);
      } else {
        w.Null();
      }
      w.Key("failover");
      if (s.failover) {
        WriteFailover(w, *s.failover);
      } else {
        w.Null();
      }
      w.Key("interrupted").Bool(s.load.interrupted);
    }
    w.Key("repetitions").BeginArray();
    for (size_t i : s.repetitions) {
      const ModeRun& run = runs_[i];
      w.BeginObject();
      w.Key("repetition").Integer(run.repetition);
      w.Key("status").String(Status2(run.not_run));
      w.Key("reason").String(run.not_run);
      if (run.not_run.empty()) {
        w.Key("throughput_ops_per_s").Number(run.load.throughput());
        w.Key("requests");
        WriteOpStats(w, run.load.all);
        w.Key("rss_bytes_per_node").BeginArray();
        for (const auto& rss : run.node_rss_bytes) {
          if (rss) {
            w.Unsigned(*rss);
          } else {
            w.Null();
          }
        }
        w.EndArray();
        w.Key("peer_bytes_per_op");
        WriteOptional(w, run.peer_bytes_per_op);
        w.Key("redis_memory");
        WriteRedisMemory(w, run.redis_memory);
        w.Key("offered_rate").Number(run.offered_rate);
        w.Key("load_average");
        WriteOptional(w, run.load_average);
        w.Key("node_cpu_us_per_op");
        WriteOptional(w, run.node_cpu_us_per_op);
        w.Key("redis_cpu_us_per_op");
        WriteOptional(w, run.redis_cpu_us_per_op);
        w.Key("failover");
        if (run.failover) {
          WriteFailover(w, *run.failover);
        } else {
          w.Null();
        }
        w.Key("timeline").BeginArray();
        for (const TimelineSecond& t : run.load.timeline) {
          w.BeginObject();
          w.Key("second").Integer(t.second);
          w.Key("ok").Unsigned(t.ok);
          w.Key("failed").Unsigned(t.failed);
          w.Key("p50_ms").Number(Ms(t.p50_ns));
          w.Key("p99_ms").Number(Ms(t.p99_ns));
          w.EndObject();
        }
        w.EndArray();
      }
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Take();
}

std::string Report::Csv() const {
  const std::string header =
      "mode,nodes,repetition,status,reason,throughput_ops_per_s,ok,failed,p50_ms,p90_ms,p99_ms,"
      "p99_9_ms,max_ms,lag_p50_ms,lag_p99_ms,peer_bytes_per_op,peer_frames_per_op,"
      "rss_mb_per_node,sessions_lost,writes_lost,acknowledged_writes,redundancy_restored_s,"
      "offered_rate,throughput_vs_standalone,throughput_vs_redis_direct,"
      "redis_used_bytes_per_session,redis_memory_usage_bytes,redis_encoding,load_average,"
      "node_cpu_us_per_op,redis_cpu_us_per_op\n";
  const size_t columns = static_cast<size_t>(std::count(header.begin(), header.end(), ',')) + 1;
  std::string out = header;
  auto opt = [](const std::optional<double>& v) { return v ? fmt::format("{}", *v) : ""; };
  // The columns after the fifth of a row that ran.
  struct Numbers {
    const WorkloadResult* load;
    std::optional<double> peer_bytes, peer_frames, rss_mb;
    const FailoverOutcome* failover;
    double offered_rate;
    std::optional<double> vs_standalone, vs_redis_direct;
    const std::optional<RedisMemory>* redis_memory;
    std::optional<double> load_average;
    std::optional<double> node_cpu, redis_cpu;
  };
  auto row = [&](const std::string& mode, int nodes, const std::string& rep,
                 const std::string& not_run, const Numbers* n) {
    std::string line = CsvField(mode) + "," + std::to_string(nodes) + "," + rep + "," +
                       Status2(not_run) + "," + CsvField(not_run);
    if (n == nullptr) return line + std::string(columns - 5, ',') + "\n";
    const WorkloadResult* load = n->load;
    const Histogram& h = load->all.latency;
    line += fmt::format(",{},{},{}", load->throughput(), load->all.ok, load->all.failed());
    for (double p : {50.0, 90.0, 99.0, 99.9})
      line += fmt::format(",{}", Ms(h.ValueAtPercentile(p)));
    line += fmt::format(",{}", Ms(h.Max()));
    if (load->lag.TotalCount() > 0) {
      line += fmt::format(",{},{}", Ms(load->lag.ValueAtPercentile(50)),
                          Ms(load->lag.ValueAtPercentile(99)));
    } else {
      line += ",,";
    }
    line += "," + opt(n->peer_bytes) + "," + opt(n->peer_frames) + "," + opt(n->rss_mb);
    if (n->failover != nullptr) {
      line += fmt::format(
          ",{},{},{},{}", n->failover->verdict.sessions_lost, n->failover->verdict.writes_lost,
          n->failover->verdict.acknowledged_writes, opt(n->failover->redundancy_restored_s));
    } else {
      line += ",,,,";
    }
    line +=
        fmt::format(",{},{},{}", n->offered_rate, opt(n->vs_standalone), opt(n->vs_redis_direct));
    if (*n->redis_memory) {
      const RedisMemory& m = **n->redis_memory;
      line += fmt::format(",{},{},{}", m.used_bytes_per_key, m.memory_usage_bytes,
                          CsvField(m.encoding));
    } else {
      line += ",,,";
    }
    return line + "," + opt(n->load_average) + "," + opt(n->node_cpu) + "," + opt(n->redis_cpu) +
           "\n";
  };
  for (const ModeSummary& s : summaries_) {
    for (size_t i : s.repetitions) {
      const ModeRun& run = runs_[i];
      std::optional<double> rss;
      double sum = 0;
      int count = 0;
      for (const auto& r : run.node_rss_bytes) {
        if (r) {
          sum += static_cast<double>(*r);
          ++count;
        }
      }
      if (count > 0) rss = sum / count / kMiB;
      const Numbers numbers{&run.load,
                            run.peer_bytes_per_op,
                            run.peer_frames_per_op,
                            rss,
                            run.failover ? &*run.failover : nullptr,
                            run.offered_rate,
                            std::nullopt,
                            std::nullopt,
                            &run.redis_memory,
                            run.load_average,
                            run.node_cpu_us_per_op,
                            run.redis_cpu_us_per_op};
      out += row(run.mode, run.nodes, std::to_string(run.repetition), run.not_run,
                 run.not_run.empty() ? &numbers : nullptr);
    }
    const Numbers numbers{&s.load,
                          s.peer_bytes_per_op,
                          s.peer_frames_per_op,
                          s.rss_mb_per_node,
                          s.failover ? &*s.failover : nullptr,
                          s.offered_rate,
                          s.vs_standalone,
                          s.vs_redis_direct,
                          &s.redis_memory,
                          s.load_average,
                          s.node_cpu_us_per_op,
                          s.redis_cpu_us_per_op};
    out +=
        row(s.mode, s.nodes, "all", s.runs > 0 ? "" : s.not_run, s.runs > 0 ? &numbers : nullptr);
  }
  return out;
}

Result<std::vector<std::string>> Report::WriteFiles(const std::string& dir, bool charts,
                                                    std::string* note) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Internal("cannot create the output directory " + dir + ": " + ec.message());
  std::vector<std::string> written;
  for (const auto& [name, text] : {std::pair<std::string, std::string>{"results.json", Json()},
                                   {"results.csv", Csv()},
                                   {"results.txt", Table()}}) {
    const std::string path = dir + "/" + name;
    if (!WriteText(path, text)) return Internal("cannot write " + path);
    written.push_back(path);
  }
  if (charts) {
    if (Status status = WriteCharts(dir, written, note); !status.ok()) return status;
  }
  return written;
}

Status Report::WriteCharts(const std::string& dir, std::vector<std::string>& written,
                           std::string* note) const {
  const std::string charts = dir + "/charts";
  std::error_code ec;
  std::filesystem::create_directories(charts, ec);
  if (ec) return Internal("cannot create " + charts + ": " + ec.message());

  std::vector<const ModeSummary*> ran;
  std::map<int, int> sizes;
  for (const ModeSummary& s : summaries_) {
    if (s.runs > 0) {
      ran.push_back(&s);
      ++sizes[s.nodes];
    }
  }
  if (ran.empty()) {
    if (note) *note = "no mode ran, so there is nothing to chart";
    return Status::Ok();
  }
  const bool several_sizes = sizes.size() > 1;

  // summary.dat: one row per (mode, nodes); the quoted label is column 1.
  std::string summary =
      "# label throughput p50_ms p90_ms p99_ms p99_9_ms max_ms node_cpu_us_per_op "
      "redis_cpu_us_per_op\n";
  bool any_cpu = false;
  for (const ModeSummary* s : ran) {
    const Histogram& h = s->load.all.latency;
    summary +=
        fmt::format("\"{}\" {} {} {} {} {} {} {} {}\n", Label(*s, several_sizes),
                    s->load.throughput(), Ms(h.ValueAtPercentile(50)), Ms(h.ValueAtPercentile(90)),
                    Ms(h.ValueAtPercentile(99)), Ms(h.ValueAtPercentile(99.9)), Ms(h.Max()),
                    s->node_cpu_us_per_op.value_or(0), s->redis_cpu_us_per_op.value_or(0));
    any_cpu = any_cpu || s->node_cpu_us_per_op || s->redis_cpu_us_per_op;
  }
  // timeline.dat: one block per (mode, nodes) from its first repetition, separated by two blank
  // lines so gnuplot addresses each with `index`.
  std::string timeline;
  std::vector<std::string> timeline_labels;
  for (const ModeSummary* s : ran) {
    for (size_t i : s->repetitions) {
      const ModeRun& run = runs_[i];
      if (!run.not_run.empty()) continue;
      timeline += fmt::format("# {}\n", Label(*s, several_sizes));
      for (const TimelineSecond& t : run.load.timeline) {
        timeline += fmt::format("{} {} {} {}\n", t.second, t.ok, t.failed, Ms(t.p99_ns));
      }
      timeline += "\n\n";
      timeline_labels.push_back(Label(*s, several_sizes));
      break;
    }
  }
  // sweep.dat: per mode, throughput and p99 against cluster size.
  std::map<std::string, std::vector<const ModeSummary*>> by_mode;
  for (const ModeSummary* s : ran) by_mode[s->mode].push_back(s);
  std::string sweep;
  std::vector<std::string> sweep_modes;
  std::vector<size_t> sweep_peer_modes;  // indices into sweep_modes of modes with peer traffic
  for (auto& [mode, list] : by_mode) {
    std::sort(list.begin(), list.end(),
              [](const ModeSummary* a, const ModeSummary* b) { return a->nodes < b->nodes; });
    sweep += "# " + mode + ": nodes ops/s p99_ms peer_bytes_per_op lag_p99_ms\n";
    bool peer_bytes = false;
    for (const ModeSummary* s : list) {
      sweep += fmt::format("{} {} {} {} {}\n", s->nodes, s->load.throughput(),
                           Ms(s->load.all.latency.ValueAtPercentile(99)),
                           s->peer_bytes_per_op ? fmt::format("{}", *s->peer_bytes_per_op) : "?",
                           s->load.lag.TotalCount() > 0
                               ? fmt::format("{}", Ms(s->load.lag.ValueAtPercentile(99)))
                               : "?");
      peer_bytes = peer_bytes || s->peer_bytes_per_op.has_value();
    }
    sweep += "\n\n";
    if (peer_bytes) sweep_peer_modes.push_back(sweep_modes.size());
    sweep_modes.push_back(mode);
  }
  // lag.dat: replication visibility lag of the rows that measured it.
  std::string lag = "# label lag_p50_ms lag_p90_ms lag_p99_ms lag_max_ms\n";
  int lag_rows = 0;
  for (const ModeSummary* s : ran) {
    const Histogram& h = s->load.lag;
    if (h.TotalCount() == 0) continue;
    lag +=
        fmt::format("\"{}\" {} {} {} {}\n", Label(*s, several_sizes), Ms(h.ValueAtPercentile(50)),
                    Ms(h.ValueAtPercentile(90)), Ms(h.ValueAtPercentile(99)), Ms(h.Max()));
    ++lag_rows;
  }

  for (const auto& [name, text] : {std::pair<std::string, std::string>{"summary.dat", summary},
                                   {"timeline.dat", timeline},
                                   {"sweep.dat", sweep},
                                   {"lag.dat", lag}}) {
    if (!WriteText(charts + "/" + name, text))
      return Internal("cannot write " + charts + "/" + name);
    written.push_back(charts + "/" + name);
  }

  // One script draws every chart twice: PNG, then SVG.
  std::string plots;
  plots +=
      "set output 'throughput.' . ext\n"
      "set title 'Throughput (higher is better)'\n"
      "set ylabel 'operations per second'\n"
      "set style data histograms\nset style fill solid 0.8 border -1\nset boxwidth 0.7\n"
      "set yrange [0:*]\nunset logscale y\nset xtics rotate by -30\n"
      "plot 'summary.dat' using 2:xtic(1) title 'ops/s' lc rgb '#3b75af'\n"
      "set output 'latency.' . ext\n"
      "set title 'Latency percentiles (lower is better)'\n"
      "set ylabel 'milliseconds (log scale)'\nset logscale y\nset yrange [*:*]\n"
      "set style histogram clustered gap 1\n"
      "plot 'summary.dat' using 3:xtic(1) title 'p50', '' using 5 title 'p99', "
      "'' using 6 title 'p99.9', '' using 7 title 'max'\n"
      "unset logscale y\nset style data linespoints\nset xtics norotate\n";
  if (any_cpu) {
    plots +=
        "set output 'cpu.' . ext\n"
        "set title 'CPU time per operation: all nodes, and redis-server (lower is better)'\n"
        "set ylabel 'microseconds of CPU per operation'\nunset logscale y\nset yrange [0:*]\n"
        "set style data histograms\nset style histogram rowstacked\n"
        "set style fill solid 0.8 border -1\nset boxwidth 0.7\nset xtics rotate by -30\n"
        "plot 'summary.dat' using 8:xtic(1) title 'nodes' lc rgb '#3b75af', '' using 9 title "
        "'redis-server' lc rgb '#d62728'\n"
        "set style histogram clustered gap 1\nset style data linespoints\nset xtics norotate\n";
  }
  if (lag_rows > 0) {
    plots +=
        "set output 'lag.' . ext\n"
        "set title 'Replication visibility lag: write acknowledged at one node until read at "
        "another (upper bound)'\n"
        "set ylabel 'milliseconds (log scale)'\nset logscale y\nset yrange [*:*]\n"
        "set style data histograms\nset style histogram clustered gap 1\n"
        "set style fill solid 0.8 border -1\nset xtics rotate by -30\n"
        "plot 'lag.dat' using 2:xtic(1) title 'p50', '' using 3 title 'p90', "
        "'' using 4 title 'p99', '' using 5 title 'max'\n"
        "unset logscale y\nset style data linespoints\nset xtics norotate\n";
  }
  if (!timeline_labels.empty()) {
    std::string lines;
    for (size_t i = 0; i < timeline_labels.size(); ++i) {
      lines += (i == 0 ? "" : ", ") + std::string("'timeline.dat' index ") + std::to_string(i) +
               " using 1:2 title '" + timeline_labels[i] + "' lw 2";
    }
    std::string kill_marker;
    for (const ModeRun& run : runs_) {
      if (run.failover) {
        kill_marker = fmt::format(
            "set arrow 1 from {0}, graph 0 to {0}, graph 1 nohead dashtype 2 lc rgb '#c00000'\n"
            "set label 1 'node killed' at {0}, graph 0.95 offset 0.5,0 tc rgb '#c00000'\n",
            run.failover->killed_at_s);
        break;
      }
    }
    plots +=
        "set output 'timeline.' . ext\n"
        "set title 'Throughput over time (warm-up is negative time)'\n"
        "set xlabel 'seconds'\nset ylabel 'successful operations per second'\n"
        "set yrange [0:*]\nset xrange [*:*]\nset style data lines\n" +
        kill_marker + "plot " + lines + "\nunset xlabel\nunset arrow\nunset label\n";
  }
  if (several_sizes) {
    std::string throughput_plot, p99_plot;
    for (size_t i = 0; i < sweep_modes.size(); ++i) {
      const std::string sep = i == 0 ? "" : ", ";
      throughput_plot += sep + "'sweep.dat' index " + std::to_string(i) + " using 1:2 title '" +
                         sweep_modes[i] + "' lw 2";
      p99_plot += sep + "'sweep.dat' index " + std::to_string(i) + " using 1:3 title '" +
                  sweep_modes[i] + "' lw 2";
    }
    plots +=
        "set output 'sweep_throughput.' . ext\n"
        "set title 'Throughput by cluster size'\nset xlabel 'nodes'\n"
        "set ylabel 'operations per second'\nset yrange [0:*]\nset xrange [*:*]\n"
        "set xtics 1\nset style data linespoints\nplot " +
        throughput_plot +
        "\nset output 'sweep_p99.' . ext\nset title 'p99 latency by cluster size'\n"
        "set ylabel 'milliseconds'\nplot " +
        p99_plot + "\nunset xlabel\nset xtics autofreq\n";
    if (!sweep_peer_modes.empty()) {
      std::string peer_plot;
      for (size_t k = 0; k < sweep_peer_modes.size(); ++k) {
        const size_t i = sweep_peer_modes[k];
        peer_plot += (k == 0 ? "" : ", ") + std::string("'sweep.dat' index ") + std::to_string(i) +
                     " using 1:4 title '" + sweep_modes[i] + "' lw 2";
      }
      plots +=
          "set output 'sweep_peer_bytes.' . ext\n"
          "set title 'Bytes sent on peer links per operation, by cluster size'\n"
          "set xlabel 'nodes'\nset ylabel 'bytes per operation (all links)'\n"
          "set yrange [0:*]\nset xrange [*:*]\nset xtics 1\nset style data linespoints\n"
          "plot " +
          peer_plot + "\nunset xlabel\nset xtics autofreq\n";
    }
  }
  const std::string script =
      "# Generated by sessiond-bench. Run from this directory: gnuplot charts.gp\n"
      "set key outside right top\nset grid ytics\nset datafile missing '?'\n"
      "do for [ext in 'png svg'] {\n"
      "  if (ext eq 'png') { set terminal pngcairo size 1100,620 noenhanced font ',10' } "
      "else { set terminal svg size 1100,620 noenhanced dynamic font ',10' }\n" +
      plots + "}\n";
  if (!WriteText(charts + "/charts.gp", script)) return Internal("cannot write charts.gp");
  written.push_back(charts + "/charts.gp");

  const std::string command = "cd '" + charts + "' && gnuplot charts.gp > gnuplot.log 2>&1";
  const int rc = std::system(command.c_str());
  if (rc != 0) {
    if (note) {
      *note = "gnuplot did not draw the charts (" +
              std::string(rc == -1 || WEXITSTATUS(rc) == 127 ? "is gnuplot installed? "
                                                               "apt-get install gnuplot-nox"
                                                             : "see " + charts + "/gnuplot.log") +
              "); the data and charts.gp are in " + charts;
    }
    return Status::Ok();
  }
  for (const char* name : {"throughput", "latency", "cpu", "lag", "timeline", "sweep_throughput",
                           "sweep_p99", "sweep_peer_bytes"}) {
    for (const char* ext : {"png", "svg"}) {
      const std::string path = charts + "/" + name + "." + ext;
      if (std::filesystem::exists(path)) written.push_back(path);
    }
  }
  return Status::Ok();
}

}  // namespace sessiond::bench

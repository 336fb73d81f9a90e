// Report: combining repetitions, and the table, CSV, JSON and files it writes, from synthetic runs
// whose numbers are known.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tools/bench/json_value.h"
#include "tools/bench/report.h"

namespace sessiond::bench {
namespace {

using namespace std::chrono_literals;

// A run of `ok` requests all taking `latency_us`, over 10 s.
ModeRun Ran(const std::string& mode, int nodes, int repetition, uint64_t ok, int64_t latency_us) {
  ModeRun run;
  run.mode = mode;
  run.nodes = nodes;
  run.repetition = repetition;
  run.load.measured = 10s;
  run.load.all.ok = ok;
  run.load.all.latency.Record(latency_us * 1000, static_cast<int64_t>(ok));
  run.load.by_op[0] = run.load.all;
  run.node_rss_bytes = {uint64_t{10} << 20, uint64_t{30} << 20};
  run.load.timeline = {TimelineSecond{0, ok / 10, 0, latency_us * 1000, latency_us * 1000}};
  return run;
}

ModeRun NotRun(const std::string& mode, int nodes, const std::string& reason) {
  ModeRun run;
  run.mode = mode;
  run.nodes = nodes;
  run.repetition = 1;
  run.not_run = reason;
  return run;
}

std::vector<ModeRun> SampleRuns() {
  std::vector<ModeRun> runs;
  runs.push_back(Ran("standalone", 2, 1, 10'000, 100));
  runs.push_back(Ran("standalone", 2, 2, 30'000, 300));
  runs.back().load.all.errors["NOT_FOUND"] = 50;
  runs.push_back(NotRun("delta", 2, "unavailable: mode delta is not available in this build yet"));
  ModeRun failover = Ran("backup", 2, 1, 5'000, 1000);
  failover.failover = FailoverOutcome{};
  failover.failover->victim = 1;
  failover.failover->verdict.sessions_lost = 3;
  failover.failover->verdict.writes_lost = 7;
  failover.failover->verdict.acknowledged_writes = 700;
  failover.failover->redundancy_restored_s = 1.5;
  failover.peer_bytes_per_op = 120.0;
  failover.peer_frames_per_op = 1.0;
  runs.push_back(std::move(failover));
  return runs;
}

ReportContext Context() {
  ReportContext context;
  context.failover = true;
  context.repetitions = 2;
  context.started_at = "2024-01-01T00:00:00Z";
  context.command_line = "sessiond-bench --quick";
  return context;
}

TEST(BenchReportTest, CombinesRepetitions) {
  Report report(Context(), SampleRuns());
  ASSERT_EQ(report.summaries().size(), 3u);
  const ModeSummary& standalone = report.summaries()[0];
  EXPECT_EQ(standalone.runs, 2);
  EXPECT_EQ(standalone.load.all.ok, 40'000u);
  // 40 000 ok over 20 s measured in all.
  EXPECT_DOUBLE_EQ(standalone.load.throughput(), 2000.0);
  EXPECT_DOUBLE_EQ(standalone.throughput_min, 1000.0);
  EXPECT_DOUBLE_EQ(standalone.throughput_max, 3000.0);
  // 3/4 of the requests took 300 us: the median is theirs.
  EXPECT_NEAR(standalone.load.all.latency.ValueAtPercentile(50), 300'000, 300);
  EXPECT_DOUBLE_EQ(*standalone.rss_mb_per_node, 20.0);
  const ModeSummary& delta = report.summaries()[1];
  EXPECT_EQ(delta.runs, 0);
  EXPECT_NE(delta.not_run.find("not available"), std::string::npos);
}

TEST(BenchReportTest, TableShowsNumbersAndReasons) {
  Report report(Context(), SampleRuns());
  const std::string table = report.Table();
  EXPECT_NE(table.find("standalone"), std::string::npos);
  EXPECT_NE(table.find("2000"), std::string::npos);  // ops/s
  EXPECT_NE(table.find("unavailable: mode delta is not available"), std::string::npos);
  EXPECT_NE(table.find("7/700"), std::string::npos);  // lost / acknowledged writes
  EXPECT_NE(table.find("50 NOT_FOUND"), std::string::npos);
}

// Splits one CSV line, honouring quotes.
std::vector<std::string> CsvFields(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  return fields;
}

TEST(BenchReportTest, CsvRowsAllHaveTheHeadersColumns) {
  std::vector<ModeRun> runs = SampleRuns();
  runs.push_back(NotRun("redis", 2, "failed: a reason, with a comma and \"quotes\""));
  Report report(Context(), std::move(runs));
  std::istringstream csv(report.Csv());
  std::string line;
  ASSERT_TRUE(std::getline(csv, line));
  const size_t columns = CsvFields(line).size();
  int rows = 0;
  bool saw_quoted_reason = false;
  while (std::getline(csv, line)) {
    const auto fields = CsvFields(line);
    EXPECT_EQ(fields.size(), columns) << line;
    if (fields[4] == "failed: a reason, with a comma and \"quotes\"") saw_quoted_reason = true;
    ++rows;
  }
  EXPECT_EQ(rows, 5 + 4);  // five repetitions, four (mode, nodes) combined rows
  EXPECT_TRUE(saw_quoted_reason);
}

TEST(BenchReportTest, JsonIsValidAndComplete) {
  Report report(Context(), SampleRuns());
  auto doc = JsonValue::Parse(report.Json());
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->Find("tool")->as_string(), "sessiond-bench");
  const auto& results = doc->Find("results")->as_array();
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].Find("status")->as_string(), "ok");
  EXPECT_DOUBLE_EQ(results[0].Find("throughput_ops_per_s")->as_double(), 2000.0);
  EXPECT_EQ(results[0].Find("repetitions")->as_array().size(), 2u);
  EXPECT_EQ(results[1].Find("status")->as_string(), "unavailable");
  const JsonValue* failover = results[2].Find("failover");
  ASSERT_NE(failover, nullptr);
  EXPECT_EQ(failover->Find("sessions_lost")->as_int64(), 3);
  EXPECT_EQ(failover->Find("writes_lost")->as_int64(), 7);
  EXPECT_DOUBLE_EQ(failover->Find("redundancy_restored_s")->as_double(), 1.5);
  EXPECT_DOUBLE_EQ(results[2].Find("peer_bytes_per_op")->as_double(), 120.0);
}

// The side-by-side ratios the issues ask for (replication's cost against standalone, the
// sidecar's against redis-direct) and Redis's memory per session, from runs of known throughput.
std::vector<ModeRun> RatioRuns() {
  std::vector<ModeRun> runs;
  runs.push_back(Ran("standalone", 3, 1, 40'000, 100));    // 4000 ops/s
  runs.push_back(Ran("delta-async", 3, 1, 30'000, 100));   // 3000 ops/s: 0.75x standalone
  runs.push_back(Ran("redis", 3, 1, 16'000, 200));         // 1600 ops/s: 0.8x redis-direct
  runs.push_back(Ran("redis-direct", 3, 1, 20'000, 100));  // 2000 ops/s
  RedisMemory memory;
  memory.keys = 2000;
  memory.used_memory_delta = 2000 * 338;
  memory.used_bytes_per_key = 338;
  memory.sample_keys = 20;
  memory.memory_usage_bytes = 264;
  memory.encoding = "listpack";
  runs[2].redis_memory = memory;
  runs[2].load_average = 7.5;
  runs[1].offered_rate = 2500;
  runs[1].calibrated_max_rate = 5000;
  return runs;
}

TEST(BenchReportTest, RatiosAgainstTheBaselinesOfTheSameRun) {
  Report report(Context(), RatioRuns());
  ASSERT_EQ(report.summaries().size(), 4u);
  EXPECT_FALSE(report.summaries()[0].vs_standalone);  // itself
  EXPECT_DOUBLE_EQ(*report.summaries()[1].vs_standalone, 0.75);
  EXPECT_DOUBLE_EQ(*report.summaries()[2].vs_redis_direct, 0.8);
  EXPECT_FALSE(report.summaries()[3].vs_redis_direct);

  const std::string table = report.Table();
  EXPECT_NE(table.find("delta-async n=3: throughput 0.75x standalone's"), std::string::npos)
      << table;
  EXPECT_NE(table.find("redis n=3: throughput 0.80x redis-direct's: the sidecar costs 20%"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("338 B"), std::string::npos) << table;
  EXPECT_NE(table.find("listpack"), std::string::npos) << table;
  EXPECT_NE(table.find("open loop at 2500 requests/s, 0.5 of the 5000/s"), std::string::npos)
      << table;

  auto doc = JsonValue::Parse(report.Json());
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  const auto& results = doc->Find("results")->as_array();
  ASSERT_EQ(results.size(), 4u);
  EXPECT_TRUE(results[0].Find("throughput_vs_standalone")->is_null());
  EXPECT_DOUBLE_EQ(results[1].Find("throughput_vs_standalone")->as_double(), 0.75);
  EXPECT_DOUBLE_EQ(results[1].Find("offered_rate")->as_double(), 2500);
  EXPECT_DOUBLE_EQ(results[1].Find("calibrated_max_rate")->as_double(), 5000);
  EXPECT_DOUBLE_EQ(results[2].Find("throughput_vs_redis_direct")->as_double(), 0.8);
  EXPECT_DOUBLE_EQ(results[2].Find("load_average")->as_double(), 7.5);
  const JsonValue* memory = results[2].Find("redis_memory");
  ASSERT_NE(memory, nullptr);
  ASSERT_TRUE(memory->is_object());
  EXPECT_DOUBLE_EQ(memory->Find("used_bytes_per_key")->as_double(), 338);
  EXPECT_DOUBLE_EQ(memory->Find("memory_usage_bytes")->as_double(), 264);
  EXPECT_EQ(memory->Find("encoding")->as_string(), "listpack");
  EXPECT_TRUE(results[3].Find("redis_memory")->is_null());

  // The CSV carries the same columns for every row.
  std::istringstream csv(report.Csv());
  std::string line;
  ASSERT_TRUE(std::getline(csv, line));
  const auto header = CsvFields(line);
  while (std::getline(csv, line)) EXPECT_EQ(CsvFields(line).size(), header.size()) << line;
}

TEST(BenchReportTest, WritesItsFiles) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("bench_report_test_" + std::to_string(::getpid())))
          .string();
  Report report(Context(), SampleRuns());
  std::string note;
  const bool charts = std::system("command -v gnuplot > /dev/null 2>&1") == 0;
  auto written = report.WriteFiles(dir, charts, &note);
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  for (const char* name : {"results.json", "results.csv", "results.txt"}) {
    EXPECT_TRUE(std::filesystem::exists(dir + "/" + name)) << name;
  }
  if (charts) {
    EXPECT_TRUE(note.empty()) << note;
    for (const char* name : {"throughput.png", "throughput.svg", "latency.png", "timeline.svg"}) {
      EXPECT_GT(std::filesystem::file_size(dir + "/charts/" + name), 0u) << name;
    }
  }
  std::filesystem::remove_all(dir);
}

TEST(BenchReportTest, DrawsLagAndPeerTrafficChartsForASweep) {
  if (std::system("command -v gnuplot > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "gnuplot is not installed";
  }
  std::vector<ModeRun> runs;
  for (int nodes : {2, 3, 4}) {
    ModeRun run = Ran("delta", nodes, 1, 10'000, 100);
    run.peer_bytes_per_op = 100.0 * (nodes - 1);
    run.peer_frames_per_op = 0.5;
    run.load.lag.Record(200'000, 50);
    run.load.lag_probes = 50;
    runs.push_back(std::move(run));
    runs.push_back(Ran("standalone", nodes, 1, 20'000, 50));
  }
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("bench_sweep_test_" + std::to_string(::getpid())))
          .string();
  Report report(Context(), std::move(runs));
  std::string note;
  auto written = report.WriteFiles(dir, true, &note);
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_TRUE(note.empty()) << note;
  for (const char* name : {"lag.png", "lag.svg", "sweep_throughput.png", "sweep_p99.svg",
                           "sweep_peer_bytes.png", "sweep_peer_bytes.svg"}) {
    EXPECT_TRUE(std::filesystem::exists(dir + "/charts/" + name)) << name;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sessiond::bench

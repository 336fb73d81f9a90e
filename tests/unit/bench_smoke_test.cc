// The 5-second smoke comparison: sessiond-bench run as a user runs it (a real process starting
// real sessiond nodes and redis-server), then the JSON and CSV it wrote are checked.
//
// A failover is included, so the kill -9, the read-back of every acknowledged write and the lost
// sessions accounting all run for real. Modes this build does not have must come out as
// "unavailable" rows, never as a failed run.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tools/bench/json_value.h"

namespace sessiond::bench {
namespace {

std::string BuiltBinary(const char* name) {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  const auto sibling = self.parent_path() / name;
  return std::filesystem::exists(sibling, ec) ? sibling.string() : "";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

double Number(const JsonValue& object, const char* key) {
  const JsonValue* v = object.Find(key);
  EXPECT_NE(v, nullptr) << "missing " << key;
  EXPECT_TRUE(v == nullptr || v->is_number()) << key << " is not a number";
  return v != nullptr ? v->as_double() : 0.0;
}

TEST(BenchSmokeTest, ComparisonWritesValidResults) {
  const std::string bench = BuiltBinary("sessiond-bench");
  const std::string sessiond = BuiltBinary("sessiond");
  if (bench.empty() || sessiond.empty()) {
    GTEST_SKIP() << "sessiond-bench and sessiond are not built next to the test binary";
  }
  const std::string out =
      (std::filesystem::temp_directory_path() / ("bench_smoke_" + std::to_string(::getpid())))
          .string();
  const std::string command =
      "'" + bench + "' --sessiond '" + sessiond +
      "' --modes standalone,delta,redis,redis-nc,redis-direct --nodes 2 --sessions 300"
      " --connections 2"
      " --warmup-s 1 --duration-s 2 --failover --out-dir '" +
      out + "' > '" + out + ".log' 2>&1";
  std::filesystem::create_directories(out);
  const int rc = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(rc)) << ReadFile(out + ".log");
  ASSERT_EQ(WEXITSTATUS(rc), 0) << ReadFile(out + ".log");

  auto doc = JsonValue::Parse(ReadFile(out + "/results.json"));
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->Find("tool")->as_string(), "sessiond-bench");
  EXPECT_TRUE(doc->Find("failover")->as_bool());
  const auto& results = doc->Find("results")->as_array();
  ASSERT_EQ(results.size(), 5u);

  for (const JsonValue& row : results) {
    const std::string mode = row.Find("mode")->as_string();
    const std::string status = row.Find("status")->as_string();
    SCOPED_TRACE(mode);
    EXPECT_EQ(row.Find("nodes")->as_int64(), 2);
    // Every mode runs or says why it cannot; none fails.
    ASSERT_TRUE(status == "ok" || status == "unavailable")
        << status << ": " << row.Find("reason")->as_string();
    if (status == "unavailable") {
      EXPECT_FALSE(row.Find("reason")->as_string().empty());
      continue;
    }
    EXPECT_GT(Number(row, "throughput_ops_per_s"), 0);
    const JsonValue* requests = row.Find("requests");
    ASSERT_NE(requests, nullptr);
    EXPECT_GT(Number(*requests, "ok"), 0);
    const JsonValue* latency = requests->Find("latency_ms");
    ASSERT_NE(latency, nullptr);
    const double p50 = Number(*latency, "p50"), p90 = Number(*latency, "p90"),
                 p99 = Number(*latency, "p99"), p999 = Number(*latency, "p99_9"),
                 max = Number(*latency, "max");
    EXPECT_GT(p50, 0);
    EXPECT_LE(p50, p90);
    EXPECT_LE(p90, p99);
    EXPECT_LE(p99, p999);
    EXPECT_LE(p999, max);
    EXPECT_EQ(row.Find("repetitions")->as_array().size(), 1u);
    EXPECT_GT(Number(row, "load_average"), 0);

    // Redis's memory per session for the rows with the bench's own Redis; the sidecar's cost
    // against redis-direct for the redis rows; peer traffic for delta.
    const JsonValue* memory = row.Find("redis_memory");
    ASSERT_NE(memory, nullptr);
    if (mode.rfind("redis", 0) == 0) {
      ASSERT_TRUE(memory->is_object());
      EXPECT_EQ(Number(*memory, "keys"), 300);
      EXPECT_GT(Number(*memory, "used_bytes_per_key"), 0);
      EXPECT_GT(Number(*memory, "memory_usage_bytes"), 0);
      EXPECT_FALSE(memory->Find("encoding")->as_string().empty());
    } else {
      EXPECT_TRUE(memory->is_null());
    }
    if (mode == "redis" || mode == "redis-nc") {
      EXPECT_GT(Number(row, "throughput_vs_redis_direct"), 0);
    }
    if (mode == "delta") {
      EXPECT_GT(Number(row, "peer_bytes_per_op"), 0);
      EXPECT_GT(Number(row, "peer_frames_per_op"), 0);
      EXPECT_GT(Number(row, "throughput_vs_standalone"), 0);
    }

    const JsonValue* failover = row.Find("failover");
    ASSERT_NE(failover, nullptr);
    ASSERT_TRUE(failover->is_object());
    // redis-direct has no sidecar to kill (victim 0 = none); its writes are still read back.
    EXPECT_EQ(failover->Find("victim_node")->as_int64(), mode == "redis-direct" ? 0 : 2);
    const JsonValue* check = failover->Find("writes_check");
    ASSERT_NE(check, nullptr);
    EXPECT_GT(Number(*check, "sessions_checked"), 0);
    EXPECT_GT(Number(*check, "acknowledged_writes"), 0);
    if (mode == "standalone") {
      // One copy per session: the killed node's sessions (about half) are gone with it.
      EXPECT_GT(Number(*failover, "sessions_lost"), 0);
      EXPECT_GT(Number(*failover, "writes_lost"), 0);
      EXPECT_LT(Number(*failover, "sessions_lost"), Number(*check, "sessions_checked"));
    }
  }

  // The CSV: a header and, per (mode, nodes), a repetition row and a combined row.
  std::istringstream csv(ReadFile(out + "/results.csv"));
  std::string line;
  int lines = 0;
  while (std::getline(csv, line)) ++lines;
  EXPECT_EQ(lines, 1 + 5 * 2);

  std::error_code ec;
  std::filesystem::remove_all(out, ec);
  std::filesystem::remove(out + ".log", ec);
}

}  // namespace
}  // namespace sessiond::bench

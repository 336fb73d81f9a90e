// A measurement, not a test: what lz4's acceleration buys on state-transfer chunks. Builds
// chunks of about 1 MiB as the sender does (StampedSessionWriter over a store of sessions of 8
// attributes of 120 bytes) and compresses each at several accelerations. Disabled by default;
// run it on its own (one line):
//
//   build/bin/unit_tests --gtest_also_run_disabled_tests
//       --gtest_filter='DeltaChunkCompressionBenchmark.*'
//
// Two kinds of values: the transfer benchmark's (a prefix, then one letter repeated: lz4's best
// case) and random URL-safe text (tokens, ids: its worst case for text).
#include <gtest/gtest.h>
#include <time.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "replication/delta/session_chunk.h"
#include "replication/delta/stamp_table.h"
#include "replication/session_id.h"
#include "replication/session_store.h"

namespace sessiond {
namespace {

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

// Serialized chunks of about 1 MiB holding `sessions` sessions.
std::vector<std::string> BuildChunks(int sessions, bool random_values) {
  SessionStore store(SessionLimits{});
  StampTable stamps(100);
  RandomIdGenerator ids;
  std::mt19937_64 random(42);
  constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::vector<std::string> chunks;
  StampedSessionWriter writer;
  for (int n = 0; n < sessions; ++n) {
    v1::CreateRequest request;
    request.set_max_idle_s(3600);
    for (int i = 0; i < 8; ++i) {
      std::string value = std::to_string(n) + "/" + std::to_string(i) + ":";
      if (random_values) {
        while (value.size() < 120) value.push_back(kAlphabet[random() % 64]);
      } else {
        value.resize(120, static_cast<char>('a' + (n * 7 + i) % 26));
      }
      (*request.mutable_attributes())["attr" + std::to_string(i)] = std::move(value);
    }
    Result<const StoredSession*> s = store.Create(ids.NewId(), request, 1'000);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    const std::string id = (*s)->id();
    for (int i = 0; i < 8; ++i) {
      stamps.Set(id, StampedField::kAttribute, "attr" + std::to_string(i), n + 1, "a");
    }
    stamps.Set(id, StampedField::kMaxIdle, "", n + 1, "a");
    writer.AddSession(**s, id, stamps);
    if (writer.bytes() >= (1u << 20)) {
      chunks.push_back(std::move(writer).Finish());
      writer = StampedSessionWriter();
    }
  }
  return chunks;
}

TEST(DeltaChunkCompressionBenchmark, DISABLED_Lz4Acceleration) {
  for (const bool random_values : {false, true}) {
    const std::vector<std::string> chunks = BuildChunks(20'000, random_values);
    size_t raw = 0;
    for (const std::string& c : chunks) raw += c.size();
    std::printf("%s values: %zu chunks, %.1f MB serialized\n",
                random_values ? "random" : "repeated-letter", chunks.size(), raw / 1e6);
    for (const int acceleration : {1, 2, 4, 8, 16}) {
      constexpr int kRounds = 5;
      size_t compressed = 0;
      double compress_s = 0, decompress_s = 0;
      DecodedChunk decoded;  // reused, as the receiver's pool does
      for (int round = 0; round < kRounds; ++round) {
        for (const std::string& c : chunks) {
          peer::v1::StateTransferChunk chunk;
          double start = ThreadCpuSeconds();
          ASSERT_TRUE(CompressSessionChunk(c, &chunk, acceleration).ok());
          compress_s += ThreadCpuSeconds() - start;
          if (round == 0) compressed += chunk.lz4_payload().size();
          start = ThreadCpuSeconds();
          ASSERT_TRUE(DecodeSessionChunk(chunk, 1 << 30, &decoded).ok());
          decompress_s += ThreadCpuSeconds() - start;
        }
      }
      std::printf(
          "  acceleration %2d: %5.1f%% of the serialized size, compress %.2f ms/MB, "
          "decompress+parse %.2f ms/MB\n",
          acceleration, 100.0 * compressed / raw, 1e3 * compress_s / kRounds / (raw / 1e6),
          1e3 * decompress_s / kRounds / (raw / 1e6));
    }
  }
}

}  // namespace
}  // namespace sessiond

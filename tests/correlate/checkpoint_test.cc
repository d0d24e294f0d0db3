// Correlation checkpoints: a restored engine raises the same alerts as one that never
// stopped, changed rules start fresh, and bad files are rejected and counted.
#include "correlate/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "common/metrics.h"
#include "correlate/engine.h"
#include "correlate/internal/checkpoint_codec.h"
#include "correlate/test_events.h"
#include "fuzz/checkpoint_fuzz_rules.h"
#include "gtest/gtest.h"

namespace vigil::correlate {
namespace {

using testing::fillEvent;
using testing::loadRuleSet;

constexpr char kDetections[] = R"(
title: A
name: a
detection: {sel: {rule: a}, condition: sel}
---
title: B
name: b
detection: {sel: {rule: b}, condition: sel}
---
title: C
name: c
detection: {sel: {rule: c}, condition: sel}
---
title: Scan
id: det_scan
suppress: {timespan: 5m, group-by: [src_ip]}
detection: {sel: {rule: scan}, condition: sel}
)";

// One correlation of every type, each keyed by host.
constexpr char kCorrelations[] = R"(
---
title: Count
id: corr_count
correlation: {type: event_count, rules: [a], group-by: [host], timespan: 5m, condition: {gte: 4}}
---
title: Values
id: corr_values
correlation:
  type: value_count
  rules: [a]
  group-by: [host]
  timespan: 5m
  condition: {field: User, gte: 3}
---
title: Temporal
id: corr_temporal
correlation: {type: temporal, rules: [a, b], group-by: [host], timespan: 2m}
---
title: Ordered
id: corr_ordered
correlation: {type: temporal_ordered, rules: [a, b, c], group-by: [host], timespan: 5m}
---
title: Absence
id: corr_absence
correlation: {type: absence, rules: [b, c], group-by: [host], timespan: 3m}
---
title: Suppressed
id: corr_suppressed
suppress: 10m
correlation: {type: event_count, rules: [b], group-by: [host], timespan: 5m, condition: {gte: 2}}
---
title: Sum
id: corr_sum
correlation:
  type: value_sum
  rules: [c]
  group-by: [host]
  timespan: 5m
  condition: {field: Bytes, gte: 150}
---
title: Range
id: corr_range
correlation: {type: event_count, rules: [b], group-by: [host], timespan: 2m, condition: {gte: 2, lte: 3}}
---
title: Percentile
id: corr_percentile
correlation:
  type: value_percentile
  rules: [c]
  group-by: [host]
  timespan: 5m
  condition: {field: Bytes, percentile: 75, lt: 30}
---
title: Chain
id: corr_chain
correlation:
  type: value_count
  rules: [corr_count]
  timespan: 30m
  condition: {field: host, gte: 2}
  generate: true
)";

std::string allRules() { return std::string(kDetections) + kCorrelations; }

// The fields of an alert that a restart must not change (ids and detection time are left
// out). Evidence is saved with the windows, so it is compared too.
using AlertFields =
    std::tuple<std::string, std::string, std::vector<std::pair<std::string, std::string>>, uint64_t,
               int64_t, int64_t, double, std::vector<std::string>>;

AlertFields fieldsOf(const Alert& alert) {
  // Alerts without a metric carry NaN, which never compares equal.
  const double metric = std::isnan(alert.metric) ? 0 : alert.metric;
  return {alert.rule_id,        alert.tenant,        alert.group, alert.event_count,
          alert.first_event_ns, alert.last_event_ns, metric,      alert.evidence};
}

// A fixed pseudo-random stream: hosts h0..h5, rules a, b, c and scan, mostly increasing
// times with some events up to 20 s out of order.
std::vector<nlohmann::json> makeStream(size_t count) {
  std::vector<nlohmann::json> stream;
  uint64_t state = 12345;
  auto next = [&](uint64_t bound) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % bound;
  };
  int64_t second = 0;
  const char* rules[] = {"a", "a", "b", "c", "scan"};
  for (size_t i = 0; i < count; ++i) {
    second += static_cast<int64_t>(next(25));
    int64_t at = second - (next(6) == 0 ? static_cast<int64_t>(next(20)) : 0);
    char ts[40];
    std::snprintf(ts, sizeof(ts), "2024-05-01T%02lld:%02lld:%02lldZ",
                  static_cast<long long>(10 + at / 3600), static_cast<long long>(at / 60 % 60),
                  static_cast<long long>(at % 60));
    stream.push_back({{"ts", ts},
                      {"rule", rules[next(5)]},
                      {"host", "h" + std::to_string(next(6))},
                      {"src_ip", "10.0.0." + std::to_string(next(3) + 1)},
                      {"User", "u" + std::to_string(next(4))},
                      {"Bytes", std::to_string(next(60))}});
  }
  return stream;
}

struct Runner {
  Runner(std::shared_ptr<const RuleSet> rule_set, size_t shards)
      : rules(std::move(rule_set)), engine(rules, options(shards), &metrics), scratch(*rules) {}

  static EngineOptions options(size_t shards) {
    EngineOptions result;
    result.shards = shards;
    result.allowed_lateness_ns = 30'000'000'000;
    // A pool that no event leaves, so evidence does not depend on the shard count.
    result.evidence_events = 1 << 16;
    return result;
  }

  void feed(const std::vector<nlohmann::json>& stream, size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      fillEvent(event, stream[i]);
      std::vector<Alert> out;
      engine.process(event, scratch, out);
      // Windows of several shards that one event closes raise their alerts in shard order,
      // which depends on the shard count, so the alerts of one event are compared sorted.
      std::vector<AlertFields> raised;
      for (const Alert& alert : out) raised.push_back(fieldsOf(alert));
      std::sort(raised.begin(), raised.end());
      alerts.insert(alerts.end(), raised.begin(), raised.end());
    }
  }

  uint64_t counter(const std::string& name, const Labels& labels = {}) {
    return metrics.counter(name, "", labels).value();
  }

  std::shared_ptr<const RuleSet> rules;
  MetricsRegistry metrics;
  Engine engine;
  DetectScratch scratch;
  Event event{1 << 14};
  std::vector<AlertFields> alerts;
};

std::string describe(const AlertFields& alert) {
  std::string text = std::get<0>(alert);
  for (const auto& [name, value] : std::get<2>(alert)) text += " " + name + "=" + value;
  text += " count " + std::to_string(std::get<3>(alert)) + " first " +
          std::to_string(std::get<4>(alert)) + " last " + std::to_string(std::get<5>(alert)) +
          " metric " + std::to_string(std::get<6>(alert)) + " evidence " +
          std::to_string(std::get<7>(alert).size());
  return text;
}

// Compares two alert lists and reports the first difference in one line.
void expectSameAlerts(const std::vector<AlertFields>& actual,
                      const std::vector<AlertFields>& expected) {
  EXPECT_EQ(actual.size(), expected.size());
  auto [a, e] = std::mismatch(actual.begin(), actual.end(), expected.begin(), expected.end());
  if (a == actual.end() || e == expected.end()) return;
  ADD_FAILURE() << "first difference at alert " << (a - actual.begin()) << ":\n  actual   "
                << describe(*a) << "\n  expected " << describe(*e);
}

std::map<std::string, size_t> countByRule(const std::vector<AlertFields>& alerts) {
  std::map<std::string, size_t> counts;
  for (const AlertFields& alert : alerts) ++counts[std::get<0>(alert)];
  return counts;
}

// Feeds half the stream to one engine, restores its checkpoint into a new one with
// `to_shards` shards and feeds it the rest. The second half's alerts must equal those
// of an engine that saw everything.
void expectSameAsUninterrupted(size_t from_shards, size_t to_shards) {
  auto rules = loadRuleSet(allRules());
  const std::vector<nlohmann::json> stream = makeStream(1200);
  const size_t half = stream.size() / 2;

  Runner whole(rules, from_shards);
  whole.feed(stream, 0, half);
  const size_t first_half_alerts = whole.alerts.size();
  whole.feed(stream, half, stream.size());
  std::vector<AlertFields> expected(whole.alerts.begin() + static_cast<long>(first_half_alerts),
                                    whole.alerts.end());

  Runner before(rules, from_shards);
  before.feed(stream, 0, half);
  const std::string file = before.engine.checkpoint();

  Runner after(rules, to_shards);
  absl::StatusOr<Engine::RestoreSummary> summary = after.engine.restore(file);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->rules_restored, rules->correlations.size());
  EXPECT_GT(summary->groups, 0u);
  EXPECT_GT(summary->suppress_keys, 0u);
  after.feed(stream, half, stream.size());
  expectSameAlerts(after.alerts, expected);

  // Every rule alerts in the second half, so each type's restore is exercised.
  std::map<std::string, size_t> counts = countByRule(expected);
  for (const char* rule :
       {"corr_count", "corr_values", "corr_temporal", "corr_ordered", "corr_absence",
        "corr_suppressed", "corr_sum", "corr_range", "corr_percentile", "corr_chain", "det_scan"}) {
    EXPECT_GT(counts[rule], 0u) << rule;
  }

  // Without the checkpoint the second half gives other alerts, so the comparison above
  // depends on the restored state.
  Runner fresh(rules, to_shards);
  fresh.feed(stream, half, stream.size());
  EXPECT_NE(fresh.alerts, expected);
}

// The checksum is CRC-32C: the standard check value, and the SSE4.2 path equal to the
// table for every length and alignment around its eight-byte steps.
TEST(CheckpointCrcTest, MatchesTableAndCheckValue) {
  EXPECT_EQ(internal::crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(internal::crc32cPortable("123456789"), 0xE3069283u);
  EXPECT_EQ(internal::crc32c(""), 0u);
  std::string bytes(300, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 131 + 7);
  for (size_t start = 0; start < 9; ++start) {
    for (size_t length = 0; start + length <= bytes.size(); length += 7) {
      std::string_view part(bytes.data() + start, length);
      ASSERT_EQ(internal::crc32c(part), internal::crc32cPortable(part))
          << "start " << start << " length " << length;
    }
  }
  // Extending a checksum gives the checksum of the joined bytes.
  const std::string_view all(bytes);
  for (size_t cut = 0; cut <= 20; ++cut) {
    EXPECT_EQ(crc32cExtend(crc32c(all.substr(0, cut)), all.substr(cut)), crc32c(all)) << cut;
  }
}

TEST(CheckpointTest, RestoreMatchesUninterruptedRun) { expectSameAsUninterrupted(1, 1); }

TEST(CheckpointTest, RestoreMatchesWithShards) { expectSameAsUninterrupted(4, 4); }

TEST(CheckpointTest, RestoreMovesGroupsToNewShardCount) { expectSameAsUninterrupted(4, 3); }

// A detection rule's suppression keys survive a restore.
TEST(CheckpointTest, SuppressionStateSurvives) {
  auto rules = loadRuleSet(allRules());
  Runner before(rules, 1);
  before.feed({{{"ts", "2024-05-01T10:00:00Z"}, {"rule", "scan"}, {"src_ip", "10.0.0.1"}}}, 0, 1);
  ASSERT_EQ(before.alerts.size(), 1u);
  Runner after(rules, 1);
  ASSERT_TRUE(after.engine.restore(before.engine.checkpoint()).ok());
  after.feed({{{"ts", "2024-05-01T10:01:00Z"}, {"rule", "scan"}, {"src_ip", "10.0.0.1"}}}, 0, 1);
  EXPECT_TRUE(after.alerts.empty());
  EXPECT_EQ(after.counter("vigil_alerts_suppressed_total", {{"rule", "det_scan"}, {"kind", "detection"}}),
            1u);
}

// A rule whose definition changed starts fresh; the unchanged ones keep their state.
TEST(CheckpointTest, ChangedRuleStartsFresh) {
  auto rules = loadRuleSet(allRules());
  std::string changed_text = allRules();
  const std::string from = "timespan: 5m, condition: {gte: 4}";
  changed_text.replace(changed_text.find(from), from.size(), "timespan: 6m, condition: {gte: 4}");
  auto changed = loadRuleSet(changed_text);

  Runner before(rules, 1);
  for (int i = 0; i < 3; ++i) {
    before.feed({{{"ts", "2024-05-01T10:00:0" + std::to_string(i) + "Z"}, {"rule", "a"},
                  {"host", "h1"}, {"User", i == 0 ? "u0" : "u1"}}},
                0, 1);
  }
  Runner after(changed, 1);
  absl::StatusOr<Engine::RestoreSummary> summary = after.engine.restore(before.engine.checkpoint());
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->rules_changed, 1u);
  EXPECT_EQ(summary->rules_restored, changed->correlations.size() - 1);
  EXPECT_EQ(after.counter("vigil_checkpoint_rules_total", {{"outcome", "changed"}}), 1u);

  // corr_values kept u0 and u1 and fires on a third value; corr_count lost its three
  // events, so a fourth does not fire it.
  after.feed({{{"ts", "2024-05-01T10:00:05Z"}, {"rule", "a"}, {"host", "h1"}, {"User", "u2"}}}, 0, 1);
  std::map<std::string, size_t> counts = countByRule(after.alerts);
  EXPECT_EQ(counts["corr_values"], 1u);
  EXPECT_EQ(counts["corr_count"], 0u);
}

// A rule the new set no longer has is counted as removed.
TEST(CheckpointTest, RemovedRuleCounted) {
  Runner before(loadRuleSet(allRules()), 1);
  Runner after(loadRuleSet(kDetections), 1);
  absl::StatusOr<Engine::RestoreSummary> summary = after.engine.restore(before.engine.checkpoint());
  ASSERT_TRUE(summary.ok()) << summary.status();
  const size_t saved = loadRuleSet(allRules())->correlations.size();
  EXPECT_EQ(summary->rules_removed, saved);
  EXPECT_EQ(after.counter("vigil_checkpoint_rules_total", {{"outcome", "removed"}}), saved);
}

// Corrupt, cut and other-version files are rejected, counted and change nothing.
TEST(CheckpointTest, BadFilesRejectedAndCounted) {
  auto rules = loadRuleSet(allRules());
  Runner before(rules, 2);
  const std::vector<nlohmann::json> stream = makeStream(200);
  before.feed(stream, 0, stream.size());
  const std::string good = before.engine.checkpoint();

  std::string flipped = good;
  flipped[flipped.size() / 2] ^= 0x40;
  std::string version = good;
  version[8] = 3;
  std::string magic = good;
  magic[0] = 'X';
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"flipped byte", flipped},
      {"cut short", good.substr(0, good.size() - 7)},
      {"header only", good.substr(0, kCheckpointHeaderBytes)},
      {"empty", ""},
      {"other version", version},
      {"bad magic", magic},
  };
  Runner after(rules, 2);
  uint64_t rejected = 0;
  for (const auto& [name, bytes] : cases) {
    absl::StatusOr<Engine::RestoreSummary> summary = after.engine.restore(bytes);
    EXPECT_FALSE(summary.ok()) << name;
    EXPECT_EQ(summary.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(after.counter("vigil_checkpoint_rejected_total"), ++rejected) << name;
    EXPECT_EQ(after.engine.keyCount(), 0) << name;
  }
  EXPECT_NE(std::string(after.engine.restore(version).status().message()).find("version 3"),
            std::string::npos);
}

// A body with a valid checksum but a group that does not fit its rule is rejected.
TEST(CheckpointTest, GroupNotFittingRuleRejected) {
  auto rules = loadRuleSet(allRules());
  Runner before(rules, 1);
  before.feed({{{"ts", "2024-05-01T10:00:00Z"}, {"rule", "a"}, {"host", "h1"}, {"User", "u1"}}}, 0,
              1);
  std::vector<std::string> parts(1);
  before.engine.saveShard(0, parts[0]);
  // The first rule (corr_count, min 4) gets a group holding 9 events: sequence numbers
  // 0 and 9. The first group record follows the newest time and watermark (16 bytes),
  // the rule count (4), the label, the hash and the group count.
  const size_t label_end = 16 + 4 + 4 + std::string("corr_count").size();
  const size_t group_start = label_end + 8 + 4;
  const size_t key_length = static_cast<uint8_t>(parts[0][group_start]);
  const size_t next_seq_at = group_start + 4 + key_length + 8;
  parts[0][next_seq_at] = 9;
  std::string suppression;
  before.engine.saveSuppression(suppression);
  Runner after(rules, 1);
  absl::StatusOr<Engine::RestoreSummary> summary =
      after.engine.restore(assembleCheckpoint(parts, suppression));
  ASSERT_FALSE(summary.ok());
  EXPECT_NE(std::string(summary.status().message()).find("does not fit the rule"), std::string::npos)
      << summary.status();
}

// The file is replaced atomically, and the temporary file does not remain.
TEST(CheckpointTest, WriteFileAtomically) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("vigil_ckpt_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "correlation.ckpt").string();
  ASSERT_TRUE(writeFileAtomically(path, "first").ok());
  ASSERT_TRUE(writeFileAtomically(path, "second").ok());
  EXPECT_EQ(testing::readFile(path), "second");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  absl::Status missing = writeFileAtomically((dir / "no/such/dir/file").string(), "x");
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(std::string(missing.message()).find("cannot create"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// The fuzz target's seeds that hold a whole checkpoint restore into its rule set, so the
// fuzzer starts from files that reach every record type.
TEST(CheckpointTest, FuzzSeedsRestore) {
  auto rules = loadRuleSet(kCheckpointFuzzRules);
  const std::string corpus = std::string(VIGIL_SOURCE_DIR) + "/tests/fuzz/checkpoint_fuzz_corpus/";
  for (const char* name : {"file_1_shards.bin", "file_2_shards.bin"}) {
    const std::string seed = testing::readFile(corpus + name);
    ASSERT_FALSE(seed.empty()) << name;
    Runner after(rules, 2);
    absl::StatusOr<Engine::RestoreSummary> summary = after.engine.restore(seed.substr(1));
    ASSERT_TRUE(summary.ok()) << name << ": " << summary.status();
    EXPECT_EQ(summary->rules_restored, rules->correlations.size()) << name;
    EXPECT_GT(summary->groups, 0u) << name;
    EXPECT_GT(summary->suppress_keys, 0u) << name;
  }
}

}  // namespace
}  // namespace vigil::correlate

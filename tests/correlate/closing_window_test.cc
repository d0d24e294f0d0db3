// Conditions with upper bounds and exclusions (lt, lte, eq, neq and ranges): windows that
// open at a group's first event and are decided when the watermark passes their end, and
// value_percentile.
#include <algorithm>
#include <cstdio>
#include <string>
#include <tuple>
#include <vector>

#include "common/metrics.h"
#include "correlate/engine.h"
#include "correlate/test_events.h"
#include "gtest/gtest.h"

namespace vigil::correlate {
namespace {

using testing::fillEvent;
using testing::loadRuleSet;

constexpr int64_t kSecond = 1'000'000'000;
// 2024-05-01T10:00:00Z, the time `second` 0 of the fixtures.
constexpr int64_t kBase = 1714557600 * kSecond;

constexpr char kDetections[] = R"(
title: A
name: a
detection: {sel: {rule: a}, condition: sel}
---
title: Tick
name: tick
detection: {sel: {rule: tick}, condition: sel}
)";

std::string correlation(const std::string& body) {
  return std::string(kDetections) + "---\ntitle: Corr\nid: corr\ncorrelation:\n" + body;
}

std::string loadError(const std::string& yaml) {
  RuleLoader loader;
  absl::Status status = loader.addText(yaml, "bad.yml");
  if (status.ok()) status = loader.finish().status();
  return std::string(status.message());
}

// What the tests compare of an alert: group value, events, first and last second.
using Seen = std::tuple<std::string, uint64_t, int64_t, int64_t>;

struct Fixture {
  explicit Fixture(const std::string& yaml, EngineOptions options = {})
      : rules(loadRuleSet(yaml)), engine(rules, options, &metrics), scratch(*rules) {}

  // Feeds one event `second` seconds after 10:00:00 and returns the correlation alerts.
  std::vector<Alert> feed(int second, const std::string& rule, const std::string& host,
                          const nlohmann::json& extra = nlohmann::json::object()) {
    char ts[32];
    std::snprintf(ts, sizeof(ts), "2024-05-01T%02d:%02d:%02dZ", 10 + second / 3600,
                  second / 60 % 60, second % 60);
    nlohmann::json document = extra;
    document["ts"] = ts;
    document["rule"] = rule;
    document["host"] = host;
    fillEvent(event, document);
    std::vector<Alert> out;
    engine.process(event, scratch, out);
    std::vector<Alert> correlation;
    for (Alert& alert : out) {
      if (alert.rule_id == "corr") correlation.push_back(std::move(alert));
    }
    return correlation;
  }

  // The alerts of feed() as (host, events, first second, last second), sorted.
  std::vector<Seen> seen(const std::vector<Alert>& alerts) {
    std::vector<Seen> result;
    for (const Alert& alert : alerts) {
      result.emplace_back(alert.group.empty() ? "" : alert.group[0].second, alert.event_count,
                          (alert.first_event_ns - kBase) / kSecond,
                          (alert.last_event_ns - kBase) / kSecond);
    }
    std::sort(result.begin(), result.end());
    return result;
  }

  uint64_t counter(const std::string& name, const Labels& labels = {}) {
    return metrics.counter(name, "", labels).value();
  }

  std::shared_ptr<const RuleSet> rules;
  MetricsRegistry metrics;
  Engine engine;
  DetectScratch scratch;
  Event event{1 << 14};
};

// {lt: 3}: a window opens at a host's first event (t0), holds [t0, t0 + 60 s] and is
// decided when the watermark passes t0 + 60 s. Hosts with fewer than three events fire
// then, including h3, which saw no event after its first one; h2 reached three and does
// not fire.
TEST(ClosingWindowTest, LessThanFiresAtClose) {
  Fixture f(
      correlation("  type: event_count\n  rules: [a]\n  group-by: [host]\n"
                  "  timespan: 60s\n  condition: {lt: 3}\n"));
  ASSERT_TRUE(f.rules->correlations[0].closes);
  EXPECT_TRUE(f.feed(0, "a", "h1").empty());
  EXPECT_TRUE(f.feed(0, "a", "h2").empty());
  EXPECT_TRUE(f.feed(5, "a", "h3").empty());
  EXPECT_TRUE(f.feed(10, "a", "h1").empty());
  EXPECT_TRUE(f.feed(20, "a", "h2").empty());
  EXPECT_TRUE(f.feed(60, "a", "h2").empty());  // exactly t0 + 60 s: still inside
  EXPECT_EQ(f.engine.stateSizes()[0].groups, 3u);
  EXPECT_EQ(f.metrics.gauge("vigil_correlation_pending_timers", "").value(), 3);
  // The watermark reaches 60: no window has closed yet (closing needs watermark > end).
  EXPECT_TRUE(f.feed(60, "tick", "x").empty());
  // 61 passes the end of h1 and h2 (60), not h3 (65).
  EXPECT_EQ(f.seen(f.feed(61, "tick", "x")), (std::vector<Seen>{{"h1", 2, 0, 10}}));
  EXPECT_EQ(f.seen(f.feed(66, "tick", "x")), (std::vector<Seen>{{"h3", 1, 5, 5}}));
  EXPECT_EQ(f.metrics.gauge("vigil_correlation_pending_timers", "").value(), 0);
  EXPECT_EQ(f.counter("vigil_alerts_total", {{"rule", "corr"}, {"kind", "correlation"}}), 2u);
}

// A range {gte: 3, lte: 5} fires at close for 3 to 5 events only, and the alert's
// evidence lists the window's events.
TEST(ClosingWindowTest, RangeDecidedAtClose) {
  EngineOptions options;
  options.allowed_lateness_ns = 10 * kSecond;  // the hosts' events interleave out of order
  Fixture f(correlation("  type: event_count\n  rules: [a]\n  group-by: [host]\n"
                        "  timespan: 60s\n  condition: {gte: 3, lte: 5}\n"),
            options);
  const std::vector<std::pair<std::string, int>> counts = {
      {"h2", 2}, {"h3", 3}, {"h5", 5}, {"h6", 6}};
  for (const auto& [host, count] : counts) {
    for (int i = 0; i < count; ++i) {
      // Reaching three does not fire early: a later event could pass the upper bound.
      EXPECT_TRUE(f.feed(i, "a", host).empty()) << host << " " << i;
    }
  }
  std::vector<Alert> alerts = f.feed(100, "tick", "x");
  EXPECT_EQ(f.seen(alerts), (std::vector<Seen>{{"h3", 3, 0, 2}, {"h5", 5, 0, 4}}));
  for (const Alert& alert : alerts) EXPECT_EQ(alert.evidence.size(), alert.event_count);
}

// eq and neq, and a new window after a closed one starts at the next event.
TEST(ClosingWindowTest, EqualAndNotEqual) {
  Fixture eq(
      correlation("  type: event_count\n  rules: [a]\n  group-by: [host]\n"
                  "  timespan: 10s\n  condition: {eq: 2}\n"));
  EXPECT_TRUE(eq.feed(0, "a", "h1").empty());
  EXPECT_TRUE(eq.feed(4, "a", "h1").empty());
  // 12 passes 0 + 10: the first window (2 events) fires, and the event opens a second.
  EXPECT_EQ(eq.seen(eq.feed(12, "a", "h1")), (std::vector<Seen>{{"h1", 2, 0, 4}}));
  EXPECT_TRUE(eq.feed(23, "tick", "x").empty());  // the second window held one event

  Fixture neq(
      correlation("  type: event_count\n  rules: [a]\n  group-by: [host]\n"
                  "  timespan: 10s\n  condition: {neq: 2}\n"));
  EXPECT_TRUE(neq.feed(0, "a", "h1").empty());
  EXPECT_TRUE(neq.feed(4, "a", "h1").empty());
  EXPECT_TRUE(neq.feed(12, "a", "h1").empty());
  EXPECT_EQ(neq.seen(neq.feed(23, "tick", "x")), (std::vector<Seen>{{"h1", 1, 12, 12}}));
}

// value_count with an upper bound: hosts where at most one user logged in.
TEST(ClosingWindowTest, ValueCountUpperBound) {
  Fixture f(
      correlation("  type: value_count\n  rules: [a]\n  group-by: [host]\n"
                  "  timespan: 60s\n  condition: {field: User, lte: 1}\n"));
  EXPECT_TRUE(f.feed(0, "a", "h1", {{"User", "alice"}}).empty());
  EXPECT_TRUE(f.feed(0, "a", "h2", {{"User", "alice"}}).empty());
  EXPECT_TRUE(f.feed(1, "a", "h1", {{"User", "alice"}}).empty());
  EXPECT_TRUE(f.feed(2, "a", "h2", {{"User", "bob"}}).empty());
  std::vector<Alert> alerts = f.feed(61, "tick", "x");
  EXPECT_EQ(f.seen(alerts), (std::vector<Seen>{{"h1", 2, 0, 1}}));
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_DOUBLE_EQ(alerts[0].metric, 1);
  EXPECT_EQ(f.rules->correlations[0].count_cap, 2u);
}

// value_sum and value_avg with upper bounds and ranges.
TEST(ClosingWindowTest, MetricRanges) {
  Fixture sum(
      correlation("  type: value_sum\n  rules: [a]\n  group-by: [host]\n"
                  "  timespan: 60s\n  condition: {field: n, gt: 10, lte: 100}\n"));
  EXPECT_TRUE(sum.feed(0, "a", "h1", {{"n", "60"}}).empty());
  EXPECT_TRUE(sum.feed(0, "a", "h2", {{"n", "60"}}).empty());
  EXPECT_TRUE(sum.feed(0, "a", "h3", {{"n", "10"}}).empty());  // 10: below the range
  EXPECT_TRUE(sum.feed(1, "a", "h1", {{"n", "40"}}).empty());  // 100: inside, not yet decided
  EXPECT_TRUE(sum.feed(1, "a", "h2", {{"n", "41"}}).empty());  // 101: above the range
  std::vector<Alert> alerts = sum.feed(61, "tick", "x");
  EXPECT_EQ(sum.seen(alerts), (std::vector<Seen>{{"h1", 2, 0, 1}}));
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_DOUBLE_EQ(alerts[0].metric, 100);

  Fixture avg(
      correlation("  type: value_avg\n  rules: [a]\n  group-by: [host]\n"
                  "  timespan: 60s\n  condition: {field: n, lt: 1.5}\n"));
  EXPECT_TRUE(avg.feed(0, "a", "h1", {{"n", "1"}}).empty());
  EXPECT_TRUE(avg.feed(0, "a", "h2", {{"n", "2"}}).empty());
  EXPECT_TRUE(avg.feed(1, "a", "h1", {{"n", "1.9"}}).empty());  // average 1.45
  alerts = avg.feed(61, "tick", "x");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].group[0].second, "h1");
  EXPECT_DOUBLE_EQ(alerts[0].metric, 1.45);
}

// A rule with lower bounds only still fires as soon as the count is reached.
TEST(ClosingWindowTest, LowerBoundsStillFireAtOnce) {
  Fixture f(
      correlation("  type: event_count\n  rules: [a]\n  group-by: [host]\n"
                  "  timespan: 60s\n  condition: {gte: 2}\n"));
  EXPECT_FALSE(f.rules->correlations[0].closes);
  EXPECT_TRUE(f.feed(0, "a", "h1").empty());
  EXPECT_EQ(f.seen(f.feed(1, "a", "h1")), (std::vector<Seen>{{"h1", 2, 0, 1}}));
}

// With allowed lateness, an out-of-order event inside the lateness still counts, one
// older than the watermark is late (counted, dropped), and a group's own event later
// than the open window's end closes that window at once.
TEST(ClosingWindowTest, LatenessAndEarlyClose) {
  EngineOptions options;
  options.allowed_lateness_ns = 30 * kSecond;
  Fixture f(correlation("  type: event_count\n  rules: [a]\n  group-by: [host]\n"
                        "  timespan: 60s\n  condition: {lt: 3}\n"),
            options);
  EXPECT_TRUE(f.feed(10, "a", "h1").empty());
  EXPECT_TRUE(f.feed(50, "tick", "x").empty());  // watermark 20
  EXPECT_TRUE(f.feed(5, "a", "h1").empty());     // late: older than the watermark
  EXPECT_EQ(f.metrics.sum("vigil_correlation_late_events_total"), 1u);
  EXPECT_TRUE(f.feed(25, "a", "h1").empty());  // out of order, inside the lateness: counts
  // 75 is past the end (70) while the watermark (45) has not passed it: the window of two
  // events is decided now, and 75 opens the next one.
  EXPECT_EQ(f.seen(f.feed(75, "a", "h1")), (std::vector<Seen>{{"h1", 2, 10, 25}}));
  EXPECT_TRUE(f.feed(165, "tick", "x").empty());
  EXPECT_EQ(f.seen(f.feed(166, "tick", "x")), (std::vector<Seen>{{"h1", 1, 75, 75}}));
}

// The same events give the same alerts with any shard count (a replay gives what live
// traffic gave: windows close on event time only).
TEST(ClosingWindowTest, ShardCountDoesNotChangeAlerts) {
  const std::string rules = correlation(
      "  type: event_count\n  rules: [a]\n  group-by: [host]\n"
      "  timespan: 30s\n  condition: {gte: 2, lt: 4}\n");
  std::vector<std::vector<Seen>> runs;
  for (size_t shards : {1, 3, 8}) {
    EngineOptions options;
    options.shards = shards;
    options.allowed_lateness_ns = 5 * kSecond;
    Fixture f(rules, options);
    std::vector<Seen> all;
    uint64_t state = 7;
    for (int i = 0; i < 400; ++i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      const int second = i * 2 - static_cast<int>((state >> 40) % 4);
      std::vector<Seen> seen =
          f.seen(f.feed(std::max(second, 0), "a", "h" + std::to_string((state >> 33) % 9)));
      all.insert(all.end(), seen.begin(), seen.end());
    }
    runs.push_back(all);
  }
  EXPECT_GT(runs[0].size(), 10u);
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_EQ(runs[0], runs[2]);
}

// value_percentile over a sliding window fires as soon as the percentile passes the bound.
TEST(PercentileTest, SlidingFiresWhenReached) {
  Fixture f(
      correlation("  type: value_percentile\n  rules: [a]\n  group-by: [host]\n"
                  "  timespan: 60s\n  condition: {field: ms, percentile: 50, gt: 100}\n"));
  EXPECT_EQ(f.feed(0, "a", "h1", {{"ms", "300"}}).size(), 1u);  // median 300
  EXPECT_TRUE(f.feed(1, "a", "h1", {{"ms", "10"}}).empty());    // a new window: 10
  EXPECT_TRUE(f.feed(2, "a", "h1", {{"ms", "500"}}).empty());   // {10, 500}: median rank 1 = 10
  std::vector<Alert> alerts = f.feed(3, "a", "h1", {{"ms", "200"}});  // {10, 200, 500}: 200
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_DOUBLE_EQ(alerts[0].metric, 200);
  EXPECT_EQ(alerts[0].event_count, 3u);
}

// value_percentile with an upper bound is decided at close over the window's values; past
// kPercentileSample values the oldest are dropped and counted.
TEST(PercentileTest, ClosingSampleIsBounded) {
  Fixture f(
      correlation("  type: value_percentile\n  rules: [a]\n  group-by: [host]\n"
                  "  timespan: 60s\n  condition: {field: ms, percentile: 90, lte: 100}\n"));
  // h1: 10 values 10, 20, ..., 100; the 90th percentile (rank 9) is 90.
  for (int i = 1; i <= 10; ++i) {
    EXPECT_TRUE(f.feed(i, "a", "h1", {{"ms", std::to_string(i * 10)}}).empty());
  }
  // h2: 70 values; the first six (1000 each) leave the 64-value sample, the rest are 50.
  for (int i = 0; i < 70; ++i) {
    EXPECT_TRUE(f.feed(10 + i / 2, "a", "h2", {{"ms", i < 6 ? "1000" : "50"}}).empty());
  }
  std::vector<Alert> alerts = f.feed(100, "tick", "x");
  ASSERT_EQ(alerts.size(), 2u);
  std::sort(alerts.begin(), alerts.end(),
            [](const Alert& a, const Alert& b) { return a.group < b.group; });
  EXPECT_DOUBLE_EQ(alerts[0].metric, 90);
  EXPECT_DOUBLE_EQ(alerts[1].metric, 50);
  EXPECT_EQ(alerts[1].event_count, 70u);
  EXPECT_EQ(f.counter("vigil_correlation_sample_dropped_total"), 6u);
}

// Load errors of the new conditions name the value and the fix.
TEST(ClosingWindowTest, LoadErrors) {
  EXPECT_NE(loadError(correlation("  type: event_count\n  rules: [a]\n  timespan: 1m\n"
                                  "  condition: {lt: 1}\n"))
                .find("condition can never hold: no count of 1 or more satisfies all its bounds"),
            std::string::npos);
  EXPECT_NE(loadError(correlation("  type: event_count\n  rules: [a]\n  timespan: 1m\n"
                                  "  condition: {lte: 20000}\n"))
                .find("condition lte: '20000' must be a whole number from 0 to 10000"),
            std::string::npos);
  EXPECT_NE(loadError(correlation("  type: value_percentile\n  rules: [a]\n  timespan: 1m\n"
                                  "  condition: {field: ms, percentile: 101, gt: 1}\n"))
                .find("condition percentile: '101' must be above 0 and at most 100"),
            std::string::npos);
  EXPECT_NE(loadError(correlation("  type: event_count\n  rules: [a]\n  timespan: 1m\n"
                                  "  condition: {percentile: 50, gt: 1}\n"))
                .find("unknown condition operator 'percentile' for event_count"),
            std::string::npos);
}

}  // namespace
}  // namespace vigil::correlate

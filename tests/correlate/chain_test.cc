// Chained correlations: a correlation whose `rules` name other correlations counts their
// alerts as events; cycles and deep chains are rejected at load; `generate` decides
// whether the referenced rules deliver their own alerts.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "correlate/engine.h"
#include "correlate/test_events.h"
#include "gtest/gtest.h"

namespace vigil::correlate {
namespace {

using testing::fillEvent;
using testing::loadRuleSet;

constexpr char kBruteForce[] = R"(
title: Failed login
name: failed_login
detection: {sel: {rule: fail}, condition: sel}
---
title: Successful login
name: login_ok
detection: {sel: {rule: ok}, condition: sel}
---
title: Brute force
id: corr_bf
name: brute_force
correlation:
  type: event_count
  rules: [failed_login]
  group-by: [src_ip, host]
  timespan: 1m
  condition: {gte: 3}
---
title: Brute force on 3 hosts
id: corr_spread
level: high
correlation:
  type: value_count
  rules: [brute_force]
  group-by: [src_ip]
  timespan: 10m
  condition: {field: host, gte: 3}
)";

std::string loadError(const std::string& yaml) {
  RuleLoader loader;
  absl::Status status = loader.addText(yaml, "bad.yml");
  if (status.ok()) status = loader.finish().status();
  return std::string(status.message());
}

struct Fixture {
  explicit Fixture(const std::string& yaml, size_t shards = 1)
      : rules(loadRuleSet(yaml)), engine(rules, options(shards), &metrics), scratch(*rules) {}

  static EngineOptions options(size_t shards) {
    EngineOptions result;
    result.shards = shards;
    return result;
  }

  std::vector<Alert> feed(int second, const std::string& rule, const std::string& src,
                          const std::string& host) {
    char ts[32];
    std::snprintf(ts, sizeof(ts), "2024-05-01T10:%02d:%02dZ", second / 60, second % 60);
    fillEvent(event, {{"ts", ts}, {"rule", rule}, {"src_ip", src}, {"host", host}});
    std::vector<Alert> out;
    engine.process(event, scratch, out);
    return out;
  }

  // Three failed logins from `src` on `host`, one second apart from `second`; returns
  // every alert they raised.
  std::vector<Alert> bruteForce(int second, const std::string& src, const std::string& host) {
    std::vector<Alert> all;
    for (int i = 0; i < 3; ++i) {
      std::vector<Alert> out = feed(second + i, "fail", src, host);
      all.insert(all.end(), out.begin(), out.end());
    }
    return all;
  }

  std::shared_ptr<const RuleSet> rules;
  MetricsRegistry metrics;
  Engine engine;
  DetectScratch scratch;
  Event event{1 << 14};
};

std::vector<std::string> ruleIds(const std::vector<Alert>& alerts) {
  std::vector<std::string> ids;
  for (const Alert& alert : alerts) ids.push_back(alert.rule_id);
  return ids;
}

// Brute force (3 failures per source and host in 1 m) chained into "brute force on 3
// hosts within 10 m". Without `generate`, neither the failures nor the inner brute-force
// alerts are delivered; the outer alert carries the inner alerts as evidence.
TEST(ChainTest, BruteForceOnThreeHosts) {
  Fixture f(kBruteForce);
  const CorrelationRule& outer = f.rules->correlations[1];
  EXPECT_EQ(outer.chained, (std::vector<uint32_t>{0}));
  EXPECT_EQ(outer.detections, (std::vector<uint32_t>{kNoRule}));
  EXPECT_EQ(outer.chain_depth, 1u);
  EXPECT_FALSE(f.rules->correlations[0].generates_alerts);
  EXPECT_TRUE(outer.generates_alerts);

  EXPECT_TRUE(f.bruteForce(0, "10.0.0.1", "h1").empty());
  EXPECT_TRUE(f.bruteForce(60, "10.0.0.1", "h2").empty());
  EXPECT_TRUE(f.bruteForce(70, "10.0.0.2", "h3").empty());  // another source
  std::vector<Alert> alerts = f.bruteForce(120, "10.0.0.1", "h3");
  ASSERT_EQ(ruleIds(alerts), (std::vector<std::string>{"corr_spread"}));
  const Alert& alert = alerts[0];
  EXPECT_EQ(alert.group,
            (std::vector<std::pair<std::string, std::string>>{{"src_ip", "10.0.0.1"}}));
  EXPECT_EQ(alert.event_count, 3u);
  EXPECT_EQ(alert.level, "high");
  ASSERT_EQ(alert.evidence.size(), 3u);
  EXPECT_NE(alert.evidence[0].find("\"corr_bf\""), std::string::npos) << alert.evidence[0];
  EXPECT_NE(alert.evidence[2].find("\"h3\""), std::string::npos) << alert.evidence[2];
  EXPECT_EQ(
      f.metrics.counter("vigil_alerts_total", "", {{"rule", "corr_bf"}, {"kind", "correlation"}})
          .value(),
      4u);
}

// `generate: true` on the outer rule delivers the inner rule's alerts too.
TEST(ChainTest, GenerateDeliversInnerAlerts) {
  std::string yaml = kBruteForce;
  yaml.replace(yaml.find("  condition: {field: host, gte: 3}"),
               std::string("  condition: {field: host, gte: 3}").size(),
               "  condition: {field: host, gte: 2}\n  generate: true");
  Fixture f(yaml);
  EXPECT_TRUE(f.rules->correlations[0].generates_alerts);
  EXPECT_EQ(ruleIds(f.bruteForce(0, "10.0.0.1", "h1")), (std::vector<std::string>{"corr_bf"}));
  EXPECT_EQ(ruleIds(f.bruteForce(10, "10.0.0.1", "h2")),
            (std::vector<std::string>{"corr_bf", "corr_spread"}));
}

// A chain may mix detection rules and correlations: brute force, then a successful login
// from the same source, in that order.
TEST(ChainTest, MixedReferences) {
  const std::string yaml = std::string(kBruteForce) + R"(
---
title: Brute force then success
id: corr_then_ok
correlation:
  type: temporal_ordered
  rules: [brute_force, login_ok]
  group-by: [src_ip]
  timespan: 5m
)";
  Fixture f(yaml);
  // login_ok is referenced without `generate`, so it raises no alert of its own, and a
  // success before the brute force does not count.
  EXPECT_TRUE(f.feed(0, "ok", "10.0.0.1", "h1").empty());
  EXPECT_TRUE(f.bruteForce(10, "10.0.0.1", "h1").empty());
  std::vector<Alert> alerts = f.feed(30, "ok", "10.0.0.1", "h9");
  ASSERT_EQ(ruleIds(alerts), (std::vector<std::string>{"corr_then_ok"}));
  EXPECT_EQ(alerts[0].event_count, 2u);
  EXPECT_EQ(alerts[0].group,
            (std::vector<std::pair<std::string, std::string>>{{"src_ip", "10.0.0.1"}}));
}

// The same stream gives the same alerts with any shard count: a chain's rules share one
// shard, so inner alerts reach the outer rule at the same point of the stream.
TEST(ChainTest, ShardCountDoesNotChangeAlerts) {
  std::vector<std::vector<std::string>> runs;
  for (size_t shards : {1, 2, 5}) {
    Fixture f(kBruteForce, shards);
    std::vector<std::string> seen;
    uint64_t state = 99;
    for (int i = 0; i < 600; ++i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      const std::string src = "10.0.0." + std::to_string((state >> 33) % 3);
      const std::string host = "h" + std::to_string((state >> 40) % 5);
      for (const Alert& alert : f.feed(i, "fail", src, host)) {
        seen.push_back(alert.rule_id + " " + alert.group[0].second + " " +
                       std::to_string(alert.last_event_ns));
      }
    }
    runs.push_back(seen);
  }
  EXPECT_GT(runs[0].size(), 5u);
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_EQ(runs[0], runs[2]);
}

// The chained example of the Sigma correlation specification ("Failed Logins Followed by
// Successful Login"), read from the specification text: ten failed logins of one user
// (an event_count correlation), then a successful login of that user.
TEST(ChainTest, SpecificationExample) {
  const std::string spec =
      testing::readFile(testing::sharedPath("sigma/spec/sigma-correlation-rules-specification.md"));
  const size_t section = spec.find("### Failed Logins Followed by Successful Login");
  ASSERT_NE(section, std::string::npos);
  const size_t begin = spec.find("```yml\n", section);
  ASSERT_NE(begin, std::string::npos);
  const size_t end = spec.find("```", begin + 7);
  ASSERT_NE(end, std::string::npos);
  const std::string yaml = spec.substr(begin + 7, end - begin - 7);
  auto rules = loadRuleSet(yaml);
  ASSERT_EQ(rules->correlations.size(), 2u);
  MetricsRegistry metrics;
  Engine engine(rules, {}, &metrics);
  DetectScratch scratch(*rules);
  Event event(1 << 14);
  auto feed = [&](int second, const char* event_id, const char* user) {
    char ts[32];
    std::snprintf(ts, sizeof(ts), "2024-05-01T10:%02d:%02dZ", second / 60, second % 60);
    fillEvent(event, {{"ts", ts}, {"EventID", event_id}, {"User", user}});
    std::vector<Alert> out;
    engine.process(event, scratch, out);
    return out;
  };
  // A success before the failures does not count; bob fails only nine times.
  EXPECT_TRUE(feed(0, "4624", "alice").empty());
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(feed(10 + i, "4625", "alice").empty()) << i;
  for (int i = 0; i < 9; ++i) EXPECT_TRUE(feed(30 + i, "4625", "bob").empty()) << i;
  EXPECT_TRUE(feed(50, "4624", "bob").empty());
  std::vector<Alert> alerts = feed(60, "4624", "alice");
  ASSERT_EQ(ruleIds(alerts), (std::vector<std::string>{"b180ead8-d58f-40b2-ae54-c8940995b9b6"}));
  EXPECT_EQ(alerts[0].group, (std::vector<std::pair<std::string, std::string>>{{"User", "alice"}}));
  EXPECT_EQ(alerts[0].level, "high");
  EXPECT_EQ(alerts[0].event_count, 2u);
}

// Cycles are rejected with the rules on the cycle; so are chains deeper than the limit.
TEST(ChainTest, CyclesAndDepthRejected) {
  const std::string detection = "title: D\nname: d\ndetection: {sel: {a: b}, condition: sel}\n";
  const std::string cycle = detection + R"(---
title: X
id: x
correlation: {type: event_count, rules: [d, y], group-by: [host], timespan: 1m, condition: {gte: 2}}
---
title: Y
id: y
correlation: {type: event_count, rules: [z], group-by: [host], timespan: 1m, condition: {gte: 2}}
---
title: Z
id: z
correlation: {type: event_count, rules: [x], group-by: [host], timespan: 1m, condition: {gte: 2}}
)";
  EXPECT_NE(
      loadError(cycle).find("correlation rules reference each other in a cycle: x -> y -> z -> x"),
      std::string::npos)
      << loadError(cycle);

  std::string deep = detection;
  std::string below = "d";
  for (int level = 0; level <= static_cast<int>(kMaxChainDepth) + 1; ++level) {
    const std::string id = "c" + std::to_string(level);
    deep += "---\ntitle: " + id + "\nid: " + id + "\ncorrelation: {type: event_count, rules: [" +
            below + "], group-by: [host], timespan: 1m, condition: {gte: 2}}\n";
    below = id;
  }
  EXPECT_NE(loadError(deep).find("chains 5 levels of correlations; at most 4 are supported"),
            std::string::npos)
      << loadError(deep);
}

}  // namespace
}  // namespace vigil::correlate

// The correlation types beyond event_count (value_count, temporal, temporal_ordered),
// condition ranges, aliases, generate, and the spec-test correlation files.
#include <array>
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
using testing::readFile;
using testing::sharedPath;

// Detection rules a, b and c select events by their `rule` member.
constexpr char kRulesAbc[] = R"(
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
)";

std::string loadError(const std::string& yaml) {
  RuleLoader loader;
  absl::Status status = loader.addText(yaml, "bad.yml");
  if (status.ok()) status = loader.finish().status();
  return std::string(status.message());
}

struct Fixture {
  explicit Fixture(const std::string& yaml, EngineOptions options = {})
      : rules(loadRuleSet(yaml)), engine(rules, options, &metrics), scratch(*rules) {}

  // Feeds one event at 10:MM:SS (`second` from 10:00:00) with the given members.
  std::vector<Alert> feed(int second, nlohmann::json document) {
    char ts[32];
    std::snprintf(ts, sizeof(ts), "2024-05-01T10:%02d:%02dZ", second / 60, second % 60);
    document["ts"] = ts;
    fillEvent(event, document);
    std::vector<Alert> out;
    engine.process(event, scratch, out);
    return out;
  }

  // Feeds the event and returns only the alerts of correlation rules.
  std::vector<Alert> feedCorrelation(int second, nlohmann::json document) {
    std::vector<Alert> correlation;
    for (Alert& alert : feed(second, std::move(document))) {
      if (alert.rule_id.rfind("corr", 0) == 0) correlation.push_back(std::move(alert));
    }
    return correlation;
  }

  std::shared_ptr<const RuleSet> rules;
  MetricsRegistry metrics;
  Engine engine;
  DetectScratch scratch;
  Event event{1 << 14};
};

std::string correlation(const std::string& body) {
  return std::string(kRulesAbc) + "---\ntitle: Corr\nid: corr\ncorrelation:\n" + body;
}

// Several lower bounds in one condition are ANDed: {gt: 2, gte: 4} needs four events.
TEST(ConditionTest, RangeTakesLargestBound) {
  Fixture f(
      correlation("  type: event_count\n  rules: [a]\n  group-by: [host]\n"
                  "  timespan: 1m\n  condition: {gt: 2, gte: 4}\n"));
  ASSERT_EQ(f.rules->correlations[0].min_count, 4u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(f.feedCorrelation(i, {{"rule", "a"}}).empty());
  std::vector<Alert> alerts = f.feedCorrelation(3, {{"rule", "a"}});
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].event_count, 4u);
}

// Upper bounds are rejected for temporal types (their count only grows), and malformed
// conditions are rejected with the reason.
TEST(ConditionTest, RejectsWithReason) {
  for (const char* type : {"temporal", "temporal_ordered"}) {
    for (const char* op : {"lt", "lte", "eq", "neq"}) {
      std::string error = loadError(correlation(std::string("  type: ") + type +
                                                "\n  rules: [a, b]\n  timespan: 1m\n"
                                                "  condition: {gte: 1, " +
                                                op + ": 5}\n"));
      EXPECT_NE(error.find(std::string("condition '") + op + "' is not defined for " + type),
                std::string::npos)
          << type << " " << op << ": " << error;
    }
  }
  EXPECT_NE(loadError(correlation("  type: event_count\n  rules: [a]\n  timespan: 1m\n"
                                  "  condition: {gte: many}\n"))
                .find("condition gte: 'many' must be a whole number from 0 to 10000"),
            std::string::npos);
  EXPECT_NE(loadError(correlation("  type: event_count\n  rules: [a]\n  timespan: 1m\n"
                                  "  condition: {field: user, gte: 2}\n"))
                .find("'condition.field' is only valid for value_count, value_sum, value_avg and "
                      "value_percentile, not event_count"),
            std::string::npos);
  EXPECT_NE(loadError(correlation("  type: value_count\n  rules: [a]\n  timespan: 1m\n"
                                  "  condition: {gte: 2}\n"))
                .find("value_count needs 'condition.field'"),
            std::string::npos);
  EXPECT_NE(loadError(correlation("  type: temporal\n  rules: [a, b]\n  timespan: 1m\n"
                                  "  condition: {gte: 3}\n"))
                .find("condition needs 3 of the 2 referenced rules; it must need 1 to 2"),
            std::string::npos);
  EXPECT_NE(loadError(correlation("  type: temporal_ordered\n  rules: [a, b]\n  timespan: 1m\n"
                                  "  condition: {gte: 1}\n"))
                .find("temporal_ordered needs every referenced rule in order"),
            std::string::npos);
  EXPECT_NE(loadError(correlation("  type: temporal\n  rules: [a, a]\n  timespan: 1m\n"))
                .find("name the same rule; a temporal correlation needs distinct rules"),
            std::string::npos);
}

// value_count fires when the distinct values in the window reach the bound, per group.
TEST(ValueCountTest, CountsDistinctValues) {
  Fixture f(
      correlation("  type: value_count\n  rules: [a]\n  group-by: [host]\n"
                  "  timespan: 1m\n  condition: {field: User, gte: 3}\n"));
  EXPECT_TRUE(f.feedCorrelation(0, {{"rule", "a"}, {"host", "h1"}, {"User", "u1"}}).empty());
  EXPECT_TRUE(f.feedCorrelation(1, {{"rule", "a"}, {"host", "h1"}, {"User", "u1"}}).empty());
  EXPECT_TRUE(f.feedCorrelation(2, {{"rule", "a"}, {"host", "h2"}, {"User", "u2"}}).empty());
  EXPECT_TRUE(f.feedCorrelation(3, {{"rule", "a"}, {"host", "h1"}, {"User", "u2"}}).empty());
  std::vector<Alert> alerts = f.feedCorrelation(4, {{"rule", "a"}, {"host", "h1"}, {"User", "u3"}});
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].group, (std::vector<std::pair<std::string, std::string>>{{"host", "h1"}}));
  EXPECT_EQ(alerts[0].event_count, 4u);
  EXPECT_EQ(alerts[0].evidence.size(), 4u);
  EXPECT_EQ(alerts[0].first_event_ns, *parseRfc3339("2024-05-01T10:00:00Z"));
  EXPECT_EQ(alerts[0].last_event_ns, *parseRfc3339("2024-05-01T10:00:04Z"));
  // The window restarted empty: two more values are not enough.
  EXPECT_TRUE(f.feedCorrelation(5, {{"rule", "a"}, {"host", "h1"}, {"User", "u4"}}).empty());
  EXPECT_TRUE(f.feedCorrelation(6, {{"rule", "a"}, {"host", "h1"}, {"User", "u5"}}).empty());
}

// The first event time is the oldest event of the window, not the newest sighting of the
// oldest value: a value seen again keeps its first event in the alert.
TEST(ValueCountTest, FirstEventIsOldestEvent) {
  Fixture f(
      correlation("  type: value_count\n  rules: [a]\n  group-by: [host]\n"
                  "  timespan: 10m\n  condition: {field: User, gte: 2}\n"));
  EXPECT_TRUE(f.feedCorrelation(0, {{"rule", "a"}, {"host", "h1"}, {"User", "x"}}).empty());
  EXPECT_TRUE(f.feedCorrelation(300, {{"rule", "a"}, {"host", "h1"}, {"User", "x"}}).empty());
  std::vector<Alert> alerts =
      f.feedCorrelation(360, {{"rule", "a"}, {"host", "h1"}, {"User", "y"}});
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].event_count, 3u);
  EXPECT_EQ(alerts[0].evidence.size(), 3u);
  EXPECT_EQ(alerts[0].first_event_ns, *parseRfc3339("2024-05-01T10:00:00Z"));
  EXPECT_EQ(alerts[0].last_event_ns, *parseRfc3339("2024-05-01T10:06:00Z"));

  // The next window starts from its own first event, and an out-of-order event that is
  // still inside the window becomes its first event.
  EXPECT_TRUE(f.feedCorrelation(420, {{"rule", "a"}, {"host", "h1"}, {"User", "x"}}).empty());
  EXPECT_TRUE(f.feedCorrelation(400, {{"rule", "a"}, {"host", "h1"}, {"User", "x"}}).empty());
  alerts = f.feedCorrelation(480, {{"rule", "a"}, {"host", "h1"}, {"User", "y"}});
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].event_count, 3u);
  EXPECT_EQ(alerts[0].first_event_ns, *parseRfc3339("2024-05-01T10:06:40Z"));
  EXPECT_EQ(alerts[0].last_event_ns, *parseRfc3339("2024-05-01T10:08:00Z"));
}

// With a bound of 1, the only event is both the first and the last.
TEST(ValueCountTest, FirstEventWithBoundOne) {
  Fixture f(
      correlation("  type: value_count\n  rules: [a]\n  timespan: 1m\n"
                  "  condition: {field: User, gte: 1}\n"));
  std::vector<Alert> alerts = f.feedCorrelation(5, {{"rule", "a"}, {"User", "x"}});
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].first_event_ns, *parseRfc3339("2024-05-01T10:00:05Z"));
  alerts = f.feedCorrelation(7, {{"rule", "a"}, {"User", "x"}});
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].first_event_ns, *parseRfc3339("2024-05-01T10:00:07Z"));
}

// A value whose newest sighting left the window no longer counts.
TEST(ValueCountTest, ValuesLeaveWindow) {
  Fixture f(
      correlation("  type: value_count\n  rules: [a]\n  group-by: [host]\n"
                  "  timespan: 1m\n  condition: {field: User, gt: 1}\n"));
  EXPECT_TRUE(f.feedCorrelation(0, {{"rule", "a"}, {"User", "u1"}}).empty());
  EXPECT_TRUE(f.feedCorrelation(61, {{"rule", "a"}, {"User", "u2"}}).empty());
  EXPECT_EQ(f.feedCorrelation(121, {{"rule", "a"}, {"User", "u3"}}).size(), 1u);
}

// Events without the counted field are skipped and counted.
TEST(ValueCountTest, MissingFieldCounted) {
  Fixture f(
      correlation("  type: value_count\n  rules: [a]\n  timespan: 1m\n"
                  "  condition: {field: User, gte: 1}\n"));
  EXPECT_TRUE(f.feedCorrelation(0, {{"rule", "a"}}).empty());
  EXPECT_EQ(f.metrics.counter("vigil_correlation_value_missing_total", "").value(), 1u);
  EXPECT_EQ(f.feedCorrelation(1, {{"rule", "a"}, {"User", "u"}}).size(), 1u);
}

// A list in `field` counts distinct value tuples.
TEST(ValueCountTest, FieldListCountsTuples) {
  Fixture f(
      correlation("  type: value_count\n  rules: [a]\n  timespan: 1m\n"
                  "  condition: {field: [User, Domain], gte: 3}\n"));
  EXPECT_TRUE(f.feedCorrelation(0, {{"rule", "a"}, {"User", "u"}, {"Domain", "d1"}}).empty());
  EXPECT_TRUE(f.feedCorrelation(1, {{"rule", "a"}, {"User", "u"}, {"Domain", "d2"}}).empty());
  EXPECT_TRUE(f.feedCorrelation(2, {{"rule", "a"}, {"User", "u"}, {"Domain", "d1"}}).empty());
  EXPECT_EQ(f.feedCorrelation(3, {{"rule", "a"}, {"User", "v"}, {"Domain", "d1"}}).size(), 1u);
}

// temporal fires once every referenced rule matched within the timespan, in any order.
TEST(TemporalTest, AnyOrderWithinTimespan) {
  Fixture f(
      correlation("  type: temporal\n  rules: [a, b, c]\n  group-by: [host]\n"
                  "  timespan: 1m\n"));
  EXPECT_TRUE(f.feedCorrelation(0, {{"rule", "c"}, {"host", "h1"}}).empty());
  EXPECT_TRUE(f.feedCorrelation(10, {{"rule", "a"}, {"host", "h1"}}).empty());
  EXPECT_TRUE(f.feedCorrelation(20, {{"rule", "b"}, {"host", "h2"}}).empty());
  std::vector<Alert> alerts = f.feedCorrelation(60, {{"rule", "b"}, {"host", "h1"}});
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].event_count, 3u);
  EXPECT_EQ(alerts[0].first_event_ns, *parseRfc3339("2024-05-01T10:00:00Z"));
  EXPECT_EQ(alerts[0].last_event_ns, *parseRfc3339("2024-05-01T10:01:00Z"));
  // The window restarted: h1 needs all three again.
  EXPECT_TRUE(f.feedCorrelation(61, {{"rule", "a"}, {"host", "h1"}}).empty());
  EXPECT_TRUE(f.feedCorrelation(62, {{"rule", "b"}, {"host", "h1"}}).empty());
}

// A rule match older than the timespan before the newest match does not count.
TEST(TemporalTest, MatchLeavesWindow) {
  Fixture f(correlation("  type: temporal\n  rules: [a, b]\n  timespan: 1m\n"));
  EXPECT_TRUE(f.feedCorrelation(0, {{"rule", "a"}}).empty());
  EXPECT_TRUE(f.feedCorrelation(61, {{"rule", "b"}}).empty());
  EXPECT_EQ(f.feedCorrelation(62, {{"rule", "a"}}).size(), 1u);
}

// A temporal condition may ask for fewer than all rules.
TEST(TemporalTest, ConditionCountsRules) {
  Fixture f(
      correlation("  type: temporal\n  rules: [a, b, c]\n  timespan: 1m\n"
                  "  condition: {gte: 2}\n"));
  EXPECT_TRUE(f.feedCorrelation(0, {{"rule", "a"}}).empty());
  EXPECT_TRUE(f.feedCorrelation(1, {{"rule", "a"}}).empty());
  std::vector<Alert> alerts = f.feedCorrelation(2, {{"rule", "c"}});
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].event_count, 2u);
}

// temporal_ordered needs the listed order by event time, and ties go by arrival.
TEST(TemporalOrderedTest, NeedsListedOrder) {
  Fixture f(
      correlation("  type: temporal_ordered\n  rules: [a, b, c]\n  group-by: [host]\n"
                  "  timespan: 1m\n"));
  EXPECT_TRUE(f.feedCorrelation(0, {{"rule", "b"}, {"host", "h1"}}).empty());
  EXPECT_TRUE(f.feedCorrelation(1, {{"rule", "c"}, {"host", "h1"}}).empty());
  EXPECT_TRUE(f.feedCorrelation(2, {{"rule", "a"}, {"host", "h1"}}).empty());
  EXPECT_TRUE(f.feedCorrelation(2, {{"rule", "b"}, {"host", "h1"}}).empty());
  std::vector<Alert> alerts = f.feedCorrelation(30, {{"rule", "c"}, {"host", "h1"}});
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].first_event_ns, *parseRfc3339("2024-05-01T10:00:02Z"));
  EXPECT_EQ(alerts[0].last_event_ns, *parseRfc3339("2024-05-01T10:00:30Z"));
  EXPECT_EQ(alerts[0].event_count, 3u);
}

// An event that arrives late with an earlier time than the step before it does not
// follow that step, and a chain longer than the timespan does not fire.
TEST(TemporalOrderedTest, RejectsEarlierTimeAndLongChain) {
  Fixture f(correlation("  type: temporal_ordered\n  rules: [a, b]\n  timespan: 1m\n"));
  EXPECT_TRUE(f.feedCorrelation(10, {{"rule", "a"}}).empty());
  EXPECT_TRUE(f.feedCorrelation(5, {{"rule", "b"}}).empty());
  EXPECT_TRUE(f.feedCorrelation(71, {{"rule", "b"}}).empty());
  // A later start keeps the chain alive: a at 20, b at 80 is exactly one minute.
  EXPECT_TRUE(f.feedCorrelation(20, {{"rule", "a"}}).empty());
  EXPECT_EQ(f.feedCorrelation(80, {{"rule", "b"}}).size(), 1u);
}

// The aliases example of the specification: one address is the destination in one rule's
// events and the source in the other's.
TEST(AliasTest, GroupsAcrossFields) {
  Fixture f(R"(
title: Internal error
name: internal_error
detection: {sel: {status: '500'}, condition: sel}
---
title: New connection
name: new_network_connection
detection: {sel: {event.category: network}, condition: sel}
---
title: Corr
id: corr
correlation:
  type: temporal
  rules: [internal_error, new_network_connection]
  group-by: [internal_ip, remote_ip]
  timespan: 10s
  aliases:
    internal_ip: {internal_error: destination.ip, new_network_connection: source.ip}
    remote_ip: {internal_error: source.ip, new_network_connection: destination.ip}
)");
  EXPECT_TRUE(
      f.feedCorrelation(0, {{"status", "500"}, {"dst_ip", "10.0.0.1"}, {"src_ip", "192.0.2.9"}})
          .empty());
  // Same addresses in the same roles of the other rule's fields, but swapped: no match.
  EXPECT_TRUE(
      f.feedCorrelation(
           1, {{"event.category", "network"}, {"src_ip", "192.0.2.9"}, {"dst_ip", "10.0.0.1"}})
          .empty());
  std::vector<Alert> alerts = f.feedCorrelation(
      2, {{"event.category", "network"}, {"src_ip", "10.0.0.1"}, {"dst_ip", "192.0.2.9"}});
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].group, (std::vector<std::pair<std::string, std::string>>{
                                 {"internal_ip", "10.0.0.1"}, {"remote_ip", "192.0.2.9"}}));
}

// An alias must be used in group-by and may only name referenced rules.
TEST(AliasTest, RejectsUnknownNames) {
  EXPECT_NE(loadError(correlation("  type: temporal\n  rules: [a, b]\n  group-by: [ip]\n"
                                  "  timespan: 1m\n  aliases: {ip: {a: source.ip, z: x}}\n"))
                .find("alias 'ip' names rule 'z', which is not in correlation.rules"),
            std::string::npos);
  EXPECT_NE(loadError(correlation("  type: temporal\n  rules: [a, b]\n  group-by: [host]\n"
                                  "  timespan: 1m\n  aliases: {ip: {a: source.ip}}\n"))
                .find("alias 'ip' is not used in correlation.group-by"),
            std::string::npos);
}

// `generate: true` keeps the referenced rules' own alerts. Without it, only the
// correlation alerts remain.
TEST(GenerateTest, ControlsDetectionAlerts) {
  for (bool generate : {false, true}) {
    Fixture f(correlation(std::string("  type: temporal\n  rules: [a, b]\n  timespan: 1m\n") +
                          "  generate: " + (generate ? "true" : "false") + "\n"));
    EXPECT_EQ(f.feed(0, {{"rule", "a"}}).size(), generate ? 1u : 0u);
    EXPECT_EQ(f.feed(1, {{"rule", "b"}}).size(), generate ? 2u : 1u);
    EXPECT_EQ(f.feed(2, {{"rule", "c"}}).size(), 1u);  // c is not referenced
  }
}

// The overloads without the detection rule find the matching rules themselves, so the
// pipeline's calls drive temporal correlations too.
TEST(TemporalTest, OverloadWithoutDetection) {
  Fixture f(correlation("  type: temporal_ordered\n  rules: [a, b]\n  timespan: 1m\n"));
  Alert alert;
  fillEvent(f.event, {{"ts", "2024-05-01T10:00:00Z"}, {"rule", "a"}});
  EXPECT_FALSE(f.engine.updateCorrelation(f.engine.shardOf(0, f.event), 0, f.event, alert));
  fillEvent(f.event, {{"ts", "2024-05-01T10:00:05Z"}, {"rule", "b"}});
  EXPECT_TRUE(f.engine.updateCorrelation(f.engine.shardOf(0, f.event), 0, f.event, alert));
  EXPECT_EQ(alert.rule_id, "corr");
}

// A detection rule that the correlation does not reference changes nothing and is counted.
TEST(TemporalTest, UnreferencedDetectionCounted) {
  Fixture f(correlation("  type: temporal\n  rules: [a, b]\n  timespan: 1m\n"));
  Alert alert;
  fillEvent(f.event, {{"ts", "2024-05-01T10:00:00Z"}, {"rule", "c"}});
  EXPECT_FALSE(f.engine.updateCorrelation(0, 0, 2, f.event, alert));
  EXPECT_EQ(f.metrics.counter("vigil_correlation_not_referenced_total", "").value(), 1u);
}

// The spec-test files load next to the detection rules they reference, and raise their
// alerts at the count their condition gives.
TEST(SpecTest, CorrelationFilesRaiseAlerts) {
  const std::string dir = sharedPath("sigma/spec-tests/correlation/");
  const std::string failed_login =
      "title: Failed login\nid: 5638f7c0-ac70-491d-8465-2a65075e0d86\n"
      "detection: {sel: {rule: failed}, condition: sel}\n---\n";

  // event_count: 100 failed logins on one ComputerName within the hour.
  Fixture count(failed_login + readFile(dir + "event_count.yml"));
  for (int i = 0; i < 99; ++i) {
    EXPECT_TRUE(count.feed(i, {{"rule", "failed"}, {"ComputerName", "pc1"}}).empty());
  }
  EXPECT_TRUE(count.feed(99, {{"rule", "failed"}, {"ComputerName", "pc2"}}).empty());
  EXPECT_EQ(count.feed(100, {{"rule", "failed"}, {"ComputerName", "pc1"}}).size(), 1u);

  // value_count: 100 distinct users per (ComputerName, WorkstationName) in a day.
  Fixture values(failed_login + readFile(dir + "value_count.yml"));
  for (int i = 0; i < 100; ++i) {
    std::vector<Alert> alerts = values.feed(i, {{"rule", "failed"},
                                                {"ComputerName", "pc1"},
                                                {"WorkstationName", "ws1"},
                                                {"User", "user" + std::to_string(i % 99)}});
    EXPECT_TRUE(alerts.empty()) << i;
  }
  std::vector<Alert> alerts = values.feed(
      100,
      {{"rule", "failed"}, {"ComputerName", "pc1"}, {"WorkstationName", "ws1"}, {"User", "x"}});
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].rule_id, "0e95725d-7320-415d-80f7-004da920fc12");

  // temporal: recon_cmd_a, _b and _c on one ComputerName by one User within 5 minutes.
  std::string recon;
  for (const char* name : {"a", "b", "c"}) {
    recon += std::string("title: Recon ") + name + "\nname: recon_cmd_" + name +
             "\ndetection: {sel: {rule: " + name + "}, condition: sel}\n---\n";
  }
  Fixture temporal(recon + readFile(dir + "temporal.yml"));
  nlohmann::json where = {{"ComputerName", "pc1"}, {"User", "alice"}};
  auto with = [&](const char* rule) {
    nlohmann::json document = where;
    document["rule"] = rule;
    return document;
  };
  EXPECT_TRUE(temporal.feed(0, with("b")).empty());
  EXPECT_TRUE(temporal.feed(200, with("c")).empty());
  EXPECT_TRUE(temporal.feed(400, with("a")).empty());  // b at 0 left the 5 minute window
  EXPECT_EQ(temporal.feed(401, with("b")).size(), 1u);
}

// The specification's value_sum example: bytes_sent summed per SourceIP and User over
// one hour must exceed 1000000.
TEST(SpecTest, ValueSumFile) {
  const std::string dir = sharedPath("sigma/spec-tests/correlation/");
  Fixture f("title: Website access\nname: website_access\n"
            "detection: {sel: {rule: web}, condition: sel}\n---\n" +
            readFile(dir + "value_sum.yml"));
  ASSERT_EQ(f.rules->correlations.size(), 1u);
  const CorrelationRule& rule = f.rules->correlations[0];
  EXPECT_EQ(rule.type, CorrelationType::kValueSum);
  EXPECT_EQ(rule.min_value, 1000000);
  EXPECT_FALSE(rule.min_value_inclusive);
  auto access = [&](int second, const std::string& user, const std::string& bytes) {
    std::vector<Alert> correlation;
    for (Alert& alert : f.feed(second, {{"rule", "web"}, {"SourceIP", "192.0.2.9"},
                                        {"User", user}, {"bytes_sent", bytes}})) {
      if (alert.rule_title == "Possible Exfiltration to Website") correlation.push_back(alert);
    }
    return correlation;
  };
  EXPECT_TRUE(access(0, "alice", "400000").empty());
  EXPECT_TRUE(access(10, "bob", "900000").empty());    // another group
  EXPECT_TRUE(access(20, "alice", "600000").empty());  // exactly 1000000: not above
  EXPECT_TRUE(access(30, "alice", "n/a").empty());     // not a number: skipped, counted
  std::vector<Alert> alerts = access(40, "alice", "1");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].event_count, 3u);
  EXPECT_DOUBLE_EQ(alerts[0].metric, 1000001);
  EXPECT_EQ(f.metrics.counter("vigil_correlation_value_missing_total", "").value(), 1u);
  // The window restarted empty.
  EXPECT_TRUE(access(50, "alice", "999999").empty());
}

// The specification's value_avg example: the average BytesOut per SourceIP and User over
// 24 hours must exceed 500.
TEST(SpecTest, ValueAvgFile) {
  const std::string dir = sharedPath("sigma/spec-tests/correlation/");
  Fixture f("title: Rule A\nid: rule_a_id\ndetection: {sel: {rule: a}, condition: sel}\n---\n" +
            readFile(dir + "value_avg.yml"));
  ASSERT_EQ(f.rules->correlations.size(), 1u);
  EXPECT_EQ(f.rules->correlations[0].type, CorrelationType::kValueAvg);
  auto out = [&](int second, const std::string& bytes) {
    std::vector<Alert> correlation;
    for (Alert& alert : f.feed(second, {{"rule", "a"}, {"SourceIP", "192.0.2.9"},
                                        {"User", "u"}, {"BytesOut", bytes}})) {
      if (alert.rule_title == "Suspicious average network traffic") correlation.push_back(alert);
    }
    return correlation;
  };
  EXPECT_TRUE(out(0, "100").empty());
  EXPECT_TRUE(out(1, "900").empty());  // average 500: not above
  std::vector<Alert> alerts = out(2, "503");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].event_count, 3u);
  EXPECT_DOUBLE_EQ(alerts[0].metric, 501);
}

// value_sum slides on event time with both edges included, and with more events in the
// window than entries, merged entries keep the sum whole.
TEST(ValueSumTest, SlidingWindowAndMerging) {
  Fixture f(correlation("  type: value_sum\n  rules: [a]\n  group-by: [host]\n"
                        "  timespan: 1m\n  condition: {field: n, gte: 100}\n"));
  EXPECT_TRUE(f.feedCorrelation(0, {{"rule", "a"}, {"n", "60"}}).empty());
  EXPECT_TRUE(f.feedCorrelation(61, {{"rule", "a"}, {"n", "39"}}).empty());  // 60 left
  std::vector<Alert> alerts = f.feedCorrelation(121, {{"rule", "a"}, {"n", "61"}});
  ASSERT_EQ(alerts.size(), 1u);  // 39 at 61 is exactly one minute old: still in
  EXPECT_DOUBLE_EQ(alerts[0].metric, 100);

  // Twenty events of 5 within one window: more than the eight entries, so older ones
  // merge, and the twentieth reaches 100.
  for (int i = 0; i < 19; ++i) {
    EXPECT_TRUE(f.feedCorrelation(200 + i, {{"rule", "a"}, {"n", "5"}}).empty()) << i;
  }
  alerts = f.feedCorrelation(219, {{"rule", "a"}, {"n", "5"}});
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].event_count, 20u);
  EXPECT_DOUBLE_EQ(alerts[0].metric, 100);
}

// Negative and fractional values count, and bounds may be fractional.
TEST(ValueSumTest, FractionalAndNegativeValues) {
  Fixture f(correlation("  type: value_avg\n  rules: [a]\n  timespan: 1m\n"
                        "  condition: {field: n, gte: 0.5}\n"));
  EXPECT_TRUE(f.feedCorrelation(0, {{"rule", "a"}, {"n", "-1.5"}}).empty());
  EXPECT_TRUE(f.feedCorrelation(1, {{"rule", "a"}, {"n", "2"}}).empty());  // average 0.25
  std::vector<Alert> alerts = f.feedCorrelation(2, {{"rule", "a"}, {"n", "1"}});
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_DOUBLE_EQ(alerts[0].metric, 0.5);
}

// inf, infinity and nan are not numbers: those events are skipped and counted, as the
// numeric detection modifiers skip them.
TEST(ValueSumTest, InfinityAndNanSkipped) {
  Fixture f(
      correlation("  type: value_sum\n  rules: [a]\n  timespan: 1m\n"
                  "  condition: {field: n, gte: 10}\n"));
  const std::vector<std::string> not_numbers = {"inf", "-inf", "Infinity", "nan", "-NaN"};
  for (size_t i = 0; i < not_numbers.size(); ++i) {
    EXPECT_TRUE(
        f.feedCorrelation(static_cast<int>(i), {{"rule", "a"}, {"n", not_numbers[i]}}).empty())
        << not_numbers[i];
  }
  EXPECT_EQ(f.metrics.counter("vigil_correlation_value_missing_total", "").value(), 5u);
  std::vector<Alert> alerts = f.feedCorrelation(10, {{"rule", "a"}, {"n", "10"}});
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].event_count, 1u);
  EXPECT_DOUBLE_EQ(alerts[0].metric, 10);
}

// value_sum and value_avg conditions are checked at load with the reason.
TEST(ValueSumTest, LoadErrors) {
  EXPECT_NE(loadError(correlation("  type: value_sum\n  rules: [a]\n  timespan: 1m\n"
                                  "  condition: {gt: 5}\n"))
                .find("value_sum needs 'condition.field'"),
            std::string::npos);
  EXPECT_NE(loadError(correlation("  type: value_avg\n  rules: [a]\n  timespan: 1m\n"
                                  "  condition: {field: [x, y], gt: 5}\n"))
                .find("value_avg needs exactly one 'condition.field'"),
            std::string::npos);
  EXPECT_NE(loadError(correlation("  type: value_sum\n  rules: [a]\n  timespan: 1m\n"
                                  "  condition: {field: x, below: 5}\n"))
                .find("unknown condition operator 'below' for value_sum; expected gt, gte, lt, "
                      "lte, eq or neq or field"),
            std::string::npos);
  EXPECT_NE(loadError(correlation("  type: value_sum\n  rules: [a]\n  timespan: 1m\n"
                                  "  condition: {field: x, gt: lots}\n"))
                .find("condition gt: 'lots' must be a number"),
            std::string::npos);
  EXPECT_NE(loadError(correlation("  type: value_sum\n  rules: [a]\n  timespan: 1m\n"
                                  "  condition: {field: x}\n"))
                .find("'correlation.condition' needs at least one of gt, gte, lt, lte, eq, neq"),
            std::string::npos);
  EXPECT_NE(loadError(correlation("  type: value_percentile\n  rules: [a]\n  timespan: 1m\n"
                                  "  condition: {field: x, gt: 5}\n"))
                .find("value_percentile needs 'condition.percentile'"),
            std::string::npos);
  EXPECT_NE(loadError(correlation("  type: value_percentile\n  rules: [a]\n  timespan: 1m\n"
                                  "  condition: {field: x, percentile: 0, gt: 5}\n"))
                .find("condition percentile: '0' must be above 0 and at most 100"),
            std::string::npos);
}

// Under constant eviction the key index still finds every group it holds: each key's
// second event completes its pair.
TEST(StateSizeTest, IndexSurvivesEvictionChurn) {
  EngineOptions options;
  options.max_keys = 8;
  Fixture f(correlation("  type: event_count\n  rules: [a]\n  group-by: [host]\n"
                        "  timespan: 1h\n  condition: {gte: 2}\n"),
            options);
  for (int i = 0; i < 500; ++i) {
    std::string host = "h" + std::to_string(i);
    EXPECT_TRUE(f.feedCorrelation(i, {{"rule", "a"}, {"host", host}}).empty()) << host;
    EXPECT_EQ(f.feedCorrelation(i, {{"rule", "a"}, {"host", host}}).size(), 1u) << host;
    // A key seen long ago was evicted, so it starts a new window.
    if (i >= 16) {
      std::string old = "h" + std::to_string(i - 16);
      EXPECT_TRUE(f.feedCorrelation(i, {{"rule", "a"}, {"host", old}}).empty()) << old;
    }
    EXPECT_LE(f.engine.keyCount(), 8);
  }
  EXPECT_GT(f.metrics.counter("vigil_correlation_evictions_total", "", {{"rule", "corr"}}).value(),
            400u);
}

// Resolved field names stay valid when rules are copied and moved, including short
// names that live inside the string object itself.
TEST(ResolvedNameTest, SurvivesCopyAndMove) {
  auto loaded = loadRuleSet("title: D\ndetection: {sel: {x: a, User: bob}, condition: sel}\n");
  ASSERT_EQ(loaded->detections.size(), 1u);
  auto rules = std::make_shared<RuleSet>();
  for (int i = 0; i < 20; ++i) rules->detections.push_back(loaded->detections[0]);  // regrows
  loaded.reset();
  Engine engine(rules, {});
  DetectScratch scratch(*rules);
  Event event(1 << 12);
  fillEvent(event, {{"x", "a"}, {"User", "bob"}});
  std::array<uint32_t, 32> matches;
  EXPECT_EQ(engine.detect(event, scratch, matches), 20u);
  fillEvent(event, {{"x", "a"}, {"User", "eve"}});
  EXPECT_EQ(engine.detect(event, scratch, matches), 0u);
}

// Per-group state stays small for every type; prints the bytes per group and rule.
TEST(StateSizeTest, BytesPerGroup) {
  Fixture f(
      correlation("  type: event_count\n  rules: [a]\n  timespan: 1m\n"
                  "  condition: {gte: 5}\n---\ntitle: V\nid: corr_v\ncorrelation:\n"
                  "  type: value_count\n  rules: [a]\n  timespan: 1m\n"
                  "  condition: {field: User, gte: 5}\n---\ntitle: T\nid: corr_t\n"
                  "correlation:\n  type: temporal\n  rules: [a, b, c]\n  timespan: 1m\n"
                  "---\ntitle: O\nid: corr_o\ncorrelation:\n  type: temporal_ordered\n"
                  "  rules: [a, b, c]\n  timespan: 1m\n"));
  std::vector<Engine::StateSize> sizes = f.engine.stateSizes();
  ASSERT_EQ(sizes.size(), 4u);
  const size_t words[] = {5, 10, 3, 6};  // window state in 8-byte words, per rule above
  for (size_t i = 0; i < sizes.size(); ++i) {
    const CorrelationRule& rule = f.rules->correlations[i];
    std::printf("%-16s min_count %llu: %zu bytes per group, evidence pool %zu bytes\n",
                std::string(correlationTypeName(rule.type)).c_str(),
                static_cast<unsigned long long>(rule.min_count), sizes[i].bytes_per_group,
                sizes[i].evidence_pool_bytes);
    // Slot and index share are the same for every type; only the window state differs.
    EXPECT_EQ(sizes[i].bytes_per_group - words[i] * 8, sizes[0].bytes_per_group - words[0] * 8);
    // The 64-byte slot, 6 bytes of index, and at most 80 bytes of window state for these
    // rules. The key block comes on top (16 bytes for a tenant and an address).
    EXPECT_LE(sizes[i].bytes_per_group, 150u);
  }
}

}  // namespace
}  // namespace vigil::correlate

#include "correlate/engine.h"

#include <algorithm>
#include <string>
#include <vector>

#include "common/json_text.h"
#include "correlate/internal/group_key.h"
#include "common/metrics.h"
#include "common/time.h"
#include "correlate/test_events.h"
#include "dataplane/parser.h"
#include "gtest/gtest.h"

namespace vigil::correlate {
namespace {

using testing::fillEvent;
using testing::loadRuleSet;
using testing::readFile;
using testing::readJsonDocuments;
using testing::sharedPath;

// A detection rule that selects the br16 events by their `rule` label.
constexpr char kSshFailedRule[] = R"(
title: SSH login failed
name: ssh_failed
level: low
detection: {sel: {rule: ssh_failed}, condition: sel}
)";

std::string countRule(const std::string& condition, const std::string& timespan) {
  return std::string(kSshFailedRule) + "---\n" +
         "title: Burst\nid: burst\nlevel: high\ntags: [attack.t1110]\ncorrelation:\n"
         "  type: event_count\n  rules: [ssh_failed]\n  group-by: [src_ip]\n"
         "  timespan: " +
         timespan + "\n  condition: " + condition + "\n";
}

struct Fixture {
  explicit Fixture(const std::string& yaml, EngineOptions options = {})
      : rules(loadRuleSet(yaml)), engine(rules, options, &metrics), scratch(*rules) {}

  // Feeds one event {"ts": "2024-05-01T10:00:SS", src_ip, rule: ssh_failed}.
  std::vector<Alert> feed(int second, const std::string& src_ip, std::string_view tenant = "") {
    char ts[32];
    std::snprintf(ts, sizeof(ts), "2024-05-01T10:%02d:%02dZ", second / 60, second % 60);
    fillEvent(event, {{"ts", ts}, {"src_ip", src_ip}, {"rule", "ssh_failed"}}, tenant);
    std::vector<Alert> out;
    engine.process(event, scratch, out);
    return out;
  }

  std::shared_ptr<const RuleSet> rules;
  MetricsRegistry metrics;
  Engine engine;
  DetectScratch scratch;
  Event event{1 << 14};
};

int64_t at(const std::string& rfc3339) { return *parseRfc3339(rfc3339); }

// br16: after an alert the group's window restarts empty: alerts at :10 and :30 only.
TEST(EngineTest, EdgeBr16WindowReset) {
  std::string yaml = std::string(kSshFailedRule) + "---\n" +
                     readFile(sharedPath("edge/br16-frequency-window-reset.yml"));
  Fixture f(yaml);
  std::vector<Alert> alerts;
  for (const nlohmann::json& document :
       readJsonDocuments(sharedPath("edge/br16-frequency-window-reset.events.jsonl"))) {
    fillEvent(f.event, document);
    f.engine.process(f.event, f.scratch, alerts);
  }
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_EQ(alerts[0].first_event_ns, at("2024-05-01T10:00:00Z"));
  EXPECT_EQ(alerts[0].last_event_ns, at("2024-05-01T10:00:10Z"));
  EXPECT_EQ(alerts[1].first_event_ns, at("2024-05-01T10:00:20Z"));
  EXPECT_EQ(alerts[1].last_event_ns, at("2024-05-01T10:00:30Z"));
  for (const Alert& alert : alerts) {
    EXPECT_EQ(alert.event_count, 2u);
    ASSERT_EQ(alert.group.size(), 1u);
    EXPECT_EQ(alert.group[0], (std::pair<std::string, std::string>{"src_ip", "192.0.2.50"}));
    EXPECT_EQ(alert.rule_title, "Two failed SSH logins from the same source within 60s");
    EXPECT_EQ(alert.evidence.size(), 2u);
  }
  EXPECT_EQ(f.metrics.sum("vigil_alerts_total", {{"kind", "correlation"}}), 2u);
  EXPECT_EQ(f.metrics.sum("vigil_detection_matches_total"), 6u);
  // The rule feeds a correlation without `generate`, so it raises no alerts of its own.
  EXPECT_EQ(f.metrics.sum("vigil_alerts_total", {{"kind", "detection"}}), 0u);
}

// An event exactly `timespan` after the first still shares its window.
TEST(EngineTest, WindowIncludesBothEdges) {
  Fixture f(countRule("{gte: 2}", "60s"));
  EXPECT_TRUE(f.feed(0, "192.0.2.1").empty());
  std::vector<Alert> alerts = f.feed(60, "192.0.2.1");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].last_event_ns - alerts[0].first_event_ns, 60'000'000'000);
}

// One second past the window edge, the first event has left the window.
TEST(EngineTest, WindowSlidesPastEdge) {
  Fixture f(countRule("{gte: 2}", "60s"));
  EXPECT_TRUE(f.feed(0, "192.0.2.1").empty());
  EXPECT_TRUE(f.feed(61, "192.0.2.1").empty());
  std::vector<Alert> alerts = f.feed(100, "192.0.2.1");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].first_event_ns, at("2024-05-01T10:01:01Z"));
}

// `gt: 2` needs three events, and the window restarts after each alert.
TEST(EngineTest, GreaterThanResets) {
  Fixture f(countRule("{gt: 2}", "1h"));
  int alerts = 0;
  for (int second = 0; second < 9; ++second) {
    alerts += static_cast<int>(f.feed(second, "192.0.2.1").size());
  }
  EXPECT_EQ(alerts, 3);
}

// Groups are separate per group-by value and per tenant.
TEST(EngineTest, GroupsByValueAndTenant) {
  Fixture f(countRule("{gte: 2}", "60s"));
  EXPECT_TRUE(f.feed(0, "192.0.2.1", "a").empty());
  EXPECT_TRUE(f.feed(1, "192.0.2.1", "b").empty());
  EXPECT_TRUE(f.feed(2, "192.0.2.2", "a").empty());
  std::vector<Alert> alerts = f.feed(3, "192.0.2.1", "b");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].tenant, "b");
  EXPECT_EQ(f.engine.keyCount(), 3);
  EXPECT_EQ(f.metrics.gauge("vigil_correlation_keys", "").value(), 3);
}

// A full table evicts the least recently updated group and counts the eviction.
TEST(EngineTest, MaxKeysEvictsOldest) {
  EngineOptions options;
  options.max_keys = 2;
  Fixture f(countRule("{gte: 2}", "1h"), options);
  EXPECT_TRUE(f.feed(0, "192.0.2.1").empty());
  EXPECT_TRUE(f.feed(1, "192.0.2.2").empty());
  EXPECT_TRUE(f.feed(2, "192.0.2.1").size() == 1);  // .1 fires; .2 is now least recent
  EXPECT_TRUE(f.feed(3, "192.0.2.3").empty());      // evicts .2
  EXPECT_EQ(f.metrics.sum("vigil_correlation_evictions_total"), 1u);
  EXPECT_TRUE(f.feed(4, "192.0.2.2").empty());  // .2 starts again from one event
  EXPECT_EQ(f.metrics.sum("vigil_correlation_evictions_total"), 2u);
  EXPECT_EQ(f.engine.keyCount(), 2);
}

// An event older than the group's window is dropped and counted, not counted in.
TEST(EngineTest, LateEventCounted) {
  Fixture f(countRule("{gte: 2}", "10s"));
  EXPECT_TRUE(f.feed(100, "192.0.2.1").empty());
  EXPECT_TRUE(f.feed(50, "192.0.2.1").empty());
  EXPECT_EQ(f.metrics.sum("vigil_correlation_late_events_total"), 1u);
  // The series carries the rule's label, so an operator sees which rule dropped it.
  const CorrelationRule& rule = f.rules->correlations[0];
  const Labels rule_label = {{"rule", ruleLabel(rule.id, rule.title)}};
  EXPECT_EQ(f.metrics.sum("vigil_correlation_late_events_total", rule_label), 1u);
}

// Rules outside any correlation raise one alert per event, with evidence and hits.
TEST(EngineTest, DetectionAlertCarriesEvidence) {
  Fixture f(R"(
title: Bad source
id: d-1
level: high
tags: [attack.initial_access]
detection: {sel: {intel.list: blocklist}, condition: sel}
)");
  fillEvent(f.event, {{"ts", "2024-05-01T10:00:00Z"}, {"src_ip", "192.0.2.9"}}, "t1");
  f.event.addHit({"192.0.2.9", "blocklist", IndicatorType::kIpv4, "source.ip"});
  std::vector<Alert> alerts;
  f.engine.process(f.event, f.scratch, alerts);
  ASSERT_EQ(alerts.size(), 1u);
  const Alert& alert = alerts[0];
  EXPECT_EQ(alert.rule_id, "d-1");
  EXPECT_EQ(alert.id, "d-1-1");
  EXPECT_EQ(alert.level, "high");
  EXPECT_EQ(alert.tags, (std::vector<std::string>{"attack.initial_access"}));
  EXPECT_EQ(alert.tenant, "t1");
  EXPECT_EQ(alert.event_count, 1u);
  EXPECT_EQ(alert.first_event_ns, at("2024-05-01T10:00:00Z"));
  ASSERT_EQ(alert.evidence.size(), 1u);
  EXPECT_EQ(alert.evidence[0], f.event.raw);
  EXPECT_EQ(alert.indicator_hits, (std::vector<std::string>{"blocklist:192.0.2.9@source.ip"}));
}

// Evidence cut at evidence_bytes ends between characters, never inside a UTF-8 sequence,
// in detection alerts and in the evidence a correlation window keeps.
TEST(EngineTest, EvidenceCutBetweenCharacters) {
  const std::string detection = R"(
title: Euro note
id: euro
level: low
detection: {sel: {note|contains: "€"}, condition: sel}
)";
  for (size_t limit = 60; limit < 100; ++limit) {
    SCOPED_TRACE(limit);
    EngineOptions options;
    options.evidence_bytes = limit;
    Fixture f(countRule("{gte: 2}", "60s") + "---\n" + detection, options);
    std::vector<Alert> alerts;
    for (int i = 0; i < 2; ++i) {
      fillEvent(f.event, {{"ts", "2024-05-01T10:00:0" + std::to_string(i) + "Z"},
                          {"src_ip", "192.0.2.1"},
                          {"rule", "ssh_failed"},
                          {"note", "€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€"}});
      f.engine.process(f.event, f.scratch, alerts);
    }
    ASSERT_GE(alerts.size(), 3u);  // two detections, one correlation
    for (const Alert& alert : alerts) {
      for (const std::string& evidence : alert.evidence) {
        EXPECT_TRUE(validUtf8(evidence)) << alert.rule_id << ": " << evidence;
        EXPECT_LE(evidence.size(), limit);
        EXPECT_GE(evidence.size() + 2, limit) << alert.rule_id;
        EXPECT_EQ(std::string_view(f.event.raw).substr(0, evidence.size()), evidence);
      }
    }
  }
}

// Correlation alerts keep the hits of their evidence events, without duplicates.
TEST(EngineTest, CorrelationAlertCollectsHits) {
  Fixture f(countRule("{gte: 2}", "60s"));
  std::vector<Alert> alerts;
  for (int i = 0; i < 2; ++i) {
    fillEvent(f.event,
              {{"ts", "2024-05-01T10:00:00Z"}, {"src_ip", "192.0.2.9"}, {"rule", "ssh_failed"}});
    f.event.addHit({"192.0.2.9", "blocklist", IndicatorType::kIpv4, "source.ip"});
    f.engine.process(f.event, f.scratch, alerts);
  }
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].indicator_hits, (std::vector<std::string>{"blocklist:192.0.2.9@source.ip"}));
  EXPECT_EQ(alerts[0].level, "high");
  EXPECT_EQ(alerts[0].tags, (std::vector<std::string>{"attack.t1110"}));
}

// Evidence keeps at most Alert::kMaxEvidence events, the most recent ones.
TEST(EngineTest, EvidenceIsBounded) {
  Fixture f(countRule("{gte: 40}", "1h"));
  std::vector<Alert> alerts;
  for (int second = 0; second < 40; ++second) {
    std::vector<Alert> out = f.feed(second, "192.0.2.1");
    alerts.insert(alerts.end(), out.begin(), out.end());
  }
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].event_count, 40u);
  ASSERT_EQ(alerts[0].evidence.size(), Alert::kMaxEvidence);
  EXPECT_NE(alerts[0].evidence.back().find("10:00:39"), std::string::npos);
}

// injectMatch feeds a labelled event straight into the correlations of a rule.
TEST(EngineTest, InjectMatchByName) {
  Fixture f(countRule("{gte: 2}", "60s"));
  fillEvent(f.event, {{"ts", "2024-05-01T10:00:00Z"}, {"src_ip", "192.0.2.1"}});
  std::vector<Alert> alerts;
  ASSERT_TRUE(f.engine.injectMatch("ssh_failed", f.event, alerts).ok());
  ASSERT_TRUE(f.engine.injectMatch("ssh_failed", f.event, alerts).ok());
  EXPECT_EQ(alerts.size(), 1u);
  absl::Status missing = f.engine.injectMatch("nope", f.event, alerts);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.message(), "no detection rule has id or name 'nope'");
}

// Separator bytes, NUL bytes and empty strings inside a group-by value stay in that
// value: they neither forge other group values nor merge groups that differ.
TEST(EngineTest, GroupValuesCannotForgeOthers) {
  auto rules = loadRuleSet(std::string(kSshFailedRule) + R"(---
title: Injection
id: injection
correlation:
  type: event_count
  rules: [ssh_failed]
  group-by: [message, source.ip, user.name]
  timespan: 60s
  condition: {gte: 1}
)");
  MetricsRegistry metrics;
  Engine engine(rules, {}, &metrics);
  DetectScratch scratch(*rules);
  Event event{1 << 14};
  using Group = std::vector<std::pair<std::string, std::string>>;
  auto groupOf = [&](const std::string& message, const std::string& src_ip,
                     const std::string& user) -> Group {
    nlohmann::json document = {{"ts", "2024-05-01T10:00:00Z"}, {"rule", "ssh_failed"}};
    if (!src_ip.empty()) document["src_ip"] = src_ip;
    if (!user.empty()) document["user"] = user;
    fillEvent(event, document);
    event.message = event.arena.copy(message);
    std::vector<Alert> out;
    engine.process(event, scratch, out);
    if (out.size() != 1) return {};
    return out[0].group;
  };

  constexpr char kSeparator = '\x1f';
  const std::string forged = std::string("inj0") + kSeparator + "6.6.6.6" + kSeparator + "mallory";
  EXPECT_EQ(groupOf(forged, "", ""),
            (Group{{"message", forged}, {"source.ip", ""}, {"user.name", ""}}));

  const std::string with_nul("a\0b\x1f\0", 5);
  EXPECT_EQ(groupOf(with_nul, "192.0.2.1", "alice"),
            (Group{{"message", with_nul}, {"source.ip", "192.0.2.1"}, {"user.name", "alice"}}));

  const std::string prefix_like("\x01x", 2);
  EXPECT_EQ(groupOf(prefix_like, "", "bob"),
            (Group{{"message", prefix_like}, {"source.ip", ""}, {"user.name", "bob"}}));

  EXPECT_EQ(groupOf("", "", ""), (Group{{"message", ""}, {"source.ip", ""}, {"user.name", ""}}));
}

// Two value tuples whose old separator-joined keys were equal now count apart.
TEST(EngineTest, SeparatorInValueKeepsGroupsApart) {
  auto rules = loadRuleSet(std::string(kSshFailedRule) + R"(---
title: Pairs
id: pairs
correlation:
  type: event_count
  rules: [ssh_failed]
  group-by: [message, user.name]
  timespan: 60s
  condition: {gte: 2}
)");
  MetricsRegistry metrics;
  Engine engine(rules, {}, &metrics);
  DetectScratch scratch(*rules);
  Event event{1 << 14};
  auto feed = [&](const std::string& message, const std::string& user) {
    nlohmann::json document = {{"ts", "2024-05-01T10:00:00Z"}, {"rule", "ssh_failed"}};
    if (!user.empty()) document["user"] = user;
    fillEvent(event, document);
    event.message = event.arena.copy(message);
    std::vector<Alert> out;
    engine.process(event, scratch, out);
    return out.size();
  };
  // ("a\x1f", "b") and ("a", "\x1fb") both joined to "a\x1f\x1fb" with a separator byte.
  EXPECT_EQ(feed("a\x1f", "b"), 0u);
  EXPECT_EQ(feed("a", std::string(1, '\x1f') + "b"), 0u);
  EXPECT_EQ(engine.keyCount(), 2);
  EXPECT_EQ(feed("a\x1f", "b"), 1u);
}

// Keys longer than kMaxGroupKeyBytes are cut and counted. Groups that agree up to the cut
// and differ after it keep windows of their own, because a cut key ends in a hash of the
// whole key. The alert shows the cut value and the fields after it as empty.
TEST(EngineTest, LongGroupKeyCutAndCounted) {
  auto rules = loadRuleSet(std::string(kSshFailedRule) + R"(---
title: Long
id: long
correlation:
  type: event_count
  rules: [ssh_failed]
  group-by: [message, user.name]
  timespan: 60s
  condition: {gte: 2}
)");
  MetricsRegistry metrics;
  Engine engine(rules, {}, &metrics);
  DetectScratch scratch(*rules);
  Event event{1 << 14};
  const std::string shared(2 * kMaxGroupKeyBytes, 'x');
  auto feed = [&](const std::string& message, const std::string& user) {
    fillEvent(event, {{"ts", "2024-05-01T10:00:00Z"}, {"rule", "ssh_failed"}, {"user", user}});
    event.message = event.arena.copy(message);
    std::vector<Alert> out;
    engine.process(event, scratch, out);
    return out;
  };
  EXPECT_TRUE(feed(shared + "1", "alice").empty());
  EXPECT_TRUE(feed(shared + "2", "alice").empty());  // differs after the cut
  EXPECT_TRUE(feed(shared + "1", "bob").empty());    // differs in a later field
  EXPECT_EQ(engine.keyCount(), 3);
  std::vector<Alert> alerts = feed(shared + "1", "alice");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].event_count, 2u);
  ASSERT_EQ(alerts[0].group.size(), 2u);
  EXPECT_LT(alerts[0].group[0].second.size(), kMaxGroupKeyBytes);
  EXPECT_GT(alerts[0].group[0].second.size(), kMaxGroupKeyBytes - 32);
  EXPECT_EQ(alerts[0].group[0].second, shared.substr(0, alerts[0].group[0].second.size()));
  EXPECT_EQ(alerts[0].group[1].second, "");
  EXPECT_EQ(metrics.sum("vigil_correlation_group_key_truncated_total"), 4u);
}

// A key of exactly kMaxGroupKeyBytes bytes takes the hashed form too, so it cannot equal
// the cut key of a longer tuple that shares its bytes.
TEST(EngineTest, FullLengthKeyDiffersFromLongerOne) {
  std::array<char, kMaxGroupKeyBytes> a_buffer;
  std::array<char, kMaxGroupKeyBytes> b_buffer;
  internal::GroupKeyWriter exact(a_buffer);
  internal::GroupKeyWriter longer(b_buffer);
  exact.addPart("t");
  longer.addPart("t");
  // Tenant part: 2 bytes. Value part: 2 bytes of length, then the value.
  const std::string fill(kMaxGroupKeyBytes - 4, 'v');
  exact.addPart(fill);
  longer.addPart(fill + "w");
  const std::string_view exact_key = exact.key();
  const std::string_view longer_key = longer.key();
  EXPECT_EQ(exact_key.size(), kMaxGroupKeyBytes);
  EXPECT_EQ(longer_key.size(), kMaxGroupKeyBytes);
  EXPECT_NE(exact_key, longer_key);
  EXPECT_TRUE(exact.truncated());
  internal::GroupKeyReader reader(exact_key, kMaxGroupKeyBytes);
  EXPECT_EQ(reader.nextPart(), "t");
  EXPECT_EQ(reader.nextPart(), fill.substr(0, fill.size() - internal::kKeyHashBytes));
}

// With several shards every group still lands in exactly one shard.
TEST(EngineTest, ShardsKeepGroupsApart) {
  EngineOptions options;
  options.shards = 4;
  Fixture f(countRule("{gte: 2}", "60s"), options);
  int alerts = 0;
  for (int i = 0; i < 20; ++i) {
    std::string ip = "192.0.2." + std::to_string(i);
    alerts += static_cast<int>(f.feed(0, ip).size());
    alerts += static_cast<int>(f.feed(1, ip).size());
  }
  EXPECT_EQ(alerts, 20);
}

// A JSON member past Event::kMaxFields (the 151st of 200) lives in the event's overflow
// area. A Sigma selection on it passes the prefilter and matches, and a correlation
// groups by it.
TEST(EngineTest, RuleReachesOverflowField) {
  const std::string yaml = R"(
title: Wide event
name: wide
level: low
detection: {sel: {k150: needle150}, condition: sel}
---
title: Wide event alone
id: wide-alone
level: low
detection: {sel: {k150: needle150}, condition: sel}
---
title: Wide burst
id: wide-burst
level: high
correlation:
  type: event_count
  rules: [wide]
  group-by: [k150]
  timespan: 60s
  condition: {gte: 2}
)";
  Fixture f(yaml);
  std::string json = "{";
  for (size_t i = 0; i < 200; ++i) {
    json += (i == 0 ? "\"k" : ",\"k") + std::to_string(i) + "\":\"" +
            (i == 150 ? std::string("needle150") : "v" + std::to_string(i)) + "\"";
  }
  json += "}";
  std::vector<Alert> alerts;
  for (int i = 0; i < 2; ++i) {
    f.event.reset();
    f.event.raw = f.event.arena.copy(json);
    f.event.receive_ns = at("2024-05-01T10:00:00Z") + i;
    dataplane::parseEvent(f.event, {});
    ASSERT_TRUE(f.event.has(kFlagFieldsOverflow));
    ASSERT_EQ(f.event.field_count, Event::kMaxFields);
    f.engine.process(f.event, f.scratch, alerts);
  }
  // wide-alone raises one alert per event; wide feeds only the correlation.
  std::vector<std::string> rule_ids;
  const Alert* burst = nullptr;
  for (const Alert& alert : alerts) {
    rule_ids.push_back(alert.rule_id);
    if (alert.rule_id == "wide-burst") burst = &alert;
  }
  std::sort(rule_ids.begin(), rule_ids.end());
  EXPECT_EQ(rule_ids, (std::vector<std::string>{"wide-alone", "wide-alone", "wide-burst"}));
  ASSERT_NE(burst, nullptr);
  EXPECT_EQ(burst->group,
            (std::vector<std::pair<std::string, std::string>>{{"k150", "needle150"}}));
  EXPECT_GT(f.metrics.sum("vigil_detection_prefilter_hits_total"), 0u);

  // The same document with another value at position 150 matches nothing.
  const size_t at150 = json.find("needle150");
  json.replace(at150, 9, "haystack0");
  f.event.reset();
  f.event.raw = f.event.arena.copy(json);
  f.event.receive_ns = at("2024-05-01T10:00:01Z");
  dataplane::parseEvent(f.event, {});
  alerts.clear();
  f.engine.process(f.event, f.scratch, alerts);
  EXPECT_TRUE(alerts.empty());
}

}  // namespace
}  // namespace vigil::correlate

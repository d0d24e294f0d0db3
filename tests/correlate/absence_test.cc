// Absence correlations ("A not followed by B within T"), the event-time watermark that
// closes their windows, lateness, and the `suppress` option of detection and correlation
// rules.
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

// `login` opens a window per host; `mfa` is expected within 60 s.
constexpr char kAbsenceRules[] = R"(
title: Login
name: login
detection: {sel: {rule: login}, condition: sel}
---
title: MFA
name: mfa
detection: {sel: {rule: mfa}, condition: sel}
---
title: Other
name: other
detection: {sel: {rule: other}, condition: sel}
---
title: Login without MFA
id: corr_absence
level: high
correlation:
  type: absence
  rules: [login, mfa]
  group-by: [host]
  timespan: 60s
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

  // Feeds one event at `second` seconds after 10:00:00 and returns the correlation alerts
  // it raised (the `other` detection rule raises its own alerts, which are left out).
  std::vector<Alert> feed(int second, const std::string& rule, const std::string& host = "h1") {
    char ts[32];
    std::snprintf(ts, sizeof(ts), "2024-05-01T%02d:%02d:%02dZ", 10 + second / 3600,
                  second / 60 % 60, second % 60);
    fillEvent(event, {{"ts", ts}, {"rule", rule}, {"host", host}});
    std::vector<Alert> out;
    engine.process(event, scratch, out);
    std::vector<Alert> correlation;
    for (Alert& alert : out) {
      if (alert.rule_id.rfind("corr", 0) == 0) correlation.push_back(std::move(alert));
    }
    return correlation;
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

constexpr int64_t kSecond = 1'000'000'000;

// A login followed by nothing fires once the watermark passes login + 60 s, and not before.
TEST(AbsenceTest, FiresWhenWatermarkPassesDeadline) {
  Fixture f(kAbsenceRules);
  EXPECT_TRUE(f.feed(0, "login").empty());
  EXPECT_TRUE(f.feed(30, "other", "h2").empty());
  EXPECT_TRUE(f.feed(60, "other", "h2").empty());  // the deadline itself is still open
  std::vector<Alert> alerts = f.feed(61, "other", "h2");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].rule_id, "corr_absence");
  EXPECT_EQ(alerts[0].level, "high");
  EXPECT_EQ(alerts[0].event_count, 1u);
  ASSERT_EQ(alerts[0].group.size(), 1u);
  EXPECT_EQ(alerts[0].group[0].second, "h1");
  EXPECT_EQ(alerts[0].last_event_ns - alerts[0].first_event_ns, 0);
  ASSERT_EQ(alerts[0].evidence.size(), 1u);
  EXPECT_NE(alerts[0].evidence[0].find("login"), std::string::npos);
  EXPECT_EQ(f.metrics.gauge("vigil_correlation_pending_timers", "").value(), 0);
}

// The expected rule inside the window, edges included, cancels it; the group then waits
// for a new login.
TEST(AbsenceTest, FollowUpCancelsWindow) {
  Fixture f(kAbsenceRules);
  EXPECT_TRUE(f.feed(0, "login").empty());
  EXPECT_TRUE(f.feed(60, "mfa").empty());  // exactly at the deadline
  EXPECT_TRUE(f.feed(500, "other").empty());
  EXPECT_TRUE(f.feed(600, "login").empty());
  EXPECT_TRUE(f.feed(610, "mfa").empty());
  EXPECT_TRUE(f.feed(1000, "other").empty());
  EXPECT_EQ(f.counter("vigil_alerts_total", {{"rule", "corr_absence"}, {"kind", "correlation"}}),
            0u);
}

// A follow-up of another group does not cancel the window, and a follow-up before the
// login does not count for it.
TEST(AbsenceTest, FollowUpMustMatchGroupAndOrder) {
  Fixture f(kAbsenceRules);
  EXPECT_TRUE(f.feed(0, "mfa", "h1").empty());
  EXPECT_TRUE(f.feed(10, "login", "h1").empty());
  EXPECT_TRUE(f.feed(20, "mfa", "h2").empty());
  std::vector<Alert> alerts = f.feed(71, "other", "h3");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].group[0].second, "h1");
}

// Logins inside an open window join it: one alert counts them all, and the next login
// after the alert opens a new window.
TEST(AbsenceTest, LoginsJoinOpenWindow) {
  Fixture f(kAbsenceRules);
  EXPECT_TRUE(f.feed(0, "login").empty());
  EXPECT_TRUE(f.feed(20, "login").empty());
  EXPECT_TRUE(f.feed(40, "login").empty());
  std::vector<Alert> alerts = f.feed(61, "login");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].event_count, 3u);
  EXPECT_EQ(alerts[0].first_event_ns + 40 * kSecond, alerts[0].last_event_ns);
  EXPECT_EQ(alerts[0].evidence.size(), 3u);
  // The login at 61 opened the next window, which closes after 121.
  EXPECT_TRUE(f.feed(121, "other").empty());
  alerts = f.feed(122, "other");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].event_count, 1u);
}

// Windows of many groups close in deadline order, each once.
TEST(AbsenceTest, ManyGroupsCloseInDeadlineOrder) {
  Fixture f(kAbsenceRules);
  for (int i = 0; i < 50; ++i) {
    EXPECT_TRUE(f.feed(i, "login", "h" + std::to_string(49 - i)).empty());
  }
  // Every third group gets its follow-up.
  for (int i = 0; i < 50; i += 3) EXPECT_TRUE(f.feed(50, "mfa", "h" + std::to_string(49 - i)).empty());
  std::vector<Alert> alerts = f.feed(200, "other", "x");
  ASSERT_EQ(alerts.size(), 33u);
  for (size_t i = 1; i < alerts.size(); ++i) {
    EXPECT_LT(alerts[i - 1].first_event_ns, alerts[i].first_event_ns) << i;
  }
  EXPECT_TRUE(f.feed(400, "other", "x").empty());
}

// Without newer events the watermark does not move: an idle stream raises nothing, however
// much wall-clock time passes, and the window stays pending.
TEST(AbsenceTest, IdleStreamKeepsWindowPending) {
  Fixture f(kAbsenceRules);
  EXPECT_TRUE(f.feed(0, "login").empty());
  EXPECT_TRUE(f.feed(59, "other").empty());
  EXPECT_EQ(f.metrics.gauge("vigil_correlation_pending_timers", "").value(), 1);
  // An event older than the newest one does not move the watermark back or forward.
  EXPECT_TRUE(f.feed(59, "other").empty());
  EXPECT_EQ(f.metrics.gauge("vigil_correlation_pending_timers", "").value(), 1);
}

// With allowed lateness, the watermark lags the newest event: a follow-up that arrives
// out of order within the lateness still cancels the window, and one later than the
// lateness is counted as late and cannot.
TEST(AbsenceTest, LatenessDelaysClosing) {
  EngineOptions options;
  options.allowed_lateness_ns = 30 * kSecond;
  Fixture f(kAbsenceRules, options);
  EXPECT_TRUE(f.feed(0, "login").empty());
  EXPECT_TRUE(f.feed(80, "other", "x").empty());  // watermark 50
  EXPECT_TRUE(f.feed(55, "mfa").empty());         // late by 25 s, inside the lateness
  EXPECT_TRUE(f.feed(200, "other", "x").empty());
  EXPECT_EQ(f.metrics.sum("vigil_correlation_late_events_total"), 0u);

  EXPECT_TRUE(f.feed(300, "login").empty());
  EXPECT_TRUE(f.feed(390, "other", "x").empty());  // watermark 360: the deadline itself
  std::vector<Alert> alerts = f.feed(391, "other", "x");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_TRUE(f.feed(340, "mfa").empty());  // older than the watermark: late
  EXPECT_EQ(f.metrics.sum("vigil_correlation_late_events_total"), 1u);
}

// A follow-up that arrives before its login (out of order, inside the lateness) closes
// the window the login opens.
TEST(AbsenceTest, EarlierArrivingFollowUpAnswers) {
  EngineOptions options;
  options.allowed_lateness_ns = 30 * kSecond;
  Fixture f(kAbsenceRules, options);
  EXPECT_TRUE(f.feed(20, "mfa").empty());
  EXPECT_TRUE(f.feed(10, "login").empty());
  EXPECT_TRUE(f.feed(500, "other", "x").empty());
  EXPECT_EQ(f.metrics.gauge("vigil_correlation_pending_timers", "").value(), 0);
}

// Alerts depend on event time only: one shard and three shards (each with its own
// watermark, fed every event) raise the same alerts for the same events.
TEST(AbsenceTest, ShardCountDoesNotChangeAlerts) {
  auto run = [](size_t shards) {
    EngineOptions options;
    options.shards = shards;
    Fixture f(kAbsenceRules, options);
    std::vector<std::string> seen;
    for (int i = 0; i < 300; ++i) {
      const int second = i * 7;
      for (const Alert& alert :
           f.feed(second, i % 4 == 0 ? "mfa" : "login", "h" + std::to_string(i % 5))) {
        seen.push_back(std::to_string(i) + "/" + alert.group[0].second + "/" +
                       std::to_string(alert.first_event_ns) + "/" +
                       std::to_string(alert.event_count));
      }
    }
    std::sort(seen.begin(), seen.end());
    return seen;
  };
  std::vector<std::string> one = run(1);
  EXPECT_GT(one.size(), 10u);
  EXPECT_EQ(one, run(3));
}

// Loading: exactly two distinct rules, no condition, and the type is named in errors.
TEST(AbsenceTest, LoadErrors) {
  const std::string base = std::string(kAbsenceRules).substr(0, std::string(kAbsenceRules).find("---\ntitle: Login without"));
  auto correlationWith = [&](const std::string& body) {
    return base + "---\ntitle: Bad\nid: bad\ncorrelation:\n" + body;
  };
  EXPECT_NE(loadError(correlationWith("  type: absence\n  rules: [login]\n  timespan: 1m\n"))
                .find("absence references 1 rules; it needs exactly two"),
            std::string::npos);
  EXPECT_NE(loadError(correlationWith("  type: absence\n  rules: [login, mfa]\n  timespan: 1m\n"
                                      "  condition: {gte: 1}\n"))
                .find("an absence correlation takes no 'condition'"),
            std::string::npos);
  EXPECT_NE(loadError(correlationWith("  type: absence\n  rules: [login, login]\n  timespan: 1m\n"))
                .find("name the same rule"),
            std::string::npos);
  EXPECT_NE(loadError(correlationWith("  type: absence\n  rules: [login, mfa]\n"))
                .find("'correlation.timespan' is missing"),
            std::string::npos);
}

// Eviction of a group with an open window drops its timer with it.
TEST(AbsenceTest, EvictionDropsTimer) {
  EngineOptions options;
  options.max_keys = 2;
  Fixture f(kAbsenceRules, options);
  EXPECT_TRUE(f.feed(0, "login", "a").empty());
  EXPECT_TRUE(f.feed(1, "login", "b").empty());
  EXPECT_TRUE(f.feed(2, "login", "c").empty());  // evicts a
  EXPECT_EQ(f.metrics.gauge("vigil_correlation_pending_timers", "").value(), 2);
  std::vector<Alert> alerts = f.feed(100, "other", "x");  // "x" is not a login: no slot
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_EQ(alerts[0].group[0].second, "b");
  EXPECT_EQ(alerts[1].group[0].second, "c");
  EXPECT_EQ(f.counter("vigil_correlation_evictions_total", {{"rule", "corr_absence"}}), 1u);
}

// --- suppress

constexpr char kSuppressRules[] = R"(
title: Port scan hit
id: det_scan
suppress: {timespan: 10m, group-by: [src_ip]}
detection: {sel: {rule: scan}, condition: sel}
---
title: Failed login
name: failed
detection: {sel: {rule: failed}, condition: sel}
---
title: Brute force
id: corr_brute
suppress: 30m
correlation:
  type: event_count
  rules: [failed]
  group-by: [host]
  timespan: 1m
  condition: {gte: 2}
)";

// A detection rule with suppress raises one alert per key per period of event time; the
// rest are counted.
TEST(SuppressTest, DetectionOneAlertPerKeyPerPeriod) {
  Fixture f(kSuppressRules);
  auto feedScan = [&](int second, const std::string& ip) {
    char ts[32];
    std::snprintf(ts, sizeof(ts), "2024-05-01T%02d:%02d:%02dZ", 10 + second / 3600,
                  second / 60 % 60, second % 60);
    fillEvent(f.event, {{"ts", ts}, {"rule", "scan"}, {"src_ip", ip}});
    std::vector<Alert> out;
    f.engine.process(f.event, f.scratch, out);
    return out.size();
  };
  EXPECT_EQ(feedScan(0, "192.0.2.1"), 1u);
  EXPECT_EQ(feedScan(10, "192.0.2.1"), 0u);
  EXPECT_EQ(feedScan(20, "192.0.2.2"), 1u);  // another key
  EXPECT_EQ(feedScan(599, "192.0.2.1"), 0u);
  EXPECT_EQ(feedScan(600, "192.0.2.1"), 1u);  // a full period after the last alert
  EXPECT_EQ(feedScan(601, "192.0.2.1"), 0u);
  EXPECT_EQ(f.counter("vigil_alerts_suppressed_total", {{"rule", "det_scan"}, {"kind", "detection"}}),
            3u);
  EXPECT_EQ(f.counter("vigil_alerts_total", {{"rule", "det_scan"}, {"kind", "detection"}}), 6u);
}

// A correlation with suppress still restarts its window when it fires, but delivers at
// most one alert per group per period.
TEST(SuppressTest, CorrelationOneAlertPerGroupPerPeriod) {
  Fixture f(kSuppressRules);
  EXPECT_TRUE(f.feed(0, "failed").empty());
  EXPECT_EQ(f.feed(1, "failed").size(), 1u);
  EXPECT_TRUE(f.feed(2, "failed").empty());
  EXPECT_TRUE(f.feed(3, "failed").empty());  // fires, suppressed
  EXPECT_TRUE(f.feed(4, "failed", "h2").empty());
  EXPECT_EQ(f.feed(5, "failed", "h2").size(), 1u);  // another group
  EXPECT_TRUE(f.feed(1799, "failed").empty());
  EXPECT_TRUE(f.feed(1800, "failed").empty());  // fires 1799 s after the alert: held back
  EXPECT_TRUE(f.feed(1801, "failed").empty());
  EXPECT_EQ(f.feed(1802, "failed").size(), 1u);
  EXPECT_EQ(
      f.counter("vigil_alerts_suppressed_total", {{"rule", "corr_brute"}, {"kind", "correlation"}}),
      2u);
}

// Detection suppression keys are bounded: a full table drops expired keys first, then the
// oldest, and counts the latter.
TEST(SuppressTest, DetectionKeysBounded) {
  EngineOptions options;
  options.max_suppress_keys = 4;
  Fixture f(kSuppressRules, options);
  auto feedScan = [&](int second, int host) {
    char ts[32];
    std::snprintf(ts, sizeof(ts), "2024-05-01T10:%02d:%02dZ", second / 60, second % 60);
    fillEvent(f.event, {{"ts", ts}, {"rule", "scan"}, {"src_ip", "192.0.2." + std::to_string(host)}});
    std::vector<Alert> out;
    f.engine.process(f.event, f.scratch, out);
    return out.size();
  };
  for (int i = 0; i < 5; ++i) EXPECT_EQ(feedScan(i, i), 1u) << i;
  EXPECT_EQ(f.counter("vigil_suppress_evictions_total"), 1u);
  EXPECT_EQ(feedScan(10, 0), 1u);  // key 0 was evicted, so it alerts again
  EXPECT_EQ(feedScan(11, 4), 0u);  // key 4 is still held
}

// suppress is validated: a timespan or a map with timespan and group-by only.
TEST(SuppressTest, LoadErrors) {
  auto detection = [](const std::string& suppress) {
    return "title: D\nid: d\nsuppress: " + suppress + "\ndetection: {sel: {a: b}, condition: sel}\n";
  };
  EXPECT_NE(loadError(detection("often")).find("suppress: invalid timespan 'often'"),
            std::string::npos);
  EXPECT_NE(loadError(detection("{timespan: 1m, by: [x]}")).find("unknown key 'suppress.by'"),
            std::string::npos);
  EXPECT_NE(loadError(detection("[1m]")).find("'suppress' must be a timespan"), std::string::npos);
  EXPECT_NE(loadError("title: D\nname: d\ndetection: {sel: {a: b}, condition: sel}\n---\n"
                      "title: C\nsuppress: {timespan: 1m, group-by: [x]}\ncorrelation:\n"
                      "  type: event_count\n  rules: [d]\n  timespan: 1m\n  condition: {gte: 2}\n")
                .find("'suppress.group-by' is only valid on detection rules"),
            std::string::npos);
  EXPECT_EQ(loadError(detection("15m")), "");
}

}  // namespace
}  // namespace vigil::correlate

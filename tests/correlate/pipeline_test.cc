#include "correlate/pipeline.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/ip.h"
#include "common/metrics.h"
#include "common/time.h"
#include "correlate/test_events.h"
#include "gtest/gtest.h"
#include "intel/builder.h"

namespace vigil::correlate {
namespace {

// A finite source that publishes `lines` into its ring from its own thread, waiting
// whenever the ring is full, and reports finished() after the last one.
class VectorSource final : public dataplane::Source {
 public:
  VectorSource(uint16_t id, std::string tenant, std::vector<std::string> lines)
      : id_(id),
        name_("vector" + std::to_string(id)),
        tenant_(std::move(tenant)),
        lines_(std::move(lines)),
        // Slot buffers sized as the pipeline's event arenas (the tests set max_message_bytes
        // to kCapacity), so the input stage trades buffers instead of copying; the other
        // pipeline tests' sources take the copying path.
        ring_(8, [] {
          return std::make_unique<dataplane::RawMessage>(kCapacity,
                                                         dataplane::eventArenaBytes(kCapacity));
        }) {}
  ~VectorSource() override { stop(); }

  // Sets the sender address stamped on every message; call before start().
  void setPeer(std::string_view address) { peer_ = parseIp(address); }

  bool start(std::string&) override {
    thread_ = std::thread([this] {
      for (const std::string& line : lines_) {
        dataplane::RawMessage* slot = nullptr;
        while ((slot = ring_.tryClaim()) == nullptr) {
          if (stop_.load()) return;
          std::this_thread::yield();
        }
        slot->len = std::min(line.size(), kCapacity);
        slot->truncated = line.size() > kCapacity;
        std::memcpy(slot->data.get(), line.data(), slot->len);
        slot->receive_ns = *parseRfc3339("2024-05-01T10:00:00Z");
        slot->source_id = id_;
        slot->peer = peer_;
        ring_.publish();
      }
      finished_.store(true);
    });
    return true;
  }
  void stop() override {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  bool finished() const override { return finished_.load(); }
  const std::string& name() const override { return name_; }
  uint16_t id() const override { return id_; }
  dataplane::Format format() const override { return dataplane::Format::kAuto; }
  const std::string& tenant() const override { return tenant_; }
  dataplane::RawRing& ring() override { return ring_; }

  static constexpr size_t kCapacity = 512;

 private:
  uint16_t id_;
  std::string name_;
  std::string tenant_;
  std::vector<std::string> lines_;
  std::optional<IpAddr> peer_;
  dataplane::RawRing ring_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
};

// Keeps every alert; the pipeline calls it from its last serial stage only.
class CollectingSink final : public AlertSink {
 public:
  void onAlert(const Alert& alert) override { alerts.push_back(alert); }
  void flush() override { ++flushes; }
  std::vector<Alert> alerts;
  int flushes = 0;
};

constexpr char kRules[] = R"(
title: SSH login failed
id: ssh-failed
name: ssh_failed
level: low
detection:
  sel:
    process.name: sshd
    message|contains: 'Failed password'
  condition: sel
---
title: SSH brute force
id: ssh-brute
level: high
correlation:
  type: event_count
  rules: [ssh_failed]
  group-by: [src_ip]
  timespan: 60s
  condition: {gte: 3}
---
title: Blocklisted source
id: blocklisted
level: medium
detection: {sel: {intel.list: blocklist}, condition: sel}
)";

std::string sshdLine(int second, const std::string& ip, const std::string& host = "host1") {
  char line[300];
  std::snprintf(line, sizeof(line),
                "<38>1 2024-05-01T10:00:%02dZ %s sshd 411 - - Failed password for alice "
                "from %s port 52011 ssh2",
                second, host.c_str(), ip.c_str());
  return line;
}

constexpr char kAbsenceRules[] = R"(
title: Login
name: login
detection: {sel: {message|contains: 'Accepted password'}, condition: sel}
---
title: MFA
name: mfa
detection: {sel: {message|contains: 'MFA ok'}, condition: sel}
---
title: Login without MFA
id: no-mfa
correlation:
  type: absence
  rules: [login, mfa]
  group-by: [host]
  timespan: 30s
---
title: Any login
id: any-login
suppress: {timespan: 20s, group-by: [host]}
detection: {sel: {message|contains: 'Accepted password'}, condition: sel}
)";

// Lines over five hosts: logins, MFA for some, at event times that advance 3 s a line.
std::vector<std::string> absenceLines() {
  std::vector<std::string> lines;
  for (int i = 0; i < 200; ++i) {
    const int at = i * 3;
    char line[200];
    std::snprintf(line, sizeof(line), "<38>1 2024-05-01T10:%02d:%02dZ host%d sshd 411 - - %s",
                  at / 60 % 60, at % 60, i % 5, i % 7 == 0 ? "MFA ok" : "Accepted password");
    lines.emplace_back(line);
  }
  return lines;
}

// Renders an alert without the fields that depend on the run (id, detection time).
std::string describeAlert(const Alert& alert) {
  std::string text = alert.rule_id + " " + std::to_string(alert.first_event_ns) + " " +
                     std::to_string(alert.last_event_ns) + " " +
                     std::to_string(alert.event_count);
  for (const auto& [field, value] : alert.group) text += " " + field + "=" + value;
  return text;
}

// Runs `lines` from one source through a pipeline with four batches of `batch_size` on
// `engine` and returns the alerts it delivered.
std::vector<Alert> runLines(std::vector<std::string> lines, Engine& engine,
                            MetricsRegistry& metrics, size_t batch_size) {
  VectorSource source(1, "", std::move(lines));
  CollectingSink sink;
  PipelineOptions options;
  options.batch_size = batch_size;
  options.batches = 4;
  options.max_message_bytes = VectorSource::kCapacity;
  Pipeline pipeline({&source}, nullptr, engine, {&sink}, metrics, options);
  std::string error;
  EXPECT_TRUE(source.start(error)) << error;
  pipeline.run();
  return sink.alerts;
}

// Absence windows close on event time and suppress runs in the deliver stage, so the
// pipeline raises the same alerts as Engine::process() over the same events, whatever
// the batch size and the shard count.
TEST(PipelineTest, AbsenceAlertsIndependentOfBatching) {
  std::vector<std::string> expected;
  {
    auto rules = testing::loadRuleSet(kAbsenceRules);
    Engine engine(rules, {});
    DetectScratch scratch(*rules);
    Event event(1 << 14);
    std::vector<Alert> alerts;
    for (const std::string& line : absenceLines()) {
      event.reset();
      event.raw = event.arena.copy(line);
      dataplane::ParseOptions parse_options;
      dataplane::parseEvent(event, parse_options);
      engine.process(event, scratch, alerts);
    }
    for (const Alert& alert : alerts) expected.push_back(describeAlert(alert));
  }
  size_t absence_alerts = 0;
  for (const std::string& text : expected) absence_alerts += text.rfind("no-mfa", 0) == 0;
  ASSERT_GT(absence_alerts, 5u);
  ASSERT_GT(expected.size(), absence_alerts);

  for (size_t batch_size : {1, 7, 64}) {
    for (size_t shards : {1, 3}) {
      MetricsRegistry metrics;
      EngineOptions engine_options;
      engine_options.shards = shards;
      Engine engine(testing::loadRuleSet(kAbsenceRules), engine_options, &metrics);
      std::vector<std::string> seen;
      for (const Alert& alert : runLines(absenceLines(), engine, metrics, batch_size)) {
        seen.push_back(describeAlert(alert));
      }
      // Shard stages append their alerts after the batch's detection alerts, so compare
      // the alerts as sets.
      std::vector<std::string> sorted_expected = expected;
      std::sort(sorted_expected.begin(), sorted_expected.end());
      std::sort(seen.begin(), seen.end());
      EXPECT_EQ(seen, sorted_expected) << "batch_size " << batch_size << " shards " << shards;
      EXPECT_GT(metrics.sum("vigil_alerts_suppressed_total"), 0u);
    }
  }
}

// Failed logins from four addresses whose event times go back by 100 s on every fifth
// line, so some arrive later than the allowed lateness.
std::vector<std::string> outOfOrderLines() {
  std::vector<std::string> lines;
  for (int i = 0; i < 300; ++i) {
    const int at = 200 + i * 2 - (i % 5 == 4 ? 100 : 0);
    char line[200];
    std::snprintf(line, sizeof(line),
                  "<38>1 2024-05-01T10:%02d:%02dZ host1 sshd 411 - - Failed password for alice "
                  "from 192.0.2.%d port 52011 ssh2",
                  at / 60 % 60, at % 60, i % 4);
    lines.emplace_back(line);
  }
  return lines;
}

// Without absence or closing rules the shard stages move the watermark once per batch
// instead of once per event. Alerts, late events and the final watermark of every shard
// must be those of an engine that moved it per event, whatever the batching.
TEST(PipelineTest, WatermarkWithoutTimersMatchesPerEvent) {
  EngineOptions engine_options;
  engine_options.allowed_lateness_ns = 30 * kNanosPerSecond;
  std::vector<std::string> expected;
  uint64_t expected_late = 0;
  int64_t expected_watermark = 0;
  {
    MetricsRegistry metrics;
    auto rules = testing::loadRuleSet(kRules);
    Engine engine(rules, engine_options, &metrics);
    ASSERT_FALSE(engine.hasTimerRules());
    DetectScratch scratch(*rules);
    Event event(1 << 14);
    std::vector<Alert> alerts;
    for (const std::string& line : outOfOrderLines()) {
      event.reset();
      event.raw = event.arena.copy(line);
      dataplane::ParseOptions parse_options;
      dataplane::parseEvent(event, parse_options);
      engine.process(event, scratch, alerts);
    }
    for (const Alert& alert : alerts) {
      if (alert.rule_id == "ssh-brute") expected.push_back(describeAlert(alert));
    }
    expected_late = metrics.sum("vigil_correlation_late_events_total");
    expected_watermark = engine.watermark(0);
  }
  ASSERT_GT(expected_late, 0u);
  ASSERT_GT(expected.size(), 3u);
  std::sort(expected.begin(), expected.end());

  for (size_t batch_size : {1, 7, 64}) {
    for (size_t shards : {1, 3}) {
      MetricsRegistry metrics;
      EngineOptions options_of_engine = engine_options;
      options_of_engine.shards = shards;
      Engine engine(testing::loadRuleSet(kRules), options_of_engine, &metrics);
      std::vector<std::string> seen;
      for (const Alert& alert : runLines(outOfOrderLines(), engine, metrics, batch_size)) {
        if (alert.rule_id == "ssh-brute") seen.push_back(describeAlert(alert));
      }
      std::sort(seen.begin(), seen.end());
      EXPECT_EQ(seen, expected) << "batch_size " << batch_size << " shards " << shards;
      EXPECT_EQ(metrics.sum("vigil_correlation_late_events_total"), expected_late)
          << "batch_size " << batch_size << " shards " << shards;
      for (uint32_t s = 0; s < shards; ++s) {
        EXPECT_EQ(engine.watermark(s), expected_watermark) << "shard " << s;
      }
    }
  }
}

// A checkpoint taken by the shard stages after the first batch, restored into a new
// engine that processes the rest, gives the alerts of one uninterrupted run.
TEST(PipelineTest, CheckpointAfterBatchRestores) {
  constexpr size_t kBatch = 7;
  const std::vector<std::string> lines = absenceLines();
  auto rules = testing::loadRuleSet(kAbsenceRules);
  auto feed = [&](Engine& engine, size_t begin, size_t end, std::vector<std::string>& out) {
    DetectScratch scratch(*rules);
    Event event(1 << 14);
    std::vector<Alert> alerts;
    for (size_t i = begin; i < end; ++i) {
      event.reset();
      event.raw = event.arena.copy(lines[i]);
      dataplane::ParseOptions parse_options;
      dataplane::parseEvent(event, parse_options);
      engine.process(event, scratch, alerts);
    }
    for (const Alert& alert : alerts) out.push_back(describeAlert(alert));
  };
  std::vector<std::string> expected;
  {
    Engine engine(rules, {});
    feed(engine, 0, lines.size(), expected);
  }

  // The pipeline runs only the first batch, marked for a checkpoint.
  std::vector<std::string> first(lines.begin(), lines.begin() + kBatch);
  VectorSource source(1, "", first);
  MetricsRegistry metrics;
  EngineOptions engine_options;
  engine_options.shards = 3;
  Engine engine(rules, engine_options, &metrics);
  CollectingSink sink;
  PipelineOptions options;
  options.batch_size = kBatch;
  options.max_message_bytes = VectorSource::kCapacity;
  Pipeline pipeline({&source}, nullptr, engine, {&sink}, metrics, options);
  std::string error;
  ASSERT_TRUE(source.start(error));
  EXPECT_FALSE(pipeline.takeCheckpoint().has_value());
  pipeline.requestCheckpoint();
  pipeline.run();
  std::optional<std::string> file = pipeline.takeCheckpoint();
  ASSERT_TRUE(file.has_value());
  EXPECT_FALSE(pipeline.takeCheckpoint().has_value());

  std::vector<std::string> seen;
  for (const Alert& alert : sink.alerts) seen.push_back(describeAlert(alert));
  Engine restored(rules, engine_options);
  ASSERT_TRUE(restored.restore(*file).ok());
  feed(restored, kBatch, lines.size(), seen);
  std::sort(expected.begin(), expected.end());
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, expected);
}

// End to end: two sources through parse, intel, detection and two correlation shards.
TEST(PipelineTest, AlertsAndCounters) {
  intel::IndicatorSetBuilder builder;
  ASSERT_TRUE(builder.addListText("blocklist", "192.0.2.50\n", "test").ok());
  absl::StatusOr<std::shared_ptr<const intel::IndicatorSet>> set = builder.build();
  ASSERT_TRUE(set.ok()) << set.status();

  std::vector<std::string> first;
  for (int second = 0; second < 5; ++second) first.push_back(sshdLine(second, "192.0.2.50"));
  first.push_back("not a syslog line at all");
  std::vector<std::string> second_lines = {sshdLine(10, "198.51.100.7"),
                                           sshdLine(11, "198.51.100.7")};
  VectorSource a(1, "t1", first);
  VectorSource b(2, "t2", second_lines);

  MetricsRegistry metrics;
  EngineOptions engine_options;
  engine_options.shards = 2;
  Engine engine(testing::loadRuleSet(kRules), engine_options, &metrics);
  CollectingSink sink;
  PipelineOptions options;
  options.batch_size = 3;
  options.batches = 4;
  options.max_message_bytes = VectorSource::kCapacity;
  Pipeline pipeline({&a, &b}, *set, engine, {&sink}, metrics, options);

  std::string error;
  ASSERT_TRUE(a.start(error));
  ASSERT_TRUE(b.start(error));
  pipeline.run();

  EXPECT_EQ(metrics.sum("vigil_pipeline_events_total"), 8u);
  EXPECT_EQ(metrics.sum("vigil_events_parsed_total") + metrics.sum("vigil_parse_errors_total"), 8u);
  EXPECT_EQ(metrics.sum("vigil_indicator_hits_total"), 5u);
  EXPECT_EQ(metrics.sum("vigil_detection_matches_total", {{"rule", "ssh-failed"}}), 7u);
  EXPECT_EQ(metrics.sum("vigil_detection_matches_total", {{"rule", "blocklisted"}}), 5u);
  EXPECT_EQ(metrics.sum("vigil_alerts_total", {{"rule", "ssh-brute"}}), 1u);
  EXPECT_EQ(metrics.sum("vigil_alerts_total", {{"rule", "ssh-failed"}}), 0u);
  EXPECT_EQ(metrics.sum("vigil_alerts_delivered_total"), 6u);
  // Every hit and alert comes from source a, so all count under its tenant.
  EXPECT_EQ(metrics.sum("vigil_indicator_hits_total", {{"tenant", "t1"}}), 5u);
  EXPECT_EQ(metrics.sum("vigil_indicator_hits_total", {{"tenant", "t2"}}), 0u);
  EXPECT_EQ(metrics.sum("vigil_alerts_delivered_total", {{"tenant", "t1"}}), 6u);
  EXPECT_EQ(metrics.sum("vigil_alerts_delivered_total", {{"tenant", "t2"}}), 0u);
  EXPECT_EQ(metrics.sum("vigil_alerts_delivered_total", {{"tenant", "_other"}}), 0u);
  EXPECT_EQ(sink.flushes, 1);

  ASSERT_EQ(sink.alerts.size(), 6u);
  int brute = 0;
  for (const Alert& alert : sink.alerts) {
    EXPECT_EQ(alert.tenant, "t1");
    if (alert.rule_id != "ssh-brute") {
      EXPECT_EQ(alert.rule_id, "blocklisted");
      EXPECT_EQ(alert.indicator_hits.size(), 1u);
      continue;
    }
    ++brute;
    EXPECT_EQ(alert.event_count, 3u);
    EXPECT_EQ(alert.first_event_ns, *parseRfc3339("2024-05-01T10:00:00Z"));
    EXPECT_EQ(alert.last_event_ns, *parseRfc3339("2024-05-01T10:00:02Z"));
    ASSERT_EQ(alert.group.size(), 1u);
    EXPECT_EQ(alert.group[0].second, "192.0.2.50");
    ASSERT_EQ(alert.evidence.size(), 3u);
    EXPECT_EQ(alert.evidence[0], first[0]);
    EXPECT_EQ(alert.indicator_hits.size(), 1u);
  }
  EXPECT_EQ(brute, 1);
}

constexpr char kAliasRules[] = R"(
title: SSH login failed
id: ssh-failed
name: ssh_failed
level: low
detection:
  sel:
    process.name: sshd
    message|contains: 'Failed password'
  condition: sel
---
title: Flow towards the address
id: flow-in
name: flow_in
level: low
detection:
  sel:
    event_type: flow
  condition: sel
---
title: Failed SSH then a flow back to the same address
id: ssh-then-flow
level: high
correlation:
  type: temporal
  rules: [ssh_failed, flow_in]
  aliases:
    ip:
      ssh_failed: source.ip
      flow_in: destination.ip
  group-by: [ip]
  timespan: 60s
)";

// With aliases, one group is built from different fields per rule. Every event of the
// group must reach the same shard, so the temporal rule fires once per address even with
// many shards.
TEST(PipelineTest, AliasesMeetInOneShard) {
  std::vector<std::string> lines;
  const std::vector<std::string> addresses = {"192.0.2.50", "198.51.100.7", "203.0.113.9",
                                              "192.0.2.77", "198.51.100.99", "203.0.113.200"};
  for (size_t n = 0; n < addresses.size(); ++n) {
    lines.push_back(sshdLine(static_cast<int>(n), addresses[n]));
    lines.push_back(R"({"timestamp": "2024-05-01T10:00:30Z", "event_type": "flow", )"
                    R"("src_ip": "10.9.9.9", "src_port": 22, "dest_ip": ")" +
                    addresses[n] + R"(", "dest_port": 52011, "proto": "TCP"})");
  }
  VectorSource source(1, "t1", lines);

  MetricsRegistry metrics;
  EngineOptions engine_options;
  engine_options.shards = 8;
  Engine engine(testing::loadRuleSet(kAliasRules), engine_options, &metrics);
  CollectingSink sink;
  PipelineOptions options;
  options.batch_size = 4;
  options.max_message_bytes = VectorSource::kCapacity;
  Pipeline pipeline({&source}, nullptr, engine, {&sink}, metrics, options);
  std::string error;
  ASSERT_TRUE(source.start(error));
  pipeline.run();

  EXPECT_EQ(metrics.sum("vigil_detection_matches_total", {{"rule", "flow-in"}}), addresses.size());
  EXPECT_EQ(metrics.sum("vigil_detection_matches_total", {{"rule", "ssh-failed"}}),
            addresses.size());
  std::vector<std::string> grouped;
  for (const Alert& alert : sink.alerts) {
    if (alert.rule_id != "ssh-then-flow") continue;
    ASSERT_EQ(alert.group.size(), 1u);
    grouped.push_back(alert.group[0].second);
  }
  std::sort(grouped.begin(), grouped.end());
  std::vector<std::string> expected = addresses;
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(grouped, expected);
}

// Tenant rules move events from two peers and two hosts into their tenants, the alerts
// carry those tenants, and every event is counted under exactly one tenant.
TEST(PipelineTest, TenantRulesAssignTenants) {
  std::vector<std::string> from_acme;
  for (int second = 0; second < 3; ++second) from_acme.push_back(sshdLine(second, "203.0.113.9"));
  std::vector<std::string> from_relay;
  for (int second = 0; second < 3; ++second) {
    from_relay.push_back(sshdLine(second, "203.0.113.9", "web1.globex.example"));
  }
  from_relay.push_back(sshdLine(5, "203.0.113.9", "globex.example.net"));
  VectorSource a(1, "t1", from_acme);
  a.setPeer("192.0.2.10");
  VectorSource b(2, "t2", from_relay);
  b.setPeer("198.51.100.3");

  MetricsRegistry metrics;
  Engine engine(testing::loadRuleSet(kRules), EngineOptions{}, &metrics);
  CollectingSink sink;
  PipelineOptions options;
  options.batch_size = 2;
  options.max_message_bytes = VectorSource::kCapacity;
  TenantRule by_peer;
  by_peer.match = TenantRule::Match::kPeerCidr;
  by_peer.prefix = *parsePrefix("192.0.2.0/24");
  by_peer.tenant = "acme";
  TenantRule by_host;
  by_host.match = TenantRule::Match::kFieldSuffix;
  by_host.field = "host.name";
  by_host.value = ".globex.example";
  by_host.tenant = "globex";
  TenantRule by_vlan;
  by_vlan.match = TenantRule::Match::kVlan;
  by_vlan.vlan = 7;
  by_vlan.tenant = "lab";
  options.tenant_rules = {by_vlan, by_peer, by_host};
  Pipeline pipeline({&a, &b}, nullptr, engine, {&sink}, metrics, options);

  std::string error;
  ASSERT_TRUE(a.start(error));
  ASSERT_TRUE(b.start(error));
  pipeline.run();

  EXPECT_EQ(metrics.sum("vigil_tenant_events_total", {{"tenant", "acme"}}), 3u);
  EXPECT_EQ(metrics.sum("vigil_tenant_events_total", {{"tenant", "globex"}}), 3u);
  EXPECT_EQ(metrics.sum("vigil_tenant_events_total", {{"tenant", "t2"}}), 1u);
  EXPECT_EQ(metrics.sum("vigil_tenant_events_total", {{"tenant", "t1"}}), 0u);
  EXPECT_EQ(metrics.sum("vigil_tenant_events_total", {{"tenant", "lab"}}), 0u);
  EXPECT_EQ(metrics.sum("vigil_tenant_events_total"), 7u);
  // Registered up front, so /metrics shows every configured tenant even at zero.
  std::string text = metrics.renderPrometheus();
  EXPECT_NE(text.find("vigil_tenant_events_total{tenant=\"default\"} 0"), std::string::npos)
      << text;
  EXPECT_NE(text.find("vigil_tenant_events_total{tenant=\"lab\"} 0"), std::string::npos);

  // The same source address in two tenants gives two groups, so two brute-force alerts.
  ASSERT_EQ(sink.alerts.size(), 2u);
  std::vector<std::string> tenants = {sink.alerts[0].tenant, sink.alerts[1].tenant};
  std::sort(tenants.begin(), tenants.end());
  EXPECT_EQ(tenants, (std::vector<std::string>{"acme", "globex"}));
  EXPECT_EQ(metrics.sum("vigil_alerts_delivered_total", {{"tenant", "acme"}}), 1u);
  EXPECT_EQ(metrics.sum("vigil_alerts_delivered_total", {{"tenant", "globex"}}), 1u);
  EXPECT_EQ(metrics.sum("vigil_alerts_delivered_total", {{"tenant", "t2"}}), 0u);
  EXPECT_NE(text.find("vigil_indicator_hits_total{tenant=\"lab\"} 0"), std::string::npos);
  EXPECT_NE(text.find("vigil_alerts_delivered_total{tenant=\"_other\"} 0"), std::string::npos);
}

TenantRule fieldRule(TenantRule::Match match, const char* field, const char* value,
                     const char* tenant) {
  TenantRule rule;
  rule.match = match;
  rule.field = field;
  rule.value = value;
  rule.tenant = tenant;
  return rule;
}

// Runs `lines` from one source of tenant t0 through a pipeline with `rules`. The
// counter vigil_tenant_events_total in `metrics` then shows where each event went.
void runTenantRules(std::vector<std::string> lines, std::vector<TenantRule> rules,
                    MetricsRegistry& metrics) {
  VectorSource source(1, "t0", std::move(lines));
  Engine engine(testing::loadRuleSet(kRules), EngineOptions{}, &metrics);
  CollectingSink sink;
  PipelineOptions options;
  options.max_message_bytes = VectorSource::kCapacity;
  options.tenant_rules = std::move(rules);
  Pipeline pipeline({&source}, nullptr, engine, {&sink}, metrics, options);
  std::string error;
  ASSERT_TRUE(source.start(error)) << error;
  pipeline.run();
}

// assignTenant() reads each field once per event and keeps the value for later rules on
// the same field. So the facility number must survive the formatting of the severity
// number, and a rule on a fifth field, past the cached ones, must still be read.
TEST(PipelineTest, TenantRulesShareFieldValues) {
  using M = TenantRule::Match;
  MetricsRegistry metrics;
  runTenantRules({sshdLine(0, "203.0.113.1", "h.a.example"),
                  sshdLine(1, "203.0.113.2", "h.b.example"), sshdLine(2, "198.51.100.77"),
                  sshdLine(3, "203.0.113.9")},
                 {
                     fieldRule(M::kFieldSuffix, "host.name", ".a.example", "a"),
                     fieldRule(M::kFieldEquals, "log.syslog.facility.code", "9", "never"),
                     fieldRule(M::kFieldEquals, "log.syslog.severity.code", "9", "never"),
                     fieldRule(M::kFieldEquals, "process.pid", "1", "never"),
                     fieldRule(M::kFieldEquals, "source.ip", "198.51.100.77", "src"),
                     fieldRule(M::kFieldSuffix, "host.name", ".b.example", "b"),
                     fieldRule(M::kFieldEquals, "log.syslog.facility.code", "4", "fac"),
                 },
                 metrics);

  for (const char* tenant : {"a", "b", "src", "fac"}) {
    EXPECT_EQ(metrics.sum("vigil_tenant_events_total", {{"tenant", tenant}}), 1u) << tenant;
  }
  EXPECT_EQ(metrics.sum("vigil_tenant_events_total", {{"tenant", "never"}}), 0u);
  EXPECT_EQ(metrics.sum("vigil_tenant_events_total", {{"tenant", "t0"}}), 0u);
}

// Consecutive suffix rules on one field are matched through one table, and the first
// rule in the configuration still wins: ".example" before ".b.example", and a duplicate
// suffix never takes the event from the rule above it.
TEST(PipelineTest, TenantRuleRunsKeepRuleOrder) {
  using M = TenantRule::Match;
  MetricsRegistry metrics;
  runTenantRules({sshdLine(0, "203.0.113.1", "h.b.example"),
                  sshdLine(1, "203.0.113.2", "h.c.example"),
                  sshdLine(2, "198.51.100.77", "zzz"), sshdLine(3, "203.0.113.4", "h.c.test"),
                  sshdLine(4, "203.0.113.5", "other")},
                 {
                     fieldRule(M::kFieldSuffix, "host.name", ".c.test", "t"),
                     fieldRule(M::kFieldSuffix, "host.name", ".example", "wide"),
                     fieldRule(M::kFieldSuffix, "host.name", ".b.example", "b"),
                     fieldRule(M::kFieldSuffix, "host.name", ".c.test", "dup"),
                     fieldRule(M::kFieldEquals, "source.ip", "198.51.100.77", "src"),
                     fieldRule(M::kFieldSuffix, "host.name", "zzz", "z"),
                 },
                 metrics);

  EXPECT_EQ(metrics.sum("vigil_tenant_events_total", {{"tenant", "wide"}}), 2u);
  EXPECT_EQ(metrics.sum("vigil_tenant_events_total", {{"tenant", "src"}}), 1u);
  EXPECT_EQ(metrics.sum("vigil_tenant_events_total", {{"tenant", "t"}}), 1u);
  EXPECT_EQ(metrics.sum("vigil_tenant_events_total", {{"tenant", "t0"}}), 1u);
  for (const char* tenant : {"b", "dup", "z"}) {
    EXPECT_EQ(metrics.sum("vigil_tenant_events_total", {{"tenant", tenant}}), 0u) << tenant;
  }
}

// requestStop() ends run() even while a source never finishes.
TEST(PipelineTest, StopEndsUnfinishedSource) {
  VectorSource idle(1, "", {});
  MetricsRegistry metrics;
  Engine engine(testing::loadRuleSet(kRules), {}, &metrics);
  CollectingSink sink;
  Pipeline pipeline({&idle}, nullptr, engine, {&sink}, metrics);
  // The source is never started, so finished() stays false.
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    pipeline.requestStop();
  });
  pipeline.run();
  stopper.join();
  EXPECT_EQ(sink.flushes, 1);
  EXPECT_TRUE(sink.alerts.empty());
}

// A source that publishes while the input stage sleeps on empty rings ends the sleep: the
// sleep here would last 60 s, and the event must be counted long before that.
TEST(PipelineTest, PublishWakesSleepingInput) {
  VectorSource source(1, "", {sshdLine(0, "192.0.2.50")});
  MetricsRegistry metrics;
  Engine engine(testing::loadRuleSet(kRules), EngineOptions{}, &metrics);
  CollectingSink sink;
  PipelineOptions options;
  options.batches = 2;
  options.max_message_bytes = VectorSource::kCapacity;
  options.idle_min = std::chrono::seconds(60);
  options.idle_max = std::chrono::seconds(60);
  Pipeline pipeline({&source}, nullptr, engine, {&sink}, metrics, options);
  std::thread runner([&] { pipeline.run(); });
  // Gives the input stage time to find the ring empty and fall asleep. If it has not by
  // then, the event is taken without a sleep and the test still holds.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  std::string error;
  ASSERT_TRUE(source.start(error)) << error;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (metrics.sum("vigil_pipeline_events_total") == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(metrics.sum("vigil_pipeline_events_total"), 1u);
  pipeline.requestStop();  // also ends a sleep, so run() returns at once
  runner.join();
  EXPECT_EQ(metrics.sum("vigil_detection_matches_total", {{"rule", "ssh-failed"}}), 1u);
}

}  // namespace
}  // namespace vigil::correlate

// Rule reloads while the pipeline runs: window state of unchanged rules carries over to
// the new engine, changed rules start empty, and no batch mixes two rule sets.
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/time.h"
#include "correlate/engine_slot.h"
#include "correlate/pipeline.h"
#include "correlate/test_events.h"
#include "dataplane/parser.h"
#include "gtest/gtest.h"

namespace vigil::correlate {
namespace {

// A source the test feeds line by line while the pipeline runs.
class PushSource final : public dataplane::Source {
 public:
  PushSource()
      : ring_(64, [] { return std::make_unique<dataplane::RawMessage>(kCapacity); }) {}

  // Publishes one line, waiting while the ring is full.
  void push(const std::string& line) {
    dataplane::RawMessage* slot = nullptr;
    while ((slot = ring_.tryClaim()) == nullptr) std::this_thread::yield();
    slot->len = std::min(line.size(), kCapacity);
    std::memcpy(slot->data.get(), line.data(), slot->len);
    slot->receive_ns = *parseRfc3339("2024-05-01T10:00:00Z");
    slot->source_id = 1;
    ring_.publish();
  }
  void finish() { finished_.store(true); }

  bool start(std::string&) override { return true; }
  void stop() override {}
  bool finished() const override { return finished_.load(); }
  const std::string& name() const override { return name_; }
  uint16_t id() const override { return 1; }
  dataplane::Format format() const override { return dataplane::Format::kAuto; }
  const std::string& tenant() const override { return tenant_; }
  dataplane::RawRing& ring() override { return ring_; }

  static constexpr size_t kCapacity = 512;

 private:
  std::string name_ = "push";
  std::string tenant_ = "t1";
  dataplane::RawRing ring_;
  std::atomic<bool> finished_{false};
};

// Keeps every alert; called from the pipeline's deliver stage only.
class Sink final : public AlertSink {
 public:
  void onAlert(const Alert& alert) override {
    std::lock_guard<std::mutex> lock(mutex);
    alerts.push_back(alert);
  }
  std::vector<Alert> taken() {
    std::lock_guard<std::mutex> lock(mutex);
    return alerts;
  }
  std::mutex mutex;
  std::vector<Alert> alerts;
};

std::string failedLine(int second, const std::string& ip) {
  char line[300];
  std::snprintf(line, sizeof(line),
                "<38>1 2024-05-01T10:%02d:%02dZ host1 sshd 411 - - Failed password for alice "
                "from %s port 52011 ssh2",
                second / 60, second % 60, ip.c_str());
  return line;
}

// A count of five failures, and a detection rule of its own whose title names the
// version (rules referenced by a correlation raise no alerts of their own).
std::string rules(int version, const std::string& timespan = "1h", int threshold = 5) {
  return R"(title: SSH login failed
id: ssh-failed
name: ssh_failed
level: low
detection:
  sel:
    process.name: sshd
    message|contains: 'Failed password'
  condition: sel
---
title: Failed v)" + std::to_string(version) + R"(
id: ssh-failed-alert
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
  timespan: )" + timespan + R"(
  condition: {gte: )" + std::to_string(threshold) + "}\n";
}

// With `previous`, the engine shares the window tables of unchanged rules with it, as
// RuleReloader builds engines.
std::shared_ptr<Engine> engine(const std::string& yaml, uint64_t version, MetricsRegistry& metrics,
                               std::shared_ptr<std::atomic<uint64_t>> sequence = nullptr,
                               const Engine* previous = nullptr) {
  EngineOptions options;
  options.shards = 3;
  options.rules_version = version;
  options.alert_sequence = std::move(sequence);
  return std::make_shared<Engine>(testing::loadRuleSet(yaml), options, &metrics, previous);
}

// Waits until the pipeline has delivered `events` events.
void waitDone(MetricsRegistry& metrics, uint64_t events) {
  for (int i = 0; i < 5000 && metrics.sum("vigil_pipeline_events_done_total") < events; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(metrics.sum("vigil_pipeline_events_done_total"), events);
}

std::vector<Alert> byRule(const std::vector<Alert>& alerts, const std::string& rule_id) {
  std::vector<Alert> out;
  for (const Alert& alert : alerts) {
    if (alert.rule_id == rule_id) out.push_back(alert);
  }
  return out;
}

struct Harness {
  explicit Harness(std::shared_ptr<Engine> first) : slot(std::move(first)) {
    PipelineOptions options;
    options.batch_size = 4;
    pipeline = std::make_unique<Pipeline>(std::vector<dataplane::Source*>{&source},
                                          static_cast<intel::SnapshotStore*>(nullptr), &slot,
                                          std::vector<AlertSink*>{&sink}, metrics, options);
    thread = std::thread([this] { pipeline->run(); });
  }
  void finish() {
    source.finish();
    thread.join();
  }
  MetricsRegistry metrics;
  PushSource source;
  Sink sink;
  EngineSlot slot;
  std::unique_ptr<Pipeline> pipeline;
  std::thread thread;
};

TEST(RuleReloadTest, UnchangedRuleKeepsWindow) {
  MetricsRegistry engine_metrics;
  Harness h(engine(rules(1), 1, engine_metrics));
  for (int i = 0; i < 3; ++i) h.source.push(failedLine(i, "192.0.2.7"));
  waitDone(h.metrics, 3);

  // Version 2 changes another rule's title only, so the count keeps its window.
  ASSERT_TRUE(h.slot.publish(engine(rules(2), 2, engine_metrics)).ok());
  for (int i = 3; i < 5; ++i) h.source.push(failedLine(i, "192.0.2.7"));
  h.finish();

  std::vector<Alert> brute = byRule(h.sink.taken(), "ssh-brute");
  ASSERT_EQ(brute.size(), 1u);
  EXPECT_EQ(brute[0].rules_version, 2u);
  EXPECT_EQ(brute[0].event_count, 5u);
  EXPECT_EQ(h.metrics.sum("vigil_rules_reload_groups_total", {{"outcome", "kept"}}), 1u);
  EXPECT_EQ(h.metrics.sum("vigil_rules_reload_groups_total", {{"outcome", "dropped"}}), 0u);
}

TEST(RuleReloadTest, ChangedRuleStartsEmpty) {
  MetricsRegistry engine_metrics;
  Harness h(engine(rules(1), 1, engine_metrics));
  for (int i = 0; i < 3; ++i) h.source.push(failedLine(i, "192.0.2.7"));
  waitDone(h.metrics, 3);

  // A new timespan changes the definition hash: the three counted events are dropped.
  ASSERT_TRUE(h.slot.publish(engine(rules(2, "2h"), 2, engine_metrics)).ok());
  for (int i = 3; i < 5; ++i) h.source.push(failedLine(i, "192.0.2.7"));
  waitDone(h.metrics, 5);
  EXPECT_TRUE(byRule(h.sink.taken(), "ssh-brute").empty());

  // Three more make five since the reload.
  for (int i = 5; i < 8; ++i) h.source.push(failedLine(i, "192.0.2.7"));
  h.finish();
  std::vector<Alert> brute = byRule(h.sink.taken(), "ssh-brute");
  ASSERT_EQ(brute.size(), 1u);
  EXPECT_EQ(brute[0].event_count, 5u);
  EXPECT_EQ(h.metrics.sum("vigil_rules_reload_groups_total", {{"outcome", "dropped"}}), 1u);
  EXPECT_EQ(h.metrics.sum("vigil_rules_reload_groups_total", {{"outcome", "kept"}}), 0u);
}

TEST(RuleReloadTest, RemovedRuleDropsState) {
  MetricsRegistry engine_metrics;
  Harness h(engine(rules(1), 1, engine_metrics));
  for (int i = 0; i < 3; ++i) h.source.push(failedLine(i, "192.0.2.7"));
  waitDone(h.metrics, 3);
  std::string detection_only = rules(2).substr(0, rules(2).rfind("---"));
  ASSERT_TRUE(h.slot.publish(engine(detection_only, 2, engine_metrics)).ok());
  h.source.push(failedLine(4, "192.0.2.7"));
  h.finish();
  EXPECT_EQ(h.metrics.sum("vigil_rules_reload_groups_total", {{"outcome", "dropped"}}), 1u);
  EXPECT_TRUE(byRule(h.sink.taken(), "ssh-brute").empty());
}

TEST(RuleReloadTest, OtherShardCountRejected) {
  MetricsRegistry metrics;
  EngineSlot slot(engine(rules(1), 1, metrics));
  EngineOptions options;
  options.shards = 1;
  auto other = std::make_shared<Engine>(testing::loadRuleSet(rules(2)), options, &metrics);
  absl::Status status = slot.publish(other);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(slot.generation(), 0u);
  EXPECT_EQ(slot.current()->options().rules_version, 1u);
}

// Publishes new engines as fast as they compile while events flow. Every alert must come
// from one rule set: the detection alert's title names the version of the engine that
// raised it, and versions only grow in delivery order. The brute-force count never
// changes, so it must fire once per ten events of each address, as without reloads.
// With `share_tables`, each engine shares the count's window tables with the one
// published before it, and the pipeline may skip engines that no batch entered on.
void reloadUnderLoad(bool share_tables) {
  MetricsRegistry engine_metrics;
  auto sequence = std::make_shared<std::atomic<uint64_t>>(0);
  Harness h(engine(rules(1, "1h", 10), 1, engine_metrics, sequence));
  std::atomic<bool> done{false};
  std::atomic<int> published{1};
  std::thread reloader([&] {
    for (int v = 2; !done.load(); ++v) {
      std::shared_ptr<Engine> previous = share_tables ? h.slot.current() : nullptr;
      ASSERT_TRUE(h.slot
                      .publish(engine(rules(v, "1h", 10), v, engine_metrics, sequence,
                                      previous.get()))
                      .ok());
      published.store(v);
    }
  });
  const std::vector<std::string> ips = {"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"};
  constexpr int kEventsPerIp = 600;
  for (int i = 0; i < kEventsPerIp; ++i) {
    for (const std::string& ip : ips) h.source.push(failedLine(i % 3600, ip));
    // Spread the events over enough time for several engines to compile.
    if (i % 10 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  h.finish();
  done.store(true);
  reloader.join();

  std::vector<Alert> alerts = h.sink.taken();
  uint64_t last_version = 0;
  std::set<std::string> ids;
  std::set<uint64_t> versions;
  for (const Alert& alert : alerts) {
    ASSERT_GE(alert.rules_version, last_version) << alert.id;
    last_version = alert.rules_version;
    versions.insert(alert.rules_version);
    EXPECT_TRUE(ids.insert(alert.id).second) << "duplicate alert id " << alert.id;
    if (alert.rule_id == "ssh-failed-alert") {
      ASSERT_EQ(alert.rule_title, "Failed v" + std::to_string(alert.rules_version));
    }
  }
  EXPECT_EQ(byRule(alerts, "ssh-failed-alert").size(), ips.size() * kEventsPerIp);
  EXPECT_EQ(byRule(alerts, "ssh-brute").size(), ips.size() * kEventsPerIp / 10);
  EXPECT_GT(published.load(), 3) << "too few reloads to test anything";
  EXPECT_GT(versions.size(), 2u) << "alerts came from too few versions";
}

TEST(RuleReloadTest, ReloadsUnderLoadNeverMixVersions) { reloadUnderLoad(false); }

TEST(RuleReloadTest, SharedTablesUnderLoadKeepCounts) { reloadUnderLoad(true); }

// An engine built on the one it replaces starts with the unchanged rule's groups in the
// same tables, allocates only for the changed rule, and the gauges count each table once.
TEST(RuleReloadTest, SharedTablesCountedOnce) {
  MetricsRegistry metrics;
  const std::string two_counts = rules(1) + "---\n" + R"(title: Slow brute force
id: ssh-slow
correlation:
  type: event_count
  rules: [ssh_failed]
  group-by: [src_ip]
  timespan: 1d
  condition: {gte: 50}
)";
  std::shared_ptr<Engine> first = engine(two_counts, 1, metrics);
  DetectScratch scratch(first->rules());
  for (int i = 0; i < 3; ++i) {
    Event event(4096);
    const std::string line = failedLine(i, "192.0.2." + std::to_string(i));
    event.raw = event.arena.copy(line);
    dataplane::parseEvent(event, dataplane::ParseOptions{});
    std::vector<Alert> out;
    first->process(event, scratch, out);
  }
  Gauge& keys = metrics.gauge("vigil_correlation_keys", "");
  Gauge& bytes = metrics.gauge("vigil_correlation_state_bytes", "");
  EXPECT_EQ(keys.value(), 6);
  const int64_t one_engine = bytes.value();

  // The slow count changes its threshold: its tables are new, the fast count's shared.
  std::string changed = two_counts;
  changed.replace(changed.rfind("gte: 50"), 7, "gte: 60");
  std::shared_ptr<Engine> second = engine(changed, 2, metrics, nullptr, first.get());
  EXPECT_EQ(second->keyCount(), 3);
  EXPECT_EQ(keys.value(), 6);
  EXPECT_GT(bytes.value(), one_engine);
  EXPECT_LT(bytes.value(), 2 * one_engine);
  // The pipeline's handover then copies nothing for the shared tables and drops the
  // changed rule's groups.
  size_t kept = 0;
  size_t dropped = 0;
  for (uint32_t shard = 0; shard < 3; ++shard) {
    Engine::HandoverSummary summary = second->takeOverShard(shard, *first);
    kept += summary.groups_kept;
    dropped += summary.groups_dropped;
  }
  EXPECT_EQ(kept, 3u);
  EXPECT_EQ(dropped, 3u);
  EXPECT_EQ(second->keyCount(), 3);
  first.reset();
  EXPECT_EQ(keys.value(), 3);
  EXPECT_EQ(bytes.value(), static_cast<int64_t>(second->stateBytes()));
}

}  // namespace
}  // namespace vigil::correlate

// Tenant quotas in the running pipeline: events over the quota are counted and never
// reach detection or correlation, while other tenants are unaffected.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/time.h"
#include "correlate/engine.h"
#include "correlate/pipeline.h"
#include "correlate/test_events.h"

namespace vigil::correlate {
namespace {

constexpr size_t kSlotBytes = 512;

// A finite source that publishes its lines from its own thread, then reports finished().
class LineSource final : public dataplane::Source {
 public:
  LineSource(uint16_t id, std::string tenant, std::vector<std::string> lines)
      : id_(id),
        name_("lines" + std::to_string(id)),
        tenant_(std::move(tenant)),
        lines_(std::move(lines)),
        ring_(8, [] { return std::make_unique<dataplane::RawMessage>(kSlotBytes); }) {}
  ~LineSource() override { stop(); }

  bool start(std::string&) override {
    thread_ = std::thread([this] {
      for (const std::string& line : lines_) {
        dataplane::RawMessage* slot = nullptr;
        while ((slot = ring_.tryClaim()) == nullptr) {
          if (stop_.load()) return;
          std::this_thread::yield();
        }
        slot->len = std::min(line.size(), kSlotBytes);
        std::memcpy(slot->data.get(), line.data(), slot->len);
        slot->receive_ns = *parseRfc3339("2024-05-01T10:00:00Z");
        slot->source_id = id_;
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

 private:
  uint16_t id_;
  std::string name_;
  std::string tenant_;
  std::vector<std::string> lines_;
  dataplane::RawRing ring_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
};

class CollectingSink final : public AlertSink {
 public:
  void onAlert(const Alert& alert) override { alerts.push_back(alert); }
  void flush() override {}
  std::vector<Alert> alerts;
};

// Three failed logins from one address within a minute raise the brute-force alert.
constexpr char kBruteForceRules[] = R"(
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
)";

std::vector<std::string> failedLogins(int count) {
  std::vector<std::string> lines;
  for (int i = 0; i < count; ++i) {
    char line[200];
    std::snprintf(line, sizeof(line),
                  "<38>1 2024-05-01T10:00:%02dZ host1 sshd 411 - - Failed password for alice "
                  "from 203.0.113.9 port 52011 ssh2",
                  i);
    lines.push_back(line);
  }
  return lines;
}

size_t alertsOf(const std::vector<Alert>& alerts, const std::string& tenant,
                const std::string& rule) {
  size_t n = 0;
  for (const Alert& alert : alerts) {
    if (alert.tenant == tenant && alert.rule_id == rule) ++n;
  }
  return n;
}

// A tenant with a burst of 2 gets only 2 of its 5 failed logins correlated, so it raises no
// brute-force alert. The same 5 lines in a tenant without a quota raise one.
TEST(PipelineQuota, OverQuotaEventsNotCorrelated) {
  LineSource limited(1, "limited", failedLogins(5));
  LineSource open(2, "open", failedLogins(5));
  MetricsRegistry metrics;
  Engine engine(testing::loadRuleSet(kBruteForceRules), EngineOptions{}, &metrics);
  CollectingSink sink;
  PipelineOptions options;
  options.batch_size = 2;
  options.max_message_bytes = kSlotBytes;
  options.tenant_quotas = {TenantQuota{"limited", 0.001, 2}};
  Pipeline pipeline({&limited, &open}, nullptr, engine, {&sink}, metrics, options);

  std::string error;
  ASSERT_TRUE(limited.start(error));
  ASSERT_TRUE(open.start(error));
  pipeline.run();

  EXPECT_EQ(alertsOf(sink.alerts, "limited", "ssh-brute"), 0u);
  EXPECT_EQ(alertsOf(sink.alerts, "open", "ssh-brute"), 1u);
  // ssh-failed feeds the correlation, so it raises no alerts of its own.
  EXPECT_EQ(sink.alerts.size(), 1u);

  const Labels limited_flow = {{"source", "lines1"}, {"tenant", "limited"}};
  EXPECT_EQ(metrics.sum("vigil_events_parsed_total", limited_flow), 5u);
  EXPECT_EQ(metrics.sum("vigil_events_delivered_total", limited_flow), 2u);
  EXPECT_EQ(metrics.sum("vigil_events_dropped_total",
                        {{"source", "lines1"}, {"tenant", "limited"}, {"reason", "tenant_quota"}}),
            3u);
  const Labels open_flow = {{"source", "lines2"}, {"tenant", "open"}};
  EXPECT_EQ(metrics.sum("vigil_events_delivered_total", open_flow), 5u);
  EXPECT_EQ(metrics.sum("vigil_events_dropped_total", open_flow), 0u);
  EXPECT_EQ(metrics.sum("vigil_tenant_events_total", {{"tenant", "limited"}}), 5u);
  EXPECT_EQ(metrics.sum("vigil_pipeline_events_done_total"), 10u);
}

}  // namespace
}  // namespace vigil::correlate

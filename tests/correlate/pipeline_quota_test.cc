// Tenant quotas in the running pipeline: events over the quota are counted and never
// reach indicator matching, detection or correlation, while other tenants are
// unaffected. The kept events of each batch are matched in one Snapshot::matchBatch()
// call, which must give each event the hits that Snapshot::match() gives it alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/metrics.h"
#include "common/time.h"
#include "correlate/engine.h"
#include "correlate/pipeline.h"
#include "correlate/test_events.h"
#include "dataplane/parser.h"
#include "intel/builder.h"
#include "intel/snapshot.h"

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

// The admit step adds each batch's events to the flow counters once per flow. Lines of
// three tenants (by host name), some unparseable, through two sources and a quota give
// the same per-flow counts for every batch size.
TEST(PipelineQuota, FlowCountsPerBatchMatchEvents) {
  auto linesOf = [](int source) {
    std::vector<std::string> lines;
    for (int i = 0; i < 97; ++i) {
      if (i % 11 == 0) {
        // A parse error: no host name, so the source's tenant.
        lines.push_back("not a syslog line " + std::to_string(i));
        continue;
      }
      char line[200];
      std::snprintf(line, sizeof(line), "<38>1 2024-05-01T10:%02d:%02dZ h%d.%s app - - - m%d",
                    i / 60, i % 60, source, i % 3 == 0 ? "red.example" : "blue.example", i);
      lines.push_back(line);
    }
    return lines;
  };
  // Per source: 9 parse errors (default tenant), 30 red and 58 blue events.
  for (size_t batch_size : {1, 5, 64}) {
    LineSource first(1, "plain", linesOf(1));
    LineSource second(2, "plain", linesOf(2));
    MetricsRegistry metrics;
    Engine engine(testing::loadRuleSet(kBruteForceRules), EngineOptions{}, &metrics);
    CollectingSink sink;
    PipelineOptions options;
    options.batch_size = batch_size;
    options.max_message_bytes = kSlotBytes;
    TenantRule red;
    red.match = TenantRule::Match::kFieldSuffix;
    red.field = "host.name";
    red.value = ".red.example";
    red.tenant = "red";
    TenantRule blue = red;
    blue.value = ".blue.example";
    blue.tenant = "blue";
    options.tenant_rules = {red, blue};
    options.tenant_quotas = {TenantQuota{"blue", 0.001, 50}};
    Pipeline pipeline({&first, &second}, nullptr, engine, {&sink}, metrics, options);
    std::string error;
    ASSERT_TRUE(first.start(error));
    ASSERT_TRUE(second.start(error));
    pipeline.run();

    for (const char* source : {"lines1", "lines2"}) {
      const Labels red_flow = {{"source", source}, {"tenant", "red"}};
      const Labels blue_flow = {{"source", source}, {"tenant", "blue"}};
      const Labels plain_flow = {{"source", source}, {"tenant", "plain"}};
      EXPECT_EQ(metrics.sum("vigil_events_parsed_total", red_flow), 30u) << batch_size;
      EXPECT_EQ(metrics.sum("vigil_events_delivered_total", red_flow), 30u) << batch_size;
      EXPECT_EQ(metrics.sum("vigil_events_parsed_total", blue_flow), 58u) << batch_size;
      EXPECT_EQ(metrics.sum("vigil_parse_errors_total", plain_flow), 9u) << batch_size;
      EXPECT_EQ(metrics.sum("vigil_events_delivered_total", plain_flow), 9u) << batch_size;
    }
    // The blue quota's burst of 50 is shared by both sources' 116 blue events.
    EXPECT_EQ(metrics.sum("vigil_events_delivered_total", {{"tenant", "blue"}}), 50u);
    EXPECT_EQ(metrics.sum("vigil_events_dropped_total", {{"tenant", "blue"}}), 66u);
    EXPECT_EQ(metrics.sum("vigil_tenant_events_total", {{"tenant", "red"}}), 60u);
    EXPECT_EQ(metrics.sum("vigil_tenant_events_total", {{"tenant", "blue"}}), 116u);
    EXPECT_EQ(metrics.sum("vigil_tenant_events_total", {{"tenant", "plain"}}), 18u);
    EXPECT_EQ(metrics.sum("vigil_tenant_events_total"), 194u);
  }
}

// --- indicator matching of the kept events

constexpr char kEveryEventRule[] = R"(
title: Every numbered event
id: every-event
level: low
detection:
  sel:
    message|contains: 'evt '
  condition: sel
)";

std::shared_ptr<const intel::IndicatorSet> buildSet(const std::string& list,
                                                    const std::string& text) {
  intel::IndicatorSetBuilder builder;
  absl::StatusOr<intel::LoadReport> report = builder.addListText(list, text, list);
  EXPECT_TRUE(report.ok()) << report.status();
  absl::StatusOr<std::shared_ptr<const intel::IndicatorSet>> set = builder.build();
  EXPECT_TRUE(set.ok()) << set.status();
  return *set;
}

// Line `seq` of a source. Some lines hit nothing, and most hit base and delta indicators
// (addresses, parent domains, a URL). The domain shared.example is in both parts, so its
// event gets a base hit and a delta hit for it.
std::string intelLine(const std::string& tag, int seq) {
  std::string line = absl::StrCat("<13>May  1 10:00:00 host1 app: evt ", tag, " ", seq);
  if (seq % 7 == 3) return line + " nothing to see";
  absl::StrAppend(&line, " from 198.51.100.", seq % 9, " asked www.evil", seq % 12,
                  ".example and a", seq % 6, ".example");
  if (seq % 5 == 0) absl::StrAppend(&line, " then shared.example");
  if (seq % 4 == 1) absl::StrAppend(&line, " fetched http://bad.example/p", seq % 3, ".php");
  if (tag == "limited") absl::StrAppend(&line, " via limited.example");
  return line;
}

std::vector<std::string> intelLines(const std::string& tag, int count) {
  std::vector<std::string> lines;
  for (int seq = 0; seq < count; ++seq) lines.push_back(intelLine(tag, seq));
  return lines;
}

// Publishes the same base and delta part into `store`.
void publishIntel(intel::SnapshotStore& store) {
  std::string base;
  for (int i = 0; i < 10; ++i) absl::StrAppend(&base, "evil", i, ".example\n");
  for (int i = 1; i < 6; ++i) absl::StrAppend(&base, "198.51.100.", i, "\n");
  absl::StrAppend(&base, "http://bad.example/p1.php\nshared.example\nlimited.example\n");
  store.publish(buildSet("base", base));
  std::string delta = "a1.example\na4.example\n198.51.100.7\nshared.example\n";
  ASSERT_TRUE(store.publishDelta(buildSet("analyst", delta)).has_value());
}

// The hits of one line as Snapshot::match() gives them to a lone event, in the form of
// Alert::indicator_hits.
std::vector<std::string> matchAlone(const intel::Snapshot& snapshot, std::string_view line,
                                    std::string_view tenant) {
  Event event(4096);
  event.reset();
  event.raw = event.arena.copy(line);
  event.tenant = tenant;
  dataplane::parseEvent(event, dataplane::ParseOptions{});
  snapshot.match(0, event, 1);
  std::vector<std::string> hits;
  for (size_t i = 0; i < event.hit_count; ++i) {
    const IndicatorHit& hit = event.hits[i];
    hits.push_back(std::string(hit.list) + ":" + std::string(hit.indicator) + "@" +
                   std::string(hit.field));
  }
  return hits;
}

// The tag and number of the line that raised `alert` ("open 17").
std::pair<std::string, int> lineOf(const Alert& alert) {
  EXPECT_EQ(alert.evidence.size(), 1u);
  if (alert.evidence.empty()) return {"", -1};
  std::vector<std::string> words = absl::StrSplit(alert.evidence[0], ' ');
  auto it = std::find(words.begin(), words.end(), "evt");
  if (it == words.end() || it + 2 >= words.end()) return {"", -1};
  return {*(it + 1), std::stoi(*(it + 2))};
}

// The pipeline matches the kept events of a batch in one Snapshot::matchBatch() call.
// Each delivered event must carry the hits that Snapshot::match() gives the same line
// alone, with a delta part, and every indicator must count the same sightings. Events
// over their tenant's quota must not be matched: limited.example is in every line of
// the limited source, but only the 2 events within its burst may count a sighting.
TEST(PipelineIntel, BatchMatchEqualsPerEventMatch) {
  constexpr int kOpenLines = 300;
  constexpr int kLimitedLines = 9;
  const std::vector<std::string> open_lines = intelLines("open", kOpenLines);
  const std::vector<std::string> limited_lines = intelLines("limited", kLimitedLines);
  LineSource open(1, "open", open_lines);
  LineSource limited(2, "limited", limited_lines);

  PipelineOptions options;
  options.batch_size = 32;
  options.batches = 2;
  options.max_message_bytes = kSlotBytes;
  options.tenant_quotas = {TenantQuota{"limited", 0.001, 2}};
  intel::SnapshotStore store(options.batches);
  publishIntel(store);
  if (::testing::Test::HasFatalFailure()) return;

  MetricsRegistry metrics;
  EngineOptions engine_options;
  engine_options.shards = 1;
  Engine engine(testing::loadRuleSet(kEveryEventRule), engine_options, &metrics);
  CollectingSink sink;
  Pipeline pipeline({&open, &limited}, &store, engine, {&sink}, metrics, options);
  std::string error;
  ASSERT_TRUE(open.start(error));
  ASSERT_TRUE(limited.start(error));
  pipeline.run();

  // Batches are admitted in parallel, so which 2 limited lines fit the burst depends on
  // the order in which batches reach the quota. The reference uses the delivered ones.
  std::set<int> limited_delivered;
  for (const Alert& alert : sink.alerts) {
    const std::pair<std::string, int> line = lineOf(alert);
    if (line.first == "limited") limited_delivered.insert(line.second);
  }
  ASSERT_EQ(limited_delivered.size(), 2u);

  // The reference: each kept line matched alone by match() on a snapshot of the same
  // parts.
  intel::SnapshotStore reference_store(1);
  publishIntel(reference_store);
  const intel::Snapshot* reference = reference_store.acquire(0);
  ASSERT_NE(reference, nullptr);
  uint64_t reference_hits = 0;
  std::map<std::pair<std::string, int>, std::vector<std::string>> expected;
  for (int seq = 0; seq < kOpenLines; ++seq) {
    expected[{"open", seq}] = matchAlone(*reference, open_lines[seq], "open");
    reference_hits += expected[{"open", seq}].size();
  }
  for (const int seq : limited_delivered) {
    expected[{"limited", seq}] = matchAlone(*reference, limited_lines[seq], "limited");
    reference_hits += expected[{"limited", seq}].size();
  }

  ASSERT_EQ(sink.alerts.size(), expected.size());
  std::set<std::pair<std::string, int>> delivered;
  size_t delta_hits = 0;
  size_t url_hits = 0;
  for (const Alert& alert : sink.alerts) {
    const std::pair<std::string, int> line = lineOf(alert);
    ASSERT_TRUE(expected.count(line) == 1) << "unexpected alert for " << line.first << " "
                                           << line.second;
    EXPECT_TRUE(delivered.insert(line).second) << "line delivered twice: " << line.second;
    EXPECT_EQ(alert.indicator_hits, expected[line])
        << "hits of " << line.first << " " << line.second << " differ";
    for (const std::string& hit : alert.indicator_hits) {
      if (hit.starts_with("analyst:")) ++delta_hits;
      if (hit.starts_with("base:http://")) ++url_hits;
    }
  }
  // The lines hit the delta part and the URL database, so both paths ran.
  EXPECT_GT(delta_hits, 0u);
  EXPECT_GT(url_hits, 0u);

  const intel::Snapshot* snapshot = store.acquire(0);
  ASSERT_NE(snapshot, nullptr);
  ASSERT_EQ(snapshot->size(), reference->size());
  for (uint32_t id = 0; id < snapshot->size(); ++id) {
    EXPECT_EQ(snapshot->hitCount(id), reference->hitCount(id))
        << "sightings of " << snapshot->indicator(id).text << " (id " << id << ")";
  }
  uint32_t limited_id = UINT32_MAX;
  for (uint32_t id = 0; id < snapshot->size(); ++id) {
    if (snapshot->indicator(id).text == "limited.example") limited_id = id;
  }
  ASSERT_NE(limited_id, UINT32_MAX);
  EXPECT_EQ(snapshot->hitCount(limited_id), 2u);
  store.release(0);
  reference_store.release(0);

  EXPECT_EQ(metrics.sum("vigil_indicator_hits_total"), reference_hits);
  EXPECT_EQ(metrics.sum("vigil_events_dropped_total",
                        {{"source", "lines2"}, {"tenant", "limited"}, {"reason", "tenant_quota"}}),
            static_cast<uint64_t>(kLimitedLines - 2));
  EXPECT_EQ(metrics.sum("vigil_pipeline_events_done_total"),
            static_cast<uint64_t>(kOpenLines + kLimitedLines));
}

}  // namespace
}  // namespace vigil::correlate

// Bounded correlation state: the key arena, the per-tenant group limit, the state memory
// gauge, and `suppress` on every correlation type.
#include <cstdio>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "correlate/engine.h"
#include "correlate/internal/key_arena.h"
#include "correlate/test_events.h"
#include "gtest/gtest.h"

namespace vigil::correlate {
namespace {

using testing::fillEvent;
using testing::loadRuleSet;

// Blocks are sized to the key's class, freed blocks are reused by keys of the same
// class, and the bytes read back are the bytes stored.
TEST(KeyArenaTest, ReusesBlocksOfOneClass) {
  internal::KeyArena arena(64);
  uint32_t a = arena.store("short");            // 8-byte class
  uint32_t b = arena.store("a key of 20 bytes..");  // 32-byte class
  EXPECT_EQ(arena.usedBytes(), 8u + 32u);
  EXPECT_EQ(arena.view(a, 5), "short");
  EXPECT_EQ(arena.view(b, 19), "a key of 20 bytes..");
  arena.release(a, 5);
  EXPECT_EQ(arena.usedBytes(), 32u);
  uint32_t c = arena.store("other");
  EXPECT_EQ(c, a);  // the freed 8-byte block
  EXPECT_EQ(arena.view(c, 5), "other");
  EXPECT_EQ(arena.view(b, 19), "a key of 20 bytes..");
  std::string longest(internal::KeyArena::kMaxKeyBytes, 'x');
  uint32_t d = arena.store(longest);
  EXPECT_EQ(arena.view(d, longest.size()), longest);
  EXPECT_EQ(arena.usedBytes(), 8u + 32u + 1024u);
}

// Many keys stored and released in turn keep the arena at its high-water mark.
TEST(KeyArenaTest, ChurnDoesNotGrow) {
  internal::KeyArena arena(0);
  std::vector<uint32_t> offsets;
  for (int i = 0; i < 100; ++i) offsets.push_back(arena.store("key-" + std::to_string(i)));
  const size_t capacity = arena.capacityBytes();
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 100; ++i) {
      std::string key = "key-" + std::to_string(i);
      arena.release(offsets[i], key.size());
      offsets[i] = arena.store(key);
      EXPECT_EQ(arena.view(offsets[i], key.size()), key);
    }
  }
  EXPECT_EQ(arena.capacityBytes(), capacity);
}

constexpr char kCountRule[] = R"(
title: A
name: a
detection: {sel: {rule: a}, condition: sel}
---
title: Corr
id: corr
correlation:
  type: event_count
  rules: [a]
  group-by: [host]
  timespan: 1h
  condition: {gte: 2}
)";

struct Fixture {
  explicit Fixture(const std::string& yaml, EngineOptions options = {})
      : rules(loadRuleSet(yaml)), engine(rules, options, &metrics), scratch(*rules) {}

  std::vector<Alert> feed(int second, const std::string& host, std::string_view tenant,
                          const std::string& rule = "a", const std::string& user = "") {
    char ts[32];
    std::snprintf(ts, sizeof(ts), "2024-05-01T10:%02d:%02dZ", second / 60 % 60, second % 60);
    fillEvent(event, {{"ts", ts}, {"rule", rule}, {"host", host}, {"User", user}}, tenant);
    std::vector<Alert> out;
    engine.process(event, scratch, out);
    std::vector<Alert> correlation;
    for (Alert& alert : out) {
      if (alert.rule_id.rfind("corr", 0) == 0) correlation.push_back(std::move(alert));
    }
    return correlation;
  }

  uint64_t counter(const std::string& name) {
    return metrics.counter(name, "", {{"rule", "corr"}}).value();
  }

  std::shared_ptr<const RuleSet> rules;
  MetricsRegistry metrics;
  Engine engine;
  DetectScratch scratch;
  Event event{1 << 14};
};

// A tenant at its limit evicts its own oldest group; another tenant's groups stay.
TEST(TenantLimitTest, TenantEvictsOwnGroups) {
  EngineOptions options;
  options.max_keys = 16;
  options.max_keys_per_tenant = 4;
  Fixture f(kCountRule, options);
  EXPECT_TRUE(f.feed(0, "quiet", "t2").empty());
  for (int i = 0; i < 40; ++i) {
    EXPECT_TRUE(f.feed(1 + i, "h" + std::to_string(i), "t1").empty()) << i;
  }
  EXPECT_EQ(f.counter("vigil_correlation_tenant_evictions_total"), 36u);
  EXPECT_EQ(f.counter("vigil_correlation_evictions_total"), 0u);
  EXPECT_EQ(f.engine.keyCount(), 5);
  // t2's group survived the flood, so its second event completes the pair.
  EXPECT_EQ(f.feed(50, "quiet", "t2").size(), 1u);
  // t1's newest groups are held, its oldest are gone.
  EXPECT_EQ(f.feed(51, "h39", "t1").size(), 1u);
  EXPECT_TRUE(f.feed(52, "h0", "t1").empty());
}

// Without a tenant limit the table-wide limit evicts the least recently updated group
// of any tenant.
TEST(TenantLimitTest, TableLimitStillApplies) {
  EngineOptions options;
  options.max_keys = 4;
  Fixture f(kCountRule, options);
  EXPECT_TRUE(f.feed(0, "quiet", "t2").empty());
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(f.feed(1 + i, "h" + std::to_string(i), "t1").empty());
  EXPECT_EQ(f.counter("vigil_correlation_evictions_total"), 1u);
  EXPECT_TRUE(f.feed(10, "quiet", "t2").empty());  // evicted, so it starts again
}

// vigil_correlation_state_bytes reports what the tables allocated, and grows with the
// key arena when long keys arrive.
TEST(StateBytesTest, GaugeFollowsArena) {
  EngineOptions options;
  options.max_keys = 64;
  Fixture f(kCountRule, options);
  Gauge& gauge = f.metrics.gauge("vigil_correlation_state_bytes", "");
  EXPECT_EQ(gauge.value(), static_cast<int64_t>(f.engine.stateBytes()));
  const int64_t before = gauge.value();
  for (int i = 0; i < 64; ++i) {
    EXPECT_TRUE(f.feed(i, std::string(500, 'k') + std::to_string(i), "").empty());
  }
  // 64 blocks of 512 bytes, less the 16 bytes per group reserved at start.
  EXPECT_GE(gauge.value(), before + 64 * 512 - 64 * 16);
  EXPECT_EQ(gauge.value(), static_cast<int64_t>(f.engine.stateBytes()));
  std::vector<Engine::StateSize> sizes = f.engine.stateSizes();
  ASSERT_EQ(sizes.size(), 1u);
  EXPECT_EQ(sizes[0].groups, 64u);
  EXPECT_EQ(sizes[0].key_bytes, 64u * 512);
}

// An engine takes its groups and state bytes back out of the shared gauges when it is
// destroyed, so a replacement engine starts the gauges from its own state.
TEST(StateBytesTest, DestructionReturnsGauges) {
  MetricsRegistry metrics;
  auto rules = loadRuleSet(kCountRule);
  {
    Engine engine(rules, {}, &metrics);
    DetectScratch scratch(*rules);
    Event event(1 << 12);
    std::vector<Alert> out;
    for (int i = 0; i < 10; ++i) {
      fillEvent(event, {{"ts", "2024-05-01T10:00:00Z"}, {"rule", "a"},
                        {"host", "h" + std::to_string(i)}});
      engine.process(event, scratch, out);
    }
    EXPECT_EQ(metrics.gauge("vigil_correlation_keys", "").value(), 10);
    EXPECT_GT(metrics.gauge("vigil_correlation_state_bytes", "").value(), 0);
  }
  EXPECT_EQ(metrics.gauge("vigil_correlation_keys", "").value(), 0);
  EXPECT_EQ(metrics.gauge("vigil_correlation_state_bytes", "").value(), 0);
}

// `suppress` keeps its last-alert word apart from the window state of every type: each
// type fires twice in a row, and only the first alert is delivered.
TEST(SuppressTest, EveryCorrelationType) {
  const std::string detections = R"(
title: A
name: a
detection: {sel: {rule: a}, condition: sel}
---
title: B
name: b
detection: {sel: {rule: b}, condition: sel}
)";
  const char* bodies[] = {
      "  type: event_count\n  rules: [a]\n  timespan: 1m\n  condition: {gte: 2}\n",
      "  type: value_count\n  rules: [a]\n  timespan: 1m\n  condition: {field: User, gte: 2}\n",
      "  type: temporal\n  rules: [a, b]\n  timespan: 1m\n",
      "  type: temporal_ordered\n  rules: [a, b]\n  timespan: 1m\n",
  };
  for (const char* body : bodies) {
    Fixture f(detections + "---\ntitle: Corr\nid: corr\nsuppress: 1h\ncorrelation:\n" + body);
    size_t delivered = 0;
    for (int round = 0; round < 2; ++round) {
      const int base = round * 10;
      delivered += f.feed(base, "h", "", "a", "u1").size();
      delivered += f.feed(base + 1, "h", "", "b", "u2").size();
      delivered += f.feed(base + 2, "h", "", "a", "u2").size();
    }
    EXPECT_EQ(delivered, 1u) << body;
    EXPECT_EQ(f.metrics.counter("vigil_alerts_suppressed_total", "",
                                {{"rule", "corr"}, {"kind", "correlation"}})
                  .value(),
              1u)
        << body;
  }
}

}  // namespace
}  // namespace vigil::correlate

// Rule scopes: RuleLoader::setScope() gives rules a tenant, references resolve inside a
// scope, a tenant's rules see only its events, and their window state is kept apart from
// another tenant's rule of the same id in checkpoints.
#include <memory>
#include <string>
#include <vector>

#include "correlate/engine.h"
#include "correlate/rules.h"
#include "gtest/gtest.h"
#include "test_events.h"

namespace vigil::correlate {
namespace {

// A failed-login detection and a count of `threshold` per source address.
std::string countRule(const std::string& id, int threshold) {
  return "title: Failure\nid: " + id + R"(-failed
name: failed
detection:
  sel:
    outcome: failure
  condition: sel
---
title: Count
id: )" + id + R"(
correlation:
  type: event_count
  rules: [failed]
  group-by: [src_ip]
  timespan: 1h
  condition: {gte: )" + std::to_string(threshold) + "}\n";
}

absl::StatusOr<RuleSet> load(const std::vector<std::pair<std::string, std::string>>& scopes) {
  RuleLoader loader;
  for (const auto& [tenant, yaml] : scopes) {
    loader.setScope(tenant, tenant.empty() ? 0 : 5);
    if (absl::Status st = loader.addText(yaml, tenant + ".yml"); !st.ok()) return st;
  }
  return loader.finish();
}

std::vector<Alert> feed(Engine& engine, const std::string& tenant, int second) {
  Event event(4096);
  testing::fillEvent(event,
                     {{"ts", "2026-01-01T00:00:" + std::string(second < 10 ? "0" : "") +
                                 std::to_string(second) + "Z"},
                      {"src_ip", "192.0.2.9"},
                      {"outcome", "failure"}},
                     tenant);
  DetectScratch scratch(engine.rules());
  std::vector<Alert> alerts;
  engine.process(event, scratch, alerts);
  return alerts;
}

TEST(RuleScopeTest, SameIdPerScopeButNotTwiceInOne) {
  EXPECT_TRUE(load({{"", countRule("count", 2)}, {"acme", countRule("count", 2)},
                    {"beta", countRule("count", 2)}})
                  .ok());
  absl::StatusOr<RuleSet> twice = load({{"acme", countRule("count", 2)},
                                        {"acme", countRule("count", 3)}});
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("already used"), std::string::npos) << twice.status();
}

TEST(RuleScopeTest, ReferenceToOtherScopeRejected) {
  const std::string outer = R"(title: Outer
id: outer
correlation:
  type: event_count
  rules: [failed]
  group-by: [src_ip]
  timespan: 1h
  condition: {gte: 2}
)";
  absl::StatusOr<RuleSet> rules = load({{"", countRule("global", 2)}, {"acme", outer}});
  ASSERT_FALSE(rules.ok());
  EXPECT_NE(rules.status().message().find("of tenant acme"), std::string::npos)
      << rules.status();
}

TEST(RuleScopeTest, TenantCorrelationCountsOnlyItsEvents) {
  absl::StatusOr<RuleSet> rules = load({{"acme", countRule("count", 2)}});
  ASSERT_TRUE(rules.ok()) << rules.status();
  Engine engine(std::make_shared<RuleSet>(std::move(*rules)), EngineOptions{});
  EXPECT_TRUE(feed(engine, "acme", 1).empty());
  EXPECT_TRUE(feed(engine, "beta", 2).empty());
  EXPECT_TRUE(feed(engine, "beta", 3).empty());
  std::vector<Alert> alerts = feed(engine, "acme", 4);
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].tenant, "acme");
  EXPECT_EQ(alerts[0].rules_version, 5u);
  EXPECT_EQ(alerts[0].event_count, 2u);

  // A replayed match of the tenant's rule is refused for another tenant's event.
  Event other(4096);
  testing::fillEvent(other, {{"src_ip", "192.0.2.9"}}, "beta");
  std::vector<Alert> out;
  EXPECT_EQ(engine.injectMatch("count-failed", other, out).code(), absl::StatusCode::kNotFound);
}

// Two tenants' rules of the same id keep their own windows through a checkpoint.
TEST(RuleScopeTest, CheckpointKeepsScopesApart) {
  auto rules = [] {
    absl::StatusOr<RuleSet> set =
        load({{"acme", countRule("count", 3)}, {"beta", countRule("count", 2)}});
    EXPECT_TRUE(set.ok()) << set.status();
    return std::make_shared<RuleSet>(std::move(*set));
  };
  Engine before(rules(), EngineOptions{});
  EXPECT_TRUE(feed(before, "acme", 1).empty());
  EXPECT_TRUE(feed(before, "acme", 2).empty());
  EXPECT_TRUE(feed(before, "beta", 3).empty());

  Engine after(rules(), EngineOptions{});
  absl::StatusOr<Engine::RestoreSummary> summary = after.restore(before.checkpoint());
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->rules_restored, 2u);
  EXPECT_EQ(summary->groups, 2u);
  std::vector<Alert> acme = feed(after, "acme", 4);
  ASSERT_EQ(acme.size(), 1u);
  EXPECT_EQ(acme[0].event_count, 3u);
  std::vector<Alert> beta = feed(after, "beta", 5);
  ASSERT_EQ(beta.size(), 1u);
  EXPECT_EQ(beta[0].event_count, 2u);
}

}  // namespace
}  // namespace vigil::correlate

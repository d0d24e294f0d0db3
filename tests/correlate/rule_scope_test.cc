// Rule scopes: RuleLoader::setScope() gives rules a tenant, references resolve inside a
// scope and then among the detection rules for every tenant, a tenant's rules see only
// its events, and their window state is kept apart from another tenant's rule of the
// same id in checkpoints.
#include <memory>
#include <span>
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

// A correlation that counts `ref` three times per source address, with id `id`.
std::string countOf(const std::string& id, const std::string& ref) {
  return "title: Count of " + ref + "\nid: " + id + R"(
correlation:
  type: event_count
  rules:
    - )" + ref + R"(
  group-by: [src_ip]
  timespan: 1h
  condition: {gte: 3}
)";
}

// A detection rule for every tenant on failed logins.
constexpr char kGlobalFailed[] = R"(title: Failure everywhere
id: global-failed
detection:
  sel:
    outcome: failure
  condition: sel
)";

TEST(RuleScopeTest, ReferenceToOtherTenantRejected) {
  // beta's rule is not visible to acme; the error names acme's file, the entry's line,
  // the correlation's id and the reference.
  absl::StatusOr<RuleSet> rules =
      load({{"beta", countRule("beta", 2)}, {"acme", countOf("outer", "beta-failed")}});
  ASSERT_FALSE(rules.ok());
  const std::string message(rules.status().message());
  EXPECT_TRUE(message.starts_with("acme.yml:6: ")) << message;
  EXPECT_NE(message.find("(id outer) of tenant acme"), std::string::npos) << message;
  EXPECT_NE(message.find("'beta-failed'"), std::string::npos) << message;
}

TEST(RuleScopeTest, GlobalCorrelationCannotCountTenantRule) {
  absl::StatusOr<RuleSet> rules =
      load({{"acme", countRule("acme", 2)}, {"", countOf("outer", "acme-failed")}});
  ASSERT_FALSE(rules.ok());
  EXPECT_NE(rules.status().message().find("for every tenant"), std::string::npos)
      << rules.status();
}

TEST(RuleScopeTest, TenantCannotCountGlobalCorrelation) {
  absl::StatusOr<RuleSet> rules =
      load({{"", countRule("shared", 2)}, {"acme", countOf("outer", "shared")}});
  ASSERT_FALSE(rules.ok());
  EXPECT_NE(rules.status().message().find("names a correlation rule for every tenant"),
            std::string::npos)
      << rules.status();
}

// The tenant's own rule of a name comes before the rule for every tenant of that name.
TEST(RuleScopeTest, OwnRuleBeforeGlobalRule) {
  absl::StatusOr<RuleSet> rules = load({{"", kGlobalFailed},
                                        {"acme", countRule("acme", 2)},
                                        {"acme", countOf("outer", "failed")}});
  ASSERT_TRUE(rules.ok()) << rules.status();
  const CorrelationRule& outer = rules->correlations.back();
  ASSERT_EQ(outer.id, "outer");
  EXPECT_EQ(rules->detections[outer.detections[0]].tenant, "acme");
}

// A tenant's correlation over a rule for every tenant counts that tenant's matches only,
// and the rule keeps raising its own alerts for every tenant.
TEST(RuleScopeTest, TenantCorrelationCountsGlobalRule) {
  absl::StatusOr<RuleSet> rules = load({{"", kGlobalFailed},
                                        {"acme", countOf("acme-count", "global-failed")},
                                        {"beta", countOf("beta-count", "global-failed")}});
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_TRUE(rules->detections[0].generates_alerts);
  Engine engine(std::make_shared<RuleSet>(std::move(*rules)), EngineOptions{});

  // Two acme failures, then three of gamma (no correlation) and two of beta.
  for (int second : {1, 2}) EXPECT_EQ(feed(engine, "acme", second).size(), 1u);
  for (int second : {3, 4, 5}) EXPECT_EQ(feed(engine, "gamma", second).size(), 1u);
  for (int second : {6, 7}) EXPECT_EQ(feed(engine, "beta", second).size(), 1u);

  std::vector<Alert> acme = feed(engine, "acme", 8);
  ASSERT_EQ(acme.size(), 2u);
  EXPECT_EQ(acme[0].rule_id, "global-failed");
  EXPECT_EQ(acme[1].rule_id, "acme-count");
  EXPECT_EQ(acme[1].tenant, "acme");
  EXPECT_EQ(acme[1].event_count, 3u);
  std::vector<Alert> beta = feed(engine, "beta", 9);
  ASSERT_EQ(beta.size(), 2u);
  EXPECT_EQ(beta[1].rule_id, "beta-count");
  EXPECT_EQ(beta[1].event_count, 3u);
}

// Each event of the shared rule reaches only its own tenant's correlations, so 50
// tenants' correlations over one rule cost one update per event.
TEST(RuleScopeTest, MatchReachesOnlyItsTenantsCorrelations) {
  std::vector<std::pair<std::string, std::string>> scopes = {{"", kGlobalFailed}};
  for (int t = 0; t < 50; ++t) {
    const std::string tenant = "t" + std::to_string(t);
    scopes.emplace_back(tenant, countOf(tenant + "-count", "global-failed"));
  }
  absl::StatusOr<RuleSet> rules = load(scopes);
  ASSERT_TRUE(rules.ok()) << rules.status();
  Engine engine(std::make_shared<RuleSet>(std::move(*rules)), EngineOptions{});
  EXPECT_EQ(engine.correlationsFor(0).size(), 50u);
  for (const char* tenant : {"t0", "t17", "t49"}) {
    Event event(4096);
    testing::fillEvent(event, {{"outcome", "failure"}}, tenant);
    std::span<const uint32_t> targets = engine.correlationsFor(0, event);
    ASSERT_EQ(targets.size(), 1u) << tenant;
    EXPECT_EQ(engine.rules().correlations[targets[0]].tenant, tenant);
  }
  Event other(4096);
  testing::fillEvent(other, {{"outcome", "failure"}}, "nobody");
  EXPECT_TRUE(engine.correlationsFor(0, other).empty());
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

// Rules pushed per tenant: a tenant's rules see only that tenant's events, pushing one
// tenant's rules keeps the other scopes' windows, and the content routes let a tenant
// administrator push and read only its own tenant's rules, with versions and rollback
// per tenant.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/event.h"
#include "correlate/engine.h"
#include "dataplane/parser.h"
#include "gtest/gtest.h"
#include "mgmt/content_activators.h"
#include "mgmt/content_service.h"
#include "mgmt/content_store.h"
#include "mgmt/internal/router.h"
#include "mgmt/mgmt_test_util.h"
#include "mgmt/rule_reloader.h"

namespace vigil::mgmt {
namespace {

using testing::TempDir;

// A detection rule whose title carries `title`, on failed SSH logins.
std::string detection(const std::string& id, const std::string& title) {
  return "title: " + title + "\nid: " + id + R"(
level: low
detection:
  sel:
    process.name: sshd
    message|contains: 'Failed password'
  condition: sel
)";
}

// Three failed logins from one address within an hour; the detection raises no alerts of
// its own because the correlation references it.
std::string bruteForce(const std::string& id) {
  return "title: SSH failure\nid: " + id + R"(-failed
name: ssh_failed
detection:
  sel:
    process.name: sshd
    message|contains: 'Failed password'
  condition: sel
---
title: SSH brute force
id: )" + id + R"(
level: high
correlation:
  type: event_count
  rules: [ssh_failed]
  group-by: [src_ip]
  timespan: 1h
  condition: {gte: 3}
)";
}

std::string failedLine(int second, const std::string& ip) {
  return "<38>1 2024-05-01T10:00:" + std::string(second < 10 ? "0" : "") +
         std::to_string(second) + "Z host1 sshd 411 - - Failed password for root from " + ip +
         " port 22 ssh2";
}

// Runs one event of `tenant` through the running engine; returns the alerts.
std::vector<correlate::Alert> feed(RuleReloader& rules, const std::string& tenant,
                                   const std::string& line) {
  std::shared_ptr<correlate::Engine> engine = rules.current();
  correlate::DetectScratch scratch(engine->rules());
  Event event(line.size() * 3 + 4096);
  event.raw = event.arena.copy(line);
  event.tenant = event.arena.copy(tenant);
  dataplane::parseEvent(event, dataplane::ParseOptions{});
  std::vector<correlate::Alert> alerts;
  engine->process(event, scratch, alerts);
  return alerts;
}

// Activates `staged` and hands the window state over as the pipeline does between two
// batches.
void activate(RuleReloader& rules, std::shared_ptr<const StagedRules> staged) {
  ASSERT_NE(staged, nullptr);
  std::shared_ptr<correlate::Engine> previous = rules.current();
  ASSERT_TRUE(rules.activate(staged, "test").ok());
  if (previous == nullptr) return;
  for (uint32_t shard = 0; shard < rules.slot()->shards(); ++shard) {
    rules.current()->takeOverShard(shard, *previous);
  }
  rules.current()->takeOverSuppression(*previous);
}

class TenantRulesTest : public ::testing::Test {
 protected:
  TenantRulesTest() : rules_(config(), metrics_) {}

  static DaemonConfig config() {
    DaemonConfig c;
    c.shards = 2;
    return c;
  }

  std::shared_ptr<const StagedRules> stage(const std::string& tenant, const ContentFiles& files,
                                           uint64_t version) {
    problems_.clear();
    return rules_.stage(config(), tenant, files, version, problems_);
  }

  MetricsRegistry metrics_;
  RuleReloader rules_;
  std::vector<ContentProblem> problems_;
};

TEST_F(TenantRulesTest, TenantRuleSeesOnlyItsEvents) {
  activate(rules_, stage("*", {{"g.yml", detection("global-rule", "Global")}}, 1));
  activate(rules_, stage("acme", {{"a.yml", detection("acme-rule", "Acme only")}}, 4));

  std::vector<correlate::Alert> acme = feed(rules_, "acme", failedLine(1, "192.0.2.1"));
  ASSERT_EQ(acme.size(), 2u);
  EXPECT_EQ(acme[0].rule_id, "global-rule");
  EXPECT_EQ(acme[0].rules_version, 1u);
  EXPECT_EQ(acme[1].rule_id, "acme-rule");
  EXPECT_EQ(acme[1].tenant, "acme");
  EXPECT_EQ(acme[1].rules_version, 4u);

  std::vector<correlate::Alert> beta = feed(rules_, "beta", failedLine(2, "192.0.2.1"));
  ASSERT_EQ(beta.size(), 1u);
  EXPECT_EQ(beta[0].rule_id, "global-rule");
  EXPECT_EQ(metrics_.sum("vigil_detection_tenant_skipped_total"), 1u);
  EXPECT_EQ(metrics_.sum("vigil_detection_matches_total",
                         {{"rule", "acme-rule"}, {"tenant", "acme"}}),
            1u);
}

TEST_F(TenantRulesTest, SameIdInTwoTenantsIsTwoRules) {
  activate(rules_, stage("acme", {{"a.yml", detection("shared-id", "Acme title")}}, 1));
  activate(rules_, stage("beta", {{"b.yml", detection("shared-id", "Beta title")}}, 1));
  std::vector<correlate::Alert> acme = feed(rules_, "acme", failedLine(1, "192.0.2.1"));
  ASSERT_EQ(acme.size(), 1u);
  EXPECT_EQ(acme[0].rule_title, "Acme title");
  std::vector<correlate::Alert> beta = feed(rules_, "beta", failedLine(1, "192.0.2.1"));
  ASSERT_EQ(beta.size(), 1u);
  EXPECT_EQ(beta[0].rule_title, "Beta title");
  EXPECT_TRUE(feed(rules_, "gamma", failedLine(1, "192.0.2.1")).empty());
}

TEST_F(TenantRulesTest, PushKeepsOtherScopesWindows) {
  activate(rules_, stage("*", {{"g.yml", bruteForce("global-brute")}}, 1));
  activate(rules_, stage("beta", {{"b.yml", bruteForce("beta-brute")}}, 1));
  // Two failures of beta count in both beta's and the global window.
  EXPECT_TRUE(feed(rules_, "beta", failedLine(1, "198.51.100.7")).empty());
  EXPECT_TRUE(feed(rules_, "beta", failedLine(2, "198.51.100.7")).empty());

  activate(rules_, stage("acme", {{"a.yml", detection("acme-rule", "Acme only")}}, 1));
  EXPECT_EQ(metrics_.sum("vigil_rules_reload_rules_total", {{"outcome", "kept"}}), 3u)
      << "the global and beta correlations of the second activation, then both again";
  std::vector<correlate::Alert> third = feed(rules_, "beta", failedLine(3, "198.51.100.7"));
  ASSERT_EQ(third.size(), 2u) << "both windows kept their two events over acme's push";
  EXPECT_EQ(third[0].rule_id, "global-brute");
  EXPECT_EQ(third[1].rule_id, "beta-brute");
  EXPECT_EQ(third[1].tenant, "beta");
}

// A correlation with id `id` over `ref`: three matches per source address within an
// hour. The `rules:` entry is on line 7.
std::string countOf(const std::string& id, const std::string& ref) {
  return "title: Count of " + ref + "\nid: " + id + R"(
level: high
correlation:
  type: event_count
  rules:
    - )" + ref + R"(
  group-by: [src_ip]
  timespan: 1h
  condition: {gte: 3}
)";
}

TEST_F(TenantRulesTest, TenantCountsGlobalDetection) {
  activate(rules_, stage("*", {{"g.yml", detection("global-rule", "Global")}}, 1));
  activate(rules_, stage("acme", {{"a.yml", countOf("acme-count", "global-rule")}}, 2));
  ASSERT_TRUE(problems_.empty()) << problems_[0].message;
  std::vector<GlobalReference> refs = rules_.globalReferences();
  ASSERT_EQ(refs.size(), 1u);
  EXPECT_EQ(refs[0].tenant, "acme");
  EXPECT_EQ(refs[0].rule, "acme-count");
  EXPECT_EQ(refs[0].file, "a.yml");
  EXPECT_EQ(refs[0].line, 7u);
  EXPECT_EQ(refs[0].reference, "global-rule");

  // beta's failures from the same address do not count in acme's window.
  for (int second = 1; second <= 3; ++second) {
    EXPECT_EQ(feed(rules_, "beta", failedLine(second, "192.0.2.1")).size(), 1u);
  }
  EXPECT_EQ(feed(rules_, "acme", failedLine(4, "192.0.2.1")).size(), 1u);
  EXPECT_EQ(feed(rules_, "acme", failedLine(5, "192.0.2.1")).size(), 1u);
  std::vector<correlate::Alert> third = feed(rules_, "acme", failedLine(6, "192.0.2.1"));
  ASSERT_EQ(third.size(), 2u);
  EXPECT_EQ(third[0].rule_id, "global-rule");
  EXPECT_EQ(third[1].rule_id, "acme-count");
  EXPECT_EQ(third[1].tenant, "acme");
  EXPECT_EQ(third[1].event_count, 3u);
  EXPECT_EQ(third[1].rules_version, 2u);
}

TEST_F(TenantRulesTest, UnknownReferenceNamesIdFileAndLine) {
  activate(rules_, stage("*", {{"g.yml", detection("global-rule", "Global")}}, 1));
  EXPECT_EQ(stage("acme", {{"a.yml", countOf("acme-count", "no-such-rule")}}, 2), nullptr);
  ASSERT_EQ(problems_.size(), 1u);
  EXPECT_EQ(problems_[0].file, "a.yml");
  EXPECT_EQ(problems_[0].line, 7);
  EXPECT_NE(problems_[0].message.find("(id acme-count)"), std::string::npos)
      << problems_[0].message;
  EXPECT_NE(problems_[0].message.find("'no-such-rule'"), std::string::npos)
      << problems_[0].message;
}

// A push for every tenant that drops a rule a tenant counts is rejected, naming the
// tenant's correlation; once the tenant drops the reference the push goes through.
TEST_F(TenantRulesTest, GlobalPushKeepsReferencedRule) {
  activate(rules_, stage("*", {{"g.yml", detection("global-rule", "Global")}}, 1));
  activate(rules_, stage("acme", {{"a.yml", countOf("acme-count", "global-rule")}}, 1));
  const ContentFiles without = {{"g.yml", detection("other-rule", "Other")}};
  EXPECT_EQ(stage("*", without, 2), nullptr);
  ASSERT_EQ(problems_.size(), 1u);
  EXPECT_EQ(problems_[0].file, "a.yml");
  EXPECT_EQ(problems_[0].line, 7);
  EXPECT_NE(problems_[0].message.find("acme-count of tenant acme"), std::string::npos)
      << problems_[0].message;
  EXPECT_NE(problems_[0].message.find("'global-rule'"), std::string::npos)
      << problems_[0].message;
  EXPECT_EQ(feed(rules_, "acme", failedLine(1, "192.0.2.1"))[0].rule_id, "global-rule");

  activate(rules_, stage("acme", {{"a.yml", detection("acme-rule", "Acme")}}, 2));
  activate(rules_, stage("*", without, 2));
  EXPECT_TRUE(rules_.globalReferences().empty());
}

// Deleting a tenant's rules (an empty push) drops their windows and their state memory;
// the other tenant's window carries over.
TEST_F(TenantRulesTest, DeletionDropsStateOfDeletedRules) {
  activate(rules_, stage("acme", {{"a.yml", bruteForce("acme-brute")}}, 1));
  activate(rules_, stage("beta", {{"b.yml", bruteForce("beta-brute")}}, 1));
  EXPECT_TRUE(feed(rules_, "acme", failedLine(1, "198.51.100.7")).empty());
  EXPECT_TRUE(feed(rules_, "beta", failedLine(2, "198.51.100.7")).empty());
  EXPECT_TRUE(feed(rules_, "beta", failedLine(3, "198.51.100.7")).empty());
  Gauge& bytes = metrics_.gauge("vigil_correlation_state_bytes", "");
  Gauge& keys = metrics_.gauge("vigil_correlation_keys", "");
  const int64_t bytes_before = bytes.value();
  ASSERT_GT(bytes_before, 0);
  EXPECT_EQ(keys.value(), 2);

  activate(rules_, stage("acme", {}, 2));
  ASSERT_TRUE(problems_.empty()) << problems_[0].message;
  EXPECT_EQ(rules_.current()->rules().correlations.size(), 1u);
  EXPECT_LT(bytes.value(), bytes_before);
  EXPECT_EQ(keys.value(), 1);
  EXPECT_TRUE(feed(rules_, "acme", failedLine(4, "198.51.100.7")).empty());
  std::vector<correlate::Alert> beta = feed(rules_, "beta", failedLine(5, "198.51.100.7"));
  ASSERT_EQ(beta.size(), 1u) << "beta's window kept its two events over acme's deletion";
  EXPECT_EQ(beta[0].event_count, 3u);

  // The rules for every tenant cannot be emptied.
  EXPECT_EQ(stage("*", {}, 3), nullptr);
  ASSERT_EQ(problems_.size(), 1u);
  EXPECT_NE(problems_[0].message.find("cannot be deleted"), std::string::npos);
}

// One rule's summary as the comparison below needs it; detect_ns and ids differ by run.
std::string describe(const correlate::Alert& alert) {
  std::string out = alert.rule_id + " tenant=" + alert.tenant +
                    " count=" + std::to_string(alert.event_count) +
                    " first=" + std::to_string(alert.first_event_ns) +
                    " last=" + std::to_string(alert.last_event_ns);
  for (const auto& [field, value] : alert.group) out += " " + field + "=" + value;
  return out;
}

// Pushes of other tenants and of unchanged rules between events leave the alerts as an
// uninterrupted run raises them.
TEST_F(TenantRulesTest, PushesKeepAlertsOfUninterruptedRun) {
  struct Step {
    std::string tenant;
    int second;
    std::string ip;
  };
  std::vector<Step> steps;
  for (int second = 1; second <= 40; ++second) {
    static constexpr const char* kTenants[] = {"acme", "beta", "gamma"};
    const char* tenant = kTenants[second % 3];
    steps.push_back({tenant, second, "198.51.100." + std::to_string(second % 4)});
  }
  auto load = [](RuleReloader& rules, uint64_t version) {
    std::vector<ContentProblem> problems;
    activate(rules, rules.stage(config(), "*", {{"g.yml", detection("global-rule", "G")}},
                                version, problems));
    activate(rules, rules.stage(config(), "acme", {{"a.yml", bruteForce("acme-brute")}},
                                version, problems));
    activate(rules, rules.stage(config(), "beta",
                                {{"b.yml", countOf("beta-count", "global-rule")}}, version,
                                problems));
    return problems.empty();
  };

  std::vector<std::string> uninterrupted;
  ASSERT_TRUE(load(rules_, 1));
  for (const Step& step : steps) {
    for (const correlate::Alert& a : feed(rules_, step.tenant, failedLine(step.second, step.ip))) {
      uninterrupted.push_back(describe(a));
    }
  }

  MetricsRegistry metrics;
  RuleReloader pushed(config(), metrics);
  ASSERT_TRUE(load(pushed, 1));
  std::vector<std::string> interrupted;
  for (const Step& step : steps) {
    // Every fifth event: gamma gets a rule set of its own (or a new one), and acme's
    // rules are pushed again unchanged as a new version.
    if (step.second % 5 == 0) {
      std::vector<ContentProblem> problems;
      activate(pushed, pushed.stage(config(), "gamma",
                                    {{"c.yml", bruteForce("gamma-v" + std::to_string(step.second))}},
                                    1, problems));
      activate(pushed, pushed.stage(config(), "acme", {{"a.yml", bruteForce("acme-brute")}},
                                    static_cast<uint64_t>(step.second), problems));
      ASSERT_TRUE(problems.empty()) << problems[0].message;
    }
    for (const correlate::Alert& a : feed(pushed, step.tenant, failedLine(step.second, step.ip))) {
      if (a.tenant == "gamma" && a.rule_id != "global-rule") continue;  // gamma's own rules
      interrupted.push_back(describe(a));
    }
  }
  EXPECT_FALSE(uninterrupted.empty());
  EXPECT_EQ(interrupted, uninterrupted);
}

TEST_F(TenantRulesTest, StaleStageIsRejected) {
  activate(rules_, stage("*", {{"g.yml", detection("global-rule", "Global")}}, 1));
  std::shared_ptr<const StagedRules> acme =
      stage("acme", {{"a.yml", detection("acme-rule", "A")}}, 1);
  activate(rules_, stage("beta", {{"b.yml", detection("beta-rule", "B")}}, 1));
  absl::Status stale = rules_.activate(acme, "test");
  EXPECT_EQ(stale.code(), absl::StatusCode::kFailedPrecondition) << stale;
  EXPECT_EQ(feed(rules_, "beta", failedLine(1, "192.0.2.1")).size(), 2u);
}

// --- routes with the real rules activator ------------------------------------------------

class TenantRuleRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.shards = 1;
    rules_ = std::make_unique<RuleReloader>(config_, metrics_);
    auto store = ContentStore::open(dir_.file("content.db"));
    ASSERT_TRUE(store.ok());
    store_ = std::move(*store);
    service_ = std::make_unique<ContentService>(*store_, metrics_);
    service_->setActivator(ContentKind::kRules,
                           rulesActivator(*rules_, [this] { return config_; }));
    service_->addRoutes([this](const char* method, const char* pattern, ApiHandler handler) {
      router_.add(method, pattern, std::move(handler));
    });
  }

  ApiResponse call(const std::string& method, const std::string& path, const Principal& who,
                   const std::string& body = "",
                   std::multimap<std::string, std::string> query = {}) {
    ApiRequest request;
    request.method = method;
    request.path = path;
    request.body = body;
    request.query = std::move(query);
    request.principal = who;
    return router_.dispatch(request);
  }

  static Principal principal(Role role, std::vector<std::string> tenants = {}) {
    Principal p;
    p.subject = std::string(roleName(role)) + "-token";
    p.token_id = "tok-" + std::string(roleName(role));
    p.role = role;
    p.tenants = std::move(tenants);
    return p;
  }

  static std::string push(const std::string& id, const std::string& title) {
    return nlohmann::json{{"files", {{"r.yml", detection(id, title)}}}}.dump();
  }

  std::vector<std::string> titlesFor(const std::string& tenant) {
    std::vector<std::string> titles;
    for (const correlate::Alert& a : feed(*rules_, tenant, failedLine(1, "192.0.2.1"))) {
      titles.push_back(a.rule_title);
    }
    return titles;
  }

  TempDir dir_;
  DaemonConfig config_;
  MetricsRegistry metrics_;
  std::unique_ptr<RuleReloader> rules_;
  std::unique_ptr<ContentStore> store_;
  std::unique_ptr<ContentService> service_;
  internal::Router router_;
};

TEST_F(TenantRuleRoutesTest, TenantAdminOwnTenantOnly) {
  const Principal admin = principal(Role::kAdmin);
  const Principal acme_admin = principal(Role::kTenantAdmin, {"acme"});
  const Principal beta_admin = principal(Role::kTenantAdmin, {"beta"});
  ASSERT_EQ(call("POST", "/api/v1/content/rules", admin, push("g", "Global v1")).status, 201);

  ApiResponse own = call("POST", "/api/v1/content/rules", acme_admin, push("a", "Acme v1"),
                         {{"tenant", "acme"}});
  ASSERT_EQ(own.status, 201) << own.body;
  EXPECT_EQ(nlohmann::json::parse(own.body)["tenant"], "acme");
  EXPECT_EQ(nlohmann::json::parse(own.body)["version"], 1);

  // Another tenant's rules: no push, no list, no version, no rollback.
  EXPECT_EQ(call("POST", "/api/v1/content/rules", beta_admin, push("x", "Beta into acme"),
                 {{"tenant", "acme"}})
                .status,
            403);
  EXPECT_EQ(call("GET", "/api/v1/content/rules/versions", beta_admin, "", {{"tenant", "acme"}})
                .status,
            403);
  EXPECT_EQ(call("GET", "/api/v1/content/rules/versions/1", beta_admin, "", {{"tenant", "acme"}})
                .status,
            403);
  EXPECT_EQ(call("POST", "/api/v1/content/rules/versions/1/activate", beta_admin, "",
                 {{"tenant", "acme"}})
                .status,
            403);
  // The rules for every tenant: readable by all, changed only by the admin role.
  EXPECT_EQ(call("POST", "/api/v1/content/rules", acme_admin, push("g2", "Global by acme"))
                .status,
            403);
  EXPECT_EQ(call("GET", "/api/v1/content/rules/versions", beta_admin).status, 200);
  // An analyst of the tenant reads but does not push.
  EXPECT_EQ(call("GET", "/api/v1/content/rules/versions", principal(Role::kAnalyst, {"acme"}), "",
                 {{"tenant", "acme"}})
                .status,
            200);
  EXPECT_EQ(call("POST", "/api/v1/content/rules", principal(Role::kAnalyst, {"acme"}),
                 push("y", "By analyst"), {{"tenant", "acme"}})
                .status,
            403);
  // A tenant name that cannot exist is a 400 naming the value.
  ApiResponse bad = call("POST", "/api/v1/content/rules", admin, push("z", "Z"),
                         {{"tenant", "no/such"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("no/such"), std::string::npos) << bad.body;

  EXPECT_EQ(titlesFor("acme"), (std::vector<std::string>{"Global v1", "Acme v1"}));
  EXPECT_EQ(titlesFor("beta"), (std::vector<std::string>{"Global v1"}));
}

TEST_F(TenantRuleRoutesTest, VersionsAndRollbackPerTenant) {
  const Principal admin = principal(Role::kAdmin);
  const Principal acme_admin = principal(Role::kTenantAdmin, {"acme"});
  const Principal beta_admin = principal(Role::kTenantAdmin, {"beta"});
  ASSERT_EQ(call("POST", "/api/v1/content/rules", admin, push("g", "Global v1")).status, 201);
  ASSERT_EQ(call("POST", "/api/v1/content/rules", acme_admin, push("a", "Acme v1"),
                 {{"tenant", "acme"}})
                .status,
            201);
  ASSERT_EQ(call("POST", "/api/v1/content/rules", acme_admin, push("a", "Acme v2"),
                 {{"tenant", "acme"}})
                .status,
            201);
  ASSERT_EQ(call("POST", "/api/v1/content/rules", beta_admin, push("b", "Beta v1"),
                 {{"tenant", "beta"}})
                .status,
            201);

  ApiResponse list =
      call("GET", "/api/v1/content/rules/versions", acme_admin, "", {{"tenant", "acme"}});
  ASSERT_EQ(list.status, 200);
  nlohmann::json versions = nlohmann::json::parse(list.body)["versions"];
  ASSERT_EQ(versions.size(), 2u) << list.body;
  EXPECT_EQ(versions[0]["version"], 2);
  EXPECT_EQ(versions[0]["active"], true);
  EXPECT_EQ(versions[1]["active"], false);
  ApiResponse global = call("GET", "/api/v1/content/rules/versions", acme_admin);
  ASSERT_EQ(global.status, 200);
  EXPECT_EQ(nlohmann::json::parse(global.body)["versions"].size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(global.body)["tenant"], "*");

  EXPECT_EQ(titlesFor("acme"), (std::vector<std::string>{"Global v1", "Acme v2"}));
  ApiResponse rollback = call("POST", "/api/v1/content/rules/versions/1/activate", acme_admin,
                              "", {{"tenant", "acme"}});
  ASSERT_EQ(rollback.status, 200) << rollback.body;
  EXPECT_EQ(titlesFor("acme"), (std::vector<std::string>{"Global v1", "Acme v1"}));
  EXPECT_EQ(titlesFor("beta"), (std::vector<std::string>{"Global v1", "Beta v1"}));
  std::vector<correlate::Alert> alerts = feed(*rules_, "acme", failedLine(1, "192.0.2.1"));
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_EQ(alerts[1].rules_version, 1u);

  // A dry run of acme's rules gives lines without a tenant to acme.
  ApiResponse dry = call(
      "POST", "/api/v1/content/rules", acme_admin,
      nlohmann::json{{"files", {{"r.yml", detection("a", "Acme dry")}}},
                     {"events",
                      {failedLine(1, "192.0.2.1"),
                       {{"raw", failedLine(2, "192.0.2.1")}, {"tenant", "beta"}}}}}
          .dump(),
      {{"tenant", "acme"}, {"dry_run", "true"}});
  ASSERT_EQ(dry.status, 200) << dry.body;
  nlohmann::json dry_alerts = nlohmann::json::parse(dry.body)["result"]["alerts"];
  ASSERT_EQ(dry_alerts.size(), 1u) << dry.body;
  EXPECT_EQ(dry_alerts[0]["tenant"], "acme");
}

TEST_F(TenantRuleRoutesTest, DeleteRulesAndRollBack) {
  const Principal admin = principal(Role::kAdmin);
  const Principal acme_admin = principal(Role::kTenantAdmin, {"acme"});
  ASSERT_EQ(call("POST", "/api/v1/content/rules", admin, push("g", "Global v1")).status, 201);
  // Two files: a detection and a count over it, and a second detection.
  const std::string acme_rules =
      nlohmann::json{{"files",
                      {{"a.yml", bruteForce("acme-brute")},
                       {"b.yml", detection("acme-extra", "Acme extra")}}}}
          .dump();
  ASSERT_EQ(call("POST", "/api/v1/content/rules", acme_admin, acme_rules, {{"tenant", "acme"}})
                .status,
            201);
  EXPECT_EQ(titlesFor("acme"), (std::vector<std::string>{"Global v1", "Acme extra"}));

  // Roles: an analyst and another tenant's admin may not delete acme's rules.
  EXPECT_EQ(call("DELETE", "/api/v1/content/rules", principal(Role::kAnalyst, {"acme"}), "",
                 {{"tenant", "acme"}})
                .status,
            403);
  EXPECT_EQ(call("DELETE", "/api/v1/content/rules/items/acme-extra",
                 principal(Role::kTenantAdmin, {"beta"}), "", {{"tenant", "acme"}})
                .status,
            403);

  // The detection that acme-brute counts cannot go alone: 422 names the correlation.
  ApiResponse referenced = call("DELETE", "/api/v1/content/rules/items/acme-brute-failed",
                                acme_admin, "", {{"tenant", "acme"}});
  EXPECT_EQ(referenced.status, 422) << referenced.body;
  EXPECT_NE(referenced.body.find("a.yml"), std::string::npos) << referenced.body;
  EXPECT_NE(referenced.body.find("acme-brute"), std::string::npos) << referenced.body;

  ApiResponse one = call("DELETE", "/api/v1/content/rules/items/acme-extra", acme_admin, "",
                         {{"tenant", "acme"}});
  ASSERT_EQ(one.status, 200) << one.body;
  nlohmann::json one_body = nlohmann::json::parse(one.body);
  EXPECT_EQ(one_body["deleted"], "acme-extra");
  EXPECT_EQ(one_body["version"], 2);
  EXPECT_EQ(one.audit_target, "rules tenant=acme version=2 deleted=acme-extra");
  EXPECT_EQ(one.audit_tenants, std::vector<std::string>{"acme"});
  EXPECT_EQ(titlesFor("acme"), (std::vector<std::string>{"Global v1"}));
  ApiResponse v2 = call("GET", "/api/v1/content/rules/versions/2", acme_admin, "",
                        {{"tenant", "acme"}});
  ASSERT_EQ(v2.status, 200);
  EXPECT_EQ(nlohmann::json::parse(v2.body)["files"].size(), 1u) << v2.body;
  EXPECT_EQ(call("DELETE", "/api/v1/content/rules/items/acme-extra", acme_admin, "",
                 {{"tenant", "acme"}})
                .status,
            404);

  ApiResponse all = call("DELETE", "/api/v1/content/rules", acme_admin, "", {{"tenant", "acme"}});
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(nlohmann::json::parse(all.body)["deleted"], "all");
  EXPECT_EQ(rules_->current()->rules().correlations.size(), 0u);
  ApiResponse again =
      call("DELETE", "/api/v1/content/rules", acme_admin, "", {{"tenant", "acme"}});
  EXPECT_EQ(again.status, 404) << again.body;
  EXPECT_NE(again.body.find("is a deletion"), std::string::npos) << again.body;

  // The rules for every tenant are not deleted as a whole.
  ApiResponse global = call("DELETE", "/api/v1/content/rules", admin);
  EXPECT_EQ(global.status, 400) << global.body;

  // Rolling back to version 1 brings both rules back.
  ASSERT_EQ(call("POST", "/api/v1/content/rules/versions/1/activate", acme_admin, "",
                 {{"tenant", "acme"}})
                .status,
            200);
  EXPECT_EQ(titlesFor("acme"), (std::vector<std::string>{"Global v1", "Acme extra"}));
  EXPECT_EQ(rules_->current()->rules().correlations.size(), 1u);
}

TEST_F(TenantRuleRoutesTest, RestoreActiveLoadsEveryTenant) {
  const Principal admin = principal(Role::kAdmin);
  ASSERT_EQ(call("POST", "/api/v1/content/rules", admin, push("g", "Global v1")).status, 201);
  ASSERT_EQ(call("POST", "/api/v1/content/rules", admin, push("a", "Acme v1"),
                 {{"tenant", "acme"}})
                .status,
            201);
  // A fresh daemon: the rule reloader starts empty and the store brings every scope back.
  MetricsRegistry metrics;
  RuleReloader restarted(config_, metrics);
  ContentService service(*store_, metrics);
  service.setActivator(ContentKind::kRules, rulesActivator(restarted, [this] { return config_; }));
  EXPECT_EQ(service.restoreActive(ContentKind::kRules), 2u);
  std::vector<correlate::Alert> alerts = feed(restarted, "acme", failedLine(1, "192.0.2.1"));
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_EQ(alerts[0].rule_title, "Global v1");
  EXPECT_EQ(alerts[1].rule_title, "Acme v1");
}

}  // namespace
}  // namespace vigil::mgmt

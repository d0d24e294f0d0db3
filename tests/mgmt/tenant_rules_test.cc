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

TEST_F(TenantRulesTest, ReferencesStayInsideTenant) {
  activate(rules_, stage("*", {{"g.yml", detection("global-rule", "Global")}}, 1));
  const std::string outer = R"(title: Acme count of a global rule
id: acme-count
correlation:
  type: event_count
  rules: [global-rule]
  group-by: [src_ip]
  timespan: 1h
  condition: {gte: 2}
)";
  EXPECT_EQ(stage("acme", {{"a.yml", outer}}, 1), nullptr);
  ASSERT_EQ(problems_.size(), 1u);
  EXPECT_EQ(problems_[0].file, "a.yml");
  EXPECT_NE(problems_[0].message.find("of tenant acme"), std::string::npos)
      << problems_[0].message;
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

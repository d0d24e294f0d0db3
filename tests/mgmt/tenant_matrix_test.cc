// The tenant matrix: every route the ApiServer registers, called by every role scoped to
// tenant "acme", against acme's objects and against globex's. It proves that no acme
// token reads globex data (no response contains the globex marker text) or changes it (no
// mutating call on a globex object succeeds), and that each role gets 403 exactly where
// its capabilities end. Routes come from ApiServer::routes(), so a route added without a
// row in kSamples fails the test until someone states its rule here.
// NOTE: routes that vigild adds after building the server (/api/v1/status, the intel,
// playbook run, approval, content and config routes) are not in this ApiServer, so this
// test does not walk them.
#include <gtest/gtest.h>
#include <httplib.h>

#include <functional>
#include <map>
#include <set>
#include <nlohmann/json.hpp>
#include <string>

#include "auth_test_util.h"
#include "mgmt/api_server.h"
#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

using testing::kSecond;
using testing::kT0;
using testing::makeAlert;

// Appears only in globex's data (case title, token name, tenant name, audit records).
constexpr const char* kMarker = "globex-confidential";

enum class Target { kOwn, kOther };  // acme's objects or globex's

// What a caller needs for the route on its own tenant.
enum class Need {
  kNothing,     // public
  kToken,       // any valid token
  kRead,        // canRead
  kWork,        // canWork: admin, tenant_admin or analyst
  kAdminister,  // admin or tenant_admin
  kAdmin,       // admin only
};

struct SampleRequest {
  std::string path;
  std::string body;
};

class TenantMatrixTest;
using SampleFactory = std::function<SampleRequest(TenantMatrixTest&, Target)>;

struct Sample {
  Need need;
  SampleFactory make;
};

struct Caller {
  std::string name;
  Role role;
  std::string token;
};

class TenantMatrixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = CaseStore::open(dir_.file("cases.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    correlate::Alert own = makeAlert("acme-rule", "high", "acme", {}, kT0);
    correlate::Alert other = makeAlert("globex-rule", "high", "globex", {}, kT0 + kSecond);
    other.rule_title = std::string(kMarker) + " case";
    auto own_case = store_->ingestAlert(own);
    auto other_case = store_->ingestAlert(other);
    ASSERT_TRUE(own_case.ok());
    ASSERT_TRUE(other_case.ok());
    case_ids_ = {own_case->case_id, other_case->case_id};

    auth_ = std::make_unique<testing::TestAuth>(dir_.file(""),
                                                std::vector<std::string>{"acme", "globex"});
    ApiServerOptions options;
    options.listen = "127.0.0.1:0";
    auth_->apply(options);
    server_ = std::make_unique<ApiServer>(*store_, metrics_, options);
    ASSERT_TRUE(server_->start().ok());

    // Globex data that carries the marker: a token and an audited tenant creation.
    auth_->mint(Role::kAnalyst, {"globex"}, std::string(kMarker) + "-token");
    ASSERT_EQ(send("POST", "/api/v1/tenants", auth_->adminToken(),
                   nlohmann::json({{"name", kMarker}}).dump())
                  .first,
              201);

    callers_ = {
        {"admin", Role::kAdmin, auth_->adminToken()},
        {"tenant_admin", Role::kTenantAdmin, auth_->mint(Role::kTenantAdmin, {"acme"}, "ta")},
        {"analyst", Role::kAnalyst, auth_->mint(Role::kAnalyst, {"acme"}, "an")},
        {"read_only", Role::kReadOnly, auth_->mint(Role::kReadOnly, {"acme"}, "ro")},
    };
  }

  std::pair<int, std::string> send(const std::string& method, const SampleRequest& request,
                                   const std::string& token) {
    return send(method, request.path, token, request.body);
  }

  std::pair<int, std::string> send(const std::string& method, const std::string& path,
                                   const std::string& token, const std::string& body = "") {
    httplib::Client client("127.0.0.1", server_->port());
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    httplib::Result result(nullptr, httplib::Error::Unknown);
    if (method == "GET") result = client.Get(path, headers);
    if (method == "POST") result = client.Post(path, headers, body, "application/json");
    if (method == "PUT") result = client.Put(path, headers, body, "application/json");
    if (method == "PATCH") result = client.Patch(path, headers, body, "application/json");
    if (method == "DELETE") result = client.Delete(path, headers);
    if (!result) return {0, "no response: " + httplib::to_string(result.error())};
    return {result->status, result->body};
  }

 public:
  static std::string tenantOf(Target target) { return target == Target::kOwn ? "acme" : "globex"; }
  int64_t caseOf(Target target) const { return case_ids_[target == Target::kOwn ? 0 : 1]; }

  // A fresh analyst token of the target tenant, for revocation samples.
  std::string freshTokenId(Target target) {
    TokenRequest request{"victim", Role::kAnalyst, {tenantOf(target)}, 0, "matrix"};
    auto issued = auth_->auth().createToken(request);
    EXPECT_TRUE(issued.ok());
    return issued->info.id;
  }

  // A fresh empty tenant, for deletion samples.
  std::string freshTenant() {
    std::string name = "empty-" + std::to_string(++counter_);
    EXPECT_TRUE(auth_->auth().createTenant(name).ok());
    return name;
  }

  std::string nextName() { return "made-" + std::to_string(++counter_); }

  // A fresh open case of the target tenant, for merge samples (a merge closes its source).
  int64_t freshCase(Target target) {
    NewCase fields;
    fields.title = nextName();
    fields.tenant = tenantOf(target);
    auto made = store_->createCase(fields, {"matrix", true});
    EXPECT_TRUE(made.ok()) << made.status();
    return made.ok() ? made->id : 0;
  }

  // A task on the target's case, for task update samples.
  int64_t taskOf(Target target) {
    auto task = store_->addTask(caseOf(target), nextName(), "", {"matrix", true});
    EXPECT_TRUE(task.ok()) << task.status();
    return task.ok() ? task->id : 0;
  }

  // The SHA-256 of an evidence file on the target's case, for download samples.
  std::string evidenceOf(Target target) {
    bool added = false;
    auto file = store_->addEvidenceFile(caseOf(target), "proof.txt", "text/plain",
                                        "proof of " + tenantOf(target), {"matrix", true}, &added);
    EXPECT_TRUE(file.ok()) << file.status();
    return file.ok() ? file->sha256 : std::string();
  }

 protected:
  testing::TempDir dir_;
  MetricsRegistry metrics_;
  std::unique_ptr<CaseStore> store_;
  std::unique_ptr<testing::TestAuth> auth_;
  std::unique_ptr<ApiServer> server_;
  std::vector<int64_t> case_ids_;
  std::vector<Caller> callers_;
  int counter_ = 0;
};

SampleRequest fixed(std::string path, std::string body = "") { return {std::move(path), std::move(body)}; }

// One row per route: "METHOD pattern" -> what it needs and how to build a request on the
// caller's own tenant and on the other tenant.
const std::map<std::string, Sample>& samples() {
  static const std::map<std::string, Sample> kSamples = {
      {"GET /healthz",
       {Need::kNothing, [](TenantMatrixTest&, Target) { return fixed("/healthz"); }}},
      {"GET /readyz", {Need::kNothing, [](TenantMatrixTest&, Target) { return fixed("/readyz"); }}},
      {"GET /metrics", {Need::kAdmin, [](TenantMatrixTest&, Target) { return fixed("/metrics"); }}},
      // The console's files are public: the browser loads them before signing in, and
      // they hold no tenant data.
      {"GET /", {Need::kNothing, [](TenantMatrixTest&, Target) { return fixed("/"); }}},
      {"GET /console",
       {Need::kNothing, [](TenantMatrixTest&, Target) { return fixed("/console"); }}},
      {"GET /console/{file}",
       {Need::kNothing, [](TenantMatrixTest&, Target) { return fixed("/console/app.js"); }}},
      {"POST /api/v1/cases",
       {Need::kWork,
        [](TenantMatrixTest& f, Target t) {
          nlohmann::json body = {{"title", f.nextName()},
                                 {"tenant", TenantMatrixTest::tenantOf(t)}};
          return fixed("/api/v1/cases", body.dump());
        }}},
      {"PATCH /api/v1/cases/{id}",
       {Need::kWork,
        [](TenantMatrixTest& f, Target t) {
          return fixed("/api/v1/cases/" + std::to_string(f.caseOf(t)),
                       nlohmann::json({{"assignee", f.nextName()}}).dump());
        }}},
      {"POST /api/v1/cases/{id}/tasks",
       {Need::kWork,
        [](TenantMatrixTest& f, Target t) {
          return fixed("/api/v1/cases/" + std::to_string(f.caseOf(t)) + "/tasks",
                       nlohmann::json({{"title", f.nextName()}}).dump());
        }}},
      {"PATCH /api/v1/cases/{id}/tasks/{task}",
       {Need::kWork,
        [](TenantMatrixTest& f, Target t) {
          return fixed("/api/v1/cases/" + std::to_string(f.caseOf(t)) + "/tasks/" +
                           std::to_string(f.taskOf(t)),
                       nlohmann::json({{"status", "done"}}).dump());
        }}},
      {"POST /api/v1/cases/{id}/notes",
       {Need::kWork,
        [](TenantMatrixTest& f, Target t) {
          return fixed("/api/v1/cases/" + std::to_string(f.caseOf(t)) + "/notes",
                       nlohmann::json({{"body", f.nextName()}}).dump());
        }}},
      {"POST /api/v1/cases/{id}/evidence",
       {Need::kWork,
        [](TenantMatrixTest& f, Target t) {
          // A new name each time, base64 of "hello"; a repeat upload answers 200.
          nlohmann::json body = {{"name", f.nextName()}, {"content_base64", "aGVsbG8="}};
          return fixed("/api/v1/cases/" + std::to_string(f.caseOf(t)) + "/evidence", body.dump());
        }}},
      {"GET /api/v1/cases/{id}/evidence/{sha256}",
       {Need::kRead,
        [](TenantMatrixTest& f, Target t) {
          return fixed("/api/v1/cases/" + std::to_string(f.caseOf(t)) + "/evidence/" +
                       f.evidenceOf(t));
        }}},
      {"GET /api/v1/cases/{id}/timeline",
       {Need::kRead,
        [](TenantMatrixTest& f, Target t) {
          return fixed("/api/v1/cases/" + std::to_string(f.caseOf(t)) + "/timeline");
        }}},
      {"POST /api/v1/cases/{id}/merge",
       {Need::kWork,
        [](TenantMatrixTest& f, Target t) {
          return fixed("/api/v1/cases/" + std::to_string(f.freshCase(t)) + "/merge",
                       nlohmann::json({{"into", f.caseOf(t)}}).dump());
        }}},
      {"GET /api/v1/metrics/cases",
       {Need::kRead,
        [](TenantMatrixTest&, Target t) {
          return fixed("/api/v1/metrics/cases?tenant=" + TenantMatrixTest::tenantOf(t));
        }}},
      {"GET /api/v1/cases",
       {Need::kRead,
        [](TenantMatrixTest&, Target t) {
          return fixed("/api/v1/cases?tenant=" + TenantMatrixTest::tenantOf(t));
        }}},
      {"GET /api/v1/cases/{id}",
       {Need::kRead,
        [](TenantMatrixTest& f, Target t) {
          return fixed("/api/v1/cases/" + std::to_string(f.caseOf(t)));
        }}},
      {"GET /api/v1/whoami",
       {Need::kToken, [](TenantMatrixTest&, Target) { return fixed("/api/v1/whoami"); }}},
      {"GET /api/v1/tenants",
       {Need::kToken, [](TenantMatrixTest&, Target) { return fixed("/api/v1/tenants"); }}},
      {"POST /api/v1/tenants",
       {Need::kAdmin,
        [](TenantMatrixTest& f, Target) {
          return fixed("/api/v1/tenants", nlohmann::json({{"name", f.nextName()}}).dump());
        }}},
      {"DELETE /api/v1/tenants/{name}",
       {Need::kAdmin,
        [](TenantMatrixTest& f, Target) { return fixed("/api/v1/tenants/" + f.freshTenant()); }}},
      {"POST /api/v1/tokens",
       {Need::kAdminister,
        [](TenantMatrixTest& f, Target t) {
          nlohmann::json body = {{"name", f.nextName()},
                                 {"role", "read_only"},
                                 {"tenants", {TenantMatrixTest::tenantOf(t)}}};
          return fixed("/api/v1/tokens", body.dump());
        }}},
      {"GET /api/v1/tokens",
       {Need::kAdminister, [](TenantMatrixTest&, Target) { return fixed("/api/v1/tokens"); }}},
      {"DELETE /api/v1/tokens/{id}",
       {Need::kAdminister, [](TenantMatrixTest& f,
                              Target t) { return fixed("/api/v1/tokens/" + f.freshTokenId(t)); }}},
      {"GET /api/v1/audit",
       {Need::kAdminister, [](TenantMatrixTest&, Target) { return fixed("/api/v1/audit"); }}},
  };
  return kSamples;
}

bool allowed(Need need, Role role) {
  switch (need) {
    case Need::kNothing:
    case Need::kToken:
    case Need::kRead:
      return true;
    case Need::kWork:
      return role != Role::kReadOnly;
    case Need::kAdminister:
      return role == Role::kAdmin || role == Role::kTenantAdmin;
    case Need::kAdmin:
      return role == Role::kAdmin;
  }
  return false;
}

bool isMutating(const std::string& method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

// Every registered route has a row, and every row is a registered route.
TEST_F(TenantMatrixTest, EveryRouteHasASample) {
  std::set<std::string> registered;
  for (const RouteInfo& route : server_->routes()) {
    const std::string key = route.method + " " + route.pattern;
    registered.insert(key);
    EXPECT_TRUE(samples().count(key))
        << key << " has no row in kSamples; add one that states who may call it";
  }
  for (const auto& [key, sample] : samples()) {
    EXPECT_TRUE(registered.count(key)) << key << " is in kSamples but not registered";
  }
}

// Without a token every non-public route is 401.
TEST_F(TenantMatrixTest, AnonymousGets401) {
  for (const RouteInfo& route : server_->routes()) {
    auto it = samples().find(route.method + " " + route.pattern);
    if (it == samples().end()) continue;
    SampleRequest request = it->second.make(*this, Target::kOwn);
    auto [status, body] = send(route.method, request, "");
    if (it->second.need == Need::kNothing) {
      EXPECT_LT(status, 400) << route.method << " " << request.path << ": " << body;
    } else {
      EXPECT_EQ(status, 401) << route.method << " " << request.path << ": " << body;
    }
  }
}

// role x route x tenant: role rules on the own tenant, nothing of the other tenant.
TEST_F(TenantMatrixTest, RoleAndTenantRulesHold) {
  int checked = 0;
  for (const Caller& caller : callers_) {
    for (const RouteInfo& route : server_->routes()) {
      auto it = samples().find(route.method + " " + route.pattern);
      if (it == samples().end()) continue;
      const Sample& sample = it->second;
      for (Target target : {Target::kOwn, Target::kOther}) {
        SampleRequest request = sample.make(*this, target);
        auto [status, body] = send(route.method, request, caller.token);
        const std::string where = caller.name + " " + route.method + " " + request.path +
                                  (target == Target::kOwn ? " (own)" : " (other)") + " -> " +
                                  std::to_string(status) + " " + body;
        ++checked;
        EXPECT_NE(status, 401) << where;
        EXPECT_LT(status, 500) << where;
        if (caller.role == Role::kAdmin) {
          EXPECT_LT(status, 400) << where;
          continue;
        }
        // No acme token ever sees globex data, whatever the route.
        EXPECT_EQ(body.find(kMarker), std::string::npos) << where;
        if (!allowed(sample.need, caller.role)) {
          // A role refusal on the caller's own tenant is 403. On another tenant's
          // object the handler returns 404 so the object stays hidden, and 403 is
          // also a rejection.
          if (target == Target::kOwn) {
            EXPECT_EQ(status, 403) << where;
          } else {
            EXPECT_TRUE(status == 403 || status == 404) << where;
          }
        } else if (target == Target::kOwn) {
          EXPECT_LT(status, 400) << where;
        } else if (isMutating(route.method)) {
          EXPECT_TRUE(status == 403 || status == 404) << where;
        } else {
          // Reads of another tenant's object are hidden (404); lists come back filtered.
          EXPECT_TRUE(status == 404 || status == 200) << where;
        }
      }
    }
  }
  EXPECT_EQ(checked, static_cast<int>(callers_.size() * server_->routes().size() * 2));
}

// A merge names a second case in its body. An acme token gets 404 for merging its case
// into a globex case and for merging a globex case into its own, and neither case changes.
TEST_F(TenantMatrixTest, MergeAcrossTenantsIsRefused) {
  const std::string analyst = callers_[2].token;
  ASSERT_EQ(callers_[2].role, Role::kAnalyst);
  const int64_t own = freshCase(Target::kOwn);
  const int64_t other = freshCase(Target::kOther);
  auto into_other = send("POST", "/api/v1/cases/" + std::to_string(own) + "/merge", analyst,
                         nlohmann::json({{"into", other}}).dump());
  EXPECT_EQ(into_other.first, 404) << into_other.second;
  auto from_other = send("POST", "/api/v1/cases/" + std::to_string(other) + "/merge", analyst,
                         nlohmann::json({{"into", own}}).dump());
  EXPECT_EQ(from_other.first, 404) << from_other.second;
  for (int64_t id : {own, other}) {
    auto detail = store_->getCase(id);
    ASSERT_TRUE(detail.ok()) << detail.status();
    EXPECT_EQ(detail->info.status, CaseStatus::kNew) << "case " << id;
  }
}

}  // namespace
}  // namespace vigil::mgmt

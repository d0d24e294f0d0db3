// Authentication, token management and auditing through a real ApiServer on loopback.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sqlite3.h>

#include <memory>
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

struct Reply {
  int status = 0;
  nlohmann::json body;
  std::string text;
  std::string www_authenticate;
};

class ApiAuthTest : public ::testing::Test {
 protected:
  void SetUp() override { startServer(false); }

  void startServer(bool metrics_public) {
    if (server_) server_->stop();
    server_.reset();
    if (!store_) {
      auto store = CaseStore::open(dir_.file("cases.db"));
      ASSERT_TRUE(store.ok()) << store.status();
      store_ = *std::move(store);
      ASSERT_TRUE(store_->ingestAlert(makeAlert("ssh", "high", "acme", {}, kT0)).ok());
      ASSERT_TRUE(store_->ingestAlert(makeAlert("dns", "low", "globex", {}, kT0 + kSecond)).ok());
      auth_ = std::make_unique<testing::TestAuth>(dir_.file(""),
                                                  std::vector<std::string>{"acme", "globex"});
    }
    ApiServerOptions options;
    options.listen = "127.0.0.1:0";
    options.metrics_public_on_loopback = metrics_public;
    auth_->apply(options);
    server_ = std::make_unique<ApiServer>(*store_, metrics_, options);
    absl::Status started = server_->start();
    ASSERT_TRUE(started.ok()) << started;
  }

  Reply call(const std::string& method, const std::string& path, const std::string& token,
             const std::string& body = "") {
    httplib::Client client("127.0.0.1", server_->port());
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    httplib::Result result(nullptr, httplib::Error::Unknown);
    if (method == "GET") result = client.Get(path, headers);
    if (method == "POST") result = client.Post(path, headers, body, "application/json");
    if (method == "PATCH") result = client.Patch(path, headers, body, "application/json");
    if (method == "DELETE") result = client.Delete(path, headers);
    Reply reply;
    EXPECT_TRUE(result) << method << " " << path;
    if (!result) return reply;
    reply.status = result->status;
    reply.text = result->body;
    reply.body = nlohmann::json::parse(result->body, nullptr, false);
    reply.www_authenticate = result->get_header_value("WWW-Authenticate");
    return reply;
  }

  const std::string& admin() const { return auth_->adminToken(); }

  nlohmann::json auditItems() {
    Reply r = call("GET", "/api/v1/audit?limit=1000", admin());
    EXPECT_EQ(r.status, 200) << r.text;
    return r.body["items"];
  }

  testing::TempDir dir_;
  MetricsRegistry metrics_;
  std::unique_ptr<CaseStore> store_;
  std::unique_ptr<testing::TestAuth> auth_;
  std::unique_ptr<ApiServer> server_;
};

// No token, a malformed one and an unknown one are 401 JSON errors, counted by reason.
TEST_F(ApiAuthTest, MissingOrBadTokenIs401) {
  Reply none = call("GET", "/api/v1/cases", "");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.body["error"]["code"], "unauthenticated");
  EXPECT_EQ(none.www_authenticate, "Bearer realm=\"vigil\"");
  EXPECT_EQ(call("GET", "/api/v1/cases", "not-a-token").status, 401);
  std::string unknown = admin();
  unknown[5] = unknown[5] == 'a' ? 'b' : 'a';
  Reply bad = call("GET", "/api/v1/cases", unknown);
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(bad.text.find(unknown.substr(21)), std::string::npos) << "secret echoed";
  // Unknown paths need a token too, so route names do not leak to anonymous callers.
  EXPECT_EQ(call("GET", "/api/v2/nothing", "").status, 401);

  EXPECT_EQ(metrics_.sum("vigil_api_auth_failures_total"), 4u);
  std::string text = metrics_.renderPrometheus();
  EXPECT_NE(text.find("vigil_api_auth_failures_total{reason=\"missing\"} 2"), std::string::npos)
      << text;
  EXPECT_NE(text.find("vigil_api_auth_failures_total{reason=\"malformed\"} 1"), std::string::npos);
  EXPECT_NE(text.find("vigil_api_auth_failures_total{reason=\"unknown_token\"} 1"),
            std::string::npos);
}

// /healthz is public; /metrics needs an admin token unless opened to loopback.
TEST_F(ApiAuthTest, PublicRoutesAndMetrics) {
  EXPECT_EQ(call("GET", "/healthz", "").status, 200);
  EXPECT_EQ(call("GET", "/metrics", "").status, 401);
  std::string analyst = auth_->mint(Role::kAnalyst, {"acme"}, "ana");
  EXPECT_EQ(call("GET", "/metrics", analyst).status, 403);
  EXPECT_EQ(call("GET", "/metrics", admin()).status, 200);
  startServer(true);
  EXPECT_EQ(call("GET", "/metrics", "").status, 200);
}

// Case lists and lookups are scoped to the token's tenants; another tenant's case is 404
// with the same message as a missing one.
TEST_F(ApiAuthTest, CasesAreScopedToTenants) {
  std::string acme = auth_->mint(Role::kReadOnly, {"acme"}, "viewer");
  Reply list = call("GET", "/api/v1/cases", acme);
  ASSERT_EQ(list.status, 200) << list.text;
  EXPECT_EQ(list.body["total"], 1);
  EXPECT_EQ(list.body["items"][0]["tenant"], "acme");
  EXPECT_EQ(call("GET", "/api/v1/cases?tenant=globex", acme).body["total"], 0);

  Reply all = call("GET", "/api/v1/cases?tenant=globex", admin());
  int64_t globex_id = all.body["items"][0]["id"];
  Reply hidden = call("GET", "/api/v1/cases/" + std::to_string(globex_id), acme);
  Reply missing = call("GET", "/api/v1/cases/999", acme);
  EXPECT_EQ(hidden.status, 404);
  EXPECT_EQ(hidden.body["error"]["message"],
            "case " + std::to_string(globex_id) + " not found");
  EXPECT_EQ(missing.status, 404);
}

// An analyst who opens a case in a tenant outside its token gets a message naming that
// tenant. A read-only token gets one naming its role.
TEST_F(ApiAuthTest, CaseCreateNamesMissingTenant) {
  std::string analyst = auth_->mint(Role::kAnalyst, {"acme"}, "ana");
  Reply other = call("POST", "/api/v1/cases", analyst, R"({"title": "x", "tenant": "globex"})");
  EXPECT_EQ(other.status, 403) << other.text;
  EXPECT_NE(other.text.find("use a token of tenant globex"), std::string::npos) << other.text;

  std::string viewer = auth_->mint(Role::kReadOnly, {"acme"}, "viewer");
  Reply read_only = call("POST", "/api/v1/cases", viewer, R"({"title": "x", "tenant": "acme"})");
  EXPECT_EQ(read_only.status, 403) << read_only.text;
  EXPECT_NE(read_only.text.find("role read_only"), std::string::npos) << read_only.text;

  EXPECT_EQ(call("POST", "/api/v1/cases", analyst, R"({"title": "x", "tenant": "acme"})").status,
            201);
}

// POST /api/v1/tokens returns the token once; GET never shows secrets; the new token works.
TEST_F(ApiAuthTest, TokenLifecycle) {
  Reply created = call("POST", "/api/v1/tokens", admin(),
                       R"({"name": "ana", "role": "analyst", "tenants": ["acme"],
                           "expires_in_s": 3600})");
  ASSERT_EQ(created.status, 201) << created.text;
  const std::string token = created.body["token"];
  const std::string id = created.body["id"];
  EXPECT_FALSE(created.body["expires"].is_null());

  Reply who = call("GET", "/api/v1/whoami", token);
  ASSERT_EQ(who.status, 200) << who.text;
  EXPECT_EQ(who.body["subject"], "ana");
  EXPECT_EQ(who.body["role"], "analyst");
  EXPECT_EQ(who.body["tenants"], nlohmann::json({"acme"}));

  Reply list = call("GET", "/api/v1/tokens", admin());
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.text.find(token.substr(21)), std::string::npos);
  EXPECT_EQ(list.body["items"].size(), 2u);
  for (const auto& item : list.body["items"]) EXPECT_FALSE(item.contains("token"));

  Reply revoked = call("DELETE", "/api/v1/tokens/" + id, admin());
  ASSERT_EQ(revoked.status, 200) << revoked.text;
  EXPECT_FALSE(revoked.body["revoked"].is_null());
  Reply after = call("GET", "/api/v1/whoami", token);
  EXPECT_EQ(after.status, 401);
  EXPECT_NE(after.body["error"]["message"].get<std::string>().find("revoked"), std::string::npos);
}

// The token list filters by role, tenant and state, sorts, and pages with a total.
TEST_F(ApiAuthTest, TokenListFiltersSortsAndPages) {
  for (const char* name : {"carol", "bob", "dave"}) {
    nlohmann::json body = {{"name", name}, {"role", "analyst"}, {"tenants", {"acme"}}};
    ASSERT_EQ(call("POST", "/api/v1/tokens", admin(), body.dump()).status, 201);
  }
  Reply globex = call("POST", "/api/v1/tokens", admin(),
                      R"({"name": "erin", "role": "read_only", "tenants": ["globex"]})");
  ASSERT_EQ(globex.status, 201) << globex.text;
  ASSERT_EQ(call("DELETE", "/api/v1/tokens/" + globex.body["id"].get<std::string>(), admin())
                .status,
            200);

  Reply all = call("GET", "/api/v1/tokens", admin());
  ASSERT_EQ(all.status, 200) << all.text;
  EXPECT_EQ(all.body["total"], 5);
  EXPECT_EQ(all.body["limit"], 50);
  EXPECT_EQ(all.body["offset"], 0);

  Reply analysts = call("GET", "/api/v1/tokens?role=analyst&tenant=acme&sort=name", admin());
  ASSERT_EQ(analysts.status, 200) << analysts.text;
  EXPECT_EQ(analysts.body["total"], 3);
  ASSERT_EQ(analysts.body["items"].size(), 3u);
  EXPECT_EQ(analysts.body["items"][0]["name"], "bob");
  EXPECT_EQ(analysts.body["items"][1]["name"], "carol");
  EXPECT_EQ(analysts.body["items"][2]["name"], "dave");

  Reply page = call("GET", "/api/v1/tokens?role=analyst&sort=-name&limit=1&offset=1", admin());
  ASSERT_EQ(page.status, 200) << page.text;
  EXPECT_EQ(page.body["total"], 3);
  ASSERT_EQ(page.body["items"].size(), 1u);
  EXPECT_EQ(page.body["items"][0]["name"], "carol");

  Reply revoked = call("GET", "/api/v1/tokens?state=revoked", admin());
  ASSERT_EQ(revoked.status, 200) << revoked.text;
  ASSERT_EQ(revoked.body["items"].size(), 1u);
  EXPECT_EQ(revoked.body["items"][0]["name"], "erin");
  Reply active = call("GET", "/api/v1/tokens?state=active", admin());
  EXPECT_EQ(active.body["total"], 4);

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"limit=0", "limit=0"},       {"limit=501", "limit=501"}, {"offset=-1", "offset=-1"},
      {"sort=role", "sort=role"},   {"state=gone", "state=gone"}, {"role=root", "root"},
      {"colour=red", "colour"}};
  for (const auto& [query, named] : bad) {
    Reply r = call("GET", "/api/v1/tokens?" + query, admin());
    EXPECT_EQ(r.status, 400) << query;
    EXPECT_NE(r.text.find(named), std::string::npos) << query << ": " << r.text;
  }
}

// The tenant list sorts and pages; a caller sees only the tenants it may read.
TEST_F(ApiAuthTest, TenantListSortsAndPages) {
  Reply by_name = call("GET", "/api/v1/tenants", admin());
  ASSERT_EQ(by_name.status, 200) << by_name.text;
  EXPECT_EQ(by_name.body["total"], 2);
  ASSERT_EQ(by_name.body["items"].size(), 2u);
  EXPECT_EQ(by_name.body["items"][0]["name"], "acme");

  Reply reversed = call("GET", "/api/v1/tenants?sort=-name&limit=1", admin());
  ASSERT_EQ(reversed.status, 200) << reversed.text;
  EXPECT_EQ(reversed.body["total"], 2);
  ASSERT_EQ(reversed.body["items"].size(), 1u);
  EXPECT_EQ(reversed.body["items"][0]["name"], "globex");

  Reply past_end = call("GET", "/api/v1/tenants?offset=5", admin());
  ASSERT_EQ(past_end.status, 200) << past_end.text;
  EXPECT_TRUE(past_end.body["items"].empty());
  EXPECT_EQ(past_end.body["total"], 2);

  const std::string acme = auth_->mint(Role::kReadOnly, {"acme"}, "viewer");
  Reply own = call("GET", "/api/v1/tenants", acme);
  ASSERT_EQ(own.status, 200) << own.text;
  EXPECT_EQ(own.body["total"], 1);

  for (const std::string query : {"limit=x", "limit=1000", "offset=y", "sort=size"}) {
    Reply bad = call("GET", "/api/v1/tenants?" + query, admin());
    EXPECT_EQ(bad.status, 400) << query;
    EXPECT_NE(bad.text.find(query), std::string::npos) << bad.text;
  }
}

// Bad token requests are 400 with the field named.
TEST_F(ApiAuthTest, BadTokenRequestsAre400) {
  for (const char* body :
       {"not json", "[]", R"({"name": "x"})", R"({"name": "x", "role": "root"})",
        R"({"name": "x", "role": "analyst"})", R"({"name": "x", "role": "analyst",
        "tenants": ["nope"]})", R"({"name": "x", "role": "analyst", "tenants": "acme"})",
        R"({"name": "x", "role": "analyst", "tenants": ["acme"], "expires_in_s": -5})",
        R"({"name": "x", "role": "analyst", "tenants": ["acme"], "colour": "red"})"}) {
    Reply r = call("POST", "/api/v1/tokens", admin(), body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.text;
    EXPECT_EQ(r.body["error"]["code"], "invalid_argument") << body;
  }

  Reply no_tenant = call("POST", "/api/v1/tokens", admin(), R"({"name": "x", "role": "analyst"})");
  EXPECT_NE(no_tenant.text.find("a token with role analyst needs at least one tenant"),
            std::string::npos)
      << no_tenant.text;

  // A field of the wrong type is quoted in the message.
  Reply name = call("POST", "/api/v1/tokens", admin(), R"({"name": 5, "role": "analyst"})");
  EXPECT_EQ(name.status, 400) << name.text;
  EXPECT_NE(name.text.find("field 'name' is 5;"), std::string::npos) << name.text;
  Reply expiry = call("POST", "/api/v1/tokens", admin(),
                      R"({"name": "x", "role": "analyst", "tenants": ["acme"],
                          "expires_in_s": "90d"})");
  EXPECT_EQ(expiry.status, 400) << expiry.text;
  EXPECT_NE(expiry.body["error"]["message"].get<std::string>().find(R"(is "90d";)"),
            std::string::npos)
      << expiry.text;
}

// Token names are 1 to 128 characters (code points, not bytes) without control characters,
// and a rejected name gets a 400 naming the character and its position.
TEST_F(ApiAuthTest, TokenNameRules) {
  auto create = [&](const std::string& name) {
    nlohmann::json body = {{"name", name}, {"role", "analyst"}, {"tenants", {"acme"}}};
    return call("POST", "/api/v1/tokens", admin(), body.dump());
  };
  Reply newline = create("evil\n2026-12-06T10:00:00Z info forged");
  EXPECT_EQ(newline.status, 400) << newline.text;
  EXPECT_EQ(newline.body["error"]["code"], "invalid_argument") << newline.text;
  EXPECT_NE(newline.text.find("control character U+000A at character 5"), std::string::npos)
      << newline.text;
  EXPECT_NE(newline.text.find("without control characters"), std::string::npos) << newline.text;

  for (const std::string& name : {std::string("tab\there"), std::string("del\x7f"),
                                  std::string("next line \xc2\x85"), std::string(1, '\0')}) {
    Reply r = create(name);
    EXPECT_EQ(r.status, 400) << r.text;
    EXPECT_NE(r.text.find("control character U+00"), std::string::npos) << r.text;
  }

  // 128 two-byte characters are 256 bytes and still a valid name.
  std::string umlauts;
  for (int i = 0; i < 128; ++i) umlauts += "\xc3\xbc";
  Reply longest = create(umlauts);
  EXPECT_EQ(longest.status, 201) << longest.text;
  Reply too_long = create(umlauts + "a");
  EXPECT_EQ(too_long.status, 400) << too_long.text;
  EXPECT_NE(too_long.text.find("has 129 characters"), std::string::npos) << too_long.text;
  Reply empty = create("");
  EXPECT_EQ(empty.status, 400) << empty.text;
}

// A token name with a line break, stored before names were checked, is escaped in the log
// lines that name the actor.
TEST_F(ApiAuthTest, LoggedActorIsEscaped) {
  const std::string token = auth_->mint(Role::kAnalyst, {"acme"}, "ana");
  const std::string id = token.substr(4, 16);
  testing::RawDb db(AuthStore::defaultPath(dir_.file("")));
  ASSERT_EQ(db.exec("UPDATE tokens SET name = 'evil' || char(10) || "
                    "'2026-12-06T10:00:00Z info forged' WHERE id = '" +
                    id + "'"),
            "");

  testing::LogCapture log;
  Reply created = call("POST", "/api/v1/cases", token, R"({"title": "x", "tenant": "acme"})");
  EXPECT_EQ(created.status, 201) << created.text;
  const std::string text = log.text();
  EXPECT_NE(text.find("actor=evil\\x0a2026-12-06T10:00:00Z info forged"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("\n2026-12-06T10:00:00Z"), std::string::npos) << text;
}

// A body of 100,000 nested arrays once crashed vigild: quoting the bad value in the error
// dumped it recursively. Every JSON body route now rejects deep nesting before parsing.
TEST_F(ApiAuthTest, DeeplyNestedBodiesAre400) {
  const size_t levels = 100000;
  const std::string deep = std::string(levels, '[') + std::string(levels, ']');
  const std::pair<const char*, std::string> calls[] = {
      {"/api/v1/cases", R"({"tenant": "acme", "title": )" + deep + "}"},
      {"/api/v1/cases/1/notes", R"({"body": )" + deep + "}"},
      {"/api/v1/tokens", R"({"name": )" + deep + "}"},
      {"/api/v1/tenants", R"({"name": )" + deep + "}"},
  };
  for (const auto& [path, body] : calls) {
    Reply r = call("POST", path, admin(), body);
    EXPECT_EQ(r.status, 400) << path;
    EXPECT_NE(r.text.find("nests arrays and objects deeper than 128 levels"), std::string::npos)
        << path << ": " << r.text.substr(0, 300);
  }
  // Nesting up to the limit is parsed, and the wrong type is reported as before.
  const std::string shallow = std::string(127, '[') + std::string(127, ']');
  Reply r = call("POST", "/api/v1/tenants", admin(), R"({"name": )" + shallow + "}");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.text.find("field 'name' is [[[["), std::string::npos) << r.text.substr(0, 300);
  EXPECT_EQ(call("GET", "/healthz", "").status, 200);
}

// Tenant admins mint and revoke tokens only inside their tenants and never admin tokens.
TEST_F(ApiAuthTest, TenantAdminLimits) {
  std::string ta = auth_->mint(Role::kTenantAdmin, {"acme"}, "acme-admin");
  std::string globex_viewer = auth_->mint(Role::kReadOnly, {"globex"}, "globex-viewer");
  (void)globex_viewer;
  EXPECT_EQ(call("POST", "/api/v1/tokens", ta, R"({"name": "a", "role": "admin"})").status, 403);
  EXPECT_EQ(call("POST", "/api/v1/tokens", ta,
                 R"({"name": "a", "role": "analyst", "tenants": ["globex"]})")
                .status,
            403);
  Reply own = call("POST", "/api/v1/tokens", ta,
                   R"({"name": "a", "role": "analyst", "tenants": ["acme"]})");
  ASSERT_EQ(own.status, 201) << own.text;

  Reply list = call("GET", "/api/v1/tokens", ta);
  ASSERT_EQ(list.status, 200);
  for (const auto& item : list.body["items"]) {
    EXPECT_NE(item["role"], "admin") << item.dump();
    EXPECT_EQ(item["tenants"], nlohmann::json({"acme"})) << item.dump();
  }
  Reply all = call("GET", "/api/v1/tokens", admin());
  std::string globex_id;
  for (const auto& item : all.body["items"]) {
    if (item["name"] == "globex-viewer") globex_id = item["id"];
  }
  ASSERT_FALSE(globex_id.empty());
  EXPECT_EQ(call("DELETE", "/api/v1/tokens/" + globex_id, ta).status, 404);
  EXPECT_EQ(call("DELETE", "/api/v1/tokens/" + own.body["id"].get<std::string>(), ta).status, 200);
  EXPECT_EQ(call("POST", "/api/v1/tenants", ta, R"({"name": "initech"})").status, 403);
}

// Tenants: admins create and delete; a tenant with cases or active tokens stays (409).
TEST_F(ApiAuthTest, TenantEndpoints) {
  EXPECT_EQ(call("POST", "/api/v1/tenants", admin(), R"({"name": "initech"})").status, 201);
  EXPECT_EQ(call("POST", "/api/v1/tenants", admin(), R"({"name": "initech"})").status, 409);
  EXPECT_EQ(call("POST", "/api/v1/tenants", admin(), R"({"name": "bad name"})").status, 400);
  // A huge name is quoted by its start and its size, not echoed whole.
  Reply huge = call("POST", "/api/v1/tenants", admin(),
                    R"({"name": ")" + std::string(1000000, 'a') + R"("})");
  EXPECT_EQ(huge.status, 400);
  EXPECT_LT(huge.text.size(), 1000u);
  EXPECT_NE(huge.text.find(std::string(80, 'a') + "...' (1000000 bytes) is invalid"),
            std::string::npos)
      << huge.text.substr(0, 300);
  std::string viewer = auth_->mint(Role::kReadOnly, {"acme"}, "viewer");
  Reply seen = call("GET", "/api/v1/tenants", viewer);
  ASSERT_EQ(seen.status, 200);
  ASSERT_EQ(seen.body["items"].size(), 1u);
  EXPECT_EQ(seen.body["items"][0]["name"], "acme");
  EXPECT_EQ(call("GET", "/api/v1/tenants", admin()).body["items"].size(), 3u);

  EXPECT_EQ(call("DELETE", "/api/v1/tenants/globex", admin()).status, 409);  // has a case
  EXPECT_EQ(call("DELETE", "/api/v1/tenants/initech", admin()).status, 200);
  EXPECT_EQ(call("DELETE", "/api/v1/tenants/initech", admin()).status, 404);
}

// Mutating calls and denied calls are in the audit log by the time the response arrives;
// plain reads are not.
TEST_F(ApiAuthTest, AuditRecordsWrittenBeforeResponse) {
  std::string viewer = auth_->mint(Role::kReadOnly, {"acme"}, "viewer");
  ASSERT_EQ(call("POST", "/api/v1/tenants", admin(), R"({"name": "initech"})").status, 201);
  nlohmann::json items = auditItems();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0]["method"], "POST");
  EXPECT_EQ(items[0]["path"], "/api/v1/tenants");
  EXPECT_EQ(items[0]["subject"], "test-admin");
  EXPECT_EQ(items[0]["target"], "tenant=initech");
  EXPECT_EQ(items[0]["status"], 201);
  EXPECT_EQ(items[0]["remote_addr"], "127.0.0.1");

  ASSERT_EQ(call("GET", "/api/v1/cases", viewer).status, 200);
  EXPECT_EQ(auditItems().size(), 1u);
  ASSERT_EQ(call("GET", "/api/v1/tokens", viewer).status, 403);
  ASSERT_EQ(call("GET", "/api/v1/cases", "").status, 401);
  ASSERT_EQ(call("POST", "/api/v1/tenants", admin(), "{").status, 400);
  items = auditItems();
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[1]["outcome"], "forbidden");
  EXPECT_EQ(items[1]["subject"], "viewer");
  EXPECT_EQ(items[2]["outcome"], "auth_failed");
  EXPECT_EQ(items[2]["status"], 401);
  EXPECT_EQ(items[3]["outcome"], "error");
  EXPECT_EQ(items[3]["status"], 400);

  auto report = AuditLog::verify(AuditLog::defaultPath(dir_.file("")));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok) << report->problem;
}

// A mutating call whose audit record cannot be written gets 500 and is counted, and the
// counter is exported at zero before the first failure.
TEST_F(ApiAuthTest, AuditWriteFailureIs500) {
  EXPECT_NE(metrics_.renderPrometheus().find("vigil_audit_write_failures_total 0"),
            std::string::npos);

  // Another connection holds the write lock, so the append fails after the busy timeout.
  sqlite3* raw = nullptr;
  const std::string path = AuditLog::defaultPath(dir_.file(""));
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> locker(raw, &sqlite3_close);
  ASSERT_EQ(sqlite3_exec(locker.get(), "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);

  // The append waits out the audit log's 5 s busy timeout, the client's default too.
  httplib::Client client("127.0.0.1", server_->port());
  client.set_read_timeout(30);
  client.set_bearer_token_auth(admin());
  httplib::Result reply = client.Post("/api/v1/tenants", R"({"name": "initech"})",
                                      "application/json");
  ASSERT_TRUE(reply) << httplib::to_string(reply.error());
  EXPECT_EQ(reply->status, 500) << reply->body;
  EXPECT_NE(reply->body.find("unrecorded"), std::string::npos) << reply->body;
  EXPECT_EQ(metrics_.sum("vigil_audit_write_failures_total"), 1u);

  ASSERT_EQ(sqlite3_exec(locker.get(), "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  locker.reset();
  EXPECT_EQ(call("POST", "/api/v1/tenants", admin(), R"({"name": "umbrella"})").status, 201);
  auto report = AuditLog::verify(path);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok) << report->problem;
}

// A tenant admin reads only its tenants' audit records; analysts cannot read the log.
TEST_F(ApiAuthTest, AuditListIsScoped) {
  std::string acme_admin = auth_->mint(Role::kTenantAdmin, {"acme"}, "acme-admin");
  std::string analyst = auth_->mint(Role::kAnalyst, {"acme"}, "ana");
  ASSERT_EQ(call("POST", "/api/v1/tokens", admin(),
                 R"({"name": "g", "role": "analyst", "tenants": ["globex"]})")
                .status,
            201);
  ASSERT_EQ(call("POST", "/api/v1/tokens", acme_admin,
                 R"({"name": "a", "role": "analyst", "tenants": ["acme"]})")
                .status,
            201);
  Reply scoped = call("GET", "/api/v1/audit", acme_admin);
  ASSERT_EQ(scoped.status, 200) << scoped.text;
  ASSERT_EQ(scoped.body["items"].size(), 1u);
  EXPECT_EQ(scoped.body["items"][0]["tenants"], nlohmann::json({"acme"}));
  EXPECT_EQ(call("GET", "/api/v1/audit", analyst).status, 403);
  EXPECT_EQ(call("GET", "/api/v1/audit?limit=0", admin()).status, 400);
  EXPECT_EQ(call("GET", "/api/v1/audit?page=2", admin()).status, 400);
}

// A new case must name a tenant that exists. Malformed names and unknown tenants are 400
// errors that name the value, for an admin's token too, and no case is stored. A tenant
// created later has no orphan cases, so it can be deleted again.
TEST_F(ApiAuthTest, CreateCaseChecksTenant) {
  const std::vector<std::string> malformed = {"*", " acme", "a/b", "_x", "", std::string(70, 'a')};
  for (const std::string& tenant : malformed) {
    nlohmann::json body = {{"title", "probe"}, {"tenant", tenant}};
    Reply reply = call("POST", "/api/v1/cases", admin(), body.dump());
    EXPECT_EQ(reply.status, 400) << "tenant '" << tenant << "': " << reply.text;
    EXPECT_NE(reply.text.find("'" + tenant + "'"), std::string::npos)
        << "tenant '" << tenant << "': " << reply.text;
  }
  Reply unknown = call("POST", "/api/v1/cases", admin(), R"({"title": "t", "tenant": "nosuch"})");
  EXPECT_EQ(unknown.status, 400) << unknown.text;
  EXPECT_NE(unknown.text.find("tenant nosuch does not exist"), std::string::npos) << unknown.text;
  EXPECT_NE(unknown.text.find("POST /api/v1/tenants"), std::string::npos) << unknown.text;
  // An analyst of another tenant learns nothing about which tenants exist.
  std::string analyst = auth_->mint(Role::kAnalyst, {"acme"}, "ana");
  EXPECT_EQ(call("POST", "/api/v1/cases", analyst, R"({"title": "t", "tenant": "nosuch"})").status,
            403);

  EXPECT_EQ(call("GET", "/api/v1/cases", admin()).body["total"], 2);
  EXPECT_EQ(call("POST", "/api/v1/cases", admin(), R"({"title": "t", "tenant": "acme"})").status,
            201);
  ASSERT_EQ(call("POST", "/api/v1/tenants", admin(), R"({"name": "nosuch"})").status, 201);
  Reply deleted = call("DELETE", "/api/v1/tenants/nosuch", admin());
  EXPECT_EQ(deleted.status, 200) << deleted.text;
}

// Case writes are recorded with the case's tenant and id, for an admin's token too, so
// the tenant's administrators see them. A merge names both case ids, and a failed write
// still names the tenant.
TEST_F(ApiAuthTest, CaseWritesAuditTenantAndTarget) {
  Reply acme_cases = call("GET", "/api/v1/cases?tenant=acme", admin());
  ASSERT_EQ(acme_cases.status, 200) << acme_cases.text;
  const int64_t ingested = acme_cases.body["items"][0]["id"];
  Reply created =
      call("POST", "/api/v1/cases", admin(), R"({"title": "by hand", "tenant": "acme"})");
  ASSERT_EQ(created.status, 201) << created.text;
  const int64_t manual = created.body["id"];
  const std::string ingested_path = "/api/v1/cases/" + std::to_string(ingested);
  ASSERT_EQ(call("PATCH", ingested_path, admin(), R"({"severity": "high"})").status, 200);
  ASSERT_EQ(call("PATCH", ingested_path, admin(), R"({"status": "bogus"})").status, 400);
  Reply merged =
      call("POST", ingested_path + "/merge", admin(), "{\"into\": " + std::to_string(manual) + "}");
  ASSERT_EQ(merged.status, 200) << merged.text;

  nlohmann::json items = auditItems();
  ASSERT_EQ(items.size(), 4u) << items.dump();
  const nlohmann::json acme = {"acme"};
  EXPECT_EQ(items[0]["path"], "/api/v1/cases");
  EXPECT_EQ(items[0]["target"], "id=" + std::to_string(manual));
  EXPECT_EQ(items[0]["tenants"], acme);
  EXPECT_EQ(items[1]["path"], ingested_path);
  EXPECT_EQ(items[1]["target"], "id=" + std::to_string(ingested));
  EXPECT_EQ(items[1]["tenants"], acme);
  EXPECT_EQ(items[2]["status"], 400);
  EXPECT_EQ(items[2]["tenants"], acme);
  EXPECT_EQ(items[3]["target"],
            "id=" + std::to_string(ingested) + ",into=" + std::to_string(manual));
  EXPECT_EQ(items[3]["tenants"], acme);

  std::string acme_admin = auth_->mint(Role::kTenantAdmin, {"acme"}, "acme-admin");
  Reply scoped = call("GET", "/api/v1/audit", acme_admin);
  ASSERT_EQ(scoped.status, 200) << scoped.text;
  EXPECT_EQ(scoped.body["items"].size(), 4u) << scoped.text;
}

}  // namespace
}  // namespace vigil::mgmt

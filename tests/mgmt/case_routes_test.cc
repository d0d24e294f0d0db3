// Case handlers called through the route table with a principal set by hand: tenant
// isolation, role checks and 4xx answers for bad input.
#include "mgmt/internal/case_routes.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/clock.h"
#include "mgmt/internal/router.h"
#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

using testing::kSecond;
using testing::kT0;
using testing::makeAlert;
using testing::makePrincipal;

class CaseRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CaseStoreOptions options;
    options.clock = &clock_;
    options.max_evidence_bytes = 64;
    auto store = CaseStore::open(dir_.file("cases.db"), options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    internal::addCaseRoutes(router_, *store_);
    acme_case_ = store_->ingestAlert(makeAlert("ssh", "high", "acme", {}, kT0))->case_id;
    globex_case_ = store_->ingestAlert(makeAlert("dns", "low", "globex", {}, kT0))->case_id;
  }

  ApiResponse call(const Principal& who, const std::string& method, const std::string& path,
                   const std::string& body = "",
                   std::multimap<std::string, std::string> query = {}) {
    ApiRequest request;
    request.method = method;
    request.path = path;
    request.body = body;
    request.query = std::move(query);
    request.principal = who;
    request.headers.emplace("Content-Type", "application/json");
    return router_.dispatch(request);
  }

  static nlohmann::json json(const ApiResponse& r) {
    return nlohmann::json::parse(r.body, nullptr, false);
  }

  std::string casePath(int64_t id, const std::string& rest = "") {
    return "/api/v1/cases/" + std::to_string(id) + rest;
  }

  testing::TempDir dir_;
  SimulatedClock clock_{kT0 + 100 * kSecond};
  std::unique_ptr<CaseStore> store_;
  internal::Router router_;
  int64_t acme_case_ = 0;
  int64_t globex_case_ = 0;
  Principal acme_analyst_ = makePrincipal("ann", Role::kAnalyst, {"acme"});
  Principal acme_reader_ = makePrincipal("rita", Role::kReadOnly, {"acme"});
  Principal admin_ = testing::adminPrincipal();
};

// Lists hold only the principal's tenants, even when another tenant is asked for.
TEST_F(CaseRoutesTest, ListIsFilteredByTenant) {
  nlohmann::json body = json(call(acme_reader_, "GET", "/api/v1/cases"));
  ASSERT_EQ(body["total"], 1);
  EXPECT_EQ(body["items"][0]["tenant"], "acme");
  body = json(call(acme_reader_, "GET", "/api/v1/cases", "", {{"tenant", "globex"}}));
  EXPECT_EQ(body["total"], 0);
  EXPECT_EQ(json(call(admin_, "GET", "/api/v1/cases"))["total"], 2);
  // No principal at all sees nothing.
  EXPECT_EQ(json(call(Principal{}, "GET", "/api/v1/cases"))["total"], 0);
}

// Another tenant's case answers 404 on every case endpoint, exactly like a missing one.
TEST_F(CaseRoutesTest, OtherTenantsCaseIsNotFound) {
  const std::string other = casePath(globex_case_);
  for (const auto& [method, path, body] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"GET", other, ""},
           {"PATCH", other, R"({"assignee":"x"})"},
           {"GET", other + "/timeline", ""},
           {"POST", other + "/notes", R"({"body":"x"})"},
           {"POST", other + "/tasks", R"({"title":"x"})"},
           {"POST", other + "/merge", R"({"into":1})"},
           {"GET", other + "/evidence/" + std::string(64, 'a'), ""}}) {
    ApiResponse r = call(acme_analyst_, method, path, body);
    EXPECT_EQ(r.status, 404) << method << " " << path << " " << r.body;
    EXPECT_EQ(json(r)["error"]["message"], "case " + std::to_string(globex_case_) + " not found");
  }
  // Merging into another tenant's case hides it too.
  ApiResponse r = call(acme_analyst_, "POST", casePath(acme_case_, "/merge"),
                       R"({"into":)" + std::to_string(globex_case_) + "}");
  EXPECT_EQ(r.status, 404) << r.body;
}

// A read-only principal reads its tenant but gets 403 on every write.
TEST_F(CaseRoutesTest, ReadOnlyCannotWrite) {
  EXPECT_EQ(call(acme_reader_, "GET", casePath(acme_case_)).status, 200);
  EXPECT_EQ(call(acme_reader_, "PATCH", casePath(acme_case_), R"({"assignee":"x"})").status, 403);
  EXPECT_EQ(call(acme_reader_, "POST", casePath(acme_case_, "/notes"), R"({"body":"x"})").status,
            403);
  EXPECT_EQ(call(acme_reader_, "POST", "/api/v1/cases", R"({"title":"t","tenant":"acme"})").status,
            403);
  // An analyst cannot open a case in a tenant it does not hold.
  EXPECT_EQ(
      call(acme_analyst_, "POST", "/api/v1/cases", R"({"title":"t","tenant":"globex"})").status,
      403);
  EXPECT_EQ(store_->getCase(acme_case_)->notes.size(), 0u);
}

// Create and update through the handlers; the actor is the principal's subject.
TEST_F(CaseRoutesTest, CreateAndUpdate) {
  ApiResponse created = call(acme_analyst_, "POST", "/api/v1/cases",
                             R"({"title":"Phish","tenant":"acme","severity":"high",)"
                             R"("tags":["email"],"assignee":"bob","description":"d"})");
  ASSERT_EQ(created.status, 201) << created.body;
  nlohmann::json c = json(created);
  EXPECT_EQ(c["created_by"], "ann");
  EXPECT_EQ(c["severity"], "high");
  EXPECT_EQ(c["tags"], nlohmann::json({"email"}));
  const std::string path = casePath(c["id"].get<int64_t>());

  ApiResponse updated =
      call(acme_analyst_, "PATCH", path,
           R"({"status":"resolved","resolution":"false_positive","resolution_note":"test"})");
  ASSERT_EQ(updated.status, 200) << updated.body;
  EXPECT_EQ(json(updated)["resolution"], "false_positive");
  EXPECT_FALSE(json(updated)["metrics"]["mttr_s"].is_null());

  nlohmann::json timeline = json(call(acme_reader_, "GET", path + "/timeline"));
  ASSERT_GE(timeline["items"].size(), 2u);
  EXPECT_EQ(timeline["items"][1]["actor"], "ann");
}

// Malformed JSON, unknown fields, wrong types and bad values are 400 naming the value;
// forbidden transitions are 409.
TEST_F(CaseRoutesTest, BadInputIs4xx) {
  const std::string path = casePath(acme_case_);
  struct Bad {
    std::string method, path, body, expect;
    int status;
  };
  for (const Bad& bad : std::vector<Bad>{
           {"PATCH", path, "{", "not valid JSON", 400},
           {"PATCH", path, "[1]", "JSON array", 400},
           {"PATCH", path, R"({"owner":"x"})", "unknown field owner", 400},
           {"PATCH", path, R"({"title":5})", "field title is 5", 400},
           {"PATCH", path, R"({"tags":["a",1]})", "array of strings", 400},
           {"PATCH", path, R"({"severity":"urgent"})", "severity=urgent", 400},
           {"PATCH", path, R"({"status":"done"})", "status=done", 400},
           {"PATCH", path, R"({"status":"resolved","resolution":"meh"})", "resolution=meh", 400},
           {"PATCH", path, R"({"status":"resolved"})", "needs a resolution", 400},
           {"PATCH", path, R"({"status":"new"})", "", 200},
           {"PATCH", "/api/v1/cases/abc", R"({})", "case id abc", 400},
           {"POST", "/api/v1/cases", R"({"tenant":"acme"})", "field title is missing", 400},
           {"POST", path + "/merge", R"({"into":"2"})", "field into", 400},
           {"POST", path + "/merge", R"({})", "field into is missing", 400},
           {"POST", path + "/tasks", R"({"title":""})", "title is empty", 400},
           {"PATCH", path + "/tasks/99", R"({"status":"open"})", "task 99 not found", 404},
           {"PATCH", path + "/tasks/1", R"({"status":"closed"})", "task status=closed", 400},
           {"GET", path + "/evidence/XYZ", "", "sha256 XYZ", 400},
           {"GET", "/api/v1/cases", "", "detected_from=yesterday", 400},
       }) {
    std::multimap<std::string, std::string> query;
    if (bad.expect == "detected_from=yesterday") query.emplace("detected_from", "yesterday");
    ApiResponse r = call(admin_, bad.method, bad.path, bad.body, query);
    EXPECT_EQ(r.status, bad.status)
        << bad.method << " " << bad.path << " " << bad.body << " -> " << r.body;
    if (!bad.expect.empty()) {
      EXPECT_NE(r.body.find(bad.expect), std::string::npos) << bad.body << " -> " << r.body;
    }
  }
  // in_progress -> new is refused with 409.
  ASSERT_EQ(call(admin_, "PATCH", path, R"({"status":"in_progress"})").status, 200);
  ApiResponse back = call(admin_, "PATCH", path, R"({"status":"new"})");
  EXPECT_EQ(back.status, 409) << back.body;
  EXPECT_EQ(json(back)["error"]["code"], "failed_precondition");
}

// Evidence over the size limit is 413; bad base64 is 400; a raw upload needs ?name=.
TEST_F(CaseRoutesTest, EvidenceUploadErrors) {
  const std::string path = casePath(acme_case_, "/evidence");
  ApiResponse big = call(admin_, "POST", path,
                         R"({"name":"x","content_base64":")" + std::string(100, 'A') + R"("})");
  EXPECT_EQ(big.status, 413) << big.body;
  EXPECT_EQ(json(big)["error"]["code"], "payload_too_large");
  EXPECT_EQ(call(admin_, "POST", path, R"({"name":"x","content_base64":"!!"})").status, 400);
  ApiRequest raw;
  raw.method = "POST";
  raw.path = path;
  raw.body = "abc";
  raw.principal = admin_;
  ApiResponse no_name = router_.dispatch(raw);
  EXPECT_EQ(no_name.status, 400);
  EXPECT_NE(no_name.body.find("?name="), std::string::npos);
}

// Metrics are limited to the principal's tenants and validate their query.
TEST_F(CaseRoutesTest, MetricsAreTenantScoped) {
  nlohmann::json body = json(call(acme_reader_, "GET", "/api/v1/metrics/cases"));
  ASSERT_EQ(body["groups"].size(), 2u);
  EXPECT_EQ(body["groups"][0]["tenant"], "acme");
  EXPECT_EQ(body["groups"][1]["severity"], "all");
  EXPECT_EQ(json(call(admin_, "GET", "/api/v1/metrics/cases"))["groups"].size(), 4u);
  EXPECT_EQ(call(admin_, "GET", "/api/v1/metrics/cases", "", {{"from", "x"}}).status, 400);
  EXPECT_EQ(call(admin_, "GET", "/api/v1/metrics/cases", "", {{"bogus", "1"}}).status, 400);
  nlohmann::json later =
      json(call(admin_, "GET", "/api/v1/metrics/cases", "", {{"from", "2026-01-02T00:00:00Z"}}));
  EXPECT_TRUE(later["groups"].empty());
}

// An empty tenant= is rejected by case lists and case metrics alike, where the list used
// to return no cases and the metrics every tenant.
TEST_F(CaseRoutesTest, EmptyTenantRejected) {
  for (const char* path : {"/api/v1/cases", "/api/v1/metrics/cases"}) {
    ApiResponse response = call(admin_, "GET", path, "", {{"tenant", ""}});
    EXPECT_EQ(response.status, 400) << path;
    EXPECT_NE(response.body.find("tenant= is empty"), std::string::npos) << response.body;
  }
}

}  // namespace
}  // namespace vigil::mgmt

// The case endpoints over HTTP on a real ApiServer on loopback: a full analyst session,
// evidence upload and download, merge, metrics, and a tenant-limited principal.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/escaping.h"
#include "common/clock.h"
#include "mgmt/api_server.h"
#include "auth_test_util.h"
#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

using testing::kSecond;
using testing::kT0;
using testing::makeAlert;

class CaseApiTest : public ::testing::Test {
 protected:
  void SetUp() override { start(testing::adminPrincipal()); }

  void start(const Principal& who) {
    if (server_) server_->stop();
    server_.reset();
    if (!store_) {
      CaseStoreOptions options;
      options.clock = &clock_;
      options.max_evidence_bytes = 4096;
      options.sla[static_cast<size_t>(Severity::kHigh)] = {60 * kSecond, 3600 * kSecond};
      auto store = CaseStore::open(dir_.file("cases.db"), options);
      ASSERT_TRUE(store.ok()) << store.status();
      store_ = *std::move(store);
    }
    if (!auth_) auth_ = std::make_unique<testing::TestAuth>(dir_.file(""), std::vector<std::string>{"acme", "globex"});
    ApiServerOptions options;
    options.listen = "127.0.0.1:0";
    auth_->apply(options);
    server_ = std::make_unique<ApiServer>(*store_, metrics_, options);
    ASSERT_TRUE(server_->start().ok());
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    // A token with the role and tenants of `who`, named after its subject, so timelines
    // and note authors show that subject (the actor is the token's name).
    client_->set_bearer_token_auth(auth_->mint(who.role, who.tenants, who.subject));
  }

  void TearDown() override {
    if (server_) server_->stop();
  }

  // Sends a JSON request and returns the parsed reply, checking the status.
  nlohmann::json send(const std::string& method, const std::string& path,
                      const nlohmann::json& body, int expected) {
    const std::string text = body.is_null() ? "" : body.dump();
    httplib::Result r = method == "POST"    ? client_->Post(path, text, "application/json")
                        : method == "PATCH" ? client_->Patch(path, text, "application/json")
                                            : client_->Get(path);
    EXPECT_TRUE(r) << method << " " << path;
    if (!r) return {};
    EXPECT_EQ(r->status, expected) << method << " " << path << ": " << r->body;
    return nlohmann::json::parse(r->body, nullptr, false);
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::TestAuth> auth_;
  SimulatedClock clock_{kT0};
  MetricsRegistry metrics_;
  std::unique_ptr<CaseStore> store_;
  std::unique_ptr<ApiServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

// Open, assign, work and resolve a case; every step shows up in the timeline and the
// metrics reflect the recorded times.
TEST_F(CaseApiTest, AnalystSession) {
  nlohmann::json c = send("POST", "/api/v1/cases",
                          {{"title", "Credential stuffing"},
                           {"tenant", "acme"},
                           {"severity", "high"},
                           {"tags", {"auth"}}},
                          201);
  const std::string path = "/api/v1/cases/" + std::to_string(c["id"].get<int64_t>());
  EXPECT_EQ(c["sla"]["acknowledge_breached"], false);

  clock_.advanceNs(30 * kSecond);
  send("PATCH", path, {{"assignee", "bob"}, {"status", "in_progress"}}, 200);
  nlohmann::json task = send("POST", path + "/tasks", {{"title", "Reset passwords"}}, 201);
  send("PATCH", path + "/tasks/" + std::to_string(task["id"].get<int64_t>()), {{"status", "done"}},
       200);
  nlohmann::json note = send("POST", path + "/notes", {{"body", "@bob done, see logs"}}, 201);
  EXPECT_EQ(note["mentions"], nlohmann::json({"bob"}));
  EXPECT_EQ(note["author"], "admin");  // the name of the token the session signed in with

  clock_.advanceNs(600 * kSecond);
  nlohmann::json resolved =
      send("PATCH", path, {{"status", "resolved"}, {"resolution", "true_positive"}}, 200);
  EXPECT_DOUBLE_EQ(resolved["metrics"]["mtta_s"].get<double>(), 30);
  EXPECT_DOUBLE_EQ(resolved["metrics"]["mttr_s"].get<double>(), 630);
  EXPECT_EQ(resolved["sla"]["acknowledge_breached"], false);
  EXPECT_EQ(resolved["sla"]["resolve_breached"], false);

  nlohmann::json detail = send("GET", path, nullptr, 200);
  EXPECT_EQ(detail["tasks"].size(), 1u);
  EXPECT_EQ(detail["notes"].size(), 1u);

  nlohmann::json timeline = send("GET", path + "/timeline", nullptr, 200);
  std::vector<std::string> actions;
  for (const auto& e : timeline["items"]) actions.push_back(e["action"].get<std::string>());
  EXPECT_EQ(actions,
            (std::vector<std::string>{"created", "updated", "updated", "task_added", "task_updated",
                                      "note_added", "updated", "updated"}));

  nlohmann::json list = send("GET", "/api/v1/cases?tag=auth&assignee=bob&q=STUFF", nullptr, 200);
  EXPECT_EQ(list["total"], 1);
}

// A raw and a base64 upload of the same bytes store one file; the download returns the
// exact bytes as an attachment.
TEST_F(CaseApiTest, EvidenceUploadAndDownload) {
  nlohmann::json c = send("POST", "/api/v1/cases", {{"title", "Malware"}, {"tenant", "acme"}}, 201);
  const std::string path = "/api/v1/cases/" + std::to_string(c["id"].get<int64_t>());
  const std::string bytes("MZ\x90\0\x03\xff", 6);  // a PE header start with NUL and 0xff

  httplib::Result raw =
      client_->Post(path + "/evidence?name=sample.exe", bytes, "application/octet-stream");
  ASSERT_TRUE(raw);
  ASSERT_EQ(raw->status, 201) << raw->body;
  nlohmann::json file = nlohmann::json::parse(raw->body);
  EXPECT_EQ(file["size_bytes"], 6);
  const std::string sha = file["sha256"];

  nlohmann::json again =
      send("POST", path + "/evidence",
           {{"name", "copy.exe"}, {"content_base64", absl::Base64Escape(bytes)}}, 200);
  EXPECT_EQ(again["sha256"], sha);
  EXPECT_EQ(again["name"], "sample.exe");

  httplib::Result down = client_->Get(path + "/evidence/" + sha);
  ASSERT_TRUE(down);
  EXPECT_EQ(down->status, 200);
  EXPECT_EQ(down->body, bytes);
  EXPECT_EQ(down->get_header_value("Content-Type"), "application/octet-stream");
  EXPECT_EQ(down->get_header_value("Content-Disposition"), "attachment; filename=\"sample.exe\"");
  EXPECT_EQ(down->get_header_value("X-Content-Type-Options"), "nosniff");

  httplib::Result big = client_->Post(path + "/evidence?name=big", std::string(5000, 'x'),
                                      "application/octet-stream");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
}

// Merging over HTTP moves the alerts and reports the closed source.
TEST_F(CaseApiTest, MergeAndMetrics) {
  auto a = store_->ingestAlert(makeAlert("ssh", "high", "acme", {{"ip", "1"}}, kT0));
  auto b = store_->ingestAlert(makeAlert("ssh", "high", "acme", {{"ip", "2"}}, kT0));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  clock_.advanceNs(120 * kSecond);
  nlohmann::json merged = send("POST", "/api/v1/cases/" + std::to_string(a->case_id) + "/merge",
                               {{"into", b->case_id}}, 200);
  EXPECT_EQ(merged["alert_count"], 2);
  nlohmann::json source = send("GET", "/api/v1/cases/" + std::to_string(a->case_id), nullptr, 200);
  EXPECT_EQ(source["status"], "closed");
  EXPECT_EQ(source["merged_into"], b->case_id);

  nlohmann::json metrics =
      send("GET", "/api/v1/metrics/cases?tenant=acme&from=2025-12-31T00:00:00Z", nullptr, 200);
  ASSERT_EQ(metrics["groups"].size(), 2u);
  const nlohmann::json& high = metrics["groups"][0];
  EXPECT_EQ(high["severity"], "high");
  EXPECT_EQ(high["cases"], 2);
  // The source's alerts moved to the target, so only the target has an MTTD.
  EXPECT_EQ(high["mttd"]["count"], 1);
  EXPECT_DOUBLE_EQ(high["mttd"]["p50_s"].get<double>(), 10);
  // The target was acknowledged by the merge 120 s after detection, past the 60 s target;
  // the merged-away source does not count.
  EXPECT_EQ(high["sla_breaches"]["acknowledge"], 1);
}

// A principal limited to one tenant sees only that tenant over HTTP too.
TEST_F(CaseApiTest, TenantLimitedPrincipal) {
  auto acme = store_->ingestAlert(makeAlert("ssh", "high", "acme", {}, kT0));
  auto globex = store_->ingestAlert(makeAlert("ssh", "high", "globex", {}, kT0));
  ASSERT_TRUE(acme.ok());
  ASSERT_TRUE(globex.ok());
  start(testing::makePrincipal("ann", Role::kAnalyst, {"acme"}));
  EXPECT_EQ(send("GET", "/api/v1/cases", nullptr, 200)["total"], 1);
  send("GET", "/api/v1/cases/" + std::to_string(globex->case_id), nullptr, 404);
  send("PATCH", "/api/v1/cases/" + std::to_string(globex->case_id), {{"assignee", "ann"}}, 404);
  send("PATCH", "/api/v1/cases/" + std::to_string(acme->case_id), {{"assignee", "ann"}}, 200);
  send("POST", "/api/v1/cases", {{"title", "x"}, {"tenant", "globex"}}, 403);
  EXPECT_EQ(store_->getCase(globex->case_id)->info.assignee, "");
}

}  // namespace
}  // namespace vigil::mgmt

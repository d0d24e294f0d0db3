// Contract tests of the REST API against docs/openapi.yaml. A real Daemon replays a small
// log into its case store and serves the API on loopback. Each test sends real requests
// and checks the status, content type, query and body of every exchange against the
// document. The route test fails when a route of the server is missing from the
// document or a documented operation has no route, so a new endpoint cannot ship
// without its contract.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "mgmt/api_server.h"
#include "mgmt/auth_store.h"
#include "mgmt/config.h"
#include "mgmt/daemon.h"
#include "mgmt_test_util.h"
#include "tests/openapi/openapi_document.h"

namespace vigil::mgmt {
namespace {

using nlohmann::json;
using openapi::Document;
using openapi::Operation;

constexpr char kRules[] = R"(title: SSH password failure
name: ssh_failed
id: 11111111-0000-4000-8000-000000000001
logsource: {product: linux, service: sshd}
detection:
  selection:
    event.action: ssh_login
    event.outcome: failure
  condition: selection
level: low
---
title: SSH brute force
id: 11111111-0000-4000-8000-000000000002
correlation:
  type: event_count
  rules: [ssh_failed]
  group-by: [source.ip]
  timespan: 60s
  condition: {gte: 3}
level: high
---
title: Watchlist hit
id: 11111111-0000-4000-8000-000000000003
logsource: {category: any}
detection:
  selection:
    intel.list: watch
  condition: selection
level: medium
)";

constexpr char kReplay[] =
    "<38>Oct 11 22:14:15 web1 sshd[4242]: Failed password for root from 198.51.100.7 port "
    "40022 ssh2\n"
    "<38>Oct 11 22:14:16 web1 sshd[4242]: Failed password for root from 198.51.100.7 port "
    "40022 ssh2\n"
    "<38>Oct 11 22:14:17 web1 sshd[4242]: Failed password for root from 198.51.100.7 port "
    "40022 ssh2\n"
    "<38>Oct 11 22:14:20 web1 sshd[4243]: Accepted password for bob from 203.0.113.66 port "
    "51000 ssh2\n"
    "<38>Oct 11 22:15:01 web1 sshd[4250]: Failed password for root from 192.0.2.44 port "
    "40100 ssh2\n"
    "<38>Oct 11 22:15:02 web1 sshd[4250]: Failed password for root from 192.0.2.44 port "
    "40100 ssh2\n"
    "<38>Oct 11 22:15:03 web1 sshd[4250]: Failed password for root from 192.0.2.44 port "
    "40100 ssh2\n";

// Each brute-force alert starts a run that waits for approval, so the approve and deny
// routes have a run to decide.
constexpr char kPlaybook[] = R"(name: ask-before-block
trigger:
  rule_ids: [11111111-0000-4000-8000-000000000002]
steps:
  - wait_for_approval: "Block ${alert.source.ip}?"
    timeout: 1h
    default: reject
    on_approve:
      - log: "approved for ${alert.source.ip}"
    on_reject:
      - log: "left ${alert.source.ip} alone"
)";

absl::StatusOr<Document> loadContract() {
  return Document::load(std::string(VIGIL_SOURCE_DIR) + "/docs/openapi.yaml");
}

// One request and the status the test expects for it.
struct Call {
  Call(std::string method_in, std::string target_in, int expected_status_in,
       std::string body_in = "", std::string content_type_in = "")
      : method(std::move(method_in)),
        target(std::move(target_in)),
        expected_status(expected_status_in),
        body(std::move(body_in)),
        content_type(std::move(content_type_in)) {}

  std::string method;
  std::string target;  // path and query
  int expected_status;
  std::string body;
  std::string content_type;
};

// Splits "?a=1&b=2" into pairs without percent-decoding; the tests send plain values.
std::vector<std::pair<std::string, std::string>> queryPairs(const std::string& target) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t question = target.find('?');
  if (question == std::string::npos) return out;
  for (absl::string_view part : absl::StrSplit(target.substr(question + 1), '&')) {
    std::pair<std::string, std::string> pair = absl::StrSplit(part, absl::MaxSplits('=', 1));
    out.push_back(std::move(pair));
  }
  return out;
}

class ContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Document> doc = loadContract();
    ASSERT_TRUE(doc.ok()) << doc.status();
    doc_ = std::make_unique<Document>(*std::move(doc));

    writeFile("rules.yml", kRules);
    writeFile("watch.txt", "203.0.113.66\n");
    writeFile("replay.log", kReplay);
    std::filesystem::create_directories(dir_.file("playbooks"));
    writeFile("playbooks/ask.yml", kPlaybook);
    const std::string yaml = "state_dir: " + dir_.file("state") +
                             "\n"
                             "sources:\n"
                             "  - {name: replay, type: file, tenant: acme, path: replay.log}\n"
                             "intel:\n  lists: [{name: watch, path: watch.txt}]\n"
                             "rules:\n  paths: [rules.yml]\n"
                             "api: {listen: '127.0.0.1:0'}\n"
                             "playbooks:\n  paths: [playbooks]\n"
                             // Small enough that the API's body limit stays at 1 MiB.
                             "cases: {evidence_max_bytes: 65536}\n";
    // POST /api/v1/config/reload rereads the file.
    writeFile("vigil.yaml", yaml);
    absl::StatusOr<DaemonConfig> config = parseConfig(yaml, dir_.file("vigil.yaml"), dir_.file(""));
    ASSERT_TRUE(config.ok()) << config.status();
    mintAdminToken();
    daemon_ = std::make_unique<Daemon>(*std::move(config), DaemonOptions{});
    absl::Status started = daemon_->start();
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_NE(daemon_->api(), nullptr);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", daemon_->api()->port());
    client_->set_bearer_token_auth(token_);

    // The three cases of the replay are stored, and both brute-force runs wait for
    // approval, before any test reads them.
    ASSERT_TRUE(testing::waitFor([&] {
      httplib::Result result = client_->Get("/api/v1/cases");
      if (!result || result->status != 200) return false;
      json page = json::parse(result->body, nullptr, false);
      return !page.is_discarded() && page.value("total", 0) == 3;
    }));
    ASSERT_TRUE(testing::waitFor([&] {
      httplib::Result result = client_->Get("/api/v1/approvals");
      if (!result || result->status != 200) return false;
      json page = json::parse(result->body, nullptr, false);
      return !page.is_discarded() && page.value("total", 0) == 2;
    }));
  }

  void TearDown() override {
    if (daemon_) daemon_->stop();
  }

  // Writes an admin token into <state_dir>/auth.db before vigild opens it, as
  // 'vigilctl tokens bootstrap' does.
  void mintAdminToken() {
    const std::string state = dir_.file("state");
    std::filesystem::create_directories(state);
    absl::StatusOr<std::unique_ptr<AuthStore>> auth = AuthStore::open(AuthStore::defaultPath(state));
    ASSERT_TRUE(auth.ok()) << auth.status();
    TokenRequest admin;
    admin.name = "contract-admin";
    admin.role = Role::kAdmin;
    admin.created_by = "contract-test";
    absl::StatusOr<IssuedToken> issued = (*auth)->createToken(admin);
    ASSERT_TRUE(issued.ok()) << issued.status();
    token_ = issued->token;
  }

  void writeFile(const std::string& name, const std::string& text) {
    std::ofstream(dir_.file(name)) << text;
  }

  int64_t caseIdWithAlerts() {
    httplib::Result result = client_->Get("/api/v1/cases?sort=id&limit=1");
    EXPECT_TRUE(result);
    if (!result) return 0;
    return json::parse(result->body)["items"][0]["id"].get<int64_t>();
  }

  // Sends `call`, checks the exchange against the document and records the operation as
  // covered when the response was a success. Returns the response body.
  std::string exercise(const Call& call) {
    httplib::Request request;
    request.method = call.method;
    request.path = call.target;
    if (!call.content_type.empty()) request.set_header("Content-Type", call.content_type);
    request.body = call.body;
    const std::string label = call.method + " " + call.target;
    httplib::Result result = client_->send(request);
    EXPECT_TRUE(result) << label << ": " << httplib::to_string(result.error());
    if (!result) return "";
    EXPECT_EQ(result->status, call.expected_status) << label << ": " << result->body;
    const std::string content_type = result->get_header_value("Content-Type");

    const std::string path = call.target.substr(0, call.target.find('?'));
    std::optional<Operation> operation = doc_->findOperation(call.method, path);
    if (!operation.has_value()) {
      // Paths and methods outside the document can only be refused, with an Error body.
      EXPECT_TRUE(result->status == 404 || result->status == 405 || result->status == 413)
          << label << " is not in the document but got " << result->status;
      EXPECT_EQ(content_type, "application/json") << label;
      json body = json::parse(result->body, nullptr, false);
      std::vector<std::string> errors =
          doc_->validator().validate({{"$ref", "#/components/schemas/Error"}}, body);
      EXPECT_TRUE(errors.empty()) << label << ":\n" << absl::StrJoin(errors, "\n");
      return result->body;
    }

    const bool is_head = call.method == "HEAD";
    if (is_head) {
      EXPECT_TRUE(result->body.empty()) << label << ": " << result->body;
    }
    std::vector<std::string> errors =
        doc_->checkResponse(*operation, result->status, content_type, result->body, !is_head);
    if (result->status < 300) {
      // A success also proves the request was valid, so it must match the document too.
      for (std::string& e : doc_->checkQuery(*operation, queryPairs(call.target))) {
        errors.push_back(std::move(e));
      }
      for (std::string& e : doc_->checkRequestBody(*operation, call.content_type, call.body)) {
        errors.push_back(std::move(e));
      }
      covered_.insert(operation->method + " " + operation->path);
    }
    EXPECT_TRUE(errors.empty()) << label << ":\n" << absl::StrJoin(errors, "\n");
    return result->body;
  }

  testing::TempDir dir_;
  std::unique_ptr<Document> doc_;
  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<httplib::Client> client_;
  std::string token_;  // admin token minted before the daemon starts
  std::set<std::string> covered_;
};

// The document is well formed and uses only what the validator checks.
TEST(ContractDocumentTest, LintsClean) {
  absl::StatusOr<Document> doc = loadContract();
  ASSERT_TRUE(doc.ok()) << doc.status();
  std::vector<std::string> problems = doc->lint();
  EXPECT_TRUE(problems.empty()) << absl::StrJoin(problems, "\n");
  ASSERT_TRUE(doc->root()["components"]["securitySchemes"].contains("bearerAuth"));
  EXPECT_EQ(doc->root()["components"]["securitySchemes"]["bearerAuth"]["scheme"], "bearer");
}

// Every route the daemon registers is documented, and every documented operation has a
// route.
TEST_F(ContractTest, RoutesMatchDocument) {
  std::set<std::string> routes;
  for (const RouteInfo& route : daemon_->api()->routes()) {
    routes.insert(route.method + " " + route.pattern);
  }
  std::set<std::string> documented;
  for (const Operation& operation : doc_->operations()) {
    documented.insert(operation.method + " " + operation.path);
  }
  for (const std::string& route : routes) {
    EXPECT_EQ(documented.count(route), 1u)
        << route << " is served but missing from docs/openapi.yaml; add it (see CONTRIBUTING.md)";
  }
  for (const std::string& operation : documented) {
    EXPECT_EQ(routes.count(operation), 1u)
        << operation << " is in docs/openapi.yaml but no route serves it";
  }
  // The check above compares two non-empty sets, not two empty ones.
  EXPECT_GE(routes.size(), 9u);
}

// Every documented operation returns a documented success for a valid request.
TEST_F(ContractTest, EveryOperationSucceedsAsDocumented) {
  const std::string id = std::to_string(caseIdWithAlerts());
  const std::vector<Call> calls = {
      {"GET", "/healthz", 200},
      {"GET", "/readyz", 200},
      {"GET", "/metrics", 200},
      {"GET", "/", 200},
      {"GET", "/console", 200},
      {"GET", "/console/app.js", 200},
      {"GET", "/console/console.css", 200},
      {"GET", "/console/favicon.svg", 200},
      {"GET", "/api/v1/status", 200},
      {"GET", "/api/v1/cases", 200},
      {"GET", "/api/v1/cases?tenant=acme&status=new&severity=high&limit=1&offset=0&sort=-severity",
       200},
      {"GET", "/api/v1/cases?tenant=nobody", 200},
      {"GET", "/api/v1/cases?sort=id&offset=1", 200},
      {"GET", "/api/v1/cases/" + id, 200},
      {"HEAD", "/api/v1/cases/" + id, 200},
      {"GET", "/api/v1/intel/sightings", 200},
      {"POST", "/api/v1/intel/indicators", 200, "198.51.100.99\nevil.example\nnot an indicator\n",
       "text/plain"},
      {"POST", "/api/v1/intel/indicators?tenant=acme", 200, "acme.example\n", "text/plain"},
      {"GET", "/api/v1/intel/indicators?tenant=acme", 200},
      {"GET", "/api/v1/intel/sightings?tenant=acme", 200},
      {"DELETE", "/api/v1/intel/indicators?tenant=acme", 200, "acme.example\nother.example\n",
       "text/plain"},
      {"GET", "/api/v1/intel/indicators", 200},
      {"POST", "/api/v1/intel/reload", 202},
      {"GET", "/api/v1/whoami", 200},
      {"GET", "/api/v1/tenants", 200},
      {"GET", "/api/v1/tenants?sort=-created&limit=1&offset=1", 200},
      {"GET", "/api/v1/tenants?sort=size", 400},
      {"POST", "/api/v1/tenants", 201, R"({"name": "globex"})", "application/json"},
      {"DELETE", "/api/v1/tenants/globex", 200},
      {"GET", "/api/v1/tokens", 200},
      {"GET", "/api/v1/tokens?role=admin&state=active&sort=name&limit=2&offset=0", 200},
      {"GET", "/api/v1/tokens?limit=0", 400},
      {"GET", "/api/v1/audit?limit=5&after=0", 200},
      {"GET", "/api/v1/metrics/cases?tenant=acme&from=2020-01-01T00:00:00Z", 200},
      {"GET", "/api/v1/runs?tenant=acme&state=waiting_approval&limit=10&offset=0", 200},
      {"GET", "/api/v1/approvals?playbook=ask-before-block", 200},
      {"GET", "/api/v1/runs?sort=id", 200},
      {"GET", "/api/v1/approvals?sort=-updated&limit=1", 200},
      {"GET", "/api/v1/runs?sort=tenant", 400},
      {"POST", "/api/v1/config/reload", 200},
  };
  for (const Call& call : calls) exercise(call);

  // Tokens: issue one, then revoke it by the id the response returned.
  json token = json::parse(exercise(
      {"POST", "/api/v1/tokens", 201,
       R"({"name": "reader", "role": "read_only", "tenants": ["acme"], "expires_in_s": 3600})",
       "application/json"}));
  ASSERT_TRUE(token.contains("id")) << token.dump();
  exercise({"DELETE", "/api/v1/tokens/" + token["id"].get<std::string>(), 200});

  // Case work on a case opened by hand, merged at the end into the case with alerts.
  json opened = json::parse(exercise(
      {"POST", "/api/v1/cases", 201,
       R"({"title": "Phishing report", "tenant": "acme", "severity": "high", "tags": ["mail"]})",
       "application/json"}));
  ASSERT_TRUE(opened.contains("id")) << opened.dump();
  const std::string manual = std::to_string(opened["id"].get<int64_t>());
  const std::string base = "/api/v1/cases/" + manual;
  exercise({"PATCH", base, 200, R"({"status": "in_progress", "assignee": "alice"})",
            "application/json"});
  json task = json::parse(
      exercise({"POST", base + "/tasks", 201, R"({"title": "Pull the mail headers"})",
                "application/json"}));
  ASSERT_TRUE(task.contains("id")) << task.dump();
  exercise({"PATCH", base + "/tasks/" + std::to_string(task["id"].get<int64_t>()), 200,
            R"({"status": "done"})", "application/json"});
  exercise({"POST", base + "/notes", 201, R"({"body": "headers attached for @alice"})",
            "application/json"});
  json file = json::parse(exercise(
      {"POST", base + "/evidence", 201,
       R"({"name": "headers.txt", "content_base64": "UmVjZWl2ZWQ6IGZyb20gbWFpbAo=",)"
       R"( "content_type": "text/plain"})",
       "application/json"}));
  ASSERT_TRUE(file.contains("sha256")) << file.dump();
  EXPECT_EQ(exercise({"GET", base + "/evidence/" + file["sha256"].get<std::string>(), 200}),
            "Received: from mail\n");
  exercise({"GET", base + "/timeline", 200});
  exercise({"POST", base + "/merge", 200, R"({"into": )" + id + "}", "application/json"});

  // Content: two rule versions, a dry run, a diff and a rollback to the first.
  const std::string rules_v1 = json({{"files", {{"rules.yml", kRules}}}}).dump();
  const std::string rules_v2 =
      json({{"files", {{"rules.yml", std::string(kRules) + "tags: [attack.t1110]\n"}}}}).dump();
  exercise({"POST", "/api/v1/content/rules", 201, rules_v1, "application/json"});
  exercise({"POST", "/api/v1/content/rules", 201, rules_v2, "application/json"});
  json dry = {{"files", {{"rules.yml", kRules}}}, {"events", json::array({std::string(kReplay)})}};
  exercise({"POST", "/api/v1/content/rules?dry_run=true", 200, dry.dump(), "application/json"});
  exercise({"GET", "/api/v1/content/rules/versions", 200});
  exercise({"GET", "/api/v1/content/rules/versions?sort=version&limit=1&offset=1", 200});
  exercise({"GET", "/api/v1/content/rules/versions?offset=-1", 400});
  exercise({"GET", "/api/v1/content/rules/versions/1", 200});
  exercise({"GET", "/api/v1/content/rules/versions/2/diff?against=1", 200});
  exercise({"POST", "/api/v1/content/rules/versions/1/activate", 200});
  exercise({"GET", "/api/v1/content/rules/versions/1", 200});
  json activations = json::parse(exercise({"GET", "/api/v1/content/rules/activations", 200}));
  ASSERT_EQ(activations["activations"].size(), 3u) << activations.dump();
  EXPECT_EQ(activations["activations"][0]["action"], "rollback") << activations.dump();
  exercise({"GET", "/api/v1/content/rules/activations?sort=seq&limit=1&action=activate", 200});
  exercise({"GET", "/api/v1/content/rules/activations?version=0", 400});

  // Deletions of a tenant's rules: one rule, then the whole set, each audited with what
  // it deleted.
  exercise({"POST", "/api/v1/content/rules?tenant=acme", 201, rules_v1, "application/json"});
  exercise({"DELETE", "/api/v1/content/rules/items/11111111-0000-4000-8000-000000000002?tenant=acme",
            200});
  exercise({"DELETE", "/api/v1/content/rules?tenant=acme", 200});
  json audit = json::parse(exercise({"GET", "/api/v1/audit?limit=1000", 200}));
  ASSERT_GE(audit["items"].size(), 2u) << audit.dump();
  const json& last = audit["items"].back();
  EXPECT_EQ(last["method"], "DELETE") << last.dump();
  EXPECT_EQ(last["target"], "rules tenant=acme version=3 deleted=all") << last.dump();
  EXPECT_EQ(last["tenants"], json::array({"acme"})) << last.dump();

  // Runs: one waiting run is approved and the other denied.
  json waiting = json::parse(exercise({"GET", "/api/v1/approvals", 200}));
  ASSERT_EQ(waiting["items"].size(), 2u) << waiting.dump();
  const std::string first_run = std::to_string(waiting["items"][0]["id"].get<int64_t>());
  const std::string second_run = std::to_string(waiting["items"][1]["id"].get<int64_t>());
  exercise({"GET", "/api/v1/runs/" + first_run, 200});
  const std::string wrong_type =
      exercise({"POST", "/api/v1/runs/" + first_run + "/approve", 400, R"({"comment": 5})",
                "application/json"});
  EXPECT_NE(wrong_type.find("field comment is 5;"), std::string::npos) << wrong_type;
  exercise({"POST", "/api/v1/runs/" + first_run + "/approve", 200, R"({"comment": "confirmed"})",
            "application/json"});
  exercise({"POST", "/api/v1/runs/" + second_run + "/deny", 200});

  for (const Operation& operation : doc_->operations()) {
    const std::string key = operation.method + " " + operation.path;
    EXPECT_EQ(covered_.count(key), 1u) << key << " has no successful call in this test; add one";
  }
}

// The replayed events show up in the bodies the schemas checked: a case with alerts and
// evidence, a sighting and a rejected indicator line.
TEST_F(ContractTest, SuccessBodiesCarryTheReplay) {
  json detail =
      json::parse(exercise({"GET", "/api/v1/cases/" + std::to_string(caseIdWithAlerts()), 200}));
  EXPECT_FALSE(detail["alerts"].empty());
  EXPECT_FALSE(detail["evidence"].empty());
  json sightings = json::parse(exercise({"GET", "/api/v1/intel/sightings", 200}));
  ASSERT_FALSE(sightings["indicators"].empty()) << sightings.dump();
  EXPECT_EQ(sightings["indicators"][0]["indicator"], "203.0.113.66");
  json report = json::parse(exercise({"POST", "/api/v1/intel/indicators", 200,
                                      "198.51.100.99\nnot an indicator\n", "text/plain"}));
  EXPECT_EQ(report["loaded"], 1);
  EXPECT_EQ(report["rejected"], 1);
  ASSERT_EQ(report["rejections"].size(), 1u);
  json status = json::parse(exercise({"GET", "/api/v1/status", 200}));
  ASSERT_EQ(status["sources"].size(), 1u);
  EXPECT_EQ(status["sources"][0]["type"], "file");
}

// Bad parameters, unknown ids, unknown paths, wrong methods and oversize bodies get the
// documented status with an Error body.
TEST_F(ContractTest, ErrorsAreDocumented) {
  const std::vector<Call> calls = {
      {"GET", "/api/v1/cases?limit=abc", 400},
      {"GET", "/api/v1/cases?limit=0", 400},
      {"GET", "/api/v1/cases?limit=501", 400},
      {"GET", "/api/v1/cases?offset=-1", 400},
      {"GET", "/api/v1/cases?status=open", 400},
      {"GET", "/api/v1/cases?severity=urgent", 400},
      {"GET", "/api/v1/cases?sort=name", 400},
      {"GET", "/api/v1/cases?limt=5", 400},
      {"GET", "/api/v1/cases?tenant=a&tenant=b", 400},
      {"GET", "/api/v1/cases/abc", 400},
      {"GET", "/api/v1/cases/0", 400},
      {"GET", "/api/v1/cases/99999", 404},
      {"GET", "/api/v1/cases/1?verbose=1", 400},
      {"GET", "/api/v2/cases", 404},
      {"GET", "/console/nothere.js", 404},
      {"DELETE", "/api/v1/cases/1", 405},
      {"POST", "/api/v1/cases", 400, "{}", "application/json"},
      {"GET", "/api/v1/intel/reload", 405},
      {"PUT", "/healthz", 405},
      {"POST", "/api/v1/intel/indicators", 413, std::string((1 << 20) + 1, 'a'), "text/plain"},
      // The analyst list routes read the plain list format, not JSON.
      {"POST", "/api/v1/intel/indicators", 400, R"({"indicators": ["198.51.100.7"]})",
       "application/json"},
      {"DELETE", "/api/v1/intel/indicators", 400, R"(["198.51.100.7"])",
       "application/json; charset=utf-8"},
      {"POST", "/api/v1/intel/reload", 413, std::string((1 << 20) + 1, 'a'), "text/plain"},
      {"POST", "/api/v1/nowhere", 413, std::string((1 << 20) + 1, 'a'), "text/plain"},
  };
  for (const Call& call : calls) exercise(call);
}

// Admin-only routes return 403 to a token of another role, and the document lists it.
TEST_F(ContractTest, AdminRoutesRejectAnalystToken) {
  json issued = json::parse(exercise({"POST", "/api/v1/tokens", 201,
                                      R"({"name": "ana", "role": "analyst", "tenants": ["acme"]})",
                                      "application/json"}),
                            nullptr, false);
  ASSERT_TRUE(issued.contains("token")) << issued.dump();
  client_->set_bearer_token_auth(issued["token"].get<std::string>());
  const std::vector<Call> calls = {
      {"GET", "/api/v1/status", 403},
      {"POST", "/api/v1/config/reload", 403, "", "text/plain"},
      {"POST", "/api/v1/intel/reload", 403, "", "text/plain"},
      {"POST", "/api/v1/tenants", 403, R"({"name": "other"})", "application/json"},
  };
  for (const Call& call : calls) exercise(call);
  client_->set_bearer_token_auth(token_);
}

// The 405 response names the allowed methods in Allow.
TEST_F(ContractTest, MethodNotAllowedListsAllow) {
  httplib::Result result = client_->Delete("/api/v1/intel/reload");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 405);
  EXPECT_EQ(result->get_header_value("Allow"), "POST");
}

// Readiness: the daemon is ready after start(), and not before.
TEST_F(ContractTest, DaemonReadiness) {
  EXPECT_TRUE(daemon_->readiness().ok()) << daemon_->readiness();
  exercise({"GET", "/readyz", 200});
  absl::StatusOr<DaemonConfig> config = parseConfig("state_dir: " + dir_.file("other") + "\n",
                                                    dir_.file("other.yaml"), dir_.file(""));
  ASSERT_TRUE(config.ok()) << config.status();
  Daemon idle(*std::move(config), DaemonOptions{});
  absl::Status not_started = idle.readiness();
  EXPECT_TRUE(absl::IsUnavailable(not_started)) << not_started;
  EXPECT_NE(not_started.message().find("indicator snapshot"), absl::string_view::npos)
      << not_started;
}

// A server whose readiness check fails answers /readyz with 503 and the reason, in the
// documented shape.
TEST(ContractReadinessTest, NotReadyIs503WithReason) {
  absl::StatusOr<Document> doc = loadContract();
  ASSERT_TRUE(doc.ok()) << doc.status();
  testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<CaseStore>> store = CaseStore::open(dir.file("cases.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  MetricsRegistry metrics;
  ApiServerOptions options;
  options.listen = "127.0.0.1:0";
  ApiServer server(**store, metrics, options);
  bool ready = false;
  server.setReadinessCheck([&ready] {
    return ready ? absl::OkStatus() : absl::UnavailableError("the pipeline thread has not started");
  });
  ASSERT_TRUE(server.start().ok());
  httplib::Client client("127.0.0.1", server.port());
  const Operation readyz{"GET", "/readyz"};

  httplib::Result not_ready = client.Get("/readyz");
  ASSERT_TRUE(not_ready);
  EXPECT_EQ(not_ready->status, 503);
  std::vector<std::string> errors = doc->checkResponse(
      readyz, not_ready->status, not_ready->get_header_value("Content-Type"), not_ready->body);
  EXPECT_TRUE(errors.empty()) << absl::StrJoin(errors, "\n");
  json body = json::parse(not_ready->body);
  EXPECT_EQ(body["status"], "not_ready");
  EXPECT_EQ(body["reason"], "the pipeline thread has not started");

  ready = true;
  httplib::Result now_ready = client.Get("/readyz");
  ASSERT_TRUE(now_ready);
  EXPECT_EQ(now_ready->status, 200);
  EXPECT_EQ(json::parse(now_ready->body), json({{"status", "ready"}}));
  server.stop();
}

}  // namespace
}  // namespace vigil::mgmt

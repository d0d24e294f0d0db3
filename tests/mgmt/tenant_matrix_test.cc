// The tenant matrix: every route that vigild serves, called by every role scoped to tenant
// "acme", against acme's objects and against globex's. A real Daemon runs on temporary
// folders with the stores vigild builds (cases, runs, content with its activators,
// tokens, audit log, indicator snapshot). It replays one log per tenant, so each tenant
// has cases and playbook runs waiting for approval.
//
// The test proves that no acme token reads globex data (no response contains the globex
// marker text) or changes it (no mutating call on a globex object succeeds), and that each
// role gets 403 exactly where its capabilities end. Routes come from the daemon's route
// table and from docs/openapi.yaml, so a route added without a row in samples() fails
// the test until someone states its rule here.
#include <gtest/gtest.h>
#include <httplib.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "auth_test_util.h"
#include "mgmt/api_server.h"
#include "mgmt/auth_store.h"
#include "mgmt/config.h"
#include "mgmt/daemon.h"
#include "mgmt_test_util.h"
#include "tests/openapi/openapi_document.h"

namespace vigil::mgmt {
namespace {

using nlohmann::json;

// Appears only in globex's data: a case title, a token name, a tenant name, the host
// name of globex's log lines (and so its alerts, cases and runs), its source name and
// the text of globex's tenant-scoped content.
constexpr const char* kMarker = "globex-confidential";

const std::vector<std::string> kContentKinds = {"rules", "intel", "playbooks"};

constexpr int kAcmeBruteForces = 12;
constexpr int kGlobexBruteForces = 10;

constexpr char kRules[] = R"(title: SSH password failure
name: ssh_failed
id: 22222222-0000-4000-8000-000000000001
logsource: {product: linux, service: sshd}
detection:
  selection:
    event.action: ssh_login
    event.outcome: failure
  condition: selection
level: low
---
title: SSH brute force
id: 22222222-0000-4000-8000-000000000002
correlation:
  type: event_count
  rules: [ssh_failed]
  group-by: [source.ip]
  timespan: 60s
  condition: {gte: 3}
level: high
)";

// Each brute-force alert starts a run that waits for approval, one per source address.
constexpr char kPlaybook[] = R"(name: ask-before-block
trigger:
  rule_ids: [22222222-0000-4000-8000-000000000002]
steps:
  - wait_for_approval: "Block ${alert.source.ip}?"
    timeout: 1h
    default: reject
    on_approve:
      - log: "approved for ${alert.source.ip}"
    on_reject:
      - log: "left ${alert.source.ip} alone"
)";

enum class Target { kOwn, kOther };  // acme's objects or globex's

// What a caller needs for the route on its own tenant.
enum class Need {
  kNothing,       // public
  kToken,         // any valid token
  kRead,          // canRead
  kWork,          // canWork: admin, tenant_admin or analyst
  kAdminister,    // admin or tenant_admin
  kAdmin,         // admin only
  kContentRead,   // kRead for a tenant-scoped content kind, kToken for a global one
  kContentWrite,  // kAdminister for a tenant-scoped content kind, kAdmin for a global one
};

struct SampleRequest {
  std::string path;
  std::string body;
  std::string content_type = "application/json";
};

class TenantMatrixTest;
using SampleFactory = std::function<SampleRequest(TenantMatrixTest&, Target)>;

// One way to call a route. Most routes have one; the content routes have one per kind
// (and the push route a dry run per kind as well).
struct Sample {
  Sample(std::string label_in, Need need_in, SampleFactory make_in, std::string kind_in = "",
         std::optional<bool> writes_in = std::nullopt)
      : label(std::move(label_in)),
        need(need_in),
        make(std::move(make_in)),
        kind(std::move(kind_in)),
        writes(writes_in) {}

  std::string label;
  Need need;
  SampleFactory make;
  std::string kind;  // content kind for kContentRead and kContentWrite
  // Whether the call changes data. Unset: every method except GET.
  std::optional<bool> writes;
};

struct Caller {
  std::string name;
  Role role;
  std::string token;
};

struct Response {
  int status = 0;
  std::string body;
};

class TenantMatrixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    writeFile("rules.yml", kRules);
    writeFile("watch.txt", "203.0.113.66\n");
    writeFile("acme.log", bruteForces("web1", kAcmeBruteForces));
    writeFile("globex.log", bruteForces(std::string(kMarker) + "-web", kGlobexBruteForces));
    std::filesystem::create_directories(dir_.file("playbooks"));
    writeFile("playbooks/ask.yml", kPlaybook);
    const std::string yaml =
        "state_dir: " + dir_.file("state") + "\n" +
        "sources:\n"
        "  - {name: acme-replay, type: file, tenant: acme, path: acme.log}\n"
        "  - {name: " + kMarker + "-replay, type: file, tenant: globex, path: globex.log}\n"
        "intel:\n  lists: [{name: watch, path: watch.txt}]\n"
        "rules:\n  paths: [rules.yml]\n"
        "api: {listen: '127.0.0.1:0'}\n"
        "playbooks:\n  paths: [playbooks]\n"
        "cases: {evidence_max_bytes: 65536}\n";
    // POST /api/v1/config/reload reads the file again.
    writeFile("vigil.yaml", yaml);
    absl::StatusOr<DaemonConfig> config = parseConfig(yaml, dir_.file("vigil.yaml"), dir_.file(""));
    ASSERT_TRUE(config.ok()) << config.status();
    mintTokens();
    daemon_ = std::make_unique<Daemon>(*std::move(config), DaemonOptions{});
    absl::Status started = daemon_->start();
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_NE(daemon_->api(), nullptr);
    port_ = daemon_->api()->port();

    // Every brute force of both replays is waiting for approval before a call is made.
    ASSERT_TRUE(testing::waitFor([&] {
      json page = adminGet("/api/v1/approvals?limit=100");
      return page.is_object() && page.value("total", 0) == kAcmeBruteForces + kGlobexBruteForces;
    }));
    for (Target target : {Target::kOwn, Target::kOther}) {
      json page = adminGet("/api/v1/approvals?limit=100&tenant=" + tenantOf(target));
      ASSERT_TRUE(page.is_object());
      for (const json& run : page["items"]) runs_[target].push_back(run["id"].get<int64_t>());
    }
    ASSERT_EQ(runs_[Target::kOwn].size(), static_cast<size_t>(kAcmeBruteForces));
    ASSERT_EQ(runs_[Target::kOther].size(), static_cast<size_t>(kGlobexBruteForces));
    any_run_[Target::kOwn] = runs_[Target::kOwn].front();
    any_run_[Target::kOther] = runs_[Target::kOther].front();
    runs_[Target::kOwn].pop_front();
    runs_[Target::kOther].pop_front();

    // Globex data that carries the marker: a case, an audited tenant creation, and the
    // token minted before the start.
    case_ids_[Target::kOwn] = createCase(Target::kOwn, "acme case");
    case_ids_[Target::kOther] = createCase(Target::kOther, std::string(kMarker) + " case");
    ASSERT_EQ(send("POST", "/api/v1/tenants", admin_token_, json({{"name", kMarker}}).dump())
                  .status,
              201);
    findContentScopes();
    for (const std::string& kind : kContentKinds) pushTwoVersions(kind);
    pushTenantIntel();
  }

  // Versions 1 and 2 of each tenant's own intel list, and one analyst value per tenant
  // through the indicator route; globex's carry the marker.
  void pushTenantIntel() {
    for (Target target : {Target::kOwn, Target::kOther}) {
      const std::string tenant = tenantOf(target);
      const std::string note = tenant == "globex" ? kMarker : tenant;
      for (int version = 1; version <= 2; ++version) {
        json files = {{"watch.txt", "# " + note + " v" + std::to_string(version) + "\n" + note +
                                        ".example\n"}};
        Response r = send("POST", "/api/v1/content/intel?tenant=" + tenant, admin_token_,
                          json({{"files", files}}).dump());
        ASSERT_EQ(r.status, 201) << tenant << ": " << r.body;
      }
      Response added = send("POST", "/api/v1/intel/indicators?tenant=" + tenant, admin_token_,
                            note + "-analyst.example\n", "text/plain");
      ASSERT_EQ(added.status, 200) << tenant << ": " << added.body;
    }
  }

  void TearDown() override {
    if (daemon_) daemon_->stop();
  }

  void writeFile(const std::string& name, const std::string& text) {
    std::ofstream(dir_.file(name)) << text;
  }

  // Three failed logins from each of `count` addresses: one brute-force alert each.
  static std::string bruteForces(const std::string& host, int count) {
    std::string out;
    for (int i = 0; i < count; ++i) {
      for (int second = 0; second < 3; ++second) {
        out += "<38>Oct 11 22:14:1" + std::to_string(second) + " " + host +
               " sshd[4242]: Failed password for root from 198.51.100." + std::to_string(i + 1) +
               " port 40022 ssh2\n";
      }
    }
    return out;
  }

  // Tokens go into <state_dir>/auth.db before vigild opens it, as 'vigilctl tokens
  // bootstrap' does, with the tenants they are scoped to.
  void mintTokens() {
    const std::string state = dir_.file("state");
    std::filesystem::create_directories(state);
    testing::TestAuth auth(state, {"acme", "globex"});
    admin_token_ = auth.adminToken();
    auth.mint(Role::kAnalyst, {"globex"}, std::string(kMarker) + "-token");
    callers_ = {
        {"admin", Role::kAdmin, admin_token_},
        {"tenant_admin", Role::kTenantAdmin, auth.mint(Role::kTenantAdmin, {"acme"}, "ta")},
        {"analyst", Role::kAnalyst, auth.mint(Role::kAnalyst, {"acme"}, "an")},
        {"read_only", Role::kReadOnly, auth.mint(Role::kReadOnly, {"acme"}, "ro")},
    };
  }

  // A content kind is tenant-scoped when listing its versions without ?tenant= is refused
  // (400); a kind that applies to every tenant lists them.
  void findContentScopes() {
    for (const std::string& kind : kContentKinds) {
      Response r = send("GET", "/api/v1/content/" + kind + "/versions", admin_token_);
      ASSERT_TRUE(r.status == 200 || r.status == 400) << kind << ": " << r.status << " " << r.body;
      scoped_[kind] = r.status == 400;
    }
  }

  // Versions 1 and 2 of `kind` for each tenant (once when the kind is global). Only
  // globex's own versions carry the marker.
  void pushTwoVersions(const std::string& kind) {
    for (Target target : {Target::kOwn, Target::kOther}) {
      if (!scoped_[kind] && target == Target::kOther) continue;
      const std::string note = scoped_[kind] ? tenantOf(target) == "globex" ? kMarker : "acme"
                                             : "shared";
      for (int version = 1; version <= 2; ++version) {
        json body = {{"files", contentFiles(kind, note + " v" + std::to_string(version))}};
        Response r = send("POST", "/api/v1/content/" + kind + tenantQuery(kind, target, "?"),
                          admin_token_, body.dump());
        ASSERT_EQ(r.status, 201) << kind << ": " << r.body;
      }
    }
  }

  Response send(const std::string& method, const std::string& path, const std::string& token,
                const std::string& body = "",
                const std::string& content_type = "application/json") {
    httplib::Client client("127.0.0.1", port_);
    client.set_read_timeout(60);
    httplib::Request request;
    request.method = method;
    request.path = path;
    if (!token.empty()) request.set_header("Authorization", "Bearer " + token);
    if (!body.empty() || method != "GET") request.set_header("Content-Type", content_type);
    request.body = body;
    httplib::Result result = client.send(request);
    if (!result) return {0, "no response: " + httplib::to_string(result.error())};
    return {result->status, result->body};
  }

  Response send(const std::string& method, const SampleRequest& request,
                const std::string& token) {
    return send(method, request.path, token, request.body, request.content_type);
  }

  json adminGet(const std::string& path) {
    Response r = send("GET", path, admin_token_);
    if (r.status != 200) return nullptr;
    return json::parse(r.body, nullptr, false);
  }

  // Sends an admin call that must succeed and returns its JSON body.
  json adminCall(const std::string& method, const std::string& path, const json& body) {
    Response r = send(method, path, admin_token_, body.dump());
    EXPECT_LT(r.status, 300) << method << " " << path << ": " << r.body;
    json parsed = json::parse(r.body, nullptr, false);
    return parsed.is_discarded() ? json(nullptr) : parsed;
  }

  int64_t createCase(Target target, const std::string& title) {
    json made = adminCall("POST", "/api/v1/cases", {{"title", title}, {"tenant", tenantOf(target)}});
    return made.is_object() ? made.value("id", int64_t{0}) : 0;
  }

 public:
  static std::string tenantOf(Target target) { return target == Target::kOwn ? "acme" : "globex"; }
  int64_t caseOf(Target target) { return case_ids_[target]; }
  bool scoped(const std::string& kind) { return scoped_[kind]; }

  // "?tenant=NAME" (or "&tenant=NAME" with `separator` "&") for a tenant-scoped kind; an
  // empty string for a global kind, whose requests are the same for both targets.
  std::string tenantQuery(const std::string& kind, Target target, const std::string& separator) {
    return scoped_[kind] ? separator + "tenant=" + tenantOf(target) : "";
  }

  // Files that compile for `kind`; `note` goes into a comment or title.
  static json contentFiles(const std::string& kind, const std::string& note) {
    if (kind == "rules") {
      return {{"rules.yml", "# " + note + "\n" + std::string(kRules)}};
    }
    if (kind == "intel") return {{"watch.txt", "# " + note + "\n198.51.100.99\nevil.example\n"}};
    // Renamed, because a playbook pushed for every tenant may not take the name of the
    // configured one.
    std::string playbook = kPlaybook;
    playbook.replace(0, playbook.find('\n'), "name: pushed-ask-before-block");
    return {{"ask.yml", "# " + note + "\n" + playbook}};
  }

  // The dry-run sample of `kind`: log lines, or alert objects for playbooks.
  static json drySample(const std::string& kind) {
    if (kind == "playbooks") {
      return json::array({{{"rule_id", "22222222-0000-4000-8000-000000000002"},
                           {"level", "high"},
                           {"source.ip", "198.51.100.99"}}});
    }
    return json::array({"<38>Oct 11 22:14:15 web1 sshd[1]: Failed password for root from "
                        "198.51.100.99 port 22 ssh2"});
  }

  // The next run of the target tenant that waits for approval, for approve and deny
  // samples; each is handed out once.
  int64_t waitingRun(Target target) {
    std::deque<int64_t>& pool = runs_[target];
    EXPECT_FALSE(pool.empty()) << "no waiting run of " << tenantOf(target)
                               << " left; replay more brute forces";
    if (pool.empty()) return any_run_[target];
    int64_t id = pool.front();
    pool.pop_front();
    return id;
  }

  // A run of the target tenant that no sample decides, for reads.
  int64_t anyRun(Target target) { return any_run_[target]; }

  // A fresh analyst token of the target tenant, for revocation samples.
  std::string freshTokenId(Target target) {
    json made = adminCall("POST", "/api/v1/tokens",
                          {{"name", nextName()}, {"role", "analyst"}, {"tenants", {tenantOf(target)}}});
    return made.is_object() ? made.value("id", std::string()) : std::string();
  }

  // Pushes the target tenant's own rules as the admin, for rule deletion samples.
  void pushTenantRules(Target target) {
    const std::string tenant = tenantOf(target);
    json body = {{"files", contentFiles("rules", tenant == "globex" ? kMarker : "acme")}};
    adminCall("POST", "/api/v1/content/rules?tenant=" + tenant, body);
  }

  // A fresh empty tenant, for deletion samples.
  std::string freshTenant() {
    std::string name = nextName();
    adminCall("POST", "/api/v1/tenants", {{"name", name}});
    return name;
  }

  std::string nextName() { return "made-" + std::to_string(++counter_); }

  // A fresh open case of the target tenant, for merge samples (a merge closes its source).
  int64_t freshCase(Target target) { return createCase(target, nextName()); }

  // A task on the target's case, for task update samples.
  int64_t taskOf(Target target) {
    json task = adminCall("POST", "/api/v1/cases/" + std::to_string(caseOf(target)) + "/tasks",
                          {{"title", nextName()}});
    return task.is_object() ? task.value("id", int64_t{0}) : 0;
  }

  // The SHA-256 of an evidence file on the target's case, for download samples.
  std::string evidenceOf(Target target) {
    json file = adminCall("POST", "/api/v1/cases/" + std::to_string(caseOf(target)) + "/evidence",
                          {{"name", nextName()}, {"content_base64", "aGVsbG8="}});
    return file.is_object() ? file.value("sha256", std::string()) : std::string();
  }

  // What `sample` needs, with the content needs resolved for its kind.
  Need resolve(const Sample& sample) {
    if (sample.need == Need::kContentRead) return scoped(sample.kind) ? Need::kRead : Need::kToken;
    if (sample.need == Need::kContentWrite) {
      return scoped(sample.kind) ? Need::kAdminister : Need::kAdmin;
    }
    return sample.need;
  }

 protected:
  testing::TempDir dir_;
  std::unique_ptr<Daemon> daemon_;
  int port_ = 0;
  std::string admin_token_;
  std::vector<Caller> callers_;
  std::map<Target, int64_t> case_ids_;
  std::map<Target, std::deque<int64_t>> runs_;
  std::map<Target, int64_t> any_run_;
  std::map<std::string, bool> scoped_;
  int counter_ = 0;
};

SampleRequest fixed(std::string path, std::string body = "") {
  return {std::move(path), std::move(body)};
}

std::string caseBase(TenantMatrixTest& f, Target t) {
  return "/api/v1/cases/" + std::to_string(f.caseOf(t));
}

// The deletion routes, which only rules support, on one tenant's rules: each sample
// first pushes a fresh rule set for the target tenant, so every call has rules to delete.
void addRuleDeletionRows(std::map<std::string, std::vector<Sample>>& rows) {
  rows["DELETE /api/v1/content/{kind}"].push_back(
      {"rules of one tenant", Need::kAdminister, [](TenantMatrixTest& f, Target t) {
         f.pushTenantRules(t);
         return fixed("/api/v1/content/rules?tenant=" + TenantMatrixTest::tenantOf(t));
       }});
  rows["DELETE /api/v1/content/{kind}/items/{id}"].push_back(
      {"one rule of one tenant", Need::kAdminister, [](TenantMatrixTest& f, Target t) {
         f.pushTenantRules(t);
         return fixed("/api/v1/content/rules/items/22222222-0000-4000-8000-000000000002?tenant=" +
                      TenantMatrixTest::tenantOf(t));
       }});
}

// The rows of the content routes, one sample per kind, and a dry run per kind for the
// push route.
void addContentRows(std::map<std::string, std::vector<Sample>>& rows) {
  for (const std::string& kind : kContentKinds) {
    const std::string base = "/api/v1/content/" + kind;
    rows["POST /api/v1/content/{kind}"].push_back(
        {kind + " push", Need::kContentWrite,
         [kind, base](TenantMatrixTest& f, Target t) {
           json body = {{"files", TenantMatrixTest::contentFiles(kind, f.nextName())}};
           return fixed(base + f.tenantQuery(kind, t, "?"), body.dump());
         },
         kind});
    // A dry run stores and activates nothing, so reading the content is enough.
    rows["POST /api/v1/content/{kind}"].push_back(
        {kind + " dry run", Need::kContentRead,
         [kind, base](TenantMatrixTest& f, Target t) {
           json body = {{"files", TenantMatrixTest::contentFiles(kind, f.nextName())},
                        {"events", TenantMatrixTest::drySample(kind)}};
           return fixed(base + "?dry_run=true" + f.tenantQuery(kind, t, "&"), body.dump());
         },
         kind, false});
    rows["GET /api/v1/content/{kind}/versions"].push_back(
        {kind, Need::kContentRead,
         [kind, base](TenantMatrixTest& f, Target t) {
           return fixed(base + "/versions" + f.tenantQuery(kind, t, "?"));
         },
         kind});
    rows["GET /api/v1/content/{kind}/activations"].push_back(
        {kind, Need::kContentRead,
         [kind, base](TenantMatrixTest& f, Target t) {
           return fixed(base + "/activations" + f.tenantQuery(kind, t, "?"));
         },
         kind});
    rows["GET /api/v1/content/{kind}/versions/{n}"].push_back(
        {kind, Need::kContentRead,
         [kind, base](TenantMatrixTest& f, Target t) {
           return fixed(base + "/versions/2" + f.tenantQuery(kind, t, "?"));
         },
         kind});
    rows["GET /api/v1/content/{kind}/versions/{n}/diff"].push_back(
        {kind, Need::kContentRead,
         [kind, base](TenantMatrixTest& f, Target t) {
           return fixed(base + "/versions/2/diff?against=1" + f.tenantQuery(kind, t, "&"));
         },
         kind});
    if (kind == "rules") addRuleDeletionRows(rows);
    rows["POST /api/v1/content/{kind}/versions/{n}/activate"].push_back(
        {kind, Need::kContentWrite,
         [kind, base](TenantMatrixTest& f, Target t) {
           return fixed(base + "/versions/1/activate" + f.tenantQuery(kind, t, "?"));
         },
         kind});
  }
}

// The content rows of each tenant's own intel list (?tenant=NAME), beside the rows of
// the list of every tenant that addContentRows() adds.
void addTenantIntelContentRows(std::map<std::string, std::vector<Sample>>& rows) {
  const std::string base = "/api/v1/content/intel";
  auto tenant = [](Target t) { return "tenant=" + TenantMatrixTest::tenantOf(t); };
  rows["POST /api/v1/content/{kind}"].push_back(
      {"intel tenant push", Need::kAdminister, [base, tenant](TenantMatrixTest& f, Target t) {
         json body = {{"files", TenantMatrixTest::contentFiles("intel", f.nextName())}};
         return fixed(base + "?" + tenant(t), body.dump());
       }});
  rows["POST /api/v1/content/{kind}"].push_back(
      {"intel tenant dry run", Need::kRead,
       [base, tenant](TenantMatrixTest& f, Target t) {
         json body = {{"files", TenantMatrixTest::contentFiles("intel", f.nextName())},
                      {"events", TenantMatrixTest::drySample("intel")}};
         return fixed(base + "?dry_run=true&" + tenant(t), body.dump());
       },
       "", false});
  rows["GET /api/v1/content/{kind}/versions"].push_back(
      {"intel tenant", Need::kRead,
       [base, tenant](TenantMatrixTest&, Target t) { return fixed(base + "/versions?" + tenant(t)); }});
  rows["GET /api/v1/content/{kind}/activations"].push_back(
      {"intel tenant", Need::kRead, [base, tenant](TenantMatrixTest&, Target t) {
         return fixed(base + "/activations?" + tenant(t));
       }});
  rows["GET /api/v1/content/{kind}/versions/{n}"].push_back(
      {"intel tenant", Need::kRead, [base, tenant](TenantMatrixTest&, Target t) {
         return fixed(base + "/versions/2?" + tenant(t));
       }});
  rows["GET /api/v1/content/{kind}/versions/{n}/diff"].push_back(
      {"intel tenant", Need::kRead, [base, tenant](TenantMatrixTest&, Target t) {
         return fixed(base + "/versions/2/diff?against=1&" + tenant(t));
       }});
  rows["POST /api/v1/content/{kind}/versions/{n}/activate"].push_back(
      {"intel tenant", Need::kAdminister, [base, tenant](TenantMatrixTest&, Target t) {
         return fixed(base + "/versions/1/activate?" + tenant(t));
       }});
}

// The rows of the routes vigild adds to the ApiServer: status, intel, playbook runs and
// approvals, and the configuration reload.
void addDaemonRows(std::map<std::string, std::vector<Sample>>& rows) {
  // The status names every source and tenant; a rebuild reloads every tenant's feeds; a
  // reload changes what every tenant runs. So these are admin only.
  rows["GET /api/v1/status"] = {
      {"", Need::kAdmin, [](TenantMatrixTest&, Target) { return fixed("/api/v1/status"); }}};
  rows["POST /api/v1/intel/reload"] = {
      {"", Need::kAdmin, [](TenantMatrixTest&, Target) { return fixed("/api/v1/intel/reload"); }}};
  // Indicators and sightings are per tenant; the analyst list of every tenant is readable
  // by every token and changed only by the admin role.
  rows["GET /api/v1/intel/sightings"] = {
      {"tenant", Need::kRead,
       [](TenantMatrixTest&, Target t) {
         return fixed("/api/v1/intel/sightings?tenant=" + TenantMatrixTest::tenantOf(t));
       }},
      {"all visible", Need::kToken,
       [](TenantMatrixTest&, Target) { return fixed("/api/v1/intel/sightings"); }}};
  rows["GET /api/v1/intel/indicators"] = {
      {"tenant list", Need::kRead,
       [](TenantMatrixTest&, Target t) {
         return fixed("/api/v1/intel/indicators?tenant=" + TenantMatrixTest::tenantOf(t));
       }},
      {"list of every tenant", Need::kToken,
       [](TenantMatrixTest&, Target) { return fixed("/api/v1/intel/indicators"); }}};
  for (const char* method : {"POST", "DELETE"}) {
    rows[std::string(method) + " /api/v1/intel/indicators"] = {
        {"tenant list", Need::kWork,
         [](TenantMatrixTest& f, Target t) {
           return SampleRequest{"/api/v1/intel/indicators?tenant=" + TenantMatrixTest::tenantOf(t),
                                f.nextName() + ".example\n", "text/plain"};
         }},
        {"list of every tenant", Need::kAdmin, [](TenantMatrixTest&, Target) {
           return SampleRequest{"/api/v1/intel/indicators", "198.51.100.98\n", "text/plain"};
         }}};
  }
  rows["POST /api/v1/config/reload"] = {
      {"", Need::kAdmin, [](TenantMatrixTest&, Target) { return fixed("/api/v1/config/reload"); }}};
  rows["GET /api/v1/runs"] = {
      {"", Need::kRead, [](TenantMatrixTest&, Target t) {
         return fixed("/api/v1/runs?tenant=" + TenantMatrixTest::tenantOf(t));
       }}};
  rows["GET /api/v1/approvals"] = {
      {"", Need::kRead, [](TenantMatrixTest&, Target t) {
         return fixed("/api/v1/approvals?tenant=" + TenantMatrixTest::tenantOf(t));
       }}};
  rows["GET /api/v1/runs/{id}"] = {
      {"", Need::kRead, [](TenantMatrixTest& f, Target t) {
         return fixed("/api/v1/runs/" + std::to_string(f.anyRun(t)));
       }}};
  rows["POST /api/v1/runs/{id}/approve"] = {
      {"", Need::kWork, [](TenantMatrixTest& f, Target t) {
         return fixed("/api/v1/runs/" + std::to_string(f.waitingRun(t)) + "/approve",
                      json({{"comment", "matrix"}}).dump());
       }}};
  rows["POST /api/v1/runs/{id}/deny"] = {
      {"", Need::kWork, [](TenantMatrixTest& f, Target t) {
         return fixed("/api/v1/runs/" + std::to_string(f.waitingRun(t)) + "/deny");
       }}};
}

// The rows of the routes the ApiServer registers itself: health, metrics, the console,
// cases, tenants, tokens and the audit log.
void addServerRows(std::map<std::string, std::vector<Sample>>& rows) {
  rows["GET /healthz"] = {
      {"", Need::kNothing, [](TenantMatrixTest&, Target) { return fixed("/healthz"); }}};
  rows["GET /readyz"] = {
      {"", Need::kNothing, [](TenantMatrixTest&, Target) { return fixed("/readyz"); }}};
  rows["GET /metrics"] = {
      {"", Need::kAdmin, [](TenantMatrixTest&, Target) { return fixed("/metrics"); }}};
  // The console's files are public: the browser loads them before signing in, and they
  // hold no tenant data.
  rows["GET /"] = {{"", Need::kNothing, [](TenantMatrixTest&, Target) { return fixed("/"); }}};
  rows["GET /console"] = {
      {"", Need::kNothing, [](TenantMatrixTest&, Target) { return fixed("/console"); }}};
  rows["GET /console/{file}"] = {
      {"", Need::kNothing, [](TenantMatrixTest&, Target) { return fixed("/console/app.js"); }}};
  rows["POST /api/v1/cases"] = {
      {"", Need::kWork, [](TenantMatrixTest& f, Target t) {
         json body = {{"title", f.nextName()}, {"tenant", TenantMatrixTest::tenantOf(t)}};
         return fixed("/api/v1/cases", body.dump());
       }}};
  rows["PATCH /api/v1/cases/{id}"] = {
      {"", Need::kWork, [](TenantMatrixTest& f, Target t) {
         return fixed(caseBase(f, t), json({{"assignee", f.nextName()}}).dump());
       }}};
  rows["POST /api/v1/cases/{id}/tasks"] = {
      {"", Need::kWork, [](TenantMatrixTest& f, Target t) {
         return fixed(caseBase(f, t) + "/tasks", json({{"title", f.nextName()}}).dump());
       }}};
  rows["PATCH /api/v1/cases/{id}/tasks/{task}"] = {
      {"", Need::kWork, [](TenantMatrixTest& f, Target t) {
         return fixed(caseBase(f, t) + "/tasks/" + std::to_string(f.taskOf(t)),
                      json({{"status", "done"}}).dump());
       }}};
  rows["POST /api/v1/cases/{id}/notes"] = {
      {"", Need::kWork, [](TenantMatrixTest& f, Target t) {
         return fixed(caseBase(f, t) + "/notes", json({{"body", f.nextName()}}).dump());
       }}};
  rows["POST /api/v1/cases/{id}/evidence"] = {
      {"", Need::kWork, [](TenantMatrixTest& f, Target t) {
         // A new name each time, base64 of "hello"; a repeat upload answers 200.
         json body = {{"name", f.nextName()}, {"content_base64", "aGVsbG8="}};
         return fixed(caseBase(f, t) + "/evidence", body.dump());
       }}};
  rows["GET /api/v1/cases/{id}/evidence/{sha256}"] = {
      {"", Need::kRead, [](TenantMatrixTest& f, Target t) {
         return fixed(caseBase(f, t) + "/evidence/" + f.evidenceOf(t));
       }}};
  rows["GET /api/v1/cases/{id}/timeline"] = {
      {"", Need::kRead,
       [](TenantMatrixTest& f, Target t) { return fixed(caseBase(f, t) + "/timeline"); }}};
  rows["POST /api/v1/cases/{id}/merge"] = {
      {"", Need::kWork, [](TenantMatrixTest& f, Target t) {
         return fixed("/api/v1/cases/" + std::to_string(f.freshCase(t)) + "/merge",
                      json({{"into", f.caseOf(t)}}).dump());
       }}};
  rows["GET /api/v1/metrics/cases"] = {
      {"", Need::kRead, [](TenantMatrixTest&, Target t) {
         return fixed("/api/v1/metrics/cases?tenant=" + TenantMatrixTest::tenantOf(t));
       }}};
  rows["GET /api/v1/cases"] = {
      {"", Need::kRead, [](TenantMatrixTest&, Target t) {
         return fixed("/api/v1/cases?tenant=" + TenantMatrixTest::tenantOf(t));
       }}};
  rows["GET /api/v1/cases/{id}"] = {
      {"", Need::kRead, [](TenantMatrixTest& f, Target t) { return fixed(caseBase(f, t)); }}};
  rows["GET /api/v1/whoami"] = {
      {"", Need::kToken, [](TenantMatrixTest&, Target) { return fixed("/api/v1/whoami"); }}};
  rows["GET /api/v1/tenants"] = {
      {"", Need::kToken, [](TenantMatrixTest&, Target) { return fixed("/api/v1/tenants"); }}};
  rows["POST /api/v1/tenants"] = {
      {"", Need::kAdmin, [](TenantMatrixTest& f, Target) {
         return fixed("/api/v1/tenants", json({{"name", f.nextName()}}).dump());
       }}};
  rows["DELETE /api/v1/tenants/{name}"] = {
      {"", Need::kAdmin,
       [](TenantMatrixTest& f, Target) { return fixed("/api/v1/tenants/" + f.freshTenant()); }}};
  rows["POST /api/v1/tokens"] = {
      {"", Need::kAdminister, [](TenantMatrixTest& f, Target t) {
         json body = {{"name", f.nextName()},
                      {"role", "read_only"},
                      {"tenants", {TenantMatrixTest::tenantOf(t)}}};
         return fixed("/api/v1/tokens", body.dump());
       }}};
  rows["GET /api/v1/tokens"] = {
      {"", Need::kAdminister, [](TenantMatrixTest&, Target) { return fixed("/api/v1/tokens"); }}};
  rows["DELETE /api/v1/tokens/{id}"] = {
      {"", Need::kAdminister, [](TenantMatrixTest& f, Target t) {
         return fixed("/api/v1/tokens/" + f.freshTokenId(t));
       }}};
  rows["GET /api/v1/audit"] = {
      {"", Need::kAdminister, [](TenantMatrixTest&, Target) { return fixed("/api/v1/audit"); }}};
}

// One entry per route: "METHOD pattern" -> the samples that state what the route needs
// and how to build a request on the caller's own tenant and on the other tenant.
const std::map<std::string, std::vector<Sample>>& samples() {
  static const std::map<std::string, std::vector<Sample>> kSamples = [] {
    std::map<std::string, std::vector<Sample>> rows;
    addServerRows(rows);
    addDaemonRows(rows);
    addContentRows(rows);
    addTenantIntelContentRows(rows);
    return rows;
  }();
  return kSamples;
}

bool allowed(Need need, Role role) {
  switch (need) {
    case Need::kNothing:
    case Need::kToken:
    case Need::kRead:
    case Need::kContentRead:
      return true;
    case Need::kWork:
      return role != Role::kReadOnly;
    case Need::kAdminister:
    case Need::kContentWrite:
      return role == Role::kAdmin || role == Role::kTenantAdmin;
    case Need::kAdmin:
      return role == Role::kAdmin;
  }
  return false;
}

bool writes(const Sample& sample, const std::string& method) {
  if (sample.writes.has_value()) return *sample.writes;
  return method != "GET";
}

std::string routeKey(const std::string& method, const std::string& pattern) {
  return method + " " + pattern;
}

// Every route the daemon serves and every operation of docs/openapi.yaml has a row, and
// every row is a served route.
TEST_F(TenantMatrixTest, EveryRouteHasASample) {
  std::set<std::string> served;
  for (const RouteInfo& route : daemon_->api()->routes()) {
    const std::string key = routeKey(route.method, route.pattern);
    served.insert(key);
    EXPECT_TRUE(samples().count(key))
        << key << " has no row in samples(); add one that states who may call it";
  }
  absl::StatusOr<openapi::Document> document =
      openapi::Document::load(std::string(VIGIL_SOURCE_DIR) + "/docs/openapi.yaml");
  ASSERT_TRUE(document.ok()) << document.status();
  size_t operations = 0;
  for (const openapi::Operation& operation : document->operations()) {
    ++operations;
    EXPECT_TRUE(samples().count(routeKey(operation.method, operation.path)))
        << operation.method << " " << operation.path
        << " is in docs/openapi.yaml but has no row in samples()";
  }
  for (const auto& [key, rows] : samples()) {
    EXPECT_TRUE(served.count(key)) << key << " is in samples() but vigild does not serve it";
    EXPECT_FALSE(rows.empty()) << key;
  }
  // The comparisons above ran over the full route table, including the daemon's routes.
  EXPECT_GE(served.size(), 40u);
  EXPECT_GE(operations, 40u);
}

// Without a token every non-public route is 401.
TEST_F(TenantMatrixTest, AnonymousGets401) {
  for (const RouteInfo& route : daemon_->api()->routes()) {
    auto it = samples().find(routeKey(route.method, route.pattern));
    if (it == samples().end()) continue;
    for (const Sample& sample : it->second) {
      SampleRequest request = sample.make(*this, Target::kOwn);
      Response r = send(route.method, request, "");
      const std::string where = route.method + " " + request.path + " (" + sample.label +
                                ") -> " + std::to_string(r.status) + " " + r.body;
      if (sample.need == Need::kNothing) {
        EXPECT_LT(r.status, 400) << where;
      } else {
        EXPECT_EQ(r.status, 401) << where;
      }
    }
  }
}

// role x route x tenant: role rules on the own tenant, nothing of the other tenant.
TEST_F(TenantMatrixTest, RoleAndTenantRulesHold) {
  size_t checked = 0;
  size_t expected = 0;
  // Routes whose response to the admin carried the marker: the globex data that the
  // marker check below looks for is really there.
  std::set<std::string> marked_reads;
  for (const Caller& caller : callers_) {
    for (const RouteInfo& route : daemon_->api()->routes()) {
      auto it = samples().find(routeKey(route.method, route.pattern));
      if (it == samples().end()) continue;
      for (const Sample& sample : it->second) {
        expected += 2;
        const Need need = resolve(sample);
        for (Target target : {Target::kOwn, Target::kOther}) {
          SampleRequest request = sample.make(*this, target);
          Response r = send(route.method, request, caller.token);
          const std::string where = caller.name + " " + route.method + " " + request.path +
                                    (sample.label.empty() ? "" : " [" + sample.label + "]") +
                                    (target == Target::kOwn ? " (own)" : " (other)") + " -> " +
                                    std::to_string(r.status) + " " + r.body.substr(0, 300);
          ++checked;
          EXPECT_NE(r.status, 401) << where;
          EXPECT_LT(r.status, 500) << where;
          if (caller.role == Role::kAdmin) {
            EXPECT_LT(r.status, 400) << where;
            if (r.body.find(kMarker) != std::string::npos) {
              marked_reads.insert(routeKey(route.method, route.pattern));
            }
            continue;
          }
          // No acme token ever sees globex data, whatever the route.
          EXPECT_EQ(r.body.find(kMarker), std::string::npos) << where;
          if (!allowed(need, caller.role)) {
            // A role refusal on the caller's own tenant is 403. On another tenant's
            // object the handler returns 404 so the object stays hidden, and 403 is
            // also a rejection.
            if (target == Target::kOwn) {
              EXPECT_EQ(r.status, 403) << where;
            } else {
              EXPECT_TRUE(r.status == 403 || r.status == 404) << where;
            }
          } else if (target == Target::kOwn) {
            EXPECT_LT(r.status, 400) << where;
          } else if (writes(sample, route.method)) {
            EXPECT_TRUE(r.status == 403 || r.status == 404) << where;
          } else {
            // Reads of another tenant's object are hidden (404) or refused (403); lists
            // come back filtered, and content that applies to every tenant is readable.
            EXPECT_TRUE(r.status == 200 || r.status == 403 || r.status == 404) << where;
          }
        }
      }
    }
  }
  for (const char* key :
       {"GET /api/v1/cases", "GET /api/v1/cases/{id}", "GET /api/v1/runs/{id}",
        "GET /api/v1/status", "GET /api/v1/tokens", "GET /api/v1/tenants", "GET /api/v1/audit"}) {
    EXPECT_TRUE(marked_reads.count(key)) << key << " showed the admin no globex marker";
  }
  // Each tenant's intel list: the admin saw globex's values and versions.
  for (const char* key : {"GET /api/v1/intel/indicators", "GET /api/v1/content/{kind}/versions/{n}",
                          "GET /api/v1/content/{kind}/versions/{n}/diff"}) {
    EXPECT_TRUE(marked_reads.count(key)) << key << " showed the admin no globex intel marker";
  }
  for (const std::string& kind : kContentKinds) {
    if (!scoped(kind)) continue;
    EXPECT_TRUE(marked_reads.count("GET /api/v1/content/{kind}/versions/{n}"))
        << kind << " is per tenant, but no globex version showed the admin the marker";
  }
  EXPECT_EQ(checked, expected);
  EXPECT_GE(checked, callers_.size() * daemon_->api()->routes().size() * 2);
}

// Approvals and denials by acme tokens leave every globex run waiting, and the globex
// run list an acme token gets is empty.
TEST_F(TenantMatrixTest, GlobexRunsStayWaiting) {
  for (const Caller& caller : callers_) {
    if (caller.role == Role::kAdmin) continue;
    for (const char* decision : {"approve", "deny"}) {
      Response r = send("POST",
                        "/api/v1/runs/" + std::to_string(anyRun(Target::kOther)) + "/" + decision,
                        caller.token, "{}");
      EXPECT_EQ(r.status, 404) << caller.name << " " << decision << ": " << r.body;
    }
    Response list = send("GET", "/api/v1/runs?tenant=globex", caller.token);
    ASSERT_EQ(list.status, 200) << caller.name << ": " << list.body;
    EXPECT_EQ(json::parse(list.body)["total"], 0) << caller.name << ": " << list.body;
  }
  json waiting = adminGet("/api/v1/approvals?limit=100&tenant=globex");
  ASSERT_TRUE(waiting.is_object());
  EXPECT_EQ(waiting["total"], kGlobexBruteForces) << waiting.dump();
}

// A merge names a second case in its body. An acme token gets 404 for merging its case
// into a globex case and for merging a globex case into its own, and neither case changes.
TEST_F(TenantMatrixTest, MergeAcrossTenantsIsRefused) {
  const std::string analyst = callers_[2].token;
  ASSERT_EQ(callers_[2].role, Role::kAnalyst);
  const int64_t own = freshCase(Target::kOwn);
  const int64_t other = freshCase(Target::kOther);
  Response into_other = send("POST", "/api/v1/cases/" + std::to_string(own) + "/merge", analyst,
                             json({{"into", other}}).dump());
  EXPECT_EQ(into_other.status, 404) << into_other.body;
  Response from_other = send("POST", "/api/v1/cases/" + std::to_string(other) + "/merge",
                             analyst, json({{"into", own}}).dump());
  EXPECT_EQ(from_other.status, 404) << from_other.body;
  for (int64_t id : {own, other}) {
    json detail = adminGet("/api/v1/cases/" + std::to_string(id));
    ASSERT_TRUE(detail.is_object()) << "case " << id;
    EXPECT_EQ(detail["status"], "new") << "case " << id << ": " << detail.dump();
  }
}

}  // namespace
}  // namespace vigil::mgmt

// Fuzzes the REST API in process: the router's matching, 404 and 405 handling, and every
// handler that vigild serves. A real Daemon runs on a temporary folder with the stores
// vigild builds: cases from two replayed tenants, playbook runs waiting for approval,
// content versions with the rules, intel and playbook activators, tokens, the audit log
// and the indicator snapshot. Each response is checked against docs/openapi.yaml: a
// documented operation must respond with a documented status, content type and body; any
// other request must get 404 or 405 with an Error body. A 500, a 5xx the document does
// not list, a malformed body or a crash ends the run.
//
// Input layout: byte 0 picks the method (low 4 bits) and the principal the handler sees
// (high 4 bits: 0 none, 1 admin, 2 tenant_admin, 3 analyst, 4 read_only, the last three
// scoped to tenant "acme"); byte 1 picks a registered route (its "{name}" segments are
// filled from the input) or, from the route count up, a raw path; the rest is
// "path-or-parameter \n query \n body". The query is split on '&' and '=' as a client
// would send it, without percent-decoding. ApiServer::handle() skips the token check, so
// the principal goes straight to the handler.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "mgmt/api_server.h"
#include "mgmt/config.h"
#include "mgmt/daemon.h"
#include "tests/openapi/openapi_document.h"

namespace {

using vigil::mgmt::ApiRequest;
using vigil::mgmt::ApiResponse;
using vigil::openapi::Document;
using vigil::openapi::Operation;

constexpr const char* kMethods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};

[[noreturn]] void fail(const std::string& what, const ApiRequest& request,
                       const ApiResponse& response) {
  std::fprintf(stderr,
               "api_router_fuzz: %s\nrequest: %s %s (%zu query, %zu body bytes)\n"
               "response: %d %s\n%s\n",
               what.c_str(), request.method.c_str(), request.path.c_str(), request.query.size(),
               request.body.size(), response.status, response.content_type.c_str(),
               response.body.substr(0, 2000).c_str());
  std::abort();
}

// Three failed logins from each of `count` addresses: one brute-force alert and one run
// waiting for approval each.
std::string bruteForces(const std::string& host, int count) {
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

constexpr char kRules[] = R"(title: SSH password failure
name: ssh_failed
id: 33333333-0000-4000-8000-000000000001
logsource: {product: linux, service: sshd}
detection:
  selection:
    event.action: ssh_login
    event.outcome: failure
  condition: selection
level: low
---
title: SSH brute force
id: 33333333-0000-4000-8000-000000000002
correlation:
  type: event_count
  rules: [ssh_failed]
  group-by: [source.ip]
  timespan: 60s
  condition: {gte: 3}
level: high
)";

constexpr char kPlaybook[] = R"(name: ask-before-block
trigger:
  rule_ids: [33333333-0000-4000-8000-000000000002]
steps:
  - wait_for_approval: "Block ${alert.source.ip}?"
    timeout: 1h
    default: reject
    on_approve:
      - log: "approved for ${alert.source.ip}"
)";

void writeFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

[[noreturn]] void setupFailed(const std::string& what) {
  std::fprintf(stderr, "api_router_fuzz: setup failed: %s\n", what.c_str());
  std::abort();
}

// The daemon, its routes and the document, built once per process and never destroyed,
// because libFuzzer may exit from any thread. At exit the daemon is stopped and its
// temporary folder removed.
struct Fixture {
  Fixture() {
    std::string pattern = std::filesystem::temp_directory_path() / "vigil-api-fuzz-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    dir = pattern;
    std::filesystem::create_directories(dir + "/playbooks");
    writeFile(dir + "/rules.yml", kRules);
    writeFile(dir + "/watch.txt", "203.0.113.66\n");
    writeFile(dir + "/acme.log", bruteForces("web1", 3));
    writeFile(dir + "/globex.log", bruteForces("web2", 2));
    writeFile(dir + "/playbooks/ask.yml", kPlaybook);
    const std::string yaml =
        "daemon: {state_dir: " + dir + "/state, log_level: critical}\n" +
        "sources:\n"
        "  - {name: acme-replay, type: file, tenant: acme, path: acme.log}\n"
        "  - {name: globex-replay, type: file, tenant: globex, path: globex.log}\n"
        "intel:\n  lists: [{name: watch, path: watch.txt}]\n"
        "rules:\n  paths: [rules.yml]\n"
        "api: {listen: '127.0.0.1:0'}\n"
        "playbooks:\n  paths: [playbooks]\n"
        "cases: {evidence_max_bytes: 65536}\n";
    // POST /api/v1/config/reload reads the file again.
    writeFile(dir + "/vigil.yaml", yaml);
    auto config = vigil::mgmt::parseConfig(yaml, dir + "/vigil.yaml", dir);
    if (!config.ok()) setupFailed(config.status().ToString());
    daemon = new vigil::mgmt::Daemon(*std::move(config), vigil::mgmt::DaemonOptions{});
    if (absl::Status started = daemon->start(); !started.ok()) setupFailed(started.ToString());
    waitForRuns(5);
    routes = daemon->api()->routes();

    auto loaded = Document::load(std::string(VIGIL_SOURCE_DIR) + "/docs/openapi.yaml");
    if (!loaded.ok()) setupFailed(loaded.status().ToString());
    document = std::make_unique<Document>(*std::move(loaded));
  }

  // Waits up to 30 s until `count` runs wait for approval, so run ids 1..count exist.
  void waitForRuns(int count) {
    ApiRequest request;
    request.method = "GET";
    request.path = "/api/v1/approvals";
    request.principal = principal(1);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      ApiResponse response = daemon->api()->handle(request);
      nlohmann::json page = nlohmann::json::parse(response.body, nullptr, false);
      if (page.is_object() && page.value("total", 0) >= count) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    setupFailed("the replayed brute forces did not start " + std::to_string(count) + " runs");
  }

  // The principal of selector `which` (byte 0's high bits); unauthenticated for 0 and
  // for selectors without a role.
  static vigil::mgmt::Principal principal(int which) {
    using vigil::mgmt::Role;
    vigil::mgmt::Principal p;
    constexpr Role kRoles[] = {Role::kAdmin, Role::kTenantAdmin, Role::kAnalyst, Role::kReadOnly};
    if (which < 1 || which > 4) return p;
    p.role = kRoles[which - 1];
    p.subject = "fuzz-" + std::string(vigil::mgmt::roleName(p.role));
    p.token_id = "f0f0f0f0f0f0f0f" + std::to_string(which);
    if (p.role != Role::kAdmin) p.tenants = {"acme"};
    p.remote_addr = "127.0.0.1";
    return p;
  }

  std::string dir;
  vigil::mgmt::Daemon* daemon = nullptr;
  std::vector<vigil::mgmt::RouteInfo> routes;
  std::unique_ptr<Document> document;
};

Fixture& fixture() {
  static Fixture* instance = [] {
    auto* created = new Fixture();
    std::atexit([] {
      // Joins the daemon's threads before static destructors run under them, and frees
      // the pipeline's per-thread state so the leak check at exit sees it released.
      fixture().daemon->stop();
      delete fixture().daemon;
      fixture().daemon = nullptr;
      std::error_code ignored;
      std::filesystem::remove_all(fixture().dir, ignored);
    });
    return created;
  }();
  return *instance;
}

// Replaces each "{name}" segment of `pattern` with `value`.
std::string fillPattern(const std::string& pattern, absl::string_view value) {
  std::vector<std::string> segments = absl::StrSplit(pattern, '/');
  for (std::string& segment : segments) {
    if (segment.size() > 2 && segment.front() == '{' && segment.back() == '}') {
      segment = std::string(value);
    }
  }
  return absl::StrJoin(segments, "/");
}

void checkResponse(const Fixture& f, const ApiRequest& request, const ApiResponse& response) {
  const Document& document = *f.document;
  std::optional<Operation> operation = document.findOperation(request.method, request.path);
  // Operations the document lists that this daemon does not serve are refused like
  // unknown paths.
  bool served = false;
  for (const vigil::mgmt::RouteInfo& route : f.routes) {
    served = served || (operation.has_value() && route.method == operation->method &&
                        route.pattern == operation->path);
  }
  if (!served) {
    if (response.status != 404 && response.status != 405) {
      fail("a request for no route got neither 404 nor 405", request, response);
    }
    nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
    std::vector<std::string> errors =
        document.validator().validate({{"$ref", "#/components/schemas/Error"}}, body);
    if (!errors.empty() || response.content_type != "application/json") {
      fail("the refusal is not a JSON Error: " + absl::StrJoin(errors, "; "), request, response);
    }
    return;
  }
  // The document lists 500 for store failures, which healthy local stores never have, so
  // a 500 here is a handler bug.
  if (response.status == 500) fail("a handler failed with 500", request, response);
  std::vector<std::string> errors =
      document.checkResponse(*operation, response.status, response.content_type, response.body);
  if (!errors.empty()) fail(absl::StrJoin(errors, "\n"), request, response);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2 || size > 64 * 1024) return 0;
  Fixture& f = fixture();
  const absl::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
  std::vector<absl::string_view> parts = absl::StrSplit(input, absl::MaxSplits('\n', 2));
  parts.resize(3);

  ApiRequest request;
  constexpr size_t kMethodCount = sizeof(kMethods) / sizeof(kMethods[0]);
  const size_t method_index = data[0] & 0x0f;
  request.method = method_index < kMethodCount ? kMethods[method_index] : "GET";
  request.principal = Fixture::principal(data[0] >> 4);
  if (data[1] < f.routes.size()) {
    // Aim at a registered route; an input that never names its method still reaches it.
    const vigil::mgmt::RouteInfo& route = f.routes[data[1]];
    if (method_index >= kMethodCount) request.method = route.method;
    request.path = fillPattern(route.pattern, parts[0]);
  } else {
    request.path = std::string(parts[0]);
  }
  if (!parts[1].empty()) {
    for (absl::string_view pair : absl::StrSplit(parts[1], '&')) {
      std::pair<std::string, std::string> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
      request.query.emplace(std::move(kv));
    }
  }
  request.body = std::string(parts[2]);
  if (!request.body.empty()) request.headers.emplace("Content-Type", "application/json");

  ApiResponse response = f.daemon->api()->handle(request);
  checkResponse(f, request, response);
  return 0;
}

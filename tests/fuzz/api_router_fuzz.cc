// Fuzzes the REST API in process: the router's matching, 404 and 405 handling, and every
// handler that ApiServer registers (query parsing of the case list, path parameters and
// request bodies), over a case store with a few cases. Each response is checked against
// docs/openapi.yaml: a documented operation must respond with a documented status, content
// type and body; any other request must get 404 or 405 with an Error body. A 500, a 5xx
// the document does not list, a malformed body or a crash ends the run.
//
// Input layout: byte 0 picks the method, byte 1 a registered route (its "{name}"
// segments are filled from the input) or a raw path, and the rest is
// "path-or-parameter \n query \n body". The query is split on '&' and '=' as a client
// would send it, without percent-decoding.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "mgmt/api_server.h"
#include "mgmt/case_store.h"
#include "tests/openapi/openapi_document.h"

namespace {

using vigil::mgmt::ApiRequest;
using vigil::mgmt::ApiResponse;
using vigil::mgmt::ApiServer;
using vigil::openapi::Document;
using vigil::openapi::Operation;

constexpr const char* kMethods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};
constexpr int64_t kT0 = 1'767'225'600'000'000'000;  // 2026-01-01T00:00:00Z
constexpr int64_t kSecond = 1'000'000'000;

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

vigil::correlate::Alert makeAlert(const std::string& rule, const std::string& level,
                                  const std::string& tenant, int64_t detect_ns) {
  vigil::correlate::Alert alert;
  alert.id = rule + "-" + std::to_string(detect_ns);
  alert.rule_id = rule;
  alert.rule_title = "Rule " + rule;
  alert.level = level;
  alert.tenant = tenant;
  alert.group = {{"source.ip", "198.51.100.7"}};
  alert.tags = {"attack.t1110"};
  alert.first_event_ns = detect_ns - 10 * kSecond;
  alert.last_event_ns = detect_ns - kSecond;
  alert.detect_ns = detect_ns;
  alert.event_count = 3;
  alert.evidence = {"Failed password for root", "bad byte \xff"};
  alert.indicator_hits = {"watch:198.51.100.7@source.ip"};
  return alert;
}

// The store, server and document, built once per process and never destroyed, because
// libFuzzer may exit from any thread. The store's temporary folder is removed at exit.
struct Fixture {
  Fixture() {
    std::string pattern = std::filesystem::temp_directory_path() / "vigil-api-fuzz-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    dir = pattern;
    auto opened = vigil::mgmt::CaseStore::open(dir + "/cases.db");
    if (!opened.ok()) {
      std::fprintf(stderr, "api_router_fuzz: %s\n", opened.status().ToString().c_str());
      std::abort();
    }
    store = *std::move(opened);
    if (!store->ingestAlert(makeAlert("ssh", "high", "acme", kT0)).ok()) std::abort();
    if (!store->ingestAlert(makeAlert("dns", "low", "globex", kT0 + kSecond)).ok()) std::abort();
    server = std::make_unique<ApiServer>(*store, metrics);
    routes = server->routes();

    auto loaded = Document::load(std::string(VIGIL_SOURCE_DIR) + "/docs/openapi.yaml");
    if (!loaded.ok()) {
      std::fprintf(stderr, "api_router_fuzz: %s\n", loaded.status().ToString().c_str());
      std::abort();
    }
    document = std::make_unique<Document>(*std::move(loaded));
  }

  std::string dir;
  vigil::MetricsRegistry metrics;
  std::unique_ptr<vigil::mgmt::CaseStore> store;
  std::unique_ptr<ApiServer> server;
  std::vector<vigil::mgmt::RouteInfo> routes;
  std::unique_ptr<Document> document;
};

Fixture& fixture() {
  static Fixture* instance = [] {
    auto* created = new Fixture();
    std::atexit([] {
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
  // vigild adds routes (status, intel) that this bare ApiServer lacks; their paths are
  // outside what this server serves.
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
  // The document lists 500 for store failures, which a healthy local store never has, so
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
  request.method = data[0] < kMethodCount ? kMethods[data[0]] : "GET";
  if (data[1] < f.routes.size()) {
    // Aim at a registered route; an input that never names its method still reaches it.
    const vigil::mgmt::RouteInfo& route = f.routes[data[1]];
    if (data[0] >= kMethodCount) request.method = route.method;
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

  ApiResponse response = f.server->handle(request);
  checkResponse(f, request, response);
  return 0;
}

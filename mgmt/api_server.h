// The REST API of the appliance (cpp-httplib): cases, health and Prometheus metrics.
// Routes live in one table; later endpoints (POST, auth) are added with addRoute().
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/metrics.h"
#include "mgmt/case_store.h"
#include "mgmt/principal.h"

namespace vigil::mgmt {

// One HTTP request, as passed to a route handler. Header and query names keep the case
// the client sent.
struct ApiRequest {
  std::string method;  // "GET", "POST", ...; HEAD requests are routed as GET
  std::string path;    // without the query string
  std::map<std::string, std::string> path_params;  // "{id}" in the pattern -> value
  std::multimap<std::string, std::string> query;
  std::multimap<std::string, std::string> headers;
  std::string body;
  // Filled by the authentication layer before the handler runs; unauthenticated (empty
  // token_id) only on routes registered as public.
  Principal principal;

  // Returns the path parameter `name`, or an empty string when the route has none.
  std::string pathParam(absl::string_view name) const;
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Handlers return a response or an error status. An error becomes the JSON body
// {"error": {"code": "invalid_argument", "message": ...}} with the HTTP status that
// httpStatusFor() maps its code to.
using ApiHandler = std::function<absl::StatusOr<ApiResponse>(const ApiRequest&)>;

// Maps an absl status code to its HTTP status: InvalidArgument and OutOfRange 400,
// Unauthenticated 401, PermissionDenied 403, NotFound 404, AlreadyExists and
// FailedPrecondition 409, ResourceExhausted 429, Unimplemented 501, Unavailable 503,
// DeadlineExceeded 504, anything else 500.
int httpStatusFor(absl::StatusCode code);

// Builds the JSON error response for `status` (which must not be OK).
ApiResponse errorResponse(const absl::Status& status);

struct ApiServerOptions {
  // "host:port" or "[v6-address]:port". Port 0 picks a free port (see ApiServer::port()).
  std::string listen = "127.0.0.1:8080";
  std::chrono::seconds read_timeout{5};   // per read of a request
  std::chrono::seconds write_timeout{5};  // per write of a response
  size_t max_payload_bytes = 1 << 20;     // larger request bodies get 413
  // Test-only: the principal every request runs as. Token authentication will fill
  // ApiRequest::principal per request and replace this option. Until then, vigild sets an
  // administrator here so the API serves as it did before handlers checked tenants.
  std::optional<Principal> test_principal;
};

class ApiServer {
 public:
  // Registers the built-in routes. `store` and `metrics` are not owned and must outlive
  // the server. Does not bind; call start().
  ApiServer(CaseStore& store, MetricsRegistry& metrics, ApiServerOptions options = {});

  // Stops the server if it still runs.
  ~ApiServer();

  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Adds a route. `pattern` is a path whose segments are literals or "{name}" parameters,
  // e.g. "/api/v1/cases/{id}". Call before start(); not thread-safe.
  void addRoute(absl::string_view method, absl::string_view pattern, ApiHandler handler);

  // Binds the listen address and serves on a background thread. Returns once the server
  // accepts connections. InvalidArgument for a malformed listen address, Unavailable when
  // the address cannot be bound or the server does not come up within 5 seconds.
  absl::Status start();

  // Stops accepting, finishes the requests in progress and joins the server thread.
  // Safe to call more than once.
  void stop();

  // Port the server is bound to (useful with port 0); 0 before start().
  int port() const { return port_; }

  // "host:port" as bound, e.g. "127.0.0.1:40123".
  std::string address() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace vigil::mgmt

// The REST API of the appliance (cpp-httplib): cases, health and Prometheus metrics,
// tenants, tokens and the audit log, over HTTP or HTTPS. Routes live in one table; other
// endpoints are added with addRoute(). Every route except those registered as public
// needs "Authorization: Bearer <token>"; mutating calls and failed authentication or
// authorization are written to the audit log before the response is sent.
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

class AuditLog;
class AuthStore;

// Who may call a route. The server checks this before the handler runs; handlers then
// check tenants with request.principal.
enum class RouteAccess {
  kToken,             // any valid token; the handler checks role and tenants
  kAdmin,             // only admin tokens; others get 403
  kPublic,            // no token (health checks)
  kPublicOnLoopback,  // no token from 127.0.0.0/8 or ::1, a token from anywhere else
};

// A registered route, for listing (docs, the tenant matrix test).
struct RouteInfo {
  std::string method;
  std::string pattern;
  RouteAccess access = RouteAccess::kToken;
};

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
  // Returns the first value of header `name`, compared without letter case; "" when absent.
  std::string header(absl::string_view name) const;
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // Optional details for the audit record of this call. When empty, the record takes the
  // path parameters and any ?tenant= values as target, and the principal's tenants.
  std::string audit_target;                // e.g. "token=1f2e3d4c5b6a7988"
  std::vector<std::string> audit_tenants;  // tenants the call acted on
};

// Handlers return a response or an error status. An error becomes the JSON body
// {"error": {"code": "invalid_argument", "message": ...}} with the HTTP status that
// httpStatusFor() maps its code to.
using ApiHandler = std::function<absl::StatusOr<ApiResponse>(const ApiRequest&)>;

// Returns OK when the daemon can serve, or Unavailable naming the part that is not ready.
using ReadinessCheck = std::function<absl::Status()>;

// Maps an absl status code to its HTTP status: InvalidArgument and OutOfRange 400,
// Unauthenticated 401, PermissionDenied 403, NotFound 404, AlreadyExists and
// FailedPrecondition 409, ResourceExhausted 429, Unimplemented 501, Unavailable 503,
// DeadlineExceeded 504, anything else 500.
int httpStatusFor(absl::StatusCode code);

// Builds the JSON error response for `status` (which must not be OK).
ApiResponse errorResponse(const absl::Status& status);

// PEM files for HTTPS. With cert_file and key_file set the server speaks only TLS (1.2 or
// newer). With client_ca_file set too it also requires a client certificate signed by
// that CA.
struct ApiTlsOptions {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;

  bool enabled() const { return !cert_file.empty(); }
};

struct ApiServerOptions {
  // "host:port" or "[v6-address]:port". Port 0 picks a free port (see ApiServer::port()).
  std::string listen = "127.0.0.1:8080";
  std::chrono::seconds read_timeout{5};   // per read of a request, and idle keep-alive
  std::chrono::seconds write_timeout{5};  // per write of a response
  size_t max_payload_bytes = 1 << 20;     // larger request bodies get 413
  ApiTlsOptions tls;
  // Token store and audit log; not owned, must outlive the server. Without a token store
  // every non-public route returns 401. Without an audit log nothing is recorded, which
  // only tests should do.
  AuthStore* auth = nullptr;
  AuditLog* audit = nullptr;
  // Serve /metrics without a token to loopback peers (for a local Prometheus).
  bool metrics_public_on_loopback = false;
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
  // e.g. "/api/v1/cases/{id}". `access` sets who may call it. Call before start(); not
  // thread-safe.
  void addRoute(absl::string_view method, absl::string_view pattern, ApiHandler handler,
                RouteAccess access = RouteAccess::kToken);

  // Every registered route in registration order.
  std::vector<RouteInfo> routes() const;

  // Sets the check that GET /readyz runs after querying the case store. Without one,
  // /readyz reports ready while the store responds. Call before start(); not thread-safe.
  void setReadinessCheck(ReadinessCheck check);

  // Routes `request` as the server would, without the network, the request counter, the
  // log line and the token check: the handler gets request.principal as given. Serves the
  // contract tests and the fuzz target.
  ApiResponse handle(ApiRequest request) const;

  // Binds the listen address and serves on a background thread. Returns once the server
  // accepts connections. InvalidArgument for a malformed listen address or TLS files that
  // do not load, Unavailable when the address cannot be bound or the server does not come
  // up within 5 seconds.
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

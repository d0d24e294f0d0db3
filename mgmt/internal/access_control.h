// The server-side checks around every route: bearer-token authentication, admin-only
// routes, and the audit record of each mutating or denied call.
#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "common/metrics.h"
#include "mgmt/api_server.h"

namespace vigil::mgmt::internal {

// True for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104.
bool isLoopbackAddress(absl::string_view address);

// Per-request state the check hands to the audit step.
struct AccessState {
  std::string attempted_token_id;  // id part of a rejected token, for the audit record
  bool auth_failed = false;
};

class AccessControl {
 public:
  // `auth` and `audit` may be null (see ApiServerOptions); neither is owned.
  AccessControl(AuthStore* auth, AuditLog* audit, MetricsRegistry& metrics);

  // Authenticates `request` for a route with `access`, given the Authorization header
  // value. Fills request.principal and returns nullopt when the request may proceed;
  // otherwise returns the 401, 403 or 503 response to send. Counts and logs (rate
  // limited) each failure without the token text.
  std::optional<ApiResponse> check(ApiRequest& request, RouteAccess access,
                                   absl::string_view authorization, AccessState& state);

  // Writes the audit record when the request mutates (POST, PUT, PATCH, DELETE) or was
  // denied (401, 403). Blocks until the record is on disk. When the write fails the
  // response becomes a 500 that says so, because the call is then unrecorded.
  void record(const ApiRequest& request, const AccessState& state, ApiResponse& response);

  // Writes the audit record of a request that cpp-httplib rejected before any route ran,
  // when its method mutates. The subject is the token's name when `authorization` contains a
  // valid token and "anonymous" otherwise; only the public token id is stored. The outcome
  // is "rejected" and the target "reason=<reason>". Blocks until the record is on disk.
  // A failed write is counted and logged but leaves the response as it is, because the
  // rejected call changed nothing.
  void recordRejected(const ApiRequest& request, absl::string_view authorization, int status,
                      absl::string_view reason);

 private:
  Counter& auditWriteFailures();

  AuthStore* auth_;
  AuditLog* audit_;
  MetricsRegistry& metrics_;
};

}  // namespace vigil::mgmt::internal

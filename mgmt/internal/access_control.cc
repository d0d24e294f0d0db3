#include "mgmt/internal/access_control.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "mgmt/audit_log.h"
#include "mgmt/auth_store.h"
#include "mgmt/internal/api_errors.h"

namespace vigil::mgmt::internal {
namespace {

bool isMutating(absl::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

// Bytes of a ?tenant= value that the default target keeps: valid tenant names have at
// most 64, and a longer value is a bad request whose start identifies it well enough.
constexpr size_t kMaxTargetTenantBytes = 128;

std::string defaultTarget(const ApiRequest& request) {
  std::vector<std::string> parts;
  for (const auto& [name, value] : request.path_params) parts.push_back(absl::StrCat(name, "=", value));
  // The tenant scope of content and analyst-list calls, so that a failed or denied call on
  // one tenant's content is recorded with that tenant.
  auto [first, last] = request.query.equal_range("tenant");
  for (auto it = first; it != last; ++it) {
    parts.push_back(absl::StrCat("tenant=", it->second.substr(0, kMaxTargetTenantBytes)));
  }
  return absl::StrJoin(parts, ",");
}

// Returns the valid tenant names given as ?tenant=, the scope of an admin's content and
// analyst list calls. The audit record of such a call takes them when its handler named
// no tenant, as every failed call does. Records of other principals keep the principal's
// tenants, so that their tenant admins see what was tried.
std::vector<std::string> queryTenants(const ApiRequest& request) {
  std::vector<std::string> tenants;
  auto [first, last] = request.query.equal_range("tenant");
  for (auto it = first; it != last; ++it) {
    if (validateTenantName(it->second).ok()) tenants.push_back(it->second);
  }
  return tenants;
}

std::string outcomeFor(const AccessState& state, int status) {
  if (state.auth_failed || status == 401) return "auth_failed";
  if (status == 403) return "forbidden";
  return status < 400 ? "ok" : "error";
}

}  // namespace

bool isLoopbackAddress(absl::string_view address) {
  std::string text(address);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) != 1) return false;
  if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
  return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
}

AccessControl::AccessControl(AuthStore* auth, AuditLog* audit, MetricsRegistry& metrics)
    : auth_(auth), audit_(audit), metrics_(metrics) {
  // Exported at zero from the start, so an alert on any increase works after the first
  // failure too.
  if (audit_ != nullptr) auditWriteFailures();
}

Counter& AccessControl::auditWriteFailures() {
  return metrics_.counter(
      "vigil_audit_write_failures_total",
      "API calls answered with 500 because their audit record could not be written.");
}

std::optional<ApiResponse> AccessControl::check(ApiRequest& request, RouteAccess access,
                                                absl::string_view authorization,
                                                AccessState& state) {
  if (access == RouteAccess::kPublic) return std::nullopt;
  if (access == RouteAccess::kPublicOnLoopback && isLoopbackAddress(request.principal.remote_addr)) {
    return std::nullopt;
  }

  AuthResult result;
  if (auth_ == nullptr) {
    result.failure = AuthFailure::kUnknown;
    result.message = "this server has no token store, so no request can authenticate";
  } else {
    result = auth_->authenticate(authorization);
  }
  if (!result.ok()) {
    state.auth_failed = true;
    state.attempted_token_id = result.token_id;
    const std::string reason(authFailureName(result.failure));
    metrics_
        .counter("vigil_api_auth_failures_total",
                 "API requests rejected because the bearer token was missing or invalid, by reason.",
                 {{"reason", reason}})
        .add();
    VIGIL_LOG_WARN_POW2(
        "api authentication failed reason={} token_id={} remote={} method={} path={}", reason,
        result.token_id.empty() ? "-" : result.token_id, request.principal.remote_addr,
        request.method, logText(request.path));
    if (result.failure == AuthFailure::kStoreError) {
      return errorResponse(503, "unavailable", result.message);
    }
    ApiResponse response = errorResponse(401, "unauthenticated", result.message);
    response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"vigil\"");
    return response;
  }

  const std::string remote = std::move(request.principal.remote_addr);
  request.principal = std::move(result.principal);
  request.principal.remote_addr = remote;
  if (access == RouteAccess::kAdmin && request.principal.role != Role::kAdmin) {
    return errorResponse(403, "permission_denied",
                         absl::StrCat(request.method, " ", request.path,
                                      " needs an admin token; this token's role is ",
                                      roleName(request.principal.role)));
  }
  return std::nullopt;
}

void AccessControl::record(const ApiRequest& request, const AccessState& state,
                           ApiResponse& response) {
  const bool denied = state.auth_failed || response.status == 401 || response.status == 403;
  if (!isMutating(request.method) && !denied) return;
  if (response.status == 403) {
    metrics_
        .counter("vigil_api_forbidden_total",
                 "API requests rejected because the token's role or tenants do not allow them.")
        .add();
  }
  if (audit_ == nullptr) return;

  AuditEntry entry;
  const Principal& p = request.principal;
  entry.subject = p.subject;
  entry.token_id = p.authenticated() ? p.token_id : state.attempted_token_id;
  entry.remote_addr = p.remote_addr;
  entry.method = request.method;
  entry.path = request.path;
  entry.target = response.audit_target.empty() ? defaultTarget(request) : response.audit_target;
  entry.tenants = !response.audit_tenants.empty() ? response.audit_tenants
                  : p.allTenants()                ? queryTenants(request)
                                                  : p.tenants;
  entry.status = response.status;
  entry.outcome = outcomeFor(state, response.status);

  absl::StatusOr<AuditRecord> written = audit_->append(entry);
  if (written.ok()) return;
  auditWriteFailures().add();
  VIGIL_LOG_ERROR("audit record not written method={} path={} token_id={} status={} error=\"{}\"",
                  request.method, logText(request.path), entry.token_id, response.status,
                  logText(std::string(written.status().message())));
  response = errorResponse(
      500, "internal",
      absl::StrCat("the audit log could not be written, so this call is unrecorded; it may "
                   "still have taken effect (HTTP ",
                   response.status, " before the failure); see the vigild log"));
}

void AccessControl::recordRejected(const ApiRequest& request, absl::string_view authorization,
                                   int status, absl::string_view reason) {
  if (!isMutating(request.method) || audit_ == nullptr) return;

  AuditEntry entry;
  entry.subject = "anonymous";
  if (auth_ != nullptr && !authorization.empty()) {
    AuthResult result = auth_->authenticate(authorization);
    entry.token_id = result.token_id;
    if (result.ok()) {
      entry.subject = result.principal.subject;
      entry.token_id = result.principal.token_id;
      if (!result.principal.allTenants()) entry.tenants = result.principal.tenants;
    }
  }
  entry.remote_addr = request.principal.remote_addr;
  entry.method = request.method;
  entry.path = request.path;
  entry.target = absl::StrCat("reason=", reason);
  entry.status = status;
  entry.outcome = "rejected";

  absl::StatusOr<AuditRecord> written = audit_->append(entry);
  if (written.ok()) return;
  auditWriteFailures().add();
  VIGIL_LOG_ERROR(
      "audit record of a rejected request not written method={} path={} status={} "
      "reason={} error=\"{}\"",
      logText(request.method), logText(request.path), status, std::string(reason),
      logText(std::string(written.status().message())));
}

}  // namespace vigil::mgmt::internal

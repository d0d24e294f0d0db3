#include "mgmt/internal/case_access.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "mgmt/internal/case_json.h"
#include "mgmt/internal/list_query.h"

namespace vigil::mgmt::internal {

absl::StatusOr<int64_t> idParam(const ApiRequest& request, absl::string_view name,
                                absl::string_view what) {
  return parsePathId(what, request.pathParam(name), "");
}

absl::StatusOr<int64_t> authorizeCase(CaseStore& store, const ApiRequest& request, Access access) {
  absl::StatusOr<int64_t> parsed =
      parsePathId("case", request.pathParam("id"), "; use an id from /api/v1/cases");
  if (!parsed.ok()) return parsed.status();
  const int64_t id = *parsed;
  absl::StatusOr<std::string> tenant = store.caseTenant(id);
  if (!tenant.ok()) return tenant.status();
  if (!request.principal.canRead(*tenant)) {
    return absl::NotFoundError(absl::StrCat("case ", id, " not found"));
  }
  if (access == Access::kWork) {
    if (absl::Status s = checkCanWork(request.principal, *tenant); !s.ok()) return s;
  }
  return id;
}

absl::Status checkCanWork(const Principal& principal, const std::string& tenant) {
  if (principal.canWork(tenant)) return absl::OkStatus();
  if (principal.role == Role::kAnalyst || principal.role == Role::kTenantAdmin) {
    // The role may work cases, so the tenant is what is missing.
    return absl::PermissionDeniedError(absl::StrCat(
        "the token of '", principal.subject, "' is for tenants ",
        absl::StrJoin(principal.tenants, ", "), ", not ", tenant, "; use a token of tenant ", tenant));
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "role ", roleName(principal.role), " of '", principal.subject,
      "' may not change cases of tenant ", tenant, "; use an analyst or administrator token"));
}

absl::Status checkNoQuery(const ApiRequest& request) {
  if (request.query.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown query parameter ", request.query.begin()->first, "; this endpoint takes none"));
}

Actor actorOf(const Principal& principal) {
  if (!principal.subject.empty()) return {principal.subject, true};
  if (!principal.token_id.empty()) return {principal.token_id, true};
  return {"unknown", true};
}

ApiResponse jsonResponse(const nlohmann::json& body, int status) {
  ApiResponse response;
  response.status = status;
  response.body = dumpJson(body);
  return response;
}

}  // namespace vigil::mgmt::internal

// Helpers the case handlers share: path ids, tenant checks against request.principal and
// JSON responses.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "mgmt/api_server.h"
#include "mgmt/case_store.h"
#include "nlohmann/json.hpp"

namespace vigil::mgmt::internal {

enum class Access { kRead, kWork };

// Parses path parameter `name` as a positive id. InvalidArgument names the value.
absl::StatusOr<int64_t> idParam(const ApiRequest& request, absl::string_view name,
                                absl::string_view what);

// Parses the case id in the path and checks the principal against the case's tenant.
// NotFound when the case is missing or of a tenant the principal cannot read (the same
// answer, so ids of other tenants stay hidden); PermissionDenied when `access` is kWork
// and the principal may only read that tenant.
absl::StatusOr<int64_t> authorizeCase(CaseStore& store, const ApiRequest& request, Access access);

// PermissionDenied unless the principal may work on cases of `tenant`.
absl::Status checkCanWork(const Principal& principal, const std::string& tenant);

// InvalidArgument when the request has any query parameter.
absl::Status checkNoQuery(const ApiRequest& request);

// The actor recorded in timelines: the principal's subject (or token id).
Actor actorOf(const Principal& principal);

// A JSON response with `status`.
ApiResponse jsonResponse(const nlohmann::json& body, int status = 200);

}  // namespace vigil::mgmt::internal

// Handlers of the case endpoints: GET /api/v1/cases and GET /api/v1/cases/{id}.
#pragma once

#include "absl/status/statusor.h"
#include "mgmt/api_server.h"
#include "mgmt/case_store.h"

namespace vigil::mgmt::internal {

// Turns the query of GET /api/v1/cases into a filter. Rejects unknown and repeated
// parameters and malformed values with InvalidArgument naming the value and the range.
absl::StatusOr<CaseFilter> parseCaseQuery(const ApiRequest& request);

// GET /api/v1/cases: {"items": [...], "total": N, "limit": L, "offset": O}.
absl::StatusOr<ApiResponse> listCasesHandler(CaseStore& store, const ApiRequest& request);

// GET /api/v1/cases/{id}: the case with "alerts" and "evidence".
absl::StatusOr<ApiResponse> getCaseHandler(CaseStore& store, const ApiRequest& request);

}  // namespace vigil::mgmt::internal

// Handlers of the case endpoints under /api/v1/cases and /api/v1/metrics/cases. Every
// handler checks request.principal: lists are limited to the principal's tenants in SQL,
// a case of a tenant it cannot read is 404, and writes need Principal::canWork.
#pragma once

#include "absl/status/statusor.h"
#include "mgmt/api_server.h"
#include "mgmt/auth_store.h"
#include "mgmt/case_store.h"
#include "mgmt/internal/router.h"

namespace vigil::mgmt::internal {

// Registers every handler below on `router`. `store` and `tenants` must outlive the router.
// With `tenants` set, a new case must name a tenant that exists in that token store;
// without it any valid tenant name is accepted. The audit record of a write to a case
// names the case's tenant.
void addCaseRoutes(Router& router, CaseStore& store, AuthStore* tenants = nullptr);

// Turns the query of GET /api/v1/cases into a filter limited to the principal's tenants.
// Rejects unknown and repeated parameters and malformed values with InvalidArgument naming
// the value and the range.
absl::StatusOr<CaseFilter> parseCaseQuery(const ApiRequest& request);

// GET /api/v1/cases: {"items": [...], "total": N, "limit": L, "offset": O}.
absl::StatusOr<ApiResponse> listCasesHandler(CaseStore& store, const ApiRequest& request);

// GET /api/v1/cases/{id}: the case with "alerts", "evidence", "files", "tasks", "notes".
absl::StatusOr<ApiResponse> getCaseHandler(CaseStore& store, const ApiRequest& request);

// POST /api/v1/cases: 201 with the new case. InvalidArgument for an invalid tenant name,
// or for a tenant missing from `tenants` when that is not null.
absl::StatusOr<ApiResponse> createCaseHandler(CaseStore& store, AuthStore* tenants,
                                              const ApiRequest& request);

// PATCH /api/v1/cases/{id}: the case after the update.
absl::StatusOr<ApiResponse> updateCaseHandler(CaseStore& store, const ApiRequest& request);

// POST /api/v1/cases/{id}/tasks (201) and PATCH /api/v1/cases/{id}/tasks/{task}.
absl::StatusOr<ApiResponse> addTaskHandler(CaseStore& store, const ApiRequest& request);
absl::StatusOr<ApiResponse> updateTaskHandler(CaseStore& store, const ApiRequest& request);

// POST /api/v1/cases/{id}/notes: 201 with the note and its mentions.
absl::StatusOr<ApiResponse> addNoteHandler(CaseStore& store, const ApiRequest& request);

// POST /api/v1/cases/{id}/evidence: a raw body (name in ?name=) or JSON {"name",
// "content_base64", "content_type"}. 201 when attached, 200 when the case already held
// the file, 413 over the size limit.
absl::StatusOr<ApiResponse> addEvidenceHandler(CaseStore& store, const ApiRequest& request);

// GET /api/v1/cases/{id}/evidence/{sha256}: the file's bytes as an attachment.
absl::StatusOr<ApiResponse> getEvidenceHandler(CaseStore& store, const ApiRequest& request);

// GET /api/v1/cases/{id}/timeline: {"items": [...]} oldest first.
absl::StatusOr<ApiResponse> timelineHandler(CaseStore& store, const ApiRequest& request);

// POST /api/v1/cases/{id}/merge {"into": N}: the target case after the merge.
absl::StatusOr<ApiResponse> mergeCaseHandler(CaseStore& store, const ApiRequest& request);

// GET /api/v1/metrics/cases?tenant=&from=&to=: {"from", "to", "groups": [...]}.
absl::StatusOr<ApiResponse> caseMetricsHandler(CaseStore& store, const ApiRequest& request);

}  // namespace vigil::mgmt::internal

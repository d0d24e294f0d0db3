// Handlers of the playbook run endpoints:
//   GET  /api/v1/runs                 ?state=&tenant=&playbook=&limit=&offset=&sort=
//   GET  /api/v1/runs/{id}            the run with its steps
//   GET  /api/v1/approvals            runs waiting for approval (same query without state)
//   POST /api/v1/runs/{id}/approve    {"comment": "..."}
//   POST /api/v1/runs/{id}/deny       {"comment": "..."}
// Every read is filtered by the principal's tenants; a run the principal may not read
// answers 404 as if it did not exist.
#pragma once

#include "absl/status/statusor.h"
#include "mgmt/api_server.h"
#include "mgmt/playbook_runner.h"
#include "mgmt/run_store.h"
#include "nlohmann/json.hpp"

namespace vigil::mgmt::internal {

// {"id", "playbook", "playbook_hash", "tenant", "alert_id", "rule_id", "state", "created",
//  "updated", "finished", "wake_at", "prompt", "decision", "approver", "comment",
//  "decided", "result", "error", "vm_steps"}; with_detail adds "alert" and "steps".
nlohmann::json runToJson(const RunRecord& run, bool with_detail);

// Turns the query into a filter limited to `principal`'s tenants. `fixed_state` (for the
// approvals list) forbids a state parameter.
absl::StatusOr<RunFilter> parseRunQuery(const ApiRequest& request, const Principal& principal,
                                        std::optional<RunState> fixed_state);

absl::StatusOr<ApiResponse> listRunsHandler(RunStore& store, const ApiRequest& request,
                                            const Principal& principal,
                                            std::optional<RunState> fixed_state);
absl::StatusOr<ApiResponse> getRunHandler(RunStore& store, const ApiRequest& request,
                                          const Principal& principal);
absl::StatusOr<ApiResponse> decideRunHandler(PlaybookRunner& runner, const ApiRequest& request,
                                             const Principal& principal, bool approve);

}  // namespace vigil::mgmt::internal

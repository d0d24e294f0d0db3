// JSON views of stored cases, as served by GET /api/v1/cases and /api/v1/cases/{id}.
// Times are RFC 3339 strings in UTC.
#pragma once

#include "mgmt/case_store.h"
#include "nlohmann/json.hpp"

namespace vigil::mgmt::internal {

// {"id", "title", "severity", "status", "resolution", "assignee", "tenant", "rule_id",
//  "group", "first_event", "detected", "updated", "alert_count"}
nlohmann::json caseToJson(const Case& c);

// caseToJson(detail.info) plus "alerts" (oldest first) and "evidence" (by alert, then
// position).
nlohmann::json caseDetailToJson(const CaseDetail& detail);

// Serializes `j`, replacing invalid UTF-8 (raw evidence may carry it) with U+FFFD.
std::string dumpJson(const nlohmann::json& j);

}  // namespace vigil::mgmt::internal

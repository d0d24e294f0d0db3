// JSON views of stored cases, as served by GET /api/v1/cases and /api/v1/cases/{id}.
// Times are RFC 3339 strings in UTC.
#pragma once

#include "mgmt/case_metrics.h"
#include "mgmt/case_store.h"
#include "nlohmann/json.hpp"

namespace vigil::mgmt::internal {

// {"id", "title", "description", "severity", "status", "resolution", "resolution_note",
//  "assignee", "tags", "tenant", "rule_id", "group", "created_by", "first_event", "detected",
//  "updated", "acknowledged", "resolved", "merged_into", "alert_count", "metrics", "sla"}.
// "metrics" and "sla" are computed from `sla` at `now_ns` (see case_metrics.h).
nlohmann::json caseToJson(const Case& c, const SlaPolicy& sla, int64_t now_ns);

// caseToJson(detail.info) plus "alerts" (oldest first), "evidence" (by alert, then
// position), "files", "tasks" and "notes".
nlohmann::json caseDetailToJson(const CaseDetail& detail, const SlaPolicy& sla, int64_t now_ns);

nlohmann::json taskToJson(const CaseTask& task);
nlohmann::json noteToJson(const CaseNote& note);
nlohmann::json fileToJson(const EvidenceFile& file);
nlohmann::json timelineEntryToJson(const TimelineEntry& entry);
nlohmann::json metricsGroupToJson(const CaseMetricsGroup& group);

// Serializes `j`, replacing invalid UTF-8 (raw evidence may carry it) with U+FFFD.
std::string dumpJson(const nlohmann::json& j);

}  // namespace vigil::mgmt::internal

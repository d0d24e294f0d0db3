#include "mgmt/internal/case_json.h"

#include <string>

#include "common/time.h"

namespace vigil::mgmt::internal {
namespace {

// Group keys and group columns are JSON objects written by the store. A value that does
// not parse, as in a hand-edited database, is shown as the raw string instead of failing.
nlohmann::json parseStoredJson(const std::string& text) {
  nlohmann::json parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return text;
  return parsed;
}

nlohmann::json alertToApiJson(const StoredAlert& alert) {
  nlohmann::json j = {
      {"id", alert.id},
      {"alert_id", alert.alert_id},
      {"rule_id", alert.rule_id},
      {"level", alert.level},
      {"tenant", alert.tenant},
      {"group", parseStoredJson(alert.group_json)},
      {"first_event", formatRfc3339(alert.first_event_ns)},
      {"last_event", formatRfc3339(alert.last_event_ns)},
      {"detected", formatRfc3339(alert.detect_ns)},
      {"event_count", alert.event_count},
  };
  // The stored alert JSON carries the fields that have no column of their own.
  nlohmann::json full = parseStoredJson(alert.json);
  if (full.is_object()) {
    for (const char* key : {"rule_title", "tags", "indicator_hits"}) {
      if (full.contains(key)) j[key] = full[key];
    }
  }
  return j;
}

}  // namespace

nlohmann::json caseToJson(const Case& c) {
  return {
      {"id", c.id},
      {"title", c.title},
      {"severity", std::string(severityName(c.severity))},
      {"status", std::string(caseStatusName(c.status))},
      {"resolution", c.resolution},
      {"assignee", c.assignee},
      {"tenant", c.tenant},
      {"rule_id", c.rule_id},
      {"group", parseStoredJson(c.group_key)},
      {"first_event", formatRfc3339(c.first_event_ns)},
      {"detected", formatRfc3339(c.detect_ns)},
      {"updated", formatRfc3339(c.updated_ns)},
      {"alert_count", c.alert_count},
  };
}

nlohmann::json caseDetailToJson(const CaseDetail& detail) {
  nlohmann::json j = caseToJson(detail.info);
  nlohmann::json alerts = nlohmann::json::array();
  for (const StoredAlert& alert : detail.alerts) alerts.push_back(alertToApiJson(alert));
  nlohmann::json evidence = nlohmann::json::array();
  for (const Evidence& item : detail.evidence) {
    evidence.push_back({{"alert", item.alert_id}, {"position", item.position}, {"raw", item.raw}});
  }
  j["alerts"] = std::move(alerts);
  j["evidence"] = std::move(evidence);
  return j;
}

std::string dumpJson(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace vigil::mgmt::internal

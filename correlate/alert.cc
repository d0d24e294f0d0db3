#include "correlate/alert.h"

#include <nlohmann/json.hpp>

#include <cmath>

#include "common/time.h"

namespace vigil::correlate {

std::string alertToJson(const Alert& alert) {
  nlohmann::json group = nlohmann::json::object();
  for (const auto& [field, value] : alert.group) group[field] = value;
  nlohmann::json j = {
      {"id", alert.id},
      {"rule_id", alert.rule_id},
      {"rule_title", alert.rule_title},
      {"rules_version", alert.rules_version},
      {"level", alert.level},
      {"tenant", alert.tenant},
      {"group", group},
      {"tags", alert.tags},
      {"first_event", formatRfc3339(alert.first_event_ns)},
      {"last_event", formatRfc3339(alert.last_event_ns)},
      {"detected", formatRfc3339(alert.detect_ns)},
      {"event_count", alert.event_count},
      {"evidence", alert.evidence},
      {"indicator_hits", alert.indicator_hits},
  };
  if (!std::isnan(alert.metric)) j["metric"] = alert.metric;
  // Evidence is raw input and may hold invalid UTF-8; replace rather than throw.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace vigil::correlate

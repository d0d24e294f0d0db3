#include "mgmt/internal/stored_alert.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace vigil::mgmt::internal {
namespace {

using json = nlohmann::json;

}  // namespace

std::string encodeStoredAlert(const correlate::Alert& alert) {
  json group = json::array();
  for (const auto& [field, value] : alert.group) group.push_back({field, value});
  json j = {
      {"id", alert.id},
      {"rule_id", alert.rule_id},
      {"rule_title", alert.rule_title},
      {"rules_version", alert.rules_version},
      {"level", alert.level},
      {"tenant", alert.tenant},
      {"group", group},
      {"tags", alert.tags},
      {"first_event_ns", alert.first_event_ns},
      {"last_event_ns", alert.last_event_ns},
      {"detect_ns", alert.detect_ns},
      {"event_count", alert.event_count},
      {"evidence", alert.evidence},
      {"indicator_hits", alert.indicator_hits},
  };
  if (!std::isnan(alert.metric)) j["metric"] = alert.metric;
  if (alert.receive_ns != 0) j["receive_ns"] = alert.receive_ns;
  // Evidence is raw input and may hold invalid UTF-8; replace rather than throw.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

absl::StatusOr<correlate::Alert> decodeStoredAlert(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::DataLossError("stored alert is not a JSON object");
  correlate::Alert alert;
  try {
    alert.id = j.at("id").get<std::string>();
    alert.rule_id = j.at("rule_id").get<std::string>();
    alert.rule_title = j.at("rule_title").get<std::string>();
    alert.rules_version = j.at("rules_version").get<uint64_t>();
    alert.level = j.at("level").get<std::string>();
    alert.tenant = j.at("tenant").get<std::string>();
    for (const json& pair : j.at("group")) {
      alert.group.emplace_back(pair.at(0).get<std::string>(), pair.at(1).get<std::string>());
    }
    alert.tags = j.at("tags").get<std::vector<std::string>>();
    alert.first_event_ns = j.at("first_event_ns").get<int64_t>();
    alert.last_event_ns = j.at("last_event_ns").get<int64_t>();
    alert.detect_ns = j.at("detect_ns").get<int64_t>();
    alert.event_count = j.at("event_count").get<uint64_t>();
    alert.evidence = j.at("evidence").get<std::vector<std::string>>();
    alert.indicator_hits = j.at("indicator_hits").get<std::vector<std::string>>();
    if (j.contains("metric")) alert.metric = j.at("metric").get<double>();
    // Absent in rows stored before the field existed.
    if (j.contains("receive_ns")) alert.receive_ns = j.at("receive_ns").get<int64_t>();
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat("stored alert is malformed: ", e.what()));
  }
  return alert;
}

}  // namespace vigil::mgmt::internal

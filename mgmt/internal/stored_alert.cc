#include "mgmt/internal/stored_alert.h"

#include <cmath>

#include "common/json_text.h"
#include "simdjson.h"

namespace vigil::mgmt::internal {
namespace {

namespace dom = simdjson::dom;

// One simdjson parser per thread: the case sink, the feeder and the playbook workers each
// decode on their own thread, and a parser keeps its buffers between documents.
dom::parser& threadParser() {
  thread_local dom::parser parser;
  return parser;
}

absl::Status malformed(std::string_view key, std::string_view want) {
  std::string message = "stored alert is malformed: field \"";
  message.append(key);
  message += "\" is missing or not ";
  message.append(want);
  return absl::DataLossError(message);
}

absl::Status readString(dom::object object, std::string_view key, std::string& out) {
  std::string_view text;
  if (object[key].get(text) != simdjson::SUCCESS) return malformed(key, "a string");
  out.assign(text.data(), text.size());
  return absl::OkStatus();
}

absl::Status readStrings(dom::object object, std::string_view key,
                         std::vector<std::string>& out) {
  dom::array items;
  if (object[key].get(items) != simdjson::SUCCESS) return malformed(key, "an array");
  out.clear();
  out.reserve(items.size());
  for (dom::element item : items) {
    std::string_view text;
    if (item.get(text) != simdjson::SUCCESS) return malformed(key, "an array of strings");
    out.emplace_back(text);
  }
  return absl::OkStatus();
}

template <typename Integer>
absl::Status readInteger(dom::object object, std::string_view key, Integer& out) {
  if (object[key].get(out) != simdjson::SUCCESS) return malformed(key, "an integer");
  return absl::OkStatus();
}

}  // namespace

// Keys sorted by name, the order the nlohmann::json object that wrote earlier rows kept.
std::string encodeStoredAlert(const correlate::Alert& alert) {
  std::string out;
  out.reserve(320 + 128 * alert.evidence.size());
  out.push_back('{');
  appendJsonKey("detect_ns", out);
  appendJsonInteger(alert.detect_ns, out);
  out.push_back(',');
  appendJsonKey("event_count", out);
  appendJsonInteger(alert.event_count, out);
  out.push_back(',');
  appendJsonKey("evidence", out);
  appendJsonStringArray(alert.evidence, out);
  out.push_back(',');
  appendJsonKey("first_event_ns", out);
  appendJsonInteger(alert.first_event_ns, out);
  out.push_back(',');
  appendJsonKey("group", out);
  out.push_back('[');
  for (size_t i = 0; i < alert.group.size(); ++i) {
    if (i != 0) out.push_back(',');
    out.push_back('[');
    appendJsonString(alert.group[i].first, out);
    out.push_back(',');
    appendJsonString(alert.group[i].second, out);
    out.push_back(']');
  }
  out += "],";
  appendJsonKey("id", out);
  appendJsonString(alert.id, out);
  out.push_back(',');
  appendJsonKey("indicator_hits", out);
  appendJsonStringArray(alert.indicator_hits, out);
  out.push_back(',');
  appendJsonKey("last_event_ns", out);
  appendJsonInteger(alert.last_event_ns, out);
  out.push_back(',');
  appendJsonKey("level", out);
  appendJsonString(alert.level, out);
  out.push_back(',');
  if (!std::isnan(alert.metric)) {
    appendJsonKey("metric", out);
    appendJsonDouble(alert.metric, out);
    out.push_back(',');
  }
  if (alert.receive_ns != 0) {
    appendJsonKey("receive_ns", out);
    appendJsonInteger(alert.receive_ns, out);
    out.push_back(',');
  }
  appendJsonKey("rule_id", out);
  appendJsonString(alert.rule_id, out);
  out.push_back(',');
  appendJsonKey("rule_title", out);
  appendJsonString(alert.rule_title, out);
  out.push_back(',');
  appendJsonKey("rules_version", out);
  appendJsonInteger(alert.rules_version, out);
  out.push_back(',');
  appendJsonKey("tags", out);
  appendJsonStringArray(alert.tags, out);
  out.push_back(',');
  appendJsonKey("tenant", out);
  appendJsonString(alert.tenant, out);
  out.push_back('}');
  return out;
}

absl::StatusOr<correlate::Alert> decodeStoredAlert(std::string_view text) {
  dom::element root;
  if (threadParser().parse(text.data(), text.size()).get(root) != simdjson::SUCCESS) {
    return absl::DataLossError("stored alert is not valid JSON");
  }
  dom::object j;
  if (root.get(j) != simdjson::SUCCESS) {
    return absl::DataLossError("stored alert is not a JSON object");
  }
  correlate::Alert alert;
  absl::Status s;
  if (!(s = readString(j, "id", alert.id)).ok()) return s;
  if (!(s = readString(j, "rule_id", alert.rule_id)).ok()) return s;
  if (!(s = readString(j, "rule_title", alert.rule_title)).ok()) return s;
  if (!(s = readInteger(j, "rules_version", alert.rules_version)).ok()) return s;
  if (!(s = readString(j, "level", alert.level)).ok()) return s;
  if (!(s = readString(j, "tenant", alert.tenant)).ok()) return s;
  dom::array group;
  if (j["group"].get(group) != simdjson::SUCCESS) return malformed("group", "an array");
  alert.group.reserve(group.size());
  for (dom::element pair : group) {
    dom::array members;
    std::string_view field;
    std::string_view value;
    if (pair.get(members) != simdjson::SUCCESS || members.size() != 2 ||
        members.at(0).get(field) != simdjson::SUCCESS ||
        members.at(1).get(value) != simdjson::SUCCESS) {
      return malformed("group", "an array of [field, value] string pairs");
    }
    alert.group.emplace_back(field, value);
  }
  if (!(s = readStrings(j, "tags", alert.tags)).ok()) return s;
  if (!(s = readInteger(j, "first_event_ns", alert.first_event_ns)).ok()) return s;
  if (!(s = readInteger(j, "last_event_ns", alert.last_event_ns)).ok()) return s;
  if (!(s = readInteger(j, "detect_ns", alert.detect_ns)).ok()) return s;
  if (!(s = readInteger(j, "event_count", alert.event_count)).ok()) return s;
  if (!(s = readStrings(j, "evidence", alert.evidence)).ok()) return s;
  if (!(s = readStrings(j, "indicator_hits", alert.indicator_hits)).ok()) return s;
  if (dom::element metric; j["metric"].get(metric) == simdjson::SUCCESS) {
    if (metric.get(alert.metric) != simdjson::SUCCESS) return malformed("metric", "a number");
  }
  // Absent in rows stored before the field existed.
  if (dom::element receive; j["receive_ns"].get(receive) == simdjson::SUCCESS) {
    if (receive.get(alert.receive_ns) != simdjson::SUCCESS) {
      return malformed("receive_ns", "an integer");
    }
  }
  return alert;
}

}  // namespace vigil::mgmt::internal

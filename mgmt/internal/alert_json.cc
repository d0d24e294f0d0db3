#include "mgmt/internal/alert_json.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string_view>

#include "absl/strings/numbers.h"
#include "common/time.h"

namespace vigil::mgmt::internal {
namespace {

using json = nlohmann::json;

// Top-level keys set from the alert's own fields, sorted for binary search. A group-by
// field with one of these names appears only under "group".
constexpr std::string_view kFieldKeys[] = {
    "detected", "event_count", "evidence", "first_event", "id",       "indicator_hits",
    "last_event", "level",     "rule_id",  "rule_title",  "rules_version", "severity",
    "tags",     "tenant"};

static_assert(std::is_sorted(std::begin(kFieldKeys), std::end(kFieldKeys)));

bool isFieldKey(std::string_view key) {
  return std::binary_search(std::begin(kFieldKeys), std::end(kFieldKeys), key);
}

// The value stored under `key`, created as null when missing. Looks up without building a
// key string (nlohmann's object_t compares with std::less<>).
json& member(json& object, std::string_view key) {
  json::object_t& members = object.get_ref<json::object_t&>();
  auto it = members.find(key);
  if (it == members.end()) it = members.emplace(std::string(key), json()).first;
  return it->second;
}

void setText(json& slot, std::string_view text) {
  if (!validUtf8(text)) {
    // Replaced by nlohmann's serializer, so the text matches what alertToJson writes.
    std::string replaced = json(std::string(text)).dump(-1, ' ', false,
                                                       json::error_handler_t::replace);
    slot = json::parse(replaced);
    return;
  }
  if (slot.is_string()) {
    slot.get_ref<std::string&>().assign(text.data(), text.size());
  } else {
    slot = std::string(text);
  }
}

void setTextArray(json& slot, const std::vector<std::string>& texts) {
  if (!slot.is_array()) slot = json::array();
  json::array_t& items = slot.get_ref<json::array_t&>();
  items.resize(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) setText(items[i], texts[i]);
}

void setTime(json& slot, int64_t ns) {
  char text[40];
  setText(slot, std::string_view(text, formatRfc3339(ns, text, sizeof(text))));
}

json& objectMember(json& object, std::string_view key) {
  json& slot = member(object, key);
  if (!slot.is_object()) slot = json::object();
  return slot;
}

// The value the alert's group has for `field`: its last entry, as a JSON object keeps it.
const std::string* groupValue(const correlate::Alert& alert, std::string_view field) {
  const std::string* found = nullptr;
  for (const auto& [name, value] : alert.group) {
    if (name == field) found = &value;
  }
  return found;
}

}  // namespace

void appendJsonValue(const json& j, std::string& out) {
  switch (j.type()) {
    case json::value_t::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& [key, value] : j.get_ref<const json::object_t&>()) {
        if (!first) out.push_back(',');
        first = false;
        appendJsonString(key, out);
        out.push_back(':');
        appendJsonValue(value, out);
      }
      out.push_back('}');
      return;
    }
    case json::value_t::array: {
      out.push_back('[');
      bool first = true;
      for (const json& item : j.get_ref<const json::array_t&>()) {
        if (!first) out.push_back(',');
        first = false;
        appendJsonValue(item, out);
      }
      out.push_back(']');
      return;
    }
    case json::value_t::string:
      appendJsonString(j.get_ref<const std::string&>(), out);
      return;
    case json::value_t::number_integer: {
      char digits[absl::numbers_internal::kFastToBufferSize];
      out.append(digits, absl::numbers_internal::FastIntToBuffer(j.get<int64_t>(), digits));
      return;
    }
    case json::value_t::number_unsigned: {
      char digits[absl::numbers_internal::kFastToBufferSize];
      out.append(digits, absl::numbers_internal::FastIntToBuffer(j.get<uint64_t>(), digits));
      return;
    }
    case json::value_t::number_float:
      appendJsonDouble(j.get<double>(), out);
      return;
    default:  // null, boolean, binary and discarded: as nlohmann writes them
      out += j.dump(-1, ' ', false, json::error_handler_t::replace);
      return;
  }
}

void refreshAlertJson(const correlate::Alert& alert, int64_t inbox_id, json& out) {
  const bool has_metric = !std::isnan(alert.metric);
  if (!out.is_object()) out = json::object();
  // Every key this alert needs is set first and counted. Keys left from an earlier alert
  // are searched for only when the object has more keys than that.
  size_t keys = std::size(kFieldKeys) + 2;  // plus "group" and "events"
  setText(member(out, "id"), alert.id);
  setText(member(out, "rule_id"), alert.rule_id);
  setText(member(out, "rule_title"), alert.rule_title);
  member(out, "rules_version") = alert.rules_version;
  setText(member(out, "level"), alert.level);
  setText(member(out, "severity"), alert.level);
  setText(member(out, "tenant"), alert.tenant);
  setTextArray(member(out, "tags"), alert.tags);
  setTime(member(out, "first_event"), alert.first_event_ns);
  setTime(member(out, "last_event"), alert.last_event_ns);
  setTime(member(out, "detected"), alert.detect_ns);
  member(out, "event_count") = alert.event_count;
  setTextArray(member(out, "evidence"), alert.evidence);
  setTextArray(member(out, "indicator_hits"), alert.indicator_hits);
  if (has_metric) {
    member(out, "metric") = alert.metric;
    ++keys;
  }
  if (inbox_id != 0) {
    member(out, "inbox_id") = inbox_id;
    ++keys;
  }

  json& group = objectMember(out, "group");
  size_t group_keys = 0;
  for (const auto& [field, value] : alert.group) {
    if (groupValue(alert, field) != &value) continue;  // a later entry has the same field
    setText(member(group, field), value);
    ++group_keys;
    const bool reserved = isFieldKey(field) || field == "group" || field == "events" ||
                       (field == "metric" && has_metric) || (field == "inbox_id" && inbox_id != 0);
    if (!reserved) {
      setText(member(out, field), value);
      ++keys;
    }
  }
  json::object_t& group_members = group.get_ref<json::object_t&>();
  if (group_members.size() > group_keys) {
    for (auto it = group_members.begin(); it != group_members.end();) {
      it = groupValue(alert, it->first) != nullptr ? std::next(it) : group_members.erase(it);
    }
  }

  json& events = member(out, "events");
  if (!events.is_array()) events = json::array();
  json::array_t& items = events.get_ref<json::array_t&>();
  items.resize(alert.evidence.size());
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].is_object() || items[i].size() != 1 || !items[i].contains("raw")) {
      items[i] = json::object();
    }
    setText(member(items[i], "raw"), alert.evidence[i]);
  }

  json::object_t& members = out.get_ref<json::object_t&>();
  if (members.size() > keys) {
    auto needed = [&](std::string_view key) {
      return isFieldKey(key) || key == "group" || key == "events" ||
             (key == "metric" && has_metric) || (key == "inbox_id" && inbox_id != 0) ||
             groupValue(alert, key) != nullptr;
    };
    for (auto it = members.begin(); it != members.end();) {
      it = needed(it->first) ? std::next(it) : members.erase(it);
    }
  }
}

void dumpJsonTo(const json& j, std::string& out) {
  out.clear();
  appendJsonValue(j, out);
}

}  // namespace vigil::mgmt::internal

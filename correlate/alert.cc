#include "correlate/alert.h"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "common/json_text.h"
#include "common/time.h"

namespace vigil::correlate {

namespace {

void appendTime(int64_t ns, std::string& out) {
  char text[40];
  out.push_back('"');
  out.append(text, formatRfc3339(ns, text, sizeof(text)));
  out.push_back('"');
}

// The group-by fields as a JSON object writes them: by name, and the last value of a
// name that occurs twice.
void appendGroup(const Alert& alert, std::string& out) {
  using Member = const std::pair<std::string, std::string>*;
  std::vector<Member> members;
  members.reserve(alert.group.size());
  for (const auto& member : alert.group) members.push_back(&member);
  std::stable_sort(members.begin(), members.end(),
                   [](Member a, Member b) { return a->first < b->first; });
  out.push_back('{');
  bool first = true;
  for (size_t i = 0; i < members.size(); ++i) {
    if (i + 1 < members.size() && members[i + 1]->first == members[i]->first) continue;
    if (!first) out.push_back(',');
    first = false;
    appendJsonString(members[i]->first, out);
    out.push_back(':');
    appendJsonString(members[i]->second, out);
  }
  out.push_back('}');
}

}  // namespace

// The keys in the order of a nlohmann::json object (sorted), so the text is what
// dumping a JSON object of these fields wrote before, byte for byte.
void appendAlertJson(const Alert& alert, std::string& out) {
  out.push_back('{');
  appendJsonKey("detected", out);
  appendTime(alert.detect_ns, out);
  out.push_back(',');
  appendJsonKey("event_count", out);
  appendJsonInteger(alert.event_count, out);
  out.push_back(',');
  appendJsonKey("evidence", out);
  appendJsonStringArray(alert.evidence, out);
  out.push_back(',');

  appendJsonKey("first_event", out);
  appendTime(alert.first_event_ns, out);
  out.push_back(',');
  appendJsonKey("group", out);
  appendGroup(alert, out);
  out.push_back(',');
  appendJsonKey("id", out);
  appendJsonString(alert.id, out);
  out.push_back(',');
  appendJsonKey("indicator_hits", out);
  appendJsonStringArray(alert.indicator_hits, out);
  out.push_back(',');
  appendJsonKey("last_event", out);
  appendTime(alert.last_event_ns, out);
  out.push_back(',');

  appendJsonKey("level", out);
  appendJsonString(alert.level, out);
  out.push_back(',');
  if (!std::isnan(alert.metric)) {
    appendJsonKey("metric", out);
    appendJsonDouble(alert.metric, out);
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
}

std::string alertToJson(const Alert& alert) {
  std::string out;
  out.reserve(256 + 128 * alert.evidence.size());
  appendAlertJson(alert, out);
  return out;
}

}  // namespace vigil::correlate

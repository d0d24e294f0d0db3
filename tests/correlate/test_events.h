// Test helpers: Events built from JSON documents (one per line, or several concatenated
// pretty-printed documents) and rule sets loaded from YAML text.
#pragma once

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/event.h"
#include "common/time.h"
#include "correlate/rules.h"
#include "gtest/gtest.h"

namespace vigil::correlate::testing {

inline std::string sharedPath(const std::string& relative) {
  return std::string(VIGIL_SHARED_DIR) + "/corpus/" + relative;
}

inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Adds the leaves of `node` as generic fields. Object members keep their own name
// ("EventData.Image" becomes "Image"), XML attributes from Windows event JSON become
// "<element>_<attribute>" ("Provider_Name"), and spaces are dropped ("Source Name" becomes
// "SourceName"), which is how Sigma rules name these fields.
inline void addLeaves(Event& event, const nlohmann::json& node, const std::string& name) {
  if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      if (key == "#attributes") {
        for (const auto& [attribute, attribute_value] : value.items()) {
          addLeaves(event, attribute_value, name + "_" + attribute);
        }
      } else {
        addLeaves(event, value, key);
      }
    }
    return;
  }
  if (node.is_null() || node.is_array()) return;
  std::string text = node.is_string() ? node.get<std::string>() : node.dump();
  std::string field_name;
  for (char c : name) {
    if (c != ' ') field_name += c;
  }
  event.addField(event.arena.copy(field_name), event.arena.copy(text));
}

// Fills `event` from one JSON document. "ts" sets the event time, "src_ip", "dst_ip",
// "user" and "host" set the canonical fields, and every leaf also becomes a generic field.
inline void fillEvent(Event& event, const nlohmann::json& document, std::string_view tenant = "") {
  event.reset();
  event.raw = event.arena.copy(document.dump());
  event.tenant = tenant;
  if (document.contains("ts")) {
    event.timestamp_ns = parseRfc3339(document["ts"].get<std::string>()).value_or(0);
  }
  if (document.contains("src_ip")) event.src_ip = parseIp(document["src_ip"].get<std::string>());
  if (document.contains("dst_ip")) event.dst_ip = parseIp(document["dst_ip"].get<std::string>());
  if (document.contains("user")) event.user = event.arena.copy(document["user"].get<std::string>());
  if (document.contains("host")) event.host = event.arena.copy(document["host"].get<std::string>());
  addLeaves(event, document, "");
}

// Reads every JSON document in `path` (JSON lines or concatenated documents).
inline std::vector<nlohmann::json> readJsonDocuments(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> documents;
  while (in >> std::ws && in.peek() != EOF) {
    nlohmann::json document;
    in >> document;
    documents.push_back(std::move(document));
  }
  return documents;
}

// Loads `yaml` as one rule set, failing the test on error.
inline std::shared_ptr<const RuleSet> loadRuleSet(const std::string& yaml) {
  RuleLoader loader;
  absl::Status status = loader.addText(yaml, "test.yml");
  EXPECT_TRUE(status.ok()) << status;
  absl::StatusOr<RuleSet> rules = loader.finish();
  EXPECT_TRUE(rules.ok()) << rules.status();
  if (!rules.ok()) return std::make_shared<RuleSet>();
  return std::make_shared<RuleSet>(std::move(*rules));
}

}  // namespace vigil::correlate::testing

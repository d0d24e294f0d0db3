#include "correlate/rules.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "correlate/internal/detection_loader.h"
#include "correlate/internal/regex_table.h"
#include "correlate/internal/text.h"
#include "correlate/internal/yaml_documents.h"

namespace vigil::correlate {
namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;

// Reads a scalar or a list of scalars into `out`.
absl::Status readStringList(const YAML::Node& node, std::string_view key,
                            std::vector<std::string>& out) {
  if (!node || node.IsNull()) return absl::OkStatus();
  if (node.IsScalar()) {
    out.push_back(node.Scalar());
    return absl::OkStatus();
  }
  if (!node.IsSequence()) {
    return absl::InvalidArgumentError(internal::concat("'", key, "' must be a string or a list"));
  }
  for (const YAML::Node& item : node) {
    if (!item.IsScalar()) {
      return absl::InvalidArgumentError(internal::concat("'", key, "' must hold strings"));
    }
    out.push_back(item.Scalar());
  }
  return absl::OkStatus();
}

absl::Status readGenerate(const YAML::Node& node, bool& generate) {
  if (!node || node.IsNull()) return absl::OkStatus();
  if (!node.IsScalar() || (node.Scalar() != "true" && node.Scalar() != "false")) {
    return absl::InvalidArgumentError("'generate' must be true or false");
  }
  generate = node.Scalar() == "true";
  return absl::OkStatus();
}

// Reads `condition: {gte: N}` or `{gt: N}` of an event_count correlation.
absl::Status readCountCondition(const YAML::Node& node, CorrelationRule& rule) {
  if (!node || !node.IsMap() || node.size() == 0) {
    return absl::InvalidArgumentError("'correlation.condition' must be a map such as {gte: 10}");
  }
  if (node.size() > 1) {
    return absl::InvalidArgumentError(
        "ranges in 'correlation.condition' are not supported yet; use one of gte or gt");
  }
  const auto entry = *node.begin();
  const std::string op = entry.first.Scalar();
  if (op == "lt" || op == "lte" || op == "eq" || op == "neq") {
    return absl::InvalidArgumentError(
        internal::concat("condition '", op,
                         "' is not supported yet for event_count, because an alert on a "
                         "low count needs the window to close first; use gte or gt"));
  }
  if (op != "gte" && op != "gt") {
    return absl::InvalidArgumentError(
        internal::concat("unknown condition operator '", op, "'; expected gte or gt"));
  }
  const std::string text = entry.second.IsScalar() ? entry.second.Scalar() : "";
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  rule.strictly_greater = op == "gt";
  rule.threshold = value;
  if (ec != std::errc() || end != text.data() + text.size() || rule.minCount() < 1 ||
      rule.minCount() > kMaxCorrelationThreshold) {
    return absl::InvalidArgumentError(internal::concat("condition ", op, ": '", text,
                                                       "' must be a whole number that needs 1 to ",
                                                       kMaxCorrelationThreshold, " events"));
  }
  return absl::OkStatus();
}

absl::StatusOr<CorrelationRule> loadCorrelation(const YAML::Node& document,
                                                const FieldMapping& mapping) {
  CorrelationRule rule;
  absl::Status header =
      internal::readHeader(document, rule.title, rule.id, rule.name, rule.level, rule.tags);
  if (!header.ok()) return header;
  const YAML::Node correlation = document["correlation"];
  if (!correlation.IsMap()) return absl::InvalidArgumentError("'correlation' must be a map");

  const std::string type = correlation["type"] ? correlation["type"].as<std::string>("") : "";
  if (type != "event_count") {
    return absl::InvalidArgumentError(internal::concat(
        "correlation type '", type, "' is not supported yet; only event_count is"));
  }
  if (correlation["aliases"]) {
    return absl::InvalidArgumentError("correlation 'aliases' are not supported yet");
  }
  absl::Status status = readStringList(correlation["rules"], "correlation.rules", rule.rule_refs);
  if (!status.ok()) return status;
  if (rule.rule_refs.empty()) return absl::InvalidArgumentError("'correlation.rules' is missing");
  status = readStringList(correlation["group-by"], "correlation.group-by", rule.group_by);
  if (!status.ok()) return status;
  for (const std::string& field : rule.group_by) {
    rule.group_fields.emplace_back(mapping.resolve(field));
  }

  const YAML::Node timespan = correlation["timespan"];
  if (!timespan || !timespan.IsScalar()) {
    return absl::InvalidArgumentError("'correlation.timespan' is missing");
  }
  absl::StatusOr<int64_t> span = parseTimespan(timespan.Scalar());
  if (!span.ok()) return span.status();
  rule.timespan_ns = *span;

  status = readCountCondition(correlation["condition"], rule);
  if (!status.ok()) return status;
  // pySigma reads `generate` inside the correlation section; the specification lists it
  // beside `level`. Accept both.
  status = readGenerate(correlation["generate"], rule.generate);
  if (!status.ok()) return status;
  status = readGenerate(document["generate"], rule.generate);
  if (!status.ok()) return status;
  return rule;
}

std::string describe(std::string_view origin, size_t document, const YAML::Node& node) {
  std::string title =
      node.IsMap() && node["title"] && node["title"].IsScalar() ? node["title"].Scalar() : "";
  std::string id = node.IsMap() && node["id"] && node["id"].IsScalar() ? node["id"].Scalar() : "";
  return internal::concat(origin, " document ", document, " rule '", title, "' (id ",
                          id.empty() ? "none" : id, ")");
}

}  // namespace

// ---------------------------------------------------------------------------------------
// FieldMapping

FieldMapping FieldMapping::defaults() {
  FieldMapping mapping;
  static constexpr std::pair<const char*, const char*> kEntries[] = {
      {"src_ip", "source.ip"},
      {"SourceIp", "source.ip"},
      {"SourceIP", "source.ip"},
      {"src_port", "source.port"},
      {"SourcePort", "source.port"},
      {"dst_ip", "destination.ip"},
      {"DestinationIp", "destination.ip"},
      {"DestinationIP", "destination.ip"},
      {"dst_port", "destination.port"},
      {"DestinationPort", "destination.port"},
      {"user", "user.name"},
      {"User", "user.name"},
      {"host", "host.name"},
      {"hostname", "host.name"},
      {"Computer", "host.name"},
      {"ComputerName", "host.name"},
      {"message", "message"},
      {"msg", "message"},
      {"program", "process.name"},
      {"app", "process.name"},
      {"pid", "process.pid"},
      {"action", "event.action"},
      {"outcome", "event.outcome"},
  };
  for (const auto& [sigma_name, event_name] : kEntries) mapping.set(sigma_name, event_name);
  return mapping;
}

void FieldMapping::set(std::string sigma_name, std::string event_name) {
  names_[std::move(sigma_name)] = std::move(event_name);
}

std::string_view FieldMapping::resolve(std::string_view sigma_name) const {
  auto it = names_.find(absl::string_view(sigma_name.data(), sigma_name.size()));
  return it == names_.end() ? sigma_name : std::string_view(it->second);
}

// ---------------------------------------------------------------------------------------
// RuleSet and RuleLoader

RuleSet::RuleSet() : regexes(std::make_unique<RegexTable>()) {}
RuleSet::~RuleSet() = default;
RuleSet::RuleSet(RuleSet&&) noexcept = default;
RuleSet& RuleSet::operator=(RuleSet&&) noexcept = default;

RuleLoader::RuleLoader(FieldMapping mapping) : mapping_(std::move(mapping)) {}
RuleLoader::~RuleLoader() = default;

absl::Status RuleLoader::addText(std::string_view yaml, std::string_view origin) {
  // Each document is loaded alone: see yaml_documents.h for the LoadAll hang this avoids.
  std::vector<YAML::Node> documents;
  for (const internal::YamlDocumentText& part : internal::splitYamlDocuments(yaml)) {
    try {
      documents.push_back(YAML::Load(part.text));
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(
          internal::concat(origin, ": invalid YAML at line ", e.mark.line + 1, ": ", e.msg));
    }
  }
  const size_t detections_before = pending_.detections.size();
  const size_t correlations_before = pending_.correlations.size();
  const size_t regexes_before = pending_.regexes->size();
  auto rollBack = [&](absl::Status error) {
    pending_.detections.resize(detections_before);
    pending_.correlations.resize(correlations_before);
    pending_.regexes->truncate(regexes_before);
    return error;
  };

  for (size_t i = 0; i < documents.size(); ++i) {
    const YAML::Node& document = documents[i];
    if (document.IsNull()) continue;  // an empty document between two `---`
    std::string where = describe(origin, i + 1, document);
    auto fail = [&](const absl::Status& reason) {
      return rollBack(absl::InvalidArgumentError(internal::concat(where, ": ", reason.message())));
    };
    try {
      if (!document.IsMap()) return fail(absl::InvalidArgumentError("a rule must be a YAML map"));
      if (document["correlation"]) {
        absl::StatusOr<CorrelationRule> rule = loadCorrelation(document, mapping_);
        if (!rule.ok()) return fail(rule.status());
        rule->origin = internal::concat(origin, " document ", i + 1);
        pending_.correlations.push_back(std::move(*rule));
      } else if (document["detection"]) {
        absl::StatusOr<DetectionRule> rule =
            internal::loadDetection(document, mapping_, *pending_.regexes);
        if (!rule.ok()) return fail(rule.status());
        rule->origin = internal::concat(origin, " document ", i + 1);
        pending_.detections.push_back(std::move(*rule));
      } else if (document["filter"]) {
        return fail(absl::InvalidArgumentError("Sigma filter rules are not supported yet"));
      } else if (document["action"]) {
        return fail(absl::InvalidArgumentError(
            "legacy multi-document collections ('action: global') are not supported"));
      } else {
        return fail(absl::InvalidArgumentError("neither 'detection' nor 'correlation' found"));
      }
    } catch (const YAML::Exception& e) {
      return fail(absl::InvalidArgumentError(
          internal::concat("unexpected YAML type at line ", e.mark.line + 1, ": ", e.msg)));
    }
  }
  return absl::OkStatus();
}

absl::Status RuleLoader::addFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(internal::concat("cannot read rule file ", path));
  std::stringstream text;
  text << in.rdbuf();
  return addText(text.str(), path);
}

absl::StatusOr<RuleSet> RuleLoader::finish() {
  RuleSet rules = std::move(pending_);
  pending_ = RuleSet();

  absl::flat_hash_map<std::string, uint32_t> by_id;
  absl::flat_hash_map<std::string, uint32_t> by_name;
  for (uint32_t i = 0; i < rules.detections.size(); ++i) {
    const DetectionRule& rule = rules.detections[i];
    if (!rule.id.empty() && !by_id.emplace(rule.id, i).second) {
      return absl::InvalidArgumentError(internal::concat(rule.origin, ": rule id ", rule.id,
                                                         " is already used by ",
                                                         rules.detections[by_id[rule.id]].origin));
    }
    if (!rule.name.empty()) by_name.emplace(rule.name, i);
  }
  absl::flat_hash_set<std::string> correlation_refs;
  for (const CorrelationRule& rule : rules.correlations) {
    if (!rule.id.empty()) correlation_refs.insert(rule.id);
    if (!rule.name.empty()) correlation_refs.insert(rule.name);
  }

  std::vector<bool> referenced(rules.detections.size(), false);
  std::vector<bool> generated(rules.detections.size(), false);
  for (CorrelationRule& rule : rules.correlations) {
    for (const std::string& ref : rule.rule_refs) {
      std::optional<uint32_t> target;
      if (auto it = by_id.find(ref); it != by_id.end()) {
        target = it->second;
      } else if (auto named = by_name.find(ref); named != by_name.end()) {
        target = named->second;
      }
      if (!target) {
        std::string reason = correlation_refs.contains(ref)
                                 ? "names a correlation rule; chained correlations are not "
                                   "supported yet"
                                 : "matches no loaded detection rule id or name";
        return absl::InvalidArgumentError(internal::concat(
            rule.origin, " rule '", rule.title, "': correlation.rules entry '", ref, "' ", reason));
      }
      rule.detections.push_back(*target);
      referenced[*target] = true;
      if (rule.generate) generated[*target] = true;
    }
  }
  for (size_t i = 0; i < rules.detections.size(); ++i) {
    rules.detections[i].generates_alerts = !referenced[i] || generated[i];
  }
  return rules;
}

absl::StatusOr<int64_t> parseTimespan(std::string_view text) {
  auto invalid = [&] {
    return absl::InvalidArgumentError(internal::concat(
        "invalid timespan '", text, "'; expected a positive number and s, m, h or d (\"5m\")"));
  };
  if (text.size() < 2) return invalid();
  int64_t count = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size() - 1, count);
  if (ec != std::errc() || end != text.data() + text.size() - 1 || count <= 0) return invalid();
  int64_t unit_s = 0;
  switch (text.back()) {
    case 's':
      unit_s = 1;
      break;
    case 'm':
      unit_s = 60;
      break;
    case 'h':
      unit_s = 3600;
      break;
    case 'd':
      unit_s = 86400;
      break;
    default:
      return invalid();
  }
  // 100 years bounds the product far below the int64 range of nanoseconds.
  if (count > 100LL * 365 * 86400 / unit_s) return invalid();
  return count * unit_s * kNanosPerSecond;
}

}  // namespace vigil::correlate

#include "correlate/rules.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "correlate/internal/detection_index.h"
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

// Parses a condition bound: a whole number >= 0.
std::optional<uint64_t> readCount(const YAML::Node& node) {
  const std::string text = node.IsScalar() ? node.Scalar() : "";
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Reads `condition.field` of a value_count correlation: one field name or a list.
absl::Status readValueField(const YAML::Node& node, CorrelationRule& rule) {
  absl::Status status = readStringList(node, "condition.field", rule.value_fields);
  if (!status.ok()) return status;
  if (rule.value_fields.empty()) {
    return absl::InvalidArgumentError("'condition.field' must name at least one field");
  }
  return absl::OkStatus();
}

// Checks min_count against what the type can reach: 1 to kMaxCorrelationThreshold for the
// count types, 1 to the number of referenced rules for temporal, and all of them for
// temporal_ordered.
absl::Status checkMinCount(const CorrelationRule& rule) {
  const uint64_t rules = rule.rule_refs.size();
  switch (rule.type) {
    case CorrelationType::kEventCount:
    case CorrelationType::kValueCount:
      if (rule.min_count >= 1 && rule.min_count <= kMaxCorrelationThreshold) break;
      return absl::InvalidArgumentError(
          internal::concat("condition needs a count of ", rule.min_count, "; it must need 1 to ",
                           kMaxCorrelationThreshold,
                           (rule.type == CorrelationType::kEventCount ? " events" : " values")));
    case CorrelationType::kTemporal:
      if (rule.min_count >= 1 && rule.min_count <= rules) break;
      return absl::InvalidArgumentError(
          internal::concat("condition needs ", rule.min_count, " of the ", rules,
                           " referenced rules; it must need 1 to ", rules));
    case CorrelationType::kTemporalOrdered:
      if (rule.min_count == rules) break;
      return absl::InvalidArgumentError(internal::concat(
          "temporal_ordered needs every referenced rule in order; its condition may only be "
          "{gte: ",
          rules, "} or be left out"));
    case CorrelationType::kAbsence:
    case CorrelationType::kValueSum:
    case CorrelationType::kValueAvg:
      break;  // readCondition() checked these
  }
  return absl::OkStatus();
}

// Reads the condition of value_sum and value_avg: `field` (one numeric field) and gt/gte
// bounds on the sum or average, which may be any finite number.
absl::Status readValueCondition(const YAML::Node& node, CorrelationRule& rule) {
  const std::string_view type = correlationTypeName(rule.type);
  if (!node || !node.IsMap()) {
    return absl::InvalidArgumentError(internal::concat(
        type, " needs 'correlation.condition' such as {field: bytes_sent, gt: 1000000}"));
  }
  bool has_bound = false;
  for (const auto& entry : node) {
    const std::string op = entry.first.Scalar();
    if (op == "field") {
      absl::Status status = readValueField(entry.second, rule);
      if (!status.ok()) return status;
      if (rule.value_fields.size() != 1) {
        return absl::InvalidArgumentError(
            internal::concat(type, " needs exactly one 'condition.field'"));
      }
      continue;
    }
    if (op != "gte" && op != "gt") {
      return absl::InvalidArgumentError(internal::concat(
          "condition '", op, "' is not supported for ", type, "; expected field, gte or gt"));
    }
    const std::string text = entry.second.IsScalar() ? entry.second.Scalar() : "";
    double value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
        !std::isfinite(value)) {
      return absl::InvalidArgumentError(
          internal::concat("condition ", op, ": '", text, "' must be a number"));
    }
    const bool inclusive = op == "gte";
    // Keep the strictest bound: the larger value, and gt over gte at the same value.
    if (!has_bound || value > rule.min_value ||
        (value == rule.min_value && !inclusive)) {
      rule.min_value = value;
      rule.min_value_inclusive = inclusive;
    }
    has_bound = true;
  }
  if (rule.value_fields.empty()) {
    return absl::InvalidArgumentError(internal::concat(
        type, " needs 'condition.field', the numeric field whose values are aggregated"));
  }
  if (!has_bound) {
    return absl::InvalidArgumentError(internal::concat(type, " needs a gte or gt bound"));
  }
  rule.min_count = 1;
  return absl::OkStatus();
}

// Reads `correlation.condition`: a map of gt/gte bounds (several are ANDed, which keeps
// the largest), plus `field` for value_count. temporal types may leave it out, which
// means every referenced rule. Stores the bound in rule.min_count.
absl::Status readCondition(const YAML::Node& node, CorrelationRule& rule) {
  if (rule.type == CorrelationType::kAbsence) {
    rule.min_count = 1;
    if (!node || node.IsNull()) return absl::OkStatus();
    return absl::InvalidArgumentError(
        "an absence correlation takes no 'condition': it fires when the second rule did not "
        "follow the first within the timespan");
  }
  if (rule.type == CorrelationType::kValueSum || rule.type == CorrelationType::kValueAvg) {
    return readValueCondition(node, rule);
  }
  const bool temporal =
      rule.type == CorrelationType::kTemporal || rule.type == CorrelationType::kTemporalOrdered;
  rule.min_count = temporal ? rule.rule_refs.size() : 0;
  if ((!node || node.IsNull()) && temporal) return absl::OkStatus();
  if (!node || !node.IsMap() || node.size() == 0) {
    return absl::InvalidArgumentError("'correlation.condition' must be a map such as {gte: 10}");
  }
  bool has_bound = false;
  uint64_t min_count = 0;
  for (const auto& entry : node) {
    const std::string op = entry.first.Scalar();
    if (op == "field") {
      if (rule.type != CorrelationType::kValueCount) {
        return absl::InvalidArgumentError(
            internal::concat("'condition.field' is only valid for value_count, not ",
                             correlationTypeName(rule.type)));
      }
      absl::Status status = readValueField(entry.second, rule);
      if (!status.ok()) return status;
      continue;
    }
    if (op == "lt" || op == "lte" || op == "eq" || op == "neq") {
      // A count only grows while a window is open, so an upper bound can only be decided
      // when the window closes. That needs a timer on event time, which the engine lacks.
      return absl::InvalidArgumentError(internal::concat(
          "condition '", op,
          "' is not supported yet, because an upper bound on the count "
          "can only be checked when the window closes, and only absence windows close on "
          "the watermark; use gte or gt"));
    }
    if (op != "gte" && op != "gt") {
      return absl::InvalidArgumentError(
          internal::concat("unknown condition operator '", op, "'; expected gte, gt",
                           (rule.type == CorrelationType::kValueCount ? " or field" : "")));
    }
    std::optional<uint64_t> value = readCount(entry.second);
    if (!value || *value > kMaxCorrelationThreshold) {
      std::string text = entry.second.IsScalar() ? entry.second.Scalar() : "";
      return absl::InvalidArgumentError(internal::concat("condition ", op, ": '", text,
                                                         "' must be a whole number from 0 to ",
                                                         kMaxCorrelationThreshold));
    }
    has_bound = true;
    min_count = std::max(min_count, op == "gt" ? *value + 1 : *value);
  }
  if (rule.type == CorrelationType::kValueCount && rule.value_fields.empty()) {
    return absl::InvalidArgumentError(
        "value_count needs 'condition.field', the field whose distinct values are counted");
  }
  if (!has_bound && !temporal) {
    return absl::InvalidArgumentError("'correlation.condition' needs gte or gt");
  }
  if (has_bound) rule.min_count = min_count;
  return checkMinCount(rule);
}

// Reads `aliases: {alias: {rule: field, ...}, ...}`.
absl::Status readAliases(const YAML::Node& node, CorrelationRule& rule) {
  if (!node || node.IsNull()) return absl::OkStatus();
  if (!node.IsMap()) {
    return absl::InvalidArgumentError(
        "'correlation.aliases' must map each alias to a map of rule name -> field");
  }
  for (const auto& alias : node) {
    const std::string name = alias.first.Scalar();
    if (!alias.second.IsMap() || alias.second.size() == 0) {
      return absl::InvalidArgumentError(internal::concat(
          "alias '", name, "' must be a map of rule name -> field, such as {rule_a: source.ip}"));
    }
    std::vector<std::pair<std::string, std::string>> fields;
    for (const auto& entry : alias.second) {
      if (!entry.second.IsScalar()) {
        return absl::InvalidArgumentError(internal::concat(
            "alias '", name, "' rule '", entry.first.Scalar(), "' must name one field"));
      }
      fields.emplace_back(entry.first.Scalar(), entry.second.Scalar());
    }
    rule.aliases.emplace_back(name, std::move(fields));
  }
  return absl::OkStatus();
}

std::optional<CorrelationType> parseCorrelationType(std::string_view type) {
  if (type == "event_count") return CorrelationType::kEventCount;
  if (type == "value_count") return CorrelationType::kValueCount;
  if (type == "temporal") return CorrelationType::kTemporal;
  if (type == "temporal_ordered") return CorrelationType::kTemporalOrdered;
  if (type == "absence") return CorrelationType::kAbsence;
  if (type == "value_sum") return CorrelationType::kValueSum;
  if (type == "value_avg") return CorrelationType::kValueAvg;
  return std::nullopt;
}

// Reads `suppress`: a timespan ("10m") or a map {timespan: 10m, group-by: [field, ...]}.
absl::Status readSuppress(const YAML::Node& node, int64_t& suppress_ns,
                          std::vector<std::string>& group_by) {
  if (!node || node.IsNull()) return absl::OkStatus();
  // Node::operator= writes through to the referenced node, so pick the timespan node
  // with reset(), which rebinds.
  YAML::Node timespan;
  timespan.reset(node);
  if (node.IsMap()) {
    for (const auto& entry : node) {
      const std::string key = entry.first.Scalar();
      if (key != "timespan" && key != "group-by") {
        return absl::InvalidArgumentError(internal::concat(
            "unknown key 'suppress.", key, "'; expected timespan or group-by"));
      }
    }
    timespan.reset(node["timespan"]);
    absl::Status status = readStringList(node["group-by"], "suppress.group-by", group_by);
    if (!status.ok()) return status;
  }
  if (!timespan || !timespan.IsScalar()) {
    return absl::InvalidArgumentError(
        "'suppress' must be a timespan such as 10m or a map such as {timespan: 10m, "
        "group-by: [src_ip]}");
  }
  absl::StatusOr<int64_t> span = parseTimespan(timespan.Scalar());
  if (!span.ok()) return absl::InvalidArgumentError(internal::concat("suppress: ", span.status().message()));
  suppress_ns = *span;
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
  std::optional<CorrelationType> parsed = parseCorrelationType(type);
  if (!parsed) {
    return absl::InvalidArgumentError(
        internal::concat("correlation type '", type,
                         "' is not supported yet; expected event_count, value_count, value_sum, "
                         "value_avg, temporal, temporal_ordered or absence"));
  }
  rule.type = *parsed;
  absl::Status status = readStringList(correlation["rules"], "correlation.rules", rule.rule_refs);
  if (!status.ok()) return status;
  if (rule.rule_refs.empty()) return absl::InvalidArgumentError("'correlation.rules' is missing");
  const bool temporal =
      rule.type == CorrelationType::kTemporal || rule.type == CorrelationType::kTemporalOrdered;
  if (temporal && rule.rule_refs.size() > kMaxTemporalRules) {
    return absl::InvalidArgumentError(
        internal::concat(correlationTypeName(rule.type), " references ", rule.rule_refs.size(),
                         " rules; at most ", kMaxTemporalRules, " are supported"));
  }
  if (rule.type == CorrelationType::kAbsence && rule.rule_refs.size() != 2) {
    return absl::InvalidArgumentError(internal::concat(
        "absence references ", rule.rule_refs.size(),
        " rules; it needs exactly two: the rule that starts the window, then the rule "
        "expected to follow"));
  }
  status = readStringList(correlation["group-by"], "correlation.group-by", rule.group_by);
  if (!status.ok()) return status;
  for (const std::string& field : rule.group_by) {
    rule.group_fields.emplace_back(mapping.resolve(field));
  }
  status = readAliases(correlation["aliases"], rule);
  if (!status.ok()) return status;

  const YAML::Node timespan = correlation["timespan"];
  if (!timespan || !timespan.IsScalar()) {
    return absl::InvalidArgumentError("'correlation.timespan' is missing");
  }
  absl::StatusOr<int64_t> span = parseTimespan(timespan.Scalar());
  if (!span.ok()) return span.status();
  rule.timespan_ns = *span;

  status = readCondition(correlation["condition"], rule);
  if (!status.ok()) return status;
  // pySigma reads `generate` inside the correlation section; the specification lists it
  // beside `level`. Accept both.
  status = readGenerate(correlation["generate"], rule.generate);
  if (!status.ok()) return status;
  status = readGenerate(document["generate"], rule.generate);
  if (!status.ok()) return status;
  std::vector<std::string> suppress_by;
  status = readSuppress(document["suppress"], rule.suppress_ns, suppress_by);
  if (!status.ok()) return status;
  if (!suppress_by.empty()) {
    return absl::InvalidArgumentError(
        "'suppress.group-by' is only valid on detection rules; a correlation suppresses per "
        "correlation group");
  }
  return rule;
}

// Fills rule.group_by_rule and rule.value_refs once the references are resolved. An alias
// maps a group-by name per referenced rule, matched by the reference as written or by the
// rule's id or name. A rule the alias does not list reads the alias name itself.
absl::Status resolveFields(CorrelationRule& rule, const std::vector<DetectionRule>& detections,
                           const FieldMapping& mapping) {
  const bool distinct = rule.type == CorrelationType::kTemporal ||
                        rule.type == CorrelationType::kTemporalOrdered ||
                        rule.type == CorrelationType::kAbsence;
  for (size_t i = 0; distinct && i < rule.detections.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (rule.detections[i] != rule.detections[j]) continue;
      return absl::InvalidArgumentError(
          internal::concat("correlation.rules entries '", rule.rule_refs[j], "' and '",
                           rule.rule_refs[i], "' name the same rule; a ",
                           correlationTypeName(rule.type), " correlation needs distinct rules"));
    }
  }
  auto groupField = [&](const std::string& sigma_name) {
    return GroupField{ResolvedName(sigma_name),
                      ResolvedName(std::string(mapping.resolve(sigma_name)))};
  };
  for (const auto& [alias, fields] : rule.aliases) {
    if (std::find(rule.group_by.begin(), rule.group_by.end(), alias) == rule.group_by.end()) {
      return absl::InvalidArgumentError(
          internal::concat("alias '", alias, "' is not used in correlation.group-by"));
    }
    for (const auto& [ref, field] : fields) {
      bool known = false;
      for (size_t i = 0; i < rule.detections.size(); ++i) {
        const DetectionRule& target = detections[rule.detections[i]];
        known = known || ref == rule.rule_refs[i] || ref == target.id || ref == target.name;
      }
      if (!known) {
        return absl::InvalidArgumentError(internal::concat("alias '", alias, "' names rule '", ref,
                                                           "', which is not in correlation.rules"));
      }
    }
  }

  rule.group_by_rule.clear();
  for (size_t i = 0; i < rule.detections.size(); ++i) {
    const DetectionRule& target = detections[rule.detections[i]];
    std::vector<GroupField> fields;
    for (const std::string& name : rule.group_by) {
      std::string source = name;
      for (const auto& [alias, targets] : rule.aliases) {
        if (alias != name) continue;
        for (const auto& [ref, field] : targets) {
          if (ref == rule.rule_refs[i] || ref == target.id || ref == target.name) source = field;
        }
      }
      fields.push_back(groupField(source));
    }
    rule.group_by_rule.push_back(std::move(fields));
  }
  rule.value_refs.clear();
  for (const std::string& name : rule.value_fields) rule.value_refs.push_back(groupField(name));
  return absl::OkStatus();
}

// Names a document in errors: "FILE:LINE: document N rule 'TITLE' (id ID)", where LINE is
// the 1-based line the document starts on.
std::string describe(std::string_view origin, size_t line, size_t document,
                     const YAML::Node& node) {
  std::string title =
      node.IsMap() && node["title"] && node["title"].IsScalar() ? node["title"].Scalar() : "";
  std::string id = node.IsMap() && node["id"] && node["id"].IsScalar() ? node["id"].Scalar() : "";
  return internal::concat(origin, ":", line, ": document ", document, " rule '", title, "' (id ",
                          id.empty() ? "none" : id, ")");
}

}  // namespace

std::string_view correlationTypeName(CorrelationType type) {
  switch (type) {
    case CorrelationType::kEventCount:
      return "event_count";
    case CorrelationType::kValueCount:
      return "value_count";
    case CorrelationType::kTemporal:
      return "temporal";
    case CorrelationType::kTemporalOrdered:
      return "temporal_ordered";
    case CorrelationType::kAbsence:
      return "absence";
    case CorrelationType::kValueSum:
      return "value_sum";
    case CorrelationType::kValueAvg:
      return "value_avg";
  }
  return "unknown";
}

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

absl::Status FieldMapping::addLogSource(LogSourceDefinition definition) {
  const LogSource& logsource = definition.logsource;
  if (logsource.product.empty() && logsource.category.empty() && logsource.service.empty()) {
    return absl::InvalidArgumentError(internal::concat(
        "log source '", definition.name, "' needs at least one of product, category, service"));
  }
  for (const auto& [field, value] : definition.conditions) {
    if (field.empty()) {
      return absl::InvalidArgumentError(
          internal::concat("log source '", definition.name, "' has a condition without a field"));
    }
  }
  for (const auto& [sigma_name, event_name] : definition.field_mapping) {
    if (sigma_name.empty() || event_name.empty()) {
      return absl::InvalidArgumentError(internal::concat(
          "log source '", definition.name, "' maps '", sigma_name, "' to '", event_name,
          "'; both names must be non-empty"));
    }
  }
  if (logsources_.size() == kMaxLogSources) {
    return absl::InvalidArgumentError(internal::concat("log source '", definition.name,
                                                       "' is one too many; at most ",
                                                       kMaxLogSources, " are supported"));
  }
  logsources_.push_back(std::move(definition));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// RuleSet and RuleLoader

RuleSet::RuleSet()
    : regexes(std::make_unique<RegexTable>()),
      index(std::make_unique<internal::DetectionIndex>()) {}
RuleSet::~RuleSet() = default;
RuleSet::RuleSet(RuleSet&&) noexcept = default;
RuleSet& RuleSet::operator=(RuleSet&&) noexcept = default;

RuleLoader::RuleLoader(FieldMapping mapping) : mapping_(std::move(mapping)) {}
RuleLoader::~RuleLoader() = default;

absl::Status RuleLoader::addText(std::string_view yaml, std::string_view origin) {
  // Each document is loaded alone: see yaml_documents.h for the LoadAll hang this avoids.
  std::vector<YAML::Node> documents;
  std::vector<size_t> first_lines;
  for (const internal::YamlDocumentText& part : internal::splitYamlDocuments(yaml)) {
    first_lines.push_back(part.first_line + 1);
    try {
      documents.push_back(YAML::Load(part.text));
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(
          internal::concat(origin, ":", e.mark.line + 1, ": invalid YAML: ", e.msg));
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
    std::string where = describe(origin, first_lines[i], i + 1, document);
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
        absl::Status suppress =
            readSuppress(document["suppress"], rule->suppress_ns, rule->suppress_by);
        if (!suppress.ok()) return fail(suppress);
        for (const std::string& field : rule->suppress_by) {
          rule->suppress_fields.push_back(
              GroupField{ResolvedName(field), ResolvedName(std::string(mapping_.resolve(field)))});
        }
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
    absl::Status fields = resolveFields(rule, rules.detections, mapping_);
    if (!fields.ok()) {
      return absl::InvalidArgumentError(
          internal::concat(rule.origin, " rule '", rule.title, "': ", fields.message()));
    }
  }
  for (size_t i = 0; i < rules.detections.size(); ++i) {
    rules.detections[i].generates_alerts = !referenced[i] || generated[i];
  }
  rules.logsources = mapping_.logSources();
  internal::assignLogSources(rules.detections, rules.logsources);
  absl::StatusOr<std::unique_ptr<internal::DetectionIndex>> index =
      internal::DetectionIndex::build(rules.detections, rules.logsources);
  if (!index.ok()) return index.status();
  rules.index = std::move(*index);
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

#include "correlate/rules.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>

#include "common/yaml_error.h"
#include "correlate/internal/detection_index.h"
#include "correlate/internal/detection_loader.h"
#include "correlate/internal/number.h"
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

// Checks min_count against what a sliding window can reach: 1 to
// kMaxCorrelationThreshold for the count types, 1 to the number of referenced rules for
// temporal, and all of them for temporal_ordered.
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
    case CorrelationType::kValuePercentile:
      break;  // readCondition() checked these
  }
  return absl::OkStatus();
}

std::optional<ConditionBound::Op> parseBoundOp(std::string_view op) {
  using Op = ConditionBound::Op;
  if (op == "gt") return Op::kGt;
  if (op == "gte") return Op::kGte;
  if (op == "lt") return Op::kLt;
  if (op == "lte") return Op::kLte;
  if (op == "eq") return Op::kEq;
  if (op == "neq") return Op::kNeq;
  return std::nullopt;
}

bool isMetricType(CorrelationType type) {
  return type == CorrelationType::kValueSum || type == CorrelationType::kValueAvg ||
         type == CorrelationType::kValuePercentile;
}

// Reads a finite number for the condition entry `key`.
absl::StatusOr<double> readNumber(const YAML::Node& node, std::string_view key) {
  const std::string text = node.IsScalar() ? node.Scalar() : "";
  std::optional<double> value = internal::parseDecimal(text);
  if (!value) {
    return absl::InvalidArgumentError(
        internal::concat("condition ", key, ": '", text, "' must be a number"));
  }
  return *value;
}

// Checks that some count of at least 1 satisfies the bounds of an event_count or
// value_count condition that closes, and sets min_count (the smallest such count from the
// lower bounds) and count_cap (the count up to which value_count must count exactly).
absl::Status checkCountRange(CorrelationRule& rule) {
  uint64_t low = 1;  // a group exists only once it saw an event
  uint64_t high = UINT64_MAX;
  uint64_t cap = 1;
  for (const ConditionBound& bound : rule.bounds) {
    const auto value = static_cast<uint64_t>(bound.value);
    switch (bound.op) {
      case ConditionBound::Op::kGt:
        low = std::max(low, value + 1);
        break;
      case ConditionBound::Op::kGte:
        low = std::max(low, value);
        break;
      case ConditionBound::Op::kLt:
        high = value == 0 ? 0 : std::min(high, value - 1);
        break;
      case ConditionBound::Op::kLte:
        high = std::min(high, value);
        break;
      case ConditionBound::Op::kEq:
        low = std::max(low, value);
        high = std::min(high, value);
        break;
      case ConditionBound::Op::kNeq:
        break;
    }
    cap = std::max(cap, value + 1);
  }
  bool reachable = low <= high;
  if (reachable && low == high) {
    for (const ConditionBound& bound : rule.bounds) {
      if (bound.op == ConditionBound::Op::kNeq && static_cast<uint64_t>(bound.value) == low) {
        reachable = false;
      }
    }
  }
  if (!reachable) {
    return absl::InvalidArgumentError(
        "condition can never hold: no count of 1 or more satisfies all its bounds (a group "
        "exists only once it saw an event, so its count is at least 1)");
  }
  rule.min_count = low;
  rule.count_cap = std::max(cap, low);
  return absl::OkStatus();
}

// Reads `correlation.condition`: a map of bounds (gt, gte, lt, lte, eq, neq; several are
// ANDed), plus `field` for value_count and the metric types and `percentile` for
// value_percentile. temporal types may leave it out, which means every referenced rule,
// and take gt and gte only.
absl::Status readCondition(const YAML::Node& node, CorrelationRule& rule) {
  const std::string_view type = correlationTypeName(rule.type);
  if (rule.type == CorrelationType::kAbsence) {
    rule.min_count = 1;
    if (!node || node.IsNull()) return absl::OkStatus();
    return absl::InvalidArgumentError(
        "an absence correlation takes no 'condition': it fires when the second rule did not "
        "follow the first within the timespan");
  }
  const bool temporal =
      rule.type == CorrelationType::kTemporal || rule.type == CorrelationType::kTemporalOrdered;
  const bool metric = isMetricType(rule.type);
  const bool takes_field = metric || rule.type == CorrelationType::kValueCount;
  rule.min_count = temporal ? rule.rule_refs.size() : 0;
  if ((!node || node.IsNull()) && temporal) return absl::OkStatus();
  if (!node || !node.IsMap() || node.size() == 0) {
    return absl::InvalidArgumentError(
        internal::concat("'correlation.condition' must be a map such as ",
                         metric ? "{field: bytes_sent, gt: 1000000}" : "{gte: 10}"));
  }
  bool has_percentile = false;
  for (const auto& entry : node) {
    const std::string key = entry.first.Scalar();
    if (key == "field") {
      if (!takes_field) {
        return absl::InvalidArgumentError(internal::concat(
            "'condition.field' is only valid for value_count, value_sum, value_avg and "
            "value_percentile, not ",
            type));
      }
      absl::Status status = readValueField(entry.second, rule);
      if (!status.ok()) return status;
      if (metric && rule.value_fields.size() != 1) {
        return absl::InvalidArgumentError(
            internal::concat(type, " needs exactly one 'condition.field'"));
      }
      continue;
    }
    if (key == "percentile" && rule.type == CorrelationType::kValuePercentile) {
      absl::StatusOr<double> value = readNumber(entry.second, key);
      if (!value.ok()) return value.status();
      if (!(*value > 0 && *value <= 100)) {
        return absl::InvalidArgumentError(internal::concat(
            "condition percentile: '", entry.second.Scalar(), "' must be above 0 and at most 100"));
      }
      rule.percentile = *value;
      has_percentile = true;
      continue;
    }
    std::optional<ConditionBound::Op> op = parseBoundOp(key);
    if (!op) {
      return absl::InvalidArgumentError(
          internal::concat("unknown condition operator '", key, "' for ", type, "; expected ",
                           temporal ? "gte or gt" : "gt, gte, lt, lte, eq or neq",
                           rule.type == CorrelationType::kValuePercentile ? ", field or percentile"
                           : takes_field                                  ? " or field"
                                                                          : ""));
    }
    if (temporal && *op != ConditionBound::Op::kGt && *op != ConditionBound::Op::kGte) {
      return absl::InvalidArgumentError(internal::concat(
          "condition '", key, "' is not defined for ", type,
          ": the number of distinct rules seen only grows while the window is open; use gte "
          "or gt"));
    }
    ConditionBound bound{*op, 0};
    if (metric) {
      absl::StatusOr<double> value = readNumber(entry.second, key);
      if (!value.ok()) return value.status();
      bound.value = *value;
    } else {
      std::optional<uint64_t> value = readCount(entry.second);
      if (!value || *value > kMaxCorrelationThreshold) {
        std::string text = entry.second.IsScalar() ? entry.second.Scalar() : "";
        return absl::InvalidArgumentError(internal::concat("condition ", key, ": '", text,
                                                           "' must be a whole number from 0 to ",
                                                           kMaxCorrelationThreshold));
      }
      bound.value = static_cast<double>(*value);
    }
    rule.bounds.push_back(bound);
    if (*op != ConditionBound::Op::kGt && *op != ConditionBound::Op::kGte) rule.closes = true;
  }
  if (takes_field && rule.value_fields.empty()) {
    return absl::InvalidArgumentError(
        internal::concat(type, " needs 'condition.field', ",
                         metric ? "the numeric field whose values are aggregated"
                                : "the field whose distinct values are counted"));
  }
  if (rule.type == CorrelationType::kValuePercentile && !has_percentile) {
    return absl::InvalidArgumentError(
        "value_percentile needs 'condition.percentile', the percentile (above 0, at most "
        "100) of condition.field that the bounds compare, such as {field: duration, "
        "percentile: 95, gt: 300}");
  }
  if (rule.bounds.empty()) {
    if (temporal) return absl::OkStatus();
    return absl::InvalidArgumentError(internal::concat(
        "'correlation.condition' needs at least one of gt, gte, lt, lte, eq, neq"));
  }
  if (metric) {
    bool has_lower = false;
    for (const ConditionBound& bound : rule.bounds) {
      if (bound.op != ConditionBound::Op::kGt && bound.op != ConditionBound::Op::kGte) continue;
      const bool inclusive = bound.op == ConditionBound::Op::kGte;
      // Keep the strictest lower bound: the larger value, and gt over gte at one value.
      if (!has_lower || bound.value > rule.min_value ||
          (bound.value == rule.min_value && !inclusive)) {
        rule.min_value = bound.value;
        rule.min_value_inclusive = inclusive;
      }
      has_lower = true;
    }
    rule.min_count = 1;
    return absl::OkStatus();
  }
  if (rule.closes) return checkCountRange(rule);
  uint64_t min_count = 0;
  for (const ConditionBound& bound : rule.bounds) {
    const auto value = static_cast<uint64_t>(bound.value);
    min_count = std::max(min_count, bound.op == ConditionBound::Op::kGt ? value + 1 : value);
  }
  rule.min_count = min_count;
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
  if (type == "value_percentile") return CorrelationType::kValuePercentile;
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
                         "' is not supported; expected event_count, value_count, value_sum, "
                         "value_avg, value_percentile, temporal, temporal_ordered or absence"));
  }
  rule.type = *parsed;
  const YAML::Node refs = correlation["rules"];
  absl::Status status = readStringList(refs, "correlation.rules", rule.rule_refs);
  if (!status.ok()) return status;
  if (rule.rule_refs.empty() && refs && refs.IsSequence()) {
    return absl::InvalidArgumentError(
        "'correlation.rules' is empty; list the id or name of each rule to correlate, such as "
        "[ssh_failed]");
  }
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

// Names a rule in errors: "FILE:LINE: document N rule 'TITLE' (id ID)", with " of tenant
// T" for a tenant's rule. LINE is the 1-based line the document starts on.
std::string describeRule(std::string_view file, size_t line, size_t document,
                         std::string_view title, std::string_view id, std::string_view tenant) {
  return internal::concat(file, ":", line, ": document ", document, " rule '", title, "' (id ",
                          id.empty() ? "none" : id, ")",
                          tenant.empty() ? "" : internal::concat(" of tenant ", tenant));
}

// describeRule() for a loaded detection or correlation rule.
template <typename Rule>
std::string ruleWhere(const Rule& rule) {
  return describeRule(rule.file, rule.line, rule.document, rule.title, rule.id, rule.tenant);
}

// Names a rule that another rule's error refers to: "rule 'TITLE' at FILE:LINE (document N)".
template <typename Rule>
std::string ruleAt(const Rule& rule) {
  return internal::concat("rule '", rule.title, "' at ", rule.file, ":", rule.line, " (document ",
                          rule.document, ")",
                          rule.tenant.empty() ? "" : internal::concat(" of tenant ", rule.tenant));
}

// The id and name of the rule at `position` of `rule`: a detection rule, or a correlation
// rule when the position is chained.
std::pair<std::string_view, std::string_view> targetNames(
    const CorrelationRule& rule, size_t position, const std::vector<DetectionRule>& detections,
    const std::vector<CorrelationRule>& correlations) {
  if (rule.chained[position] != kNoRule) {
    const CorrelationRule& target = correlations[rule.chained[position]];
    return {target.id, target.name};
  }
  const DetectionRule& target = detections[rule.detections[position]];
  return {target.id, target.name};
}

// Fills rule.group_by_rule and rule.value_refs once the references are resolved. An alias
// maps a group-by name per referenced rule, matched by the reference as written or by the
// rule's id or name. A rule the alias does not list reads the alias name itself. A chained
// correlation's alerts carry its group-by names as fields, so those are read unmapped.
absl::Status resolveFields(CorrelationRule& rule, const std::vector<DetectionRule>& detections,
                           const std::vector<CorrelationRule>& correlations,
                           const FieldMapping& mapping) {
  const bool distinct = rule.type == CorrelationType::kTemporal ||
                        rule.type == CorrelationType::kTemporalOrdered ||
                        rule.type == CorrelationType::kAbsence;
  for (size_t i = 0; distinct && i < rule.detections.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (rule.detections[i] != rule.detections[j] || rule.chained[i] != rule.chained[j]) continue;
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
  auto matchesRef = [&](std::string_view ref, size_t position) {
    auto [id, name] = targetNames(rule, position, detections, correlations);
    return ref == rule.rule_refs[position] || (!id.empty() && ref == id) ||
           (!name.empty() && ref == name);
  };
  for (const auto& [alias, fields] : rule.aliases) {
    if (std::find(rule.group_by.begin(), rule.group_by.end(), alias) == rule.group_by.end()) {
      return absl::InvalidArgumentError(
          internal::concat("alias '", alias, "' is not used in correlation.group-by"));
    }
    for (const auto& [ref, field] : fields) {
      bool known = false;
      for (size_t i = 0; i < rule.detections.size(); ++i) known = known || matchesRef(ref, i);
      if (!known) {
        return absl::InvalidArgumentError(internal::concat("alias '", alias, "' names rule '", ref,
                                                           "', which is not in correlation.rules"));
      }
    }
  }

  rule.group_by_rule.clear();
  for (size_t i = 0; i < rule.detections.size(); ++i) {
    std::vector<GroupField> fields;
    for (const std::string& name : rule.group_by) {
      std::string source = name;
      for (const auto& [alias, targets] : rule.aliases) {
        if (alias != name) continue;
        for (const auto& [ref, field] : targets) {
          if (matchesRef(ref, i)) source = field;
        }
      }
      if (rule.chained[i] != kNoRule) {
        fields.push_back(GroupField{ResolvedName(source), ResolvedName(source)});
      } else {
        fields.push_back(groupField(source));
      }
    }
    rule.group_by_rule.push_back(std::move(fields));
  }
  rule.value_refs.clear();
  for (const std::string& name : rule.value_fields) rule.value_refs.push_back(groupField(name));
  return absl::OkStatus();
}

// Names a correlation rule in chain errors: its id, else its title.
std::string chainLabel(const CorrelationRule& rule) {
  return rule.id.empty() ? internal::concat("'", rule.title, "'") : rule.id;
}

// Rejects chains of correlations that form a cycle, naming the rules on it, and computes
// each rule's chain_depth, rejecting depths above kMaxChainDepth.
absl::Status checkChains(std::vector<CorrelationRule>& correlations) {
  enum class Mark : uint8_t { kNew, kOnPath, kDone };
  std::vector<Mark> marks(correlations.size(), Mark::kNew);
  std::vector<uint32_t> path;
  // Iterative depth-first walk: each frame is a rule and the next position to follow.
  std::vector<std::pair<uint32_t, size_t>> stack;
  for (uint32_t root = 0; root < correlations.size(); ++root) {
    if (marks[root] != Mark::kNew) continue;
    stack.emplace_back(root, 0);
    marks[root] = Mark::kOnPath;
    path.push_back(root);
    while (!stack.empty()) {
      auto& [current, next] = stack.back();
      CorrelationRule& rule = correlations[current];
      if (next == rule.chained.size()) {
        uint32_t depth = 0;
        for (uint32_t inner : rule.chained) {
          if (inner != kNoRule) depth = std::max(depth, correlations[inner].chain_depth + 1);
        }
        rule.chain_depth = depth;
        if (depth > kMaxChainDepth) {
          return absl::InvalidArgumentError(internal::concat(ruleWhere(rule), ": chains ", depth,
                                                             " levels of correlations; at most ",
                                                             kMaxChainDepth, " are supported"));
        }
        marks[current] = Mark::kDone;
        path.pop_back();
        stack.pop_back();
        continue;
      }
      const uint32_t inner = rule.chained[next++];
      if (inner == kNoRule || marks[inner] == Mark::kDone) continue;
      if (marks[inner] == Mark::kOnPath) {
        std::string cycle;
        auto start = std::find(path.begin(), path.end(), inner);
        for (auto it = start; it != path.end(); ++it) {
          cycle += internal::concat(chainLabel(correlations[*it]), " -> ");
        }
        cycle += chainLabel(correlations[inner]);
        return absl::InvalidArgumentError(internal::concat(
            ruleWhere(correlations[inner]), ": correlation rules reference each other in a cycle: ",
            cycle, "; remove one of these references"));
      }
      marks[inner] = Mark::kOnPath;
      path.push_back(inner);
      stack.emplace_back(inner, 0);
    }
  }
  return absl::OkStatus();
}

// The 1-based line in the whole stream of a yaml-cpp mark within a document that starts
// on the 1-based line `first_line`. A mark without a position (line -1) gives `first_line`.
size_t streamLine(size_t first_line, const YAML::Mark& mark) {
  return mark.line < 0 ? first_line : first_line + static_cast<size_t>(mark.line);
}

// The 1-based line of each `correlation.rules` entry of `document`, which starts on line
// `first_line` of its file; the document's line where yaml-cpp has no position.
std::vector<size_t> refLines(const YAML::Node& document, size_t first_line, size_t count) {
  std::vector<size_t> lines(count, first_line);
  const YAML::Node refs = document["correlation"]["rules"];
  auto lineOf = [first_line](const YAML::Node& node) {
    return streamLine(first_line, node.Mark());
  };
  if (refs.IsScalar() && count == 1) lines[0] = lineOf(refs);
  if (refs.IsSequence()) {
    for (size_t i = 0; i < count && i < refs.size(); ++i) lines[i] = lineOf(refs[i]);
  }
  return lines;
}

// Remaps the `re` values of `rule` by `offset`, for rules appended to a table that
// already contains `offset` databases.
void shiftRegexes(DetectionRule& rule, uint32_t offset) {
  for (Selection& selection : rule.selections) {
    for (std::vector<FieldTest>& alternative : selection.alternatives) {
      for (FieldTest& field : alternative) {
        for (ValueTest& value : field.values) {
          if (value.op == ValueTest::Op::kRegex) value.regex += offset;
        }
      }
    }
  }
}

// Names a correlation.rules entry in errors as ruleWhere() does, with the entry's `line`
// in place of the document's.
std::string refWhere(const CorrelationRule& rule, size_t line) {
  return describeRule(rule.file, line, rule.document, rule.title, rule.id, rule.tenant);
}

// describeRule() for the YAML document `node` of `origin`, before it is loaded.
std::string describe(std::string_view origin, size_t line, size_t document,
                     const YAML::Node& node) {
  std::string title =
      node.IsMap() && node["title"] && node["title"].IsScalar() ? node["title"].Scalar() : "";
  std::string id = node.IsMap() && node["id"] && node["id"].IsScalar() ? node["id"].Scalar() : "";
  return describeRule(origin, line, document, title, id, "");
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
    case CorrelationType::kValuePercentile:
      return "value_percentile";
  }
  return "unknown";
}

std::string_view boundOpName(ConditionBound::Op op) {
  switch (op) {
    case ConditionBound::Op::kGt:
      return "gt";
    case ConditionBound::Op::kGte:
      return "gte";
    case ConditionBound::Op::kLt:
      return "lt";
    case ConditionBound::Op::kLte:
      return "lte";
    case ConditionBound::Op::kEq:
      return "eq";
    case ConditionBound::Op::kNeq:
      return "neq";
  }
  return "unknown";
}

bool CorrelationRule::conditionHolds(double metric) const {
  for (const ConditionBound& bound : bounds) {
    bool holds = false;
    switch (bound.op) {
      case ConditionBound::Op::kGt:
        holds = metric > bound.value;
        break;
      case ConditionBound::Op::kGte:
        holds = metric >= bound.value;
        break;
      case ConditionBound::Op::kLt:
        holds = metric < bound.value;
        break;
      case ConditionBound::Op::kLte:
        holds = metric <= bound.value;
        break;
      case ConditionBound::Op::kEq:
        holds = metric == bound.value;
        break;
      case ConditionBound::Op::kNeq:
        holds = metric != bound.value;
        break;
    }
    if (!holds) return false;
  }
  return true;
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

ParsedScope::ParsedScope() : regexes(std::make_shared<RegexTable>()) {}
ParsedScope::~ParsedScope() = default;
ParsedScope::ParsedScope(ParsedScope&&) noexcept = default;
ParsedScope& ParsedScope::operator=(ParsedScope&&) noexcept = default;

RuleSet::RuleSet()
    : regexes(std::make_unique<RegexTable>()),
      index(std::make_unique<internal::DetectionIndex>()) {}
RuleSet::~RuleSet() = default;
RuleSet::RuleSet(RuleSet&&) noexcept = default;
RuleSet& RuleSet::operator=(RuleSet&&) noexcept = default;

std::string ruleLabel(const std::string& id, const std::string& title) {
  return id.empty() ? title : id;
}

RuleLoader::RuleLoader(FieldMapping mapping) : mapping_(std::move(mapping)) {}
RuleLoader::~RuleLoader() = default;

void RuleLoader::setScope(std::string tenant, uint64_t version) {
  tenant_ = std::move(tenant);
  version_ = version;
}

absl::Status RuleLoader::addText(std::string_view yaml, std::string_view origin) {
  // Each document is loaded alone: see yaml_documents.h for the LoadAll hang this avoids.
  std::vector<YAML::Node> documents;
  std::vector<size_t> first_lines;
  for (const internal::YamlDocumentText& part : internal::splitYamlDocuments(yaml)) {
    first_lines.push_back(part.first_line + 1);
    try {
      documents.push_back(YAML::Load(part.text));
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(internal::concat(
          origin, ":", streamLine(part.first_line + 1, e.mark), ": invalid YAML: ",
          yamlErrorText(e)));
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
      if (document["correlation"] && document["detection"]) {
        return fail(absl::InvalidArgumentError(
            "the rule has both 'detection' and 'correlation'; split it into two documents: a "
            "detection rule with a 'name', and a correlation rule that lists that name in "
            "'correlation.rules'"));
      }
      if (document["correlation"]) {
        absl::StatusOr<CorrelationRule> rule = loadCorrelation(document, mapping_);
        if (!rule.ok()) return fail(rule.status());
        rule->origin = internal::concat(origin, " document ", i + 1);
        rule->file = std::string(origin);
        rule->line = first_lines[i];
        rule->document = i + 1;
        rule->rule_ref_lines = refLines(document, first_lines[i], rule->rule_refs.size());
        rule->tenant = tenant_;
        rule->version = version_;
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
        rule->file = std::string(origin);
        rule->line = first_lines[i];
        rule->document = i + 1;
        rule->tenant = tenant_;
        rule->version = version_;
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
          internal::concat("unexpected YAML type at line ", streamLine(first_lines[i], e.mark),
                           ": ", yamlErrorText(e))));
    }
  }
  if (pending_.detections.size() == detections_before &&
      pending_.correlations.size() == correlations_before) {
    warnings_.push_back(internal::concat(
        origin, ": contains no rule; the text is empty or has only comments and '---' lines"));
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

ParsedScope RuleLoader::takeParsed() {
  ParsedScope scope;
  scope.detections = std::move(pending_.detections);
  scope.correlations = std::move(pending_.correlations);
  scope.regexes = std::shared_ptr<const RegexTable>(std::move(pending_.regexes));
  pending_ = RuleSet();
  return scope;
}

void RuleLoader::addParsed(const ParsedScope& scope) {
  const uint32_t offset = static_cast<uint32_t>(pending_.regexes->size());
  pending_.regexes->append(*scope.regexes);
  for (const DetectionRule& rule : scope.detections) {
    pending_.detections.push_back(rule);
    if (offset != 0) shiftRegexes(pending_.detections.back(), offset);
  }
  pending_.correlations.insert(pending_.correlations.end(), scope.correlations.begin(),
                               scope.correlations.end());
}

absl::StatusOr<RuleSet> RuleLoader::finish() {
  RuleSet rules = std::move(pending_);
  pending_ = RuleSet();

  // Ids and names are looked up per scope: (tenant, id or name).
  using ScopedName = std::pair<std::string, std::string>;
  absl::flat_hash_map<ScopedName, uint32_t> by_id;
  absl::flat_hash_map<ScopedName, uint32_t> by_name;
  // The first rule with each name, detection or correlation, as ruleAt() names it: a
  // correlation that names a rule must find exactly one.
  absl::flat_hash_map<ScopedName, std::string> name_owners;
  auto duplicateName = [&name_owners](const auto& rule) -> absl::Status {
    if (rule.name.empty()) return absl::OkStatus();
    auto [it, inserted] = name_owners.emplace(ScopedName(rule.tenant, rule.name), ruleAt(rule));
    if (inserted) return absl::OkStatus();
    return absl::InvalidArgumentError(internal::concat(
        ruleWhere(rule), ": rule name '", rule.name, "' is already used by ", it->second,
        "; give each rule its own name, because correlation.rules finds rules by name"));
  };
  for (uint32_t i = 0; i < rules.detections.size(); ++i) {
    const DetectionRule& rule = rules.detections[i];
    if (!rule.id.empty() && !by_id.emplace(ScopedName(rule.tenant, rule.id), i).second) {
      return absl::InvalidArgumentError(
          internal::concat(ruleWhere(rule), ": rule id ", rule.id, " is already used by ",
                           ruleAt(rules.detections[by_id[ScopedName(rule.tenant, rule.id)]])));
    }
    absl::Status name_status = duplicateName(rule);
    if (!name_status.ok()) return name_status;
    if (!rule.name.empty()) by_name.emplace(ScopedName(rule.tenant, rule.name), i);
  }
  absl::flat_hash_map<ScopedName, uint32_t> correlation_by_id;
  absl::flat_hash_map<ScopedName, uint32_t> correlation_by_name;
  for (uint32_t i = 0; i < rules.correlations.size(); ++i) {
    const CorrelationRule& rule = rules.correlations[i];
    if (!rule.id.empty()) {
      const ScopedName id(rule.tenant, rule.id);
      std::string used_by;
      if (auto it = by_id.find(id); it != by_id.end()) {
        used_by = ruleAt(rules.detections[it->second]);
      } else if (auto other = correlation_by_id.find(id); other != correlation_by_id.end()) {
        used_by = ruleAt(rules.correlations[other->second]);
      }
      if (!used_by.empty()) {
        return absl::InvalidArgumentError(internal::concat(ruleWhere(rule), ": rule id ", rule.id,
                                                           " is already used by ", used_by));
      }
      correlation_by_id.emplace(id, i);
    }
    absl::Status name_status = duplicateName(rule);
    if (!name_status.ok()) return name_status;
    if (!rule.name.empty()) correlation_by_name.emplace(ScopedName(rule.tenant, rule.name), i);
  }

  std::vector<bool> referenced(rules.detections.size(), false);
  std::vector<bool> generated(rules.detections.size(), false);
  std::vector<bool> chained_referenced(rules.correlations.size(), false);
  std::vector<bool> chained_generated(rules.correlations.size(), false);
  for (uint32_t c = 0; c < rules.correlations.size(); ++c) {
    CorrelationRule& rule = rules.correlations[c];
    rule.detections.clear();
    rule.chained.clear();
    for (const std::string& ref : rule.rule_refs) {
      std::optional<uint32_t> target;
      std::optional<uint32_t> chained;
      const ScopedName key(rule.tenant, ref);
      const ScopedName global_key(std::string(), ref);
      const size_t position = rule.detections.size();
      const size_t line = position < rule.rule_ref_lines.size() ? rule.rule_ref_lines[position]
                                                                : rule.line;
      if (auto it = by_id.find(key); it != by_id.end()) {
        target = it->second;
      } else if (auto named = by_name.find(key); named != by_name.end()) {
        target = named->second;
      } else if (auto cid = correlation_by_id.find(key); cid != correlation_by_id.end()) {
        chained = cid->second;
      } else if (auto cname = correlation_by_name.find(key); cname != correlation_by_name.end()) {
        chained = cname->second;
      } else if (rule.tenant.empty()) {
        // A rule for every tenant references only rules for every tenant (looked up above).
      } else if (auto gid = by_id.find(global_key); gid != by_id.end()) {
        target = gid->second;
      } else if (auto gname = by_name.find(global_key); gname != by_name.end()) {
        target = gname->second;
      } else if (correlation_by_id.contains(global_key) ||
                 correlation_by_name.contains(global_key)) {
        return absl::InvalidArgumentError(internal::concat(
            refWhere(rule, line), ": correlation.rules entry '", ref,
            "' names a correlation rule for every tenant; a tenant's correlation may count "
            "the detection rules for every tenant but not their correlations"));
      }
      if (chained && *chained == c) {
        return absl::InvalidArgumentError(internal::concat(
            refWhere(rule, line), ": correlation.rules entry '", ref,
            "' names the rule itself; a correlation cannot count its own alerts"));
      }
      if (!target && !chained) {
        return absl::InvalidArgumentError(internal::concat(
            refWhere(rule, line), ": correlation.rules entry '", ref,
            "' matches no loaded detection or correlation rule id or name",
            rule.tenant.empty()
                ? " for every tenant (rules for every tenant cannot count a tenant's rules)"
                : internal::concat(" of tenant ", rule.tenant,
                                   " and no detection rule for every tenant")));
      }
      rule.detections.push_back(target.value_or(kNoRule));
      rule.chained.push_back(chained.value_or(kNoRule));
      if (target) {
        // A tenant's correlation does not decide whether a rule for every tenant raises
        // its own alerts, because that would change them for every other tenant.
        if (rules.detections[*target].tenant != rule.tenant) continue;
        referenced[*target] = true;
        if (rule.generate) generated[*target] = true;
      } else {
        chained_referenced[*chained] = true;
        if (rule.generate) chained_generated[*chained] = true;
      }
    }
  }
  if (absl::Status chains = checkChains(rules.correlations); !chains.ok()) return chains;
  for (CorrelationRule& rule : rules.correlations) {
    absl::Status fields = resolveFields(rule, rules.detections, rules.correlations, mapping_);
    if (!fields.ok()) {
      return absl::InvalidArgumentError(internal::concat(ruleWhere(rule), ": ", fields.message()));
    }
  }
  for (size_t i = 0; i < rules.detections.size(); ++i) {
    rules.detections[i].generates_alerts = !referenced[i] || generated[i];
  }
  for (size_t i = 0; i < rules.correlations.size(); ++i) {
    rules.correlations[i].generates_alerts = !chained_referenced[i] || chained_generated[i];
  }
  rules.logsources = mapping_.logSources();
  internal::assignLogSources(rules.detections, rules.logsources);
  absl::StatusOr<std::unique_ptr<internal::DetectionIndex>> index =
      internal::DetectionIndex::build(rules.detections, rules.logsources, rules.regexes.get());
  if (!index.ok()) return index.status();
  rules.index = std::move(*index);
  return rules;
}

absl::StatusOr<std::string> withoutRule(std::string_view yaml, std::string_view origin,
                                        std::string_view label, size_t& removed) {
  removed = 0;
  std::string out;
  for (const internal::YamlDocumentText& part : internal::splitYamlDocuments(yaml)) {
    YAML::Node node;
    try {
      node = YAML::Load(part.text);
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(internal::concat(
          origin, ":", streamLine(part.first_line + 1, e.mark), ": invalid YAML: ",
          yamlErrorText(e)));
    }
    auto scalar = [&node](const char* key) {
      return node.IsMap() && node[key] && node[key].IsScalar() ? node[key].Scalar()
                                                              : std::string();
    };
    if (node.IsMap() && ruleLabel(scalar("id"), scalar("title")) == label) {
      ++removed;
      continue;
    }
    if (!out.empty() && !part.text.starts_with("---")) out += "---\n";
    out.append(part.text);
  }
  return out;
}

absl::StatusOr<int64_t> parseTimespan(std::string_view text) {
  auto invalid = [&] {
    return absl::InvalidArgumentError(
        internal::concat("invalid timespan '", text,
                         "'; expected a positive number and s, m, h or d (\"5m\"), at most 100 "
                         "years (36500d)"));
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
  // 100 years of 365 days (36500d) bounds the product far below the int64 range of
  // nanoseconds. The error message and docs/rules.md state this limit.
  if (count > 100LL * 365 * 86400 / unit_s) return invalid();
  return count * unit_s * kNanosPerSecond;
}

}  // namespace vigil::correlate

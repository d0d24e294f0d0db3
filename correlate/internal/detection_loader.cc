#include "correlate/internal/detection_loader.h"

#include "correlate/internal/number.h"
#include "correlate/internal/text.h"

namespace vigil::correlate::internal {
namespace {

// The modifiers of one field key ("CommandLine|contains|all"), after validation.
struct Modifiers {
  PatternAnchor anchor = PatternAnchor::kExact;
  bool all = false;
  bool cased = false;
  bool windash = false;
  bool re_caseless = false;
  bool re_multiline = false;
  bool re_dotall = false;
  // The one modifier that changes what a value means, if any: re, cidr, exists, lt, lte,
  // gt, gte, fieldref, base64 or base64offset.
  std::string kind;
};

absl::Status invalid(std::string_view selection, std::string_view key, std::string_view reason) {
  return absl::InvalidArgumentError(
      concat("selection '", selection, "' field '", key, "': ", reason));
}

absl::StatusOr<Modifiers> parseModifiers(std::string_view selection, std::string_view key,
                                         const std::vector<std::string_view>& names) {
  Modifiers mods;
  bool anchored = false;
  for (std::string_view name : names) {
    if (name == "contains" || name == "startswith" || name == "endswith") {
      if (anchored) return invalid(selection, key, "more than one of contains/startswith/endswith");
      anchored = true;
      mods.anchor = name == "contains"     ? PatternAnchor::kContains
                    : name == "startswith" ? PatternAnchor::kStartsWith
                                           : PatternAnchor::kEndsWith;
    } else if (name == "all") {
      mods.all = true;
    } else if (name == "cased") {
      mods.cased = true;
    } else if (name == "windash") {
      mods.windash = true;
    } else if (name == "i" || name == "m" || name == "s") {
      if (mods.kind != "re") {
        return invalid(selection, key, concat("modifier '", name, "' must follow 're'"));
      }
      if (name == "i") mods.re_caseless = true;
      if (name == "m") mods.re_multiline = true;
      if (name == "s") mods.re_dotall = true;
    } else if (name == "re" || name == "cidr" || name == "exists" || name == "lt" ||
               name == "lte" || name == "gt" || name == "gte" || name == "fieldref" ||
               name == "base64" || name == "base64offset") {
      if (!mods.kind.empty()) {
        return invalid(selection, key,
                       concat("modifier '", name, "' cannot be combined with '", mods.kind, "'"));
      }
      mods.kind = std::string(name);
    } else if (name == "utf16" || name == "utf16le" || name == "utf16be" || name == "wide" ||
               name == "expand") {
      return invalid(selection, key, concat("modifier '", name, "' is not supported yet"));
    } else {
      return invalid(selection, key, concat("unknown modifier '", name, "'"));
    }
  }
  bool text_kind = mods.kind.empty() || mods.kind == "base64" || mods.kind == "base64offset";
  if (anchored && !text_kind) {
    return invalid(
        selection, key,
        concat("contains/startswith/endswith cannot be combined with '", mods.kind, "'"));
  }
  if (mods.windash && !mods.kind.empty()) {
    return invalid(selection, key, concat("windash cannot be combined with '", mods.kind, "'"));
  }
  // fieldref compares two strings, so it takes cased as the string patterns do.
  if (mods.cased && !mods.kind.empty() && mods.kind != "fieldref") {
    return invalid(selection, key, concat("cased cannot be combined with '", mods.kind, "'"));
  }
  if (mods.kind == "base64offset" && mods.anchor != PatternAnchor::kContains) {
    return invalid(selection, key, "base64offset needs the contains modifier");
  }
  if (mods.kind == "base64offset" && mods.all) {
    return invalid(selection, key, "base64offset cannot be combined with all");
  }
  return mods;
}

std::string base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n = (static_cast<uint8_t>(bytes[i]) << 16) |
                 (static_cast<uint8_t>(bytes[i + 1]) << 8) | static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t n = static_cast<uint8_t>(bytes[i]) << 16;
    if (rest == 2) n |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += rest == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// The three encodings of `value` at byte offsets 0, 1 and 2 of a longer Base64 text,
// with the characters that depend on the unknown neighbouring bytes cut off.
std::vector<std::string> base64Offsets(std::string_view value) {
  static constexpr size_t kLeadingCut[3] = {0, 2, 3};
  static constexpr size_t kTrailingCut[3] = {0, 3, 2};
  std::vector<std::string> out;
  for (size_t offset = 0; offset < 3; ++offset) {
    std::string padded(offset, ' ');
    padded.append(value);
    std::string encoded = base64Encode(padded);
    size_t lead = kLeadingCut[offset];
    size_t trail = kTrailingCut[(value.size() + offset) % 3];
    if (encoded.size() > lead + trail)
      out.push_back(encoded.substr(lead, encoded.size() - lead - trail));
  }
  return out;
}

absl::Status addValue(const YAML::Node& node, const Modifiers& mods, std::string_view selection,
                      std::string_view key, const FieldMapping& mapping, RegexTable& regexes,
                      FieldTest& field) {
  ValueTest test;
  if (node.IsNull()) {
    if (!mods.kind.empty() || mods.anchor != PatternAnchor::kExact) {
      return invalid(selection, key, "a null value cannot take modifiers");
    }
    test.op = ValueTest::Op::kNull;
    field.values.push_back(std::move(test));
    return absl::OkStatus();
  }
  if (!node.IsScalar()) {
    return invalid(selection, key, "values must be scalars, null or a list of them");
  }
  const std::string& text = node.Scalar();
  if (mods.kind.empty()) {
    test.pattern = SigmaPattern::compile(text, mods.anchor, mods.cased, mods.windash);
  } else if (mods.kind == "re") {
    absl::StatusOr<uint32_t> index =
        regexes.add(text, mods.re_caseless, mods.re_multiline, mods.re_dotall);
    if (!index.ok()) return invalid(selection, key, std::string(index.status().message()));
    test.op = ValueTest::Op::kRegex;
    test.regex = *index;
  } else if (mods.kind == "cidr") {
    std::optional<IpPrefix> prefix = parsePrefix(text);
    if (!prefix) {
      return invalid(
          selection, key,
          concat("invalid CIDR prefix '", text, "'; expected ADDRESS/LENGTH such as 192.0.2.0/24"));
    }
    test.op = ValueTest::Op::kCidr;
    test.prefix = *prefix;
  } else if (mods.kind == "exists") {
    if (text != "true" && text != "false") {
      return invalid(selection, key, concat("exists takes true or false, not '", text, "'"));
    }
    test.op = ValueTest::Op::kExists;
    test.expect_exists = text == "true";
  } else if (mods.kind == "lt" || mods.kind == "lte" || mods.kind == "gt" || mods.kind == "gte") {
    std::optional<double> number = parseDecimal(text);
    if (!number) {
      return invalid(selection, key, concat("'", mods.kind, "' needs a number, not '", text, "'"));
    }
    test.number = *number;
    test.op = mods.kind == "lt"    ? ValueTest::Op::kLess
              : mods.kind == "lte" ? ValueTest::Op::kLessEqual
              : mods.kind == "gt"  ? ValueTest::Op::kGreater
                                   : ValueTest::Op::kGreaterEqual;
  } else if (mods.kind == "fieldref") {
    test.op = ValueTest::Op::kFieldRef;
    test.ref_cased = mods.cased;
    test.ref_field = std::string(mapping.resolve(text));
    test.ref_sigma_field = text;
    test.ref_event = ResolvedName(test.ref_field);
    test.ref_sigma = ResolvedName(test.ref_sigma_field);
  } else if (mods.kind == "base64") {
    test.pattern = SigmaPattern::literal(base64Encode(text), mods.anchor);
  } else {  // base64offset
    for (const std::string& encoded : base64Offsets(text)) {
      ValueTest variant;
      variant.pattern = SigmaPattern::literal(encoded, PatternAnchor::kContains);
      field.values.push_back(std::move(variant));
    }
    return absl::OkStatus();
  }
  field.values.push_back(std::move(test));
  return absl::OkStatus();
}

// Builds one FieldTest from a "name|modifiers: values" entry. An empty name (a key such
// as "|all") is a keyword test over the message.
absl::StatusOr<FieldTest> loadField(std::string_view selection, const std::string& key,
                                    const YAML::Node& values, const FieldMapping& mapping,
                                    RegexTable& regexes) {
  std::vector<std::string_view> parts;
  std::string_view rest = key;
  for (size_t bar = rest.find('|'); bar != std::string_view::npos; bar = rest.find('|')) {
    parts.push_back(rest.substr(0, bar));
    rest.remove_prefix(bar + 1);
  }
  parts.push_back(rest);
  std::string_view name = parts[0];
  parts.erase(parts.begin());
  absl::StatusOr<Modifiers> mods = parseModifiers(selection, key, parts);
  if (!mods.ok()) return mods.status();

  FieldTest field;
  field.sigma_name = std::string(name);
  field.all = mods->all;
  if (name.empty()) {
    field.source = FieldTest::Source::kKeyword;
    if (mods->anchor == PatternAnchor::kExact && mods->kind.empty()) {
      mods->anchor = PatternAnchor::kContains;
    }
  } else if (name == "intel.list") {
    field.source = FieldTest::Source::kIntelList;
  } else if (name == "intel.type") {
    field.source = FieldTest::Source::kIntelType;
  } else {
    field.event_name = std::string(mapping.resolve(name));
    field.event_ref = ResolvedName(field.event_name);
    field.sigma_ref = ResolvedName(field.sigma_name);
    const std::vector<LogSourceDefinition>& logsources = mapping.logSources();
    for (uint32_t i = 0; i < logsources.size(); ++i) {
      for (const auto& [sigma_name, event_name] : logsources[i].field_mapping) {
        if (sigma_name == name) field.logsource_refs.emplace_back(i, ResolvedName(event_name));
      }
    }
  }

  if (values.IsSequence()) {
    if (values.size() == 0) return invalid(selection, key, "the value list is empty");
    for (const YAML::Node& value : values) {
      absl::Status status = addValue(value, *mods, selection, key, mapping, regexes, field);
      if (!status.ok()) return status;
    }
  } else if (values.IsMap()) {
    return invalid(selection, key, "a map is not a valid field value");
  } else {
    absl::Status status = addValue(values, *mods, selection, key, mapping, regexes, field);
    if (!status.ok()) return status;
  }
  return field;
}

absl::StatusOr<std::vector<FieldTest>> loadFieldMap(std::string_view selection,
                                                    const YAML::Node& map,
                                                    const FieldMapping& mapping,
                                                    RegexTable& regexes) {
  std::vector<FieldTest> fields;
  for (const auto& entry : map) {
    if (!entry.first.IsScalar()) return invalid(selection, "?", "field names must be strings");
    absl::StatusOr<FieldTest> field =
        loadField(selection, entry.first.Scalar(), entry.second, mapping, regexes);
    if (!field.ok()) return field.status();
    fields.push_back(std::move(*field));
  }
  if (fields.empty()) return invalid(selection, "", "the selection is empty");
  return fields;
}

absl::StatusOr<Selection> loadSelection(const std::string& name, const YAML::Node& node,
                                        const FieldMapping& mapping, RegexTable& regexes) {
  Selection selection;
  selection.name = name;
  if (node.IsMap()) {
    absl::StatusOr<std::vector<FieldTest>> fields = loadFieldMap(name, node, mapping, regexes);
    if (!fields.ok()) return fields.status();
    selection.alternatives.push_back(std::move(*fields));
    return selection;
  }
  if (node.IsScalar()) {
    YAML::Node list(YAML::NodeType::Sequence);
    list.push_back(node);
    return loadSelection(name, list, mapping, regexes);
  }
  if (!node.IsSequence() || node.size() == 0) {
    return invalid(name, "", "a selection must be a map, a list of maps or a keyword list");
  }
  bool has_maps = false;
  bool has_keywords = false;
  for (const YAML::Node& item : node) (item.IsMap() ? has_maps : has_keywords) = true;
  if (has_maps && has_keywords) {
    return invalid(name, "", "a selection list cannot mix maps and keywords");
  }
  if (has_keywords) {
    absl::StatusOr<FieldTest> keywords = loadField(name, "", node, mapping, regexes);
    if (!keywords.ok()) return keywords.status();
    selection.alternatives.push_back({std::move(*keywords)});
    return selection;
  }
  for (const YAML::Node& item : node) {
    absl::StatusOr<std::vector<FieldTest>> fields = loadFieldMap(name, item, mapping, regexes);
    if (!fields.ok()) return fields.status();
    selection.alternatives.push_back(std::move(*fields));
  }
  return selection;
}

absl::StatusOr<std::string> readString(const YAML::Node& document, const char* key) {
  const YAML::Node node = document[key];
  if (!node || node.IsNull()) return std::string();
  if (!node.IsScalar()) {
    return absl::InvalidArgumentError(concat("'", key, "' must be a string"));
  }
  return node.Scalar();
}

// Checks a Sigma `level` and stores it in lower case. A rule without a level gets
// "medium", so every alert carries a level that the case store accepts.
absl::Status normalizeLevel(std::string& level) {
  if (level.empty()) {
    level = "medium";
    return absl::OkStatus();
  }
  static constexpr std::string_view kLevels[] = {"informational", "low", "medium", "high",
                                                 "critical"};
  for (std::string_view known : kLevels) {
    if (equalsIgnoreCase(level, known)) {
      level = std::string(known);
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(concat(
      "invalid level '", level, "'; expected one of informational, low, medium, high, critical"));
}

}  // namespace

absl::Status readHeader(const YAML::Node& document, std::string& title, std::string& id,
                        std::string& name, std::string& level, std::vector<std::string>& tags) {
  for (auto [key, out] : {std::pair{"title", &title}, std::pair{"id", &id},
                          std::pair{"name", &name}, std::pair{"level", &level}}) {
    absl::StatusOr<std::string> value = readString(document, key);
    if (!value.ok()) return value.status();
    *out = std::move(*value);
  }
  const YAML::Node tag_node = document["tags"];
  if (tag_node && !tag_node.IsNull()) {
    if (!tag_node.IsSequence()) return absl::InvalidArgumentError("'tags' must be a list");
    for (const YAML::Node& tag : tag_node) {
      if (!tag.IsScalar()) return absl::InvalidArgumentError("'tags' must hold strings");
      tags.push_back(tag.Scalar());
    }
  }
  if (title.empty()) return absl::InvalidArgumentError("'title' is missing");
  return normalizeLevel(level);
}

absl::StatusOr<DetectionRule> loadDetection(const YAML::Node& document, const FieldMapping& mapping,
                                            RegexTable& regexes) {
  DetectionRule rule;
  absl::Status header = readHeader(document, rule.title, rule.id, rule.name, rule.level, rule.tags);
  if (!header.ok()) return header;
  absl::StatusOr<std::string> status = readString(document, "status");
  if (!status.ok()) return status.status();
  rule.status = std::move(*status);

  const YAML::Node logsource = document["logsource"];
  if (logsource && logsource.IsMap()) {
    for (const auto& entry : logsource) {
      if (entry.first.IsScalar() && entry.second.IsScalar()) {
        rule.logsource.emplace_back(entry.first.Scalar(), entry.second.Scalar());
      }
    }
  }

  const YAML::Node detection = document["detection"];
  if (!detection.IsMap()) return absl::InvalidArgumentError("'detection' must be a map");
  std::string condition_text;
  for (const auto& entry : detection) {
    const std::string& key = entry.first.Scalar();
    if (key == "condition") {
      const YAML::Node& condition = entry.second;
      if (condition.IsScalar()) {
        condition_text = condition.Scalar();
      } else if (condition.IsSequence()) {
        // A list of conditions matches when any of them does.
        for (const YAML::Node& part : condition) {
          if (!part.IsScalar())
            return absl::InvalidArgumentError("'condition' list must hold strings");
          if (!condition_text.empty()) condition_text += " or ";
          condition_text += concat("(", part.Scalar(), ")");
        }
      } else {
        return absl::InvalidArgumentError("'condition' must be a string or a list of strings");
      }
      continue;
    }
    if (key == "timeframe") {
      return absl::InvalidArgumentError(
          "'timeframe' belongs to the deprecated aggregation syntax; use an event_count "
          "correlation rule");
    }
    absl::StatusOr<Selection> selection = loadSelection(key, entry.second, mapping, regexes);
    if (!selection.ok()) return selection.status();
    rule.selection_names.push_back(key);
    rule.selections.push_back(std::move(*selection));
  }
  if (condition_text.empty()) return absl::InvalidArgumentError("'detection.condition' is missing");
  absl::StatusOr<Condition> condition = parseCondition(condition_text, rule.selection_names);
  if (!condition.ok()) return condition.status();
  rule.condition = std::move(*condition);
  return rule;
}

}  // namespace vigil::correlate::internal

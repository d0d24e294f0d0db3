#include "tests/openapi/schema_validator.h"

#include <algorithm>
#include <limits>
#include <regex>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace vigil::openapi {
namespace {

using nlohmann::json;

// Deeper nesting than this is a $ref cycle that never reaches a value.
constexpr int kMaxDepth = 64;

const std::set<std::string>& annotationKeywords() {
  static const std::set<std::string> keywords = {"description", "title",        "default",
                                                 "example",     "deprecated",   "readOnly",
                                                 "writeOnly",   "externalDocs", "xml"};
  return keywords;
}

const std::set<std::string>& validationKeywords() {
  static const std::set<std::string> keywords = {"$ref",
                                                 "type",
                                                 "nullable",
                                                 "properties",
                                                 "required",
                                                 "additionalProperties",
                                                 "items",
                                                 "minItems",
                                                 "maxItems",
                                                 "enum",
                                                 "oneOf",
                                                 "anyOf",
                                                 "allOf",
                                                 "format",
                                                 "minimum",
                                                 "maximum",
                                                 "exclusiveMinimum",
                                                 "exclusiveMaximum",
                                                 "minLength",
                                                 "maxLength",
                                                 "pattern"};
  return keywords;
}

std::string typeName(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "integer";
    case json::value_t::number_float:
      return "number";
    case json::value_t::string:
      return "string";
    case json::value_t::array:
      return "array";
    case json::value_t::object:
      return "object";
    default:
      return "unknown";
  }
}

bool hasType(const json& value, const std::string& type) {
  if (type == "integer") return value.is_number_integer();
  if (type == "number") return value.is_number();
  if (type == "string") return value.is_string();
  if (type == "boolean") return value.is_boolean();
  if (type == "array") return value.is_array();
  if (type == "object") return value.is_object();
  return false;
}

size_t codePoints(const std::string& text) {
  size_t count = 0;
  for (unsigned char c : text) count += (c & 0xC0) != 0x80 ? 1 : 0;
  return count;
}

// RFC 3339 date-time; the checks on digits stop short of calendar validity.
bool isDateTime(const std::string& text) {
  static const std::regex kDateTime(
      R"([0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))");
  return std::regex_match(text, kDateTime);
}

}  // namespace

std::string escapePointer(const std::string& token) {
  std::string out;
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string shortText(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

// ---------------------------------------------------------------------------------------
// SchemaValidator

const json* SchemaValidator::resolve(const json& node) const {
  const json* current = &node;
  for (int hops = 0; hops < kMaxDepth; ++hops) {
    if (!current->is_object() || !current->contains("$ref")) return current;
    const json& ref = (*current)["$ref"];
    if (!ref.is_string()) return nullptr;
    std::string target = ref.get<std::string>();
    if (!absl::StartsWith(target, "#")) return nullptr;
    try {
      current = &root_.at(json::json_pointer(target.substr(1)));
    } catch (const json::exception&) {
      return nullptr;
    }
  }
  return nullptr;
}

std::vector<std::string> SchemaValidator::validate(const json& schema, const json& value) const {
  std::vector<std::string> errors;
  try {
    validateAt(schema, value, "", 0, errors);
  } catch (const json::exception& e) {
    // checkSchema() reports malformed keyword values; this keeps validate() from throwing.
    errors.push_back(std::string("the schema is malformed: ") + e.what());
  }
  return errors;
}

void SchemaValidator::validateAt(const json& schema_in, const json& value,
                                 const std::string& pointer, int depth,
                                 std::vector<std::string>& errors) const {
  const std::string at = pointer.empty() ? "/" : pointer;
  if (depth > kMaxDepth) {
    errors.push_back(at + ": schema nesting is deeper than 64; is there a $ref cycle?");
    return;
  }
  const json* resolved = resolve(schema_in);
  if (resolved == nullptr) {
    errors.push_back(at + ": schema reference " + shortText(schema_in) + " does not resolve");
    return;
  }
  const json& schema = *resolved;
  if (schema.is_boolean()) {
    if (!schema.get<bool>()) errors.push_back(at + ": no value is allowed here");
    return;
  }
  if (!schema.is_object()) {
    errors.push_back(at + ": schema is not an object: " + shortText(schema));
    return;
  }

  if (value.is_null()) {
    if (schema.value("nullable", false)) return;
    if (schema.contains("type")) {
      errors.push_back(at + ": null is not allowed; expected " + shortText(schema["type"]));
      return;
    }
  } else if (schema.contains("type")) {
    const std::string type = schema["type"].get<std::string>();
    if (!hasType(value, type)) {
      errors.push_back(at + ": expected " + type + ", got " + typeName(value) + " " +
                       shortText(value));
      return;
    }
  }

  if (schema.contains("enum")) {
    const json& options = schema["enum"];
    if (std::find(options.begin(), options.end(), value) == options.end()) {
      errors.push_back(at + ": " + shortText(value) + " is not one of " + shortText(options));
    }
  }

  if (value.is_number()) {
    const double number = value.get<double>();
    if (schema.contains("minimum")) {
      const double minimum = schema["minimum"].get<double>();
      const bool exclusive = schema.value("exclusiveMinimum", false);
      if (exclusive ? number <= minimum : number < minimum) {
        errors.push_back(at + ": " + shortText(value) + " is below the minimum " +
                         shortText(schema["minimum"]) + (exclusive ? " (exclusive)" : ""));
      }
    }
    if (schema.contains("maximum")) {
      const double maximum = schema["maximum"].get<double>();
      const bool exclusive = schema.value("exclusiveMaximum", false);
      if (exclusive ? number >= maximum : number > maximum) {
        errors.push_back(at + ": " + shortText(value) + " is above the maximum " +
                         shortText(schema["maximum"]) + (exclusive ? " (exclusive)" : ""));
      }
    }
    const std::string format = schema.value("format", "");
    if (format == "int32" && (number < std::numeric_limits<int32_t>::min() ||
                              number > std::numeric_limits<int32_t>::max())) {
      errors.push_back(at + ": " + shortText(value) + " does not fit in int32");
    }
    if (format == "int64" && value.is_number_unsigned() &&
        value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      errors.push_back(at + ": " + shortText(value) + " does not fit in int64");
    }
  }

  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    const size_t length = codePoints(text);
    if (schema.contains("minLength") && length < schema["minLength"].get<size_t>()) {
      errors.push_back(at + ": " + shortText(value) + " is shorter than minLength " +
                       shortText(schema["minLength"]));
    }
    if (schema.contains("maxLength") && length > schema["maxLength"].get<size_t>()) {
      errors.push_back(at + ": " + shortText(value) + " is longer than maxLength " +
                       shortText(schema["maxLength"]));
    }
    if (schema.contains("pattern")) {
      const std::regex pattern(schema["pattern"].get<std::string>(), std::regex::ECMAScript);
      if (!std::regex_search(text, pattern)) {
        errors.push_back(at + ": " + shortText(value) + " does not match the pattern " +
                         shortText(schema["pattern"]));
      }
    }
    if (schema.value("format", "") == "date-time" && !isDateTime(text)) {
      errors.push_back(at + ": " + shortText(value) + " is not an RFC 3339 date-time");
    }
  }

  if (value.is_array()) {
    if (schema.contains("minItems") && value.size() < schema["minItems"].get<size_t>()) {
      errors.push_back(at + ": " + std::to_string(value.size()) + " items, fewer than minItems " +
                       shortText(schema["minItems"]));
    }
    if (schema.contains("maxItems") && value.size() > schema["maxItems"].get<size_t>()) {
      errors.push_back(at + ": " + std::to_string(value.size()) + " items, more than maxItems " +
                       shortText(schema["maxItems"]));
    }
    if (schema.contains("items")) {
      for (size_t i = 0; i < value.size(); ++i) {
        validateAt(schema["items"], value[i], pointer + "/" + std::to_string(i), depth + 1, errors);
      }
    }
  }

  if (value.is_object()) validateObject(schema, value, pointer, depth, errors);
  validateCombinators(schema, value, pointer, depth, errors);
}

void SchemaValidator::validateObject(const json& schema, const json& value,
                                     const std::string& pointer, int depth,
                                     std::vector<std::string>& errors) const {
  const std::string at = pointer.empty() ? "/" : pointer;
  if (schema.contains("required")) {
    for (const json& name : schema["required"]) {
      if (!value.contains(name.get<std::string>())) {
        errors.push_back(at + ": required property " + shortText(name) + " is missing");
      }
    }
  }
  const json empty = json::object();
  const json& properties = schema.contains("properties") ? schema["properties"] : empty;
  for (const auto& [name, member] : value.items()) {
    const std::string member_pointer = pointer + "/" + escapePointer(name);
    if (properties.contains(name)) {
      validateAt(properties[name], member, member_pointer, depth + 1, errors);
      continue;
    }
    if (!schema.contains("additionalProperties")) continue;
    const json& additional = schema["additionalProperties"];
    if (additional.is_boolean()) {
      if (!additional.get<bool>()) {
        errors.push_back(member_pointer + ": property \"" + name +
                         "\" is not in the schema, which allows no others");
      }
      continue;
    }
    validateAt(additional, member, member_pointer, depth + 1, errors);
  }
}

void SchemaValidator::validateCombinators(const json& schema, const json& value,
                                          const std::string& pointer, int depth,
                                          std::vector<std::string>& errors) const {
  const std::string at = pointer.empty() ? "/" : pointer;
  if (schema.contains("allOf")) {
    for (const json& branch : schema["allOf"])
      validateAt(branch, value, pointer, depth + 1, errors);
  }
  auto countMatches = [&](const json& branches, std::vector<std::string>& branch_errors) {
    int matches = 0;
    for (size_t i = 0; i < branches.size(); ++i) {
      std::vector<std::string> branch_violations;
      validateAt(branches[i], value, pointer, depth + 1, branch_violations);
      if (branch_violations.empty()) {
        ++matches;
      } else {
        branch_errors.push_back(
            absl::StrCat("branch ", i, ": ", absl::StrJoin(branch_violations, "; ")));
      }
    }
    return matches;
  };
  if (schema.contains("anyOf")) {
    std::vector<std::string> branch_errors;
    if (countMatches(schema["anyOf"], branch_errors) == 0) {
      errors.push_back(at + ": matches no anyOf branch (" + absl::StrJoin(branch_errors, " | ") +
                       ")");
    }
  }
  if (schema.contains("oneOf")) {
    std::vector<std::string> branch_errors;
    const int matches = countMatches(schema["oneOf"], branch_errors);
    if (matches == 0) {
      errors.push_back(at + ": matches no oneOf branch (" + absl::StrJoin(branch_errors, " | ") +
                       ")");
    } else if (matches > 1) {
      errors.push_back(
          absl::StrCat(at, ": matches ", matches, " oneOf branches; exactly one must match"));
    }
  }
}

std::vector<std::string> SchemaValidator::checkSchema(const json& schema,
                                                      const std::string& where) const {
  std::vector<const json*> visited;
  std::vector<std::string> problems;
  checkSchemaAt(schema, where, visited, problems);
  return problems;
}

void SchemaValidator::checkSchemaAt(const json& schema, const std::string& where,
                                    std::vector<const json*>& visited,
                                    std::vector<std::string>& problems) const {
  if (schema.is_boolean()) return;
  if (!schema.is_object()) {
    problems.push_back(where + ": a schema must be an object, not " + shortText(schema));
    return;
  }
  if (schema.contains("$ref")) {
    const json* target = resolve(schema);
    if (target == nullptr) {
      problems.push_back(where + ": $ref " + shortText(schema["$ref"]) +
                         " does not resolve inside the document");
      return;
    }
    if (std::find(visited.begin(), visited.end(), target) != visited.end()) return;
    visited.push_back(target);
    checkSchemaAt(*target, schema["$ref"].get<std::string>(), visited, problems);
    return;
  }
  for (const auto& [keyword, argument] : schema.items()) {
    if (annotationKeywords().count(keyword) != 0 || absl::StartsWith(keyword, "x-")) continue;
    if (validationKeywords().count(keyword) == 0) {
      problems.push_back(where + ": keyword \"" + keyword + "\" is not supported by the validator");
    }
  }
  static const std::set<std::string> kTypes = {"integer", "number", "string",
                                               "boolean", "array",  "object"};
  if (schema.contains("type") &&
      (!schema["type"].is_string() || kTypes.count(schema["type"].get<std::string>()) == 0)) {
    problems.push_back(where + ": type " + shortText(schema["type"]) +
                       " is not one of integer, number, string, boolean, array, object");
  }
  static const std::set<std::string> kFormats = {"date-time", "int32", "int64"};
  if (schema.contains("format") &&
      (!schema["format"].is_string() || kFormats.count(schema["format"].get<std::string>()) == 0)) {
    problems.push_back(where + ": format " + shortText(schema["format"]) +
                       " is not checked by the validator; use date-time, int32 or int64");
  }
  for (const char* keyword : {"minimum", "maximum"}) {
    if (schema.contains(keyword) && !schema[keyword].is_number()) {
      problems.push_back(where + ": " + keyword + " must be a number");
    }
  }
  for (const char* keyword : {"minLength", "maxLength", "minItems", "maxItems"}) {
    if (schema.contains(keyword) &&
        (!schema[keyword].is_number_integer() || schema[keyword].get<int64_t>() < 0)) {
      problems.push_back(where + ": " + keyword + " must be a non-negative integer");
    }
  }
  for (const char* keyword : {"nullable", "exclusiveMinimum", "exclusiveMaximum"}) {
    if (schema.contains(keyword) && !schema[keyword].is_boolean()) {
      problems.push_back(where + ": " + keyword + " must be true or false");
    }
  }
  if (schema.contains("enum") && (!schema["enum"].is_array() || schema["enum"].empty())) {
    problems.push_back(where + ": enum must be a non-empty list");
  }
  if (schema.contains("pattern")) {
    try {
      std::regex check(schema["pattern"].get<std::string>(), std::regex::ECMAScript);
    } catch (const std::exception&) {
      problems.push_back(where + ": pattern " + shortText(schema["pattern"]) +
                         " is not an ECMAScript regular expression");
    }
  }
  if (schema.contains("required")) {
    const json& required = schema["required"];
    if (!required.is_array()) {
      problems.push_back(where + ": required must be a list of property names");
    } else {
      for (const json& name : required) {
        if (!name.is_string()) {
          problems.push_back(where + ": required lists " + shortText(name) + ", not a name");
        } else if (schema.value("additionalProperties", json(true)) == json(false) &&
                   !(schema.contains("properties") && schema["properties"].contains(name))) {
          problems.push_back(where + ": required property " + shortText(name) +
                             " is not in properties, and additionalProperties is false");
        }
      }
    }
  }
  if (schema.contains("properties")) {
    if (!schema["properties"].is_object()) {
      problems.push_back(where + ": properties must be a map of schemas");
    } else {
      for (const auto& [name, property] : schema["properties"].items()) {
        checkSchemaAt(property, where + "/properties/" + escapePointer(name), visited, problems);
      }
    }
  }
  if (schema.contains("additionalProperties") && !schema["additionalProperties"].is_boolean()) {
    checkSchemaAt(schema["additionalProperties"], where + "/additionalProperties", visited,
                  problems);
  }
  if (schema.contains("items")) checkSchemaAt(schema["items"], where + "/items", visited, problems);
  if (schema.value("type", "") == "array" && !schema.contains("items")) {
    problems.push_back(where + ": an array schema needs items");
  }
  for (const char* keyword : {"oneOf", "anyOf", "allOf"}) {
    if (!schema.contains(keyword)) continue;
    if (!schema[keyword].is_array() || schema[keyword].empty()) {
      problems.push_back(where + ": " + keyword + " must be a non-empty list of schemas");
      continue;
    }
    for (size_t i = 0; i < schema[keyword].size(); ++i) {
      checkSchemaAt(schema[keyword][i], absl::StrCat(where, "/", keyword, "/", i), visited,
                    problems);
    }
  }
}

}  // namespace vigil::openapi

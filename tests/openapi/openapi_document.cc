#include "tests/openapi/openapi_document.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <regex>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace vigil::openapi {
namespace {

using nlohmann::json;

// Deeper nesting than this is a $ref cycle that never reaches a value.
constexpr int kMaxDepth = 64;

const std::set<std::string>& annotationKeywords() {
  static const std::set<std::string> keywords = {
      "description", "title",    "default",   "example",      "deprecated",
      "readOnly",    "writeOnly", "externalDocs", "xml"};
  return keywords;
}

const std::set<std::string>& validationKeywords() {
  static const std::set<std::string> keywords = {
      "$ref",      "type",      "nullable",  "properties", "required", "additionalProperties",
      "items",     "minItems",  "maxItems",  "enum",       "oneOf",    "anyOf",
      "allOf",     "format",    "minimum",   "maximum",    "exclusiveMinimum",
      "exclusiveMaximum", "minLength", "maxLength", "pattern"};
  return keywords;
}

const std::set<std::string>& httpMethods() {
  static const std::set<std::string> methods = {"get",     "put",  "post",  "delete",
                                                "options", "head", "patch", "trace"};
  return methods;
}

// JSON pointer escaping of one reference token (RFC 6901).
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

json scalarToJson(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  // yaml-cpp tags plain scalars "?" and quoted ones "!"; only plain ones are typed.
  if (node.Tag() != "?") return text;
  if (text == "null" || text == "Null" || text == "NULL" || text == "~" || text.empty()) {
    return nullptr;
  }
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  static const std::regex kInteger("[-+]?[0-9]+");
  static const std::regex kFloat(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  if (std::regex_match(text, kInteger)) {
    int64_t value = 0;
    if (absl::SimpleAtoi(text, &value)) return value;
    uint64_t big = 0;
    if (absl::SimpleAtoi(text, &big)) return big;
  }
  if (std::regex_match(text, kFloat)) {
    double value = 0;
    if (absl::SimpleAtod(text, &value)) return value;
  }
  return text;
}

json yamlNodeToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return scalarToJson(node);
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const YAML::Node& item : node) out.push_back(yamlNodeToJson(item));
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& entry : node) out[entry.first.as<std::string>()] = yamlNodeToJson(entry.second);
      return out;
    }
  }
  return nullptr;
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

std::string shortText(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

// Splits a content type into its lower-case media type and its parameters, as written.
std::pair<std::string, std::string> splitContentType(const std::string& content_type) {
  size_t semicolon = content_type.find(';');
  std::string type(absl::StripAsciiWhitespace(content_type.substr(0, semicolon)));
  std::string params = semicolon == std::string::npos
                           ? std::string()
                           : std::string(absl::StripAsciiWhitespace(content_type.substr(semicolon + 1)));
  return {absl::AsciiStrToLower(type), params};
}

bool isJsonMediaType(const std::string& media_type) {
  return media_type == "application/json" || absl::EndsWith(media_type, "+json");
}

}  // namespace

absl::StatusOr<json> yamlToJson(const std::string& text) {
  try {
    return yamlNodeToJson(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("line ", e.mark.line + 1, ": invalid YAML: ", e.msg));
  }
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
        validateAt(schema["items"], value[i], pointer + "/" + std::to_string(i), depth + 1,
                   errors);
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
    for (const json& branch : schema["allOf"]) validateAt(branch, value, pointer, depth + 1, errors);
  }
  auto countMatches = [&](const json& branches, std::vector<std::string>& branch_errors) {
    int matches = 0;
    for (size_t i = 0; i < branches.size(); ++i) {
      std::vector<std::string> these;
      validateAt(branches[i], value, pointer, depth + 1, these);
      if (these.empty()) {
        ++matches;
      } else {
        branch_errors.push_back(absl::StrCat("branch ", i, ": ", absl::StrJoin(these, "; ")));
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
      errors.push_back(absl::StrCat(at, ": matches ", matches,
                                    " oneOf branches; exactly one must match"));
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

// ---------------------------------------------------------------------------------------
// Document

absl::StatusOr<Document> Document::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read OpenAPI document ", path));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<Document> document = parse(text.str());
  if (!document.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", document.status().message()));
  }
  return document;
}

absl::StatusOr<Document> Document::parse(const std::string& yaml_text) {
  absl::StatusOr<json> root = yamlToJson(yaml_text);
  if (!root.ok()) return root.status();
  if (!root->is_object() || !root->contains("paths") || !(*root)["paths"].is_object()) {
    return absl::InvalidArgumentError("the document has no paths map");
  }
  return Document(std::make_shared<const json>(*std::move(root)));
}

std::vector<Operation> Document::operations() const {
  std::vector<Operation> out;
  for (const auto& [path, item] : root()["paths"].items()) {
    if (!item.is_object()) continue;
    for (const auto& [method, operation] : item.items()) {
      if (httpMethods().count(method) == 0) continue;
      out.push_back({absl::AsciiStrToUpper(method), path});
    }
  }
  return out;
}

std::optional<Operation> Document::findOperation(const std::string& method,
                                                 const std::string& path) const {
  const std::string wanted = method == "HEAD" ? "GET" : method;
  const std::vector<std::string> segments = absl::StrSplit(path, '/', absl::SkipEmpty());
  std::optional<Operation> best;
  int best_literals = -1;
  for (const Operation& operation : operations()) {
    if (operation.method != wanted) continue;
    const std::vector<std::string> pattern =
        absl::StrSplit(operation.path, '/', absl::SkipEmpty());
    if (pattern.size() != segments.size()) continue;
    int literals = 0;
    bool match = true;
    for (size_t i = 0; i < pattern.size() && match; ++i) {
      const bool is_param = pattern[i].size() > 2 && pattern[i].front() == '{' &&
                            pattern[i].back() == '}';
      if (is_param) continue;
      match = pattern[i] == segments[i];
      ++literals;
    }
    if (match && literals > best_literals) {
      best = operation;
      best_literals = literals;
    }
  }
  return best;
}

const json& Document::operationNode(const Operation& operation) const {
  return root()["paths"][operation.path][absl::AsciiStrToLower(operation.method)];
}

std::vector<const json*> Document::parameters(const Operation& operation) const {
  SchemaValidator refs = validator();
  std::vector<const json*> out;
  const json& item = root()["paths"][operation.path];
  for (const json* list : {&item, &operationNode(operation)}) {
    if (!list->contains("parameters") || !(*list)["parameters"].is_array()) continue;
    for (const json& parameter : (*list)["parameters"]) {
      const json* resolved = refs.resolve(parameter);
      if (resolved != nullptr && resolved->is_object()) out.push_back(resolved);
    }
  }
  return out;
}

std::vector<std::string> Document::lint() const {
  std::vector<std::string> problems;
  SchemaValidator schemas = validator();
  if (!absl::StartsWith(root().value("openapi", ""), "3.0.")) {
    problems.push_back("openapi must be 3.0.x, not " + shortText(root().value("openapi", json())));
  }
  if (!root().contains("info") || !root()["info"].contains("title") ||
      !root()["info"].contains("version")) {
    problems.push_back("info needs a title and a version");
  }

  std::set<std::string> operation_ids;
  for (const Operation& operation : operations()) {
    const std::string where = operation.method + " " + operation.path;
    const json& node = operationNode(operation);
    const std::string id = node.value("operationId", "");
    if (id.empty()) {
      problems.push_back(where + ": operationId is missing");
    } else if (!operation_ids.insert(id).second) {
      problems.push_back(where + ": operationId " + id + " is used twice");
    }

    // Every {name} in the template needs a required path parameter, and back.
    std::set<std::string> in_template;
    for (absl::string_view segment : absl::StrSplit(operation.path, '/', absl::SkipEmpty())) {
      if (segment.size() > 2 && segment.front() == '{' && segment.back() == '}') {
        in_template.insert(std::string(segment.substr(1, segment.size() - 2)));
      }
    }
    std::set<std::string> declared;
    for (const json* parameter : parameters(operation)) {
      const std::string name = parameter->value("name", "");
      const std::string in = parameter->value("in", "");
      if (name.empty() || in.empty()) problems.push_back(where + ": a parameter lacks name or in");
      if (!parameter->contains("schema")) {
        problems.push_back(where + ": parameter " + name + " has no schema");
      } else {
        for (std::string& p : schemas.checkSchema((*parameter)["schema"],
                                                  where + " parameter " + name)) {
          problems.push_back(std::move(p));
        }
      }
      if (in != "path") continue;
      declared.insert(name);
      if (!parameter->value("required", false)) {
        problems.push_back(where + ": path parameter " + name + " must be required");
      }
      if (in_template.count(name) == 0) {
        problems.push_back(where + ": path parameter " + name + " is not in the path");
      }
    }
    for (const std::string& name : in_template) {
      if (declared.count(name) == 0) {
        problems.push_back(where + ": {" + name + "} has no path parameter");
      }
    }

    if (node.contains("requestBody")) {
      const json* body = schemas.resolve(node["requestBody"]);
      if (body == nullptr || !body->contains("content")) {
        problems.push_back(where + ": requestBody needs content");
      } else {
        for (const auto& [media_type, media] : (*body)["content"].items()) {
          if (!media.contains("schema")) {
            problems.push_back(where + " request " + media_type + ": no schema");
            continue;
          }
          for (std::string& p :
               schemas.checkSchema(media["schema"], where + " request " + media_type)) {
            problems.push_back(std::move(p));
          }
        }
      }
    }

    if (!node.contains("responses") || !node["responses"].is_object() ||
        node["responses"].empty()) {
      problems.push_back(where + ": responses are missing");
      continue;
    }
    for (const auto& [status, response_ref] : node["responses"].items()) {
      const std::string at = where + " " + status;
      int code = 0;
      if (!absl::SimpleAtoi(status, &code) || code < 100 || code > 599) {
        problems.push_back(at + ": list each status code; ranges and default are not checked");
        continue;
      }
      const json* response = schemas.resolve(response_ref);
      if (response == nullptr) {
        problems.push_back(at + ": $ref does not resolve");
        continue;
      }
      if (!response->contains("description")) problems.push_back(at + ": description is missing");
      if (!response->contains("content")) continue;
      for (const auto& [media_type, media] : (*response)["content"].items()) {
        if (!media.contains("schema")) {
          problems.push_back(at + " " + media_type + ": no schema");
          continue;
        }
        for (std::string& p : schemas.checkSchema(media["schema"], at + " " + media_type)) {
          problems.push_back(std::move(p));
        }
      }
    }
  }

  if (root().contains("components") && root()["components"].contains("schemas")) {
    for (const auto& [name, schema] : root()["components"]["schemas"].items()) {
      for (std::string& p : schemas.checkSchema(schema, "#/components/schemas/" + name)) {
        problems.push_back(std::move(p));
      }
    }
  }
  // The same schema reached from several operations is reported once.
  std::sort(problems.begin(), problems.end());
  problems.erase(std::unique(problems.begin(), problems.end()), problems.end());
  return problems;
}

std::vector<std::string> Document::checkContent(const json& content, const std::string& where,
                                                 const std::string& content_type,
                                                 const std::string& body,
                                                 bool check_body) const {
  const auto [type, params] = splitContentType(content_type);
  const json* media = nullptr;
  std::vector<std::string> documented;
  for (const auto& [key, value] : content.items()) {
    documented.push_back(key);
    const auto [key_type, key_params] = splitContentType(key);
    // A documented type with parameters must match them too; one without matches any.
    if (key_type == type && (key_params.empty() || key_params == params)) media = &value;
  }
  if (media == nullptr) {
    return {where + ": content type \"" + content_type + "\" is not documented; documented: " +
            absl::StrJoin(documented, ", ")};
  }
  if (!isJsonMediaType(type)) {
    if (media->contains("schema") && media->at("schema").value("type", "") != "string") {
      return {where + ": only a string schema fits the non-JSON type " + type};
    }
    return {};
  }
  if (!check_body) return {};
  json value = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    return {where + ": the body is not valid JSON: " + body.substr(0, 200)};
  }
  std::vector<std::string> errors = validator().validate(media->at("schema"), value);
  for (std::string& error : errors) error = where + " body " + error;
  return errors;
}

std::vector<std::string> Document::checkResponse(const Operation& operation, int status,
                                                 const std::string& content_type,
                                                 const std::string& body,
                                                 bool check_body) const {
  const std::string where = absl::StrCat(operation.method, " ", operation.path, " ", status);
  const json& responses = operationNode(operation)["responses"];
  const std::string key = std::to_string(status);
  if (!responses.contains(key)) {
    std::vector<std::string> listed;
    for (const auto& [code, unused] : responses.items()) listed.push_back(code);
    return {where + ": status " + key + " is not documented; documented: " +
            absl::StrJoin(listed, ", ")};
  }
  const json* response = validator().resolve(responses[key]);
  if (response == nullptr) return {where + ": the response $ref does not resolve"};
  if (!response->contains("content")) {
    if (body.empty() || !check_body) return {};
    return {where + ": the document gives no content, but the body has " +
            std::to_string(body.size()) + " bytes"};
  }
  return checkContent((*response)["content"], where, content_type, check_body ? body : "",
                      check_body);
}

std::vector<std::string> Document::checkRequestBody(const Operation& operation,
                                                    const std::string& content_type,
                                                    const std::string& body) const {
  const std::string where = operation.method + " " + operation.path + " request";
  const json& node = operationNode(operation);
  if (!node.contains("requestBody")) {
    if (body.empty()) return {};
    return {where + ": the operation documents no request body"};
  }
  const json* request_body = validator().resolve(node["requestBody"]);
  if (request_body == nullptr || !request_body->contains("content")) {
    return {where + ": requestBody has no content"};
  }
  return checkContent((*request_body)["content"], where, content_type, body, true);
}

std::vector<std::string> Document::checkQuery(
    const Operation& operation,
    const std::vector<std::pair<std::string, std::string>>& query) const {
  const std::string where = operation.method + " " + operation.path + " query";
  std::vector<std::string> errors;
  const std::vector<const json*> declared = parameters(operation);
  SchemaValidator schemas = validator();
  for (const auto& [name, text] : query) {
    const json* parameter = nullptr;
    for (const json* candidate : declared) {
      if (candidate->value("in", "") == "query" && candidate->value("name", "") == name) {
        parameter = candidate;
      }
    }
    if (parameter == nullptr) {
      errors.push_back(where + ": parameter " + name + " is not documented");
      continue;
    }
    const json* schema = schemas.resolve(parameter->at("schema"));
    const std::string type = schema != nullptr ? schema->value("type", "") : "";
    json value = text;
    if (type == "integer" || type == "number" || type == "boolean") {
      value = json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (value.is_discarded()) value = text;
    }
    for (std::string& error : schemas.validate(parameter->at("schema"), value)) {
      errors.push_back(where + " " + name + " " + error);
    }
  }
  return errors;
}

}  // namespace vigil::openapi

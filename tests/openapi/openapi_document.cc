#include "tests/openapi/openapi_document.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
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

const std::set<std::string>& httpMethods() {
  static const std::set<std::string> methods = {"get",     "put",  "post",  "delete",
                                                "options", "head", "patch", "trace"};
  return methods;
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
      for (const auto& entry : node)
        out[entry.first.as<std::string>()] = yamlNodeToJson(entry.second);
      return out;
    }
  }
  return nullptr;
}

// Splits a content type into its lower-case media type and its parameters, as written.
std::pair<std::string, std::string> splitContentType(const std::string& content_type) {
  size_t semicolon = content_type.find(';');
  std::string type(absl::StripAsciiWhitespace(content_type.substr(0, semicolon)));
  std::string params =
      semicolon == std::string::npos
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
  const std::string routed_method = method == "HEAD" ? "GET" : method;
  const std::vector<std::string> segments = absl::StrSplit(path, '/', absl::SkipEmpty());
  std::optional<Operation> best;
  int best_literals = -1;
  for (const Operation& operation : operations()) {
    if (operation.method != routed_method) continue;
    const std::vector<std::string> pattern = absl::StrSplit(operation.path, '/', absl::SkipEmpty());
    if (pattern.size() != segments.size()) continue;
    int literals = 0;
    bool match = true;
    for (size_t i = 0; i < pattern.size() && match; ++i) {
      const bool is_param =
          pattern[i].size() > 2 && pattern[i].front() == '{' && pattern[i].back() == '}';
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
        for (std::string& p :
             schemas.checkSchema((*parameter)["schema"], where + " parameter " + name)) {
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
                                                const std::string& body, bool check_body) const {
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
    return {where + ": content type \"" + content_type +
            "\" is not documented; documented: " + absl::StrJoin(documented, ", ")};
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
                                                 const std::string& body, bool check_body) const {
  const std::string where = absl::StrCat(operation.method, " ", operation.path, " ", status);
  const json& responses = operationNode(operation)["responses"];
  const std::string key = std::to_string(status);
  if (!responses.contains(key)) {
    std::vector<std::string> listed;
    for (const auto& [code, unused] : responses.items()) listed.push_back(code);
    return {where + ": status " + key +
            " is not documented; documented: " + absl::StrJoin(listed, ", ")};
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
  // OpenAPI 3.0 makes a request body optional unless it says required: true.
  if (body.empty() && content_type.empty() && !request_body->value("required", false)) return {};
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

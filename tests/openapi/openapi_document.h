// An OpenAPI 3.0 document loaded for tests. The contract tests check real API responses
// with it, and the fuzz target uses it to tell documented statuses from undocumented ones.
// Schemas are checked by SchemaValidator (schema_validator.h).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "tests/openapi/schema_validator.h"

namespace vigil::openapi {

// Converts YAML text to JSON. Plain scalars become null, booleans, integers or floats as
// in the YAML 1.2 core schema; quoted scalars stay strings. InvalidArgument names the line
// of a syntax error.
absl::StatusOr<nlohmann::json> yamlToJson(const std::string& text);

// One operation of the document: "GET" and "/api/v1/cases/{id}".
struct Operation {
  std::string method;  // upper case
  std::string path;    // the path template as written under `paths`
};

class Document {
 public:
  // Loads and parses the YAML file at `path`. NotFound when it cannot be read.
  static absl::StatusOr<Document> load(const std::string& path);
  static absl::StatusOr<Document> parse(const std::string& yaml_text);

  const nlohmann::json& root() const { return *root_; }
  SchemaValidator validator() const { return SchemaValidator(*root_); }

  // Returns every operation, in document order of paths and methods.
  std::vector<Operation> operations() const;

  // Returns the operation whose template matches the concrete `path` for `method`
  // (HEAD matches GET). A template segment "{name}" matches one non-empty segment;
  // templates with more literal segments win.
  std::optional<Operation> findOperation(const std::string& method, const std::string& path) const;

  // Returns the operation's object (under paths/<path>/<method>).
  const nlohmann::json& operationNode(const Operation& operation) const;

  // Returns the problems of the document's structure: version, operations without
  // operationId or responses, duplicate operationIds, path parameters that are not
  // declared, responses without a description, and every problem checkSchema() finds in
  // the schemas it uses. Empty when the document is usable.
  std::vector<std::string> lint() const;

  // Checks a response to `operation`: `status` must be listed, `content_type` must match a
  // documented media type, and a JSON body must conform to that media type's schema.
  // Returns the violations; empty when the response matches. Pass check_body false for
  // a response to HEAD, which has the headers of GET but no body.
  std::vector<std::string> checkResponse(const Operation& operation, int status,
                                         const std::string& content_type, const std::string& body,
                                         bool check_body = true) const;

  // Checks a body sent to `operation` against its requestBody, as checkResponse does. An
  // empty body without a content type passes when the requestBody is not required.
  std::vector<std::string> checkRequestBody(const Operation& operation,
                                            const std::string& content_type,
                                            const std::string& body) const;

  // Checks query parameters sent to `operation`: each must be declared "in: query", and
  // its value must conform to the parameter's schema (integers and booleans are parsed
  // from the text first).
  std::vector<std::string> checkQuery(
      const Operation& operation,
      const std::vector<std::pair<std::string, std::string>>& query) const;

 private:
  explicit Document(std::shared_ptr<const nlohmann::json> root) : root_(std::move(root)) {}

  std::vector<std::string> checkContent(const nlohmann::json& content, const std::string& where,
                                        const std::string& content_type, const std::string& body,
                                        bool check_body) const;
  std::vector<const nlohmann::json*> parameters(const Operation& operation) const;

  std::shared_ptr<const nlohmann::json> root_;
};

}  // namespace vigil::openapi

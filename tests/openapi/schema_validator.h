// A validator for the JSON Schema subset that docs/openapi.yaml uses (OpenAPI 3.0 schema
// objects).
//
// Supported schema keywords:
//   $ref (a JSON pointer inside the document), type, nullable, properties, required,
//   additionalProperties (true, false or a schema), items, minItems, maxItems, enum,
//   oneOf, anyOf, allOf, format, minimum, maximum, exclusiveMinimum, exclusiveMaximum,
//   minLength, maxLength (in code points) and pattern (ECMAScript).
// An integer accepts only numbers without a fraction or exponent. The formats date-time,
// int32 and int64 are checked, and checkSchema() rejects any other format. Annotations
// such as description and default are ignored. checkSchema() reports any other keyword,
// so the document cannot rely on a rule that the validator would skip.
#pragma once

#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace vigil::openapi {

// Validates JSON values against schemas that live in `root` (the whole document), so
// "$ref": "#/components/schemas/X" resolves. `root` must outlive the validator.
class SchemaValidator {
 public:
  explicit SchemaValidator(const nlohmann::json& root) : root_(root) {}

  // Returns every violation as "<JSON pointer of the value>: <what is wrong>"; empty when
  // `value` conforms to `schema`.
  std::vector<std::string> validate(const nlohmann::json& schema,
                                    const nlohmann::json& value) const;

  // Returns the problems of `schema` itself: unsupported keywords or formats, malformed
  // keyword values and $refs that do not resolve. `where` prefixes each message.
  std::vector<std::string> checkSchema(const nlohmann::json& schema,
                                       const std::string& where) const;

  // Follows "$ref" chains from `node`; returns nullptr when a reference does not resolve.
  const nlohmann::json* resolve(const nlohmann::json& node) const;

 private:
  void validateAt(const nlohmann::json& schema, const nlohmann::json& value,
                  const std::string& pointer, int depth, std::vector<std::string>& errors) const;
  void validateObject(const nlohmann::json& schema, const nlohmann::json& value,
                      const std::string& pointer, int depth,
                      std::vector<std::string>& errors) const;
  void validateCombinators(const nlohmann::json& schema, const nlohmann::json& value,
                           const std::string& pointer, int depth,
                           std::vector<std::string>& errors) const;
  void checkSchemaAt(const nlohmann::json& schema, const std::string& where,
                     std::vector<const nlohmann::json*>& visited,
                     std::vector<std::string>& problems) const;

  const nlohmann::json& root_;
};

// Escapes one JSON pointer reference token (RFC 6901): "~" to "~0" and "/" to "~1".
std::string escapePointer(const std::string& token);

// Returns `value` as compact JSON, cut to 80 characters, for messages.
std::string shortText(const nlohmann::json& value);

}  // namespace vigil::openapi

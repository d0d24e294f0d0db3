// Tests of the OpenAPI schema validator itself: each keyword accepts conforming values and
// rejects the rest, so a contract test that passes means the responses conform.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "tests/openapi/openapi_document.h"

namespace vigil::openapi {
namespace {

using nlohmann::json;

class SchemaValidatorTest : public ::testing::Test {
 protected:
  // Validates `value` against `schema` inside a document whose components/schemas are
  // `components`.
  std::vector<std::string> check(const json& schema, const json& value) {
    root_ = {{"components", {{"schemas", components_}}}};
    return SchemaValidator(root_).validate(schema, value);
  }
  bool ok(const json& schema, const json& value) { return check(schema, value).empty(); }

  json components_ = json::object();
  json root_;
};

TEST_F(SchemaValidatorTest, TypeIntegerRejectsFractions) {
  const json integer = {{"type", "integer"}};
  EXPECT_TRUE(ok(integer, 5));
  EXPECT_TRUE(ok(integer, -5));
  EXPECT_FALSE(ok(integer, 5.5));
  EXPECT_FALSE(ok(integer, json::parse("5.0")));
  EXPECT_FALSE(ok(integer, "5"));
  EXPECT_FALSE(ok(integer, true));
}

TEST_F(SchemaValidatorTest, TypeNumberAcceptsIntegers) {
  const json number = {{"type", "number"}};
  EXPECT_TRUE(ok(number, 5));
  EXPECT_TRUE(ok(number, 5.5));
  EXPECT_FALSE(ok(number, "5.5"));
}

TEST_F(SchemaValidatorTest, OtherTypes) {
  EXPECT_TRUE(ok({{"type", "string"}}, "x"));
  EXPECT_FALSE(ok({{"type", "string"}}, 1));
  EXPECT_TRUE(ok({{"type", "boolean"}}, false));
  EXPECT_FALSE(ok({{"type", "boolean"}}, 0));
  EXPECT_TRUE(ok({{"type", "array"}, {"items", {{"type", "string"}}}}, json::array()));
  EXPECT_FALSE(ok({{"type", "array"}, {"items", {{"type", "string"}}}}, json::object()));
  EXPECT_TRUE(ok({{"type", "object"}}, json::object()));
  EXPECT_FALSE(ok({{"type", "object"}}, json::array()));
}

TEST_F(SchemaValidatorTest, NullNeedsNullable) {
  EXPECT_FALSE(ok({{"type", "string"}}, nullptr));
  EXPECT_TRUE(ok({{"type", "string"}, {"nullable", true}}, nullptr));
  EXPECT_FALSE(ok({{"type", "string"}, {"nullable", false}}, nullptr));
  EXPECT_FALSE(ok({{"type", "string"}, {"nullable", true}}, 3));
}

TEST_F(SchemaValidatorTest, RequiredAndAdditionalProperties) {
  const json closed = {
      {"type", "object"},
      {"required", {"id"}},
      {"additionalProperties", false},
      {"properties", {{"id", {{"type", "integer"}}}, {"name", {{"type", "string"}}}}}};
  EXPECT_TRUE(ok(closed, {{"id", 1}}));
  EXPECT_TRUE(ok(closed, {{"id", 1}, {"name", "a"}}));
  std::vector<std::string> missing = check(closed, {{"name", "a"}});
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_EQ(missing[0], "/: required property \"id\" is missing");
  std::vector<std::string> extra = check(closed, {{"id", 1}, {"nmae", "a"}});
  ASSERT_EQ(extra.size(), 1u);
  EXPECT_EQ(extra[0], "/nmae: property \"nmae\" is not in the schema, which allows no others");
  std::vector<std::string> wrong = check(closed, {{"id", "1"}});
  ASSERT_EQ(wrong.size(), 1u);
  EXPECT_EQ(wrong[0], "/id: expected integer, got string \"1\"");

  // Without additionalProperties, unknown members are allowed.
  EXPECT_TRUE(ok({{"type", "object"}}, {{"anything", 1}}));
  // A schema for additional members checks each of them.
  const json map = {{"type", "object"}, {"additionalProperties", {{"type", "string"}}}};
  EXPECT_TRUE(ok(map, {{"a", "x"}, {"b", "y"}}));
  EXPECT_FALSE(ok(map, {{"a", "x"}, {"b", 2}}));
}

TEST_F(SchemaValidatorTest, ItemsAreCheckedWithTheirIndex) {
  const json list = {{"type", "array"}, {"items", {{"type", "integer"}}}, {"maxItems", 3}};
  EXPECT_TRUE(ok(list, {1, 2, 3}));
  std::vector<std::string> errors = check(list, {1, "two", 3});
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "/1: expected integer, got string \"two\"");
  EXPECT_FALSE(ok(list, {1, 2, 3, 4}));
  EXPECT_FALSE(
      ok({{"type", "array"}, {"items", {{"type", "integer"}}}, {"minItems", 1}}, json::array()));
}

TEST_F(SchemaValidatorTest, EnumMatchesExactly) {
  const json status = {{"type", "string"}, {"enum", {"new", "closed"}}};
  EXPECT_TRUE(ok(status, "new"));
  EXPECT_FALSE(ok(status, "New"));
  EXPECT_FALSE(ok(status, "open"));
}

TEST_F(SchemaValidatorTest, RefResolvesInsideTheDocument) {
  components_["Id"] = {{"type", "integer"}, {"minimum", 1}};
  components_["Alias"] = {{"$ref", "#/components/schemas/Id"}};
  EXPECT_TRUE(ok({{"$ref", "#/components/schemas/Alias"}}, 4));
  EXPECT_FALSE(ok({{"$ref", "#/components/schemas/Alias"}}, 0));
  std::vector<std::string> errors = check({{"$ref", "#/components/schemas/Missing"}}, 4);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("does not resolve"), std::string::npos) << errors[0];
  EXPECT_FALSE(ok({{"$ref", "other.yaml#/Id"}}, 4));
}

TEST_F(SchemaValidatorTest, RefCycleIsReportedNotFollowedForever) {
  components_["Loop"] = {{"type", "object"},
                         {"required", {"next"}},
                         {"properties", {{"next", {{"$ref", "#/components/schemas/Loop"}}}}}};
  json value = json::object();
  for (int i = 0; i < 100; ++i) value = {{"next", value}};
  EXPECT_FALSE(ok({{"$ref", "#/components/schemas/Loop"}}, value));
}

TEST_F(SchemaValidatorTest, OneOfNeedsExactlyOneMatch) {
  const json either = {{"oneOf", {{{"type", "string"}}, {{"type", "object"}}}}};
  EXPECT_TRUE(ok(either, "x"));
  EXPECT_TRUE(ok(either, json::object()));
  EXPECT_FALSE(ok(either, 3));
  const json overlapping = {{"oneOf", {{{"type", "number"}}, {{"type", "integer"}}}}};
  EXPECT_TRUE(ok(overlapping, 1.5));
  std::vector<std::string> both = check(overlapping, 2);
  ASSERT_EQ(both.size(), 1u);
  EXPECT_EQ(both[0], "/: matches 2 oneOf branches; exactly one must match");
}

TEST_F(SchemaValidatorTest, AnyOfAndAllOf) {
  const json any = {{"anyOf", {{{"type", "number"}}, {{"type", "integer"}}}}};
  EXPECT_TRUE(ok(any, 2));
  EXPECT_FALSE(ok(any, "2"));
  const json all = {{"allOf", {{{"type", "integer"}}, {{"minimum", 10}}}}};
  EXPECT_TRUE(ok(all, 10));
  EXPECT_FALSE(ok(all, 9));
  EXPECT_FALSE(ok(all, 10.5));
}

TEST_F(SchemaValidatorTest, MinimumAndMaximum) {
  const json range = {{"type", "integer"}, {"minimum", 1}, {"maximum", 500}};
  EXPECT_TRUE(ok(range, 1));
  EXPECT_TRUE(ok(range, 500));
  EXPECT_FALSE(ok(range, 0));
  EXPECT_FALSE(ok(range, 501));
  const json exclusive = {{"type", "number"}, {"minimum", 0}, {"exclusiveMinimum", true}};
  EXPECT_FALSE(ok(exclusive, 0));
  EXPECT_TRUE(ok(exclusive, 0.1));
}

TEST_F(SchemaValidatorTest, LengthCountsCodePoints) {
  const json two = {{"type", "string"}, {"minLength", 2}, {"maxLength", 2}};
  EXPECT_TRUE(ok(two, "ab"));
  EXPECT_TRUE(ok(two, "\xC3\xA9\xC3\xA9"));  // two code points, four bytes
  EXPECT_FALSE(ok(two, "a"));
  EXPECT_FALSE(ok(two, "abc"));
  EXPECT_FALSE(ok({{"type", "string"}, {"minLength", 1}}, ""));
}

TEST_F(SchemaValidatorTest, PatternSearchesTheString) {
  const json hex = {{"type", "string"}, {"pattern", "^[0-9a-f]+$"}};
  EXPECT_TRUE(ok(hex, "00ff"));
  EXPECT_FALSE(ok(hex, "00FF"));
}

TEST_F(SchemaValidatorTest, DateTimeFormat) {
  const json time = {{"type", "string"}, {"format", "date-time"}};
  EXPECT_TRUE(ok(time, "2026-01-01T00:00:02Z"));
  EXPECT_TRUE(ok(time, "2026-01-01T10:00:01.250000000Z"));
  EXPECT_TRUE(ok(time, "2026-01-01T10:00:01+02:00"));
  EXPECT_FALSE(ok(time, "2026-01-01 10:00:01Z"));
  EXPECT_FALSE(ok(time, "2026-13-01T10:00:01Z"));
  EXPECT_FALSE(ok(time, "2026-01-01T10:00:01"));
  EXPECT_FALSE(ok(time, "1767225600"));
}

TEST_F(SchemaValidatorTest, Int32Format) {
  const json small = {{"type", "integer"}, {"format", "int32"}};
  EXPECT_TRUE(ok(small, 2147483647));
  EXPECT_FALSE(ok(small, 2147483648LL));
}

TEST_F(SchemaValidatorTest, MessagesNameTheNestedPointer) {
  components_["Inner"] = {
      {"type", "object"},
      {"properties", {{"a/b", {{"type", "array"}, {"items", {{"type", "string"}}}}}}}};
  std::vector<std::string> errors = check(
      {{"type", "object"}, {"properties", {{"outer", {{"$ref", "#/components/schemas/Inner"}}}}}},
      {{"outer", {{"a/b", {"x", 7}}}}});
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "/outer/a~1b/1: expected string, got integer 7");
}

TEST_F(SchemaValidatorTest, CheckSchemaRejectsUnsupportedKeywords) {
  json root = {{"components", {{"schemas", json::object()}}}};
  SchemaValidator validator(root);
  EXPECT_TRUE(validator.checkSchema({{"type", "string"}, {"description", "x"}, {"x-note", 1}}, "s")
                  .empty());
  std::vector<std::string> problems =
      validator.checkSchema({{"type", "object"}, {"unevaluatedProperties", false}}, "s");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0], "s: keyword \"unevaluatedProperties\" is not supported by the validator");
  EXPECT_EQ(validator.checkSchema({{"type", "int"}}, "s").size(), 1u);
  EXPECT_TRUE(validator.checkSchema({{"type", "string"}, {"minLength", 1}}, "s").empty());
  EXPECT_EQ(validator.checkSchema({{"type", "string"}, {"minLength", -1}}, "s").size(), 1u);
  EXPECT_EQ(validator.checkSchema({{"type", "string"}, {"maxLength", 1.5}}, "s").size(), 1u);
  EXPECT_EQ(validator.checkSchema({{"type", "string"}, {"format", "uuid"}}, "s").size(), 1u);
  EXPECT_EQ(validator.checkSchema({{"type", "array"}}, "s").size(), 1u);
  EXPECT_EQ(validator.checkSchema({{"$ref", "#/components/schemas/Nope"}}, "s").size(), 1u);
  EXPECT_EQ(validator.checkSchema({{"enum", json::array()}}, "s").size(), 1u);
  EXPECT_EQ(validator.checkSchema({{"type", "string"}, {"pattern", "("}}, "s").size(), 1u);
  EXPECT_EQ(
      validator
          .checkSchema({{"type", "object"}, {"additionalProperties", false}, {"required", {"id"}}},
                       "s")
          .size(),
      1u);
  // Problems deep inside are found too.
  json misspelled_type = {{"type", "strin"}};
  json one_of = {{"oneOf", json::array({misspelled_type})}};
  json nested = {{"type", "object"}, {"properties", {{"a", one_of}}}};
  EXPECT_EQ(validator.checkSchema(nested, "s").size(), 1u);
}

TEST(YamlToJsonTest, TypesPlainScalarsOnly) {
  absl::StatusOr<json> parsed = yamlToJson(
      "a: 1\nb: '1'\nc: true\nd: 'true'\ne: 1.5\nf: ~\ng: text\nh: [1, x]\ni: -3\n"
      "j: '200'\nk: 1e3\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ((*parsed)["a"], json(1));
  EXPECT_EQ((*parsed)["b"], json("1"));
  EXPECT_EQ((*parsed)["c"], json(true));
  EXPECT_EQ((*parsed)["d"], json("true"));
  EXPECT_EQ((*parsed)["e"], json(1.5));
  EXPECT_TRUE((*parsed)["f"].is_null());
  EXPECT_EQ((*parsed)["g"], json("text"));
  EXPECT_EQ((*parsed)["h"], json({1, "x"}));
  EXPECT_EQ((*parsed)["i"], json(-3));
  EXPECT_EQ((*parsed)["j"], json("200"));
  EXPECT_EQ((*parsed)["k"], json(1000.0));

  absl::StatusOr<json> broken = yamlToJson("a: [1, 2\n");
  EXPECT_FALSE(broken.ok());
}

// A small document with one operation, to test the Document checks without the real one.
constexpr char kSmallDocument[] = R"(openapi: 3.0.3
info: {title: t, version: '1'}
paths:
  /things/{id}:
    get:
      operationId: getThing
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer, minimum: 1}}
        - {name: verbose, in: query, schema: {type: boolean}}
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Thing'}
        '404':
          $ref: '#/components/responses/NotFound'
  /things/special:
    get:
      operationId: getSpecial
      responses:
        '204': {description: nothing}
components:
  responses:
    NotFound:
      description: not found
      content:
        application/json:
          schema: {type: object, required: [error], properties: {error: {type: string}}}
  schemas:
    Thing:
      type: object
      additionalProperties: false
      required: [id]
      properties:
        id: {type: integer}
)";

TEST(OpenApiDocumentTest, FindsOperationsPreferringLiterals) {
  absl::StatusOr<Document> doc = Document::parse(kSmallDocument);
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_TRUE(doc->lint().empty()) << absl::StrJoin(doc->lint(), "\n");
  ASSERT_EQ(doc->operations().size(), 2u);
  std::optional<Operation> thing = doc->findOperation("GET", "/things/7");
  ASSERT_TRUE(thing.has_value());
  EXPECT_EQ(thing->path, "/things/{id}");
  std::optional<Operation> special = doc->findOperation("HEAD", "/things/special");
  ASSERT_TRUE(special.has_value());
  EXPECT_EQ(special->path, "/things/special");
  EXPECT_FALSE(doc->findOperation("POST", "/things/7").has_value());
  EXPECT_FALSE(doc->findOperation("GET", "/things").has_value());
  EXPECT_FALSE(doc->findOperation("GET", "/things/7/more").has_value());
}

TEST(OpenApiDocumentTest, CheckResponse) {
  absl::StatusOr<Document> doc = Document::parse(kSmallDocument);
  ASSERT_TRUE(doc.ok()) << doc.status();
  const Operation thing{"GET", "/things/{id}"};
  EXPECT_TRUE(doc->checkResponse(thing, 200, "application/json", R"({"id":1})").empty());
  // An undocumented status, a wrong content type, invalid JSON and a wrong body all fail.
  EXPECT_EQ(doc->checkResponse(thing, 500, "application/json", R"({"id":1})").size(), 1u);
  EXPECT_EQ(doc->checkResponse(thing, 200, "text/plain", R"({"id":1})").size(), 1u);
  EXPECT_EQ(doc->checkResponse(thing, 200, "application/json", R"({"id":1)").size(), 1u);
  EXPECT_EQ(doc->checkResponse(thing, 200, "application/json", R"({"id":"1"})").size(), 1u);
  EXPECT_EQ(doc->checkResponse(thing, 200, "application/json", R"({"id":1,"x":2})").size(), 1u);
  // Parameters on the content type are allowed when the document names none.
  EXPECT_TRUE(
      doc->checkResponse(thing, 200, "application/json; charset=utf-8", R"({"id":1})").empty());
  // A response to HEAD is checked for status and content type only.
  EXPECT_TRUE(doc->checkResponse(thing, 200, "application/json", "", false).empty());
  EXPECT_EQ(doc->checkResponse(thing, 201, "application/json", "", false).size(), 1u);
  EXPECT_EQ(doc->checkResponse(thing, 200, "text/html", "", false).size(), 1u);
  // A $ref'd response is followed.
  EXPECT_TRUE(doc->checkResponse(thing, 404, "application/json", R"({"error":"x"})").empty());
  EXPECT_EQ(doc->checkResponse(thing, 404, "application/json", R"({})").size(), 1u);
  // A response without content must have an empty body.
  const Operation special{"GET", "/things/special"};
  EXPECT_TRUE(doc->checkResponse(special, 204, "", "").empty());
  EXPECT_EQ(doc->checkResponse(special, 204, "text/plain", "x").size(), 1u);
}

TEST(OpenApiDocumentTest, CheckQuery) {
  absl::StatusOr<Document> doc = Document::parse(kSmallDocument);
  ASSERT_TRUE(doc.ok()) << doc.status();
  const Operation thing{"GET", "/things/{id}"};
  EXPECT_TRUE(doc->checkQuery(thing, {{"verbose", "true"}}).empty());
  EXPECT_EQ(doc->checkQuery(thing, {{"verbose", "yes"}}).size(), 1u);
  EXPECT_EQ(doc->checkQuery(thing, {{"verbos", "true"}}).size(), 1u);
  // A path parameter is not a query parameter.
  EXPECT_EQ(doc->checkQuery(thing, {{"id", "1"}}).size(), 1u);
}

TEST(OpenApiDocumentTest, LintFindsStructuralMistakes) {
  std::string broken = kSmallDocument;
  // Drop the path parameter declaration and the operationId of the second operation.
  broken.replace(broken.find("        - {name: id, in: path"),
                 std::string("        - {name: id, in: path, required: true, schema: {type: "
                             "integer, minimum: 1}}\n")
                     .size(),
                 "");
  broken.replace(broken.find("      operationId: getSpecial\n"),
                 std::string("      operationId: getSpecial\n").size(), "");
  broken.replace(broken.find("'204': {description: nothing}"),
                 std::string("'204': {description: nothing}").size(), "default: {description: x}");
  absl::StatusOr<Document> doc = Document::parse(broken);
  ASSERT_TRUE(doc.ok()) << doc.status();
  std::vector<std::string> problems = doc->lint();
  const std::string all = absl::StrJoin(problems, "\n");
  EXPECT_NE(all.find("GET /things/{id}: {id} has no path parameter"), std::string::npos) << all;
  EXPECT_NE(all.find("GET /things/special: operationId is missing"), std::string::npos) << all;
  EXPECT_NE(all.find("GET /things/special default: list each status code"), std::string::npos)
      << all;
  EXPECT_EQ(problems.size(), 3u) << all;
}

TEST(OpenApiDocumentTest, ParseRejectsDocumentWithoutPaths) {
  EXPECT_FALSE(Document::parse("openapi: 3.0.3\n").ok());
  EXPECT_FALSE(Document::parse("- a\n- b\n").ok());
}

}  // namespace
}  // namespace vigil::openapi

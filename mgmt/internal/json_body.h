// Reads a JSON request body field by field, with errors that name the field, the bad value
// and the expected type. Unknown fields are rejected up front, so a typo never goes unseen.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace vigil::mgmt::internal {

// Returns `value` as compact JSON, cut to 60 bytes plus "..." so an error message that
// quotes it stays readable.
std::string quoteJson(const nlohmann::json& value);

// Returns InvalidArgument when the request body `body` nests arrays and objects deeper
// than kMaxJsonDepth (common/json_depth.h). Call it before parsing a body: a parsed value
// of any depth can be built, but dumping or copying it recurses once per level.
absl::Status checkBodyNesting(absl::string_view body);

class JsonBody {
 public:
  // Parses `body` as one JSON object whose keys are all in `allowed`. InvalidArgument for
  // malformed JSON (with the byte offset), a non-object, or an unknown key (listing the
  // accepted ones).
  static absl::StatusOr<JsonBody> parse(absl::string_view body,
                                        std::initializer_list<const char*> allowed);

  bool has(const char* name) const { return object_.contains(name); }

  // Each reader leaves `out` unset when the field is absent and fails with
  // InvalidArgument when it has another type. null counts as absent.
  absl::Status readString(const char* name, std::optional<std::string>& out) const;
  absl::Status readStringList(const char* name, std::optional<std::vector<std::string>>& out) const;
  absl::Status readInt(const char* name, std::optional<int64_t>& out) const;

  // Like readString, but InvalidArgument when the field is absent.
  absl::Status requireString(const char* name, std::string& out) const;

 private:
  explicit JsonBody(nlohmann::json object) : object_(std::move(object)) {}

  absl::Status wrongType(const char* name, const char* expected) const;

  nlohmann::json object_;
};

}  // namespace vigil::mgmt::internal

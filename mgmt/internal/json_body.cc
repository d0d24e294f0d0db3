#include "mgmt/internal/json_body.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/json_depth.h"

namespace vigil::mgmt::internal {
namespace {

constexpr size_t kQuotedValueBytes = 60;

}  // namespace

absl::Status checkBodyNesting(absl::string_view body) {
  if (!jsonNestsDeeper(std::string_view(body.data(), body.size()))) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("request body nests arrays and objects deeper than ", kMaxJsonDepth,
                   " levels; send a flatter JSON document"));
}

std::string quoteJson(const nlohmann::json& value) {
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > kQuotedValueBytes) text = text.substr(0, kQuotedValueBytes) + "...";
  return text;
}

absl::StatusOr<JsonBody> JsonBody::parse(absl::string_view body,
                                         std::initializer_list<const char*> allowed) {
  if (absl::Status nesting = checkBodyNesting(body); !nesting.ok()) return nesting;
  nlohmann::json parsed;
  try {
    parsed = nlohmann::json::parse(body.begin(), body.end());
  } catch (const nlohmann::json::parse_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("request body is not valid JSON at byte ", e.byte, "; send one JSON object"));
  }
  if (!parsed.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("request body is a JSON ", parsed.type_name(), "; send one JSON object"));
  }
  for (const auto& [key, value] : parsed.items()) {
    bool known = false;
    for (const char* name : allowed) known = known || key == name;
    if (!known) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown field ", key.substr(0, 60),
                       "; accepted fields: ", absl::StrJoin(allowed, ", ")));
    }
  }
  return JsonBody(std::move(parsed));
}

absl::Status JsonBody::wrongType(const char* name, const char* expected) const {
  return absl::InvalidArgumentError(
      absl::StrCat("field ", name, " is ", quoteJson(object_[name]), "; it must be ", expected));
}

absl::Status JsonBody::readString(const char* name, std::optional<std::string>& out) const {
  out.reset();
  if (!has(name) || object_[name].is_null()) return absl::OkStatus();
  if (!object_[name].is_string()) return wrongType(name, "a string");
  out = object_[name].get<std::string>();
  return absl::OkStatus();
}

absl::Status JsonBody::readStringList(const char* name,
                                      std::optional<std::vector<std::string>>& out) const {
  out.reset();
  if (!has(name) || object_[name].is_null()) return absl::OkStatus();
  const nlohmann::json& value = object_[name];
  if (!value.is_array()) return wrongType(name, "an array of strings");
  std::vector<std::string> items;
  for (const nlohmann::json& item : value) {
    if (!item.is_string()) return wrongType(name, "an array of strings");
    items.push_back(item.get<std::string>());
  }
  out = std::move(items);
  return absl::OkStatus();
}

absl::Status JsonBody::readInt(const char* name, std::optional<int64_t>& out) const {
  out.reset();
  if (!has(name) || object_[name].is_null()) return absl::OkStatus();
  const nlohmann::json& value = object_[name];
  if (!value.is_number_integer()) return wrongType(name, "an integer");
  if (value.is_number_unsigned() && value.get<uint64_t>() > INT64_MAX) {
    return wrongType(name, "an integer below 2^63");
  }
  out = value.get<int64_t>();
  return absl::OkStatus();
}

absl::Status JsonBody::requireString(const char* name, std::string& out) const {
  std::optional<std::string> value;
  if (absl::Status s = readString(name, value); !s.ok()) return s;
  if (!value) {
    return absl::InvalidArgumentError(absl::StrCat("field ", name, " is missing; it is required"));
  }
  out = *std::move(value);
  return absl::OkStatus();
}

}  // namespace vigil::mgmt::internal

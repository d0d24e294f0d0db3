#include "mgmt/internal/list_query.h"

#include <iterator>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace vigil::mgmt::internal {

absl::StatusOr<std::optional<std::string>> singleQueryParam(const ApiRequest& request,
                                                            absl::string_view name) {
  auto [first, last] = request.query.equal_range(std::string(name));
  if (first == last) return std::optional<std::string>();
  if (std::next(first) != last) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " is given ", std::distance(first, last), " times; give it once"));
  }
  return std::optional<std::string>(first->second);
}

absl::Status checkQueryParams(const ApiRequest& request, const std::vector<std::string>& known) {
  for (const auto& [name, value] : request.query) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown query parameter ", name, "; use ", absl::StrJoin(known, ", ")));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> parseBoundedInteger(absl::string_view name, absl::string_view text,
                                            int64_t min, int64_t max) {
  const std::string range = max == std::numeric_limits<int64_t>::max()
                                ? absl::StrCat(min, " or more")
                                : absl::StrCat(min, "..", max);
  // absl::SimpleAtoi() also takes surrounding spaces and a '+', which a query value
  // should not have.
  const absl::string_view digits = absl::StartsWith(text, "-") ? text.substr(1) : text;
  const bool well_formed =
      !digits.empty() && std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit);
  if (!well_formed) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, "=", text, " is not an integer; use ", range));
  }
  int64_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < min || value > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, "=", text, " is out of range; use ", range));
  }
  return value;
}

absl::StatusOr<int64_t> parsePathId(absl::string_view what, absl::string_view text,
                                    absl::string_view hint) {
  absl::StatusOr<int64_t> id =
      parseBoundedInteger("id", text, 1, std::numeric_limits<int64_t>::max());
  if (id.ok()) return id;
  const bool digits = !text.empty() && std::all_of(text.begin(), text.end(), absl::ascii_isdigit);
  return absl::InvalidArgumentError(absl::StrCat(
      what, " id ", text, digits ? " is out of range" : " is not a positive integer", hint));
}

absl::Status emptyTenantError() {
  return absl::InvalidArgumentError(
      "tenant= is empty; name a tenant, or leave the parameter out for every tenant you may "
      "read");
}

absl::StatusOr<PageParams> parsePageParams(const std::optional<std::string>& limit,
                                           const std::optional<std::string>& offset,
                                           int max_limit) {
  PageParams page;
  page.limit = std::min(page.limit, max_limit);
  if (limit) {
    absl::StatusOr<int64_t> value = parseBoundedInteger("limit", *limit, 1, max_limit);
    if (!value.ok()) return value.status();
    page.limit = static_cast<int>(*value);
  }
  if (offset) {
    absl::StatusOr<int64_t> value =
        parseBoundedInteger("offset", *offset, 0, std::numeric_limits<int64_t>::max());
    if (!value.ok()) return value.status();
    page.offset = *value;
  }
  return page;
}

absl::StatusOr<size_t> parseSortParam(absl::string_view value,
                                      const std::vector<absl::string_view>& names) {
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == value) return i;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("sort=", value, " is not valid; use one of ", absl::StrJoin(names, ", ")));
}

}  // namespace vigil::mgmt::internal

#include "mgmt/internal/list_query.h"

#include <iterator>

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

absl::StatusOr<PageParams> parsePageParams(const std::optional<std::string>& limit,
                                           const std::optional<std::string>& offset,
                                           int max_limit) {
  PageParams page;
  page.limit = std::min(page.limit, max_limit);
  if (limit) {
    const std::string range = absl::StrCat("1..", max_limit);
    if (!absl::SimpleAtoi(*limit, &page.limit)) {
      return absl::InvalidArgumentError(
          absl::StrCat("limit=", *limit, " is not an integer; use ", range));
    }
    if (page.limit < 1 || page.limit > max_limit) {
      return absl::InvalidArgumentError(
          absl::StrCat("limit=", *limit, " is out of range; use ", range));
    }
  }
  if (offset) {
    if (!absl::SimpleAtoi(*offset, &page.offset) || page.offset < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("offset=", *offset, " is not a non-negative integer; use 0 or more"));
    }
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

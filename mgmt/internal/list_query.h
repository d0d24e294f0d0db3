// Query parameters shared by the list endpoints: limit, offset and sort, checked and
// reported the way GET /api/v1/cases does ("limit=0 is out of range; use 1..500").
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "mgmt/api_server.h"

namespace vigil::mgmt::internal {

// Page size bounds of every list endpoint.
inline constexpr int kDefaultListLimit = 50;
inline constexpr int kMaxListLimit = 500;

// Returns the single value of query parameter `name`, or nullopt when it is absent.
// InvalidArgument when the parameter is given more than once.
absl::StatusOr<std::optional<std::string>> singleQueryParam(const ApiRequest& request,
                                                            absl::string_view name);

// Rejects a query parameter that is not in `known`, naming it and the accepted ones.
absl::Status checkQueryParams(const ApiRequest& request, const std::vector<std::string>& known);

// Parses `text` as a decimal integer in [min, max]: digits with an optional leading '-'.
// InvalidArgument "NAME=TEXT is not an integer; use RANGE" for other text (spaces and '+'
// included) and "NAME=TEXT is out of range; use RANGE" past the bounds, where RANGE is
// "min..max", or "min or more" when max is INT64_MAX.
absl::StatusOr<int64_t> parseBoundedInteger(absl::string_view name, absl::string_view text,
                                            int64_t min, int64_t max);

// Parses the id `text` of a path such as /api/v1/cases/{id}: a decimal integer from 1 on.
// InvalidArgument "WHAT id TEXT is not a positive integer" or "... is out of range", each
// followed by `hint` (such as "; use an id from /api/v1/cases").
absl::StatusOr<int64_t> parsePathId(absl::string_view what, absl::string_view text,
                                    absl::string_view hint);

// InvalidArgument for a `tenant=` query parameter with an empty value, which case lists
// and case metrics reject alike rather than read as "no tenant" or "every tenant".
absl::Status emptyTenantError();

// Parses limit (1..max_limit) and offset (0 or more); absent values keep the defaults.
struct PageParams {
  int limit = kDefaultListLimit;
  int64_t offset = 0;
};
absl::StatusOr<PageParams> parsePageParams(const std::optional<std::string>& limit,
                                           const std::optional<std::string>& offset,
                                           int max_limit = kMaxListLimit);

// Returns the index of `value` in `names`, or InvalidArgument
// "sort=X is not valid; use one of a, -a, ...".
absl::StatusOr<size_t> parseSortParam(absl::string_view value,
                                      const std::vector<absl::string_view>& names);

// Keeps items [offset, offset + limit) of an already sorted and filtered list.
template <typename T>
void keepPage(std::vector<T>& items, const PageParams& page) {
  const size_t begin = std::min(items.size(), static_cast<size_t>(page.offset));
  const size_t end = std::min(items.size(), begin + static_cast<size_t>(page.limit));
  items.erase(items.begin() + static_cast<std::ptrdiff_t>(end), items.end());
  items.erase(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(begin));
}

}  // namespace vigil::mgmt::internal

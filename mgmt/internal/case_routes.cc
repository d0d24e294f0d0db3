#include "mgmt/internal/case_routes.h"

#include <array>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "mgmt/internal/case_json.h"

namespace vigil::mgmt::internal {
namespace {

constexpr std::array<absl::string_view, 6> kListParams = {"tenant", "status", "severity",
                                                          "limit",  "offset", "sort"};

// Returns the single value of query parameter `name`, or nullopt when absent.
absl::StatusOr<std::optional<std::string>> singleParam(const ApiRequest& request,
                                                       absl::string_view name) {
  auto [first, last] = request.query.equal_range(std::string(name));
  if (first == last) return std::optional<std::string>();
  if (std::next(first) != last) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " is given ", std::distance(first, last), " times; give it once"));
  }
  return std::optional<std::string>(first->second);
}

absl::Status checkKnownParams(const ApiRequest& request) {
  for (const auto& [name, value] : request.query) {
    bool known = false;
    for (absl::string_view allowed : kListParams) known = known || name == allowed;
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat("unknown query parameter ", name, "; use ",
                                                     absl::StrJoin(kListParams, ", ")));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CaseFilter> parseCaseQuery(const ApiRequest& request) {
  if (absl::Status s = checkKnownParams(request); !s.ok()) return s;
  CaseFilter filter;
  std::array<std::optional<std::string>, kListParams.size()> values;
  for (size_t i = 0; i < kListParams.size(); ++i) {
    absl::StatusOr<std::optional<std::string>> value = singleParam(request, kListParams[i]);
    if (!value.ok()) return value.status();
    values[i] = *std::move(value);
  }
  const auto& [tenant, status, severity, limit, offset, sort] = values;

  filter.tenant = tenant;
  if (status) {
    absl::StatusOr<CaseStatus> parsed = parseCaseStatus(*status);
    if (!parsed.ok()) return parsed.status();
    filter.status = *parsed;
  }
  if (severity) {
    absl::StatusOr<Severity> parsed = parseSeverity(*severity);
    if (!parsed.ok()) return parsed.status();
    filter.severity = *parsed;
  }
  if (limit) {
    const std::string range = absl::StrCat("1..", CaseFilter::kMaxLimit);
    if (!absl::SimpleAtoi(*limit, &filter.limit)) {
      return absl::InvalidArgumentError(
          absl::StrCat("limit=", *limit, " is not an integer; use ", range));
    }
    if (filter.limit < 1 || filter.limit > CaseFilter::kMaxLimit) {
      return absl::InvalidArgumentError(
          absl::StrCat("limit=", *limit, " is out of range; use ", range));
    }
  }
  if (offset) {
    if (!absl::SimpleAtoi(*offset, &filter.offset) || filter.offset < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("offset=", *offset, " is not a non-negative integer; use 0 or more"));
    }
  }
  if (sort) {
    absl::StatusOr<CaseSort> parsed = parseCaseSort(*sort);
    if (!parsed.ok()) return parsed.status();
    filter.sort = *parsed;
  }
  return filter;
}

absl::StatusOr<ApiResponse> listCasesHandler(CaseStore& store, const ApiRequest& request) {
  absl::StatusOr<CaseFilter> filter = parseCaseQuery(request);
  if (!filter.ok()) return filter.status();
  // Tenant scoping happens in the query, so totals and pages never count other tenants.
  if (!request.principal.allTenants()) filter->tenant_scope = request.principal.tenants;
  absl::StatusOr<CasePage> page = store.listCases(*filter);
  if (!page.ok()) return page.status();

  nlohmann::json items = nlohmann::json::array();
  for (const Case& c : page->items) items.push_back(caseToJson(c));
  nlohmann::json body = {
      {"items", std::move(items)},
      {"total", page->total},
      {"limit", filter->limit},
      {"offset", filter->offset},
  };
  ApiResponse response;
  response.body = dumpJson(body);
  return response;
}

absl::StatusOr<ApiResponse> getCaseHandler(CaseStore& store, const ApiRequest& request) {
  if (!request.query.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown query parameter ", request.query.begin()->first, "; this endpoint takes none"));
  }
  const std::string id_text = request.pathParam("id");
  int64_t id = 0;
  if (!absl::SimpleAtoi(id_text, &id) || id < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "case id ", id_text, " is not a positive integer; use an id from /api/v1/cases"));
  }
  absl::StatusOr<CaseDetail> detail = store.getCase(id);
  if (!detail.ok()) return detail.status();
  // Another tenant's case answers exactly like a missing one, so ids do not leak.
  if (!request.principal.canRead(detail->info.tenant)) {
    return absl::NotFoundError(absl::StrCat("case ", id, " not found"));
  }
  ApiResponse response;
  response.body = dumpJson(caseDetailToJson(*detail));
  return response;
}

}  // namespace vigil::mgmt::internal

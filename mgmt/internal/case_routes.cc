#include "mgmt/internal/case_routes.h"

#include <array>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/time.h"
#include "mgmt/internal/case_access.h"
#include "mgmt/internal/case_json.h"
#include "mgmt/internal/list_query.h"

namespace vigil::mgmt::internal {
namespace {

constexpr std::array<absl::string_view, 13> kListParams = {
    "tenant",      "status",       "severity",   "assignee", "tag",    "q",   "detected_from",
    "detected_to", "updated_from", "updated_to", "limit",    "offset", "sort"};

absl::StatusOr<std::optional<int64_t>> parseTimeParam(absl::string_view name,
                                                      const std::optional<std::string>& value) {
  if (!value) return std::optional<int64_t>();
  std::optional<int64_t> ns = parseRfc3339(*value);
  if (!ns) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, "=", *value, " is not an RFC 3339 time; use e.g. 2026-01-31T00:00:00Z"));
  }
  return ns;
}

// The tenants a principal may read, for SQL; nullopt for administrators (all tenants).
std::optional<std::vector<std::string>> readableTenants(const Principal& principal) {
  if (principal.allTenants()) return std::nullopt;
  return principal.tenants;
}

}  // namespace

absl::StatusOr<CaseFilter> parseCaseQuery(const ApiRequest& request) {
  if (absl::Status s = checkQueryParams(request, {kListParams.begin(), kListParams.end()}); !s.ok()) return s;
  CaseFilter filter;
  filter.allowed_tenants = readableTenants(request.principal);
  std::array<std::optional<std::string>, kListParams.size()> values;
  for (size_t i = 0; i < kListParams.size(); ++i) {
    absl::StatusOr<std::optional<std::string>> value = singleQueryParam(request, kListParams[i]);
    if (!value.ok()) return value.status();
    values[i] = *std::move(value);
  }
  const auto& [tenant, status, severity, assignee, tag, text, detected_from, detected_to,
               updated_from, updated_to, limit, offset, sort] = values;

  if (tenant && tenant->empty()) return emptyTenantError();
  filter.tenant = tenant;
  filter.assignee = assignee;
  filter.tag = tag;
  filter.text = text;
  const std::array<std::pair<const std::optional<std::string>*, std::optional<int64_t>*>, 4> times =
      {{{&detected_from, &filter.detected_from_ns},
        {&detected_to, &filter.detected_to_ns},
        {&updated_from, &filter.updated_from_ns},
        {&updated_to, &filter.updated_to_ns}}};
  const std::array<absl::string_view, 4> time_names = {"detected_from", "detected_to",
                                                       "updated_from", "updated_to"};
  for (size_t i = 0; i < times.size(); ++i) {
    absl::StatusOr<std::optional<int64_t>> parsed = parseTimeParam(time_names[i], *times[i].first);
    if (!parsed.ok()) return parsed.status();
    *times[i].second = *parsed;
  }
  // An empty range is a mistake in the request, as GET /api/v1/metrics/cases reports it.
  for (size_t i = 0; i < times.size(); i += 2) {
    const std::optional<int64_t>& from = *times[i].second;
    const std::optional<int64_t>& to = *times[i + 1].second;
    if (from && to && *from > *to) {
      return absl::InvalidArgumentError(absl::StrCat(time_names[i + 1], "=", **times[i + 1].first,
                                                     " is earlier than ", time_names[i], "=",
                                                     **times[i].first, "; swap the two values"));
    }
  }
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
  absl::StatusOr<PageParams> page = parsePageParams(limit, offset, CaseFilter::kMaxLimit);
  if (!page.ok()) return page.status();
  if (limit) filter.limit = page->limit;
  if (offset) filter.offset = page->offset;
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
  absl::StatusOr<CasePage> page = store.listCases(*filter);
  if (!page.ok()) return page.status();

  nlohmann::json items = nlohmann::json::array();
  const int64_t now_ns = store.nowNs();
  for (const Case& c : page->items) items.push_back(caseToJson(c, store.sla(), now_ns));
  nlohmann::json body = {
      {"items", std::move(items)},
      {"total", page->total},
      {"limit", filter->limit},
      {"offset", filter->offset},
  };
  return jsonResponse(body);
}

absl::StatusOr<ApiResponse> getCaseHandler(CaseStore& store, const ApiRequest& request) {
  if (absl::Status s = checkNoQuery(request); !s.ok()) return s;
  absl::StatusOr<int64_t> id = authorizeCase(store, request, Access::kRead);
  if (!id.ok()) return id.status();
  absl::StatusOr<CaseDetail> detail = store.getCase(*id);
  if (!detail.ok()) return detail.status();
  return jsonResponse(caseDetailToJson(*detail, store.sla(), store.nowNs()));
}

}  // namespace vigil::mgmt::internal

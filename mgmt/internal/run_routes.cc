#include "mgmt/internal/run_routes.h"

#include <array>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/time.h"
#include "mgmt/internal/case_json.h"
#include "mgmt/internal/json_body.h"
#include "mgmt/internal/list_query.h"

namespace vigil::mgmt {
namespace internal {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxCommentBytes = 4096;

// API names of RunSort values, in enum order.
const std::vector<absl::string_view> kRunSortNames = {"id",      "-id",     "created",
                                                      "-created", "updated", "-updated"};

json timeOrNull(int64_t ns) { return ns == 0 ? json(nullptr) : json(formatRfc3339(ns)); }

absl::StatusOr<int64_t> runId(const ApiRequest& request) {
  return parsePathId("run", request.pathParam("id"), "; use an id from /api/v1/runs");
}

absl::Status noQuery(const ApiRequest& request) {
  if (request.query.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown query parameter ", request.query.begin()->first, "; this endpoint takes none"));
}

ApiResponse jsonResponse(const json& body, int status = 200) {
  ApiResponse response;
  response.status = status;
  response.body = dumpJson(body);
  return response;
}

}  // namespace

json runToJson(const RunRecord& run, bool with_detail) {
  json j = {{"id", run.id},
            {"playbook", run.playbook},
            {"playbook_hash", run.playbook_hash},
            {"tenant", run.tenant},
            {"alert_id", run.alert_id},
            {"rule_id", run.rule_id},
            {"state", std::string(runStateName(run.state))},
            {"created", timeOrNull(run.created_ns)},
            {"updated", timeOrNull(run.updated_ns)},
            {"finished", timeOrNull(run.finished_ns)},
            {"wake_at", timeOrNull(run.wake_ns)},
            {"prompt", run.prompt},
            {"decision", run.decision},
            {"approver", run.approver},
            {"comment", run.comment},
            {"decided", timeOrNull(run.decided_ns)},
            {"result", run.result},
            {"error", run.error},
            {"vm_steps", run.vm_steps}};
  if (with_detail) {
    json alert = json::parse(run.alert_json, nullptr, false);
    j["alert"] = alert.is_discarded() ? json(nullptr) : alert;
    json steps = json::array();
    for (const RunStep& s : run.steps) {
      json detail = s.detail.empty() ? json(nullptr) : json::parse(s.detail, nullptr, false);
      if (detail.is_discarded()) detail = s.detail;
      steps.push_back({{"seq", s.seq},
                       {"kind", s.kind},
                       {"name", s.name},
                       {"detail", detail},
                       {"outcome", s.outcome},
                       {"message", s.message},
                       {"started", timeOrNull(s.started_ns)},
                       {"duration_ms", static_cast<double>(s.duration_ns) / 1e6}});
    }
    j["steps"] = std::move(steps);
  }
  return j;
}

absl::StatusOr<RunFilter> parseRunQuery(const ApiRequest& request, const Principal& principal,
                                        std::optional<RunState> fixed_state) {
  std::set<std::string> known = {"tenant", "playbook", "limit", "offset", "sort"};
  if (!fixed_state) known.insert("state");
  RunFilter filter;
  std::set<std::string> seen;
  for (const auto& [name, value] : request.query) {
    if (!known.count(name)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown query parameter ", name, "; use ",
                                                     absl::StrJoin(known, ", ")));
    }
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat(name, " is given more than once; give it once"));
    }
    if (name == "state") {
      absl::StatusOr<RunState> state = parseRunState(value);
      if (!state.ok()) return state.status();
      filter.state = *state;
    } else if (name == "tenant") {
      filter.tenant = value;
    } else if (name == "playbook") {
      filter.playbook = value;
    } else if (name == "limit") {
      absl::StatusOr<PageParams> page =
          parsePageParams(value, std::nullopt, RunFilter::kMaxLimit);
      if (!page.ok()) return page.status();
      filter.limit = page->limit;
    } else if (name == "sort") {
      absl::StatusOr<size_t> sort = parseSortParam(value, kRunSortNames);
      if (!sort.ok()) return sort.status();
      filter.sort = static_cast<RunSort>(*sort);
    } else if (name == "offset") {
      absl::StatusOr<PageParams> page = parsePageParams(std::nullopt, value);
      if (!page.ok()) return page.status();
      filter.offset = page->offset;
    }
  }
  if (fixed_state) filter.state = *fixed_state;
  if (!principal.allTenants()) filter.allowed_tenants = principal.tenants;
  return filter;
}

absl::StatusOr<ApiResponse> listRunsHandler(RunStore& store, const ApiRequest& request,
                                            const Principal& principal,
                                            std::optional<RunState> fixed_state) {
  absl::StatusOr<RunFilter> filter = parseRunQuery(request, principal, fixed_state);
  if (!filter.ok()) return filter.status();
  absl::StatusOr<RunPage> page = store.list(*filter);
  if (!page.ok()) return page.status();
  json items = json::array();
  for (const RunRecord& run : page->items) items.push_back(runToJson(run, false));
  return jsonResponse({{"items", std::move(items)},
                       {"total", page->total},
                       {"limit", filter->limit},
                       {"offset", filter->offset}});
}

absl::StatusOr<ApiResponse> getRunHandler(RunStore& store, const ApiRequest& request,
                                          const Principal& principal) {
  if (absl::Status st = noQuery(request); !st.ok()) return st;
  absl::StatusOr<int64_t> id = runId(request);
  if (!id.ok()) return id.status();
  absl::StatusOr<RunRecord> run = store.get(*id);
  if (!run.ok()) return run.status();
  if (!principal.canRead(run->tenant)) {
    return absl::NotFoundError(
        absl::StrCat("run ", *id, " does not exist; list runs with GET /api/v1/runs"));
  }
  return jsonResponse(runToJson(*run, true));
}

absl::StatusOr<ApiResponse> decideRunHandler(PlaybookRunner& runner, const ApiRequest& request,
                                             const Principal& principal, bool approve) {
  if (absl::Status st = noQuery(request); !st.ok()) return st;
  absl::StatusOr<int64_t> id = runId(request);
  if (!id.ok()) return id.status();
  std::string comment;
  if (!request.body.empty()) {
    if (absl::Status nesting = checkBodyNesting(request.body); !nesting.ok()) return nesting;
    json body = json::parse(request.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      return absl::InvalidArgumentError(
          "the body is not a JSON object; send {\"comment\": \"...\"} or no body");
    }
    for (const auto& [key, value] : body.items()) {
      if (key != "comment") {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown field ", key, " in the body; the only field is comment"));
      }
      if (!value.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat("field comment is ", quoteJson(value), "; it must be a string"));
      }
      comment = value.get<std::string>();
    }
    if (comment.size() > kMaxCommentBytes) {
      return absl::InvalidArgumentError(absl::StrCat("comment has ", comment.size(),
                                                     " bytes; at most ", kMaxCommentBytes));
    }
  }
  absl::StatusOr<RunRecord> run = runner.decide(*id, approve, principal, comment);
  if (!run.ok()) return run.status();
  ApiResponse response = jsonResponse(runToJson(*run, false));
  response.audit_tenants = {run->tenant};
  return response;
}

}  // namespace internal

void PlaybookRunner::addRoutes(ApiServer& api, bool trust_unauthenticated) {
  // Until an authentication layer fills ApiRequest::principal, a daemon that trusts
  // unauthenticated requests serves them as a local administrator.
  auto principalOf = [trust_unauthenticated](const ApiRequest& request) {
    if (request.principal.authenticated() || !trust_unauthenticated) return request.principal;
    Principal local;
    local.subject = "local";
    local.role = Role::kAdmin;
    local.remote_addr = request.principal.remote_addr;
    return local;
  };
  auto unavailable = [this]() -> absl::Status {
    return store_ == nullptr ? absl::UnavailableError("the playbook runner is not started")
                             : absl::OkStatus();
  };
  api.addRoute("GET", "/api/v1/runs", [=, this](const ApiRequest& r) -> absl::StatusOr<ApiResponse> {
    if (absl::Status st = unavailable(); !st.ok()) return st;
    return internal::listRunsHandler(*store_, r, principalOf(r), std::nullopt);
  });
  api.addRoute("GET", "/api/v1/approvals",
               [=, this](const ApiRequest& r) -> absl::StatusOr<ApiResponse> {
                 if (absl::Status st = unavailable(); !st.ok()) return st;
                 return internal::listRunsHandler(*store_, r, principalOf(r),
                                                  RunState::kWaitingApproval);
               });
  api.addRoute("GET", "/api/v1/runs/{id}",
               [=, this](const ApiRequest& r) -> absl::StatusOr<ApiResponse> {
                 if (absl::Status st = unavailable(); !st.ok()) return st;
                 return internal::getRunHandler(*store_, r, principalOf(r));
               });
  // A failed decision names the run's tenant in its audit record too, when the principal
  // may read the run. The record of a denied probe keeps the prober's tenants.
  auto decide = [=, this](const ApiRequest& r, bool approve) -> absl::StatusOr<ApiResponse> {
    const Principal principal = principalOf(r);
    absl::StatusOr<ApiResponse> result = internal::decideRunHandler(*this, r, principal, approve);
    if (result.ok() || store_ == nullptr) return result;
    ApiResponse response = errorResponse(result.status());
    int64_t id = 0;
    if (!absl::SimpleAtoi(r.pathParam("id"), &id) || id < 1) return response;
    absl::StatusOr<RunRecord> run = store_->get(id);
    if (run.ok() && principal.canRead(run->tenant)) response.audit_tenants = {run->tenant};
    return response;
  };
  api.addRoute("POST", "/api/v1/runs/{id}/approve",
               [decide](const ApiRequest& r) { return decide(r, true); });
  api.addRoute("POST", "/api/v1/runs/{id}/deny",
               [decide](const ApiRequest& r) { return decide(r, false); });
}

}  // namespace vigil::mgmt

// Handlers that change cases (create, update, tasks, notes, evidence files, merge) and the
// read-only timeline, evidence download and metrics endpoints; the route table at the end.
#include <algorithm>
#include <array>
#include <functional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/time.h"
#include "mgmt/case_metrics.h"
#include "mgmt/internal/api_errors.h"
#include "mgmt/internal/case_access.h"
#include "mgmt/internal/case_json.h"
#include "mgmt/internal/case_routes.h"
#include "mgmt/internal/json_body.h"
#include "mgmt/internal/list_query.h"

namespace vigil::mgmt::internal {
namespace {

// Reads "severity", "status", "resolution" style enum fields through their parsers.
template <typename Enum, typename Parser>
absl::Status readEnum(const JsonBody& body, const char* name, Parser parse,
                      std::optional<Enum>& out) {
  std::optional<std::string> text;
  if (absl::Status s = body.readString(name, text); !s.ok()) return s;
  if (!text) return absl::OkStatus();
  absl::StatusOr<Enum> parsed = parse(*text);
  if (!parsed.ok()) return parsed.status();
  out = *parsed;
  return absl::OkStatus();
}

// Turns the store's size error into 413, the status clients expect for a large body.
absl::StatusOr<ApiResponse> tooLarge(const absl::Status& status) {
  return errorResponse(413, "payload_too_large", status.message());
}

bool isSha256Hex(absl::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// A file name safe to put in a quoted Content-Disposition value.
std::string dispositionName(absl::string_view name) {
  std::string out;
  for (char c : name) {
    auto byte = static_cast<unsigned char>(c);
    out.push_back(byte < 0x20 || byte >= 0x7f || c == '"' || c == '\\' || c == '/' ? '_' : c);
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Cases

absl::StatusOr<ApiResponse> createCaseHandler(CaseStore& store, AuthStore* tenants,
                                              const ApiRequest& request) {
  if (absl::Status s = checkNoQuery(request); !s.ok()) return s;
  absl::StatusOr<JsonBody> body = JsonBody::parse(
      request.body, {"title", "description", "severity", "tenant", "assignee", "tags"});
  if (!body.ok()) return body.status();
  NewCase fields;
  std::optional<std::string> description;
  std::optional<std::string> assignee;
  std::optional<std::vector<std::string>> tags;
  std::optional<Severity> severity;
  for (absl::Status s :
       {body->requireString("title", fields.title), body->requireString("tenant", fields.tenant),
        body->readString("description", description), body->readString("assignee", assignee),
        body->readStringList("tags", tags),
        readEnum<Severity>(*body, "severity", parseSeverity, severity)}) {
    if (!s.ok()) return s;
  }
  fields.description = description.value_or("");
  fields.assignee = assignee.value_or("");
  fields.tags = tags.value_or(std::vector<std::string>{});
  fields.severity = severity.value_or(Severity::kMedium);
  if (absl::Status s = checkCanWork(request.principal, fields.tenant); !s.ok()) return s;
  // A case of a tenant that does not exist could only be reached by admins, and would keep
  // a tenant created later with that name from being deleted. Checked after the role, so
  // that only callers who may open the case learn which tenants exist.
  if (absl::Status s = tenants != nullptr ? tenants->checkTenant(fields.tenant)
                                          : validateTenantName(fields.tenant);
      !s.ok()) {
    return s;
  }

  absl::StatusOr<Case> created = store.createCase(fields, actorOf(request.principal));
  if (!created.ok()) return created.status();
  VIGIL_LOG_INFO("case created case={} tenant={} actor={}", created->id, created->tenant,
                 logText(actorOf(request.principal).name));
  ApiResponse response = jsonResponse(caseToJson(*created, store.sla(), store.nowNs()), 201);
  response.headers.emplace_back("Location", absl::StrCat("/api/v1/cases/", created->id));
  response.audit_target = absl::StrCat("id=", created->id);
  response.audit_tenants = {created->tenant};
  return response;
}

absl::StatusOr<ApiResponse> updateCaseHandler(CaseStore& store, const ApiRequest& request) {
  if (absl::Status s = checkNoQuery(request); !s.ok()) return s;
  absl::StatusOr<JsonBody> body =
      JsonBody::parse(request.body, {"title", "description", "severity", "status", "resolution",
                                     "resolution_note", "assignee", "tags"});
  if (!body.ok()) return body.status();
  CaseUpdate update;
  for (absl::Status s :
       {body->readString("title", update.title),
        body->readString("description", update.description),
        body->readString("resolution_note", update.resolution_note),
        body->readString("assignee", update.assignee), body->readStringList("tags", update.tags),
        readEnum<Severity>(*body, "severity", parseSeverity, update.severity),
        readEnum<CaseStatus>(*body, "status", parseCaseStatus, update.status),
        readEnum<Resolution>(*body, "resolution", parseResolution, update.resolution)}) {
    if (!s.ok()) return s;
  }
  absl::StatusOr<int64_t> id = authorizeCase(store, request, Access::kWork);
  if (!id.ok()) return id.status();
  absl::StatusOr<Case> updated = store.updateCase(*id, update, actorOf(request.principal));
  if (!updated.ok()) return updated.status();
  return jsonResponse(caseToJson(*updated, store.sla(), store.nowNs()));
}

// ---------------------------------------------------------------------------------------
// Tasks and notes

absl::StatusOr<ApiResponse> addTaskHandler(CaseStore& store, const ApiRequest& request) {
  if (absl::Status s = checkNoQuery(request); !s.ok()) return s;
  absl::StatusOr<JsonBody> body = JsonBody::parse(request.body, {"title", "assignee"});
  if (!body.ok()) return body.status();
  std::string title;
  std::optional<std::string> assignee;
  if (absl::Status s = body->requireString("title", title); !s.ok()) return s;
  if (absl::Status s = body->readString("assignee", assignee); !s.ok()) return s;
  absl::StatusOr<int64_t> id = authorizeCase(store, request, Access::kWork);
  if (!id.ok()) return id.status();
  absl::StatusOr<CaseTask> task =
      store.addTask(*id, title, assignee.value_or(""), actorOf(request.principal));
  if (!task.ok()) return task.status();
  return jsonResponse(taskToJson(*task), 201);
}

absl::StatusOr<ApiResponse> updateTaskHandler(CaseStore& store, const ApiRequest& request) {
  if (absl::Status s = checkNoQuery(request); !s.ok()) return s;
  absl::StatusOr<JsonBody> body = JsonBody::parse(request.body, {"title", "assignee", "status"});
  if (!body.ok()) return body.status();
  TaskUpdate update;
  for (absl::Status s :
       {body->readString("title", update.title), body->readString("assignee", update.assignee),
        readEnum<TaskStatus>(*body, "status", parseTaskStatus, update.status)}) {
    if (!s.ok()) return s;
  }
  absl::StatusOr<int64_t> task_id = idParam(request, "task", "task");
  if (!task_id.ok()) return task_id.status();
  absl::StatusOr<int64_t> id = authorizeCase(store, request, Access::kWork);
  if (!id.ok()) return id.status();
  absl::StatusOr<CaseTask> task =
      store.updateTask(*id, *task_id, update, actorOf(request.principal));
  if (!task.ok()) return task.status();
  return jsonResponse(taskToJson(*task));
}

absl::StatusOr<ApiResponse> addNoteHandler(CaseStore& store, const ApiRequest& request) {
  if (absl::Status s = checkNoQuery(request); !s.ok()) return s;
  absl::StatusOr<JsonBody> body = JsonBody::parse(request.body, {"body"});
  if (!body.ok()) return body.status();
  std::string text;
  if (absl::Status s = body->requireString("body", text); !s.ok()) return s;
  absl::StatusOr<int64_t> id = authorizeCase(store, request, Access::kWork);
  if (!id.ok()) return id.status();
  absl::StatusOr<CaseNote> note = store.addNote(*id, text, actorOf(request.principal));
  if (!note.ok()) return note.status();
  return jsonResponse(noteToJson(*note), 201);
}

// ---------------------------------------------------------------------------------------
// Evidence files

absl::StatusOr<ApiResponse> addEvidenceHandler(CaseStore& store, const ApiRequest& request) {
  std::string name;
  std::string content_type;
  std::string decoded;
  absl::string_view bytes;
  const bool is_json =
      absl::StartsWithIgnoreCase(request.header("Content-Type"), "application/json");
  if (is_json) {
    if (absl::Status s = checkNoQuery(request); !s.ok()) return s;
    absl::StatusOr<JsonBody> body =
        JsonBody::parse(request.body, {"name", "content_base64", "content_type"});
    if (!body.ok()) return body.status();
    std::string encoded;
    std::optional<std::string> type;
    for (absl::Status s :
         {body->requireString("name", name), body->requireString("content_base64", encoded),
          body->readString("content_type", type)}) {
      if (!s.ok()) return s;
    }
    if (!absl::Base64Unescape(encoded, &decoded)) {
      return absl::InvalidArgumentError(
          "field content_base64 is not valid base64; encode the file with standard base64");
    }
    content_type = type.value_or("");
    bytes = decoded;
  } else {
    for (const auto& [key, value] : request.query) {
      if (key != "name") {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown query parameter ", key, "; use name"));
      }
      name = value;
    }
    if (name.empty()) {
      return absl::InvalidArgumentError(
          "a raw evidence upload needs ?name=FILE; or send JSON {\"name\", \"content_base64\"}");
    }
    content_type = request.header("Content-Type");
    bytes = request.body;
  }
  absl::StatusOr<int64_t> id = authorizeCase(store, request, Access::kWork);
  if (!id.ok()) return id.status();
  bool added = false;
  absl::StatusOr<EvidenceFile> file =
      store.addEvidenceFile(*id, name, content_type, bytes, actorOf(request.principal), &added);
  if (absl::IsResourceExhausted(file.status())) return tooLarge(file.status());
  if (!file.ok()) return file.status();
  return jsonResponse(fileToJson(*file), added ? 201 : 200);
}

absl::StatusOr<ApiResponse> getEvidenceHandler(CaseStore& store, const ApiRequest& request) {
  if (absl::Status s = checkNoQuery(request); !s.ok()) return s;
  const std::string sha256 = request.pathParam("sha256");
  if (!isSha256Hex(sha256)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sha256 ", sha256, " is not 64 lowercase hex digits; use one from the case's files"));
  }
  absl::StatusOr<int64_t> id = authorizeCase(store, request, Access::kRead);
  if (!id.ok()) return id.status();
  EvidenceFile meta;
  absl::StatusOr<std::string> bytes = store.readEvidenceFile(*id, sha256, &meta);
  if (!bytes.ok()) return bytes.status();
  ApiResponse response;
  // Served as opaque bytes whatever the uploader claimed, so a browser never renders
  // uploaded HTML or scripts in the console's origin.
  response.content_type = "application/octet-stream";
  response.body = *std::move(bytes);
  response.headers.emplace_back(
      "Content-Disposition",
      absl::StrCat("attachment; filename=\"", dispositionName(meta.name), "\""));
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  response.headers.emplace_back("X-Vigil-Content-Type", meta.content_type);
  return response;
}

// ---------------------------------------------------------------------------------------
// Timeline, merge, metrics

absl::StatusOr<ApiResponse> timelineHandler(CaseStore& store, const ApiRequest& request) {
  if (absl::Status s = checkNoQuery(request); !s.ok()) return s;
  absl::StatusOr<int64_t> id = authorizeCase(store, request, Access::kRead);
  if (!id.ok()) return id.status();
  absl::StatusOr<std::vector<TimelineEntry>> entries = store.timeline(*id);
  if (!entries.ok()) return entries.status();
  nlohmann::json items = nlohmann::json::array();
  for (const TimelineEntry& entry : *entries) items.push_back(timelineEntryToJson(entry));
  return jsonResponse({{"case_id", *id}, {"items", std::move(items)}});
}

absl::StatusOr<ApiResponse> mergeCaseHandler(CaseStore& store, const ApiRequest& request) {
  if (absl::Status s = checkNoQuery(request); !s.ok()) return s;
  absl::StatusOr<JsonBody> body = JsonBody::parse(request.body, {"into"});
  if (!body.ok()) return body.status();
  std::optional<int64_t> into;
  if (absl::Status s = body->readInt("into", into); !s.ok()) return s;
  if (!into || *into < 1) {
    return absl::InvalidArgumentError(
        "field into is missing or not a positive case id; send {\"into\": TARGET_ID}");
  }
  absl::StatusOr<int64_t> id = authorizeCase(store, request, Access::kWork);
  if (!id.ok()) return id.status();
  // The target gets the same checks as a case in the path.
  ApiRequest target_request;
  target_request.principal = request.principal;
  target_request.path_params["id"] = std::to_string(*into);
  absl::StatusOr<int64_t> target = authorizeCase(store, target_request, Access::kWork);
  if (!target.ok()) return target.status();
  absl::StatusOr<Case> merged = store.mergeCase(*id, *target, actorOf(request.principal));
  if (!merged.ok()) return merged.status();
  VIGIL_LOG_INFO("case merged source={} target={} actor={}", *id, *target,
                 logText(actorOf(request.principal).name));
  ApiResponse response = jsonResponse(caseToJson(*merged, store.sla(), store.nowNs()));
  response.audit_target = absl::StrCat("id=", *id, ",into=", *target);
  // Both cases have this tenant, because a merge across tenants is rejected.
  response.audit_tenants = {merged->tenant};
  return response;
}

absl::StatusOr<ApiResponse> caseMetricsHandler(CaseStore& store, const ApiRequest& request) {
  std::string tenant;
  int64_t from_ns = 0;
  int64_t to_ns = 0;
  for (const auto& [key, value] : request.query) {
    if (key == "tenant") {
      if (value.empty()) return emptyTenantError();
      tenant = value;
    } else if (key == "from" || key == "to") {
      std::optional<int64_t> ns = parseRfc3339(value);
      if (!ns) {
        return absl::InvalidArgumentError(absl::StrCat(
            key, "=", value, " is not an RFC 3339 time; use e.g. 2026-01-31T00:00:00Z"));
      }
      (key == "from" ? from_ns : to_ns) = *ns;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown query parameter ", key, "; use tenant, from, to"));
    }
  }
  if (from_ns != 0 && to_ns != 0 && to_ns <= from_ns) {
    return absl::InvalidArgumentError("to must be later than from");
  }
  std::optional<std::vector<std::string>> allowed;
  if (!request.principal.allTenants()) allowed = request.principal.tenants;
  absl::StatusOr<std::vector<CaseMetricsGroup>> metrics =
      store.caseMetricsBetween(allowed, tenant, from_ns, to_ns);
  if (!metrics.ok()) return metrics.status();
  nlohmann::json groups = nlohmann::json::array();
  for (const CaseMetricsGroup& group : *metrics) groups.push_back(metricsGroupToJson(group));
  auto bound = [](int64_t ns) {
    return ns == 0 ? nlohmann::json(nullptr) : nlohmann::json(formatRfc3339(ns));
  };
  return jsonResponse(
      {{"from", bound(from_ns)},
       {"to", bound(to_ns)},
       {"tenant", tenant.empty() ? nlohmann::json(nullptr) : nlohmann::json(tenant)},
       {"groups", std::move(groups)}});
}

// ---------------------------------------------------------------------------------------
// Route table

namespace {

// Returns the handler's result as a response. When a write to the case in the path left
// the audit tenants empty, as every error does, names the case's tenant in them. The
// tenant is added only when the principal may read it, so the record of a denied probe
// keeps the prober's tenants.
ApiResponse withCaseAudit(CaseStore& store, const ApiRequest& request,
                          absl::StatusOr<ApiResponse> result) {
  ApiResponse response = result.ok() ? *std::move(result) : mgmt::errorResponse(result.status());
  if (request.method == "GET" || !response.audit_tenants.empty()) return response;
  int64_t id = 0;
  if (!absl::SimpleAtoi(request.pathParam("id"), &id) || id < 1) return response;
  absl::StatusOr<std::string> tenant = store.caseTenant(id);
  if (tenant.ok() && request.principal.canRead(*tenant)) response.audit_tenants = {*tenant};
  return response;
}

}  // namespace

void addCaseRoutes(Router& router, CaseStore& store, AuthStore* tenants) {
  using Handler = std::function<absl::StatusOr<ApiResponse>(CaseStore&, const ApiRequest&)>;
  struct Route {
    const char* method;
    const char* pattern;
    Handler handler;
  };
  auto create = [tenants](CaseStore& cases, const ApiRequest& request) {
    return createCaseHandler(cases, tenants, request);
  };
  const std::array<Route, 12> routes = {{
      {"GET", "/api/v1/cases", listCasesHandler},
      {"POST", "/api/v1/cases", create},
      {"GET", "/api/v1/cases/{id}", getCaseHandler},
      {"PATCH", "/api/v1/cases/{id}", updateCaseHandler},
      {"POST", "/api/v1/cases/{id}/tasks", addTaskHandler},
      {"PATCH", "/api/v1/cases/{id}/tasks/{task}", updateTaskHandler},
      {"POST", "/api/v1/cases/{id}/notes", addNoteHandler},
      {"POST", "/api/v1/cases/{id}/evidence", addEvidenceHandler},
      {"GET", "/api/v1/cases/{id}/evidence/{sha256}", getEvidenceHandler},
      {"GET", "/api/v1/cases/{id}/timeline", timelineHandler},
      {"POST", "/api/v1/cases/{id}/merge", mergeCaseHandler},
      {"GET", "/api/v1/metrics/cases", caseMetricsHandler},
  }};
  for (const Route& route : routes) {
    Handler handler = route.handler;
    router.add(route.method, route.pattern,
               [&store, handler](const ApiRequest& request) -> absl::StatusOr<ApiResponse> {
                 return withCaseAudit(store, request, handler(store, request));
               });
  }
}

}  // namespace vigil::mgmt::internal

// The /api/v1/content routes of ContentService: push (with dry runs), deletion, version
// lists, one version, diffs, activation and the activation history. docs/api.md describes the requests and responses.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/time.h"
#include "mgmt/api_server.h"
#include "mgmt/auth_store.h"
#include "mgmt/content_service.h"
#include "mgmt/internal/api_errors.h"
#include "mgmt/internal/json_body.h"
#include "mgmt/internal/list_query.h"

namespace vigil::mgmt {
namespace {

// Returns the single value of query parameter `name`, or "" when absent.
absl::StatusOr<std::string> queryParam(const ApiRequest& request, const std::string& name) {
  auto [first, last] = request.query.equal_range(name);
  if (first == last) return std::string();
  if (std::next(first) != last) {
    return absl::InvalidArgumentError(absl::StrCat("query parameter ", name,
                                                   " is given more than once; give it once"));
  }
  return first->second;
}

absl::Status checkParams(const ApiRequest& request, std::initializer_list<std::string> allowed) {
  for (const auto& [name, value] : request.query) {
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      std::string names;
      for (const std::string& a : allowed) names += (names.empty() ? "" : ", ") + a;
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown query parameter ", name, names.empty() ? "; this route takes none"
                                                          : absl::StrCat("; use ", names)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> versionParam(const ApiRequest& request, const std::string& name,
                                     const std::string& value) {
  int64_t version = 0;
  if (!absl::SimpleAtoi(value, &version) || version < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " '", value, "' is not a version number (1, 2, ...)"));
  }
  (void)request;
  return version;
}

nlohmann::json versionJson(const ContentVersion& v, bool with_files) {
  nlohmann::json j = {{"kind", contentKindName(v.kind)},
                      {"tenant", v.tenant},
                      {"version", v.version},
                      {"author", v.author},
                      {"created", formatRfc3339(v.created_ns)},
                      {"sha256", v.sha256},
                      {"active", v.active},
                      {"file_count", v.files.size()}};
  if (v.activated_ns != 0) {
    j["activated"] = formatRfc3339(v.activated_ns);
    j["activated_by"] = v.activated_by;
  }
  if (with_files) {
    nlohmann::json files = nlohmann::json::object();
    for (const auto& [path, text] : v.files) files[path] = text;
    j["files"] = files;
  } else {
    j.erase("file_count");
  }
  return j;
}

// limit and offset of a list ordered by the integer field `order`, and whether
// sort=ORDER requests oldest first (the default, sort=-ORDER, is newest first).
absl::StatusOr<std::pair<internal::PageParams, bool>> orderedPage(const ApiRequest& request,
                                                                 absl::string_view order) {
  const std::string descending = absl::StrCat("-", order);
  const std::vector<absl::string_view> sort_names = {descending, order};
  absl::StatusOr<std::optional<std::string>> limit = internal::singleQueryParam(request, "limit");
  if (!limit.ok()) return limit.status();
  absl::StatusOr<std::optional<std::string>> offset =
      internal::singleQueryParam(request, "offset");
  if (!offset.ok()) return offset.status();
  absl::StatusOr<std::optional<std::string>> sort = internal::singleQueryParam(request, "sort");
  if (!sort.ok()) return sort.status();
  absl::StatusOr<internal::PageParams> page = internal::parsePageParams(*limit, *offset);
  if (!page.ok()) return page.status();
  bool oldest_first = false;
  if (*sort) {
    absl::StatusOr<size_t> index = internal::parseSortParam(**sort, sort_names);
    if (!index.ok()) return index.status();
    oldest_first = *index == 1;
  }
  return std::make_pair(*page, oldest_first);
}

nlohmann::json activationJson(const ContentActivation& a) {
  return {{"seq", a.seq},
          {"kind", contentKindName(a.kind)},
          {"tenant", a.tenant},
          {"version", a.version},
          {"action", a.action},
          {"activated_by", a.activated_by},
          {"activated", formatRfc3339(a.activated_ns)},
          {"sha256", a.sha256},
          {"previous_version",
           a.previous_version == 0 ? nlohmann::json() : nlohmann::json(a.previous_version)}};
}

// The filters of an activation list: ?version=N, ?action=NAME and ?activated_by=SUBJECT.
struct ActivationFilter {
  int64_t version = 0;  // 0 = any
  std::string action;
  std::string activated_by;

  bool matches(const ContentActivation& a) const {
    return (version == 0 || a.version == version) && (action.empty() || a.action == action) &&
           (activated_by.empty() || a.activated_by == activated_by);
  }
};

absl::StatusOr<ActivationFilter> activationFilter(const ApiRequest& request) {
  static const std::vector<std::string> kActions = {"activate", "rollback", "reactivate",
                                                    "imported"};
  ActivationFilter filter;
  absl::StatusOr<std::optional<std::string>> version =
      internal::singleQueryParam(request, "version");
  if (!version.ok()) return version.status();
  if (*version) {
    absl::StatusOr<int64_t> n = versionParam(request, "version", **version);
    if (!n.ok()) return n.status();
    filter.version = *n;
  }
  absl::StatusOr<std::optional<std::string>> action = internal::singleQueryParam(request, "action");
  if (!action.ok()) return action.status();
  if (*action) {
    if (std::find(kActions.begin(), kActions.end(), **action) == kActions.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "action '", **action, "' is not valid; use activate, rollback, reactivate or imported"));
    }
    filter.action = **action;
  }
  absl::StatusOr<std::optional<std::string>> by =
      internal::singleQueryParam(request, "activated_by");
  if (!by.ok()) return by.status();
  if (*by) filter.activated_by = **by;
  return filter;
}

nlohmann::json problemsJson(const std::vector<ContentProblem>& problems) {
  nlohmann::json out = nlohmann::json::array();
  for (const ContentProblem& p : problems) {
    out.push_back({{"file", p.file}, {"line", p.line}, {"column", p.column},
                   {"message", p.message}});
  }
  return out;
}

ApiResponse jsonResponse(const nlohmann::json& body, int status = 200) {
  ApiResponse response;
  response.status = status;
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

// The push body: {"files": {"path": "text", ...}, "events": [...]}. Unknown members are
// rejected so a misspelt "events" does not silently turn a dry run into nothing.
struct PushBody {
  ContentFiles files;
  nlohmann::json events = nlohmann::json::array();
  bool has_events = false;
};

absl::StatusOr<PushBody> parsePushBody(const std::string& text, size_t max_files) {
  if (absl::Status nesting = internal::checkBodyNesting(text); !nesting.ok()) return nesting;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(
        "the body is not a JSON object; send {\"files\": {\"PATH\": \"TEXT\", ...}}");
  }
  PushBody body;
  for (const auto& [key, value] : j.items()) {
    if (key == "files") continue;
    if (key == "events") {
      if (!value.is_array()) return absl::InvalidArgumentError("\"events\" must be an array");
      body.events = value;
      body.has_events = true;
      continue;
    }
    return absl::InvalidArgumentError(
        absl::StrCat("unknown member \"", key, "\"; the body takes \"files\" and \"events\""));
  }
  auto files = j.find("files");
  if (files == j.end() || !files->is_object() || files->empty()) {
    return absl::InvalidArgumentError(
        "\"files\" must be a non-empty object mapping each file path to its text");
  }
  if (files->size() > max_files) {
    return absl::InvalidArgumentError(
        absl::StrCat("the push has ", files->size(), " files; the maximum is ", max_files));
  }
  for (const auto& [path, value] : files->items()) {
    if (!value.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat("files[\"", path, "\"] must be a string"));
    }
    if (path.empty() || path.front() == '/' || path.find("..") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "file path \"", path, "\" must be relative and must not contain \"..\""));
    }
    body.files.emplace(path, value.get<std::string>());
  }
  return body;
}

}  // namespace

void ContentService::addRoutes(ApiServer& api) {
  addRoutes([&api](const char* method, const char* pattern, ApiHandler handler) {
    api.addRoute(method, pattern, std::move(handler));
  });
}

void ContentService::addRoutes(const RouteAdder& add) {
  // The tenant a request addresses: ?tenant= for tenant-scoped kinds, kAllTenants for
  // the others, and for kinds that also take content for every tenant when ?tenant= is
  // left out or is kAllTenants.
  auto target = [this](const ApiRequest& request)
      -> absl::StatusOr<std::pair<ContentKind, std::string>> {
    absl::StatusOr<ContentKind> kind = parseContentKind(request.pathParam("kind"));
    if (!kind.ok()) return kind.status();
    if (!hasActivator(*kind)) {
      return absl::NotFoundError(absl::StrCat("this vigild has no handler for ",
                                              contentKindName(*kind), " content"));
    }
    absl::StatusOr<std::string> tenant = queryParam(request, "tenant");
    if (!tenant.ok()) return tenant.status();
    // An empty ?tenant= is most likely an unset variable in a script. Read as "every
    // tenant", it would change the content of every tenant, so it is refused.
    if (tenant->empty() && request.query.count("tenant") > 0) {
      return absl::InvalidArgumentError(
          "tenant name '' is invalid; give ?tenant=NAME, or leave tenant out for the content "
          "for every tenant");
    }
    if (!tenantScoped(*kind)) {
      if (!tenant->empty() && *tenant != kAllTenants) {
        return absl::InvalidArgumentError(
            absl::StrCat(contentKindName(*kind), " content applies to every tenant; leave out "
                                                 "tenant (it was '", *tenant, "')"));
      }
      return std::make_pair(*kind, std::string(kAllTenants));
    }
    if (allTenantsScope(*kind) && (tenant->empty() || *tenant == kAllTenants)) {
      return std::make_pair(*kind, std::string(kAllTenants));
    }
    if (tenant->empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          contentKindName(*kind), " content is per tenant; give ?tenant=NAME"));
    }
    if (absl::Status s = validateTenantName(*tenant); !s.ok()) return s;
    return std::make_pair(*kind, *tenant);
  };
  auto author = [](const ApiRequest& request) {
    return request.principal.authenticated() ? request.principal.subject
                                             : std::string("unauthenticated");
  };

  add("POST", "/api/v1/content/{kind}",
               [this, target, author](const ApiRequest& request) -> absl::StatusOr<ApiResponse> {
                 if (auto s = checkParams(request, {"tenant", "dry_run"}); !s.ok()) return s;
                 auto where = target(request);
                 if (!where.ok()) return where.status();
                 auto [kind, tenant] = *where;
                 absl::StatusOr<std::string> dry = queryParam(request, "dry_run");
                 if (!dry.ok()) return dry.status();
                 if (!dry->empty() && *dry != "true" && *dry != "false") {
                   return absl::InvalidArgumentError(
                       absl::StrCat("dry_run '", *dry, "' must be true or false"));
                 }
                 const bool dry_run = *dry == "true";
                 if (auto s = authorize(request.principal, kind, tenant, !dry_run); !s.ok()) {
                   return s;
                 }
                 // After the role check, so that only callers who may push learn which
                 // tenants exist.
                 if (auto s = checkTenantExists(tenant); !s.ok()) return s;
                 absl::StatusOr<PushBody> body = parsePushBody(request.body, options_.max_files);
                 if (!body.ok()) return body.status();
                 if (dry_run) {
                   if (!body->has_events) {
                     return absl::InvalidArgumentError(
                         "a dry run needs \"events\": the sample to run the content on");
                   }
                   auto result = dryRun(kind, tenant, body->files, body->events);
                   if (!result.ok()) return result.status();
                   if (!result->problems.empty()) {
                     nlohmann::json error = {
                         {"error",
                          {{"code", "invalid_content"},
                           {"message", absl::StrCat(result->problems.size(),
                                                    " problems in the content; nothing ran")}}},
                         {"problems", problemsJson(result->problems)}};
                     return jsonResponse(error, 422);
                   }
                   return jsonResponse({{"dry_run", true},
                                        {"kind", contentKindName(kind)},
                                        {"tenant", tenant},
                                        {"result", result->output}});
                 }
                 if (body->has_events) {
                   return absl::InvalidArgumentError(
                       "\"events\" is only for dry runs; add ?dry_run=true or leave it out");
                 }
                 auto result = push(kind, tenant, author(request), body->files);
                 if (!result.ok()) return result.status();
                 if (!result->problems.empty()) {
                   nlohmann::json error = {
                       {"error",
                        {{"code", "invalid_content"},
                         {"message", absl::StrCat(result->problems.size(),
                                                  " problems in the content; nothing changed")}}},
                       {"problems", problemsJson(result->problems)}};
                   return jsonResponse(error, 422);
                 }
                 return jsonResponse(versionJson(*result->version, false), 201);
               });

  add("GET", "/api/v1/content/{kind}/versions",
               [this, target](const ApiRequest& request) -> absl::StatusOr<ApiResponse> {
                 if (auto s = checkParams(request, {"tenant", "limit", "offset", "sort"});
                     !s.ok()) {
                   return s;
                 }
                 auto where = target(request);
                 if (!where.ok()) return where.status();
                 auto [kind, tenant] = *where;
                 if (auto s = authorize(request.principal, kind, tenant, false); !s.ok()) return s;
                 auto page = orderedPage(request, "version");
                 if (!page.ok()) return page.status();
                 auto versions = store_.list(kind, tenant);
                 if (!versions.ok()) return versions.status();
                 // The store lists newest first; sort=version turns that around.
                 if (page->second) std::reverse(versions->begin(), versions->end());
                 const int64_t total = static_cast<int64_t>(versions->size());
                 internal::keepPage(*versions, page->first);
                 nlohmann::json items = nlohmann::json::array();
                 for (const ContentVersion& v : *versions) items.push_back(versionJson(v, false));
                 return jsonResponse({{"kind", contentKindName(kind)},
                                      {"tenant", tenant},
                                      {"versions", items},
                                      {"total", total},
                                      {"limit", page->first.limit},
                                      {"offset", page->first.offset}});
               });

  add("GET", "/api/v1/content/{kind}/activations",
      [this, target](const ApiRequest& request) -> absl::StatusOr<ApiResponse> {
        if (auto s = checkParams(request, {"tenant", "limit", "offset", "sort", "version",
                                           "action", "activated_by"});
            !s.ok()) {
          return s;
        }
        auto where = target(request);
        if (!where.ok()) return where.status();
        auto [kind, tenant] = *where;
        if (auto s = authorize(request.principal, kind, tenant, false); !s.ok()) return s;
        auto page = orderedPage(request, "seq");
        if (!page.ok()) return page.status();
        auto filter = activationFilter(request);
        if (!filter.ok()) return filter.status();
        auto activations = store_.listActivations(kind, tenant);
        if (!activations.ok()) return activations.status();
        std::erase_if(*activations,
                      [&](const ContentActivation& a) { return !filter->matches(a); });
        // The store lists newest first; sort=seq turns that around.
        if (page->second) std::reverse(activations->begin(), activations->end());
        const int64_t total = static_cast<int64_t>(activations->size());
        internal::keepPage(*activations, page->first);
        nlohmann::json items = nlohmann::json::array();
        for (const ContentActivation& a : *activations) items.push_back(activationJson(a));
        return jsonResponse({{"kind", contentKindName(kind)},
                             {"tenant", tenant},
                             {"activations", items},
                             {"total", total},
                             {"limit", page->first.limit},
                             {"offset", page->first.offset}});
      });

  add("GET", "/api/v1/content/{kind}/versions/{n}",
               [this, target](const ApiRequest& request) -> absl::StatusOr<ApiResponse> {
                 if (auto s = checkParams(request, {"tenant"}); !s.ok()) return s;
                 auto where = target(request);
                 if (!where.ok()) return where.status();
                 auto [kind, tenant] = *where;
                 if (auto s = authorize(request.principal, kind, tenant, false); !s.ok()) return s;
                 auto n = versionParam(request, "version", request.pathParam("n"));
                 if (!n.ok()) return n.status();
                 auto v = store_.get(kind, tenant, *n);
                 if (!v.ok()) return v.status();
                 return jsonResponse(versionJson(*v, true));
               });

  add("GET", "/api/v1/content/{kind}/versions/{n}/diff",
               [this, target](const ApiRequest& request) -> absl::StatusOr<ApiResponse> {
                 if (auto s = checkParams(request, {"tenant", "against"}); !s.ok()) return s;
                 auto where = target(request);
                 if (!where.ok()) return where.status();
                 auto [kind, tenant] = *where;
                 if (auto s = authorize(request.principal, kind, tenant, false); !s.ok()) return s;
                 auto n = versionParam(request, "version", request.pathParam("n"));
                 if (!n.ok()) return n.status();
                 absl::StatusOr<std::string> against_text = queryParam(request, "against");
                 if (!against_text.ok()) return against_text.status();
                 int64_t against = *n - 1;
                 if (!against_text->empty()) {
                   auto parsed = versionParam(request, "against", *against_text);
                   if (!parsed.ok()) return parsed.status();
                   against = *parsed;
                 } else if (against < 1) {
                   return absl::InvalidArgumentError(
                       "version 1 has no previous version; give ?against=N");
                 }
                 auto result = diff(kind, tenant, *n, against);
                 if (!result.ok()) return result.status();
                 return jsonResponse(*result);
               });

  // Deletions: a new version without the content (or without one item), activated as a
  // push is.
  auto remove_route = [this, target, author](const ApiRequest& request,
                                             const std::string& item)
      -> absl::StatusOr<ApiResponse> {
    if (auto s = checkParams(request, {"tenant"}); !s.ok()) return s;
    auto where = target(request);
    if (!where.ok()) return where.status();
    auto [kind, tenant] = *where;
    if (auto s = authorize(request.principal, kind, tenant, true); !s.ok()) return s;
    if (auto s = checkTenantExists(tenant); !s.ok()) return s;
    auto result = remove(kind, tenant, author(request), item);
    if (!result.ok()) return result.status();
    if (!result->problems.empty()) {
      nlohmann::json error = {
          {"error",
           {{"code", "invalid_content"},
            {"message", absl::StrCat(result->problems.size(),
                                     " problems with the content left after the deletion; "
                                     "nothing changed")}}},
          {"problems", problemsJson(result->problems)}};
      return jsonResponse(error, 422);
    }
    nlohmann::json body = versionJson(*result->version, false);
    body["deleted"] = item.empty() ? nlohmann::json("all") : nlohmann::json(item);
    ApiResponse response = jsonResponse(body);
    response.audit_target =
        absl::StrCat(contentKindName(kind), " tenant=", tenant, " version=",
                     result->version->version, " deleted=", item.empty() ? "all" : item);
    if (tenant != kAllTenants) response.audit_tenants = {tenant};
    return response;
  };
  add("DELETE", "/api/v1/content/{kind}",
      [remove_route](const ApiRequest& request) { return remove_route(request, ""); });
  add("DELETE", "/api/v1/content/{kind}/items/{id}",
      [remove_route](const ApiRequest& request) -> absl::StatusOr<ApiResponse> {
        const std::string item = request.pathParam("id");
        if (item.empty()) return absl::InvalidArgumentError("the item id is empty");
        return remove_route(request, item);
      });

  add("POST", "/api/v1/content/{kind}/versions/{n}/activate",
               [this, target, author](const ApiRequest& request) -> absl::StatusOr<ApiResponse> {
                 if (auto s = checkParams(request, {"tenant"}); !s.ok()) return s;
                 auto where = target(request);
                 if (!where.ok()) return where.status();
                 auto [kind, tenant] = *where;
                 if (auto s = authorize(request.principal, kind, tenant, true); !s.ok()) return s;
                 if (auto s = checkTenantExists(tenant); !s.ok()) return s;
                 auto n = versionParam(request, "version", request.pathParam("n"));
                 if (!n.ok()) return n.status();
                 auto v = activate(kind, tenant, *n, author(request));
                 if (!v.ok()) return v.status();
                 return jsonResponse(versionJson(*v, false));
               });
}

}  // namespace vigil::mgmt

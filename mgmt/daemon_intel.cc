// The threat-intel routes of vigild: sightings, a rebuild request, and the analyst
// indicator lists of each tenant and of every tenant.
#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "intel/indicator_set.h"
#include "intel/snapshot.h"
#include "mgmt/api_server.h"
#include "mgmt/auth_store.h"
#include "mgmt/daemon.h"
#include "mgmt/intel_manager.h"

namespace vigil::mgmt {
namespace {

// Rejects a JSON body on the analyst list routes, which read the plain list format: a
// JSON document would be read line by line as indicators and rejected in full.
absl::Status checkListBody(const ApiRequest& request) {
  const std::string type = request.header("Content-Type");
  if (!absl::StartsWithIgnoreCase(type, "application/json")) return absl::OkStatus();
  return absl::InvalidArgumentError(
      "the body is Content-Type application/json, but this route reads the plain list "
      "format: send Content-Type: text/plain with one indicator per line");
}

// The ?tenant= of an analyst list route: "" (the list of every tenant) when left out.
absl::StatusOr<std::string> tenantParam(const ApiRequest& request) {
  for (const auto& [name, value] : request.query) {
    if (name != "tenant") {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown query parameter ", name, "; use tenant"));
    }
  }
  auto [first, last] = request.query.equal_range("tenant");
  if (first == last) return std::string();
  if (std::next(first) != last) {
    return absl::InvalidArgumentError("query parameter tenant is given more than once; give it once");
  }
  if (absl::Status st = validateTenantName(first->second); !st.ok()) return st;
  return first->second;
}

// Checks that `principal` may change the analyst list of `tenant`: the admin role for
// the list of every tenant (""), else an admin, tenant admin or analyst of the tenant.
absl::Status checkListWrite(const Principal& principal, const std::string& tenant) {
  if (tenant.empty()) {
    if (principal.allTenants()) return absl::OkStatus();
    return absl::PermissionDeniedError(
        "the analyst list without ?tenant= applies to every tenant, so only the admin role may "
        "change it; give ?tenant=NAME to change one tenant's list");
  }
  if (principal.canWork(tenant)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      "principal ", principal.subject, " may not change the indicators of tenant ", tenant));
}

// Reads are open for the list of every tenant (it applies to every caller) and need
// canRead() for a tenant's list.
absl::Status checkListRead(const Principal& principal, const std::string& tenant) {
  if (tenant.empty() || principal.canRead(tenant)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      "principal ", principal.subject, " may not read the indicators of tenant ", tenant));
}

// InvalidArgument when `tenant` names a tenant that `auth` does not hold. The list of
// every tenant ("") needs no tenant.
absl::Status checkTenantExists(AuthStore* auth, const std::string& tenant) {
  if (auth == nullptr || tenant.empty()) return absl::OkStatus();
  return auth->checkTenant(tenant);
}

nlohmann::json rejectionsJson(const intel::LoadReport& report) {
  nlohmann::json rejections = nlohmann::json::array();
  for (const intel::Rejection& r : report.rejections) {
    rejections.push_back({{"location", r.location}, {"reason", r.reason}, {"text", r.text}});
  }
  return rejections;
}

// JSON that echoes request lines, which may hold bytes that are not UTF-8.
ApiResponse jsonResponse(const nlohmann::json& body, int status = 200) {
  ApiResponse response;
  response.status = status;
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

// The indicators of `snapshot` with at least one hit that `principal` may see, most hits
// first. An indicator of every tenant counts the hits of every tenant's events, so only
// the admin role sees those; other principals see the indicators their tenants own.
// With `tenant` set, only that tenant's indicators.
nlohmann::json sightingsJson(const intel::Snapshot& snapshot, const Principal& principal,
                             const std::string& tenant) {
  std::vector<uint32_t> hit;
  std::vector<intel::Indicator> indicators;
  for (uint32_t id = 0; id < snapshot.size(); ++id) {
    if (snapshot.hitCount(id) == 0) continue;
    intel::Indicator indicator = snapshot.indicator(id);
    const bool visible = indicator.tenant.empty() ? principal.allTenants()
                                                  : principal.canRead(indicator.tenant);
    if (!visible || (!tenant.empty() && indicator.tenant != tenant)) continue;
    hit.push_back(id);
    indicators.push_back(std::move(indicator));
  }
  std::vector<size_t> order(hit.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return snapshot.hitCount(hit[a]) > snapshot.hitCount(hit[b]);
  });
  nlohmann::json out = nlohmann::json::array();
  for (size_t i : order) {
    const intel::Indicator& indicator = indicators[i];
    out.push_back({{"indicator", indicator.text},
                   {"type", indicatorTypeName(indicator.type)},
                   {"tenant", indicator.tenant.empty() ? nlohmann::json(nullptr)
                                                       : nlohmann::json(indicator.tenant)},
                   {"lists", indicator.lists},
                   {"score", indicator.score},
                   {"hits", snapshot.hitCount(hit[i])},
                   {"last_hit_ns", snapshot.lastHitNs(hit[i])}});
  }
  return {{"generation", snapshot.generation()}, {"indicators", out}};
}

nlohmann::json tenantJson(const std::string& tenant) {
  return tenant.empty() ? nlohmann::json(nullptr) : nlohmann::json(tenant);
}

}  // namespace

// Routes of the threat-intel manager. A rebuild reloads every tenant's feeds, so it
// needs an admin token; the analyst lists and sightings are filtered by tenant.
void Daemon::addIntelRoutes() {
  api_->addRoute("GET", "/api/v1/intel/sightings",
                 [this](const ApiRequest& request) -> absl::StatusOr<ApiResponse> {
                   absl::StatusOr<std::string> tenant = tenantParam(request);
                   if (!tenant.ok()) return tenant.status();
                   if (absl::Status st = checkListRead(request.principal, *tenant); !st.ok()) {
                     return st;
                   }
                   std::shared_ptr<const intel::Snapshot> snapshot = intel_->store().current();
                   if (snapshot == nullptr) {
                     return absl::UnavailableError("no indicator snapshot is published yet");
                   }
                   return jsonResponse(sightingsJson(*snapshot, request.principal, *tenant));
                 });
  api_->addRoute("POST", "/api/v1/intel/reload",
                 [this](const ApiRequest&) -> absl::StatusOr<ApiResponse> {
                   intel_->requestReload("api");
                   ApiResponse response;
                   response.status = 202;
                   response.body = R"({"reload":"requested"})";
                   return response;
                 },
                 RouteAccess::kAdmin);
  api_->addRoute("GET", "/api/v1/intel/indicators",
                 [this](const ApiRequest& request) -> absl::StatusOr<ApiResponse> {
                   absl::StatusOr<std::string> tenant = tenantParam(request);
                   if (!tenant.ok()) return tenant.status();
                   if (absl::Status st = checkListRead(request.principal, *tenant); !st.ok()) {
                     return st;
                   }
                   const std::vector<std::string> values = intel_->analystIndicators(*tenant);
                   return jsonResponse({{"tenant", tenantJson(*tenant)},
                                        {"total", values.size()},
                                        {"indicators", values}});
                 });
  api_->addRoute("POST", "/api/v1/intel/indicators",
                 [this](const ApiRequest& request) -> absl::StatusOr<ApiResponse> {
                   absl::StatusOr<std::string> tenant = tenantParam(request);
                   if (!tenant.ok()) return tenant.status();
                   if (absl::Status st = checkListWrite(request.principal, *tenant); !st.ok()) {
                     return st;
                   }
                   if (absl::Status st = checkTenantExists(auth_.get(), *tenant); !st.ok()) {
                     return st;
                   }
                   if (absl::Status st = checkListBody(request); !st.ok()) return st;
                   absl::StatusOr<intel::LoadReport> report =
                       intel_->addIndicators(*tenant, request.body);
                   if (!report.ok()) return report.status();
                   return jsonResponse({{"tenant", tenantJson(*tenant)},
                                        {"loaded", report->loaded},
                                        {"duplicates", report->duplicates},
                                        {"rejected", report->rejected},
                                        {"rejections", rejectionsJson(*report)}});
                 });
  api_->addRoute("DELETE", "/api/v1/intel/indicators",
                 [this](const ApiRequest& request) -> absl::StatusOr<ApiResponse> {
                   absl::StatusOr<std::string> tenant = tenantParam(request);
                   if (!tenant.ok()) return tenant.status();
                   if (absl::Status st = checkListWrite(request.principal, *tenant); !st.ok()) {
                     return st;
                   }
                   if (absl::Status st = checkTenantExists(auth_.get(), *tenant); !st.ok()) {
                     return st;
                   }
                   if (absl::Status st = checkListBody(request); !st.ok()) return st;
                   absl::StatusOr<IntelManager::RemoveReport> report =
                       intel_->removeIndicators(*tenant, request.body);
                   if (!report.ok()) return report.status();
                   return jsonResponse({{"tenant", tenantJson(*tenant)},
                                        {"removed", report->removed},
                                        {"not_found", report->not_found},
                                        {"rejected", report->parsed.rejected},
                                        {"rejections", rejectionsJson(report->parsed)}});
                 });
}

}  // namespace vigil::mgmt

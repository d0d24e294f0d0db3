#include "mgmt/internal/auth_routes.h"

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <set>
#include <tuple>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/time.h"
#include "mgmt/internal/case_json.h"
#include "mgmt/internal/json_body.h"
#include "mgmt/internal/list_query.h"

namespace vigil::mgmt::internal {
namespace {

constexpr int64_t kNsPerSecond = 1'000'000'000;
// Ten years: longer expiries are almost always a unit mistake.
constexpr int64_t kMaxExpiresInSeconds = 10LL * 366 * 24 * 3600;

nlohmann::json timeOrNull(int64_t ns) {
  return ns == 0 ? nlohmann::json(nullptr) : nlohmann::json(formatRfc3339(ns));
}

ApiResponse jsonResponse(const nlohmann::json& body, int status = 200) {
  ApiResponse response;
  response.status = status;
  response.body = dumpJson(body);
  return response;
}

absl::Status rejectQuery(const ApiRequest& request) {
  if (request.query.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown query parameter ", request.query.begin()->first, "; this endpoint takes none"));
}

// Parses a JSON object body and rejects members outside `allowed`.
absl::StatusOr<nlohmann::json> parseObject(const ApiRequest& request,
                                           std::initializer_list<const char*> allowed) {
  if (absl::Status nesting = checkBodyNesting(request.body); !nesting.ok()) return nesting;
  nlohmann::json body = nlohmann::json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request body of ", request.method, " ", request.path,
                     " is not a JSON object; send Content-Type: application/json and {...}"));
  }
  for (const auto& item : body.items()) {
    // A named reference, because clang 14 cannot capture a structured binding in a lambda.
    const std::string& key = item.key();
    if (std::find_if(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; }) ==
        allowed.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown field '", key, "'; use ",
                                                     absl::StrJoin(allowed, ", ")));
    }
  }
  return body;
}

absl::StatusOr<std::string> stringField(const nlohmann::json& body, const char* key,
                                        bool required) {
  if (!body.contains(key)) {
    if (!required) return std::string();
    return absl::InvalidArgumentError(absl::StrCat("field '", key, "' is missing"));
  }
  if (!body[key].is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("field '", key, "' is ", quoteJson(body[key]), "; it must be a string"));
  }
  return body[key].get<std::string>();
}

bool isSubset(const std::vector<std::string>& inner, const std::vector<std::string>& outer) {
  return std::all_of(inner.begin(), inner.end(), [&](const std::string& t) {
    return std::find(outer.begin(), outer.end(), t) != outer.end();
  });
}

// True when `principal` may see and revoke `token`: admins every token, tenant admins
// non-admin tokens whose tenants are all theirs, anyone their own token.
bool managesToken(const Principal& principal, const TokenInfo& token) {
  if (principal.role == Role::kAdmin || principal.token_id == token.id) return true;
  return principal.role == Role::kTenantAdmin && token.role != Role::kAdmin &&
         !token.tenants.empty() && isSubset(token.tenants, principal.tenants);
}

absl::Status needTokenManager(const Principal& principal) {
  if (principal.role == Role::kAdmin || principal.role == Role::kTenantAdmin) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "managing tokens needs an admin or tenant_admin token; this token's role is ",
      roleName(principal.role)));
}

// limit, offset and sort of a list request; sort is an index into the route's sort names.
struct ListParams {
  PageParams page;
  std::optional<size_t> sort;
};

absl::StatusOr<ListParams> parseListParams(const ApiRequest& request,
                                           const std::vector<absl::string_view>& sort_names) {
  ListParams params;
  absl::StatusOr<std::optional<std::string>> limit = singleQueryParam(request, "limit");
  if (!limit.ok()) return limit.status();
  absl::StatusOr<std::optional<std::string>> offset = singleQueryParam(request, "offset");
  if (!offset.ok()) return offset.status();
  absl::StatusOr<std::optional<std::string>> sort = singleQueryParam(request, "sort");
  if (!sort.ok()) return sort.status();
  absl::StatusOr<PageParams> page = parsePageParams(*limit, *offset);
  if (!page.ok()) return page.status();
  params.page = *page;
  if (*sort) {
    absl::StatusOr<size_t> index = parseSortParam(**sort, sort_names);
    if (!index.ok()) return index.status();
    params.sort = *index;
  }
  return params;
}

// Token states for ?state=: active (usable now), revoked, or expired (and not revoked).
enum class TokenState { kActive, kRevoked, kExpired };

TokenState tokenState(const TokenInfo& t, int64_t now_ns) {
  if (t.revoked_ns != 0) return TokenState::kRevoked;
  if (t.expires_ns != 0 && t.expires_ns <= now_ns) return TokenState::kExpired;
  return TokenState::kActive;
}

// The filters of GET /api/v1/tokens.
struct TokenQuery {
  std::optional<Role> role;
  std::optional<std::string> tenant;
  std::optional<TokenState> state;

  bool matches(const TokenInfo& t, int64_t now_ns) const {
    if (role && t.role != *role) return false;
    if (tenant && std::find(t.tenants.begin(), t.tenants.end(), *tenant) == t.tenants.end()) {
      return false;
    }
    return !state || tokenState(t, now_ns) == *state;
  }
};

absl::StatusOr<TokenQuery> parseTokenQuery(const ApiRequest& request) {
  TokenQuery query;
  absl::StatusOr<std::optional<std::string>> role = singleQueryParam(request, "role");
  if (!role.ok()) return role.status();
  absl::StatusOr<std::optional<std::string>> tenant = singleQueryParam(request, "tenant");
  if (!tenant.ok()) return tenant.status();
  absl::StatusOr<std::optional<std::string>> state = singleQueryParam(request, "state");
  if (!state.ok()) return state.status();
  if (*role) {
    absl::StatusOr<Role> parsed = parseRole(**role);
    if (!parsed.ok()) return parsed.status();
    query.role = *parsed;
  }
  query.tenant = *tenant;
  if (*state) {
    static const std::vector<absl::string_view> kStateNames = {"active", "revoked", "expired"};
    for (size_t i = 0; i < kStateNames.size(); ++i) {
      if (kStateNames[i] == **state) query.state = static_cast<TokenState>(i);
    }
    if (!query.state) {
      return absl::InvalidArgumentError(absl::StrCat(
          "state=", **state, " is not valid; use one of ", absl::StrJoin(kStateNames, ", ")));
    }
  }
  return query;
}

// Sorts by the index into listTokens' sort names; ties fall back to the token id.
void sortTokens(std::vector<TokenInfo>& tokens, size_t sort) {
  const bool by_name = sort == 2 || sort == 3;
  auto key = [sort, by_name](const TokenInfo& t) {
    const int64_t time = by_name ? 0 : (sort < 2 ? t.created_ns : t.last_used_ns);
    return std::make_tuple(time, by_name ? t.name : std::string(), t.id);
  };
  const bool descending = sort == 0 || sort == 3 || sort == 5;
  std::stable_sort(tokens.begin(), tokens.end(), [&](const TokenInfo& a, const TokenInfo& b) {
    return descending ? key(b) < key(a) : key(a) < key(b);
  });
}

// ---------------------------------------------------------------------------------------
// Handlers

absl::StatusOr<ApiResponse> whoami(const ApiRequest& request) {
  if (absl::Status s = rejectQuery(request); !s.ok()) return s;
  const Principal& p = request.principal;
  nlohmann::json body = {{"subject", p.subject},
                         {"token_id", p.token_id},
                         {"role", std::string(roleName(p.role))},
                         {"tenants", p.tenants},
                         {"all_tenants", p.allTenants()}};
  return jsonResponse(body);
}

// GET /api/v1/tenants?limit=&offset=&sort=: the readable tenants, by name unless sorted.
absl::StatusOr<ApiResponse> listTenants(AuthStore& auth, const ApiRequest& request) {
  static const std::vector<absl::string_view> kSortNames = {"name", "-name", "created",
                                                            "-created"};
  if (absl::Status s = checkQueryParams(request, {"limit", "offset", "sort"}); !s.ok()) return s;
  absl::StatusOr<ListParams> params = parseListParams(request, kSortNames);
  if (!params.ok()) return params.status();
  absl::StatusOr<std::vector<Tenant>> tenants = auth.listTenants();
  if (!tenants.ok()) return tenants.status();
  std::vector<Tenant> readable;
  for (const Tenant& t : *tenants) {
    if (request.principal.canRead(t.name)) readable.push_back(t);
  }
  // Index into kSortNames: even entries ascend, odd ones descend.
  const size_t sort = params->sort.value_or(0);
  std::stable_sort(readable.begin(), readable.end(), [sort](const Tenant& a, const Tenant& b) {
    const bool by_name = sort < 2;
    const bool less = by_name ? a.name < b.name
                              : std::tie(a.created_ns, a.name) < std::tie(b.created_ns, b.name);
    const bool greater = by_name ? b.name < a.name
                                 : std::tie(b.created_ns, b.name) < std::tie(a.created_ns, a.name);
    return sort % 2 == 0 ? less : greater;
  });
  const int64_t total = static_cast<int64_t>(readable.size());
  keepPage(readable, params->page);
  nlohmann::json items = nlohmann::json::array();
  for (const Tenant& t : readable) {
    items.push_back({{"name", t.name}, {"created", formatRfc3339(t.created_ns)}});
  }
  return jsonResponse({{"items", std::move(items)},
                       {"total", total},
                       {"limit", params->page.limit},
                       {"offset", params->page.offset}});
}

absl::StatusOr<ApiResponse> createTenant(AuthStore& auth, const ApiRequest& request) {
  absl::StatusOr<nlohmann::json> body = parseObject(request, {"name"});
  if (!body.ok()) return body.status();
  absl::StatusOr<std::string> name = stringField(*body, "name", true);
  if (!name.ok()) return name.status();
  if (absl::Status s = auth.createTenant(*name); !s.ok()) return s;
  ApiResponse response = jsonResponse({{"name", *name}}, 201);
  response.audit_target = absl::StrCat("tenant=", *name);
  response.audit_tenants = {*name};
  return response;
}

absl::StatusOr<ApiResponse> deleteTenant(const AuthRouteDeps& deps, const ApiRequest& request) {
  if (absl::Status s = rejectQuery(request); !s.ok()) return s;
  const std::string name = request.pathParam("name");
  absl::StatusOr<bool> exists = deps.auth.tenantExists(name);
  if (!exists.ok()) return exists.status();
  if (!*exists) return absl::NotFoundError(absl::StrCat("tenant ", name, " does not exist"));
  if (deps.cases != nullptr) {
    CaseFilter filter;
    filter.tenant = name;
    filter.limit = 1;
    absl::StatusOr<CasePage> page = deps.cases->listCases(filter);
    if (!page.ok()) return page.status();
    if (page->total > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "tenant ", name, " still owns ", page->total, " case(s); a tenant with data stays"));
    }
  }
  if (absl::Status s = deps.auth.deleteTenant(name); !s.ok()) return s;
  ApiResponse response = jsonResponse({{"name", name}, {"deleted", true}});
  response.audit_target = absl::StrCat("tenant=", name);
  response.audit_tenants = {name};
  return response;
}

absl::StatusOr<TokenRequest> parseTokenRequest(const ApiRequest& request) {
  absl::StatusOr<nlohmann::json> body =
      parseObject(request, {"name", "role", "tenants", "expires_in_s"});
  if (!body.ok()) return body.status();
  TokenRequest token;
  absl::StatusOr<std::string> name = stringField(*body, "name", true);
  if (!name.ok()) return name.status();
  token.name = *name;
  absl::StatusOr<std::string> role = stringField(*body, "role", true);
  if (!role.ok()) return role.status();
  absl::StatusOr<Role> parsed_role = parseRole(*role);
  if (!parsed_role.ok()) return parsed_role.status();
  token.role = *parsed_role;
  if (body->contains("tenants")) {
    const nlohmann::json& tenants = (*body)["tenants"];
    if (!tenants.is_array()) {
      return absl::InvalidArgumentError("field 'tenants' must be an array of tenant names");
    }
    for (const nlohmann::json& t : tenants) {
      if (!t.is_string()) {
        return absl::InvalidArgumentError("field 'tenants' must contain only strings");
      }
      token.tenants.push_back(t.get<std::string>());
    }
  }
  if (body->contains("expires_in_s")) {
    const nlohmann::json& e = (*body)["expires_in_s"];
    if (!e.is_number_integer() || e.get<int64_t>() < 1 || e.get<int64_t>() > kMaxExpiresInSeconds) {
      return absl::InvalidArgumentError(
          absl::StrCat("field 'expires_in_s' is ", quoteJson(e), "; it must be an integer in 1..",
                       kMaxExpiresInSeconds,
                       " (seconds); leave it out for a token that does not expire"));
    }
    token.expires_ns = e.get<int64_t>() * kNsPerSecond;  // made absolute by the caller
  }
  token.created_by = request.principal.subject;
  return token;
}

absl::StatusOr<ApiResponse> createToken(AuthStore& auth, const Clock& clock,
                                        const ApiRequest& request) {
  const Principal& p = request.principal;
  if (absl::Status s = needTokenManager(p); !s.ok()) return s;
  absl::StatusOr<TokenRequest> token = parseTokenRequest(request);
  if (!token.ok()) return token.status();
  if (token->expires_ns != 0) token->expires_ns += clock.nowNs();
  if (p.role != Role::kAdmin) {
    if (token->role == Role::kAdmin) {
      return absl::PermissionDeniedError("a tenant_admin token cannot create admin tokens");
    }
    for (const std::string& tenant : token->tenants) {
      if (!p.canAdminister(tenant)) {
        return absl::PermissionDeniedError(absl::StrCat(
            "this token cannot create tokens for tenant ", tenant, "; it administers ",
            absl::StrJoin(p.tenants, ", ")));
      }
    }
  }
  absl::StatusOr<IssuedToken> issued = auth.createToken(*token);
  if (!issued.ok()) return issued.status();
  nlohmann::json body = tokenToJson(issued->info);
  body["token"] = issued->token;
  ApiResponse response = jsonResponse(body, 201);
  response.audit_target = absl::StrCat("token=", issued->info.id);
  response.audit_tenants = issued->info.tenants;
  return response;
}

// GET /api/v1/tokens?role=&tenant=&state=&limit=&offset=&sort=: the tokens the principal
// manages, newest first unless sorted.
absl::StatusOr<ApiResponse> listTokens(AuthStore& auth, const ApiRequest& request) {
  static const std::vector<absl::string_view> kSortNames = {
      "-created", "created", "name", "-name", "last_used", "-last_used"};
  if (absl::Status s = checkQueryParams(
          request, {"role", "tenant", "state", "limit", "offset", "sort"});
      !s.ok()) {
    return s;
  }
  if (absl::Status s = needTokenManager(request.principal); !s.ok()) return s;
  absl::StatusOr<ListParams> params = parseListParams(request, kSortNames);
  if (!params.ok()) return params.status();
  absl::StatusOr<TokenQuery> query = parseTokenQuery(request);
  if (!query.ok()) return query.status();
  absl::StatusOr<std::vector<TokenInfo>> tokens = auth.listTokens();
  if (!tokens.ok()) return tokens.status();
  const int64_t now_ns = auth.clock().nowNs();
  std::vector<TokenInfo> listed;
  for (const TokenInfo& t : *tokens) {
    if (managesToken(request.principal, t) && query->matches(t, now_ns)) listed.push_back(t);
  }
  sortTokens(listed, params->sort.value_or(0));
  const int64_t total = static_cast<int64_t>(listed.size());
  keepPage(listed, params->page);
  nlohmann::json items = nlohmann::json::array();
  for (const TokenInfo& t : listed) items.push_back(tokenToJson(t));
  return jsonResponse({{"items", std::move(items)},
                       {"total", total},
                       {"limit", params->page.limit},
                       {"offset", params->page.offset}});
}

absl::StatusOr<ApiResponse> revokeToken(AuthStore& auth, const ApiRequest& request) {
  if (absl::Status s = rejectQuery(request); !s.ok()) return s;
  const std::string id = request.pathParam("id");
  const Principal& p = request.principal;
  // Tokens outside the caller's reach answer 404 like unknown ids, so ids do not leak.
  const absl::Status not_found =
      absl::NotFoundError(absl::StrCat("token ", id, " does not exist"));
  if (p.token_id != id) {
    if (absl::Status s = needTokenManager(p); !s.ok()) return s;
  }
  absl::StatusOr<TokenInfo> token = auth.getToken(id);
  if (!token.ok()) return absl::IsNotFound(token.status()) ? not_found : token.status();
  if (!managesToken(p, *token)) return not_found;
  absl::StatusOr<TokenInfo> revoked = auth.revokeToken(id);
  if (!revoked.ok()) return revoked.status();
  ApiResponse response = jsonResponse(tokenToJson(*revoked));
  response.audit_target = absl::StrCat("token=", id);
  response.audit_tenants = revoked->tenants;
  return response;
}

absl::StatusOr<AuditFilter> parseAuditQuery(const ApiRequest& request) {
  AuditFilter filter;
  for (const auto& [name, value] : request.query) {
    if (request.query.count(name) > 1) {
      return absl::InvalidArgumentError(absl::StrCat(name, " is given more than once"));
    }
    if (name == "limit") {
      if (!absl::SimpleAtoi(value, &filter.limit) || filter.limit < 1 ||
          filter.limit > AuditFilter::kMaxLimit) {
        return absl::InvalidArgumentError(absl::StrCat("limit=", value, " is invalid; use 1..",
                                                       AuditFilter::kMaxLimit));
      }
    } else if (name == "after") {
      if (!absl::SimpleAtoi(value, &filter.after_seq) || filter.after_seq < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "after=", value, " is invalid; use 0 or the next_after of the previous page"));
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown query parameter ", name, "; use limit, after"));
    }
  }
  return filter;
}

absl::StatusOr<ApiResponse> listAudit(AuditLog* audit, const ApiRequest& request) {
  const Principal& p = request.principal;
  if (p.role != Role::kAdmin && p.role != Role::kTenantAdmin) {
    return absl::PermissionDeniedError(absl::StrCat(
        "reading the audit log needs an admin or tenant_admin token; this token's role is ",
        roleName(p.role)));
  }
  absl::StatusOr<AuditFilter> filter = parseAuditQuery(request);
  if (!filter.ok()) return filter.status();
  if (audit == nullptr) return absl::UnavailableError("this server has no audit log");
  if (!p.allTenants()) filter->tenants = p.tenants;
  absl::StatusOr<AuditPage> page = audit->list(*filter);
  if (!page.ok()) return page.status();
  nlohmann::json items = nlohmann::json::array();
  for (const AuditRecord& r : page->items) {
    const AuditEntry& e = r.entry;
    items.push_back({{"seq", r.seq},
                     {"time", formatRfc3339(r.time_ns)},
                     {"subject", e.subject},
                     {"token_id", e.token_id},
                     {"remote_addr", e.remote_addr},
                     {"method", e.method},
                     {"path", e.path},
                     {"target", e.target},
                     {"tenants", e.tenants},
                     {"status", e.status},
                     {"outcome", e.outcome},
                     {"prev_hash", r.prev_hash},
                     {"hash", r.hash}});
  }
  nlohmann::json body = {{"items", std::move(items)},
                         {"limit", filter->limit},
                         {"next_after", page->next_after ? nlohmann::json(*page->next_after)
                                                         : nlohmann::json(nullptr)}};
  return jsonResponse(body);
}

}  // namespace

nlohmann::json tokenToJson(const TokenInfo& token) {
  return {{"id", token.id},
          {"name", token.name},
          {"role", std::string(roleName(token.role))},
          {"tenants", token.tenants},
          {"created_by", token.created_by},
          {"created", formatRfc3339(token.created_ns)},
          {"expires", timeOrNull(token.expires_ns)},
          {"revoked", timeOrNull(token.revoked_ns)},
          {"last_used", timeOrNull(token.last_used_ns)}};
}

void addAuthRoutes(Router& router, AuthRouteDeps deps) {
  AuthStore& auth = deps.auth;
  router.add("GET", "/api/v1/whoami", whoami);
  router.add("GET", "/api/v1/tenants",
             [&auth](const ApiRequest& request) { return listTenants(auth, request); });
  router.add(
      "POST", "/api/v1/tenants",
      [&auth](const ApiRequest& request) { return createTenant(auth, request); },
      RouteAccess::kAdmin);
  router.add(
      "DELETE", "/api/v1/tenants/{name}",
      [deps](const ApiRequest& request) { return deleteTenant(deps, request); },
      RouteAccess::kAdmin);
  router.add("POST", "/api/v1/tokens", [&auth](const ApiRequest& request) {
    return createToken(auth, auth.clock(), request);
  });
  router.add("GET", "/api/v1/tokens",
             [&auth](const ApiRequest& request) { return listTokens(auth, request); });
  router.add("DELETE", "/api/v1/tokens/{id}",
             [&auth](const ApiRequest& request) { return revokeToken(auth, request); });
  AuditLog* audit = deps.audit;
  router.add("GET", "/api/v1/audit",
             [audit](const ApiRequest& request) { return listAudit(audit, request); });
}

}  // namespace vigil::mgmt::internal

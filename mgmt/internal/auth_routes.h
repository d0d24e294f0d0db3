// Handlers of the tenant, token, whoami and audit endpoints:
//   GET /api/v1/whoami
//   GET, POST /api/v1/tenants          DELETE /api/v1/tenants/{name}
//   GET, POST /api/v1/tokens           DELETE /api/v1/tokens/{id}
//   GET /api/v1/audit
#pragma once

#include "mgmt/audit_log.h"
#include "mgmt/auth_store.h"
#include "mgmt/case_store.h"
#include "mgmt/internal/router.h"
#include "nlohmann/json.hpp"

namespace vigil::mgmt::internal {

struct AuthRouteDeps {
  AuthStore& auth;
  AuditLog* audit = nullptr;     // GET /api/v1/audit answers 503 without it
  CaseStore* cases = nullptr;    // a tenant with cases cannot be deleted
};

// Registers the routes above on `router`. `deps` members must outlive the router.
void addAuthRoutes(Router& router, AuthRouteDeps deps);

// The token as listed: id, name, role, tenants, created_by, created, expires, revoked,
// last_used (RFC 3339 or null). Never the secret.
nlohmann::json tokenToJson(const TokenInfo& token);

}  // namespace vigil::mgmt::internal

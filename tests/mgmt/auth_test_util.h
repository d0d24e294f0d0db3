// Helpers for tests that call the API: a token store and audit log in a temporary folder,
// an admin token, and tokens of any role minted directly in the store.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "mgmt/api_server.h"
#include "mgmt/audit_log.h"
#include "mgmt/auth_store.h"

namespace vigil::mgmt::testing {

class TestAuth {
 public:
  // Opens <dir>/auth.db and <dir>/audit.db and mints an admin token. `tenants` are
  // created so tokens can be scoped to them.
  explicit TestAuth(const std::string& dir, const std::vector<std::string>& tenants = {}) {
    auto auth = AuthStore::open(AuthStore::defaultPath(dir));
    EXPECT_TRUE(auth.ok()) << auth.status();
    if (auth.ok()) auth_ = *std::move(auth);
    auto audit = AuditLog::open(AuditLog::defaultPath(dir));
    EXPECT_TRUE(audit.ok()) << audit.status();
    if (audit.ok()) audit_ = *std::move(audit);
    for (const std::string& tenant : tenants) EXPECT_TRUE(auth_->ensureTenant(tenant).ok());
    admin_token_ = mint(Role::kAdmin, {}, "test-admin");
  }

  // Returns a new token with `role` and `tenants`.
  std::string mint(Role role, std::vector<std::string> tenants, const std::string& name) {
    TokenRequest request;
    request.name = name;
    request.role = role;
    request.tenants = std::move(tenants);
    request.created_by = "test";
    auto issued = auth_->createToken(request);
    EXPECT_TRUE(issued.ok()) << issued.status();
    return issued.ok() ? issued->token : std::string();
  }

  // Points `options` at this store and log.
  void apply(ApiServerOptions& options) {
    options.auth = auth_.get();
    options.audit = audit_.get();
  }

  AuthStore& auth() { return *auth_; }
  AuditLog& audit() { return *audit_; }
  const std::string& adminToken() const { return admin_token_; }

 private:
  std::unique_ptr<AuthStore> auth_;
  std::unique_ptr<AuditLog> audit_;
  std::string admin_token_;
};

}  // namespace vigil::mgmt::testing

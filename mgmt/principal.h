// Who is calling the API: the role and tenants an API token grants. The authentication
// layer fills one Principal per request before a handler runs; handlers check it with the
// methods below and filter every query by tenant on the server side.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace vigil::mgmt {

// Ordered from most to least powerful.
//   kAdmin        every tenant, every operation, token and tenant management
//   kTenantAdmin  its tenants: content pushes, approvals, case work, tokens of its tenants
//   kAnalyst      its tenants: read everything, work cases, approve or deny runs
//   kReadOnly     its tenants: read only
enum class Role { kAdmin, kTenantAdmin, kAnalyst, kReadOnly };

absl::string_view roleName(Role role);  // "admin", "tenant_admin", "analyst", "read_only"

struct Principal {
  std::string subject;   // the token's name, recorded in the audit log and timelines
  std::string token_id;  // public id of the token (never the secret)
  Role role = Role::kReadOnly;
  std::vector<std::string> tenants;  // ignored for kAdmin, which sees every tenant
  std::string remote_addr;           // peer address of the request

  bool authenticated() const { return !token_id.empty(); }
  bool allTenants() const { return role == Role::kAdmin; }

  // True when the principal may read data of `tenant`.
  bool canRead(absl::string_view tenant) const;
  // True when the principal may change cases, notes, tasks and approvals of `tenant`.
  bool canWork(absl::string_view tenant) const;
  // True when the principal may push content (rules, intel, playbooks) or manage tokens
  // for `tenant`.
  bool canAdminister(absl::string_view tenant) const;
};

}  // namespace vigil::mgmt

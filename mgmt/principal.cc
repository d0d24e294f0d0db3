#include "mgmt/principal.h"

#include <algorithm>

namespace vigil::mgmt {

absl::string_view roleName(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kTenantAdmin:
      return "tenant_admin";
    case Role::kAnalyst:
      return "analyst";
    case Role::kReadOnly:
      return "read_only";
  }
  return "read_only";
}

namespace {

bool holdsTenant(const Principal& p, absl::string_view tenant) {
  return std::find(p.tenants.begin(), p.tenants.end(), tenant) != p.tenants.end();
}

}  // namespace

bool Principal::canRead(absl::string_view tenant) const {
  return allTenants() || holdsTenant(*this, tenant);
}

bool Principal::canWork(absl::string_view tenant) const {
  if (allTenants()) return true;
  return (role == Role::kTenantAdmin || role == Role::kAnalyst) && holdsTenant(*this, tenant);
}

bool Principal::canAdminister(absl::string_view tenant) const {
  if (allTenants()) return true;
  return role == Role::kTenantAdmin && holdsTenant(*this, tenant);
}

}  // namespace vigil::mgmt

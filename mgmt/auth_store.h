// The token store: tenants and API tokens in SQLite (<state_dir>/auth.db, WAL,
// synchronous=FULL). A token is "vgl_<id>_<secret>": a 64-bit public id and a 256-bit
// random secret. Only the SHA-256 of the secret is stored, so the token text exists only
// in the response that created it. A plain hash is enough because the secret has 256 bits
// of entropy: there is no dictionary to try, so a slow password hash would add nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"
#include "mgmt/principal.h"

struct sqlite3;

namespace vigil::mgmt {

inline constexpr absl::string_view kTokenPrefix = "vgl_";

struct Tenant {
  std::string name;
  int64_t created_ns = 0;
};

// A token as listed: everything except the secret, which is never stored.
struct TokenInfo {
  std::string id;    // 16 lower-case hex digits
  std::string name;  // the subject recorded in the audit log
  Role role = Role::kReadOnly;
  std::vector<std::string> tenants;  // empty for kAdmin
  std::string created_by;            // subject of the token that created it, or "bootstrap"
  int64_t created_ns = 0;
  int64_t expires_ns = 0;    // 0 = never
  int64_t revoked_ns = 0;    // 0 = active
  int64_t last_used_ns = 0;  // 0 = never used; updated at most once a minute
};

struct TokenRequest {
  std::string name;
  Role role = Role::kReadOnly;
  std::vector<std::string> tenants;
  int64_t expires_ns = 0;  // absolute UTC ns; 0 = never
  std::string created_by;
};

struct IssuedToken {
  TokenInfo info;
  std::string token;  // "vgl_<id>_<secret>"; shown once, never stored
};

// Reason a bearer token was rejected, used as the label of vigil_api_auth_failures_total.
// kStoreError means the token could not be checked (the database failed) and maps to 503.
enum class AuthFailure {
  kNone,
  kMissing,
  kMalformed,
  kUnknown,
  kBadSecret,
  kExpired,
  kRevoked,
  kStoreError,
};
absl::string_view authFailureName(AuthFailure failure);

struct AuthResult {
  AuthFailure failure = AuthFailure::kNone;
  Principal principal;   // filled when failure is kNone
  std::string token_id;  // the id part when the header parsed, for logs and the audit log
  std::string message;   // client-facing reason when failure is not kNone

  bool ok() const { return failure == AuthFailure::kNone; }
};

// Checks a tenant name: 1 to 64 characters of letters, digits, '.', '_' and '-', starting
// with a letter or digit. InvalidArgument names the value and the rule.
absl::Status validateTenantName(absl::string_view name);

// Parses "admin", "tenant_admin", "analyst" or "read_only"; InvalidArgument otherwise.
absl::StatusOr<Role> parseRole(absl::string_view name);

// Thread-safe: one mutex serializes the connection. Every call blocks on disk I/O.
class AuthStore {
 public:
  // Opens or creates the store at `path` and applies its schema. `clock` (not owned, may be
  // null for the real clock) drives created, expiry and last_used times.
  static absl::StatusOr<std::unique_ptr<AuthStore>> open(const std::string& path,
                                                         const Clock* clock = nullptr);

  // "<state_dir>/auth.db".
  static std::string defaultPath(absl::string_view state_dir);

  ~AuthStore();
  AuthStore(const AuthStore&) = delete;
  AuthStore& operator=(const AuthStore&) = delete;

  // ---- tenants
  // AlreadyExists when the tenant exists; InvalidArgument for a bad name.
  absl::Status createTenant(absl::string_view name);
  // Creates the tenant unless it exists.
  absl::Status ensureTenant(absl::string_view name);
  absl::StatusOr<std::vector<Tenant>> listTenants();
  absl::StatusOr<bool> tenantExists(absl::string_view name);
  // Checks that `name` is a valid tenant name and that the tenant exists. InvalidArgument
  // names the value and how to create the tenant. A store failure is returned as is.
  absl::Status checkTenant(absl::string_view name);
  // NotFound when absent; FailedPrecondition while an active (not revoked, not expired)
  // token names the tenant. The caller checks other owners (cases) first.
  absl::Status deleteTenant(absl::string_view name);

  // ---- tokens
  // Creates a token. InvalidArgument for an empty or overlong name, tenants given for an
  // admin token, no tenants for another role, an unknown tenant or an expiry in the past.
  absl::StatusOr<IssuedToken> createToken(const TokenRequest& request);
  // Every token, newest first.
  absl::StatusOr<std::vector<TokenInfo>> listTokens();
  // NotFound for an unknown id.
  absl::StatusOr<TokenInfo> getToken(absl::string_view id);
  // Marks the token revoked; revoking a revoked token keeps the first time. NotFound for
  // an unknown id.
  absl::StatusOr<TokenInfo> revokeToken(absl::string_view id);
  // True when an active admin token exists.
  absl::StatusOr<bool> hasActiveAdmin();

  // Checks the value of an Authorization header ("Bearer vgl_<id>_<secret>"). The secret
  // is compared as a hash in constant time. Updates last_used at most once a minute.
  AuthResult authenticate(absl::string_view authorization);

  const std::string& path() const { return path_; }
  // The clock that stamps created, expiry and last_used times.
  const Clock& clock() const { return *clock_; }

 private:
  AuthStore(std::string path, sqlite3* db, const Clock* clock);
  absl::Status migrate();
  int64_t nowNs() const { return clock_->nowNs(); }

  std::string path_;
  sqlite3* db_;
  const Clock* clock_;
  std::mutex mu_;
};

}  // namespace vigil::mgmt

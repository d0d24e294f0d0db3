#include "mgmt/auth_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/utf8.h"
#include "mgmt/internal/crypto_util.h"
#include "mgmt/internal/sqlite_db.h"
#include "mgmt/internal/sqlite_statement.h"
#include "nlohmann/json.hpp"

namespace vigil::mgmt {
namespace {

using internal::SqliteStatement;

constexpr size_t kIdHexDigits = 16;      // 64-bit public id
constexpr size_t kSecretHexDigits = 64;  // 256-bit secret
constexpr size_t kMaxTenantName = 64;
constexpr size_t kMaxTokenName = 128;  // characters (Unicode code points), not bytes
constexpr int64_t kLastUsedResolutionNs = 60'000'000'000;

constexpr std::array<absl::string_view, 4> kRoleNames = {"admin", "tenant_admin", "analyst",
                                                         "read_only"};

// Schema version 1. tokens.tenants is a JSON array of tenant names, so a token keeps its
// scope as issued even if a tenant is deleted after the token was revoked.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE tenants (
  name TEXT PRIMARY KEY,
  created_ns INTEGER NOT NULL
);
CREATE TABLE tokens (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('admin', 'tenant_admin', 'analyst', 'read_only')),
  tenants TEXT NOT NULL,
  secret_sha256 TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_ns INTEGER NOT NULL,
  expires_ns INTEGER NOT NULL,
  revoked_ns INTEGER NOT NULL,
  last_used_ns INTEGER NOT NULL
);
PRAGMA user_version = 1;
)sql";

constexpr const char* kTokenColumns =
    "id, name, role, tenants, created_by, created_ns, expires_ns, revoked_ns, last_used_ns";

bool isHex(absl::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

TokenInfo readToken(const SqliteStatement& row) {
  TokenInfo info;
  info.id = row.columnText(0);
  info.name = row.columnText(1);
  info.role = parseRole(row.columnText(2)).value_or(Role::kReadOnly);
  nlohmann::json tenants = nlohmann::json::parse(row.columnText(3), nullptr, false);
  if (tenants.is_array()) {
    for (const nlohmann::json& t : tenants) {
      if (t.is_string()) info.tenants.push_back(t.get<std::string>());
    }
  }
  info.created_by = row.columnText(4);
  info.created_ns = row.columnInt(5);
  info.expires_ns = row.columnInt(6);
  info.revoked_ns = row.columnInt(7);
  info.last_used_ns = row.columnInt(8);
  return info;
}

absl::StatusOr<SqliteStatement> prepare(sqlite3* db, absl::string_view name,
                                        absl::string_view sql) {
  return SqliteStatement::prepare(db, name, sql);
}

AuthResult reject(AuthFailure failure, std::string token_id, std::string message) {
  AuthResult result;
  result.failure = failure;
  result.token_id = std::move(token_id);
  result.message = std::move(message);
  return result;
}

}  // namespace

absl::string_view authFailureName(AuthFailure failure) {
  switch (failure) {
    case AuthFailure::kNone:
      return "none";
    case AuthFailure::kMissing:
      return "missing";
    case AuthFailure::kMalformed:
      return "malformed";
    case AuthFailure::kUnknown:
      return "unknown_token";
    case AuthFailure::kBadSecret:
      return "bad_secret";
    case AuthFailure::kExpired:
      return "expired";
    case AuthFailure::kRevoked:
      return "revoked";
    case AuthFailure::kStoreError:
      return "store_error";
  }
  return "none";
}

namespace {

// Checks that a token name is valid UTF-8 of 1 to kMaxTokenName characters without control
// characters. The name becomes the actor of every change the token makes, and it appears in
// log lines and the console.
absl::Status validateTokenName(absl::string_view name) {
  const std::string rule = absl::StrCat("a token name is 1 to ", kMaxTokenName,
                                        " characters without control characters, such as "
                                        "the user's email");
  size_t characters = 0;
  for (size_t i = 0; i < name.size(); ++characters) {
    const int length = utf8SequenceLength(std::string_view(name.data(), name.size()), i);
    if (length < 0) {
      return absl::InvalidArgumentError(absl::StrCat("token name is not valid UTF-8 at byte ", i,
                                                     " (character ", characters + 1, "); ", rule));
    }
    // C0 controls and DEL are single bytes. C1 controls (U+0080 to U+009F) are 0xC2 followed
    // by 0x80 to 0x9F.
    const auto lead = static_cast<unsigned char>(name[i]);
    int control = -1;
    if (lead < 0x20 || lead == 0x7f) {
      control = lead;
    } else if (lead == 0xc2 && static_cast<unsigned char>(name[i + 1]) < 0xa0) {
      control = static_cast<unsigned char>(name[i + 1]);
    }
    if (control >= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("token name has the control character U+",
                       absl::AsciiStrToUpper(absl::StrCat(absl::Hex(control, absl::kZeroPad4))),
                       " at character ", characters + 1, "; ", rule));
    }
    i += static_cast<size_t>(length);
  }
  if (characters == 0 || characters > kMaxTokenName) {
    return absl::InvalidArgumentError(
        absl::StrCat("token name has ", characters, " characters; ", rule));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status validateTenantName(absl::string_view name) {
  auto allowed = [](char c) { return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-'; };
  if (name.empty() || name.size() > kMaxTenantName || !absl::ascii_isalnum(name.front()) ||
      !std::all_of(name.begin(), name.end(), allowed)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tenant name '", name.substr(0, kMaxTenantName + 16),
                     name.size() > kMaxTenantName + 16
                         ? absl::StrCat("...' (", name.size(), " bytes)")
                         : std::string("'"),
                     " is invalid; use 1 to ", kMaxTenantName,
                     " letters, digits, '.', '_' or '-', starting with a letter or digit"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Role> parseRole(absl::string_view name) {
  for (size_t i = 0; i < kRoleNames.size(); ++i) {
    if (kRoleNames[i] == name) return static_cast<Role>(i);
  }
  return absl::InvalidArgumentError(absl::StrCat("role '", name.substr(0, 40),
                                                 name.size() > 40 ? "...'" : "'",
                                                 " is not valid; use one of ",
                                                 absl::StrJoin(kRoleNames, ", ")));
}

// ---------------------------------------------------------------------------------------
// Open

AuthStore::AuthStore(std::string path, sqlite3* db, const Clock* clock)
    : path_(std::move(path)), db_(db), clock_(clock) {}

AuthStore::~AuthStore() { sqlite3_close_v2(db_); }

std::string AuthStore::defaultPath(absl::string_view state_dir) {
  return absl::StrCat(state_dir, "/auth.db");
}

absl::StatusOr<std::unique_ptr<AuthStore>> AuthStore::open(const std::string& path,
                                                           const Clock* clock) {
  absl::StatusOr<internal::SqliteHandle> db = internal::openDurableDb(path, "token store");
  if (!db.ok()) return db.status();
  std::unique_ptr<AuthStore> store(
      new AuthStore(path, db->release(), clock != nullptr ? clock : &RealClock::instance()));
  if (absl::Status s = store->migrate(); !s.ok()) return s;
  return store;
}

absl::Status AuthStore::migrate() {
  absl::StatusOr<int> version = internal::userVersion(db_);
  if (!version.ok()) return version.status();
  if (*version == 1) return absl::OkStatus();
  if (*version > 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("token store ", path_, " has schema version ", *version,
                     " but this build knows only version 1; run a newer vigild"));
  }
  if (absl::Status s = internal::execSql(db_, "BEGIN IMMEDIATE"); !s.ok()) return s;
  absl::Status s = internal::execSql(db_, kSchemaV1);
  if (!s.ok()) {
    internal::execSql(db_, "ROLLBACK").IgnoreError();
    return s;
  }
  return internal::execSql(db_, "COMMIT");
}

// ---------------------------------------------------------------------------------------
// Tenants

absl::Status AuthStore::createTenant(absl::string_view name) {
  if (absl::Status s = validateTenantName(name); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<SqliteStatement> insert = prepare(
      db_, "insert_tenant", "INSERT INTO tenants (name, created_ns) VALUES (?1, ?2)");
  if (!insert.ok()) return insert.status();
  insert->bindText(1, name);
  insert->bindInt(2, nowNs());
  absl::Status s = insert->run();
  if (!s.ok() && (sqlite3_extended_errcode(db_) == SQLITE_CONSTRAINT_PRIMARYKEY)) {
    return absl::AlreadyExistsError(absl::StrCat("tenant ", name, " already exists"));
  }
  return s;
}

absl::Status AuthStore::ensureTenant(absl::string_view name) {
  absl::Status s = createTenant(name);
  return absl::IsAlreadyExists(s) ? absl::OkStatus() : s;
}

absl::StatusOr<std::vector<Tenant>> AuthStore::listTenants() {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<SqliteStatement> select =
      prepare(db_, "list_tenants", "SELECT name, created_ns FROM tenants ORDER BY name");
  if (!select.ok()) return select.status();
  std::vector<Tenant> tenants;
  while (true) {
    absl::StatusOr<bool> row = select->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    tenants.push_back({select->columnText(0), select->columnInt(1)});
  }
  return tenants;
}

absl::StatusOr<bool> AuthStore::tenantExists(absl::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<SqliteStatement> select =
      prepare(db_, "tenant_exists", "SELECT 1 FROM tenants WHERE name = ?1");
  if (!select.ok()) return select.status();
  select->bindText(1, name);
  return select->step();
}

absl::Status AuthStore::checkTenant(absl::string_view name) {
  if (absl::Status s = validateTenantName(name); !s.ok()) return s;
  absl::StatusOr<bool> exists = tenantExists(name);
  if (!exists.ok()) return exists.status();
  if (!*exists) {
    return absl::InvalidArgumentError(
        absl::StrCat("tenant ", name, " does not exist; create it first (POST /api/v1/tenants)"));
  }
  return absl::OkStatus();
}

absl::Status AuthStore::deleteTenant(absl::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<SqliteStatement> users = prepare(
      db_, "tenant_token_users",
      "SELECT COUNT(*) FROM tokens, json_each(tokens.tenants) WHERE json_each.value = ?1"
      " AND revoked_ns = 0 AND (expires_ns = 0 OR expires_ns > ?2)");
  if (!users.ok()) return users.status();
  users->bindText(1, name);
  users->bindInt(2, nowNs());
  absl::StatusOr<bool> row = users->step();
  if (!row.ok()) return row.status();
  int64_t active = *row ? users->columnInt(0) : 0;
  if (active > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("tenant ", name, " still has ", active,
                     " active token(s); revoke them first (GET /api/v1/tokens lists them)"));
  }
  absl::StatusOr<SqliteStatement> remove =
      prepare(db_, "delete_tenant", "DELETE FROM tenants WHERE name = ?1");
  if (!remove.ok()) return remove.status();
  remove->bindText(1, name);
  if (absl::Status s = remove->run(); !s.ok()) return s;
  if (sqlite3_changes(db_) == 0) {
    return absl::NotFoundError(absl::StrCat("tenant ", name, " does not exist"));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// Tokens

absl::StatusOr<IssuedToken> AuthStore::createToken(const TokenRequest& request) {
  if (absl::Status s = validateTokenName(request.name); !s.ok()) return s;
  if (request.role == Role::kAdmin && !request.tenants.empty()) {
    return absl::InvalidArgumentError(
        "an admin token covers every tenant; leave tenants out or pick another role");
  }
  if (request.role != Role::kAdmin && request.tenants.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("a token with role ", roleName(request.role),
                                                   " needs at least one tenant"));
  }
  if (request.expires_ns != 0 && request.expires_ns <= nowNs()) {
    return absl::InvalidArgumentError("the token would expire in the past; give a later expiry");
  }
  for (const std::string& tenant : request.tenants) {
    if (absl::Status s = checkTenant(tenant); !s.ok()) return s;
  }

  IssuedToken issued;
  TokenInfo& info = issued.info;
  info.id = internal::randomHex(kIdHexDigits / 2);
  info.name = request.name;
  info.role = request.role;
  info.tenants = request.tenants;
  std::sort(info.tenants.begin(), info.tenants.end());
  info.tenants.erase(std::unique(info.tenants.begin(), info.tenants.end()), info.tenants.end());
  info.created_by = request.created_by;
  info.created_ns = nowNs();
  info.expires_ns = request.expires_ns;
  const std::string secret = internal::randomHex(kSecretHexDigits / 2);
  issued.token = absl::StrCat(kTokenPrefix, info.id, "_", secret);

  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<SqliteStatement> insert = prepare(
      db_, "insert_token",
      "INSERT INTO tokens (id, name, role, tenants, secret_sha256, created_by, created_ns,"
      " expires_ns, revoked_ns, last_used_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, 0)");
  if (!insert.ok()) return insert.status();
  insert->bindText(1, info.id);
  insert->bindText(2, info.name);
  insert->bindText(3, roleName(info.role));
  insert->bindText(4, nlohmann::json(info.tenants).dump());
  insert->bindText(5, internal::sha256Hex(secret));
  insert->bindText(6, info.created_by);
  insert->bindInt(7, info.created_ns);
  insert->bindInt(8, info.expires_ns);
  if (absl::Status s = insert->run(); !s.ok()) return s;
  return issued;
}

absl::StatusOr<std::vector<TokenInfo>> AuthStore::listTokens() {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<SqliteStatement> select =
      prepare(db_, "list_tokens",
              absl::StrCat("SELECT ", kTokenColumns, " FROM tokens ORDER BY created_ns DESC, id"));
  if (!select.ok()) return select.status();
  std::vector<TokenInfo> tokens;
  while (true) {
    absl::StatusOr<bool> row = select->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    tokens.push_back(readToken(*select));
  }
  return tokens;
}

absl::StatusOr<TokenInfo> AuthStore::getToken(absl::string_view id) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<SqliteStatement> select = prepare(
      db_, "get_token", absl::StrCat("SELECT ", kTokenColumns, " FROM tokens WHERE id = ?1"));
  if (!select.ok()) return select.status();
  select->bindText(1, id);
  absl::StatusOr<bool> row = select->step();
  if (!row.ok()) return row.status();
  if (!*row) {
    return absl::NotFoundError(
        absl::StrCat("token ", id, " does not exist; GET /api/v1/tokens lists the ids"));
  }
  return readToken(*select);
}

absl::StatusOr<TokenInfo> AuthStore::revokeToken(absl::string_view id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<SqliteStatement> update =
        prepare(db_, "revoke_token",
                "UPDATE tokens SET revoked_ns = ?2 WHERE id = ?1 AND revoked_ns = 0");
    if (!update.ok()) return update.status();
    update->bindText(1, id);
    update->bindInt(2, nowNs());
    if (absl::Status s = update->run(); !s.ok()) return s;
  }
  return getToken(id);
}

absl::StatusOr<bool> AuthStore::hasActiveAdmin() {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<SqliteStatement> select = prepare(
      db_, "active_admin",
      "SELECT 1 FROM tokens WHERE role = 'admin' AND revoked_ns = 0"
      " AND (expires_ns = 0 OR expires_ns > ?1) LIMIT 1");
  if (!select.ok()) return select.status();
  select->bindInt(1, nowNs());
  return select->step();
}

AuthResult AuthStore::authenticate(absl::string_view authorization) {
  if (authorization.empty()) {
    return reject(AuthFailure::kMissing, "",
                  "missing Authorization header; send 'Authorization: Bearer vgl_...'");
  }
  constexpr absl::string_view kBearer = "Bearer ";
  if (authorization.size() < kBearer.size() ||
      !absl::EqualsIgnoreCase(authorization.substr(0, kBearer.size()), kBearer)) {
    return reject(AuthFailure::kMalformed, "",
                  "the Authorization header is not a Bearer token; send 'Bearer vgl_...'");
  }
  absl::string_view token = absl::StripAsciiWhitespace(authorization.substr(kBearer.size()));
  const size_t expected = kTokenPrefix.size() + kIdHexDigits + 1 + kSecretHexDigits;
  if (token.size() != expected || !absl::StartsWith(token, kTokenPrefix) ||
      token[kTokenPrefix.size() + kIdHexDigits] != '_') {
    return reject(AuthFailure::kMalformed, "",
                  "the bearer token is malformed; tokens look like vgl_<16 hex>_<64 hex>");
  }
  const std::string id(token.substr(kTokenPrefix.size(), kIdHexDigits));
  absl::string_view secret = token.substr(kTokenPrefix.size() + kIdHexDigits + 1);
  if (!isHex(id) || !isHex(secret)) {
    return reject(AuthFailure::kMalformed, "",
                  "the bearer token is malformed; tokens look like vgl_<16 hex>_<64 hex>");
  }

  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<SqliteStatement> select =
      prepare(db_, "auth_token",
              absl::StrCat("SELECT ", kTokenColumns, ", secret_sha256 FROM tokens WHERE id = ?1"));
  absl::StatusOr<bool> row = false;
  if (select.ok()) {
    select->bindText(1, id);
    row = select->step();
  } else {
    row = select.status();
  }
  if (!row.ok()) {
    return reject(AuthFailure::kStoreError, id,
                  absl::StrCat("the token store cannot be read: ", row.status().message()));
  }
  const std::string kInvalid = "the bearer token is not valid; ask an administrator for a token";
  if (!*row) return reject(AuthFailure::kUnknown, id, kInvalid);
  TokenInfo info = readToken(*select);
  const std::string stored_hash = select->columnText(9);
  select->reset();
  if (!internal::constantTimeEquals(internal::sha256Hex(secret), stored_hash)) {
    return reject(AuthFailure::kBadSecret, id, kInvalid);
  }
  const int64_t now = nowNs();
  if (info.revoked_ns != 0) {
    return reject(AuthFailure::kRevoked, id,
                  absl::StrCat("token ", id, " is revoked; ask an administrator for a new one"));
  }
  if (info.expires_ns != 0 && info.expires_ns <= now) {
    return reject(AuthFailure::kExpired, id,
                  absl::StrCat("token ", id, " has expired; ask an administrator for a new one"));
  }
  if (now - info.last_used_ns >= kLastUsedResolutionNs) {
    absl::StatusOr<SqliteStatement> touch =
        prepare(db_, "touch_token", "UPDATE tokens SET last_used_ns = ?2 WHERE id = ?1");
    if (touch.ok()) {
      touch->bindText(1, id);
      touch->bindInt(2, now);
      // last_used is informational; a busy database must not fail the request.
      touch->run().IgnoreError();
    }
  }

  AuthResult result;
  result.token_id = id;
  result.principal.subject = info.name;
  result.principal.token_id = id;
  result.principal.role = info.role;
  result.principal.tenants = info.tenants;
  return result;
}

}  // namespace vigil::mgmt

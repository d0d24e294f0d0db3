// "vigilctl tokens", "vigilctl tenants" and "vigilctl audit". Most of these commands call
// the API. "tokens bootstrap" and "audit verify" open the files in the state folder
// directly, so they work whether vigild runs or not (SQLite's WAL lets both open them).
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "mgmt/audit_log.h"
#include "mgmt/auth_store.h"
#include "mgmt/cmd/vigilctl_client.h"

namespace vigil::ctl {
namespace {

using mgmt::AuditLog;
using mgmt::AuthStore;

std::string text(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return "-";
  const nlohmann::json& value = j[key];
  if (value.is_string()) return printable(value.get<std::string>());
  if (value.is_array()) {
    std::vector<std::string> parts;
    for (const nlohmann::json& item : value) {
      parts.push_back(item.is_string() ? printable(item.get<std::string>()) : item.dump());
    }
    return parts.empty() ? "-" : absl::StrJoin(parts, ",");
  }
  return printable(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void printRows(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

void printJson(const nlohmann::json& body) {
  std::cout << body.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

nlohmann::json orFail(absl::StatusOr<nlohmann::json> body) {
  if (!body.ok()) fail(body.status().message());
  return *std::move(body);
}

// Options of "tokens list" and "tenants list"; the filters are used by tokens only.
struct PageOptions {
  int limit = 50;
  int64_t offset = 0;
  std::string sort;
  std::string role;
  std::string tenant;
  std::string state;
  bool json = false;
};

void addPageOptions(CLI::App* command, PageOptions& options, const std::string& noun,
                    const std::string& sort_help, const std::vector<std::string>& sort_names) {
  command->add_option("--limit", options.limit, "maximum number of " + noun + " to print, 1..500")
      ->check(CLI::Range(1, 500));
  command->add_option("--offset", options.offset, "number of " + noun + " to skip")
      ->check(CLI::NonNegativeNumber);
  command->add_option("--sort", options.sort, "order: " + sort_help)
      ->check(CLI::IsMember(sort_names));
  command->add_flag("--json", options.json, "print the API's JSON");
}

QueryParams pageParams(const PageOptions& options) {
  QueryParams params = {{"limit", std::to_string(options.limit)}};
  if (options.offset != 0) params.emplace_back("offset", std::to_string(options.offset));
  if (!options.sort.empty()) params.emplace_back("sort", options.sort);
  return params;
}

// "2 of 7 tokens shown (offset 0)", so a reader sees when a page left some out.
void printPageFooter(const nlohmann::json& body, const std::string& noun) {
  std::cout << body.value("items", nlohmann::json::array()).size() << " of "
            << text(body, "total") << " " << noun << " shown (offset " << text(body, "offset")
            << ")\n";
}

// Parses "90d", "12h", "30m", "3600s" or plain seconds into seconds.
int64_t parseDuration(const std::string& value) {
  if (value.empty()) fail("--expires-in is empty; give a duration such as 90d, 12h or 3600s");
  int64_t unit = 1;
  std::string digits = value;
  switch (value.back()) {
    case 'd':
      unit = 86400;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'm':
      unit = 60;
      break;
    case 's':
      unit = 1;
      break;
    default:
      digits.push_back('s');
  }
  digits.pop_back();
  int64_t count = 0;
  if (!absl::SimpleAtoi(digits, &count) || count < 1) {
    fail(absl::StrCat("--expires-in ", value,
                      " is not a duration; use a positive number with d, h, m or s, e.g. 90d"));
  }
  return count * unit;
}

// Prints the token on stdout and what it is on stderr, so
// `export VIGIL_TOKEN=$(vigilctl tokens create ...)` captures only the token.
void printIssued(const nlohmann::json& token, bool json) {
  if (json) {
    printJson(token);
    return;
  }
  std::cout << text(token, "token") << "\n";
  std::cerr << "Created token " << text(token, "id") << " for " << text(token, "name")
            << " (role " << text(token, "role") << ", tenants " << text(token, "tenants")
            << ", expires " << text(token, "expires") << ").\n"
            << "The token is shown only this once; store it now (for example in VIGIL_TOKEN).\n";
}

// ---------------------------------------------------------------------------------------
// tokens

struct BootstrapOptions {
  std::string state_dir;
  std::string name = "bootstrap-admin";
  bool force = false;
  bool json = false;
};

void bootstrap(const BootstrapOptions& options) {
  // The state folder may not exist yet, before vigild's first start, but its parent must:
  // a mistyped path would otherwise get a new token store that vigild never reads.
  const std::filesystem::path dir(options.state_dir);
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    const std::filesystem::path parent = std::filesystem::absolute(dir, ec).parent_path();
    if (!std::filesystem::is_directory(parent, ec)) {
      fail(absl::StrCat("--state-dir ", options.state_dir, ": folder ", parent.string(),
                        " does not exist; give vigild's state_dir, or create the folder first"));
    }
    std::filesystem::create_directory(dir, ec);
    if (ec) fail(absl::StrCat("cannot create --state-dir ", options.state_dir, ": ", ec.message()));
    std::cerr << "vigilctl: created the state folder " << options.state_dir
              << "; vigild reads this token only with state_dir set to it\n";
  } else if (!std::filesystem::is_directory(dir, ec)) {
    fail(absl::StrCat("--state-dir ", options.state_dir, " is not a folder"));
  }
  absl::StatusOr<std::unique_ptr<AuthStore>> store =
      AuthStore::open(AuthStore::defaultPath(options.state_dir));
  if (!store.ok()) fail(store.status().message());
  absl::StatusOr<bool> has_admin = (*store)->hasActiveAdmin();
  if (!has_admin.ok()) fail(has_admin.status().message());
  if (*has_admin && !options.force) {
    fail(absl::StrCat((*store)->path(),
                      " already has an active admin token; create more with 'vigilctl tokens "
                      "create', or pass --force to add another admin token offline"));
  }
  mgmt::TokenRequest request;
  request.name = options.name;
  request.role = mgmt::Role::kAdmin;
  request.created_by = "bootstrap";
  absl::StatusOr<mgmt::IssuedToken> issued = (*store)->createToken(request);
  if (!issued.ok()) fail(issued.status().message());
  // Record the offline mint in the audit log beside the token store.
  absl::StatusOr<std::unique_ptr<AuditLog>> audit =
      AuditLog::open(AuditLog::defaultPath(options.state_dir));
  if (!audit.ok()) fail(audit.status().message());
  mgmt::AuditEntry entry;
  entry.subject = "vigilctl tokens bootstrap";
  entry.remote_addr = "local";
  entry.method = "BOOTSTRAP";
  entry.path = std::filesystem::absolute((*store)->path()).string();
  entry.target = absl::StrCat("token=", issued->info.id);
  entry.status = 201;
  entry.outcome = "ok";
  if (absl::StatusOr<mgmt::AuditRecord> r = (*audit)->append(entry); !r.ok()) {
    fail(r.status().message());
  }
  nlohmann::json body = {{"id", issued->info.id},
                         {"name", issued->info.name},
                         {"role", "admin"},
                         {"tenants", nlohmann::json::array()},
                         {"expires", nullptr},
                         {"token", issued->token}};
  printIssued(body, options.json);
}

struct CreateOptions {
  std::string name;
  std::string role;
  std::vector<std::string> tenants;
  std::string expires_in;
  bool json = false;
};

void registerTokens(CLI::App& app, const GlobalOptions& global) {
  CLI::App* tokens = app.add_subcommand("tokens", "create, list and revoke API tokens");
  tokens->require_subcommand(1);

  auto boot = std::make_shared<BootstrapOptions>();
  CLI::App* b = tokens->add_subcommand(
      "bootstrap", "create the first admin token offline, in <state-dir>/auth.db");
  b->add_option("--state-dir", boot->state_dir, "vigild's state_dir")->required();
  b->add_option("--name", boot->name, "name of the token, recorded in the audit log");
  b->add_flag("--force", boot->force, "create an admin token even if an active one exists");
  b->add_flag("--json", boot->json, "print the token and its fields as JSON");
  b->callback([boot] { bootstrap(*boot); });

  auto create = std::make_shared<CreateOptions>();
  CLI::App* c = tokens->add_subcommand("create", "create a token; prints it once");
  c->add_option("--name", create->name, "who the token is for, e.g. an email address")
      ->required();
  c->add_option("--role", create->role, "admin, tenant_admin, analyst or read_only")->required();
  c->add_option("--tenant", create->tenants, "a tenant the token may access (repeatable)");
  c->add_option("--expires-in", create->expires_in, "lifetime such as 90d, 12h or 3600s");
  c->add_flag("--json", create->json, "print the token and its fields as JSON");
  c->callback([&global, create] {
    nlohmann::json body = {{"name", create->name}, {"role", create->role}};
    if (!create->tenants.empty()) body["tenants"] = create->tenants;
    if (!create->expires_in.empty()) body["expires_in_s"] = parseDuration(create->expires_in);
    printIssued(orFail(sendJson(global.api_url, "POST", "/api/v1/tokens", body)), create->json);
  });

  auto list = std::make_shared<PageOptions>();
  CLI::App* l = tokens->add_subcommand("list", "list tokens (never their secrets)");
  l->add_option("--role", list->role, "only tokens of this role")
      ->check(CLI::IsMember({"admin", "tenant_admin", "analyst", "read_only"}));
  l->add_option("--tenant", list->tenant, "only tokens that may access this tenant");
  l->add_option("--state", list->state, "only active, revoked or expired tokens")
      ->check(CLI::IsMember({"active", "revoked", "expired"}));
  addPageOptions(l, *list, "tokens", "-created (default), created, name, -name, last_used, -last_used",
                 {"-created", "created", "name", "-name", "last_used", "-last_used"});
  l->callback([&global, list] {
    QueryParams params = pageParams(*list);
    if (!list->role.empty()) params.emplace_back("role", list->role);
    if (!list->tenant.empty()) params.emplace_back("tenant", list->tenant);
    if (!list->state.empty()) params.emplace_back("state", list->state);
    nlohmann::json body = orFail(getJson(global.api_url, "/api/v1/tokens", params));
    if (list->json) return printJson(body);
    std::vector<std::vector<std::string>> rows = {
        {"ID", "NAME", "ROLE", "TENANTS", "CREATED", "EXPIRES", "REVOKED", "LAST USED"}};
    for (const nlohmann::json& t : body.value("items", nlohmann::json::array())) {
      rows.push_back({text(t, "id"), text(t, "name"), text(t, "role"), text(t, "tenants"),
                      text(t, "created"), text(t, "expires"), text(t, "revoked"),
                      text(t, "last_used")});
    }
    printRows(rows);
    printPageFooter(body, "tokens");
  });

  auto revoke_id = std::make_shared<std::string>();
  CLI::App* r = tokens->add_subcommand("revoke", "revoke a token by id");
  r->add_option("ID", *revoke_id, "token id from 'vigilctl tokens list'")->required();
  r->callback([&global, revoke_id] {
    nlohmann::json body = orFail(
        sendJson(global.api_url, "DELETE", "/api/v1/tokens/" + *revoke_id, nlohmann::json()));
    std::cout << "Revoked token " << text(body, "id") << " (" << text(body, "name") << ") at "
              << text(body, "revoked") << "\n";
  });
}

// ---------------------------------------------------------------------------------------
// tenants

void registerTenants(CLI::App& app, const GlobalOptions& global) {
  CLI::App* tenants = app.add_subcommand("tenants", "create, list and delete tenants");
  tenants->require_subcommand(1);

  auto name = std::make_shared<std::string>();
  CLI::App* c = tenants->add_subcommand("create", "create a tenant (admin token)");
  c->add_option("NAME", *name, "tenant name: letters, digits, '.', '_', '-'")->required();
  c->callback([&global, name] {
    orFail(sendJson(global.api_url, "POST", "/api/v1/tenants", {{"name", *name}}));
    std::cout << "Created tenant " << printable(*name) << "\n";
  });

  auto list = std::make_shared<PageOptions>();
  CLI::App* l = tenants->add_subcommand("list", "list the tenants this token may see");
  addPageOptions(l, *list, "tenants", "name (default), -name, created, -created",
                 {"name", "-name", "created", "-created"});
  l->callback([&global, list] {
    nlohmann::json body = orFail(getJson(global.api_url, "/api/v1/tenants", pageParams(*list)));
    if (list->json) return printJson(body);
    std::vector<std::vector<std::string>> rows = {{"NAME", "CREATED"}};
    for (const nlohmann::json& t : body.value("items", nlohmann::json::array())) {
      rows.push_back({text(t, "name"), text(t, "created")});
    }
    printRows(rows);
    printPageFooter(body, "tenants");
  });

  auto delete_name = std::make_shared<std::string>();
  CLI::App* d = tenants->add_subcommand(
      "delete", "delete a tenant that has no cases and no active tokens (admin token)");
  d->add_option("NAME", *delete_name, "tenant name")->required();
  d->callback([&global, delete_name] {
    orFail(sendJson(global.api_url, "DELETE", "/api/v1/tenants/" + *delete_name,
                    nlohmann::json()));
    std::cout << "Deleted tenant " << printable(*delete_name) << "\n";
  });
}

// ---------------------------------------------------------------------------------------
// audit

struct AuditListOptions {
  int64_t after = 0;
  int limit = 100;
  bool json = false;
};

void registerAudit(CLI::App& app, const GlobalOptions& global) {
  CLI::App* audit = app.add_subcommand("audit", "read and verify the audit log");
  audit->require_subcommand(1);

  auto state_dir = std::make_shared<std::string>();
  CLI::App* v = audit->add_subcommand(
      "verify", "check the hash chain of <state-dir>/audit.db offline; exit 1 when broken");
  v->add_option("--state-dir", *state_dir, "vigild's state_dir")->required();
  v->callback([state_dir] {
    const std::string path = AuditLog::defaultPath(*state_dir);
    absl::StatusOr<mgmt::AuditVerifyReport> report = AuditLog::verify(path);
    if (!report.ok()) fail(report.status().message(), 2);
    if (!report->ok) {
      fail(absl::StrCat(path, ": chain broken at record ", report->first_bad_seq, ": ",
                        report->problem, " (", report->records, " records before it are intact)"));
    }
    std::cout << path << ": " << report->records << " records, chain intact\n";
  });

  auto list = std::make_shared<AuditListOptions>();
  CLI::App* l = audit->add_subcommand("list", "list audit records (admin or tenant_admin)");
  l->add_option("--after", list->after, "show records after this seq (the next_after of a page)");
  l->add_option("--limit", list->limit, "records per page, 1..1000")->check(CLI::Range(1, 1000));
  l->add_flag("--json", list->json, "print the API's JSON");
  l->callback([&global, list] {
    QueryParams params = {{"limit", std::to_string(list->limit)}};
    if (list->after > 0) params.emplace_back("after", std::to_string(list->after));
    nlohmann::json body = orFail(getJson(global.api_url, "/api/v1/audit", params));
    if (list->json) return printJson(body);
    std::vector<std::vector<std::string>> rows = {
        {"SEQ", "TIME", "SUBJECT", "TOKEN", "REMOTE", "METHOD", "PATH", "STATUS", "OUTCOME"}};
    for (const nlohmann::json& r : body.value("items", nlohmann::json::array())) {
      rows.push_back({text(r, "seq"), text(r, "time"), text(r, "subject"), text(r, "token_id"),
                      text(r, "remote_addr"), text(r, "method"), text(r, "path"),
                      text(r, "status"), text(r, "outcome")});
    }
    printRows(rows);
    if (body.contains("next_after") && !body["next_after"].is_null()) {
      std::cout << "more: vigilctl audit list --after " << text(body, "next_after") << "\n";
    }
  });
}

}  // namespace

void registerAuthCommands(CLI::App& app, const GlobalOptions& options) {
  CLI::App* whoami = app.add_subcommand("whoami", "show the name, role and tenants of the token");
  whoami->callback([&options] {
    nlohmann::json body = orFail(getJson(options.api_url, "/api/v1/whoami"));
    std::cout << text(body, "subject") << " (token " << text(body, "token_id") << "): role "
              << text(body, "role") << ", tenants "
              << (body.value("all_tenants", false) ? "all" : text(body, "tenants")) << "\n";
  });
  registerTokens(app, options);
  registerTenants(app, options);
  registerAudit(app, options);
}

}  // namespace vigil::ctl

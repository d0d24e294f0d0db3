#include "mgmt/content_store.h"

#include <openssl/evp.h>
#include <sqlite3.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "mgmt/internal/sqlite_statement.h"

namespace vigil::mgmt {
namespace {

using internal::SqliteStatement;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS content_versions (
  kind TEXT NOT NULL,
  tenant TEXT NOT NULL,
  version INTEGER NOT NULL,
  author TEXT NOT NULL,
  created_ns INTEGER NOT NULL,
  activated_ns INTEGER NOT NULL DEFAULT 0,
  activated_by TEXT NOT NULL DEFAULT '',
  sha256 TEXT NOT NULL,
  files TEXT NOT NULL,
  active INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (kind, tenant, version)
);
CREATE UNIQUE INDEX IF NOT EXISTS content_one_active
  ON content_versions (kind, tenant) WHERE active = 1;
CREATE TABLE IF NOT EXISTS content_activations (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  tenant TEXT NOT NULL,
  version INTEGER NOT NULL,
  action TEXT NOT NULL,
  activated_by TEXT NOT NULL,
  activated_ns INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  previous_version INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS content_activations_scope
  ON content_activations (kind, tenant, seq);
)sql";

constexpr const char* kColumns =
    "kind, tenant, version, author, created_ns, activated_ns, sha256, active, activated_by";
// Index of the files column that get() and active() select after kColumns.
constexpr int kFilesColumn = 9;

void appendLength(std::string& out, size_t n) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
}

ContentVersion readRow(const SqliteStatement& stmt) {
  ContentVersion v;
  v.kind = *parseContentKind(stmt.columnText(0));  // written only by add()
  v.tenant = stmt.columnText(1);
  v.version = stmt.columnInt(2);
  v.author = stmt.columnText(3);
  v.created_ns = stmt.columnInt(4);
  v.activated_ns = stmt.columnInt(5);
  v.sha256 = stmt.columnText(6);
  v.active = stmt.columnInt(7) != 0;
  v.activated_by = stmt.columnText(8);
  return v;
}

absl::StatusOr<ContentFiles> filesFromJson(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return absl::DataLossError("content store row has no file map");
  ContentFiles files;
  for (const auto& [path, body] : j.items()) {
    if (!body.is_string()) return absl::DataLossError("content store file is not text");
    files.emplace(path, body.get<std::string>());
  }
  return files;
}

}  // namespace

const char* contentKindName(ContentKind kind) {
  switch (kind) {
    case ContentKind::kRules:
      return "rules";
    case ContentKind::kIntel:
      return "intel";
    case ContentKind::kPlaybooks:
      return "playbooks";
  }
  return "rules";
}

absl::StatusOr<ContentKind> parseContentKind(absl::string_view name) {
  for (ContentKind kind : {ContentKind::kRules, ContentKind::kIntel, ContentKind::kPlaybooks}) {
    if (contentKindName(kind) == name) return kind;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("content kind '", name, "' is not one of rules, intel, playbooks"));
}

std::string contentHash(const ContentFiles& files) {
  std::string framed;
  for (const auto& [path, text] : files) {
    appendLength(framed, path.size());
    framed += path;
    appendLength(framed, text.size());
    framed += text;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(framed.data(), framed.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xf]);
  }
  return hex;
}

absl::StatusOr<std::unique_ptr<ContentStore>> ContentStore::open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return absl::UnavailableError(absl::StrCat("cannot open content store ", path, ": ",
                                               message,
                                               "; check that the folder exists and is writable"));
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<ContentStore> store(new ContentStore(path, db));
  for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL"}) {
    if (absl::Status s = store->exec(sql); !s.ok()) return s;
  }
  // One transaction, so a crash cannot leave a new history table without its imported rows.
  if (absl::Status s = store->exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  if (absl::Status s = store->migrate(); !s.ok()) {
    (void)store->exec("ROLLBACK");
    return s;
  }
  if (absl::Status s = store->exec("COMMIT"); !s.ok()) return s;
  return store;
}

// Creates the tables, adds columns that older stores lack, and fills a new activation
// history from the versions of an older store.
absl::Status ContentStore::migrate() {
  absl::StatusOr<bool> had_versions = hasTable("content_versions");
  if (!had_versions.ok()) return had_versions.status();
  absl::StatusOr<bool> had_history = hasTable("content_activations");
  if (!had_history.ok()) return had_history.status();
  if (absl::Status s = exec(kSchema); !s.ok()) return s;
  if (absl::Status s = addActivatedByColumn(); !s.ok()) return s;
  if (*had_versions && !*had_history) return importActivations();
  return absl::OkStatus();
}

absl::StatusOr<bool> ContentStore::hasTable(absl::string_view name) {
  auto stmt = SqliteStatement::prepare(
      db_, "content tables", "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1");
  if (!stmt.ok()) return stmt.status();
  stmt->bindText(1, name);
  return stmt->step();
}

// Stores written before the activation history existed keep only the last activation of
// each version. Those become "imported" rows, in activation order, with no previous
// version.
absl::Status ContentStore::importActivations() {
  return exec(
      "INSERT INTO content_activations (kind, tenant, version, action, activated_by, "
      "activated_ns, sha256, previous_version) "
      "SELECT kind, tenant, version, 'imported', activated_by, activated_ns, sha256, 0 "
      "FROM content_versions WHERE activated_ns != 0 ORDER BY activated_ns, kind, tenant, version");
}

ContentStore::~ContentStore() { sqlite3_close_v2(db_); }

// Stores written before activations recorded their principal lack the column. Their
// earlier activations keep an empty activated_by.
absl::Status ContentStore::addActivatedByColumn() {
  auto columns = SqliteStatement::prepare(db_, "content columns",
                                          "SELECT name FROM pragma_table_info('content_versions')");
  if (!columns.ok()) return columns.status();
  while (true) {
    absl::StatusOr<bool> row = columns->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (columns->columnText(0) == "activated_by") return absl::OkStatus();
  }
  return exec("ALTER TABLE content_versions ADD COLUMN activated_by TEXT NOT NULL DEFAULT ''");
}

absl::Status ContentStore::exec(const char* sql) {
  char* error = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return absl::OkStatus();
  std::string message = error != nullptr ? error : sqlite3_errstr(rc);
  sqlite3_free(error);
  return absl::InternalError(absl::StrCat("content store ", path_, ": ", message,
                                          internal::damagedFileHint(rc, path_.c_str())));
}

absl::StatusOr<ContentVersion> ContentStore::add(ContentKind kind, absl::string_view tenant,
                                                 absl::string_view author,
                                                 const ContentFiles& files, int64_t now_ns) {
  nlohmann::json map = nlohmann::json::object();
  for (const auto& [path, text] : files) map[path] = text;
  ContentVersion v;
  v.kind = kind;
  v.tenant = std::string(tenant);
  v.author = std::string(author);
  v.created_ns = now_ns;
  v.sha256 = contentHash(files);
  v.files = files;

  std::lock_guard<std::mutex> lock(mutex_);
  // The number and the row go in one statement, so two pushes cannot get the same number.
  auto insert = SqliteStatement::prepare(
      db_, "content insert",
      "INSERT INTO content_versions (kind, tenant, version, author, created_ns, sha256, files) "
      "SELECT ?1, ?2, COALESCE(MAX(version), 0) + 1, ?3, ?4, ?5, ?6 FROM content_versions "
      "WHERE kind = ?1 AND tenant = ?2 RETURNING version");
  if (!insert.ok()) return insert.status();
  insert->bindText(1, contentKindName(kind));
  insert->bindText(2, tenant);
  insert->bindText(3, author);
  insert->bindInt(4, now_ns);
  insert->bindText(5, v.sha256);
  insert->bindText(6, map.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  absl::StatusOr<bool> row = insert->step();
  if (!row.ok()) return row.status();
  v.version = insert->columnInt(0);
  if (absl::Status s = insert->run(); !s.ok()) return s;
  return v;
}

absl::Status ContentStore::activate(ContentKind kind, absl::string_view tenant, int64_t version,
                                    absl::string_view activated_by, int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (absl::Status s = exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  absl::Status status = [&]() -> absl::Status {
    auto current = SqliteStatement::prepare(
        db_, "content current",
        "SELECT version FROM content_versions WHERE kind = ?1 AND tenant = ?2 AND active = 1");
    if (!current.ok()) return current.status();
    current->bindText(1, contentKindName(kind));
    current->bindText(2, tenant);
    absl::StatusOr<bool> has_current = current->step();
    if (!has_current.ok()) return has_current.status();
    const int64_t previous = *has_current ? current->columnInt(0) : 0;
    current->reset();

    auto clear = SqliteStatement::prepare(
        db_, "content deactivate",
        "UPDATE content_versions SET active = 0 WHERE kind = ?1 AND tenant = ?2 AND active = 1");
    if (!clear.ok()) return clear.status();
    clear->bindText(1, contentKindName(kind));
    clear->bindText(2, tenant);
    if (absl::Status s = clear->run(); !s.ok()) return s;
    auto set = SqliteStatement::prepare(
        db_, "content activate",
        "UPDATE content_versions SET active = 1, activated_ns = ?4, activated_by = ?5 "
        "WHERE kind = ?1 AND tenant = ?2 AND version = ?3");
    if (!set.ok()) return set.status();
    set->bindText(1, contentKindName(kind));
    set->bindText(2, tenant);
    set->bindInt(3, version);
    set->bindInt(4, now_ns);
    set->bindText(5, activated_by);
    if (absl::Status s = set->run(); !s.ok()) return s;
    if (sqlite3_changes(db_) == 0) {
      return absl::NotFoundError(absl::StrCat(contentKindName(kind), " version ", version,
                                              " of tenant ", tenant, " does not exist"));
    }

    const char* action = previous == 0 || version > previous ? "activate"
                         : version < previous               ? "rollback"
                                                            : "reactivate";
    auto history = SqliteStatement::prepare(
        db_, "content activation history",
        "INSERT INTO content_activations (kind, tenant, version, action, activated_by, "
        "activated_ns, sha256, previous_version) "
        "SELECT kind, tenant, version, ?4, ?5, ?6, sha256, ?7 FROM content_versions "
        "WHERE kind = ?1 AND tenant = ?2 AND version = ?3");
    if (!history.ok()) return history.status();
    history->bindText(1, contentKindName(kind));
    history->bindText(2, tenant);
    history->bindInt(3, version);
    history->bindText(4, action);
    history->bindText(5, activated_by);
    history->bindInt(6, now_ns);
    history->bindInt(7, previous);
    return history->run();
  }();
  if (!status.ok()) {
    (void)exec("ROLLBACK");
    return status;
  }
  return exec("COMMIT");
}

absl::StatusOr<ContentVersion> ContentStore::get(ContentKind kind, absl::string_view tenant,
                                                 int64_t version) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto stmt = SqliteStatement::prepare(
      db_, "content get",
      absl::StrCat("SELECT ", kColumns,
                   ", files FROM content_versions WHERE kind = ?1 AND tenant = ?2 AND "
                   "version = ?3"));
  if (!stmt.ok()) return stmt.status();
  stmt->bindText(1, contentKindName(kind));
  stmt->bindText(2, tenant);
  stmt->bindInt(3, version);
  absl::StatusOr<bool> row = stmt->step();
  if (!row.ok()) return row.status();
  if (!*row) {
    return absl::NotFoundError(absl::StrCat(contentKindName(kind), " version ", version,
                                            " of tenant ", tenant, " does not exist"));
  }
  ContentVersion v = readRow(*stmt);
  absl::StatusOr<ContentFiles> files = filesFromJson(stmt->columnText(kFilesColumn));
  if (!files.ok()) return files.status();
  v.files = std::move(*files);
  return v;
}

absl::StatusOr<std::vector<ContentVersion>> ContentStore::list(ContentKind kind,
                                                               absl::string_view tenant) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto stmt = SqliteStatement::prepare(
      db_, "content list",
      absl::StrCat("SELECT ", kColumns,
                   " FROM content_versions WHERE kind = ?1 AND tenant = ?2 "
                   "ORDER BY version DESC"));
  if (!stmt.ok()) return stmt.status();
  stmt->bindText(1, contentKindName(kind));
  stmt->bindText(2, tenant);
  std::vector<ContentVersion> out;
  while (true) {
    absl::StatusOr<bool> row = stmt->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(readRow(*stmt));
  }
  return out;
}

absl::StatusOr<std::optional<ContentVersion>> ContentStore::active(ContentKind kind,
                                                                   absl::string_view tenant) {
  int64_t version = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto stmt = SqliteStatement::prepare(
        db_, "content active",
        "SELECT version FROM content_versions WHERE kind = ?1 AND tenant = ?2 AND active = 1");
    if (!stmt.ok()) return stmt.status();
    stmt->bindText(1, contentKindName(kind));
    stmt->bindText(2, tenant);
    absl::StatusOr<bool> row = stmt->step();
    if (!row.ok()) return row.status();
    if (!*row) return std::optional<ContentVersion>();
    version = stmt->columnInt(0);
  }
  absl::StatusOr<ContentVersion> v = get(kind, tenant, version);
  if (!v.ok()) return v.status();
  return std::optional<ContentVersion>(std::move(*v));
}

absl::StatusOr<std::vector<ContentActivation>> ContentStore::listActivations(
    ContentKind kind, absl::string_view tenant) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto stmt = SqliteStatement::prepare(
      db_, "content activations",
      "SELECT seq, version, action, activated_by, activated_ns, sha256, previous_version "
      "FROM content_activations WHERE kind = ?1 AND tenant = ?2 ORDER BY seq DESC");
  if (!stmt.ok()) return stmt.status();
  stmt->bindText(1, contentKindName(kind));
  stmt->bindText(2, tenant);
  std::vector<ContentActivation> out;
  while (true) {
    absl::StatusOr<bool> row = stmt->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    ContentActivation a;
    a.seq = stmt->columnInt(0);
    a.kind = kind;
    a.tenant = std::string(tenant);
    a.version = stmt->columnInt(1);
    a.action = stmt->columnText(2);
    a.activated_by = stmt->columnText(3);
    a.activated_ns = stmt->columnInt(4);
    a.sha256 = stmt->columnText(5);
    a.previous_version = stmt->columnInt(6);
    out.push_back(std::move(a));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> ContentStore::activeTenants(ContentKind kind) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto stmt = SqliteStatement::prepare(
      db_, "content active tenants",
      "SELECT tenant FROM content_versions WHERE kind = ?1 AND active = 1 ORDER BY tenant");
  if (!stmt.ok()) return stmt.status();
  stmt->bindText(1, contentKindName(kind));
  std::vector<std::string> out;
  while (true) {
    absl::StatusOr<bool> row = stmt->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(stmt->columnText(0));
  }
  return out;
}

}  // namespace vigil::mgmt

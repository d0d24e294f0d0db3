#include "mgmt/internal/sqlite_db.h"

#include "absl/strings/str_cat.h"
#include "mgmt/internal/sqlite_statement.h"

namespace vigil::mgmt::internal {

absl::StatusOr<SqliteHandle> openDurableDb(const std::string& path, absl::string_view what,
                                           int busy_timeout_ms) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  SqliteHandle db(raw);
  if (rc != SQLITE_OK) {
    std::string message = raw != nullptr ? sqlite3_errmsg(raw) : "out of memory";
    return absl::UnavailableError(absl::StrCat("cannot open ", what, " ", path, ": ", message,
                                               "; check that the folder exists and is writable"));
  }
  sqlite3_busy_timeout(db.get(), busy_timeout_ms);
  for (const char* pragma :
       {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    if (absl::Status s = execSql(db.get(), pragma); !s.ok()) return s;
  }
  return db;
}

absl::Status execSql(sqlite3* db, const char* sql) {
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error);
  sqlite3_free(error);
  if (rc != SQLITE_OK) return sqliteError(db, absl::StrCat("exec of \"", sql, "\""));
  return absl::OkStatus();
}

absl::StatusOr<int> userVersion(sqlite3* db) {
  absl::StatusOr<SqliteStatement> statement =
      SqliteStatement::prepare(db, "user_version", "PRAGMA user_version");
  if (!statement.ok()) return statement.status();
  absl::StatusOr<bool> row = statement->step();
  if (!row.ok()) return row.status();
  return *row ? static_cast<int>(statement->columnInt(0)) : 0;
}

}  // namespace vigil::mgmt::internal

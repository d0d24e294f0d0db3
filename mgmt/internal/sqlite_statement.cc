#include "mgmt/internal/sqlite_statement.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace vigil::mgmt::internal {

std::string damagedFileHint(int code, const char* file) {
  const int primary = code & 0xff;
  if (primary != SQLITE_CORRUPT && primary != SQLITE_NOTADB) return "";
  const std::string path = (file != nullptr && *file != '\0') ? file : "the database file";
  return absl::StrCat("; ", path,
                      " is damaged or not an SQLite database: stop vigild, then restore it from "
                      "a backup, or move it (with its -wal and -shm files) aside to start with "
                      "an empty store");
}

absl::Status sqliteError(sqlite3* db, absl::string_view operation) {
  const char* file = sqlite3_db_filename(db, "main");
  int code = sqlite3_extended_errcode(db);
  std::string message = absl::StrCat("sqlite ", operation, " failed on ",
                                     (file != nullptr && *file != '\0') ? file : ":memory:", ": ",
                                     sqlite3_errmsg(db), " (code ", code, ")");
  // Busy and locked databases clear up on their own, so callers may retry them.
  int primary = code & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    return absl::UnavailableError(message);
  }
  message += damagedFileHint(code, file);
  return absl::InternalError(message);
}

absl::StatusOr<SqliteStatement> SqliteStatement::prepare(sqlite3* db, absl::string_view name,
                                                         absl::string_view sql) {
  SqliteStatement statement;
  statement.name_ = std::string(name);
  int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &statement.stmt_, nullptr);
  if (rc != SQLITE_OK) {
    return sqliteError(db, absl::StrCat("prepare of statement ", name));
  }
  return statement;
}

SqliteStatement::SqliteStatement(SqliteStatement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)), name_(std::move(other.name_)) {}

SqliteStatement& SqliteStatement::operator=(SqliteStatement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
    name_ = std::move(other.name_);
  }
  return *this;
}

SqliteStatement::~SqliteStatement() { sqlite3_finalize(stmt_); }

void SqliteStatement::bindInt(int index, int64_t value) { sqlite3_bind_int64(stmt_, index, value); }

void SqliteStatement::bindText(int index, absl::string_view value) {
  sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

void SqliteStatement::bindNull(int index) { sqlite3_bind_null(stmt_, index); }

absl::StatusOr<bool> SqliteStatement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return sqliteError(sqlite3_db_handle(stmt_), absl::StrCat("statement ", name_));
}

absl::Status SqliteStatement::run() {
  while (true) {
    absl::StatusOr<bool> row = step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
  }
}

void SqliteStatement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t SqliteStatement::columnInt(int column) const { return sqlite3_column_int64(stmt_, column); }

double SqliteStatement::columnDouble(int column) const {
  return sqlite3_column_double(stmt_, column);
}

std::string SqliteStatement::columnText(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return {};
  int bytes = sqlite3_column_bytes(stmt_, column);
  return std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(bytes));
}

absl::StatusOr<StatementUse> StatementCache::get(absl::string_view name, absl::string_view sql) {
  auto it = statements_.find(name);
  if (it == statements_.end()) {
    absl::StatusOr<SqliteStatement> statement = SqliteStatement::prepare(db_, name, sql);
    if (!statement.ok()) return statement.status();
    it = statements_
             .emplace(std::string(name), std::make_unique<SqliteStatement>(*std::move(statement)))
             .first;
  }
  return StatementUse(it->second.get());
}

}  // namespace vigil::mgmt::internal

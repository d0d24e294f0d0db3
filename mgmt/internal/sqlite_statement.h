// A prepared SQLite statement with typed bind and column helpers. Owns the sqlite3_stmt;
// the connection must outlive it. Not thread-safe: the CaseStore mutex guards every use.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vigil::mgmt::internal {

class SqliteStatement {
 public:
  // Compiles `sql` on `db`. Errors name `name` (a short label for logs) and SQLite's message.
  static absl::StatusOr<SqliteStatement> prepare(sqlite3* db, absl::string_view name,
                                                 absl::string_view sql);

  SqliteStatement() = default;
  SqliteStatement(SqliteStatement&& other) noexcept;
  SqliteStatement& operator=(SqliteStatement&& other) noexcept;
  ~SqliteStatement();

  // Binds parameter `index` (1-based). Text is copied by SQLite (SQLITE_TRANSIENT).
  void bindInt(int index, int64_t value);
  void bindText(int index, absl::string_view value);
  void bindNull(int index);

  // Runs one step. Returns true while a row is available and false when done; an error
  // names the statement, the database path and SQLite's message.
  absl::StatusOr<bool> step();

  // Runs the statement to completion, ignoring any rows.
  absl::Status run();

  // Clears bindings and rewinds the statement for the next use.
  void reset();

  int64_t columnInt(int column) const;
  double columnDouble(int column) const;
  std::string columnText(int column) const;

  const std::string& name() const { return name_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  std::string name_;
};

// Builds an Internal error "sqlite <operation> failed on <path>: <sqlite message> (code N)".
absl::Status sqliteError(sqlite3* db, absl::string_view operation);

}  // namespace vigil::mgmt::internal

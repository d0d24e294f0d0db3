// A prepared SQLite statement with typed bind and column helpers. Owns the sqlite3_stmt;
// the connection must outlive it. It is not thread-safe, so the owning store's mutex guards
// every use.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
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

// One use of a statement from a StatementCache. Rewinds the statement and clears its
// bindings when it goes out of scope, so that a statement stopped after its first row
// keeps no read transaction open (an open one keeps a WAL checkpoint from finishing).
class StatementUse {
 public:
  explicit StatementUse(SqliteStatement* statement) : statement_(statement) {}
  StatementUse(StatementUse&& other) noexcept
      : statement_(std::exchange(other.statement_, nullptr)) {}
  StatementUse& operator=(StatementUse&&) = delete;
  StatementUse(const StatementUse&) = delete;
  StatementUse& operator=(const StatementUse&) = delete;
  ~StatementUse() {
    if (statement_ != nullptr) statement_->reset();
  }

  SqliteStatement* operator->() const { return statement_; }
  SqliteStatement& operator*() const { return *statement_; }

 private:
  SqliteStatement* statement_;
};

// The statements of one connection, each compiled on its first use and kept until the
// cache is destroyed, so that a statement run for every alert or run is not parsed and
// planned again each time. It is not thread-safe, so the owner's mutex must guard every
// call and every StatementUse. Destroy the cache before closing the connection.
class StatementCache {
 public:
  explicit StatementCache(sqlite3* db) : db_(db) {}

  // Returns the statement named `name`, compiling `sql` the first time. Each name must
  // be used with one SQL text only. Only one StatementUse of a name may exist at a time.
  absl::StatusOr<StatementUse> get(absl::string_view name, absl::string_view sql);

  // Finalizes every statement.
  void clear() { statements_.clear(); }

  size_t size() const { return statements_.size(); }

 private:
  sqlite3* db_;
  absl::flat_hash_map<std::string, std::unique_ptr<SqliteStatement>> statements_;
};

// Returns "; PATH is damaged ..." with what to do when the SQLite result `code` is
// SQLITE_CORRUPT or SQLITE_NOTADB, and "" for any other code.
std::string damagedFileHint(int code, const char* file);

// Builds an Internal error "sqlite <operation> failed on <path>: <sqlite message> (code N)".
absl::Status sqliteError(sqlite3* db, absl::string_view operation);

}  // namespace vigil::mgmt::internal

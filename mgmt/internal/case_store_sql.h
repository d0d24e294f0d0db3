// SQL pieces shared by the case store's source files: the prepared statements, the case
// column list and its reader, statement scope guards and a write transaction. Callers hold
// the store's mutex.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "mgmt/case_store.h"
#include "mgmt/internal/sqlite_statement.h"

namespace vigil::mgmt::internal {

// Columns that readCase() expects, in order. The last one is the case's tags as a JSON
// array, sorted.
extern const char* const kCaseColumns;

// Reads a row selected with kCaseColumns.
Case readCase(const SqliteStatement& row);

// Resets a statement when the scope ends, so an early error return never leaves it
// half-stepped (which would hold a read lock open).
class ResetOnExit {
 public:
  explicit ResetOnExit(SqliteStatement& statement) : statement_(statement) {}
  ~ResetOnExit() { statement_.reset(); }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  SqliteStatement& statement_;
};

// BEGIN IMMEDIATE on construction (check status()); ROLLBACK on destruction unless
// commit() succeeded. A failed COMMIT is rolled back too, so the connection is never left
// inside a transaction. Inside a transaction already open on the connection (a keyed
// playbook action, CaseStore::runKeyedAction()), it is a SAVEPOINT instead: commit()
// releases it and destruction rolls back to it, and the outer transaction decides.
class WriteTransaction {
 public:
  explicit WriteTransaction(sqlite3* db);
  ~WriteTransaction();
  WriteTransaction(const WriteTransaction&) = delete;
  WriteTransaction& operator=(const WriteTransaction&) = delete;

  const absl::Status& status() const { return begin_status_; }
  absl::Status commit();

 private:
  sqlite3* db_;
  absl::Status begin_status_;
  bool open_ = false;
  bool nested_ = false;
};

// BEGIN DEFERRED; ends with COMMIT (reads only) when the scope ends. Inside a transaction
// already open on the connection it does nothing, and the reads join that transaction.
class ReadTransaction {
 public:
  explicit ReadTransaction(sqlite3* db);
  ~ReadTransaction();
  ReadTransaction(const ReadTransaction&) = delete;
  ReadTransaction& operator=(const ReadTransaction&) = delete;

  const absl::Status& status() const { return begin_status_; }

 private:
  sqlite3* db_;
  absl::Status begin_status_;
  bool nested_ = false;
};

// Runs a statement that returns no rows.
absl::Status execSql(sqlite3* db, const char* name, const std::string& sql);

}  // namespace vigil::mgmt::internal

namespace vigil::mgmt {

// Statements of the hot paths, prepared once when the store opens.
struct CaseStore::Statements {
  internal::SqliteStatement begin_read;
  internal::SqliteStatement begin_write;
  internal::SqliteStatement commit;
  internal::SqliteStatement rollback;
  internal::SqliteStatement find_open;
  internal::SqliteStatement insert_case;
  internal::SqliteStatement update_case;
  internal::SqliteStatement insert_alert;
  internal::SqliteStatement insert_evidence;
  internal::SqliteStatement insert_timeline;
  internal::SqliteStatement set_ack;
  internal::SqliteStatement touch_case;
  internal::SqliteStatement get_case;
  internal::SqliteStatement get_alerts;
  internal::SqliteStatement get_evidence;
  internal::SqliteStatement read_queued_alert;
  internal::SqliteStatement remove_queued_alert;
  internal::SqliteStatement queue_alert;
  internal::SqliteStatement queued_alerts_after;
  internal::SqliteStatement find_action_key;
  internal::SqliteStatement insert_action_key;
};

}  // namespace vigil::mgmt

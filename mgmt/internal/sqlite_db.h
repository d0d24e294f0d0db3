// Opening a SQLite database for records that must survive a crash: WAL journal,
// synchronous=FULL (the WAL is fsynced at every commit), a busy timeout, and a schema
// version kept in PRAGMA user_version.
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vigil::mgmt::internal {

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using SqliteHandle = std::unique_ptr<sqlite3, SqliteCloser>;

// Opens or creates `path` read-write with WAL and synchronous=FULL. `what` names the
// database in errors ("token store", "audit log"). Unavailable when the file cannot be
// opened, Internal when a pragma fails.
absl::StatusOr<SqliteHandle> openDurableDb(const std::string& path, absl::string_view what,
                                           int busy_timeout_ms = 5000);

// Runs `sql` (one or more statements, no rows expected).
absl::Status execSql(sqlite3* db, const char* sql);

// Returns PRAGMA user_version.
absl::StatusOr<int> userVersion(sqlite3* db);

}  // namespace vigil::mgmt::internal

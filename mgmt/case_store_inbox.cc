// The alert inbox: alerts stored by the case sink and filed in cases later by the
// case.attach_alert action of a playbook run.
#include <sqlite3.h>

#include <optional>

#include "absl/strings/str_cat.h"
#include "mgmt/case_store.h"
#include "mgmt/internal/case_store_sql.h"
#include "mgmt/internal/sqlite_statement.h"
#include "mgmt/internal/stored_alert.h"

namespace vigil::mgmt {

using internal::SqliteStatement;
using internal::WriteTransaction;

absl::StatusOr<std::vector<int64_t>> CaseStore::queueAlerts(
    absl::Span<const correlate::Alert> alerts) {
  for (const correlate::Alert& alert : alerts) {
    if (!parseSeverity(alert.level).ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("alert ", alert.id, " of rule ", alert.rule_id, ": level=", alert.level,
                       " is not a Sigma level; use informational, low, medium, high or critical"));
    }
  }
  StoreLock lock(*this);
  SqliteStatement& insert = stmts_->queue_alert;
  internal::ResetOnExit reset(insert);
  if (absl::Status s = exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  std::vector<int64_t> ids;
  ids.reserve(alerts.size());
  const int64_t now_ns = options_.clock->nowNs();
  for (const correlate::Alert& alert : alerts) {
    insert.bindText(1, alert.tenant);
    insert.bindText(2, alert.id);
    insert.bindText(3, alert.rule_id);
    insert.bindInt(4, now_ns);
    insert.bindText(5, internal::encodeStoredAlert(alert));
    absl::Status s = insert.run();
    insert.reset();
    if (!s.ok()) {
      exec("ROLLBACK").IgnoreError();
      return s;
    }
    ids.push_back(sqlite3_last_insert_rowid(db_));
  }
  if (absl::Status s = exec("COMMIT"); !s.ok()) {
    // A failed COMMIT can leave the transaction open; end it so the next batch can begin.
    if (!sqlite3_get_autocommit(db_)) exec("ROLLBACK").IgnoreError();
    return s;
  }
  return ids;
}

absl::StatusOr<IngestResult> CaseStore::attachQueuedAlert(int64_t inbox_id,
                                                         std::optional<absl::string_view> tenant,
                                                         const correlate::Alert* decoded) {
  StoreLock lock(*this);
  // Inside the caller's transaction (runKeyedAction()) a savepoint would only duplicate the
  // caller's rollback. It also made SQLite copy every page this filing touches into a
  // statement journal, which outgrew SQLite's in-memory part and was written to a file
  // under /var/tmp for each alert.
  std::optional<WriteTransaction> txn;
  if (sqlite3_get_autocommit(db_)) {
    txn.emplace(db_);
    if (!txn->status().ok()) return txn->status();
  }
  std::string stored;
  {
    SqliteStatement& read = stmts_->read_queued_alert;
    internal::ResetOnExit reset(read);
    read.bindInt(1, inbox_id);
    absl::StatusOr<bool> row = read.step();
    if (!row.ok()) return row.status();
    if (!*row) {
      return absl::NotFoundError(absl::StrCat(
          "inbox alert ", inbox_id, " does not exist; it was filed in a case already"));
    }
    // The message does not say whether another tenant's alert exists.
    if (tenant.has_value() && read.columnText(0) != *tenant) {
      return absl::NotFoundError(
          absl::StrCat("inbox alert ", inbox_id, " is not an alert of tenant ", *tenant));
    }
    if (decoded == nullptr) stored = read.columnText(1);
  }
  absl::StatusOr<correlate::Alert> alert;
  if (decoded == nullptr) {
    alert = internal::decodeStoredAlert(stored);
    if (!alert.ok()) {
      return absl::DataLossError(
          absl::StrCat("inbox alert ", inbox_id, ": ", alert.status().message()));
    }
    decoded = &*alert;
  }
  absl::StatusOr<IngestResult> result = ingestOne(*decoded);
  if (!result.ok()) return result.status();
  {
    SqliteStatement& remove = stmts_->remove_queued_alert;
    internal::ResetOnExit reset(remove);
    remove.bindInt(1, inbox_id);
    if (absl::Status s = remove.run(); !s.ok()) return s;
  }
  if (txn.has_value()) {
    if (absl::Status s = txn->commit(); !s.ok()) return s;
  }
  return *result;
}

absl::StatusOr<std::vector<std::pair<int64_t, std::string>>> CaseStore::queuedAlertsAfter(
    int64_t after_id, size_t limit) {
  std::lock_guard<std::recursive_mutex> lock(mu_);  // reads inside a group transaction
  SqliteStatement& read = stmts_->queued_alerts_after;
  internal::ResetOnExit reset(read);
  read.bindInt(1, after_id);
  read.bindInt(2, static_cast<int64_t>(limit));
  std::vector<std::pair<int64_t, std::string>> out;
  while (true) {
    absl::StatusOr<bool> row = read.step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.emplace_back(read.columnInt(0), read.columnText(1));
  }
  return out;
}

absl::StatusOr<int64_t> CaseStore::queuedAlertCount() {
  std::lock_guard<std::recursive_mutex> lock(mu_);  // reads inside a group transaction
  absl::StatusOr<SqliteStatement> count =
      SqliteStatement::prepare(db_, "count_queued_alerts", "SELECT COUNT(*) FROM alert_inbox");
  if (!count.ok()) return count.status();
  absl::StatusOr<bool> row = count->step();
  if (!row.ok()) return row.status();
  return *row ? count->columnInt(0) : 0;
}

}  // namespace vigil::mgmt

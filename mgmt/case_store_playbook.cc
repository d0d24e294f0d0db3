// Case operations of playbook runs, built on the analyst calls of case_store_work.cc so
// that every change a playbook makes lands in the case timeline like an analyst's.
#include <algorithm>
#include <set>

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "mgmt/case_store.h"
#include "mgmt/internal/case_store_sql.h"
#include "mgmt/internal/sqlite_statement.h"

namespace vigil::mgmt {
namespace {

Actor playbookActor(absl::string_view name) { return Actor{std::string(name), /*human=*/false}; }

}  // namespace

absl::StatusOr<int64_t> CaseStore::createPlaybookCase(absl::string_view title, Severity severity,
                                                      absl::string_view tenant,
                                                      absl::string_view rule_id,
                                                      absl::string_view origin) {
  NewCase fields;
  fields.title = std::string(title);
  fields.severity = severity;
  fields.tenant = std::string(tenant);
  fields.description = absl::StrCat("Opened by ", rule_id, " (", origin, ").");
  absl::StatusOr<Case> created = createCase(fields, playbookActor(rule_id));
  if (!created.ok()) return created.status();
  return created->id;
}

absl::Status CaseStore::addCaseNote(int64_t id, absl::string_view author, absl::string_view text) {
  return addNote(id, std::string(text), playbookActor(author)).status();
}

absl::Status CaseStore::addCaseTags(int64_t id, absl::Span<const std::string> tags) {
  absl::StatusOr<std::vector<std::string>> existing = caseTags(id);
  if (!existing.ok()) return existing.status();
  std::set<std::string> merged(existing->begin(), existing->end());
  const size_t before = merged.size();
  merged.insert(tags.begin(), tags.end());
  if (merged.size() == before) return absl::OkStatus();
  CaseUpdate update;
  update.tags = std::vector<std::string>(merged.begin(), merged.end());
  return updateCase(id, update, playbookActor("playbook")).status();
}

absl::Status CaseStore::setCaseSeverity(int64_t id, Severity severity) {
  CaseUpdate update;
  update.severity = severity;
  return updateCase(id, update, playbookActor("playbook")).status();
}

absl::Status CaseStore::updatePlaybookCase(int64_t id, const CaseUpdate& update,
                                           absl::string_view author) {
  return updateCase(id, update, playbookActor(author)).status();
}

absl::StatusOr<EvidenceFile> CaseStore::addPlaybookEvidence(int64_t id, const std::string& name,
                                                            const std::string& content_type,
                                                            absl::string_view bytes,
                                                            absl::string_view author) {
  bool added = false;
  return addEvidenceFile(id, name, content_type, bytes, playbookActor(author), &added);
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> CaseStore::caseNotes(int64_t id) {
  absl::StatusOr<CaseDetail> detail = getCase(id);
  if (!detail.ok()) return detail.status();
  std::vector<std::pair<std::string, std::string>> out;
  for (const CaseNote& note : detail->notes) out.emplace_back(note.author, note.body);
  return out;
}

absl::StatusOr<std::vector<std::string>> CaseStore::caseTags(int64_t id) {
  absl::StatusOr<CaseDetail> detail = getCase(id);
  if (!detail.ok()) return detail.status();
  return detail->info.tags;
}

absl::StatusOr<CaseStore::KeyedActionResult> CaseStore::runKeyedAction(
    absl::string_view key, absl::string_view tenant, absl::string_view action_name,
    const std::function<absl::StatusOr<KeyedActionResult>()>& action, bool* replayed) {
  *replayed = false;
  StoreLock lock(*this);
  if (group_open_ && group_owner_ == std::this_thread::get_id() && !group_transaction_open_) {
    if (absl::Status st = exec("BEGIN IMMEDIATE"); !st.ok()) return st;
    group_transaction_open_ = true;
  }
  // Inside the group's transaction this is a savepoint, so a failed action undoes only
  // its own writes and the group goes on.
  internal::WriteTransaction txn(db_);
  if (!txn.status().ok()) return txn.status();
  {
    internal::SqliteStatement& find = stmts_->find_action_key;
    internal::ResetOnExit reset(find);
    find.bindText(1, key);
    absl::StatusOr<bool> row = find.step();
    if (!row.ok()) return row.status();
    if (*row) {
      if (find.columnText(0) != tenant) {
        return absl::PermissionDeniedError(absl::StrCat(
            "idempotency key ", key, " was recorded for another tenant's playbook run"));
      }
      *replayed = true;
      return KeyedActionResult{find.columnInt(1), find.columnText(2)};
    }
  }

  absl::StatusOr<KeyedActionResult> done = action();
  if (!done.ok()) return done.status();  // the destructor rolls the action's writes back
  {
    internal::SqliteStatement& insert = stmts_->insert_action_key;
    internal::ResetOnExit reset(insert);
    insert.bindText(1, key);
    insert.bindText(2, tenant);
    insert.bindText(3, action_name);
    insert.bindInt(4, done->case_id);
    insert.bindText(5, done->result_json);
    insert.bindInt(6, options_.clock->nowNs());
    if (absl::Status st = insert.run(); !st.ok()) return st;
  }
  if (absl::Status st = txn.commit(); !st.ok()) return st;
  return done;
}

CaseStore::StoreLock::StoreLock(CaseStore& store) : store_(store) {
  std::unique_lock<std::recursive_mutex> lock(store_.mu_);
  const auto foreign_transaction_open = [this] {
    return store_.group_transaction_open_ && store_.group_owner_ != std::this_thread::get_id();
  };
  if (foreign_transaction_open()) {
    // The wait releases mu_, so the owner can go on with the group and commit it. A nested
    // StoreLock never gets here: the outer one closed the transaction, and the owner
    // cannot open another while this thread holds mu_.
    store_.group_transaction_closed_.wait_for(lock, store_.options_.foreign_group_wait,
                                              [&] { return !foreign_transaction_open(); });
    if (foreign_transaction_open()) {
      store_.commitGroupTransactionLocked().IgnoreError();  // kept for commitGroup()
    }
  }
  lock.release();  // unlocked by ~StoreLock()
}

absl::Status CaseStore::commitGroupTransactionLocked() {
  group_transaction_open_ = false;
  group_transaction_closed_.notify_all();
  absl::Status status = exec("COMMIT");
  if (status.ok()) return status;
  // A failed COMMIT can leave the transaction open; end it so the next one can begin.
  if (!sqlite3_get_autocommit(db_)) exec("ROLLBACK").IgnoreError();
  VIGIL_LOG_ERROR("case store group commit failed, its actions run again error=\"{}\"",
                  logText(status.ToString()));
  if (group_status_.ok()) group_status_ = status;
  return status;
}

bool CaseStore::tryBeginGroupCommit() {
  StoreLock lock(*this);
  if (group_open_ && group_owner_ != std::this_thread::get_id()) return false;
  group_open_ = true;
  group_owner_ = std::this_thread::get_id();
  return true;
}

absl::Status CaseStore::commitGroup() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  if (!group_open_ || group_owner_ != std::this_thread::get_id()) {
    return absl::FailedPreconditionError(
        "commitGroup() called by a thread that does not own the open group commit; call "
        "tryBeginGroupCommit() first");
  }
  if (group_transaction_open_) commitGroupTransactionLocked().IgnoreError();
  absl::Status status = std::move(group_status_);
  group_status_ = absl::OkStatus();
  group_open_ = false;
  group_owner_ = std::thread::id();
  return status;
}

bool CaseStore::inGroupCommit() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return group_open_ && group_owner_ == std::this_thread::get_id();
}

absl::StatusOr<std::optional<int64_t>> CaseStore::findCaseOfAlert(absl::string_view tenant,
                                                                  absl::string_view alert_id) {
  StoreLock lock(*this);
  absl::StatusOr<internal::SqliteStatement> s = internal::SqliteStatement::prepare(
      db_, "find_case_of_alert",
      "SELECT case_id FROM alerts WHERE tenant = ? AND alert_id = ? ORDER BY id DESC LIMIT 1");
  if (!s.ok()) return s.status();
  s->bindText(1, tenant);
  s->bindText(2, alert_id);
  absl::StatusOr<bool> row = s->step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<int64_t>();
  return std::optional<int64_t>(s->columnInt(0));
}

}  // namespace vigil::mgmt

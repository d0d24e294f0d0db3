// CaseStore operations that playbook runs perform through the case connector: open a
// case, add notes and tags, change the severity, and find the case of an alert.
#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "mgmt/case_store.h"
#include "mgmt/internal/sqlite_statement.h"

namespace vigil::mgmt {
namespace {

using internal::SqliteStatement;

absl::Status requireCase(sqlite3* db, int64_t id) {
  absl::StatusOr<SqliteStatement> s =
      SqliteStatement::prepare(db, "case_exists", "SELECT 1 FROM cases WHERE id = ?");
  if (!s.ok()) return s.status();
  s->bindInt(1, id);
  absl::StatusOr<bool> row = s->step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("case ", id, " does not exist"));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int64_t> CaseStore::createCase(absl::string_view title, Severity severity,
                                              absl::string_view tenant, absl::string_view rule_id,
                                              absl::string_view origin) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<SqliteStatement> s = SqliteStatement::prepare(
      db_, "create_case",
      "INSERT INTO cases (title, severity, status, tenant, rule_id, group_key, first_event_ns, "
      "detect_ns, updated_ns, alert_count) VALUES (?, ?, 'new', ?, ?, ?, ?, ?, ?, 0)");
  if (!s.ok()) return s.status();
  const int64_t now_ns = options_.clock->nowNs();
  s->bindText(1, title);
  s->bindInt(2, static_cast<int64_t>(severity));
  s->bindText(3, tenant);
  s->bindText(4, rule_id);
  s->bindText(5, absl::StrCat("{\"origin\":\"", origin, "\"}"));
  s->bindInt(6, now_ns);
  s->bindInt(7, now_ns);
  s->bindInt(8, now_ns);
  if (absl::Status st = s->run(); !st.ok()) return st;
  return sqlite3_last_insert_rowid(db_);
}

absl::Status CaseStore::addCaseNote(int64_t id, absl::string_view author, absl::string_view text) {
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status st = requireCase(db_, id); !st.ok()) return st;
  absl::StatusOr<SqliteStatement> s = SqliteStatement::prepare(
      db_, "add_note",
      "INSERT INTO case_notes (case_id, author, text, created_ns) VALUES (?, ?, ?, ?)");
  if (!s.ok()) return s.status();
  s->bindInt(1, id);
  s->bindText(2, author);
  s->bindText(3, text);
  s->bindInt(4, options_.clock->nowNs());
  return s->run();
}

absl::Status CaseStore::addCaseTags(int64_t id, absl::Span<const std::string> tags) {
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status st = requireCase(db_, id); !st.ok()) return st;
  absl::StatusOr<SqliteStatement> s = SqliteStatement::prepare(
      db_, "add_tag", "INSERT OR IGNORE INTO case_tags (case_id, tag) VALUES (?, ?)");
  if (!s.ok()) return s.status();
  for (const std::string& tag : tags) {
    s->bindInt(1, id);
    s->bindText(2, tag);
    if (absl::Status st = s->run(); !st.ok()) return st;
    s->reset();
  }
  return absl::OkStatus();
}

absl::Status CaseStore::setCaseSeverity(int64_t id, Severity severity) {
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status st = requireCase(db_, id); !st.ok()) return st;
  absl::StatusOr<SqliteStatement> s = SqliteStatement::prepare(
      db_, "set_severity", "UPDATE cases SET severity = ?, updated_ns = ? WHERE id = ?");
  if (!s.ok()) return s.status();
  s->bindInt(1, static_cast<int64_t>(severity));
  s->bindInt(2, options_.clock->nowNs());
  s->bindInt(3, id);
  return s->run();
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> CaseStore::caseNotes(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<SqliteStatement> s = SqliteStatement::prepare(
      db_, "case_notes", "SELECT author, text FROM case_notes WHERE case_id = ? ORDER BY id");
  if (!s.ok()) return s.status();
  s->bindInt(1, id);
  std::vector<std::pair<std::string, std::string>> out;
  while (true) {
    absl::StatusOr<bool> row = s->step();
    if (!row.ok()) return row.status();
    if (!*row) return out;
    out.emplace_back(s->columnText(0), s->columnText(1));
  }
}

absl::StatusOr<std::vector<std::string>> CaseStore::caseTags(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<SqliteStatement> s = SqliteStatement::prepare(
      db_, "case_tags", "SELECT tag FROM case_tags WHERE case_id = ? ORDER BY tag");
  if (!s.ok()) return s.status();
  s->bindInt(1, id);
  std::vector<std::string> out;
  while (true) {
    absl::StatusOr<bool> row = s->step();
    if (!row.ok()) return row.status();
    if (!*row) return out;
    out.push_back(s->columnText(0));
  }
}

absl::StatusOr<std::optional<int64_t>> CaseStore::findCaseOfAlert(absl::string_view tenant,
                                                                  absl::string_view alert_id) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<SqliteStatement> s = SqliteStatement::prepare(
      db_, "case_of_alert",
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

#include "mgmt/internal/case_store_sql.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace vigil::mgmt::internal {
namespace {

std::vector<std::string> parseTags(const std::string& json_text) {
  std::vector<std::string> tags;
  nlohmann::json parsed = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_array()) return tags;
  for (const nlohmann::json& tag : parsed) {
    if (tag.is_string()) tags.push_back(tag.get<std::string>());
  }
  return tags;
}

}  // namespace

const char* const kCaseColumns =
    "id, title, severity, status, resolution, assignee, tenant, rule_id, group_key, "
    "first_event_ns, detect_ns, updated_ns, alert_count, description, resolution_note, "
    "created_by, ack_ns, resolved_ns, merged_into, "
    "(SELECT json_group_array(tag) FROM (SELECT tag FROM case_tags"
    " WHERE case_tags.case_id = cases.id ORDER BY tag))";

Case readCase(const SqliteStatement& row) {
  Case c;
  c.id = row.columnInt(0);
  c.title = row.columnText(1);
  c.severity = static_cast<Severity>(row.columnInt(2));
  c.status = parseCaseStatus(row.columnText(3)).value_or(CaseStatus::kNew);
  c.resolution = row.columnText(4);
  c.assignee = row.columnText(5);
  c.tenant = row.columnText(6);
  c.rule_id = row.columnText(7);
  c.group_key = row.columnText(8);
  c.first_event_ns = row.columnInt(9);
  c.detect_ns = row.columnInt(10);
  c.updated_ns = row.columnInt(11);
  c.alert_count = row.columnInt(12);
  c.description = row.columnText(13);
  c.resolution_note = row.columnText(14);
  c.created_by = row.columnText(15);
  c.ack_ns = row.columnInt(16);
  c.resolved_ns = row.columnInt(17);
  c.merged_into = row.columnInt(18);
  c.tags = parseTags(row.columnText(19));
  return c;
}

absl::Status execSql(sqlite3* db, const char* name, const std::string& sql) {
  absl::StatusOr<SqliteStatement> statement = SqliteStatement::prepare(db, name, sql);
  if (!statement.ok()) return statement.status();
  return statement->run();
}

WriteTransaction::WriteTransaction(sqlite3* db) : db_(db) {
  nested_ = !sqlite3_get_autocommit(db_);
  begin_status_ = nested_ ? execSql(db_, "savepoint_write", "SAVEPOINT nested_write")
                          : execSql(db_, "begin_write", "BEGIN IMMEDIATE");
  open_ = begin_status_.ok();
}

WriteTransaction::~WriteTransaction() {
  if (nested_) {
    if (open_) {
      execSql(db_, "rollback_savepoint", "ROLLBACK TO nested_write").IgnoreError();
      execSql(db_, "release_savepoint", "RELEASE nested_write").IgnoreError();
    }
    return;
  }
  if (open_ || !sqlite3_get_autocommit(db_)) {
    execSql(db_, "rollback", "ROLLBACK").IgnoreError();
  }
}

absl::Status WriteTransaction::commit() {
  absl::Status status = nested_ ? execSql(db_, "release_savepoint", "RELEASE nested_write")
                                : execSql(db_, "commit", "COMMIT");
  if (status.ok()) open_ = false;
  return status;
}

ReadTransaction::ReadTransaction(sqlite3* db) : db_(db) {
  // Inside a transaction already open, the reads are part of it and must not end it.
  nested_ = !sqlite3_get_autocommit(db_);
  if (!nested_) begin_status_ = execSql(db_, "begin_read", "BEGIN DEFERRED");
}

ReadTransaction::~ReadTransaction() {
  if (!nested_ && begin_status_.ok()) execSql(db_, "end_read", "COMMIT").IgnoreError();
}

}  // namespace vigil::mgmt::internal

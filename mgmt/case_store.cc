#include "mgmt/case_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "mgmt/internal/case_schema.h"
#include "mgmt/internal/case_store_sql.h"
#include "mgmt/internal/sqlite_statement.h"
#include "nlohmann/json.hpp"

namespace vigil::mgmt {
namespace {

using internal::kCaseColumns;
using internal::readCase;
using internal::ReadTransaction;
using internal::ResetOnExit;
using internal::SqliteStatement;

constexpr std::array<absl::string_view, 5> kSeverityNames = {"informational", "low", "medium",
                                                             "high", "critical"};
constexpr std::array<absl::string_view, 4> kStatusNames = {"new", "in_progress", "resolved",
                                                           "closed"};
constexpr std::array<absl::string_view, 4> kResolutionNames = {"true_positive", "false_positive",
                                                               "benign", "duplicate"};
constexpr std::array<absl::string_view, 2> kTaskStatusNames = {"open", "done"};
constexpr std::array<absl::string_view, 8> kSortNames = {
    "detected", "-detected", "severity", "-severity", "updated", "-updated", "id", "-id"};

// ORDER BY clauses by CaseSort value. Ties fall back to the case id so pages are stable.
constexpr std::array<const char*, 8> kSortSql = {
    "detect_ns ASC, id ASC",
    "detect_ns DESC, id DESC",
    "severity ASC, detect_ns ASC, id ASC",
    "severity DESC, detect_ns DESC, id DESC",
    "updated_ns ASC, id ASC",
    "updated_ns DESC, id DESC",
    "id ASC",
    "id DESC",
};

template <typename Enum, size_t N>
absl::StatusOr<Enum> parseName(absl::string_view what, absl::string_view name,
                               const std::array<absl::string_view, N>& names) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == name) return static_cast<Enum>(i);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, "=", name, " is not valid; use one of ", absl::StrJoin(names, ", ")));
}

// Canonical text of an alert's group: a JSON object with sorted keys, so the same group
// always produces the same key whatever order the rule listed its fields in.
std::string groupKey(const correlate::Alert& alert) {
  nlohmann::json group = nlohmann::json::object();
  for (const auto& [field, value] : alert.group) group[field] = value;
  return group.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// "<rule title>: field=value, field=value", or just the title for an ungrouped rule.
std::string caseTitle(const correlate::Alert& alert) {
  std::string title = alert.rule_title.empty() ? alert.rule_id : alert.rule_title;
  if (alert.group.empty()) return title;
  std::vector<std::string> parts;
  parts.reserve(alert.group.size());
  for (const auto& [field, value] : alert.group) parts.push_back(absl::StrCat(field, "=", value));
  return absl::StrCat(title, ": ", absl::StrJoin(parts, ", "));
}

}  // namespace

absl::string_view severityName(Severity severity) {
  return kSeverityNames[static_cast<size_t>(severity)];
}

absl::string_view caseStatusName(CaseStatus status) {
  return kStatusNames[static_cast<size_t>(status)];
}

absl::string_view caseSortName(CaseSort sort) { return kSortNames[static_cast<size_t>(sort)]; }

absl::StatusOr<Severity> parseSeverity(absl::string_view name) {
  return parseName<Severity>("severity", absl::AsciiStrToLower(name), kSeverityNames);
}

absl::StatusOr<CaseStatus> parseCaseStatus(absl::string_view name) {
  return parseName<CaseStatus>("status", name, kStatusNames);
}

absl::StatusOr<CaseSort> parseCaseSort(absl::string_view name) {
  return parseName<CaseSort>("sort", name, kSortNames);
}

absl::string_view resolutionName(Resolution resolution) {
  return kResolutionNames[static_cast<size_t>(resolution)];
}

absl::StatusOr<Resolution> parseResolution(absl::string_view name) {
  return parseName<Resolution>("resolution", name, kResolutionNames);
}

absl::string_view taskStatusName(TaskStatus status) {
  return kTaskStatusNames[static_cast<size_t>(status)];
}

absl::StatusOr<TaskStatus> parseTaskStatus(absl::string_view name) {
  return parseName<TaskStatus>("task status", name, kTaskStatusNames);
}

bool caseTransitionAllowed(CaseStatus from, CaseStatus to) {
  if (from == to) return true;
  if (to == CaseStatus::kInProgress &&
      (from == CaseStatus::kResolved || from == CaseStatus::kClosed)) {
    return true;  // reopen
  }
  return static_cast<int>(to) > static_cast<int>(from);
}

std::vector<std::string> parseMentions(absl::string_view text) {
  auto is_name_char = [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  };
  std::vector<std::string> names;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '@' || (i > 0 && is_name_char(text[i - 1]))) continue;
    size_t end = i + 1;
    while (end < text.size() && is_name_char(text[end])) ++end;
    absl::string_view name = text.substr(i + 1, end - i - 1);
    while (!name.empty() && name.back() == '.') name.remove_suffix(1);
    if (!name.empty() && std::find(names.begin(), names.end(), name) == names.end()) {
      names.emplace_back(name);
    }
    i = end - 1;
  }
  return names;
}

// ---------------------------------------------------------------------------------------
// Prepared statements

absl::Status CaseStore::prepareStatements() {
  auto stmts = std::make_unique<Statements>();
  struct Entry {
    SqliteStatement* target;
    const char* name;
    std::string sql;
  };
  std::vector<Entry> entries = {
      {&stmts->begin_read, "begin_read", "BEGIN DEFERRED"},
      {&stmts->begin_write, "begin_write", "BEGIN IMMEDIATE"},
      {&stmts->commit, "commit", "COMMIT"},
      {&stmts->rollback, "rollback", "ROLLBACK"},
      {&stmts->find_open, "find_open",
       "SELECT id FROM cases WHERE tenant = ?1 AND rule_id = ?2 AND group_key = ?3"
       " AND status IN ('new', 'in_progress') AND rule_id <> ''"},
      {&stmts->insert_case, "insert_case",
       "INSERT INTO cases (title, severity, status, tenant, rule_id, group_key,"
       " first_event_ns, detect_ns, updated_ns, alert_count)"
       " VALUES (?1, ?2, 'new', ?3, ?4, ?5, ?6, ?7, ?8, 1)"},
      {&stmts->update_case, "update_case",
       "UPDATE cases SET severity = MAX(severity, ?2), first_event_ns = MIN(first_event_ns, ?3),"
       " updated_ns = ?4, alert_count = alert_count + 1 WHERE id = ?1"},
      {&stmts->insert_alert, "insert_alert",
       "INSERT INTO alerts (case_id, alert_id, rule_id, level, tenant, group_json,"
       " first_event_ns, last_event_ns, detect_ns, event_count, json)"
       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"},
      {&stmts->insert_evidence, "insert_evidence",
       "INSERT INTO evidence (case_id, alert_id, position, raw) VALUES (?1, ?2, ?3, ?4)"},
      {&stmts->insert_timeline, "insert_timeline",
       "INSERT INTO case_timeline (case_id, at_ns, actor, human, action, field, old_value,"
       " new_value) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"},
      {&stmts->set_ack, "set_ack", "UPDATE cases SET ack_ns = ?2 WHERE id = ?1 AND ack_ns IS NULL"},
      {&stmts->touch_case, "touch_case", "UPDATE cases SET updated_ns = ?2 WHERE id = ?1"},
      {&stmts->get_case, "get_case",
       absl::StrCat("SELECT ", kCaseColumns, " FROM cases WHERE id = ?1")},
      {&stmts->get_alerts, "get_alerts",
       "SELECT id, case_id, alert_id, rule_id, level, tenant, group_json, first_event_ns,"
       " last_event_ns, detect_ns, event_count, json FROM alerts WHERE case_id = ?1 ORDER BY id"},
      {&stmts->get_evidence, "get_evidence",
       "SELECT alert_id, position, raw FROM evidence WHERE case_id = ?1"
       " ORDER BY alert_id, position"},
      {&stmts->read_queued_alert, "read_queued_alert",
       "SELECT tenant, alert FROM alert_inbox WHERE id = ?1"},
      {&stmts->remove_queued_alert, "remove_queued_alert", "DELETE FROM alert_inbox WHERE id = ?1"},
      {&stmts->queue_alert, "queue_alert",
       "INSERT INTO alert_inbox (tenant, alert_id, rule_id, stored_ns, alert)"
       " VALUES (?1, ?2, ?3, ?4, ?5)"},
      {&stmts->queued_alerts_after, "queued_alerts_after",
       "SELECT id, alert FROM alert_inbox WHERE id > ?1 ORDER BY id LIMIT ?2"},
      {&stmts->find_action_key, "find_action_key",
       "SELECT tenant, case_id, result FROM playbook_action_keys WHERE key = ?1"},
      {&stmts->insert_action_key, "insert_action_key",
       "INSERT INTO playbook_action_keys (key, tenant, action, case_id, result, done_ns)"
       " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"},
  };
  for (Entry& entry : entries) {
    absl::StatusOr<SqliteStatement> statement =
        SqliteStatement::prepare(db_, entry.name, entry.sql);
    if (!statement.ok()) return statement.status();
    *entry.target = std::move(*statement);
  }
  stmts_ = std::move(stmts);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// Open and migrate

CaseStore::CaseStore(std::string path, sqlite3* db, CaseStoreOptions options)
    : path_(std::move(path)), db_(db), options_(std::move(options)) {
  if (options_.clock == nullptr) options_.clock = &RealClock::instance();
  if (options_.evidence_dir.empty()) {
    options_.evidence_dir = (std::filesystem::path(path_).parent_path() / "evidence").string();
  }
}

CaseStore::~CaseStore() {
  if (group_transaction_open_) commitGroupTransactionLocked().IgnoreError();
  stmts_.reset();  // statements must be finalized before the connection closes
  sqlite3_close_v2(db_);
}

int CaseStore::latestSchemaVersion() { return static_cast<int>(internal::kMigrations.size()); }

absl::StatusOr<std::unique_ptr<CaseStore>> CaseStore::open(const std::string& path,
                                                           CaseStoreOptions options) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return absl::UnavailableError(absl::StrCat("cannot open case store ", path, ": ", message,
                                               "; check that the folder exists and is writable"));
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  std::unique_ptr<CaseStore> store(new CaseStore(path, db, std::move(options)));

  // The pragma returns the mode actually set. It stays "delete" on file systems without
  // shared memory, and the store needs WAL so readers can run beside the writer.
  if (absl::Status s = store->exec("PRAGMA journal_mode=WAL"); !s.ok()) return s;
  {
    absl::StatusOr<SqliteStatement> mode =
        SqliteStatement::prepare(db, "journal_mode", "PRAGMA journal_mode");
    if (!mode.ok()) return mode.status();
    absl::StatusOr<bool> row = mode->step();
    if (!row.ok()) return row.status();
    std::string current = *row ? mode->columnText(0) : "";
    if (current != "wal") {
      return absl::FailedPreconditionError(
          absl::StrCat("case store ", path, " is in journal_mode=", current,
                       " and cannot switch to wal; put the database on a local file system"));
    }
  }
  // temp_store=MEMORY keeps the statement journals of savepoints (one per keyed action
  // inside a group commit) in memory; SQLite otherwise moves them to a temporary file once
  // they outgrow 64 KiB.
  for (const char* pragma :
       {"PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON", "PRAGMA temp_store=MEMORY"}) {
    if (absl::Status s = store->exec(pragma); !s.ok()) return s;
  }
  if (absl::Status s = store->migrate(); !s.ok()) return s;
  if (absl::Status s = store->prepareStatements(); !s.ok()) return s;
  std::error_code ec;
  std::filesystem::create_directories(store->options_.evidence_dir, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot create evidence folder ",
                                               store->options_.evidence_dir, ": ", ec.message(),
                                               "; check that its parent is writable"));
  }
  return store;
}

absl::Status CaseStore::exec(const char* sql) {
  char* error = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return absl::OkStatus();
  std::string message = error != nullptr ? error : sqlite3_errstr(rc);
  sqlite3_free(error);
  // Name the statement by its first line, which is enough to find it in the source.
  absl::string_view head(sql);
  head.remove_prefix(std::min(head.size(), head.find_first_not_of('\n')));
  head = head.substr(0, head.find('\n'));
  return absl::InternalError(
      absl::StrCat("sqlite statement '", head, "' failed on ", path_, ": ", message,
                   internal::damagedFileHint(rc, path_.c_str())));
}

absl::Status CaseStore::migrate() {
  if (absl::Status s = exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
      !s.ok()) {
    return s;
  }
  absl::StatusOr<SqliteStatement> read = SqliteStatement::prepare(
      db_, "read_schema_version", "SELECT MAX(version) FROM schema_version");
  if (!read.ok()) return read.status();
  absl::StatusOr<bool> row = read->step();
  if (!row.ok()) return row.status();
  int version = *row ? static_cast<int>(read->columnInt(0)) : 0;
  read->reset();

  int latest = latestSchemaVersion();
  if (version > latest) {
    return absl::FailedPreconditionError(absl::StrCat(
        "case store ", path_, " has schema version ", version, " but this build knows only up to ",
        latest, "; run a newer vigild or restore a matching backup"));
  }
  for (int next = version + 1; next <= latest; ++next) {
    if (absl::Status s = exec("BEGIN IMMEDIATE"); !s.ok()) return s;
    absl::Status applied = exec(internal::kMigrations[static_cast<size_t>(next - 1)]);
    if (applied.ok()) {
      std::string bump = absl::StrCat(
          "DELETE FROM schema_version; INSERT INTO schema_version "
          "(version) VALUES (",
          next, ")");
      applied = exec(bump.c_str());
    }
    if (!applied.ok()) {
      exec("ROLLBACK").IgnoreError();
      return absl::InternalError(
          absl::StrCat("migration to schema version ", next, " failed: ", applied.message()));
    }
    if (absl::Status s = exec("COMMIT"); !s.ok()) return s;
  }
  schema_version_ = latest;
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// Ingest

absl::StatusOr<IngestResult> CaseStore::ingestAlert(const correlate::Alert& alert) {
  absl::StatusOr<std::vector<IngestResult>> results = ingestAlerts({&alert, 1});
  if (!results.ok()) return results.status();
  return results->front();
}

absl::StatusOr<std::vector<IngestResult>> CaseStore::ingestAlerts(
    absl::Span<const correlate::Alert> alerts) {
  StoreLock lock(*this);
  std::vector<IngestResult> results;
  results.reserve(alerts.size());
  {
    ResetOnExit reset(stmts_->begin_write);
    if (absl::Status s = stmts_->begin_write.run(); !s.ok()) return s;
  }
  for (const correlate::Alert& alert : alerts) {
    absl::StatusOr<IngestResult> result = ingestOne(alert);
    if (!result.ok()) {
      ResetOnExit reset(stmts_->rollback);
      stmts_->rollback.run().IgnoreError();
      return result.status();
    }
    results.push_back(*result);
  }
  ResetOnExit reset(stmts_->commit);
  if (absl::Status s = stmts_->commit.run(); !s.ok()) {
    // A failed COMMIT can leave the transaction open; end it so the next batch can begin.
    if (!sqlite3_get_autocommit(db_)) {
      ResetOnExit reset_rollback(stmts_->rollback);
      stmts_->rollback.run().IgnoreError();
    }
    return s;
  }
  return results;
}

absl::StatusOr<IngestResult> CaseStore::ingestOne(const correlate::Alert& alert) {
  absl::StatusOr<Severity> severity = parseSeverity(alert.level);
  if (!severity.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("alert ", alert.id, " of rule ", alert.rule_id, ": level=", alert.level,
                     " is not a Sigma level; use informational, low, medium, high or critical"));
  }
  const std::string key = groupKey(alert);
  const int64_t now_ns = options_.clock->nowNs();
  IngestResult result;

  {
    SqliteStatement& find = stmts_->find_open;
    ResetOnExit reset(find);
    find.bindText(1, alert.tenant);
    find.bindText(2, alert.rule_id);
    find.bindText(3, key);
    absl::StatusOr<bool> row = find.step();
    if (!row.ok()) return row.status();
    if (*row) result.case_id = find.columnInt(0);
  }

  if (result.case_id == 0) {
    SqliteStatement& insert = stmts_->insert_case;
    ResetOnExit reset(insert);
    insert.bindText(1, caseTitle(alert));
    insert.bindInt(2, static_cast<int64_t>(*severity));
    insert.bindText(3, alert.tenant);
    insert.bindText(4, alert.rule_id);
    insert.bindText(5, key);
    insert.bindInt(6, alert.first_event_ns);
    insert.bindInt(7, alert.detect_ns);
    insert.bindInt(8, now_ns);
    if (absl::Status s = insert.run(); !s.ok()) return s;
    result.case_id = sqlite3_last_insert_rowid(db_);
    result.opened_case = true;
  } else {
    SqliteStatement& update = stmts_->update_case;
    ResetOnExit reset(update);
    update.bindInt(1, result.case_id);
    update.bindInt(2, static_cast<int64_t>(*severity));
    update.bindInt(3, alert.first_event_ns);
    update.bindInt(4, now_ns);
    if (absl::Status s = update.run(); !s.ok()) return s;
  }

  int64_t alert_row = 0;
  {
    SqliteStatement& insert = stmts_->insert_alert;
    ResetOnExit reset(insert);
    insert.bindInt(1, result.case_id);
    insert.bindText(2, alert.id);
    insert.bindText(3, alert.rule_id);
    insert.bindText(4, severityName(*severity));
    insert.bindText(5, alert.tenant);
    insert.bindText(6, key);
    insert.bindInt(7, alert.first_event_ns);
    insert.bindInt(8, alert.last_event_ns);
    insert.bindInt(9, alert.detect_ns);
    insert.bindInt(10, static_cast<int64_t>(alert.event_count));
    insert.bindText(11, correlate::alertToJson(alert));
    if (absl::Status s = insert.run(); !s.ok()) return s;
    alert_row = sqlite3_last_insert_rowid(db_);
  }

  SqliteStatement& evidence = stmts_->insert_evidence;
  for (size_t i = 0; i < alert.evidence.size(); ++i) {
    ResetOnExit reset(evidence);
    evidence.bindInt(1, result.case_id);
    evidence.bindInt(2, alert_row);
    evidence.bindInt(3, static_cast<int64_t>(i));
    evidence.bindText(4, alert.evidence[i]);
    if (absl::Status s = evidence.run(); !s.ok()) return s;
  }

  const Actor correlator{"correlator", /*human=*/false};
  if (result.opened_case) {
    if (absl::Status s = recordLocked(result.case_id, correlator, "created", "", "", ""); !s.ok()) {
      return s;
    }
  }
  if (absl::Status s =
          recordLocked(result.case_id, correlator, "alert_added", "alert", "", alert.id);
      !s.ok()) {
    return s;
  }
  return result;
}

absl::Status CaseStore::recordLocked(int64_t case_id, const Actor& actor, absl::string_view action,
                                     absl::string_view field, absl::string_view old_value,
                                     absl::string_view new_value) {
  const int64_t now_ns = options_.clock->nowNs();
  {
    SqliteStatement& insert = stmts_->insert_timeline;
    ResetOnExit reset(insert);
    insert.bindInt(1, case_id);
    insert.bindInt(2, now_ns);
    insert.bindText(3, actor.name);
    insert.bindInt(4, actor.human ? 1 : 0);
    insert.bindText(5, action);
    insert.bindText(6, field);
    insert.bindText(7, old_value);
    insert.bindText(8, new_value);
    if (absl::Status s = insert.run(); !s.ok()) return s;
  }
  // The first change an analyst makes after the case opened acknowledges it (MTTA).
  if (!actor.human || action == "created") return absl::OkStatus();
  SqliteStatement& ack = stmts_->set_ack;
  ResetOnExit reset(ack);
  ack.bindInt(1, case_id);
  ack.bindInt(2, now_ns);
  return ack.run();
}

absl::Status CaseStore::touchLocked(int64_t case_id) {
  SqliteStatement& touch = stmts_->touch_case;
  ResetOnExit reset(touch);
  touch.bindInt(1, case_id);
  touch.bindInt(2, options_.clock->nowNs());
  return touch.run();
}

// ---------------------------------------------------------------------------------------
// Queries

namespace {

// A WHERE clause built from a filter, with its values in bind order.
struct WhereClause {
  std::string sql;
  std::vector<std::string> texts;  // bound as text unless is_int says otherwise
  std::vector<int64_t> ints;
  std::vector<bool> is_int;

  void add(const std::string& condition) {
    absl::StrAppend(&sql, sql.empty() ? " WHERE " : " AND ", condition);
  }
  void text(const std::string& condition, const std::string& value) {
    add(condition);
    texts.push_back(value);
    ints.push_back(0);
    is_int.push_back(false);
  }
  void integer(const std::string& condition, int64_t value) {
    add(condition);
    texts.emplace_back();
    ints.push_back(value);
    is_int.push_back(true);
  }
  void bind(SqliteStatement& statement) const {
    for (size_t i = 0; i < is_int.size(); ++i) {
      int index = static_cast<int>(i + 1);
      if (is_int[i]) {
        statement.bindInt(index, ints[i]);
      } else {
        statement.bindText(index, texts[i]);
      }
    }
  }
};

// Tenants are passed as one JSON array so any number of them binds to a single parameter.
void addTenantScope(WhereClause& where, const std::optional<std::vector<std::string>>& allowed) {
  if (!allowed) return;
  where.text("tenant IN (SELECT value FROM json_each(?))", nlohmann::json(*allowed).dump());
}

WhereClause whereFor(const CaseFilter& filter) {
  WhereClause where;
  addTenantScope(where, filter.allowed_tenants);
  if (filter.tenant) where.text("tenant = ?", *filter.tenant);
  if (filter.status) where.text("status = ?", std::string(caseStatusName(*filter.status)));
  if (filter.severity) where.integer("severity = ?", static_cast<int64_t>(*filter.severity));
  if (filter.assignee) where.text("assignee = ?", *filter.assignee);
  if (filter.tag) {
    where.text("id IN (SELECT case_id FROM case_tags WHERE tag = ?)", *filter.tag);
  }
  if (filter.text) where.text("instr(lower(title), lower(?)) > 0", *filter.text);
  if (filter.detected_from_ns) where.integer("detect_ns >= ?", *filter.detected_from_ns);
  if (filter.detected_to_ns) where.integer("detect_ns < ?", *filter.detected_to_ns);
  if (filter.updated_from_ns) where.integer("updated_ns >= ?", *filter.updated_from_ns);
  if (filter.updated_to_ns) where.integer("updated_ns < ?", *filter.updated_to_ns);
  return where;
}

}  // namespace

absl::StatusOr<CasePage> CaseStore::listCases(const CaseFilter& filter) {
  if (filter.limit < 1 || filter.limit > CaseFilter::kMaxLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit=", filter.limit, " is out of range; use 1..", CaseFilter::kMaxLimit));
  }
  if (filter.offset < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("offset=", filter.offset, " is negative; use 0 or more"));
  }
  const WhereClause where = whereFor(filter);
  StoreLock lock(*this);
  // One read transaction so the total and the page come from the same snapshot.
  ReadTransaction read(db_);
  if (!read.status().ok()) return read.status();

  CasePage page;
  {
    absl::StatusOr<SqliteStatement> count =
        SqliteStatement::prepare(db_, "count_cases", "SELECT COUNT(*) FROM cases" + where.sql);
    if (!count.ok()) return count.status();
    where.bind(*count);
    absl::StatusOr<bool> row = count->step();
    if (!row.ok()) return row.status();
    page.total = count->columnInt(0);
  }
  absl::StatusOr<SqliteStatement> list = SqliteStatement::prepare(
      db_, "list_cases",
      absl::StrCat("SELECT ", kCaseColumns, " FROM cases", where.sql, " ORDER BY ",
                   kSortSql[static_cast<size_t>(filter.sort)], " LIMIT ", filter.limit, " OFFSET ",
                   filter.offset));
  if (!list.ok()) return list.status();
  where.bind(*list);
  while (true) {
    absl::StatusOr<bool> row = list->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    page.items.push_back(readCase(*list));
  }
  return page;
}

absl::StatusOr<std::vector<Case>> CaseStore::casesDetectedBetween(
    const std::optional<std::vector<std::string>>& allowed_tenants, const std::string& tenant,
    int64_t from_ns, int64_t to_ns) {
  WhereClause where;
  addTenantScope(where, allowed_tenants);
  if (!tenant.empty()) where.text("tenant = ?", tenant);
  if (from_ns != 0) where.integer("detect_ns >= ?", from_ns);
  if (to_ns != 0) where.integer("detect_ns < ?", to_ns);
  StoreLock lock(*this);
  absl::StatusOr<SqliteStatement> list = SqliteStatement::prepare(
      db_, "cases_detected_between",
      absl::StrCat("SELECT ", kCaseColumns, " FROM cases", where.sql, " ORDER BY id"));
  if (!list.ok()) return list.status();
  where.bind(*list);
  std::vector<Case> cases;
  while (true) {
    absl::StatusOr<bool> row = list->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    cases.push_back(readCase(*list));
  }
  return cases;
}

absl::StatusOr<std::string> CaseStore::caseTenant(int64_t id) {
  StoreLock lock(*this);
  absl::StatusOr<SqliteStatement> get =
      SqliteStatement::prepare(db_, "case_tenant", "SELECT tenant FROM cases WHERE id = ?1");
  if (!get.ok()) return get.status();
  get->bindInt(1, id);
  absl::StatusOr<bool> row = get->step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("case ", id, " not found"));
  return get->columnText(0);
}

absl::StatusOr<CaseDetail> CaseStore::getCase(int64_t id) {
  StoreLock lock(*this);
  // Inside runKeyedAction()'s transaction the read is part of it and must not end it.
  const bool in_transaction = !sqlite3_get_autocommit(db_);
  if (!in_transaction) {
    ResetOnExit reset(stmts_->begin_read);
    if (absl::Status s = stmts_->begin_read.run(); !s.ok()) return s;
  }
  auto end_read = [this, in_transaction] {
    if (in_transaction) return absl::OkStatus();
    ResetOnExit reset(stmts_->commit);
    return stmts_->commit.run();
  };
  auto fail = [&](absl::Status status) {
    end_read().IgnoreError();
    return status;
  };

  CaseDetail detail;
  {
    SqliteStatement& get = stmts_->get_case;
    ResetOnExit reset(get);
    get.bindInt(1, id);
    absl::StatusOr<bool> row = get.step();
    if (!row.ok()) return fail(row.status());
    if (!*row) return fail(absl::NotFoundError(absl::StrCat("case ", id, " not found")));
    detail.info = readCase(get);
  }
  {
    SqliteStatement& alerts = stmts_->get_alerts;
    ResetOnExit reset(alerts);
    alerts.bindInt(1, id);
    while (true) {
      absl::StatusOr<bool> row = alerts.step();
      if (!row.ok()) return fail(row.status());
      if (!*row) break;
      StoredAlert a;
      a.id = alerts.columnInt(0);
      a.case_id = alerts.columnInt(1);
      a.alert_id = alerts.columnText(2);
      a.rule_id = alerts.columnText(3);
      a.level = alerts.columnText(4);
      a.tenant = alerts.columnText(5);
      a.group_json = alerts.columnText(6);
      a.first_event_ns = alerts.columnInt(7);
      a.last_event_ns = alerts.columnInt(8);
      a.detect_ns = alerts.columnInt(9);
      a.event_count = alerts.columnInt(10);
      a.json = alerts.columnText(11);
      detail.alerts.push_back(std::move(a));
    }
  }
  {
    SqliteStatement& evidence = stmts_->get_evidence;
    ResetOnExit reset(evidence);
    evidence.bindInt(1, id);
    while (true) {
      absl::StatusOr<bool> row = evidence.step();
      if (!row.ok()) return fail(row.status());
      if (!*row) break;
      detail.evidence.push_back(
          {evidence.columnInt(0), static_cast<int>(evidence.columnInt(1)), evidence.columnText(2)});
    }
  }
  if (absl::Status s = readWorkLocked(id, detail); !s.ok()) return fail(s);
  if (absl::Status s = end_read(); !s.ok()) return s;
  return detail;
}

}  // namespace vigil::mgmt

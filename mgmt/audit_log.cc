#include "mgmt/audit_log.h"

#include <sqlite3.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "mgmt/internal/crypto_util.h"
#include "mgmt/internal/sqlite_db.h"
#include "mgmt/internal/sqlite_statement.h"
#include "nlohmann/json.hpp"

namespace vigil::mgmt {
namespace {

using internal::SqliteStatement;

const std::string kGenesisHash(64, '0');

constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ns INTEGER NOT NULL,
  subject TEXT NOT NULL,
  token_id TEXT NOT NULL,
  remote_addr TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  target TEXT NOT NULL,
  tenants TEXT NOT NULL,
  status INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
PRAGMA user_version = 1;
)sql";

constexpr const char* kColumns =
    "seq, time_ns, subject, token_id, remote_addr, method, path, target, tenants, status,"
    " outcome, prev_hash, hash";

std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

AuditRecord readRecord(const SqliteStatement& row) {
  AuditRecord record;
  record.seq = row.columnInt(0);
  record.time_ns = row.columnInt(1);
  AuditEntry& e = record.entry;
  e.subject = row.columnText(2);
  e.token_id = row.columnText(3);
  e.remote_addr = row.columnText(4);
  e.method = row.columnText(5);
  e.path = row.columnText(6);
  e.target = row.columnText(7);
  nlohmann::json tenants = nlohmann::json::parse(row.columnText(8), nullptr, false);
  if (tenants.is_array()) {
    for (const nlohmann::json& t : tenants) {
      if (t.is_string()) e.tenants.push_back(t.get<std::string>());
    }
  }
  e.status = static_cast<int>(row.columnInt(9));
  e.outcome = row.columnText(10);
  record.prev_hash = row.columnText(11);
  record.hash = row.columnText(12);
  return record;
}

// Finishes a transaction: COMMIT when `status` is OK, else ROLLBACK and pass it on.
absl::Status finish(sqlite3* db, absl::Status status) {
  if (!status.ok()) {
    internal::execSql(db, "ROLLBACK").IgnoreError();
    return status;
  }
  absl::Status committed = internal::execSql(db, "COMMIT");
  if (!committed.ok()) internal::execSql(db, "ROLLBACK").IgnoreError();
  return committed;
}

}  // namespace

AuditLog::AuditLog(std::string path, sqlite3* db, const Clock* clock)
    : path_(std::move(path)), db_(db), clock_(clock) {}

AuditLog::~AuditLog() { sqlite3_close_v2(db_); }

std::string AuditLog::defaultPath(absl::string_view state_dir) {
  return absl::StrCat(state_dir, "/audit.db");
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::open(const std::string& path,
                                                         const Clock* clock) {
  absl::StatusOr<internal::SqliteHandle> db = internal::openDurableDb(path, "audit log");
  if (!db.ok()) return db.status();
  std::unique_ptr<AuditLog> log(
      new AuditLog(path, db->release(), clock != nullptr ? clock : &RealClock::instance()));
  if (absl::Status s = log->migrate(); !s.ok()) return s;
  return log;
}

absl::Status AuditLog::migrate() {
  absl::StatusOr<int> version = internal::userVersion(db_);
  if (!version.ok()) return version.status();
  if (*version == 1) return absl::OkStatus();
  if (*version > 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("audit log ", path_, " has schema version ", *version,
                     " but this build knows only version 1; run a newer vigild"));
  }
  if (absl::Status s = internal::execSql(db_, "BEGIN IMMEDIATE"); !s.ok()) return s;
  return finish(db_, internal::execSql(db_, kSchemaV1));
}

std::string AuditLog::canonicalRecord(const AuditRecord& r) {
  const AuditEntry& e = r.entry;
  nlohmann::json fields = {r.seq,    r.time_ns, e.subject, e.token_id, e.remote_addr,
                           e.method, e.path,    e.target,  e.tenants,  e.status,
                           e.outcome, r.prev_hash};
  return dump(fields);
}

absl::StatusOr<AuditRecord> AuditLog::append(const AuditEntry& entry) {
  std::lock_guard<std::mutex> lock(mu_);
  // IMMEDIATE takes the write lock first, so reading the chain head and inserting the
  // next record cannot interleave with another writer.
  if (absl::Status s = internal::execSql(db_, "BEGIN IMMEDIATE"); !s.ok()) return s;

  AuditRecord record;
  record.entry = entry;
  record.time_ns = clock_->nowNs();
  absl::Status status = [&]() -> absl::Status {
    absl::StatusOr<SqliteStatement> head = SqliteStatement::prepare(
        db_, "audit_head", "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
    if (!head.ok()) return head.status();
    absl::StatusOr<bool> row = head->step();
    if (!row.ok()) return row.status();
    record.prev_hash = *row ? head->columnText(1) : kGenesisHash;
    int64_t last_seq = *row ? head->columnInt(0) : 0;
    head->reset();

    // AUTOINCREMENT never reuses a seq, so the next one is max(seq, sqlite_sequence) + 1.
    absl::StatusOr<SqliteStatement> counter = SqliteStatement::prepare(
        db_, "audit_counter", "SELECT seq FROM sqlite_sequence WHERE name = 'audit'");
    if (!counter.ok()) return counter.status();
    row = counter->step();
    if (!row.ok()) return row.status();
    if (*row) last_seq = std::max(last_seq, counter->columnInt(0));
    counter->reset();
    record.seq = last_seq + 1;
    record.hash = internal::sha256Hex(canonicalRecord(record));

    absl::StatusOr<SqliteStatement> insert = SqliteStatement::prepare(
        db_, "audit_insert",
        absl::StrCat("INSERT INTO audit (", kColumns,
                     ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"));
    if (!insert.ok()) return insert.status();
    const AuditEntry& e = record.entry;
    insert->bindInt(1, record.seq);
    insert->bindInt(2, record.time_ns);
    insert->bindText(3, e.subject);
    insert->bindText(4, e.token_id);
    insert->bindText(5, e.remote_addr);
    insert->bindText(6, e.method);
    insert->bindText(7, e.path);
    insert->bindText(8, e.target);
    insert->bindText(9, dump(e.tenants));
    insert->bindInt(10, e.status);
    insert->bindText(11, e.outcome);
    insert->bindText(12, record.prev_hash);
    insert->bindText(13, record.hash);
    return insert->run();
  }();
  if (absl::Status s = finish(db_, std::move(status)); !s.ok()) return s;
  return record;
}

absl::StatusOr<AuditPage> AuditLog::list(const AuditFilter& filter) {
  if (filter.limit < 1 || filter.limit > AuditFilter::kMaxLimit) {
    return absl::InvalidArgumentError(absl::StrCat("limit=", filter.limit,
                                                   " is out of range; use 1..",
                                                   AuditFilter::kMaxLimit));
  }
  if (filter.after_seq < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("after=", filter.after_seq, " is negative; use 0 or a seq from a page"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<SqliteStatement> select = SqliteStatement::prepare(
      db_, "audit_list",
      absl::StrCat("SELECT ", kColumns,
                   " FROM audit WHERE seq > ?1 AND (?2 IS NULL OR EXISTS (SELECT 1 FROM"
                   " json_each(audit.tenants) AS t, json_each(?2) AS f WHERE t.value = f.value))"
                   " ORDER BY seq LIMIT ?3"));
  if (!select.ok()) return select.status();
  select->bindInt(1, filter.after_seq);
  if (filter.tenants) select->bindText(2, dump(*filter.tenants));
  // One extra row tells whether another page follows.
  select->bindInt(3, filter.limit + 1);
  AuditPage page;
  while (true) {
    absl::StatusOr<bool> row = select->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (static_cast<int>(page.items.size()) == filter.limit) {
      page.next_after = page.items.back().seq;
      break;
    }
    page.items.push_back(readRecord(*select));
  }
  return page;
}

absl::StatusOr<AuditVerifyReport> AuditLog::verify(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr);
  internal::SqliteHandle db(raw);
  if (rc != SQLITE_OK) {
    return absl::NotFoundError(absl::StrCat("cannot open audit log ", path, ": ",
                                            raw != nullptr ? sqlite3_errmsg(raw) : "out of memory",
                                            "; pass the state_dir that holds audit.db"));
  }
  sqlite3_busy_timeout(db.get(), 5000);
  // One read transaction covers the records and the AUTOINCREMENT counter. Without it, a
  // record that vigild appends between the two reads looks like one removed from the end.
  // Closing the connection ends the transaction.
  if (absl::Status s = internal::execSql(db.get(), "BEGIN"); !s.ok()) return s;
  absl::StatusOr<SqliteStatement> select = SqliteStatement::prepare(
      db.get(), "audit_verify", absl::StrCat("SELECT ", kColumns, " FROM audit ORDER BY seq"));
  if (!select.ok()) return select.status();

  AuditVerifyReport report;
  auto broken = [&report](int64_t seq, std::string problem) {
    report.ok = false;
    report.first_bad_seq = seq;
    report.problem = std::move(problem);
    return report;
  };
  std::string prev_hash = kGenesisHash;
  int64_t expected_seq = 1;
  while (true) {
    absl::StatusOr<bool> row = select->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    AuditRecord record = readRecord(*select);
    if (record.seq != expected_seq) {
      return broken(expected_seq, absl::StrCat("record ", expected_seq, " is missing (next seq is ",
                                               record.seq, ")"));
    }
    if (record.prev_hash != prev_hash) {
      return broken(record.seq, absl::StrCat("record ", record.seq,
                                             " does not link to the record before it "
                                             "(prev_hash differs)"));
    }
    if (internal::sha256Hex(canonicalRecord(record)) != record.hash) {
      return broken(record.seq, absl::StrCat("record ", record.seq,
                                             " was changed after it was written (hash differs)"));
    }
    prev_hash = record.hash;
    ++expected_seq;
    ++report.records;
  }

  absl::StatusOr<SqliteStatement> counter = SqliteStatement::prepare(
      db.get(), "audit_counter", "SELECT seq FROM sqlite_sequence WHERE name = 'audit'");
  if (!counter.ok()) return counter.status();
  absl::StatusOr<bool> row = counter->step();
  if (!row.ok()) return row.status();
  int64_t highest = *row ? counter->columnInt(0) : 0;
  if (highest > report.records) {
    return broken(report.records + 1,
                  absl::StrCat("records ", report.records + 1, "..", highest,
                               " were removed from the end of the log"));
  }
  return report;
}

}  // namespace vigil::mgmt

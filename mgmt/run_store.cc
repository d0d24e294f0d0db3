#include "mgmt/run_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "mgmt/internal/sqlite_statement.h"

namespace vigil::mgmt {
namespace {

using internal::SqliteStatement;
using internal::StatementUse;

constexpr std::array<absl::string_view, 7> kStateNames = {
    "running", "waiting_approval", "delayed", "succeeded", "failed", "denied", "timed_out"};

// Version 1 of the runs database. Later versions append statements; the user_version
// pragma records the version applied.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  playbook TEXT NOT NULL,
  playbook_hash TEXT NOT NULL,
  tenant TEXT NOT NULL,
  alert_id TEXT NOT NULL,
  rule_id TEXT NOT NULL,
  alert_json TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('running', 'waiting_approval', 'delayed', 'succeeded',
                                       'failed', 'denied', 'timed_out')),
  created_ns INTEGER NOT NULL,
  updated_ns INTEGER NOT NULL,
  finished_ns INTEGER NOT NULL DEFAULT 0,
  wake_ns INTEGER NOT NULL DEFAULT 0,
  prompt TEXT NOT NULL DEFAULT '',
  saved_state TEXT NOT NULL DEFAULT '',
  pending_resume TEXT,
  decision TEXT NOT NULL DEFAULT '',
  approver TEXT NOT NULL DEFAULT '',
  comment TEXT NOT NULL DEFAULT '',
  decided_ns INTEGER NOT NULL DEFAULT 0,
  result TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '',
  vm_steps INTEGER NOT NULL DEFAULT 0,
  step_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_state ON runs (state, id);
CREATE INDEX runs_tenant ON runs (tenant, id);
CREATE TABLE run_steps (
  run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  detail TEXT NOT NULL,
  outcome TEXT NOT NULL,
  message TEXT NOT NULL,
  started_ns INTEGER NOT NULL,
  duration_ns INTEGER NOT NULL,
  PRIMARY KEY (run_id, seq)
);
CREATE TABLE playbook_modules (
  hash TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  module TEXT NOT NULL,
  stored_ns INTEGER NOT NULL
);
PRAGMA user_version = 1;
)sql";

// Version 2: the idempotency key a connector received for each action step, so a run
// resumed after a restart sends the keys its earlier attempts sent.
constexpr const char* kSchemaV2 = R"sql(
ALTER TABLE run_steps ADD COLUMN idempotency_key TEXT NOT NULL DEFAULT '';
PRAGMA user_version = 2;
)sql";

// Version 3: run ids handed out before their run is stored. The row 'run_id_ceiling'
// stores the first id that is certainly unused.
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE run_meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
PRAGMA user_version = 3;
)sql";

// Version 4: the alert inbox row a run's alert came from, so a start can tell which
// playbook runs of an inbox alert were queued and never started before the process ended.
constexpr const char* kSchemaV4 = R"sql(
ALTER TABLE runs ADD COLUMN inbox_id INTEGER NOT NULL DEFAULT 0;
UPDATE runs SET inbox_id = json_extract(alert_json, '$.inbox_id')
  WHERE json_valid(alert_json) AND json_type(alert_json, '$.inbox_id') = 'integer';
CREATE INDEX runs_by_inbox_id ON runs (inbox_id) WHERE inbox_id != 0;
PRAGMA user_version = 4;
)sql";

constexpr int64_t kSchemaVersion = 4;

constexpr std::array<absl::string_view, 2> kDurabilityNames = {"full", "process"};

constexpr const char* kRunColumns =
    "id, playbook, playbook_hash, tenant, alert_id, rule_id, alert_json, state, created_ns, "
    "updated_ns, finished_ns, wake_ns, prompt, saved_state, pending_resume, decision, "
    "approver, comment, decided_ns, result, error, vm_steps, step_count";

RunRecord readRun(const SqliteStatement& s) {
  RunRecord r;
  r.id = s.columnInt(0);
  r.playbook = s.columnText(1);
  r.playbook_hash = s.columnText(2);
  r.tenant = s.columnText(3);
  r.alert_id = s.columnText(4);
  r.rule_id = s.columnText(5);
  r.alert_json = s.columnText(6);
  r.state = parseRunState(s.columnText(7)).value_or(RunState::kFailed);
  r.created_ns = s.columnInt(8);
  r.updated_ns = s.columnInt(9);
  r.finished_ns = s.columnInt(10);
  r.wake_ns = s.columnInt(11);
  r.prompt = s.columnText(12);
  r.saved_state = absl::HexStringToBytes(s.columnText(13));
  std::string pending = s.columnText(14);
  if (!pending.empty()) r.pending_resume = pending;
  r.decision = s.columnText(15);
  r.approver = s.columnText(16);
  r.comment = s.columnText(17);
  r.decided_ns = s.columnInt(18);
  r.result = s.columnText(19);
  r.error = s.columnText(20);
  r.vm_steps = static_cast<uint64_t>(s.columnInt(21));
  r.step_count = s.columnInt(22);
  return r;
}

// Runs `fn` inside BEGIN IMMEDIATE .. COMMIT, rolling back when it fails.
template <typename Fn>
absl::Status inTransaction(sqlite3* db, Fn fn) {
  auto exec = [db](const char* sql) -> absl::Status {
    if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK) return absl::OkStatus();
    return internal::sqliteError(db, sql);
  };
  if (absl::Status s = exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  absl::Status s = fn();
  if (!s.ok()) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return s;
  }
  return exec("COMMIT");
}

}  // namespace

absl::string_view runDurabilityName(RunDurability durability) {
  return kDurabilityNames[static_cast<size_t>(durability)];
}

absl::StatusOr<RunDurability> parseRunDurability(absl::string_view name) {
  for (size_t i = 0; i < kDurabilityNames.size(); ++i) {
    if (kDurabilityNames[i] == name) return static_cast<RunDurability>(i);
  }
  return absl::InvalidArgumentError(absl::StrCat("durability '", name,
                                                 "' is not one of: ", absl::StrJoin(kDurabilityNames, ", ")));
}

absl::string_view runStateName(RunState state) { return kStateNames[static_cast<size_t>(state)]; }

absl::StatusOr<RunState> parseRunState(absl::string_view name) {
  for (size_t i = 0; i < kStateNames.size(); ++i) {
    if (kStateNames[i] == name) return static_cast<RunState>(i);
  }
  return absl::InvalidArgumentError(absl::StrCat("state=", name, " is not a run state; use one of ",
                                                 absl::StrJoin(kStateNames, ", ")));
}

bool runStateFinal(RunState state) {
  return state != RunState::kRunning && state != RunState::kWaitingApproval &&
         state != RunState::kDelayed;
}

RunStore::RunStore(std::string path, sqlite3* db, const Clock* clock, RunDurability durability)
    : path_(std::move(path)), db_(db), clock_(clock), durability_(durability), statements_(db) {}

RunStore::~RunStore() {
  statements_.clear();
  sqlite3_close_v2(db_);
}

absl::StatusOr<std::unique_ptr<RunStore>> RunStore::open(const std::string& path,
                                                         const Clock* clock,
                                                         RunDurability durability) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return absl::UnavailableError(absl::StrCat("cannot open run store ", path, ": ", message,
                                               "; check that the folder exists and is writable"));
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<RunStore> store(
      new RunStore(path, db, clock != nullptr ? clock : &RealClock::instance(), durability));
  // The default suits kProcess; commit() raises it to FULL for the commits that need it.
  const char* synchronous = durability == RunDurability::kFull ? "PRAGMA synchronous=FULL"
                                                               : "PRAGMA synchronous=NORMAL";
  for (const char* pragma : {"PRAGMA journal_mode=WAL", synchronous, "PRAGMA foreign_keys=ON"}) {
    if (absl::Status s = store->exec(pragma); !s.ok()) return s;
  }
  if (absl::Status s = store->migrate(); !s.ok()) return s;
  return store;
}

absl::Status RunStore::migrate() {
  absl::StatusOr<SqliteStatement> version =
      SqliteStatement::prepare(db_, "user_version", "PRAGMA user_version");
  if (!version.ok()) return version.status();
  absl::StatusOr<bool> row = version->step();
  if (!row.ok()) return row.status();
  const int64_t current = *row ? version->columnInt(0) : 0;
  version->reset();
  if (current > kSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("run store ", path_, " has schema version ", current,
                     " but this build knows only ", kSchemaVersion, "; run a newer vigild"));
  }
  if (current < 1) {
    if (absl::Status s = inTransaction(db_, [&] { return exec(kSchemaV1); }); !s.ok()) return s;
  }
  if (current < 2) {
    if (absl::Status s = inTransaction(db_, [&] { return exec(kSchemaV2); }); !s.ok()) return s;
  }
  if (current < 3) {
    if (absl::Status s = inTransaction(db_, [&] { return exec(kSchemaV3); }); !s.ok()) return s;
  }
  if (current < 4) {
    if (absl::Status s = inTransaction(db_, [&] { return exec(kSchemaV4); }); !s.ok()) return s;
  }
  return absl::OkStatus();
}

template <typename Fn>
absl::Status RunStore::commit(bool synced, Fn fn) {
  const bool raise = synced && durability_ == RunDurability::kProcess;
  if (raise) {
    if (absl::Status s = exec("PRAGMA synchronous=FULL"); !s.ok()) return s;
  }
  absl::Status status = inTransaction(db_, fn);
  if (raise) {
    if (absl::Status s = exec("PRAGMA synchronous=NORMAL"); !s.ok() && status.ok()) status = s;
  }
  return status;
}

absl::Status RunStore::exec(const char* sql) {
  char* error = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return absl::OkStatus();
  std::string message = error != nullptr ? error : sqlite3_errstr(rc);
  sqlite3_free(error);
  absl::string_view head(sql);
  head.remove_prefix(std::min(head.size(), head.find_first_not_of('\n')));
  head = head.substr(0, head.find('\n'));
  return absl::InternalError(
      absl::StrCat("sqlite statement '", head, "' failed on ", path_, ": ", message,
                   internal::damagedFileHint(rc, path_.c_str())));
}

namespace {

// The columns every new run row sets, bound as parameters 1 to 11 by bindNewRun().
constexpr const char* kNewRunColumns =
    "id, playbook, playbook_hash, tenant, alert_id, rule_id, alert_json, state, created_ns, "
    "updated_ns, inbox_id";

void bindNewRun(SqliteStatement& s, const NewRun& run, RunState state, int64_t now_ns) {
  if (run.id != 0) {
    s.bindInt(1, run.id);
  } else {
    s.bindNull(1);
  }
  s.bindText(2, run.playbook);
  s.bindText(3, run.playbook_hash);
  s.bindText(4, run.tenant);
  s.bindText(5, run.alert_id);
  s.bindText(6, run.rule_id);
  s.bindText(7, run.alert_json);
  s.bindText(8, runStateName(state));
  s.bindInt(9, run.created_ns != 0 ? run.created_ns : now_ns);
  s.bindInt(10, now_ns);
  s.bindInt(11, run.inbox_id);
}

}  // namespace

absl::Status RunStore::runInsert(SqliteStatement& s, const NewRun& run) {
  absl::Status st = s.run();
  if (!st.ok() && sqlite3_extended_errcode(db_) == SQLITE_CONSTRAINT_PRIMARYKEY) {
    return absl::AlreadyExistsError(absl::StrCat("run ", run.id, " already exists in ", path_));
  }
  return st;
}

absl::Status RunStore::insertRun(const NewRun& run) {
  static const std::string sql = absl::StrCat("INSERT INTO runs (", kNewRunColumns,
                                              ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  absl::StatusOr<StatementUse> s = statements_.get("insert_run", sql);
  if (!s.ok()) return s.status();
  bindNewRun(**s, run, RunState::kRunning, now());
  return runInsert(**s, run);
}

absl::StatusOr<int64_t> RunStore::createRun(const NewRun& run) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::Status st = commit(false, [&] { return insertRun(run); });
  if (!st.ok()) return st;
  return run.id != 0 ? run.id : sqlite3_last_insert_rowid(db_);
}

absl::StatusOr<int64_t> RunStore::runIdCeiling() {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<StatementUse> s =
      statements_.get("run_id_ceiling",
                      "SELECT MAX(COALESCE((SELECT MAX(id) FROM runs), 0) + 1, "
                      "COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'runs'), 0) + 1, "
                      "COALESCE((SELECT value FROM run_meta WHERE key = 'run_id_ceiling'), 1))");
  if (!s.ok()) return s.status();
  absl::StatusOr<bool> row = (*s)->step();
  if (!row.ok()) return row.status();
  return *row ? (*s)->columnInt(0) : 1;
}

absl::Status RunStore::raiseRunIdCeiling(int64_t ceiling) {
  std::lock_guard<std::mutex> lock(mu_);
  return commit(true, [&]() -> absl::Status {
    absl::StatusOr<StatementUse> s =
        statements_.get("raise_run_id_ceiling",
                        "INSERT INTO run_meta (key, value) VALUES ('run_id_ceiling', ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value)");
    if (!s.ok()) return s.status();
    (*s)->bindInt(1, ceiling);
    return (*s)->run();
  });
}

absl::StatusOr<bool> RunStore::exists(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<StatementUse> s = statements_.get("run_exists", "SELECT 1 FROM runs WHERE id = ?");
  if (!s.ok()) return s.status();
  (*s)->bindInt(1, id);
  return (*s)->step();
}

absl::StatusOr<std::set<std::string>> RunStore::playbooksOfInboxAlert(int64_t inbox_id) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<StatementUse> s = statements_.get(
      "playbooks_of_inbox_alert", "SELECT playbook FROM runs WHERE inbox_id = ? AND inbox_id != 0");
  if (!s.ok()) return s.status();
  (*s)->bindInt(1, inbox_id);
  std::set<std::string> out;
  while (true) {
    absl::StatusOr<bool> row = (*s)->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.insert((*s)->columnText(0));
  }
  return out;
}

absl::Status RunStore::insertFinishedRun(const NewRun& run, RunState state,
                                         const std::string& result, const std::string& error,
                                         uint64_t vm_steps, const std::vector<RunStep>& steps) {
  static const std::string sql = absl::StrCat(
      "INSERT INTO runs (", kNewRunColumns,
      ", result, error, vm_steps, finished_ns, step_count) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  absl::StatusOr<StatementUse> s = statements_.get("insert_finished_run", sql);
  if (!s.ok()) return s.status();
  const int64_t t = now();
  bindNewRun(**s, run, state, t);
  (*s)->bindText(12, result);
  (*s)->bindText(13, error);
  (*s)->bindInt(14, static_cast<int64_t>(vm_steps));
  (*s)->bindInt(15, t);
  (*s)->bindInt(16, static_cast<int64_t>(steps.size()));
  if (absl::Status st = runInsert(**s, run); !st.ok()) return st;
  const int64_t id = run.id != 0 ? run.id : sqlite3_last_insert_rowid(db_);
  return insertSteps(id, 0, steps);
}

absl::Status RunStore::appendSteps(int64_t id, const std::vector<RunStep>& steps) {
  if (steps.empty()) return absl::OkStatus();
  absl::StatusOr<StatementUse> count =
      statements_.get("step_count", "SELECT step_count FROM runs WHERE id = ?");
  if (!count.ok()) return count.status();
  (*count)->bindInt(1, id);
  absl::StatusOr<bool> row = (*count)->step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("run ", id, " does not exist"));
  const int64_t stored = (*count)->columnInt(0);
  if (absl::Status st = insertSteps(id, stored, steps); !st.ok()) return st;
  absl::StatusOr<StatementUse> update =
      statements_.get("update_step_count", "UPDATE runs SET step_count = ? WHERE id = ?");
  if (!update.ok()) return update.status();
  (*update)->bindInt(1, stored + static_cast<int64_t>(steps.size()));
  (*update)->bindInt(2, id);
  return (*update)->run();
}

absl::Status RunStore::insertSteps(int64_t id, int64_t seq, const std::vector<RunStep>& steps) {
  absl::StatusOr<StatementUse> insert = statements_.get(
      "insert_step",
      "INSERT INTO run_steps (run_id, seq, kind, name, detail, outcome, message, started_ns, "
      "duration_ns, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!insert.ok()) return insert.status();
  for (const RunStep& step : steps) {
    (*insert)->bindInt(1, id);
    (*insert)->bindInt(2, ++seq);
    (*insert)->bindText(3, step.kind);
    (*insert)->bindText(4, step.name);
    (*insert)->bindText(5, step.detail);
    (*insert)->bindText(6, step.outcome);
    (*insert)->bindText(7, step.message);
    (*insert)->bindInt(8, step.started_ns);
    (*insert)->bindInt(9, step.duration_ns);
    (*insert)->bindText(10, step.idempotency_key);
    if (absl::Status st = (*insert)->run(); !st.ok()) return st;
    (*insert)->reset();
  }
  return absl::OkStatus();
}

absl::Status RunStore::suspend(int64_t id, RunState state, int64_t wake_ns,
                               const std::string& prompt, const std::string& saved_state,
                               uint64_t vm_steps, const std::vector<RunStep>& steps,
                               const NewRun* insert) {
  std::lock_guard<std::mutex> lock(mu_);
  return commit(true, [&]() -> absl::Status {
    if (insert != nullptr) {
      if (absl::Status st = insertRun(*insert); !st.ok()) return st;
    }
    absl::StatusOr<StatementUse> s = statements_.get(
        "suspend_run",
        "UPDATE runs SET state = ?, wake_ns = ?, prompt = ?, saved_state = ?, vm_steps = ?, "
        "updated_ns = ?, pending_resume = NULL WHERE id = ?");
    if (!s.ok()) return s.status();
    (*s)->bindText(1, runStateName(state));
    (*s)->bindInt(2, wake_ns);
    (*s)->bindText(3, prompt);
    (*s)->bindText(4, absl::BytesToHexString(saved_state));
    (*s)->bindInt(5, static_cast<int64_t>(vm_steps));
    (*s)->bindInt(6, now());
    (*s)->bindInt(7, id);
    if (absl::Status st = (*s)->run(); !st.ok()) return st;
    return appendSteps(id, steps);
  });
}

absl::Status RunStore::finish(int64_t id, RunState state, const std::string& result,
                              const std::string& error, uint64_t vm_steps,
                              const std::vector<RunStep>& steps, const NewRun* insert) {
  std::lock_guard<std::mutex> lock(mu_);
  return commit(false, [&]() -> absl::Status {
    return finishLocked(id, state, result, error, vm_steps, steps, insert);
  });
}

absl::Status RunStore::finishMany(const std::vector<RunFinish>& runs) {
  if (runs.empty()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  return commit(false, [&]() -> absl::Status {
    for (const RunFinish& run : runs) {
      const NewRun* insert = run.insert.has_value() ? &*run.insert : nullptr;
      absl::Status st = finishLocked(run.id, run.state, run.result, run.error, run.vm_steps,
                                     run.steps, insert);
      if (!st.ok()) return st;
    }
    return absl::OkStatus();
  });
}

absl::Status RunStore::finishLocked(int64_t id, RunState state, const std::string& result,
                                    const std::string& error, uint64_t vm_steps,
                                    const std::vector<RunStep>& steps, const NewRun* insert) {
  if (insert != nullptr) {
    // A run that ends in its first segment (every default-case run) is written once, in
    // its final state, instead of inserted as running and then updated twice.
    return insertFinishedRun(*insert, state, result, error, vm_steps, steps);
  }
  absl::StatusOr<StatementUse> s = statements_.get(
      "finish_run",
      "UPDATE runs SET state = ?, result = ?, error = ?, vm_steps = ?, updated_ns = ?, "
      "finished_ns = ?, wake_ns = 0, prompt = '', saved_state = '', pending_resume = NULL "
      "WHERE id = ?");
  if (!s.ok()) return s.status();
  const int64_t t = now();
  (*s)->bindText(1, runStateName(state));
  (*s)->bindText(2, result);
  (*s)->bindText(3, error);
  (*s)->bindInt(4, static_cast<int64_t>(vm_steps));
  (*s)->bindInt(5, t);
  (*s)->bindInt(6, t);
  (*s)->bindInt(7, id);
  if (absl::Status st = (*s)->run(); !st.ok()) return st;
  return appendSteps(id, steps);
}

absl::StatusOr<bool> RunStore::transition(int64_t id, const Transition& t, const RunStep& step) {
  std::lock_guard<std::mutex> lock(mu_);
  bool moved = false;
  absl::Status status = commit(true, [&]() -> absl::Status {
    absl::StatusOr<StatementUse> s =
        statements_.get("transition_run",
                        "UPDATE runs SET state = 'running', pending_resume = ?, updated_ns = ?, "
                        "decision = CASE WHEN ? = '' THEN decision ELSE ? END, "
                        "approver = CASE WHEN ? = '' THEN approver ELSE ? END, "
                        "comment = CASE WHEN ? = '' THEN comment ELSE ? END, "
                        "decided_ns = CASE WHEN ? = '' THEN decided_ns ELSE ? END, wake_ns = 0 "
                        "WHERE id = ? AND state = ?");
    if (!s.ok()) return s.status();
    const int64_t now_ns = now();
    (*s)->bindText(1, t.resume_json);
    (*s)->bindInt(2, now_ns);
    (*s)->bindText(3, t.decision);
    (*s)->bindText(4, t.decision);
    (*s)->bindText(5, t.approver);
    (*s)->bindText(6, t.approver);
    (*s)->bindText(7, t.comment);
    (*s)->bindText(8, t.comment);
    (*s)->bindText(9, t.decision);
    (*s)->bindInt(10, now_ns);
    (*s)->bindInt(11, id);
    (*s)->bindText(12, runStateName(t.from));
    if (absl::Status st = (*s)->run(); !st.ok()) return st;
    moved = sqlite3_changes(db_) == 1;
    if (!moved) {
      absl::StatusOr<StatementUse> exists =
          statements_.get("run_exists", "SELECT 1 FROM runs WHERE id = ?");
      if (!exists.ok()) return exists.status();
      (*exists)->bindInt(1, id);
      absl::StatusOr<bool> row = (*exists)->step();
      if (!row.ok()) return row.status();
      if (!*row) return absl::NotFoundError(absl::StrCat("run ", id, " does not exist"));
      return absl::OkStatus();
    }
    return appendSteps(id, {step});
  });
  if (!status.ok()) return status;
  return moved;
}

absl::Status RunStore::clearPendingResume(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  // Synced: if this were lost, a restart would run the segment's actions a second time.
  return commit(true, [&]() -> absl::Status {
    absl::StatusOr<StatementUse> s =
        statements_.get("clear_pending", "UPDATE runs SET pending_resume = NULL WHERE id = ?");
    if (!s.ok()) return s.status();
    (*s)->bindInt(1, id);
    return (*s)->run();
  });
}

absl::StatusOr<RunRecord> RunStore::get(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<StatementUse> s =
      statements_.get("get_run", absl::StrCat("SELECT ", kRunColumns, " FROM runs WHERE id = ?"));
  if (!s.ok()) return s.status();
  (*s)->bindInt(1, id);
  absl::StatusOr<bool> row = (*s)->step();
  if (!row.ok()) return row.status();
  if (!*row) {
    return absl::NotFoundError(
        absl::StrCat("run ", id, " does not exist; list runs with GET /api/v1/runs"));
  }
  RunRecord record = readRun(**s);
  absl::StatusOr<StatementUse> steps = statements_.get(
      "get_steps",
      "SELECT seq, kind, name, detail, outcome, message, started_ns, duration_ns, idempotency_key "
      "FROM run_steps "
      "WHERE run_id = ? ORDER BY seq");
  if (!steps.ok()) return steps.status();
  (*steps)->bindInt(1, id);
  while (true) {
    absl::StatusOr<bool> next = (*steps)->step();
    if (!next.ok()) return next.status();
    if (!*next) break;
    RunStep step;
    step.seq = static_cast<int>((*steps)->columnInt(0));
    step.kind = (*steps)->columnText(1);
    step.name = (*steps)->columnText(2);
    step.detail = (*steps)->columnText(3);
    step.outcome = (*steps)->columnText(4);
    step.message = (*steps)->columnText(5);
    step.started_ns = (*steps)->columnInt(6);
    step.duration_ns = (*steps)->columnInt(7);
    step.idempotency_key = (*steps)->columnText(8);
    record.steps.push_back(std::move(step));
  }
  return record;
}

// ORDER BY clauses by RunSort value.
constexpr std::array<const char*, 6> kRunSortSql = {
    "id ASC", "id DESC", "created_ns ASC, id ASC", "created_ns DESC, id DESC",
    "updated_ns ASC, id ASC", "updated_ns DESC, id DESC"};

absl::StatusOr<RunPage> RunStore::list(const RunFilter& filter) {
  if (filter.limit < 1 || filter.limit > RunFilter::kMaxLimit || filter.offset < 0) {
    return absl::InvalidArgumentError(absl::StrCat("limit=", filter.limit, " offset=",
                                                   filter.offset, " is out of range; use limit 1..",
                                                   RunFilter::kMaxLimit, " and offset >= 0"));
  }
  std::vector<std::string> where;
  std::vector<std::string> texts;
  if (filter.state) {
    where.push_back("state = ?");
    texts.emplace_back(runStateName(*filter.state));
  }
  if (filter.tenant) {
    where.push_back("tenant = ?");
    texts.push_back(*filter.tenant);
  }
  if (filter.playbook) {
    where.push_back("playbook = ?");
    texts.push_back(*filter.playbook);
  }
  if (filter.allowed_tenants) {
    if (filter.allowed_tenants->empty()) return RunPage{};
    std::vector<std::string> marks(filter.allowed_tenants->size(), "?");
    where.push_back(absl::StrCat("tenant IN (", absl::StrJoin(marks, ", "), ")"));
    texts.insert(texts.end(), filter.allowed_tenants->begin(), filter.allowed_tenants->end());
  }
  std::string clause = where.empty() ? "" : absl::StrCat(" WHERE ", absl::StrJoin(where, " AND "));

  std::lock_guard<std::mutex> lock(mu_);
  RunPage page;
  absl::StatusOr<SqliteStatement> count =
      SqliteStatement::prepare(db_, "count_runs", absl::StrCat("SELECT COUNT(*) FROM runs", clause));
  if (!count.ok()) return count.status();
  for (size_t i = 0; i < texts.size(); ++i) count->bindText(static_cast<int>(i + 1), texts[i]);
  absl::StatusOr<bool> row = count->step();
  if (!row.ok()) return row.status();
  page.total = *row ? count->columnInt(0) : 0;

  absl::StatusOr<SqliteStatement> s = SqliteStatement::prepare(
      db_, "list_runs",
      absl::StrCat("SELECT ", kRunColumns, " FROM runs", clause, " ORDER BY ",
                   kRunSortSql[static_cast<size_t>(filter.sort)], " LIMIT ? OFFSET ?"));
  if (!s.ok()) return s.status();
  int index = 1;
  for (const std::string& text : texts) s->bindText(index++, text);
  s->bindInt(index++, filter.limit);
  s->bindInt(index, filter.offset);
  while (true) {
    absl::StatusOr<bool> next = s->step();
    if (!next.ok()) return next.status();
    if (!*next) break;
    RunRecord record = readRun(*s);
    record.saved_state.clear();
    page.items.push_back(std::move(record));
  }
  return page;
}

absl::StatusOr<std::vector<RunRecord>> RunStore::runsInState(RunState state) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<StatementUse> s = statements_.get(
      "runs_in_state",
      absl::StrCat("SELECT ", kRunColumns, " FROM runs WHERE state = ? ORDER BY id"));
  if (!s.ok()) return s.status();
  (*s)->bindText(1, runStateName(state));
  std::vector<RunRecord> out;
  while (true) {
    absl::StatusOr<bool> next = (*s)->step();
    if (!next.ok()) return next.status();
    if (!*next) break;
    out.push_back(readRun(**s));
  }
  return out;
}

absl::Status RunStore::putModule(const std::string& hash, const std::string& name,
                                 const std::vector<uint8_t>& module) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<StatementUse> s = statements_.get(
      "put_module",
      "INSERT OR IGNORE INTO playbook_modules (hash, name, module, stored_ns) VALUES (?, ?, ?, ?)");
  if (!s.ok()) return s.status();
  (*s)->bindText(1, hash);
  (*s)->bindText(2, name);
  (*s)->bindText(3, absl::BytesToHexString(absl::string_view(
                        reinterpret_cast<const char*>(module.data()), module.size())));
  (*s)->bindInt(4, now());
  return (*s)->run();
}

absl::StatusOr<std::vector<uint8_t>> RunStore::getModule(const std::string& hash) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<StatementUse> s =
      statements_.get("get_module", "SELECT module FROM playbook_modules WHERE hash = ?");
  if (!s.ok()) return s.status();
  (*s)->bindText(1, hash);
  absl::StatusOr<bool> row = (*s)->step();
  if (!row.ok()) return row.status();
  if (!*row) {
    return absl::NotFoundError(absl::StrCat("no stored module for playbook version ", hash));
  }
  std::string bytes = absl::HexStringToBytes((*s)->columnText(0));
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

}  // namespace vigil::mgmt

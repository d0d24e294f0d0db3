// The run store: playbook runs in SQLite (WAL), so runs that wait for an approval or a
// delay survive a restart of vigild. Commits that make a run wait or hand it to a worker
// are always synced (synchronous=FULL); RunDurability decides whether the others are. Each run keeps its playbook version,
// the alert it answers, its state, the VM state saved at its last suspension and a log of
// every step it took. The compiled modules of every playbook version that started a run
// are kept too, so a run resumes on the exact code it started with.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"
#include "mgmt/internal/sqlite_statement.h"

struct sqlite3;

namespace vigil::mgmt {

// kRunning: a worker runs it, or it is handed to one (pending_resume set).
// kWaitingApproval: suspended until approve, deny or the deadline (wake_ns).
// kDelayed: suspended until wake_ns (a delay step or a retry back-off).
// The rest are final.
enum class RunState {
  kRunning,
  kWaitingApproval,
  kDelayed,
  kSucceeded,
  kFailed,
  kDenied,
  kTimedOut,
};

// How far the run store syncs commits that only record a run's progress or its end.
// kFull: every commit is synced (synchronous=FULL) and survives power loss.
// kProcess: those commits use synchronous=NORMAL. They survive a crash or kill of vigild,
// but power loss or a kernel crash can undo the last of them. Commits that make a run
// wait (suspend), take a decision (transition), hand a run to a worker
// (clearPendingResume) or reserve run ids are synced in both modes.
enum class RunDurability { kFull, kProcess };

absl::string_view runDurabilityName(RunDurability durability);
// InvalidArgument naming the value and the accepted names ("full", "process").
absl::StatusOr<RunDurability> parseRunDurability(absl::string_view name);

absl::string_view runStateName(RunState state);
// InvalidArgument naming the value and the accepted names.
absl::StatusOr<RunState> parseRunState(absl::string_view name);
bool runStateFinal(RunState state);

// One entry of a run's step log.
struct RunStep {
  int seq = 0;            // 1-based position in the run's log
  std::string kind;       // action, approval, decision, delay, log, end
  std::string name;       // action name, or the step's subject
  std::string detail;     // JSON text: action parameters, approval prompt, ...
  std::string outcome;    // ok, error, requested, approved, rejected, timeout, ...
  std::string message;    // result or error text
  int64_t started_ns = 0;   // wall clock, UTC ns
  int64_t duration_ns = 0;
  // Action steps: the idempotency key the connector received (see actionIdempotencyKey()
  // in action_router.h); empty for other steps.
  std::string idempotency_key;
};

struct RunRecord {
  int64_t id = 0;
  std::string playbook;
  std::string playbook_hash;  // hex SHA-256 of the playbook source
  std::string tenant;
  std::string alert_id;
  std::string rule_id;
  std::string alert_json;  // the alert as the playbook reads it
  RunState state = RunState::kRunning;
  int64_t created_ns = 0;
  int64_t updated_ns = 0;
  int64_t finished_ns = 0;  // 0 until final
  int64_t wake_ns = 0;      // approval deadline or end of delay; 0 when not suspended
  std::string prompt;       // approval prompt while waiting
  std::string saved_state;  // Vm::saveState() bytes at the last suspension
  // JSON of the value a worker resumes the run with; set between a decision (or the
  // timer) and the worker picking the run up. Survives a restart.
  std::optional<std::string> pending_resume;
  std::string decision;  // last approval outcome: approved, rejected, timeout
  std::string approver;  // subject of the principal who decided
  std::string comment;
  int64_t decided_ns = 0;
  std::string result;  // returned value (final runs)
  std::string error;   // failure message (failed runs)
  uint64_t vm_steps = 0;
  int64_t step_count = 0;      // entries in the step log
  std::vector<RunStep> steps;  // filled by get() only
};

// Sort orders of RunStore::list, named in the API as id, -id, created, -created,
// updated, -updated. Ties fall back to the run id so pages are stable.
enum class RunSort { kIdAsc, kIdDesc, kCreatedAsc, kCreatedDesc, kUpdatedAsc, kUpdatedDesc };

struct RunFilter {
  static constexpr int kDefaultLimit = 50;
  static constexpr int kMaxLimit = 500;

  std::optional<RunState> state;
  std::optional<std::string> tenant;
  std::optional<std::string> playbook;
  // When set, only runs of these tenants (the caller's readable tenants).
  std::optional<std::vector<std::string>> allowed_tenants;
  int limit = kDefaultLimit;
  int64_t offset = 0;
  RunSort sort = RunSort::kIdDesc;
};

struct RunPage {
  std::vector<RunRecord> items;  // in filter.sort order, without steps
  int64_t total = 0;
};

// What a new run starts with. `id` 0 lets SQLite pick the id; `created_ns` 0 means now.
struct NewRun {
  int64_t id = 0;
  int64_t created_ns = 0;
  std::string playbook;
  std::string playbook_hash;
  std::string tenant;
  std::string alert_id;
  std::string rule_id;
  std::string alert_json;
  int64_t inbox_id = 0;  // the alert's row in the case store's alert inbox; 0 for none
};

// One run that finishMany() ends, with the arguments of finish().
struct RunFinish {
  int64_t id = 0;
  RunState state = RunState::kSucceeded;
  std::string result;
  std::string error;
  uint64_t vm_steps = 0;
  std::vector<RunStep> steps;
  std::optional<NewRun> insert;
};

// An approval decision or a timer firing, applied by transition().
struct Transition {
  RunState from = RunState::kWaitingApproval;  // the state the run must be in
  std::string resume_json;  // JSON of the resume value
  std::string decision;     // empty leaves the recorded decision unchanged
  std::string approver;
  std::string comment;
};

// Thread-safe: a mutex serializes every call. Every call blocks on disk I/O.
class RunStore {
 public:
  // Opens or creates the database at `path`. Errors name the path and the statement.
  static absl::StatusOr<std::unique_ptr<RunStore>> open(
      const std::string& path, const Clock* clock = nullptr,
      RunDurability durability = RunDurability::kFull);
  ~RunStore();
  RunStore(const RunStore&) = delete;
  RunStore& operator=(const RunStore&) = delete;

  // Inserts a run in state kRunning and returns its id. AlreadyExists when `run.id` is
  // taken.
  absl::StatusOr<int64_t> createRun(const NewRun& run);

  // Suspends the run: state kWaitingApproval or kDelayed until `wake_ns`, with the VM's
  // saved state; appends `steps` in the same transaction. With `insert` set, the run is
  // inserted first, in the same transaction (its first segment ran before it was stored).
  // Always synced.
  absl::Status suspend(int64_t id, RunState state, int64_t wake_ns, const std::string& prompt,
                       const std::string& saved_state, uint64_t vm_steps,
                       const std::vector<RunStep>& steps, const NewRun* insert = nullptr);

  // Ends the run in a final state and appends `steps` in the same transaction. `insert` as
  // for suspend(). Synced only with RunDurability::kFull.
  absl::Status finish(int64_t id, RunState state, const std::string& result,
                      const std::string& error, uint64_t vm_steps,
                      const std::vector<RunStep>& steps, const NewRun* insert = nullptr);

  // Ends every run of `runs` as finish() would, all in one transaction: either every run
  // is stored or none is. Synced only with RunDurability::kFull.
  absl::Status finishMany(const std::vector<RunFinish>& runs);

  // Run ids: every id below the returned value may have been used, by a stored run or by
  // a run whose row a crash lost. Reads the stored ceiling and the highest run id.
  absl::StatusOr<int64_t> runIdCeiling();
  // Records that ids below `ceiling` may be in use. Synced; never lowers the ceiling.
  absl::Status raiseRunIdCeiling(int64_t ceiling);

  // True when run `id` exists.
  absl::StatusOr<bool> exists(int64_t id);

  // Returns the names of the playbooks with a stored run of alert inbox row `inbox_id`.
  absl::StatusOr<std::set<std::string>> playbooksOfInboxAlert(int64_t inbox_id);

  // Moves the run from `t.from` to kRunning with pending_resume = t.resume_json, recording
  // the decision, approver and comment. Returns false when the run is not in `t.from`
  // (someone else decided first). NotFound when no run has `id`.
  absl::StatusOr<bool> transition(int64_t id, const Transition& t, const RunStep& step);

  // Clears pending_resume once a worker has taken the run.
  absl::Status clearPendingResume(int64_t id);

  // The run with its steps. NotFound when no run has `id`.
  absl::StatusOr<RunRecord> get(int64_t id);

  // One page of runs, newest first, without steps or saved state.
  absl::StatusOr<RunPage> list(const RunFilter& filter);

  // Every run in `state`, oldest first, with saved state and without steps (recovery).
  absl::StatusOr<std::vector<RunRecord>> runsInState(RunState state);

  // The compiled module of a playbook version, stored once per hash.
  absl::Status putModule(const std::string& hash, const std::string& name,
                         const std::vector<uint8_t>& module);
  absl::StatusOr<std::vector<uint8_t>> getModule(const std::string& hash);

  const std::string& path() const { return path_; }

 private:
  RunStore(std::string path, sqlite3* db, const Clock* clock, RunDurability durability);
  absl::Status exec(const char* sql);
  absl::Status migrate();
  absl::Status insertRun(const NewRun& run);
  // Runs an insert of `run`'s row, mapping a taken id to AlreadyExists.
  absl::Status runInsert(internal::SqliteStatement& s, const NewRun& run);
  absl::Status appendSteps(int64_t id, const std::vector<RunStep>& steps);
  // Inserts `steps` as seq + 1, seq + 2, ... of run `id`; the caller sets step_count.
  absl::Status insertSteps(int64_t id, int64_t seq, const std::vector<RunStep>& steps);
  // Inserts `run` already in its final state, with its steps.
  absl::Status insertFinishedRun(const NewRun& run, RunState state, const std::string& result,
                                 const std::string& error, uint64_t vm_steps,
                                 const std::vector<RunStep>& steps);
  // Performs the writes of finish(). The caller must lock mu_ and open a transaction.
  absl::Status finishLocked(int64_t id, RunState state, const std::string& result,
                            const std::string& error, uint64_t vm_steps,
                            const std::vector<RunStep>& steps, const NewRun* insert);
  // Runs `fn` in one transaction, synced when `synced` or the store is kFull.
  template <typename Fn>
  absl::Status commit(bool synced, Fn fn);
  int64_t now() const { return clock_->nowNs(); }

  std::string path_;
  sqlite3* db_;
  const Clock* clock_;
  RunDurability durability_;
  std::mutex mu_;
  internal::StatementCache statements_;  // guarded by mu_
};

}  // namespace vigil::mgmt

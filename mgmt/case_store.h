// The case store: a SQLite database that turns correlated alerts into cases an analyst can
// work on, and the system of record for the work done on them. Alerts for the same (tenant,
// rule id, group key) join the one open case for that key. Once that case is resolved or
// closed, the next such alert opens a new one. Analysts also open cases by hand, edit them,
// add tasks, notes and files, and merge duplicates; every change lands in the case's
// timeline. Every write is one transaction, durable (synchronous=FULL) when the call returns.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/clock.h"
#include "correlate/alert.h"

struct sqlite3;

namespace vigil::mgmt {

struct CaseMetricsGroup;  // case_metrics.h

// Severity of a case, taken from the Sigma level of its alerts. Ordered from least to most
// severe, so comparisons and sorting follow the enum order.
enum class Severity { kInformational, kLow, kMedium, kHigh, kCritical };

// Workflow state of a case. Only kNew and kInProgress cases take new alerts.
enum class CaseStatus { kNew, kInProgress, kResolved, kClosed };

// Reason a case was resolved or closed.
enum class Resolution { kTruePositive, kFalsePositive, kBenign, kDuplicate };

// Sort orders for listCases. "Desc" variants put the newest or most severe first.
enum class CaseSort {
  kDetectedAsc,
  kDetectedDesc,
  kSeverityAsc,
  kSeverityDesc,
  kUpdatedAsc,
  kUpdatedDesc,
  kIdAsc,
  kIdDesc,
};

absl::string_view severityName(Severity severity);
absl::string_view caseStatusName(CaseStatus status);
absl::string_view caseSortName(CaseSort sort);
absl::string_view resolutionName(Resolution resolution);

// Parse the names above ("high", "in_progress", "-detected"). Sigma levels are accepted
// in any letter case. Errors are InvalidArgument naming the value and the accepted names.
absl::StatusOr<Severity> parseSeverity(absl::string_view name);
absl::StatusOr<CaseStatus> parseCaseStatus(absl::string_view name);
absl::StatusOr<CaseSort> parseCaseSort(absl::string_view name);
absl::StatusOr<Resolution> parseResolution(absl::string_view name);

// True when a case may move from `from` to `to`: forward along new, in_progress, resolved,
// closed (steps may be skipped), or back to in_progress from resolved or closed (reopen).
// Staying in the same status is allowed and changes nothing.
bool caseTransitionAllowed(CaseStatus from, CaseStatus to);

// SLA targets of one severity: how long after detection a case may wait for its first
// analyst action and for its resolution. 0 means no target.
struct SlaTarget {
  int64_t acknowledge_ns = 0;
  int64_t resolve_ns = 0;

  bool operator==(const SlaTarget&) const = default;
};

// Targets indexed by Severity.
using SlaPolicy = std::array<SlaTarget, 5>;

// Times are UTC ns; 0 means "not yet" for ack_ns and resolved_ns and "none" for
// merged_into. Cases opened by an analyst have an empty rule_id and group_key "{}".
struct Case {
  int64_t id = 0;
  std::string title;
  std::string description;
  Severity severity = Severity::kMedium;
  CaseStatus status = CaseStatus::kNew;
  std::string resolution;         // resolutionName(), empty until resolved or closed
  std::string resolution_note;    // free text given with the resolution
  std::string assignee;           // empty when unassigned
  std::vector<std::string> tags;  // sorted, unique
  std::string tenant;
  std::string created_by;  // analyst who opened it by hand; empty for alert cases
  std::string rule_id;
  std::string group_key;       // JSON object of the group-by fields, keys sorted
  int64_t first_event_ns = 0;  // earliest event time over all alerts, UTC ns
  int64_t detect_ns = 0;       // detection time of the alert that opened the case
  int64_t updated_ns = 0;      // store clock time of the last change
  int64_t alert_count = 0;
  int64_t ack_ns = 0;       // first timeline change by an analyst after the case opened
  int64_t resolved_ns = 0;  // last move to resolved or closed; cleared on reopen
  int64_t merged_into = 0;  // target case id when this case was merged away
};

// One alert as stored. `alert_id` is the pipeline's id, which is unique only within one
// process run, so the store keys alerts by its own `id`.
struct StoredAlert {
  int64_t id = 0;
  int64_t case_id = 0;
  std::string alert_id;
  std::string rule_id;
  std::string level;
  std::string tenant;
  std::string group_json;
  int64_t first_event_ns = 0;
  int64_t last_event_ns = 0;
  int64_t detect_ns = 0;
  int64_t event_count = 0;
  std::string json;  // the full alert as written by correlate::alertToJson
};

// Raw text of one contributing event. `position` is its index in the alert's evidence.
struct Evidence {
  int64_t alert_id = 0;  // StoredAlert::id
  int position = 0;
  std::string raw;
};

enum class TaskStatus { kOpen, kDone };
absl::string_view taskStatusName(TaskStatus status);  // "open", "done"
absl::StatusOr<TaskStatus> parseTaskStatus(absl::string_view name);

struct CaseTask {
  int64_t id = 0;
  int64_t case_id = 0;
  std::string title;
  std::string assignee;
  TaskStatus status = TaskStatus::kOpen;
  std::string created_by;
  int64_t created_ns = 0;
  int64_t updated_ns = 0;
};

struct CaseNote {
  int64_t id = 0;
  int64_t case_id = 0;
  std::string author;
  std::string body;
  std::vector<std::string> mentions;  // "@name" tokens of the body, without "@", first-seen order
  int64_t created_ns = 0;
};

// An uploaded file attached to a case. The bytes live once per SHA-256 in the evidence
// folder, however many cases hold them.
struct EvidenceFile {
  int64_t case_id = 0;
  std::string sha256;  // lowercase hex
  std::string name;
  std::string content_type;
  int64_t size_bytes = 0;
  std::string added_by;
  int64_t added_ns = 0;
};

// One change to a case. `human` is false for changes the appliance made (alerts joining).
struct TimelineEntry {
  int64_t id = 0;
  int64_t case_id = 0;
  int64_t at_ns = 0;
  std::string actor;
  bool human = false;
  std::string action;  // created, updated, alert_added, note_added, task_added, ...
  std::string field;   // for "updated" and task changes: the field that changed
  std::string old_value;
  std::string new_value;
};

struct CaseDetail {
  Case info;
  std::vector<StoredAlert> alerts;  // in arrival order
  std::vector<Evidence> evidence;   // by alert, then position
  std::vector<EvidenceFile> files;  // in upload order
  std::vector<CaseTask> tasks;      // oldest first
  std::vector<CaseNote> notes;      // oldest first
};

// Author of a change: the principal's subject for API calls.
struct Actor {
  std::string name;
  bool human = true;
};

// Fields of a case opened by hand. Title and tenant are required.
struct NewCase {
  std::string title;
  std::string description;
  Severity severity = Severity::kMedium;
  std::string tenant;
  std::string assignee;
  std::vector<std::string> tags;
};

// A partial update; only the fields that are set change. Moving to resolved or closed needs
// a resolution, here or already on the case; reopening clears it.
struct CaseUpdate {
  std::optional<std::string> title;
  std::optional<std::string> description;
  std::optional<Severity> severity;
  std::optional<CaseStatus> status;
  std::optional<Resolution> resolution;
  std::optional<std::string> resolution_note;
  std::optional<std::string> assignee;
  std::optional<std::vector<std::string>> tags;
};

struct TaskUpdate {
  std::optional<std::string> title;
  std::optional<std::string> assignee;
  std::optional<TaskStatus> status;
};

// Returns the names mentioned in `text`: "@" followed by letters, digits, '.', '_' or '-',
// at the start or after a character that is none of those (so "a@b.com" mentions no one).
// Trailing dots are dropped; each name appears once.
std::vector<std::string> parseMentions(absl::string_view text);

struct CaseFilter {
  static constexpr int kDefaultLimit = 50;
  static constexpr int kMaxLimit = 500;

  // Tenants the caller may read; nullopt means all (administrators). Applied in SQL.
  std::optional<std::vector<std::string>> allowed_tenants;
  std::optional<std::string> tenant;
  std::optional<CaseStatus> status;
  std::optional<Severity> severity;
  std::optional<std::string> assignee;  // "" matches unassigned cases
  std::optional<std::string> tag;
  std::optional<std::string> text;          // substring of the title, letter case ignored
  std::optional<int64_t> detected_from_ns;  // detect_ns >= this
  std::optional<int64_t> detected_to_ns;    // detect_ns < this
  std::optional<int64_t> updated_from_ns;
  std::optional<int64_t> updated_to_ns;
  int limit = kDefaultLimit;  // 1..kMaxLimit
  int64_t offset = 0;         // >= 0
  CaseSort sort = CaseSort::kDetectedDesc;
};

struct CasePage {
  std::vector<Case> items;
  int64_t total = 0;  // cases matching the filter, ignoring limit and offset
};

// Outcome of storing one alert.
struct IngestResult {
  int64_t case_id = 0;
  bool opened_case = false;  // true when the alert opened a new case
};

struct CaseStoreOptions {
  // How long a statement waits for another connection's write lock before failing with
  // SQLITE_BUSY.
  int busy_timeout_ms = 5000;
  // Source of updated_ns; nullptr means RealClock. Not owned; must outlive the store.
  const Clock* clock = nullptr;
  // Folder of uploaded evidence files, one per SHA-256; empty means "evidence" beside the
  // database. Created on open.
  std::string evidence_dir;
  // Largest uploaded evidence file.
  int64_t max_evidence_bytes = 8 << 20;
  // SLA targets by severity, used for breach flags and metrics.
  SlaPolicy sla{};
  // How long a call from another thread waits for an open group transaction to commit
  // before it commits the transaction itself. The playbook runner closes a group within
  // 5 ms of its first run (kGroupCommitWindow), plus the time of its last run. Waiting
  // keeps the group in one commit: committing it early, as every case sink batch did,
  // split the groups of a backlog into several commits of cases.db.
  std::chrono::milliseconds foreign_group_wait{20};
};

// Thread-safe: one mutex serializes every call on the connection, so the writer thread and
// API handlers may share one store. Every call blocks on disk I/O; none belongs on the
// per-event path.
class CaseStore {
 public:
  // Opens or creates the database at `path` with journal_mode=WAL, synchronous=FULL and
  // foreign keys on, then applies pending schema migrations. Errors name the path and the
  // failing statement; FailedPrecondition when the file has a newer schema than this build.
  static absl::StatusOr<std::unique_ptr<CaseStore>> open(const std::string& path,
                                                         CaseStoreOptions options = {});

  ~CaseStore();
  CaseStore(const CaseStore&) = delete;
  CaseStore& operator=(const CaseStore&) = delete;

  // Stores one alert in its own transaction: adds it to the open case for its (tenant,
  // rule_id, group) or opens a case. InvalidArgument for an unknown Sigma level.
  absl::StatusOr<IngestResult> ingestAlert(const correlate::Alert& alert);

  // Stores `alerts` in one transaction: either all of them are written or none is.
  absl::StatusOr<std::vector<IngestResult>> ingestAlerts(absl::Span<const correlate::Alert> alerts);

  // Returns one page of cases matching `filter`. InvalidArgument when limit or offset is
  // out of range.
  absl::StatusOr<CasePage> listCases(const CaseFilter& filter);

  // Returns the case with its alerts, evidence, files, tasks and notes. NotFound when no
  // case has `id`.
  absl::StatusOr<CaseDetail> getCase(int64_t id);

  // Returns the tenant of case `id`, so callers can check access before anything else.
  // NotFound when no case has `id`.
  absl::StatusOr<std::string> caseTenant(int64_t id);

  // Every case whose detection falls in [from_ns, to_ns) (either bound may be 0 for open),
  // limited to `allowed_tenants` (nullopt = all) and `tenant` (empty = any). For metrics.
  absl::StatusOr<std::vector<Case>> casesDetectedBetween(
      const std::optional<std::vector<std::string>>& allowed_tenants, const std::string& tenant,
      int64_t from_ns, int64_t to_ns);

  // The response-time metrics of the cases casesDetectedBetween() selects, under the
  // store's SLA policy at the store clock's now, grouped and summarized exactly as
  // aggregateCaseMetrics() does (case_metrics.h). SQLite aggregates them in one read
  // transaction, so no case is read into memory (case_store_metrics.cc).
  // NOTE: this trades CPU for memory. BM_CaseStore_Metrics measured about 6 times the CPU
  // time of reading the cases and calling aggregateCaseMetrics() (0.94 s against 0.14 s
  // for 100,000 cases on a shared 2-core machine), mostly SQLite's sorts.
  absl::StatusOr<std::vector<CaseMetricsGroup>> caseMetricsBetween(
      const std::optional<std::vector<std::string>>& allowed_tenants, const std::string& tenant,
      int64_t from_ns, int64_t to_ns);

  // ---- Analyst work. Each call is one write transaction with its timeline entries.
  // InvalidArgument names a bad value; NotFound an unknown case or task; FailedPrecondition
  // a transition or merge the case's state forbids.

  // Opens a case by hand; records "created" in its timeline.
  absl::StatusOr<Case> createCase(const NewCase& fields, const Actor& actor);

  // Applies `update`, recording one timeline entry per field that changed. Returns the case
  // as stored afterwards.
  absl::StatusOr<Case> updateCase(int64_t id, const CaseUpdate& update, const Actor& actor);

  absl::StatusOr<CaseTask> addTask(int64_t case_id, const std::string& title,
                                   const std::string& assignee, const Actor& actor);
  absl::StatusOr<CaseTask> updateTask(int64_t case_id, int64_t task_id, const TaskUpdate& update,
                                      const Actor& actor);

  // Adds a note by `actor`; its mentions come from parseMentions(body).
  absl::StatusOr<CaseNote> addNote(int64_t case_id, const std::string& body, const Actor& actor);

  // Stores `bytes` under their SHA-256 (written and fsynced before the row is committed)
  // and attaches them to the case. A file the case already contains is returned unchanged
  // with `*added` false. ResourceExhausted when larger than max_evidence_bytes.
  absl::StatusOr<EvidenceFile> addEvidenceFile(int64_t case_id, const std::string& name,
                                               const std::string& content_type,
                                               absl::string_view bytes, const Actor& actor,
                                               bool* added);

  // Returns the bytes of file `sha256` of case `case_id`. NotFound when the case does not
  // hold that file; DataLoss when the stored bytes no longer match their hash.
  absl::StatusOr<std::string> readEvidenceFile(int64_t case_id, const std::string& sha256,
                                               EvidenceFile* meta);

  // Oldest first.
  absl::StatusOr<std::vector<TimelineEntry>> timeline(int64_t case_id);

  // Moves alerts, evidence, files, notes, tasks and tags of `source` into `target`, then
  // closes `source` as a duplicate. Both cases must have the same tenant; the source must
  // not be closed and the target must be new or in progress. Returns the target.
  absl::StatusOr<Case> mergeCase(int64_t source, int64_t target, const Actor& actor);

  const SlaPolicy& sla() const { return options_.sla; }
  int64_t maxEvidenceBytes() const { return options_.max_evidence_bytes; }
  const std::string& evidenceDir() const { return options_.evidence_dir; }
  // The store's clock, for SLA checks of open cases.
  int64_t nowNs() const { return options_.clock->nowNs(); }

  // --- Case operations of playbook runs (mgmt/case_connector.h), on the calls above.
  // Their timeline entries name a non-human actor, so they never count as acknowledgement.

  // Opens a case by hand for playbook `rule_id` ("playbook:<name>"), with `origin` in its
  // description; the timeline names `rule_id` as a non-human actor. Returns its id.
  absl::StatusOr<int64_t> createPlaybookCase(absl::string_view title, Severity severity,
                                     absl::string_view tenant, absl::string_view rule_id,
                                     absl::string_view origin);
  // Adds a note by `author`. NotFound when no case has `id`.
  absl::Status addCaseNote(int64_t id, absl::string_view author, absl::string_view text);
  // Adds tags (existing ones are kept once). NotFound when no case has `id`.
  absl::Status addCaseTags(int64_t id, absl::Span<const std::string> tags);
  absl::Status setCaseSeverity(int64_t id, Severity severity);
  // Applies `update` as updateCase() does, with `author` as the non-human actor in the
  // timeline (assign, status changes, close). Errors as for updateCase().
  absl::Status updatePlaybookCase(int64_t id, const CaseUpdate& update, absl::string_view author);
  // Attaches `bytes` as evidence file `name` by `author`, as addEvidenceFile() does, and
  // returns the stored file (an identical file already attached is returned unchanged).
  absl::StatusOr<EvidenceFile> addPlaybookEvidence(int64_t id, const std::string& name,
                                                   const std::string& content_type,
                                                   absl::string_view bytes,
                                                   absl::string_view author);
  // Notes of a case, oldest first, as (author, text).
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> caseNotes(int64_t id);
  absl::StatusOr<std::vector<std::string>> caseTags(int64_t id);
  // The result of a case action of a playbook run, as runKeyedAction() records it.
  struct KeyedActionResult {
    int64_t case_id = 0;      // the case the action worked on
    std::string result_json;  // the action's result as JSON text
  };
  // Performs a case action of a playbook run at most once per idempotency key `key`. When
  // the key is recorded, returns the recorded result with `*replayed` set, without calling
  // `action`. Otherwise calls `action` (which may call the other methods of the store) and
  // records the key, `tenant`, `action_name` and the result in the same transaction as the
  // action's writes: after a crash either both are stored or neither. A failed action
  // writes nothing. PermissionDenied when the key is recorded for another tenant. Blocks
  // other writers of the store while `action` runs.
  absl::StatusOr<KeyedActionResult> runKeyedAction(
      absl::string_view key, absl::string_view tenant, absl::string_view action_name,
      const std::function<absl::StatusOr<KeyedActionResult>()>& action, bool* replayed);

  // --- Group commit of keyed actions. Between tryBeginGroupCommit() and commitGroup(),
  // the keyed actions of the calling thread share one write transaction, opened by the
  // first of them, so many filings cost one commit and one sync. Each action keeps its
  // own savepoint, so a failed action still writes nothing. The writes of the group are
  // durable only once commitGroup() returns OK: until then the caller must not report
  // the actions as done anywhere else (run journal, run store).
  //
  // No other caller ever works inside the open transaction. A call from any other thread
  // waits until the owner commits the group, at most CaseStoreOptions::foreign_group_wait,
  // and then commits the transaction itself (the group continues in a new one).
  // queuedAlertsAfter() and queuedAlertCount() are the exceptions: they read inside it,
  // because the rows they read are not the ones the group writes.

  // Makes the calling thread the owner of a new group. False, with nothing changed, when
  // another thread's group is open (the caller then works without one).
  bool tryBeginGroupCommit();
  // Commits the group's open transaction and ends the group. Returns an error when that
  // commit failed, or when another thread's commit of the group's transaction failed. The
  // writes since that transaction began are then rolled back with their idempotency
  // keys, and the caller runs those actions again.
  absl::Status commitGroup();
  // True on the thread that owns the open group.
  bool inGroupCommit();

  // Returns the case that contains the newest stored alert with `alert_id` of `tenant`, if any.
  absl::StatusOr<std::optional<int64_t>> findCaseOfAlert(absl::string_view tenant,
                                                         absl::string_view alert_id);

  // --- The alert inbox, which the default case playbook files from (docs/playbooks.md,
  // "Alerts to cases"). Alerts wait there, with their evidence, until a case.attach_alert
  // action files them.

  // Stores `alerts` in the inbox in one transaction, without filing any in a case, and
  // returns their inbox ids in order. InvalidArgument, with nothing stored, for an alert
  // whose level is not a Sigma level.
  absl::StatusOr<std::vector<int64_t>> queueAlerts(absl::Span<const correlate::Alert> alerts);

  // Files inbox alert `inbox_id` exactly as ingestAlert() does (into the open case of its
  // (tenant, rule_id, group), or a new case) and removes it from the inbox, in one
  // transaction. NotFound when the inbox holds no such alert, for example because an
  // earlier action already filed it, and when `tenant` is set and the alert belongs to
  // another tenant. Inside a transaction the caller opened (runKeyedAction()), it opens no
  // savepoint of its own, so after an error the caller must roll its transaction back.
  // `decoded`, when set, is the row's alert as decodeStoredAlert() returned it (the
  // default-case feeder decoded it already), and the row's text is not decoded again.
  absl::StatusOr<IngestResult> attachQueuedAlert(
      int64_t inbox_id, std::optional<absl::string_view> tenant = std::nullopt,
      const correlate::Alert* decoded = nullptr);

  // Returns up to `limit` inbox alerts whose id is above `after_id`, oldest first, as
  // (inbox id, text that internal::decodeStoredAlert() reads).
  absl::StatusOr<std::vector<std::pair<int64_t, std::string>>> queuedAlertsAfter(int64_t after_id,
                                                                                 size_t limit);

  // Alerts waiting in the inbox.
  absl::StatusOr<int64_t> queuedAlertCount();

  // Schema version of the open database (the latest migration applied).
  int schemaVersion() const { return schema_version_; }
  const std::string& path() const { return path_; }

  // Version that open() migrates a database to.
  static int latestSchemaVersion();

 private:
  struct Statements;

  CaseStore(std::string path, sqlite3* db, CaseStoreOptions options);
  absl::Status migrate();
  absl::Status prepareStatements();
  absl::StatusOr<IngestResult> ingestOne(const correlate::Alert& alert);
  absl::Status exec(const char* sql);

  // Helpers of the analyst operations; the caller holds mu_ and a write transaction.
  absl::StatusOr<Case> readCaseLocked(int64_t id);
  absl::Status recordLocked(int64_t case_id, const Actor& actor, absl::string_view action,
                            absl::string_view field, absl::string_view old_value,
                            absl::string_view new_value);
  absl::Status touchLocked(int64_t case_id);
  absl::Status readWorkLocked(int64_t case_id, CaseDetail& detail);
  absl::Status setTagsLocked(int64_t case_id, const std::vector<std::string>& tags);
  absl::StatusOr<std::string> writeEvidenceBlob(const std::string& sha256, absl::string_view bytes);
  std::string path_;
  sqlite3* db_;
  CaseStoreOptions options_;
  int schema_version_ = 0;
  std::unique_ptr<Statements> stmts_;
  // Locks mu_. When another thread's group transaction is open, waits for it to commit
  // (at most options_.foreign_group_wait) and commits it after that wait.
  // Every public method takes this, except the two inbox reads named at
  // tryBeginGroupCommit().
  class StoreLock {
   public:
    explicit StoreLock(CaseStore& store);
    ~StoreLock() { store_.mu_.unlock(); }
    StoreLock(const StoreLock&) = delete;
    StoreLock& operator=(const StoreLock&) = delete;

   private:
    CaseStore& store_;
  };
  // Commits the open group transaction. On failure it rolls the transaction back and keeps
  // the error for commitGroup(). The caller must lock mu_.
  absl::Status commitGroupTransactionLocked();

  // Recursive, so that runKeyedAction() can hold it while the action calls other methods.
  std::recursive_mutex mu_;
  // The group commit, guarded by mu_.
  bool group_open_ = false;
  bool group_transaction_open_ = false;
  std::thread::id group_owner_;
  absl::Status group_status_;
  // Notified, under mu_, when the group transaction commits or rolls back.
  std::condition_variable_any group_transaction_closed_;
};

}  // namespace vigil::mgmt

// The case store: a SQLite database that turns correlated alerts into cases an analyst can
// work on. Alerts for the same (tenant, rule id, group key) join the one open case for that
// key. Once that case is resolved or closed, the next such alert opens a new one.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
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

// Severity of a case, taken from the Sigma level of its alerts. Ordered from least to most
// severe, so comparisons and sorting follow the enum order.
enum class Severity { kInformational, kLow, kMedium, kHigh, kCritical };

// Workflow state of a case. Only kNew and kInProgress cases take new alerts.
enum class CaseStatus { kNew, kInProgress, kResolved, kClosed };

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

// Parse the names above ("high", "in_progress", "-detected"). Sigma levels are accepted
// in any letter case. Errors are InvalidArgument naming the value and the accepted names.
absl::StatusOr<Severity> parseSeverity(absl::string_view name);
absl::StatusOr<CaseStatus> parseCaseStatus(absl::string_view name);
absl::StatusOr<CaseSort> parseCaseSort(absl::string_view name);

struct Case {
  int64_t id = 0;
  std::string title;
  Severity severity = Severity::kMedium;
  CaseStatus status = CaseStatus::kNew;
  std::string resolution;  // empty until an analyst resolves the case
  std::string assignee;    // empty when unassigned
  std::string tenant;
  std::string rule_id;
  std::string group_key;       // JSON object of the group-by fields, keys sorted
  int64_t first_event_ns = 0;  // earliest event time over all alerts, UTC ns
  int64_t detect_ns = 0;       // detection time of the alert that opened the case
  int64_t updated_ns = 0;      // store clock time of the last change
  int64_t alert_count = 0;
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

struct CaseDetail {
  Case info;
  std::vector<StoredAlert> alerts;  // in arrival order
  std::vector<Evidence> evidence;   // by alert, then position
};

struct CaseFilter {
  static constexpr int kDefaultLimit = 50;
  static constexpr int kMaxLimit = 500;

  std::optional<std::string> tenant;
  std::optional<CaseStatus> status;
  std::optional<Severity> severity;
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

  // Returns the case with its alerts and evidence. NotFound when no case has `id`.
  absl::StatusOr<CaseDetail> getCase(int64_t id);

  // --- Case operations of playbook runs (mgmt/case_connector.h) ---

  // Opens a case that no alert opened: rule_id "playbook:<name>" and a group key unique to
  // `origin`, so it never takes alerts. Returns its id.
  absl::StatusOr<int64_t> createCase(absl::string_view title, Severity severity,
                                     absl::string_view tenant, absl::string_view rule_id,
                                     absl::string_view origin);
  // Adds a note by `author`. NotFound when no case has `id`.
  absl::Status addCaseNote(int64_t id, absl::string_view author, absl::string_view text);
  // Adds tags (existing ones are kept once). NotFound when no case has `id`.
  absl::Status addCaseTags(int64_t id, absl::Span<const std::string> tags);
  absl::Status setCaseSeverity(int64_t id, Severity severity);
  // Notes of a case, oldest first, as (author, text).
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> caseNotes(int64_t id);
  absl::StatusOr<std::vector<std::string>> caseTags(int64_t id);
  // The case that holds the newest stored alert with `alert_id` of `tenant`, if any.
  absl::StatusOr<std::optional<int64_t>> findCaseOfAlert(absl::string_view tenant,
                                                         absl::string_view alert_id);

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

  std::string path_;
  sqlite3* db_;
  CaseStoreOptions options_;
  int schema_version_ = 0;
  std::unique_ptr<Statements> stmts_;
  std::mutex mu_;
};

}  // namespace vigil::mgmt

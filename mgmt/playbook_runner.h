// The playbook runner inside vigild: takes correlated alerts from the pipeline, starts a
// run of every playbook whose trigger matches, and runs it on worker threads through the
// playbook VM with real connectors. Runs that wait for an approval or a delay are kept in
// the run store and resume after a restart; a timer thread resumes delays and applies the
// default branch of approvals whose deadline passed.
//
// The playbooks that alerts trigger form one immutable PlaybookSet: the configured ones,
// the pushed set for every tenant, and each tenant's pushed set (content pushes, through
// activatePushed()). A push publishes a new set with one atomic store, and each alert is
// matched against one set, so it is never matched against a mix of two versions. Runs keep the program
// they started with: a resumed run loads its program by hash, from the run store when
// no active set has it.
//
// Threads: onAlert() runs on the pipeline's last stage, and onStoredAlert() on the case
// sink's writer thread; both only match triggers and queue (they never run a playbook).
// `workers` threads run playbooks; one timer thread wakes suspended runs; API threads
// call decide() and read the store.
//
// Unless config.default_case is false, the runner also runs the built-in default-case
// playbook (mgmt/default_case_playbook.h) on every alert in the case store's alert inbox,
// and routes its case.attach_alert action to a built-in case connector when no route
// names that action. A feeder thread queues those runs from the inbox in id order,
// keeping at most half the queue for them, so the inbox (on disk) holds the backlog and
// nothing is dropped or waits; at start it takes up the alerts an earlier process left.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "correlate/alert.h"
#include "mgmt/action_router.h"
#include "mgmt/case_sink.h"
#include "mgmt/internal/alert_view.h"
#include "mgmt/playbook_config.h"
#include "mgmt/principal.h"
#include "mgmt/run_journal.h"
#include "mgmt/run_store.h"
#include "playbook_vm/program.h"
#include "playbook_vm/vm.h"

namespace vigil::intel {
class SnapshotStore;
}

namespace vigil::mgmt {

class ApiServer;
class CaseStore;
struct ContentProblem;
struct PlaybookBundle;

// One loaded playbook.
struct LoadedPlaybook {
  std::string name;
  std::string path;
  std::string hash;  // hex SHA-256 of the source
  std::vector<uint8_t> module;
  std::shared_ptr<const playbook_vm::Program> program;
};

// A playbook that alerts can trigger: configured, or pushed as content.
struct ActivePlaybook {
  // loaded.name is the name runs and metrics carry: the playbook's own name, or
  // "TENANT/NAME" for a playbook one tenant pushed.
  LoadedPlaybook loaded;
  // The only tenant whose alerts trigger it, whatever its trigger lists. Empty for
  // configured playbooks and those pushed for every tenant.
  std::string tenant;
  int64_t version = 0;  // content version of a pushed playbook; 0 for configured ones
};

// The playbooks that alerts trigger at one moment. Immutable once published, so a reader
// holding it reads one version of every part.
struct PlaybookSet {
  using Entry = std::shared_ptr<const ActivePlaybook>;
  std::vector<Entry> configured;  // the built-in default-case playbook first, when it runs
  std::vector<Entry> every_tenant;  // pushed for every tenant
  std::map<std::string, std::vector<Entry>, std::less<>> tenants;  // pushed, by tenant
};

// Metrics (labels in braces):
//   vigil_playbook_runs_started_total{playbook}
//   vigil_playbook_runs_finished_total{playbook, state}   succeeded, failed, denied, timed_out
//   vigil_playbook_run_duration_seconds{playbook}         histogram, start to final state
//   vigil_playbook_runs_suspended_total{playbook, state}  waiting_approval, delayed
//   vigil_playbook_runs_waiting{state}                    runs suspended right now
//   vigil_playbook_steps_total{kind}                      step log entries (action, log, ...)
//   vigil_playbook_step_outcomes_total{playbook, kind, step, outcome}
//   vigil_playbook_step_duration_seconds{playbook, step}  histogram of action steps
//   vigil_playbook_step_series_dropped_total              steps counted without their own
//                                                         series (kMaxStepSeries reached)
//   vigil_playbook_tenant_runs_total{tenant, state}       started, succeeded, failed, denied,
//                                                         timed_out; by the alert's tenant,
//                                                         "_other" past kMaxTenantSeries
//   vigil_playbook_series_dropped_total                   runs counted under
//                                                         playbook="other" (kMaxPlaybookSeries
//                                                         reached)
//   vigil_playbook_vm_steps_total                         VM instructions executed
//   vigil_playbook_queue_dropped_total{reason}            full, shutdown
//   vigil_playbook_worker_spin_hits_total                 jobs taken while polling, no sleep
//   vigil_alert_inbox_alerts                              alerts in the inbox, not yet
//                                                          filed (gauge, set by the feeder)
//   vigil_cases_opened_total                              cases case.attach_alert opened
//   vigil_playbook_queue_depth
//   vigil_playbook_group_commits_total{outcome}           ok, failed: case store commits
//                                                          shared by default-case runs
//   vigil_playbook_group_commit_runs_total                runs those commits contained
//   vigil_playbook_store_errors_total                     run store writes that failed
//   vigil_playbook_first_action_latency_us                histogram: alert queued -> first
//                                                         connector call of a run
//   vigil_playbook_dispatch_latency_us                    histogram: worker took the alert
//                                                         -> first connector call
// plus the ActionRouter's connector metrics.
class PlaybookRunner final : public correlate::AlertSink, public StoredAlertSink {
 public:
  // Run ids are reserved in the store this many at a time (one synced write per block).
  static constexpr int64_t kRunIdBlock = 1024;
  // Series of vigil_playbook_step_outcomes_total the runner creates at most; playbook
  // sources bound the step names, this bounds what old playbook versions add over time.
  static constexpr size_t kMaxStepSeries = 4096;
  // Playbook names with their own run series at most; pushes add names over time, and
  // runs of names past the limit are counted under playbook="other".
  static constexpr size_t kMaxPlaybookSeries = 1024;
  // Tenants with their own vigil_playbook_tenant_runs_total and vigil_cases_opened_total
  // series at most; runs of any further tenant count under tenant="_other".
  static constexpr size_t kMaxTenantSeries = 256;
  // Bounds of a group commit of default-case runs (fileGroup()): the runs it takes at
  // most, and how long after its first run it starts more. A run waits for the group's
  // commit, so the window bounds that wait by about the window plus one run.
  static constexpr size_t kGroupCommitMaxRuns = 64;
  static constexpr std::chrono::milliseconds kGroupCommitWindow{5};
  // Bounds of the runs a worker keeps finished but not yet stored while more alerts wait
  // (deferStore()): at most this many, the oldest finished at most this long ago.
  static constexpr size_t kDeferMaxRuns = 128;
  static constexpr std::chrono::milliseconds kDeferWindow{100};

  // Compiles every playbook under config.paths and checks the connector options (the
  // block list state file is read, nothing is opened or written). Errors name the file,
  // line and column of a playbook, or the connector.
  static absl::StatusOr<std::unique_ptr<PlaybookRunner>> create(const PlaybookRunnerConfig& config,
                                                                MetricsRegistry& metrics,
                                                                const Clock* clock = nullptr);
  ~PlaybookRunner() override;
  PlaybookRunner(const PlaybookRunner&) = delete;
  PlaybookRunner& operator=(const PlaybookRunner&) = delete;

  // Opens the run store and the run journals (the database path plus ".journal.SLOT"),
  // adds the case and intel connectors (`cases` and `intel` are not owned; either may be
  // null, and then those connector types fail to start), takes up the runs a previous
  // process left suspended or handed over, queues again the run segments the journals
  // show were interrupted, and starts the threads.
  absl::Status start(CaseStore* cases, intel::SnapshotStore* intel);

  // Stops taking alerts, lets each worker finish the segment it runs, counts alerts still
  // queued as vigil_playbook_queue_dropped_total{reason="shutdown"} and joins the
  // threads. Suspended runs and runs handed over by a decision stay in the store and
  // continue after the next start(). Safe to call more than once.
  void stop();

  // Matches the alert against every trigger and queues one job per match. Waits at most
  // enqueue_wait_ms for room; after that the job is counted as dropped{reason="full"}.
  void onAlert(const correlate::Alert& alert) override;

  // Like onAlert() for an alert the case sink stored in the alert inbox: runs see its id
  // as alert.inbox_id. The default-case playbook is left to the feeder, which this wakes.
  void onStoredAlert(const correlate::Alert& alert, int64_t inbox_id) override;

  // Blocks until every queued job has run to its end or its next suspension, or for at
  // most 10 s (then logs what is left; stop() counts queued alerts as dropped).
  void flush() override;
  void flushStored() override { flush(); }

  // Approves (or denies) a run waiting for approval and hands it to a worker with
  // "approved" (or "rejected"). NotFound when the run does not exist or `principal` may
  // not read its tenant; PermissionDenied when it may read but not work; FailedPrecondition
  // when the run is not waiting for approval. Returns the run after the decision.
  absl::StatusOr<RunRecord> decide(int64_t run_id, bool approve, const Principal& principal,
                                   const std::string& comment);

  // Appends a problem for each playbook of a pushed set that cannot become active: two
  // files with one name, or, for a set pushed for every tenant, the name of a configured
  // playbook. A tenant's pushed playbooks run as "TENANT/NAME", which cannot clash,
  // because playbook names contain no '/'. Thread-safe.
  void checkPushed(const PlaybookBundle& bundle, std::vector<ContentProblem>& problems) const;

  // Makes `bundle` the pushed playbooks of its tenant (kAllTenants: of every tenant),
  // replacing that tenant's previous set, and publishes the new PlaybookSet. Alerts
  // matched after it returns are matched against the new set. The modules go into the
  // run store before the set is published (or, before start(), by start()), so runs of
  // them resume after a restart. On error nothing changes. Calls are serialized.
  absl::Status activatePushed(const PlaybookBundle& bundle);

  // The set published last. Thread-safe.
  std::shared_ptr<const PlaybookSet> activePlaybooks() const { return active_.load(); }

  // The store; null before start().
  RunStore* store() { return store_.get(); }

  // Adds GET /api/v1/runs, /api/v1/runs/{id}, /api/v1/approvals and POST
  // /api/v1/runs/{id}/approve and /deny. With `trust_unauthenticated` set, a request
  // without a principal runs as a local administrator. vigild passes false, because its
  // token check fills ApiRequest::principal before any handler runs.
  void addRoutes(ApiServer& api, bool trust_unauthenticated);

 private:
  struct Job {
    int64_t run_id = 0;  // 0: a new run of `playbook` on `alert`
    PlaybookSet::Entry playbook;
    std::shared_ptr<const correlate::Alert> alert;
    int64_t queued_mono_ns = 0;
    int64_t inbox_id = 0;  // the alert's row in the case store's alert inbox; 0 for none
    bool fed = false;      // queued by the default-case feeder
    // A run of another playbook on an inbox alert: the feeder holds the alert's
    // default-case run back until this run is journaled (releaseInboxHold()).
    bool holds_inbox = false;
    // A segment interrupted by the end of an earlier process, as its run journal recorded
    // it, and the file that contains it until a worker has journaled it again.
    std::shared_ptr<const JournalSegment> recovered = nullptr;
    std::string recovered_path{};
  };
  // Series of one tenant: vigil_playbook_tenant_runs_total and vigil_cases_opened_total.
  struct TenantMetrics {
    Counter* started = nullptr;
    Counter* finished[4] = {};  // by finalIndex()
    Counter* cases_opened = nullptr;  // vigil_cases_opened_total{tenant}
  };
  // The outcome of one run segment, ready for the run store: what settle() writes, kept
  // until the group commit of its case actions when the segment ran in one.
  struct SettledSegment {
    int64_t run_id = 0;
    std::string playbook;
    int64_t created_ns = 0;
    bool suspended = false;
    RunState state = RunState::kRunning;
    int64_t wake_ns = 0;          // suspended segments
    std::string prompt;           // waiting for approval
    std::string saved_state;      // suspended segments: the VM state
    uint64_t vm_steps = 0;
    std::vector<RunStep> steps;   // the segment's steps, its end step last
    std::optional<NewRun> insert; // the run's row, for a first segment
    std::string value;            // final value (finished segments)
    std::string error;            // failure message (failed runs)
    std::optional<int64_t> first_action_latency_ns;
    std::optional<int64_t> dispatch_latency_ns;
    std::optional<int64_t> event_to_action_ns;
    int64_t cases_opened = 0;     // by actions inside a group commit
    TenantMetrics* tenant_metrics = nullptr;  // the run's tenant series
  };
  struct Wake {
    int64_t run_id;
    RunState state;
  };
  // Metric series of one playbook, registered when it loads so workers never look a
  // series up by name.
  struct PlaybookMetrics {
    Counter* started = nullptr;
    Counter* finished[4] = {};  // by finalIndex()
    Counter* suspended_approval = nullptr;
    Counter* suspended_delay = nullptr;
    Histogram* duration = nullptr;
    // Repeat counts of this playbook's error lines, so that repeats log on powers of two
    // only: failed runs, and failed run store writes by absl::StatusCode.
    std::atomic<uint64_t> failed_run_logs{0};
    std::array<std::atomic<uint64_t>, 17> store_error_logs{};
  };
  struct StepMetrics {
    Counter* outcomes = nullptr;
    Histogram* duration = nullptr;  // action steps only
  };
  // Per-worker state: the VM, the journal slot and a cache of step series, so settling a
  // run takes no lock for metrics.
  struct Worker {
    size_t slot = 0;
    RunJournal* journal = nullptr;  // this worker's run journal file
    playbook_vm::Vm vm;
    int64_t taken_mono_ns = 0;
    // The alert of the run started last and the journal record of its first segment,
    // kept so the next run reuses their memory (startRun() only).
    internal::AlertView alert;
    JournalSegment first_segment;
    std::string key;  // scratch for step cache lookups
    std::map<std::string, StepMetrics, std::less<>> steps;  // by playbook, kind, name, outcome
    std::map<std::string, Counter*, std::less<>> kinds;
    std::map<std::string, PlaybookMetrics*, std::less<>> playbooks;  // by playbook name
    std::map<std::string, TenantMetrics*, std::less<>> tenants;      // by tenant name
    // Set while the worker runs a group commit (fileGroup()): the segments settled since
    // it began, stored after the case store's commit.
    std::vector<SettledSegment>* group = nullptr;
    // Next beginSegment() appends to the journal instead of overwriting it, so every run
    // of a group, and every deferred run, stays in the journal until it is stored.
    bool append_journal = false;
    // Runs whose first segment finished and whose store write waits for the queue to run
    // empty (deferStore()), and when the oldest of them finished.
    std::vector<SettledSegment> deferred;
    int64_t deferred_since_mono_ns = 0;
  };

  PlaybookRunner(const PlaybookRunnerConfig& config, MetricsRegistry& metrics, const Clock* clock);
  absl::Status loadPlaybooks();
  absl::Status addConnectors(CaseStore* cases, intel::SnapshotStore* intel);
  absl::Status recover();
  absl::Status loadPlaybook(const std::string& source, const std::string& file,
                            std::set<std::string>& names, std::vector<PlaybookSet::Entry>& out);
  bool triggerMatches(const playbook_vm::Trigger& trigger, const correlate::Alert& alert) const;
  void enqueueAlert(const correlate::Alert& alert, int64_t inbox_id);
  // Calls fn(entry) for each playbook other than the built-in default-case one whose
  // trigger matches `alert`, from `set`.
  template <typename Fn>
  void forEachTriggered(const PlaybookSet& set, const correlate::Alert& alert, Fn fn) const;
  // At start, queues again the runs of other playbooks on inbox alerts that were queued
  // when the process ended and have neither a stored run nor a journaled segment.
  absl::Status requeueInboxRuns(CaseStore& cases);
  // Ends the hold that `job` (holds_inbox) puts on its alert's default-case run.
  void releaseInboxHold(const Job& job);
  // Queues a run of `playbook` on `alert` (copied into `copy` on first use).
  void enqueueRun(const PlaybookSet::Entry& playbook, const correlate::Alert& alert,
                  std::shared_ptr<const correlate::Alert>& copy, int64_t queued_mono_ns,
                  int64_t inbox_id);
  // Loads the playbooks of a pushed set with the runner's host registry.
  absl::StatusOr<std::vector<PlaybookSet::Entry>> loadPushed(const PlaybookBundle& bundle) const;
  // Stores the module of every playbook of `playbooks` in the run store.
  absl::Status storeModules(const std::vector<PlaybookSet::Entry>& playbooks);
  // The program with source hash `hash` in the active set; null when none has it.
  std::shared_ptr<const playbook_vm::Program> activeProgram(const std::string& hash) const;
  void feederLoop();
  void feedFromInbox();
  void wakeFeeder();
  void enqueueResume(int64_t run_id);
  void workerLoop(size_t slot);
  // Returns true when a job was queued while polling.
  bool spinForWork() const;
  // Publishes the queue length to the gauge and to spinning workers; called with mu_
  // held (or before the threads start) after every change of queue_.
  void queueChanged();
  void timerLoop();
  void startRun(const Job& job, Worker& worker);
  void resumeRun(int64_t run_id, Worker& worker);
  // Resumes `run` from its saved VM state with the value `resume_json` (JSON text) and
  // settles the segment. `ctx` is prepared for the run and journaled.
  void resumeSegment(const RunRecord& run, const std::string& resume_json, RunContext& ctx,
                     Worker& worker);
  absl::Status recoverLegacyStarts(size_t& interrupted);
  absl::StatusOr<std::vector<std::pair<JournalSegment, std::string>>> readJournals();
  absl::Status openJournals();
  void recoverRun(const Job& job, Worker& worker);
  // Writes the start of `segment` to the worker's run journal and points ctx at it. False
  // (counted and logged) when the journal cannot be written; the segment must not run.
  bool beginSegment(Worker& worker, const JournalSegment& segment, RunContext& ctx);
  absl::Status reserveRunIds();
  absl::StatusOr<int64_t> allocateRunId();
  absl::Status extendRunIds(int64_t needed);
  void registerPlaybookMetrics(const std::string& name, PlaybookMetrics& out);
  // The series of `playbook`, registered on first use (within kMaxPlaybookSeries). Takes a
  // lock; workers go through playbookMetrics().
  PlaybookMetrics& metricsFor(const std::string& playbook);
  PlaybookMetrics& playbookMetrics(const std::string& playbook, Worker& worker);
  // The series of `tenant`, registered on first use (within kMaxTenantSeries). Takes a
  // lock; workers go through tenantMetrics().
  TenantMetrics& metricsForTenant(std::string_view tenant);
  TenantMetrics& tenantMetrics(std::string_view tenant, Worker& worker);
  void countSteps(const std::string& playbook, const std::vector<RunStep>& steps, Worker& worker);
  StepMetrics stepMetrics(const std::string& playbook, const RunStep& step, Worker& worker);
  absl::StatusOr<std::shared_ptr<const playbook_vm::Program>> programFor(const std::string& hash);
  // Persists the outcome of one run segment: suspended (with the VM state and a timer) or
  // final, with the steps the segment took.
  // `insert` is the run's row when the segment was its first, stored in the same
  // transaction. Inside a group commit (worker.group set) the outcome waits in the group
  // and is stored after the case store's commit.
  void settle(const RunRecord& run, RunContext& ctx, const playbook_vm::RunResult& result,
              Worker& worker, const NewRun* insert);
  // Builds the run store write and the metric values of a segment. Moves ctx.steps out.
  SettledSegment describeSegment(const RunRecord& run, RunContext& ctx,
                                 const playbook_vm::RunResult& result, const NewRun* insert,
                                 Worker& worker);
  absl::Status storeSuspended(const SettledSegment& segment);
  absl::Status storeFinished(const SettledSegment& segment);
  // Counts a segment's outcome, steps, latencies and opened cases; `stored` is the result
  // of its run store write (a failure is counted and logged).
  void countSettled(const SettledSegment& segment, const absl::Status& stored, Worker& worker);
  // Group commit of default-case runs: runs `first` and the default-case jobs queued behind
  // it (at most kGroupCommitMaxRuns, started within kGroupCommitWindow) with their case
  // actions in one case store transaction, then stores the runs in one run store
  // transaction. When the case store commit fails, runs each of them again on its own
  // from the run journal, with the same idempotency keys.
  void fileGroup(Job first, Worker& worker);
  // Takes the next queued job when it is a default-case job the feeder queued.
  bool takeFedJob(Job& job);
  // Stores the segments of a committed group: the finished runs in one transaction (one by
  // one if that fails), suspended runs each on their own. Then counts them.
  void storeGroup(std::vector<SettledSegment>& group, Worker& worker);
  // Keeps a finished first segment to store later with others in one transaction, or
  // stores the kept ones now when kDeferMaxRuns or kDeferWindow is reached. Between two
  // queued alerts the worker then goes straight to the next dispatch: each store write
  // left its caches cold, which set the tail of the dispatch time. The segments stay in
  // the worker's journal until stored, so a crash runs them again as interrupted ones.
  void deferStore(SettledSegment segment, Worker& worker);
  // Stores the deferred runs of `worker` in one transaction and counts them.
  void storeDeferred(Worker& worker);
  // Runs the segments of a group whose commit failed again, each with its own commits,
  // from the worker's run journal.
  void rerunGroup(const std::vector<SettledSegment>& group, Worker& worker);
  // Fills ctx for `run`, except its alert: callers set ctx.alert or ctx.alert_source.
  void prepareContext(RunContext& ctx, const RunRecord& run, Worker& worker);
  void schedule(int64_t wake_ns, int64_t run_id, RunState state);
  void updateWaitingGauges();

  PlaybookRunnerConfig config_;
  MetricsRegistry& metrics_;
  const Clock* clock_;
  playbook_vm::HostRegistry registry_;
  // The playbooks alerts trigger. Readers take it with one atomic load and no mutex, and
  // activatePushed() replaces it under push_mu_.
  std::atomic<std::shared_ptr<const PlaybookSet>> active_;
  std::mutex push_mu_;
  // Set by start() once the run store contains the modules of the active set. From then
  // on activatePushed() stores each new set's modules before publishing it. Guarded by
  // push_mu_.
  bool modules_stored_ = false;
  std::set<std::string> configured_names_;  // written by create() only
  std::vector<NamedConnector> pending_connectors_;  // built by create(), moved at start()
  std::unique_ptr<ActionRouter> router_;
  std::unique_ptr<RunStore> store_;
  std::vector<std::unique_ptr<RunJournal>> journals_;  // one per worker slot
  RunDurability durability_ = RunDurability::kProcess;
  intel::SnapshotStore* intel_ = nullptr;

  // Run ids below run_id_ceiling_ are reserved in the store; next_run_id_ is the next
  // one to hand out. id_mu_ serializes raising the ceiling.
  std::atomic<int64_t> next_run_id_{1};
  std::atomic<int64_t> run_id_ceiling_{1};
  std::mutex id_mu_;

  std::mutex playbook_metrics_mu_;
  // By playbook name, at most kMaxPlaybookSeries names plus "other"; entries never move.
  std::map<std::string, PlaybookMetrics> playbook_metrics_;
  std::mutex tenant_metrics_mu_;
  // By tenant, at most kMaxTenantSeries tenants plus "_other"; entries never move.
  std::map<std::string, TenantMetrics, std::less<>> tenant_metrics_;
  std::mutex step_metrics_mu_;
  std::set<std::string> step_series_;  // keys of the step series created; step_metrics_mu_

  std::mutex programs_mu_;
  std::map<std::string, std::shared_ptr<const playbook_vm::Program>> programs_;  // by hash

  std::mutex mu_;
  std::condition_variable work_ready_;
  std::condition_variable room_;
  std::condition_variable idle_;
  std::deque<Job> queue_;
  // queue_.size(), written with mu_ held and read without it by spinForWork().
  std::atomic<size_t> queued_{0};
  // How long idle workers poll the queue: worker_spin_us, or 0 when the process may run
  // on one CPU only. Set by start() before the workers start.
  int64_t spin_ns_ = 0;
  size_t alert_jobs_ = 0;  // alert jobs in queue_ (resume jobs do not count to capacity)
  size_t busy_ = 0;        // workers running a job
  // Finished runs that workers keep unstored (Worker::deferred); flush() waits for 0.
  std::atomic<size_t> deferred_runs_{0};
  bool stopping_ = false;
  std::vector<std::thread> workers_;

  // The default-case feeder. fed_jobs_ is guarded by mu_, feed_wake_ and feed_stop_ by
  // feed_mu_; only the feeder thread writes last_fed_.
  CaseStore* cases_ = nullptr;
  PlaybookSet::Entry default_playbook_;  // the built-in default-case playbook, when it runs
  size_t fed_jobs_ = 0;       // feeder jobs in queue_
  std::atomic<int64_t> last_fed_{0};        // highest inbox id queued
  std::atomic<int64_t> newest_stored_{0};   // highest inbox id onStoredAlert() saw
  // Inbox alerts whose default-case run runs again from its journal; the feeder does not
  // start a second run for them. Written before the threads start, then only read.
  std::set<int64_t> recovered_inbox_ids_;
  // (inbox id, playbook) of every first segment recover() queued again, so
  // requeueInboxRuns() does not start those runs twice. Written before the threads start.
  std::set<std::pair<int64_t, std::string>> journaled_inbox_runs_;
  // Counts of queued runs of other playbooks by inbox id, guarded by mu_. While an alert
  // has an entry, the feeder does not queue its default-case run, which removes it from
  // the inbox.
  std::map<int64_t, int> inbox_holds_;
  bool holds_inbox_runs_ = false;  // the feeder runs; set before the threads start
  std::mutex feed_mu_;
  std::condition_variable feed_cv_;
  bool feed_wake_ = false;
  bool feed_stop_ = false;
  std::thread feeder_;

  std::mutex timer_mu_;
  std::condition_variable timer_cv_;
  std::multimap<int64_t, Wake> wakes_;  // wall-clock wake time -> run
  bool timer_stop_ = false;
  std::thread timer_;
  bool started_ = false;

  Counter& dropped_full_;
  Counter& dropped_shutdown_;
  Counter& spin_hits_;
  Counter& vm_steps_;
  Counter& store_errors_;
  Counter& step_series_dropped_;
  Counter& playbook_series_dropped_;
  Counter& group_commits_ok_;
  Counter& group_commits_failed_;
  Counter& group_runs_;
  Gauge& queue_depth_;
  Gauge& waiting_approval_;
  Gauge& delayed_;
  Gauge& inbox_alerts_;
  Histogram& first_action_latency_us_;
  Histogram& dispatch_latency_us_;
  Histogram& event_to_action_latency_us_;
};

}  // namespace vigil::mgmt

#include "mgmt/playbook_runner.h"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/thread_name.h"
#include "common/time.h"
#include "correlate/pipeline.h"
#include "intel/snapshot.h"
#include "mgmt/blocklist_connector.h"
#include "mgmt/case_connector.h"
#include "mgmt/case_store.h"
#include "mgmt/default_case_playbook.h"
#include "mgmt/internal/playbook_runner_util.h"
#include "mgmt/internal/stored_alert.h"
#include "mgmt/syslog_connector.h"
#include "mgmt/webhook_connector.h"
#include "mgmt/yaml_paths.h"
#include "playbook_vm/compiler/compiler.h"

namespace vigil::mgmt {
namespace {

namespace pb = playbook_vm;

// Tells the CPU that this thread is in a polling loop (fewer pipeline flushes, and the
// sibling hyperthread gets the core).
inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// CPUs this process may run on, or 0 when the affinity mask cannot be read.
int allowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
  return CPU_COUNT(&set);
}
using json = nlohmann::json;
using internal::dumpJson;
using internal::finalIndex;
using internal::kFinalStates;

constexpr int64_t kSecondNs = 1'000'000'000;
// The pipeline calls flush() at shutdown. Connector timeouts bound each queued run, but a
// full queue against a dead endpoint could take hours, so flush gives up after this and
// stop() counts what is left.
constexpr std::chrono::seconds kFlushTimeout{10};
// Upper bounds of the first-action and dispatch latency histograms, in microseconds.
const std::vector<double> kLatencyBoundsUs = {1,    2,     5,     10,     20,     50,     100,
                                              500,  1000,  5000,  10000,  100000, 1000000};
// Upper bounds of the event-to-action histogram, in microseconds: ten per decade from 10 us
// to 100 s, the buckets of the pipeline's event-to-alert latency, so the two compare.
const std::vector<double> kEventToActionBoundsUs = [] {
  std::vector<double> b;
  for (int k = 10; k <= 80; ++k) b.push_back(std::round(std::pow(10.0, k / 10.0)));
  return b;
}();
// Upper bounds of run and step durations, in seconds: 100 us to one day, because a run
// that waits for an approval can take hours.
const std::vector<double> kDurationBounds = {0.0001, 0.001, 0.01, 0.1, 1,    10,
                                             60,     300,   1800, 3600, 86400};
// The action the default-case playbook files alerts with, and the connector that performs
// it when no `playbooks.actions` route names the action exactly.
constexpr const char* kAttachAlertAction = "case.attach_alert";
constexpr const char* kBuiltinCaseConnector = "builtin-case";

std::string listText(const pb::List* list, uint32_t index) {
  if (list == nullptr || index >= list->size) return "";
  const pb::Value& v = list->items[index];
  return v.isString() ? std::string(v.asString()) : pb::valueToString(v);
}

double listNumber(const pb::List* list, uint32_t index) {
  if (list == nullptr || index >= list->size) return 0;
  const pb::Value& v = list->items[index];
  if (v.isInt()) return static_cast<double>(v.asInt());
  if (v.isDouble()) return v.asDouble();
  return 0;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Construction and loading

PlaybookRunner::PlaybookRunner(const PlaybookRunnerConfig& config, MetricsRegistry& metrics,
                               const Clock* clock)
    : config_(config),
      metrics_(metrics),
      clock_(clock != nullptr ? clock : &RealClock::instance()),
      dropped_full_(metrics.counter("vigil_playbook_queue_dropped_total",
                                    "Playbook runs not started because the queue was full or "
                                    "vigild stopped",
                                    {{"reason", "full"}})),
      dropped_shutdown_(metrics.counter("vigil_playbook_queue_dropped_total",
                                        "Playbook runs not started because the queue was full "
                                        "or vigild stopped",
                                        {{"reason", "shutdown"}})),
      spin_hits_(metrics.counter("vigil_playbook_worker_spin_hits_total",
                                 "Jobs an idle worker took while polling the queue, without "
                                 "sleeping (playbooks.worker_spin_us)")),
      vm_steps_(metrics.counter("vigil_playbook_vm_steps_total",
                                "Playbook VM instructions executed")),
      store_errors_(metrics.counter("vigil_playbook_store_errors_total",
                                    "Run store writes that failed")),
      step_series_dropped_(metrics.counter(
          "vigil_playbook_step_series_dropped_total",
          "Playbook steps counted under step=\"other\" because the step series limit was reached")),
      playbook_series_dropped_(metrics.counter(
          "vigil_playbook_series_dropped_total",
          "Playbook runs counted under playbook=\"other\" because the playbook series limit was "
          "reached")),
      group_commits_ok_(metrics.counter("vigil_playbook_group_commits_total",
                                        "Case store commits shared by default-case runs",
                                        {{"outcome", "ok"}})),
      group_commits_failed_(metrics.counter("vigil_playbook_group_commits_total",
                                            "Case store commits shared by default-case runs",
                                            {{"outcome", "failed"}})),
      group_runs_(metrics.counter("vigil_playbook_group_commit_runs_total",
                                  "Default-case runs whose case actions shared a group commit")),
      queue_depth_(metrics.gauge("vigil_playbook_queue_depth", "Playbook jobs waiting for a worker")),
      waiting_approval_(metrics.gauge("vigil_playbook_runs_waiting", "Runs suspended right now",
                                      {{"state", "waiting_approval"}})),
      delayed_(metrics.gauge("vigil_playbook_runs_waiting", "Runs suspended right now",
                             {{"state", "delayed"}})),
      inbox_alerts_(metrics.gauge("vigil_alert_inbox_alerts",
                                  "Alerts stored in the alert inbox and not yet filed in a case")),
      first_action_latency_us_(metrics.histogram(
          "vigil_playbook_first_action_latency_us",
          "Microseconds from an alert reaching the runner to the first connector call of its run",
          kLatencyBoundsUs)),
      dispatch_latency_us_(metrics.histogram(
          "vigil_playbook_dispatch_latency_us",
          "Microseconds from a worker taking an alert to the first connector call of its run",
          kLatencyBoundsUs)),
      event_to_action_latency_us_(metrics.histogram(
          "vigil_event_to_first_action_latency_us",
          "Microseconds from receipt of the event that raised an alert to the first connector "
          "call of the alert's run",
          kEventToActionBoundsUs)) {}

PlaybookRunner::~PlaybookRunner() { stop(); }

absl::StatusOr<std::unique_ptr<PlaybookRunner>> PlaybookRunner::create(
    const PlaybookRunnerConfig& config, MetricsRegistry& metrics, const Clock* clock) {
  std::unique_ptr<PlaybookRunner> runner(new PlaybookRunner(config, metrics, clock));
  absl::StatusOr<RunDurability> durability = parseRunDurability(config.durability);
  if (!durability.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("playbooks.durability: ", durability.status().message()));
  }
  runner->durability_ = *durability;
  if (absl::Status st = pb::compiler::registerAlertHost(runner->registry_); !st.ok()) return st;
  if (absl::Status st = runner->loadPlaybooks(); !st.ok()) return st;
  for (const ConnectorConfig& c : config.connectors) {
    if (c.type == "case" || c.type == "intel") continue;  // need the stores; see start()
    NamedConnector named;
    named.name = c.name;
    named.type = c.type;
    if (c.type == "webhook" || c.type == "notify") {
      WebhookOptions options;
      options.url = c.url;
      options.timeout = std::chrono::milliseconds(c.timeout_ms);
      options.headers = c.headers;
      options.body = c.type == "notify" ? WebhookBody::kNotify : WebhookBody::kAction;
      options.channel = c.channel;
      options.idempotency_header = c.idempotency_header;
      options.max_response_bytes = static_cast<size_t>(c.max_response_bytes);
      auto webhook = WebhookConnector::create(std::move(options));
      if (!webhook.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("playbooks.connectors.", c.name, " (line ",
                                                       c.line, "): ", webhook.status().message()));
      }
      named.connector = std::move(*webhook);
    } else if (c.type == "syslog") {
      auto syslog = SyslogConnector::create(c);
      if (!syslog.ok()) return syslog.status();
      named.connector = std::move(*syslog);
    } else if (c.type == "blocklist") {
      auto blocklist = BlocklistConnector::create(c, clock);
      if (!blocklist.ok()) return blocklist.status();
      named.connector = std::move(*blocklist);
    }
    runner->pending_connectors_.push_back(std::move(named));
  }
  return runner;
}

absl::Status PlaybookRunner::loadPlaybooks() {
  std::set<std::string> names;
  auto set = std::make_shared<PlaybookSet>();
  if (config_.default_case) {
    // First in the list, so its job for an alert is queued before the other playbooks'.
    absl::Status st = loadPlaybook(std::string(defaultCasePlaybookSource()),
                                   "default_case.yml (built in)", names, set->configured);
    if (!st.ok()) return st;
    default_playbook_ = set->configured.back();
  }
  absl::StatusOr<std::vector<std::string>> files = std::vector<std::string>();
  if (!config_.paths.empty())
    files = expandYamlPaths(config_.paths, config_.paths_key.text, "playbook");
  if (!files.ok()) return files.status();
  for (const std::string& file : *files) {
    std::ifstream in(file);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read playbook ", file));
    std::stringstream text;
    text << in.rdbuf();
    if (absl::Status st = loadPlaybook(text.str(), file, names, set->configured); !st.ok()) {
      return st;
    }
  }
  configured_names_ = std::move(names);
  active_.store(std::move(set));
  return absl::OkStatus();
}

absl::Status PlaybookRunner::loadPlaybook(const std::string& source, const std::string& file,
                                          std::set<std::string>& names,
                                          std::vector<PlaybookSet::Entry>& out) {
  absl::StatusOr<pb::compiler::CompiledPlaybook> compiled =
      pb::compiler::compilePlaybook(source, file);
  if (!compiled.ok()) return compiled.status();
  absl::StatusOr<std::unique_ptr<pb::Program>> program =
      pb::loadProgram(compiled->module, registry_);
  if (!program.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", program.status().message()));
  }
  if (!(*program)->trigger().has_trigger) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": playbook has no trigger"));
  }
  if (!names.insert(compiled->name).second) {
    if (compiled->name == kDefaultCasePlaybookName) {
      return absl::InvalidArgumentError(absl::StrCat(
          file, ": playbook name '", compiled->name,
          "' is the built-in default-case playbook's; rename the copy, or set "
          "playbooks.default_case: false to run it in place of the built-in one"));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        file, ": playbook name '", compiled->name,
        "' is already used by another file under playbooks.paths; names must be unique"));
  }
  auto active = std::make_shared<ActivePlaybook>();
  LoadedPlaybook& loaded = active->loaded;
  loaded.name = compiled->name;
  loaded.path = file;
  loaded.hash = internal::programHash(**program);
  loaded.module = std::move(compiled->module);
  loaded.program = std::move(*program);
  programs_[loaded.hash] = loaded.program;
  metricsFor(loaded.name);
  out.push_back(std::move(active));
  return absl::OkStatus();
}

void PlaybookRunner::registerPlaybookMetrics(const std::string& name, PlaybookMetrics& out) {
  out.started = &metrics_.counter("vigil_playbook_runs_started_total", "Playbook runs started",
                                  {{"playbook", name}});
  for (size_t i = 0; i < std::size(kFinalStates); ++i) {
    out.finished[i] = &metrics_.counter(
        "vigil_playbook_runs_finished_total", "Playbook runs ended, by final state",
        {{"playbook", name}, {"state", std::string(runStateName(kFinalStates[i]))}});
  }
  const char* suspended_help = "Playbook runs suspended, by state";
  out.suspended_approval = &metrics_.counter("vigil_playbook_runs_suspended_total", suspended_help,
                                             {{"playbook", name}, {"state", "waiting_approval"}});
  out.suspended_delay = &metrics_.counter("vigil_playbook_runs_suspended_total", suspended_help,
                                          {{"playbook", name}, {"state", "delayed"}});
  out.duration = &metrics_.histogram(
      "vigil_playbook_run_duration_seconds",
      "Seconds from the start of a playbook run to its final state, waits included",
      kDurationBounds, {{"playbook", name}});
}

PlaybookRunner::PlaybookMetrics& PlaybookRunner::metricsFor(const std::string& playbook) {
  std::lock_guard<std::mutex> lock(playbook_metrics_mu_);
  auto it = playbook_metrics_.find(playbook);
  if (it != playbook_metrics_.end()) return it->second;
  std::string name = playbook;
  // "other" itself is not counted against the limit, so the fallback always fits.
  if (playbook_metrics_.size() >= kMaxPlaybookSeries + playbook_metrics_.count("other")) {
    playbook_series_dropped_.add();
    name = "other";
    it = playbook_metrics_.find(name);
    if (it != playbook_metrics_.end()) return it->second;
  }
  it = playbook_metrics_.try_emplace(name).first;
  registerPlaybookMetrics(name, it->second);
  return it->second;
}

PlaybookRunner::PlaybookMetrics& PlaybookRunner::playbookMetrics(const std::string& playbook,
                                                                 Worker& worker) {
  auto cached = worker.playbooks.find(playbook);
  if (cached != worker.playbooks.end()) return *cached->second;
  PlaybookMetrics& metrics = metricsFor(playbook);
  worker.playbooks.emplace(playbook, &metrics);
  return metrics;
}

PlaybookRunner::TenantMetrics& PlaybookRunner::metricsForTenant(std::string_view tenant) {
  std::lock_guard<std::mutex> lock(tenant_metrics_mu_);
  auto it = tenant_metrics_.find(tenant);
  if (it != tenant_metrics_.end()) return it->second;
  std::string name(tenant);
  // "_other" itself is not counted against the limit, so the fallback always fits.
  const std::string other(correlate::kOtherTenantLabel);
  if (tenant_metrics_.size() >= kMaxTenantSeries + tenant_metrics_.count(other)) {
    name = other;
    it = tenant_metrics_.find(name);
    if (it != tenant_metrics_.end()) return it->second;
  }
  it = tenant_metrics_.try_emplace(name).first;
  const char* help =
      "Playbook runs by the tenant of their alert: started, and ended by final state";
  it->second.started = &metrics_.counter("vigil_playbook_tenant_runs_total", help,
                                         {{"tenant", name}, {"state", "started"}});
  for (size_t i = 0; i < std::size(kFinalStates); ++i) {
    it->second.finished[i] = &metrics_.counter(
        "vigil_playbook_tenant_runs_total", help,
        {{"tenant", name}, {"state", std::string(runStateName(kFinalStates[i]))}});
  }
  // The same family the case sink counts in when it files alerts itself.
  it->second.cases_opened = &metrics_.counter(
      "vigil_cases_opened_total", "Cases opened by stored alerts, by tenant.", {{"tenant", name}});
  return it->second;
}

PlaybookRunner::TenantMetrics& PlaybookRunner::tenantMetrics(std::string_view tenant,
                                                             Worker& worker) {
  auto cached = worker.tenants.find(tenant);
  if (cached != worker.tenants.end()) return *cached->second;
  TenantMetrics& metrics = metricsForTenant(tenant);
  // Bounds the cache when alerts carry many tenant names. Names beyond it take the lock
  // on every run, which only happens once kMaxTenantSeries tenants have series.
  if (worker.tenants.size() < 2 * kMaxTenantSeries) worker.tenants.emplace(tenant, &metrics);
  return metrics;
}

absl::Status PlaybookRunner::addConnectors(CaseStore* cases, intel::SnapshotStore* intel) {
  for (const ConnectorConfig& c : config_.connectors) {
    if (c.type != "case" && c.type != "intel") continue;
    NamedConnector named;
    named.name = c.name;
    named.type = c.type;
    if (c.type == "case") {
      if (cases == nullptr) {
        return absl::FailedPreconditionError(
            absl::StrCat("connector ", c.name, ": the case store is not open"));
      }
      named.connector = std::make_unique<CaseConnector>(c, *cases);
    } else {
      if (intel == nullptr) {
        return absl::FailedPreconditionError(
            absl::StrCat("connector ", c.name, ": threat intel is not loaded"));
      }
      named.connector = std::make_unique<IntelConnector>(c, *intel);
    }
    pending_connectors_.push_back(std::move(named));
  }
  std::vector<ActionRoute> routes = config_.actions;
  const bool routed = std::any_of(routes.begin(), routes.end(), [](const ActionRoute& route) {
    return route.pattern == kAttachAlertAction;
  });
  if (!routed && cases != nullptr) {
    // An exact route, so a configured `case.*` or `*` route cannot take the action away
    // from the case store.
    ConnectorConfig builtin;
    builtin.name = kBuiltinCaseConnector;
    builtin.type = "case";
    builtin.author = "vigild";
    NamedConnector named;
    named.name = builtin.name;
    named.type = builtin.type;
    named.connector = std::make_unique<CaseConnector>(builtin, *cases);
    pending_connectors_.push_back(std::move(named));
    routes.push_back({kAttachAlertAction, kBuiltinCaseConnector});
  }
  router_ = std::make_unique<ActionRouter>(std::move(pending_connectors_), std::move(routes),
                                           metrics_);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// Start, stop, recovery

absl::Status PlaybookRunner::start(CaseStore* cases, intel::SnapshotStore* intel) {
  if (started_) return absl::OkStatus();
  intel_ = intel;
  if (absl::Status st = addConnectors(cases, intel); !st.ok()) return st;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(config_.db).parent_path(), ec);
  absl::StatusOr<std::unique_ptr<RunStore>> store =
      RunStore::open(config_.db, clock_, durability_);
  if (!store.ok()) return store.status();
  store_ = std::move(*store);
  {
    // Pushed sets restored before the start are stored here.
    std::lock_guard<std::mutex> lock(push_mu_);
    std::shared_ptr<const PlaybookSet> set = active_.load();
    for (const auto* part : {&set->configured, &set->every_tenant}) {
      if (absl::Status st = storeModules(*part); !st.ok()) return st;
    }
    for (const auto& [tenant, playbooks] : set->tenants) {
      if (absl::Status st = storeModules(playbooks); !st.ok()) return st;
    }
    modules_stored_ = true;
  }
  if (absl::Status st = recover(); !st.ok()) return st;
  started_ = true;
  if (config_.default_case && cases != nullptr) {
    holds_inbox_runs_ = true;
    if (absl::Status st = requeueInboxRuns(*cases); !st.ok()) return st;
  }
  if (absl::Status st = openJournals(); !st.ok()) return st;
  spin_ns_ = int64_t{config_.worker_spin_us} * 1000;
  if (spin_ns_ > 0 && allowedCpus() < 2) {
    // A polling worker would hold the only CPU that the thread queuing the job needs.
    spin_ns_ = 0;
    VIGIL_LOG_INFO("playbook workers do not poll the queue: the process may run on one CPU "
                   "only worker_spin_us={}",
                   config_.worker_spin_us);
  }
  for (size_t i = 0; i < config_.workers; ++i) {
    workers_.emplace_back([this, i] {
      nameThisThread(absl::StrCat("vigil-playbk-", i));
      workerLoop(i);
    });
  }
  timer_ = std::thread([this] {
    nameThisThread("vigil-pb-timer");
    timerLoop();
  });
  if (config_.default_case && cases != nullptr) {
    cases_ = cases;
    feeder_ = std::thread([this] {
      nameThisThread("vigil-pb-feeder");
      feederLoop();
    });
  }
  std::shared_ptr<const PlaybookSet> set = active_.load();
  VIGIL_LOG_INFO("playbook runner started playbooks={} pushed_for_every_tenant={} "
                 "tenants_with_pushed={} connectors={} workers={} db={} durability={} "
                 "next_run_id={}",
                 set->configured.size(), set->every_tenant.size(), set->tenants.size(),
                 router_->connectorCount(), config_.workers, config_.db,
                 std::string(runDurabilityName(durability_)), next_run_id_.load());
  return absl::OkStatus();
}

void PlaybookRunner::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  work_ready_.notify_all();
  room_.notify_all();
  {
    std::lock_guard<std::mutex> lock(feed_mu_);
    feed_stop_ = true;
  }
  feed_cv_.notify_all();
  if (feeder_.joinable()) feeder_.join();
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
  {
    std::lock_guard<std::mutex> lock(timer_mu_);
    timer_stop_ = true;
  }
  timer_cv_.notify_all();
  if (timer_.joinable()) timer_.join();
  // Alert jobs not started are lost with the process; count them. Resume jobs stay in
  // the store with their pending value and continue after the next start().
  // Feeder jobs are not counted: their alerts stay in the inbox, and the next start
  // queues them again.
  size_t left = 0;
  for (const Job& job : queue_) left += job.run_id == 0 && !job.fed ? 1 : 0;
  queue_.clear();
  queueChanged();
  if (left > 0) {
    dropped_shutdown_.add(left);
    VIGIL_LOG_WARN("playbook runs not started before shutdown count={}", left);
  }
  idle_.notify_all();
  if (started_) {
    VIGIL_LOG_INFO("playbook runner stopped runs_started={} runs_failed={} waiting={} "
                   "queue_dropped={} connector_errors={}",
                   metrics_.sum("vigil_playbook_runs_started_total"),
                   metrics_.sum("vigil_playbook_runs_finished_total", {{"state", "failed"}}),
                   waiting_approval_.value() + delayed_.value(),
                   metrics_.sum("vigil_playbook_queue_dropped_total"),
                   metrics_.sum("vigil_playbook_connector_calls_total", {{"outcome", "error"}}));
  }
}

// ---------------------------------------------------------------------------------------
// Alerts in

bool PlaybookRunner::triggerMatches(const pb::Trigger& t, const correlate::Alert& alert) const {
  auto contains = [](const std::vector<std::string>& list, const std::string& value) {
    return std::find(list.begin(), list.end(), value) != list.end();
  };
  if (!t.has_trigger) return false;
  if (!t.rule_ids.empty() && !contains(t.rule_ids, alert.rule_id)) return false;
  if (!t.tenants.empty() && !contains(t.tenants, alert.tenant)) return false;
  if (!t.tags.empty() && std::none_of(alert.tags.begin(), alert.tags.end(), [&](const auto& tag) {
        return contains(t.tags, tag);
      })) {
    return false;
  }
  if (t.min_severity != pb::Severity::kInformational) {
    pb::Severity severity = pb::Severity::kInformational;
    if (!pb::compiler::parseSeverity(alert.level, severity)) return false;
    if (severity < t.min_severity) return false;
  }
  return true;
}

void PlaybookRunner::onAlert(const correlate::Alert& alert) { enqueueAlert(alert, 0); }

void PlaybookRunner::onStoredAlert(const correlate::Alert& alert, int64_t inbox_id) {
  enqueueAlert(alert, inbox_id);
  if (feeder_.joinable()) {
    newest_stored_.store(std::max(newest_stored_.load(), inbox_id));
    wakeFeeder();
  }
}

void PlaybookRunner::wakeFeeder() {
  {
    std::lock_guard<std::mutex> lock(feed_mu_);
    feed_wake_ = true;
  }
  feed_cv_.notify_one();
}

void PlaybookRunner::feederLoop() {
  // COUNT(*) reads the whole inbox, and the feeder wakes for every job a worker takes, so
  // the gauge is refreshed at most this often.
  constexpr int64_t kInboxGaugeIntervalNs = 500'000'000;
  int64_t counted_mono_ns = 0;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(feed_mu_);
      // The timeout retries after a failed read, with no new alert to wake it.
      feed_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return feed_wake_ || feed_stop_; });
      if (feed_stop_) return;
      feed_wake_ = false;
    }
    feedFromInbox();
    const int64_t now = monotonicNs();
    if (now - counted_mono_ns < kInboxGaugeIntervalNs) continue;
    counted_mono_ns = now;
    if (absl::StatusOr<int64_t> waiting = cases_->queuedAlertCount(); waiting.ok()) {
      inbox_alerts_.set(*waiting);
    }
  }
}

void PlaybookRunner::feedFromInbox() {
  // At most half the queue holds default-case jobs, so a backlog of them leaves room for
  // the other playbooks' runs.
  const size_t window = std::max<size_t>(config_.queue_capacity / 2, 1);
  while (true) {
    size_t room = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      if (fed_jobs_ < window && alert_jobs_ < config_.queue_capacity) {
        room = std::min(window - fed_jobs_, config_.queue_capacity - alert_jobs_);
      }
    }
    if (room == 0) return;  // a worker wakes the feeder when it takes a job
    auto rows = cases_->queuedAlertsAfter(last_fed_.load(), std::min<size_t>(room, 256));
    if (!rows.ok()) {
      store_errors_.add();
      VIGIL_LOG_ERROR("cannot read the alert inbox for default-case runs after={} error=\"{}\"",
                      last_fed_.load(), logText(rows.status().ToString()));
      return;
    }
    if (rows->empty()) return;
    for (const auto& [inbox_id, text] : *rows) {
      // The runs of other playbooks on this alert are queued by onStoredAlert() (after the
      // row is stored) and must be journaled before its default-case run may file it.
      // Both wake the feeder when that changes.
      if (inbox_id > newest_stored_.load()) return;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (inbox_holds_.count(inbox_id) != 0) return;
      }
      if (recovered_inbox_ids_.count(inbox_id) != 0) {
        // Its run from before the restart runs again and files it.
        {
          std::lock_guard<std::mutex> lock(mu_);
          last_fed_.store(inbox_id);
        }
        idle_.notify_all();
        continue;
      }
      absl::StatusOr<correlate::Alert> alert = internal::decodeStoredAlert(text);
      if (!alert.ok()) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          last_fed_.store(inbox_id);
        }
        idle_.notify_all();  // flush() waits for the feeder to catch up
        // The row stays in the inbox, and the next start reports it again.
        store_errors_.add();
        VIGIL_LOG_ERROR("cannot read inbox alert, no default-case run inbox_id={} error=\"{}\"",
                        inbox_id, logText(alert.status().ToString()));
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
        Job job{0, default_playbook_,
                std::make_shared<const correlate::Alert>(std::move(*alert)), monotonicNs(),
                inbox_id};
        job.fed = true;
        queue_.push_back(std::move(job));
        last_fed_.store(inbox_id);
        ++alert_jobs_;
        ++fed_jobs_;
        queueChanged();
      }
      work_ready_.notify_one();
    }
  }
}

template <typename Fn>
void PlaybookRunner::forEachTriggered(const PlaybookSet& set, const correlate::Alert& alert,
                                      Fn fn) const {
  for (const PlaybookSet::Entry& playbook : set.configured) {
    // The feeder queues the default-case runs, from the inbox.
    if (playbook == default_playbook_) continue;
    if (triggerMatches(playbook->loaded.program->trigger(), alert)) fn(playbook);
  }
  for (const PlaybookSet::Entry& playbook : set.every_tenant) {
    if (triggerMatches(playbook->loaded.program->trigger(), alert)) fn(playbook);
  }
  auto own = set.tenants.find(alert.tenant);
  if (own == set.tenants.end()) return;
  for (const PlaybookSet::Entry& playbook : own->second) {
    if (triggerMatches(playbook->loaded.program->trigger(), alert)) fn(playbook);
  }
}

void PlaybookRunner::enqueueAlert(const correlate::Alert& alert, int64_t inbox_id) {
  std::shared_ptr<const correlate::Alert> copy;
  const int64_t now = monotonicNs();
  // One set for the whole alert, so a push that lands meanwhile is seen whole or not at
  // all.
  std::shared_ptr<const PlaybookSet> set = active_.load();
  forEachTriggered(*set, alert, [&](const PlaybookSet::Entry& playbook) {
    enqueueRun(playbook, alert, copy, now, inbox_id);
  });
}

absl::Status PlaybookRunner::requeueInboxRuns(CaseStore& cases) {
  std::shared_ptr<const PlaybookSet> set = active_.load();
  std::vector<Job> jobs;
  int64_t after = 0;
  size_t alerts = 0;
  while (true) {
    absl::StatusOr<std::vector<std::pair<int64_t, std::string>>> rows =
        cases.queuedAlertsAfter(after, 256);
    if (!rows.ok()) return rows.status();
    if (rows->empty()) break;
    for (const auto& [inbox_id, text] : *rows) {
      after = inbox_id;
      // The feeder reports a row it cannot read.
      absl::StatusOr<correlate::Alert> alert = internal::decodeStoredAlert(text);
      if (!alert.ok()) continue;
      std::vector<PlaybookSet::Entry> triggered;
      forEachTriggered(*set, *alert,
                       [&](const PlaybookSet::Entry& playbook) { triggered.push_back(playbook); });
      if (triggered.empty()) continue;
      absl::StatusOr<std::set<std::string>> stored = store_->playbooksOfInboxAlert(inbox_id);
      if (!stored.ok()) return stored.status();
      auto shared = std::make_shared<const correlate::Alert>(std::move(*alert));
      bool queued = false;
      for (const PlaybookSet::Entry& playbook : triggered) {
        const std::string& name = playbook->loaded.name;
        if (stored->count(name) != 0 || journaled_inbox_runs_.count({inbox_id, name}) != 0) {
          continue;
        }
        Job job{0, playbook, shared, monotonicNs(), inbox_id};
        job.holds_inbox = true;
        jobs.push_back(std::move(job));
        queued = true;
      }
      if (queued) ++alerts;
    }
  }
  newest_stored_.store(std::max(newest_stored_.load(), after));
  if (jobs.empty()) return absl::OkStatus();
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Ahead of the segments recover() queued, so they are journaled before a recovered
    // default-case run files their alert.
    for (const Job& job : jobs) ++inbox_holds_[job.inbox_id];
    alert_jobs_ += jobs.size();
    queue_.insert(queue_.begin(), std::make_move_iterator(jobs.begin()),
                  std::make_move_iterator(jobs.end()));
    queueChanged();
  }
  VIGIL_LOG_WARN("playbook runs queued when the process ended and never started are queued "
                 "again runs={} inbox_alerts={}",
                 jobs.size(), alerts);
  return absl::OkStatus();
}

void PlaybookRunner::releaseInboxHold(const Job& job) {
  if (!job.holds_inbox) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = inbox_holds_.find(job.inbox_id);
    if (it != inbox_holds_.end() && --it->second <= 0) inbox_holds_.erase(it);
  }
  wakeFeeder();
}

void PlaybookRunner::enqueueRun(const PlaybookSet::Entry& playbook, const correlate::Alert& alert,
                                std::shared_ptr<const correlate::Alert>& copy,
                                int64_t queued_mono_ns, int64_t inbox_id) {
  if (copy == nullptr) copy = std::make_shared<const correlate::Alert>(alert);
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_ || !started_) {
      dropped_shutdown_.add();
      return;
    }
    if (alert_jobs_ >= config_.queue_capacity && config_.enqueue_wait_ms > 0) {
      room_.wait_for(lock, std::chrono::milliseconds(config_.enqueue_wait_ms),
                     [this] { return stopping_ || alert_jobs_ < config_.queue_capacity; });
    }
    if (stopping_) {
      dropped_shutdown_.add();
      return;
    }
    if (alert_jobs_ >= config_.queue_capacity) {
      dropped_full_.add();
      VIGIL_LOG_WARN_POW2("playbook queue full, run not started playbook={} alert={}",
                          playbook->loaded.name, alert.id);
      return;
    }
    Job job{0, playbook, copy, queued_mono_ns, inbox_id};
    if (holds_inbox_runs_ && inbox_id != 0) {
      job.holds_inbox = true;
      ++inbox_holds_[inbox_id];
    }
    queue_.push_back(std::move(job));
    ++alert_jobs_;
    queueChanged();
  }
  work_ready_.notify_one();
}

void PlaybookRunner::enqueueResume(int64_t run_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(Job{run_id, nullptr, nullptr, monotonicNs()});
    queueChanged();
  }
  work_ready_.notify_one();
}

void PlaybookRunner::flush() {
  std::unique_lock<std::mutex> lock(mu_);
  bool drained = idle_.wait_for(lock, kFlushTimeout, [this] {
    const bool fed = !feeder_.joinable() || last_fed_.load() >= newest_stored_.load();
    const bool stored = deferred_runs_.load(std::memory_order_relaxed) == 0;
    return (queue_.empty() && busy_ == 0 && fed && stored) || stopping_;
  });
  if (!drained) {
    VIGIL_LOG_WARN("playbook runs not finished after waiting {} s for them (end of a replay, "
                   "or a stop); they go on running, except at a stop, where the queued ones "
                   "are counted in vigil_playbook_queue_dropped_total{{reason=\"shutdown\"}} "
                   "queued={} running={}",
                   std::chrono::duration_cast<std::chrono::seconds>(kFlushTimeout).count(),
                   queue_.size(), busy_);
  }
}

// ---------------------------------------------------------------------------------------
// Workers

void PlaybookRunner::queueChanged() {
  queue_depth_.set(static_cast<int64_t>(queue_.size()));
  queued_.store(queue_.size(), std::memory_order_release);
}

// Polls the queue without the lock for up to spin_ns_, so that a job queued soon after the
// last one starts without waiting for this thread to be woken. A stop() meanwhile is
// seen when the polling ends, at most 10 ms later.
bool PlaybookRunner::spinForWork() const {
  if (spin_ns_ == 0) return false;
  const int64_t until = monotonicNs() + spin_ns_;
  while (queued_.load(std::memory_order_acquire) == 0) {
    if (monotonicNs() >= until) return false;
    for (int i = 0; i < 16; ++i) cpuRelax();
  }
  return true;
}

void PlaybookRunner::workerLoop(size_t slot) {
  Worker worker;
  worker.slot = slot;
  worker.journal = journals_[slot].get();
  while (true) {
    // Another worker may take the job this one saw, so a hit is counted only when this
    // worker gets a job without sleeping.
    const bool found_while_polling = spinForWork();
    // Deferred runs are stored once no alert waits (or when stopping). Then the worker
    // polls again, so an alert that comes during the write does not find it asleep.
    if (!worker.deferred.empty() && queued_.load(std::memory_order_acquire) == 0) {
      storeDeferred(worker);
      continue;
    }
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      const bool ready = !queue_.empty();
      while (!stopping_ && queue_.empty()) {
        // Another worker took the job this one saw: store before sleeping.
        if (!worker.deferred.empty()) {
          lock.unlock();
          storeDeferred(worker);
          lock.lock();
          continue;
        }
        work_ready_.wait(lock);
      }
      if (stopping_) {
        lock.unlock();
        storeDeferred(worker);
        return;
      }
      if (found_while_polling && ready) spin_hits_.add();
      job = std::move(queue_.front());
      queue_.pop_front();
      if (job.run_id == 0) --alert_jobs_;
      if (job.fed) --fed_jobs_;
      ++busy_;
      queueChanged();
    }
    worker.taken_mono_ns = monotonicNs();
    room_.notify_one();
    if (job.fed) wakeFeeder();
    if (job.recovered != nullptr) {
      recoverRun(job, worker);
    } else if (job.fed && cases_ != nullptr) {
      fileGroup(std::move(job), worker);
    } else if (job.run_id == 0) {
      startRun(job, worker);
    } else {
      resumeRun(job.run_id, worker);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      --busy_;
    }
    idle_.notify_all();
  }
}

void PlaybookRunner::settle(const RunRecord& run, RunContext& ctx, const pb::RunResult& result,
                            Worker& worker, const NewRun* insert) {
  vm_steps_.add(result.steps > run.vm_steps ? result.steps - run.vm_steps : 0);
  SettledSegment segment = describeSegment(run, ctx, result, insert, worker);
  if (worker.group != nullptr) {
    // Stored after the case store's group commit (fileGroup()).
    worker.group->push_back(std::move(segment));
    return;
  }
  if (!segment.suspended && segment.insert.has_value()) {
    deferStore(std::move(segment), worker);
    return;
  }
  absl::Status st = segment.suspended ? storeSuspended(segment) : storeFinished(segment);
  countSettled(segment, st, worker);
}

void PlaybookRunner::deferStore(SettledSegment segment, Worker& worker) {
  const int64_t now = monotonicNs();
  if (worker.deferred.empty()) worker.deferred_since_mono_ns = now;
  worker.deferred.push_back(std::move(segment));
  worker.append_journal = true;  // the next segment must not overwrite this one
  deferred_runs_.fetch_add(1, std::memory_order_relaxed);
  const int64_t window = std::chrono::duration_cast<std::chrono::nanoseconds>(kDeferWindow).count();
  if (worker.deferred.size() >= kDeferMaxRuns || now - worker.deferred_since_mono_ns >= window) {
    storeDeferred(worker);
  }
}

void PlaybookRunner::storeDeferred(Worker& worker) {
  if (worker.deferred.empty()) return;
  const size_t runs = worker.deferred.size();
  storeGroup(worker.deferred, worker);
  worker.deferred.clear();
  worker.append_journal = false;
  deferred_runs_.fetch_sub(runs, std::memory_order_relaxed);
  { std::lock_guard<std::mutex> lock(mu_); }  // flush() checks under mu_ before it sleeps
  idle_.notify_all();
}

PlaybookRunner::SettledSegment PlaybookRunner::describeSegment(const RunRecord& run,
                                                               RunContext& ctx,
                                                               const pb::RunResult& result,
                                                               const NewRun* insert,
                                                               Worker& worker) {
  const int64_t now = clock_->nowNs();
  SettledSegment out;
  out.run_id = run.id;
  out.playbook = run.playbook;
  out.created_ns = run.created_ns;
  out.vm_steps = result.steps;
  if (insert != nullptr) out.insert = *insert;
  out.first_action_latency_ns = ctx.first_action_latency_ns;
  out.dispatch_latency_ns = ctx.dispatch_latency_ns;
  out.event_to_action_ns = ctx.event_to_action_ns;
  out.cases_opened = ctx.cases_opened_in_group;
  out.tenant_metrics = &tenantMetrics(run.tenant, worker);
  ctx.cases_opened_in_group = 0;

  RunStep end;
  end.started_ns = now;
  if (result.status == pb::RunStatus::kSuspended) {
    const pb::List* request = result.value.isList() ? result.value.asList() : nullptr;
    std::string kind = listText(request, 0);
    out.suspended = true;
    out.state = RunState::kDelayed;
    out.wake_ns = now;
    if (kind == pb::compiler::kYieldApproval) {
      out.state = RunState::kWaitingApproval;
      out.prompt = listText(request, 1);
      out.wake_ns = now + static_cast<int64_t>(listNumber(request, 2) * kSecondNs);
      end.kind = "approval";
      end.name = "wait_for_approval";
      end.detail = dumpJson({{"prompt", out.prompt}, {"timeout_s", listNumber(request, 2)}});
      end.outcome = "requested";
    } else if (kind == pb::compiler::kYieldDelay) {
      out.wake_ns = now + static_cast<int64_t>(listNumber(request, 1) * kSecondNs);
      end.kind = "delay";
      end.name = listText(request, 2).empty() ? "delay" : listText(request, 2);
      end.detail = dumpJson({{"seconds", listNumber(request, 1)}});
      end.outcome = "waiting";
    } else {
      pb::RunResult failed = result;
      failed.status = pb::RunStatus::kFailed;
      failed.message = absl::StrCat("playbook ", run.playbook, " suspended with unknown request ",
                                    pb::valueToString(result.value));
      ctx.cases_opened_in_group = out.cases_opened;
      return describeSegment(run, ctx, failed, insert, worker);
    }
    out.saved_state = worker.vm.saveState();
    ctx.steps.push_back(end);
    out.steps = std::move(ctx.steps);
    return out;
  }
  out.state = RunState::kSucceeded;
  if (result.status == pb::RunStatus::kFailed) {
    out.state = RunState::kFailed;
    out.error = result.message;
    // The VM reports which limit was reached, and the runner names the setting that raises it.
    if (result.error == pb::RunError::kBudgetExhausted) {
      absl::StrAppend(&out.error, " (", config_.max_steps,
                      " steps per segment; raise playbooks.max_steps or bound the loop)");
    } else if (result.error == pb::RunError::kMemoryLimit) {
      absl::StrAppend(&out.error, " (", config_.max_memory_bytes,
                      " bytes; raise playbooks.max_memory_bytes or keep less in the run)");
    }
  } else {
    out.value = pb::valueToString(result.value);
    if (run.decision == "rejected") out.state = RunState::kDenied;
    if (run.decision == "timeout") out.state = RunState::kTimedOut;
  }
  end.kind = "end";
  end.name = std::string(runStateName(out.state));
  end.outcome = out.state == RunState::kFailed ? "error" : "ok";
  end.message = out.state == RunState::kFailed ? out.error : out.value;
  ctx.steps.push_back(end);
  out.steps = std::move(ctx.steps);
  return out;
}

absl::Status PlaybookRunner::storeSuspended(const SettledSegment& segment) {
  return store_->suspend(segment.run_id, segment.state, segment.wake_ns, segment.prompt,
                         segment.saved_state, segment.vm_steps, segment.steps,
                         segment.insert ? &*segment.insert : nullptr);
}

absl::Status PlaybookRunner::storeFinished(const SettledSegment& segment) {
  return store_->finish(segment.run_id, segment.state, segment.value, segment.error,
                        segment.vm_steps, segment.steps,
                        segment.insert ? &*segment.insert : nullptr);
}

void PlaybookRunner::countSettled(const SettledSegment& segment, const absl::Status& stored,
                                  Worker& worker) {
  const int64_t now = clock_->nowNs();
  if (segment.first_action_latency_ns) {
    first_action_latency_us_.observe(static_cast<double>(*segment.first_action_latency_ns) * 1e-3);
  }
  if (segment.dispatch_latency_ns) {
    dispatch_latency_us_.observe(static_cast<double>(*segment.dispatch_latency_ns) * 1e-3);
  }
  if (segment.event_to_action_ns) {
    event_to_action_latency_us_.observe(
        static_cast<double>(std::max<int64_t>(0, *segment.event_to_action_ns)) * 1e-3);
  }
  if (segment.cases_opened > 0) segment.tenant_metrics->cases_opened->add(segment.cases_opened);
  PlaybookMetrics& pm = playbookMetrics(segment.playbook, worker);
  if (segment.suspended) {
    if (stored.ok()) {
      (segment.state == RunState::kWaitingApproval ? pm.suspended_approval : pm.suspended_delay)
          ->add();
      schedule(segment.wake_ns, segment.run_id, segment.state);
    }
  } else {
    pm.finished[finalIndex(segment.state)]->add();
    segment.tenant_metrics->finished[finalIndex(segment.state)]->add();
    if (segment.created_ns != 0) {
      pm.duration->observe(static_cast<double>(std::max<int64_t>(now - segment.created_ns, 0)) *
                           1e-9);
    }
    // A playbook whose connector is down fails every run, so failures log on power-of-two
    // repeats per playbook.
    if (segment.state == RunState::kFailed && shouldLogPow2(pm.failed_run_logs)) {
      VIGIL_LOG_WARN("playbook run failed run={} playbook={} error=\"{}\" repeats={}",
                     segment.run_id, segment.playbook, logText(segment.error),
                     pm.failed_run_logs.load(std::memory_order_relaxed));
    }
  }
  countSteps(segment.playbook, segment.steps, worker);
  if (!stored.ok()) {
    store_errors_.add();
    std::atomic<uint64_t>& repeats =
        pm.store_error_logs[static_cast<size_t>(stored.code()) % pm.store_error_logs.size()];
    if (shouldLogPow2(repeats)) {
      VIGIL_LOG_ERROR(
          "cannot record playbook run state run={} playbook={} error=\"{}\" repeats={} "
          "total={}",
          segment.run_id, segment.playbook, logText(stored.ToString()),
          repeats.load(std::memory_order_relaxed), store_errors_.value());
    }
  }
}

void PlaybookRunner::countSteps(const std::string& playbook, const std::vector<RunStep>& steps,
                                Worker& worker) {
  for (const RunStep& step : steps) {
    auto kind = worker.kinds.find(step.kind);
    if (kind == worker.kinds.end()) {
      Counter* counter = &metrics_.counter("vigil_playbook_steps_total",
                                           "Playbook run steps recorded, by kind",
                                           {{"kind", step.kind}});
      kind = worker.kinds.emplace(step.kind, counter).first;
    }
    kind->second->add();
    if (step.kind == "end") continue;  // the run's outcome, counted per run
    StepMetrics m = stepMetrics(playbook, step, worker);
    m.outcomes->add();
    if (m.duration != nullptr) m.duration->observe(static_cast<double>(step.duration_ns) * 1e-9);
  }
}

PlaybookRunner::StepMetrics PlaybookRunner::stepMetrics(const std::string& playbook,
                                                        const RunStep& step, Worker& worker) {
  worker.key.clear();
  for (const std::string* part : {&playbook, &step.kind, &step.name, &step.outcome}) {
    worker.key.append(*part);
    worker.key.push_back('\0');
  }
  auto cached = worker.steps.find(worker.key);
  if (cached != worker.steps.end()) return cached->second;

  // First use of this series by this worker: register it, within the limit.
  std::string name = step.name;
  {
    std::lock_guard<std::mutex> lock(step_metrics_mu_);
    if (step_series_.count(worker.key) == 0) {
      if (step_series_.size() >= kMaxStepSeries) {
        name = "other";
      } else {
        step_series_.insert(worker.key);
      }
    }
  }
  StepMetrics m;
  m.outcomes = &metrics_.counter(
      "vigil_playbook_step_outcomes_total", "Playbook steps recorded, by playbook, step and outcome",
      {{"playbook", playbook}, {"kind", step.kind}, {"step", name}, {"outcome", step.outcome}});
  if (step.kind == "action") {
    m.duration = &metrics_.histogram("vigil_playbook_step_duration_seconds",
                                     "Seconds each action step took, connector call included",
                                     kDurationBounds, {{"playbook", playbook}, {"step", name}});
  }
  if (name == step.name) {
    worker.steps.emplace(worker.key, m);
  } else {
    // Not cached, so every later step of this series is counted as dropped too.
    step_series_dropped_.add();
  }
  return m;
}

// ---------------------------------------------------------------------------------------
// Timer and decisions

void PlaybookRunner::schedule(int64_t wake_ns, int64_t run_id, RunState state) {
  {
    std::lock_guard<std::mutex> lock(timer_mu_);
    wakes_.emplace(wake_ns, Wake{run_id, state});
  }
  updateWaitingGauges();
  timer_cv_.notify_all();
}

void PlaybookRunner::updateWaitingGauges() {
  int64_t approvals = 0, delays = 0;
  {
    std::lock_guard<std::mutex> lock(timer_mu_);
    for (const auto& [when, wake] : wakes_) {
      (wake.state == RunState::kWaitingApproval ? approvals : delays) += 1;
    }
  }
  waiting_approval_.set(approvals);
  delayed_.set(delays);
}

void PlaybookRunner::timerLoop() {
  std::unique_lock<std::mutex> lock(timer_mu_);
  while (!timer_stop_) {
    // Keep the reserved run ids ahead of the workers, so they wait for this write only
    // after a burst of kRunIdBlock / 2 runs within one timer wake-up.
    const int64_t needed = next_run_id_.load(std::memory_order_relaxed) + kRunIdBlock / 2;
    if (needed > run_id_ceiling_.load(std::memory_order_relaxed)) {
      lock.unlock();
      if (absl::Status st = extendRunIds(needed); !st.ok()) {
        store_errors_.add();
        VIGIL_LOG_ERROR("cannot reserve playbook run ids error=\"{}\"", logText(st.ToString()));
      }
      lock.lock();
    }
    const int64_t now = clock_->nowNs();
    std::vector<Wake> due;
    while (!wakes_.empty() && wakes_.begin()->first <= now) {
      due.push_back(wakes_.begin()->second);
      wakes_.erase(wakes_.begin());
    }
    if (!due.empty()) {
      lock.unlock();
      for (const Wake& wake : due) {
        Transition t;
        t.from = wake.state;
        RunStep step;
        step.started_ns = now;
        if (wake.state == RunState::kWaitingApproval) {
          t.resume_json = "\"timeout\"";
          t.decision = "timeout";
          t.approver = "deadline";
          step.kind = "decision";
          step.name = "wait_for_approval";
          step.outcome = "timeout";
          step.message = "the approval deadline passed; the default branch runs";
        } else {
          t.resume_json = "null";
          step.kind = "delay";
          step.name = "delay";
          step.outcome = "elapsed";
        }
        absl::StatusOr<bool> moved = store_->transition(wake.run_id, t, step);
        if (!moved.ok()) {
          store_errors_.add();
          VIGIL_LOG_ERROR("cannot wake playbook run run={} error=\"{}\"", wake.run_id,
                          logText(moved.status().ToString()));
        } else if (*moved) {
          enqueueResume(wake.run_id);
        }
      }
      updateWaitingGauges();
      lock.lock();
      continue;
    }
    // Wall-clock deadlines: wake at least every 100 ms, so a clock step is noticed soon.
    int64_t wait_ns = wakes_.empty() ? 100'000'000
                                     : std::min<int64_t>(wakes_.begin()->first - now, 100'000'000);
    timer_cv_.wait_for(lock, std::chrono::nanoseconds(std::max<int64_t>(wait_ns, 1'000'000)));
  }
}

absl::StatusOr<RunRecord> PlaybookRunner::decide(int64_t run_id, bool approve,
                                                 const Principal& principal,
                                                 const std::string& comment) {
  if (store_ == nullptr) return absl::UnavailableError("the playbook runner is not started");
  absl::StatusOr<RunRecord> run = store_->get(run_id);
  if (!run.ok()) return run.status();
  if (!principal.canRead(run->tenant)) {
    return absl::NotFoundError(
        absl::StrCat("run ", run_id, " does not exist; list runs with GET /api/v1/runs"));
  }
  if (!principal.canWork(run->tenant)) {
    return absl::PermissionDeniedError(absl::StrCat("role ", roleName(principal.role),
                                                    " may not approve or deny runs of tenant ",
                                                    run->tenant, "; an analyst or admin can"));
  }
  Transition t;
  t.from = RunState::kWaitingApproval;
  t.resume_json = approve ? "\"approved\"" : "\"rejected\"";
  t.decision = approve ? "approved" : "rejected";
  t.approver = principal.subject.empty() ? "unknown" : principal.subject;
  t.comment = comment;
  RunStep step;
  step.kind = "decision";
  step.name = "wait_for_approval";
  step.outcome = t.decision;
  step.message = absl::StrCat("by ", t.approver, comment.empty() ? "" : ": ", comment);
  step.started_ns = clock_->nowNs();
  absl::StatusOr<bool> moved = store_->transition(run_id, t, step);
  if (!moved.ok()) return moved.status();
  if (!*moved) {
    absl::StatusOr<RunRecord> now = store_->get(run_id);
    std::string state = now.ok() ? std::string(runStateName(now->state)) : "unknown";
    return absl::FailedPreconditionError(absl::StrCat(
        "run ", run_id, " is ", state, ", not waiting_approval; only waiting runs take a decision"));
  }
  {
    std::lock_guard<std::mutex> lock(timer_mu_);
    for (auto it = wakes_.begin(); it != wakes_.end(); ++it) {
      if (it->second.run_id == run_id) {
        wakes_.erase(it);
        break;
      }
    }
  }
  updateWaitingGauges();
  VIGIL_LOG_INFO("playbook run {} run={} playbook={} by={}", t.decision, run_id, run->playbook,
                 logText(t.approver));
  enqueueResume(run_id);
  return store_->get(run_id);
}

}  // namespace vigil::mgmt

#include "mgmt/playbook_runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/time.h"
#include "intel/snapshot.h"
#include "mgmt/blocklist_connector.h"
#include "mgmt/case_connector.h"
#include "mgmt/case_store.h"
#include "mgmt/default_case_playbook.h"
#include "mgmt/internal/stored_alert.h"
#include "mgmt/syslog_connector.h"
#include "mgmt/webhook_connector.h"
#include "playbook_vm/compiler/compiler.h"

namespace vigil::mgmt {
namespace {

namespace pb = playbook_vm;
using json = nlohmann::json;

constexpr int64_t kSecondNs = 1'000'000'000;
// The pipeline calls flush() at shutdown. Connector timeouts bound each queued run, but a
// full queue against a dead endpoint could take hours, so flush gives up after this and
// stop() counts what is left.
constexpr std::chrono::seconds kFlushTimeout{10};
// Upper bounds of the first-action and dispatch latency histograms, in microseconds.
const std::vector<double> kLatencyBoundsUs = {1,    2,     5,     10,     20,     50,     100,
                                              500,  1000,  5000,  10000,  100000, 1000000};
// Upper bounds of run and step durations, in seconds: 100 us to one day, because a run
// that waits for an approval can take hours.
const std::vector<double> kDurationBounds = {0.0001, 0.001, 0.01, 0.1, 1,    10,
                                             60,     300,   1800, 3600, 86400};
// Final states in the order of PlaybookMetrics::finished.
constexpr RunState kFinalStates[] = {RunState::kSucceeded, RunState::kFailed, RunState::kDenied,
                                     RunState::kTimedOut};

size_t finalIndex(RunState state) {
  for (size_t i = 0; i < std::size(kFinalStates); ++i) {
    if (kFinalStates[i] == state) return i;
  }
  return 1;  // kFailed
}
// The action the default-case playbook files alerts with, and the connector that performs
// it when no `playbooks.actions` route names the action exactly.
constexpr const char* kAttachAlertAction = "case.attach_alert";
constexpr const char* kBuiltinCaseConnector = "builtin-case";

absl::StatusOr<std::vector<std::string>> expandPaths(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const std::string& path : paths) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      std::vector<std::string> found;
      for (std::filesystem::recursive_directory_iterator it(path, ec), end; !ec && it != end;
           it.increment(ec)) {
        std::string ext = it->path().extension().string();
        if (it->is_regular_file() && (ext == ".yml" || ext == ".yaml")) {
          found.push_back(it->path().string());
        }
      }
      if (ec) {
        return absl::FailedPreconditionError(
            absl::StrCat("playbooks.paths: cannot read folder ", path, ": ", ec.message()));
      }
      if (found.empty()) {
        return absl::NotFoundError(absl::StrCat("playbooks.paths: folder ", path,
                                                " holds no *.yml or *.yaml playbook"));
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (std::filesystem::is_regular_file(path, ec)) {
      files.push_back(path);
    } else {
      return absl::NotFoundError(
          absl::StrCat("playbooks.paths: ", path, " is neither a playbook file nor a folder"));
    }
  }
  return files;
}

// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or values past
// U+10FFFF).
bool validUtf8(const std::string& text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    if (*p < 0x80) {
      ++p;
      continue;
    }
    size_t extra = 0;
    uint32_t code = 0;
    if ((*p & 0xE0) == 0xC0) {
      extra = 1;
      code = *p & 0x1F;
    } else if ((*p & 0xF0) == 0xE0) {
      extra = 2;
      code = *p & 0x0F;
    } else if ((*p & 0xF8) == 0xF0) {
      extra = 3;
      code = *p & 0x07;
    } else {
      return false;
    }
    if (static_cast<size_t>(end - p) <= extra) return false;
    for (size_t i = 1; i <= extra; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      code = (code << 6) | (p[i] & 0x3F);
    }
    constexpr uint32_t kMinForLength[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMinForLength[extra] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    p += extra + 1;
  }
  return true;
}

// A JSON string of `text`, with invalid UTF-8 replaced by U+FFFD as alertToJson does.
json textValue(const std::string& text) {
  if (validUtf8(text)) return text;
  return json::parse(json(text).dump(-1, ' ', false, json::error_handler_t::replace));
}

json textArray(const std::vector<std::string>& texts) {
  json out = json::array();
  for (const std::string& text : texts) out.push_back(textValue(text));
  return out;
}

// The alert as playbooks read it: the fields of correlate::alertToJson, plus "severity"
// (the Sigma level), every group-by field at the top level (alert.src_ip) and "events",
// one {"raw": TEXT} per evidence line, and "inbox_id" when the case sink stored the alert.
// Built directly rather than by parsing
// alertToJson's text, which took about 17 us per run before the first action could start
// (dev build, measured on the shared 2-core machine).
json alertForPlaybook(const correlate::Alert& alert, int64_t inbox_id) {
  json group = json::object();
  for (const auto& [field, value] : alert.group) group[field] = textValue(value);
  json j = json::object();
  j["id"] = textValue(alert.id);
  j["rule_id"] = textValue(alert.rule_id);
  j["rule_title"] = textValue(alert.rule_title);
  j["rules_version"] = alert.rules_version;
  j["level"] = textValue(alert.level);
  j["tenant"] = textValue(alert.tenant);
  j["tags"] = textArray(alert.tags);
  j["first_event"] = formatRfc3339(alert.first_event_ns);
  j["last_event"] = formatRfc3339(alert.last_event_ns);
  j["detected"] = formatRfc3339(alert.detect_ns);
  j["event_count"] = alert.event_count;
  j["evidence"] = textArray(alert.evidence);
  j["indicator_hits"] = textArray(alert.indicator_hits);
  if (!std::isnan(alert.metric)) j["metric"] = alert.metric;
  j["severity"] = j["level"];
  for (const auto& [field, value] : group.items()) {
    if (!j.contains(field)) j[field] = value;
  }
  j["group"] = std::move(group);
  json events = json::array();
  for (const json& raw : j["evidence"]) events.push_back({{"raw", raw}});
  j["events"] = std::move(events);
  if (inbox_id != 0) j["inbox_id"] = inbox_id;
  return j;
}

std::string dumpJson(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

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
      vm_steps_(metrics.counter("vigil_playbook_vm_steps_total",
                                "Playbook VM instructions executed")),
      store_errors_(metrics.counter("vigil_playbook_store_errors_total",
                                    "Run store writes that failed")),
      step_series_dropped_(metrics.counter(
          "vigil_playbook_step_series_dropped_total",
          "Playbook steps counted under step=\"other\" because the step series limit was reached")),
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
          kLatencyBoundsUs)) {}

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
  if (config_.default_case) {
    // First in the list, so its job for an alert is queued before the other playbooks'.
    absl::Status st = loadPlaybook(std::string(defaultCasePlaybookSource()),
                                   "default_case.yml (built in)", names);
    if (!st.ok()) return st;
    default_index_ = playbooks_.size() - 1;
  }
  absl::StatusOr<std::vector<std::string>> files = std::vector<std::string>();
  if (!config_.paths.empty()) files = expandPaths(config_.paths);
  if (!files.ok()) return files.status();
  for (const std::string& file : *files) {
    std::ifstream in(file);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read playbook ", file));
    std::stringstream text;
    text << in.rdbuf();
    if (absl::Status st = loadPlaybook(text.str(), file, names); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status PlaybookRunner::loadPlaybook(const std::string& source, const std::string& file,
                                          std::set<std::string>& names) {
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
  LoadedPlaybook loaded;
  loaded.name = compiled->name;
  loaded.path = file;
  const auto& sha = (*program)->sourceSha256();
  loaded.hash = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(sha.data()), sha.size()));
  loaded.module = std::move(compiled->module);
  loaded.program = std::move(*program);
  programs_[loaded.hash] = loaded.program;
  registerPlaybookMetrics(loaded.name, playbook_metrics_.emplace_back());
  playbooks_.push_back(std::move(loaded));
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
  for (size_t i = 0; i < playbooks_.size(); ++i) {
    if (playbooks_[i].name == playbook) return playbook_metrics_[i];
  }
  std::lock_guard<std::mutex> lock(other_metrics_mu_);
  auto [it, added] = other_metrics_.try_emplace(playbook);
  if (added) registerPlaybookMetrics(playbook, it->second);
  return it->second;
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
      named.connector = std::make_unique<CaseConnector>(c, *cases, &casesOpenedCounter());
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
    named.connector = std::make_unique<CaseConnector>(builtin, *cases, &casesOpenedCounter());
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
  absl::StatusOr<std::unique_ptr<RunStartJournal>> journal =
      RunStartJournal::open(config_.db + ".starts", durability_ == RunDurability::kFull);
  if (!journal.ok()) return journal.status();
  journal_ = std::move(*journal);
  for (const LoadedPlaybook& p : playbooks_) {
    if (absl::Status st = store_->putModule(p.hash, p.name, p.module); !st.ok()) return st;
  }
  if (absl::Status st = recover(); !st.ok()) return st;
  started_ = true;
  for (size_t i = 0; i < config_.workers; ++i) {
    workers_.emplace_back([this, i] { workerLoop(i); });
  }
  timer_ = std::thread([this] { timerLoop(); });
  if (config_.default_case && cases != nullptr) {
    cases_ = cases;
    feeder_ = std::thread([this] { feederLoop(); });
  }
  VIGIL_LOG_INFO("playbook runner started playbooks={} connectors={} workers={} db={} "
                 "durability={} next_run_id={}",
                 playbooks_.size(), router_->connectorCount(), config_.workers, config_.db,
                 std::string(runDurabilityName(durability_)), next_run_id_.load());
  return absl::OkStatus();
}

absl::Status PlaybookRunner::recoverJournal(size_t& interrupted) {
  absl::StatusOr<std::vector<RunStart>> starts = journal_->readAll();
  if (!starts.ok()) return starts.status();
  for (const RunStart& start : *starts) {
    absl::StatusOr<bool> stored = store_->exists(start.id);
    if (!stored.ok()) return stored.status();
    if (*stored) continue;  // its first segment ended and was stored
    // The run took its first actions, or was about to, when the process ended.
    NewRun row{start.id,       start.created_ns, start.playbook, start.playbook_hash,
               start.tenant,   start.alert_id,   start.rule_id,
               dumpJson({{"id", start.alert_id}, {"rule_id", start.rule_id},
                         {"tenant", start.tenant}})};
    RunStep end;
    end.kind = "end";
    end.name = "failed";
    end.outcome = "error";
    end.started_ns = clock_->nowNs();
    end.message =
        "interrupted: vigild stopped during the first segment of this run, before its steps "
        "were stored; check the actions of playbook " + start.playbook + " by hand";
    absl::Status st =
        store_->finish(start.id, RunState::kFailed, "", end.message, 0, {end}, &row);
    if (!st.ok()) return st;
    metricsFor(start.playbook).finished[finalIndex(RunState::kFailed)]->add();
    VIGIL_LOG_WARN("playbook run interrupted before it was stored run={} playbook={} alert={}",
                   start.id, start.playbook, start.alert_id);
    ++interrupted;
  }
  return absl::OkStatus();
}

absl::Status PlaybookRunner::reserveRunIds() {
  absl::StatusOr<int64_t> first = store_->runIdCeiling();
  if (!first.ok()) return first.status();
  // Synced, and so also syncs the rows recoverJournal() wrote before the journal is cleared.
  if (absl::Status st = store_->raiseRunIdCeiling(*first + kRunIdBlock); !st.ok()) return st;
  next_run_id_.store(*first);
  run_id_ceiling_.store(*first + kRunIdBlock);
  return journal_->clear();
}

absl::StatusOr<int64_t> PlaybookRunner::allocateRunId() {
  const int64_t id = next_run_id_.fetch_add(1, std::memory_order_relaxed);
  if (id < run_id_ceiling_.load(std::memory_order_acquire)) return id;
  // The timer thread keeps the ceiling ahead; only a burst of kRunIdBlock / 2 runs
  // between two of its checks gets here.
  if (absl::Status st = extendRunIds(id + 1); !st.ok()) return st;
  return id;
}

absl::Status PlaybookRunner::extendRunIds(int64_t needed) {
  std::lock_guard<std::mutex> lock(id_mu_);
  int64_t ceiling = run_id_ceiling_.load(std::memory_order_relaxed);
  if (needed <= ceiling) return absl::OkStatus();
  ceiling = needed + kRunIdBlock;
  if (absl::Status st = store_->raiseRunIdCeiling(ceiling); !st.ok()) return st;
  run_id_ceiling_.store(ceiling, std::memory_order_release);
  return absl::OkStatus();
}

absl::Status PlaybookRunner::recover() {
  size_t resumed = 0, interrupted = 0, waiting = 0;
  if (absl::Status st = recoverJournal(interrupted); !st.ok()) return st;
  if (absl::Status st = reserveRunIds(); !st.ok()) return st;
  absl::StatusOr<std::vector<RunRecord>> running = store_->runsInState(RunState::kRunning);
  if (!running.ok()) return running.status();
  for (const RunRecord& run : *running) {
    if (run.pending_resume && !run.saved_state.empty()) {
      // A decision or timer handed it over and no worker took it before the stop.
      queue_.push_back(Job{run.id, 0, nullptr, monotonicNs()});
      ++resumed;
      continue;
    }
    // It was executing when the process ended, so the actions of its last segment may
    // or may not have happened. Repeating them could block twice or page twice.
    absl::Status st = store_->finish(
        run.id, RunState::kFailed, "",
        "interrupted: vigild stopped while this run was executing; check the actions after "
        "its last recorded step by hand",
        run.vm_steps, {});
    if (!st.ok()) return st;
    metricsFor(run.playbook).finished[finalIndex(RunState::kFailed)]->add();
    ++interrupted;
  }
  for (RunState state : {RunState::kWaitingApproval, RunState::kDelayed}) {
    absl::StatusOr<std::vector<RunRecord>> runs = store_->runsInState(state);
    if (!runs.ok()) return runs.status();
    for (const RunRecord& run : *runs) {
      wakes_.emplace(run.wake_ns, Wake{run.id, state});
      ++waiting;
    }
  }
  updateWaitingGauges();
  if (resumed + interrupted + waiting > 0) {
    VIGIL_LOG_INFO("playbook runs recovered suspended={} handed_over={} interrupted={}", waiting,
                   resumed, interrupted);
  }
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
  while (true) {
    {
      std::unique_lock<std::mutex> lock(feed_mu_);
      // The timeout retries after a failed read, with no new alert to wake it.
      feed_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return feed_wake_ || feed_stop_; });
      if (feed_stop_) return;
      feed_wake_ = false;
    }
    feedFromInbox();
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
      VIGIL_LOG_ERROR("cannot read the alert inbox for default-case runs after={} error={}",
                      last_fed_.load(), rows.status().ToString());
      return;
    }
    if (rows->empty()) return;
    for (const auto& [inbox_id, text] : *rows) {
      absl::StatusOr<correlate::Alert> alert = internal::decodeStoredAlert(text);
      if (!alert.ok()) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          last_fed_.store(inbox_id);
        }
        idle_.notify_all();  // flush() waits for the feeder to catch up
        // The row stays in the inbox, and the next start reports it again.
        store_errors_.add();
        VIGIL_LOG_ERROR("cannot read inbox alert, no default-case run inbox_id={} error={}",
                        inbox_id, alert.status().ToString());
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
        Job job{0, default_index_, std::make_shared<const correlate::Alert>(std::move(*alert)),
                monotonicNs(), inbox_id};
        job.fed = true;
        queue_.push_back(std::move(job));
        last_fed_.store(inbox_id);
        ++alert_jobs_;
        ++fed_jobs_;
        queue_depth_.set(static_cast<int64_t>(queue_.size()));
      }
      work_ready_.notify_one();
    }
  }
}

void PlaybookRunner::enqueueAlert(const correlate::Alert& alert, int64_t inbox_id) {
  std::shared_ptr<const correlate::Alert> copy;
  const int64_t now = monotonicNs();
  for (size_t i = 0; i < playbooks_.size(); ++i) {
    // The feeder queues the default-case runs, from the inbox.
    if (config_.default_case && i == default_index_) continue;
    if (!triggerMatches(playbooks_[i].program->trigger(), alert)) continue;
    if (copy == nullptr) copy = std::make_shared<const correlate::Alert>(alert);
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_ || !started_) {
      dropped_shutdown_.add();
      continue;
    }
    if (alert_jobs_ >= config_.queue_capacity && config_.enqueue_wait_ms > 0) {
      room_.wait_for(lock, std::chrono::milliseconds(config_.enqueue_wait_ms),
                     [this] { return stopping_ || alert_jobs_ < config_.queue_capacity; });
    }
    if (stopping_) {
      dropped_shutdown_.add();
      continue;
    }
    if (alert_jobs_ >= config_.queue_capacity) {
      dropped_full_.add();
      VIGIL_LOG_WARN_POW2("playbook queue full, run not started playbook={} alert={}",
                          playbooks_[i].name, alert.id);
      continue;
    }
    queue_.push_back(Job{0, i, copy, now, inbox_id});
    ++alert_jobs_;
    queue_depth_.set(static_cast<int64_t>(queue_.size()));
    lock.unlock();
    work_ready_.notify_one();
  }
}

void PlaybookRunner::enqueueResume(int64_t run_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(Job{run_id, 0, nullptr, monotonicNs()});
    queue_depth_.set(static_cast<int64_t>(queue_.size()));
  }
  work_ready_.notify_one();
}

void PlaybookRunner::flush() {
  std::unique_lock<std::mutex> lock(mu_);
  bool drained = idle_.wait_for(lock, kFlushTimeout, [this] {
    const bool fed = !feeder_.joinable() || last_fed_.load() >= newest_stored_.load();
    return (queue_.empty() && busy_ == 0 && fed) || stopping_;
  });
  if (!drained) {
    VIGIL_LOG_WARN("playbook runs still queued after flush waited {} s queued={} running={}",
                   std::chrono::duration_cast<std::chrono::seconds>(kFlushTimeout).count(),
                   queue_.size(), busy_);
  }
}

// ---------------------------------------------------------------------------------------
// Workers

void PlaybookRunner::workerLoop(size_t slot) {
  Worker worker;
  worker.slot = slot;
  while (true) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      if (job.run_id == 0) --alert_jobs_;
      if (job.fed) --fed_jobs_;
      ++busy_;
      queue_depth_.set(static_cast<int64_t>(queue_.size()));
    }
    worker.taken_mono_ns = monotonicNs();
    room_.notify_one();
    if (job.fed) wakeFeeder();
    if (job.run_id == 0) {
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

void PlaybookRunner::prepareContext(RunContext& ctx, const RunRecord& run, const json& alert) {
  ctx.alert = &alert;
  ctx.connector = router_.get();
  ctx.run_id = run.id;
  ctx.playbook = run.playbook;
  ctx.tenant = run.tenant;
  ctx.alert_id = run.alert_id;
  ctx.rule_id = run.rule_id;
  ctx.created_ns = run.created_ns;
  for (const RunStep& step : run.steps) {
    if (step.kind == "action" && step.outcome == "ok" && !step.idempotency_key.empty()) {
      ctx.done_action_keys.insert(step.idempotency_key);
    }
  }
  intel::SnapshotStore* store = intel_;
  // A run sees the indicators of its alert's tenant and of every tenant.
  ctx.intel = [store, tenant = run.tenant](std::string_view value) {
    if (store == nullptr) return false;
    std::shared_ptr<const intel::Snapshot> snapshot = store->current();
    return snapshot != nullptr && findIndicator(*snapshot, value, tenant).has_value();
  };
  ctx.log = [&ctx, this](std::string_view message) {
    RunStep step;
    step.kind = "log";
    step.name = "log";
    step.message = std::string(message.substr(0, 4096));
    step.started_ns = clock_->nowNs();
    ctx.steps.push_back(std::move(step));
  };
}

void PlaybookRunner::startRun(const Job& job, Worker& worker) {
  const LoadedPlaybook& playbook = playbooks_[job.playbook];
  const correlate::Alert& source = *job.alert;
  absl::StatusOr<int64_t> id = allocateRunId();
  const int64_t created_ns = clock_->nowNs();
  absl::Status noted = id.status();
  if (noted.ok()) {
    // The run's row is stored only when its first segment ends. Until then the journal
    // slot is its only trace, so the slot is written before the first action.
    noted = journal_->record(worker.slot, *id, created_ns, playbook.name, playbook.hash,
                             source.tenant, source.id, source.rule_id);
  }
  if (!noted.ok()) {
    store_errors_.add();
    VIGIL_LOG_ERROR("cannot record playbook run, not started playbook={} alert={} error={}",
                    playbook.name, source.id, noted.ToString());
    return;
  }
  playbook_metrics_[job.playbook].started->add();

  json alert = alertForPlaybook(source, job.inbox_id);
  RunRecord run;
  run.id = *id;
  run.playbook = playbook.name;
  run.playbook_hash = playbook.hash;
  run.tenant = source.tenant;
  run.alert_id = source.id;
  run.rule_id = source.rule_id;
  run.created_ns = created_ns;
  RunContext ctx;
  prepareContext(ctx, run, alert);
  ctx.trigger_mono_ns = job.queued_mono_ns;
  ctx.worker_mono_ns = worker.taken_mono_ns;
  pb::Budget budget{config_.max_steps, config_.max_memory_bytes};
  pb::RunResult result = worker.vm.run(*playbook.program, registry_, budget, &ctx);

  NewRun row{run.id,     created_ns,   run.playbook, run.playbook_hash,
             run.tenant, run.alert_id, run.rule_id,  dumpJson(alert)};
  settle(run, ctx, result, worker, &row);
}

absl::StatusOr<std::shared_ptr<const pb::Program>> PlaybookRunner::programFor(
    const std::string& hash) {
  std::lock_guard<std::mutex> lock(programs_mu_);
  auto it = programs_.find(hash);
  if (it != programs_.end()) return it->second;
  // An older version of a playbook whose file changed since the run started.
  absl::StatusOr<std::vector<uint8_t>> module = store_->getModule(hash);
  if (!module.ok()) return module.status();
  absl::StatusOr<std::unique_ptr<pb::Program>> program = pb::loadProgram(*module, registry_);
  if (!program.ok()) return program.status();
  std::shared_ptr<const pb::Program> shared = std::move(*program);
  programs_[hash] = shared;
  return shared;
}

void PlaybookRunner::resumeRun(int64_t run_id, Worker& worker) {
  absl::StatusOr<RunRecord> run = store_->get(run_id);
  if (!run.ok()) {
    store_errors_.add();
    VIGIL_LOG_ERROR("cannot read playbook run to resume run={} error={}", run_id,
                    run.status().ToString());
    return;
  }
  if (run->state != RunState::kRunning || !run->pending_resume) return;  // already taken
  if (absl::Status st = store_->clearPendingResume(run_id); !st.ok()) {
    store_errors_.add();
    VIGIL_LOG_ERROR("cannot take playbook run run={} error={}", run_id, st.ToString());
    return;
  }
  json resume = json::parse(*run->pending_resume, nullptr, false);
  json alert = json::parse(run->alert_json, nullptr, false);
  RunContext ctx;
  prepareContext(ctx, *run, alert);
  ctx.stored_steps = run->step_count;
  absl::StatusOr<std::shared_ptr<const pb::Program>> program = programFor(run->playbook_hash);
  if (!program.ok()) {
    pb::RunResult failed;
    failed.status = pb::RunStatus::kFailed;
    failed.steps = run->vm_steps;
    failed.message = absl::StrCat("cannot load playbook ", run->playbook, " version ",
                                  run->playbook_hash, ": ", program.status().message());
    settle(*run, ctx, failed, worker, nullptr);
    return;
  }
  std::string text = resume.is_string() ? resume.get<std::string>() : "";
  pb::Value value = resume.is_string()    ? pb::Value::string(text)
                    : resume.is_boolean() ? pb::Value::boolean(resume.get<bool>())
                                          : pb::Value::null();
  pb::Budget budget{config_.max_steps, config_.max_memory_bytes};
  pb::RunResult result =
      worker.vm.resume(**program, registry_, budget, run->saved_state, value, &ctx);
  settle(*run, ctx, result, worker, nullptr);
}

void PlaybookRunner::settle(const RunRecord& run, RunContext& ctx, const pb::RunResult& result,
                            Worker& worker, const NewRun* insert) {
  const int64_t now = clock_->nowNs();
  vm_steps_.add(result.steps > run.vm_steps ? result.steps - run.vm_steps : 0);
  observeLatency(ctx);
  PlaybookMetrics& pm = metricsFor(run.playbook);

  RunStep end;
  end.started_ns = now;
  absl::Status st;
  if (result.status == pb::RunStatus::kSuspended) {
    const pb::List* request = result.value.isList() ? result.value.asList() : nullptr;
    std::string kind = listText(request, 0);
    RunState state = RunState::kDelayed;
    int64_t wake = now;
    std::string prompt;
    if (kind == pb::compiler::kYieldApproval) {
      state = RunState::kWaitingApproval;
      prompt = listText(request, 1);
      wake = now + static_cast<int64_t>(listNumber(request, 2) * kSecondNs);
      end.kind = "approval";
      end.name = "wait_for_approval";
      end.detail = dumpJson({{"prompt", prompt}, {"timeout_s", listNumber(request, 2)}});
      end.outcome = "requested";
    } else if (kind == pb::compiler::kYieldDelay) {
      wake = now + static_cast<int64_t>(listNumber(request, 1) * kSecondNs);
      end.kind = "delay";
      end.name = listText(request, 2).empty() ? "delay" : listText(request, 2);
      end.detail = dumpJson({{"seconds", listNumber(request, 1)}});
      end.outcome = "waiting";
    } else {
      pb::RunResult failed = result;
      failed.status = pb::RunStatus::kFailed;
      failed.message = absl::StrCat("playbook ", run.playbook, " suspended with unknown request ",
                                    pb::valueToString(result.value));
      settle(run, ctx, failed, worker, insert);
      return;
    }
    ctx.steps.push_back(end);
    st = store_->suspend(run.id, state, wake, prompt, worker.vm.saveState(), result.steps,
                         ctx.steps, insert);
    if (st.ok()) {
      (state == RunState::kWaitingApproval ? pm.suspended_approval : pm.suspended_delay)->add();
      schedule(wake, run.id, state);
    }
  } else {
    RunState state = RunState::kSucceeded;
    std::string value, error;
    if (result.status == pb::RunStatus::kFailed) {
      state = RunState::kFailed;
      error = result.message;
    } else {
      value = pb::valueToString(result.value);
      if (run.decision == "rejected") state = RunState::kDenied;
      if (run.decision == "timeout") state = RunState::kTimedOut;
    }
    end.kind = "end";
    end.name = std::string(runStateName(state));
    end.outcome = state == RunState::kFailed ? "error" : "ok";
    end.message = state == RunState::kFailed ? error : value;
    ctx.steps.push_back(end);
    st = store_->finish(run.id, state, value, error, result.steps, ctx.steps, insert);
    pm.finished[finalIndex(state)]->add();
    if (run.created_ns != 0) {
      pm.duration->observe(static_cast<double>(std::max<int64_t>(now - run.created_ns, 0)) * 1e-9);
    }
    if (state == RunState::kFailed) {
      VIGIL_LOG_WARN("playbook run failed run={} playbook={} error={}", run.id, run.playbook, error);
    }
  }
  countSteps(run, ctx.steps, worker);
  if (!st.ok()) {
    store_errors_.add();
    VIGIL_LOG_ERROR("cannot record playbook run state run={} error={}", run.id, st.ToString());
  }
}

Counter& PlaybookRunner::casesOpenedCounter() {
  // The same series the case sink counts in when it files alerts itself.
  return metrics_.counter("vigil_cases_opened_total", "Cases opened by stored alerts.");
}

void PlaybookRunner::observeLatency(const RunContext& ctx) {
  if (ctx.first_action_latency_ns) {
    first_action_latency_us_.observe(static_cast<double>(*ctx.first_action_latency_ns) * 1e-3);
  }
  if (ctx.dispatch_latency_ns) {
    dispatch_latency_us_.observe(static_cast<double>(*ctx.dispatch_latency_ns) * 1e-3);
  }
}

void PlaybookRunner::countSteps(const RunRecord& run, const std::vector<RunStep>& steps,
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
    StepMetrics m = stepMetrics(run.playbook, step, worker);
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
        VIGIL_LOG_ERROR("cannot reserve playbook run ids error={}", st.ToString());
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
          VIGIL_LOG_ERROR("cannot wake playbook run run={} error={}", wake.run_id,
                          moved.status().ToString());
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
                 t.approver);
  enqueueResume(run_id);
  return store_->get(run_id);
}

}  // namespace vigil::mgmt

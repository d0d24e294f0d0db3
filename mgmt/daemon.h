// The daemon's wiring: builds every component from a validated DaemonConfig, starts them
// in dependency order, and stops them in reverse. vigild's main() is a thin shell around
// this class; the integration tests drive the built vigild binary instead.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "common/metrics.h"
#include "mgmt/config.h"
#include "mgmt/content_activators.h"

namespace vigil::correlate {
class Engine;
class Pipeline;
}  // namespace vigil::correlate
namespace vigil::dataplane {
class Source;
}
namespace vigil::mgmt {

class ApiServer;
class AuditLog;
class AuthStore;
class CaseSink;
class CaseStore;
class ContentService;
class ContentStore;
class IntelManager;
class RuleReloader;
class JsonLinesAlertWriter;
class PlaybookRunner;

struct DaemonOptions {
  // Stop once every file source has been replayed and its alerts are stored.
  bool exit_when_done = false;
  // Summary file, written when the replay is done and at shutdown; empty for none.
  std::string summary_file;
  // Set by vigild --check-config: validate() compiles the rules into engines with
  // RuleReloader::kCompileOnlyMaxKeys groups per rule, because they never run. start()
  // rejects a Daemon built with it.
  bool check_only = false;
};

// Outcome of a configuration reload (SIGHUP or POST /api/v1/config/reload).
struct ConfigReloadReport {
  bool ok = false;
  std::string error;                          // why the new file was rejected
  std::vector<std::string> applied;           // keys applied while running
  std::vector<std::string> restart_required;  // changed keys that take effect on restart
};

class Daemon {
 public:
  Daemon(DaemonConfig config, DaemonOptions options);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Checks that the state folders and the alerts file's folder exist writable or can be
  // created, loads indicators and rules and creates every source (validating its options)
  // without opening anything: what `vigild --check-config` runs. Errors name the key, file or
  // value.
  absl::Status validate();

  // Locks state_dir (see lockStateDir()), runs validate(), opens the case store, creates
  // every source (validating its options), then starts the sources, the pipeline thread
  // and the API. Nothing listens until everything has been built, so a bad rule file or
  // source option fails before any socket opens. Errors name the file, value or address
  // involved. AlreadyExists means another vigild holds the state_dir lock.
  absl::Status start();

  // Blocks until SIGINT or SIGTERM, or until the replay is done when exit_when_done is
  // set; then stops everything and writes the summary. SIGHUP asks for a rebuild of the
  // indicator snapshot. The caller must have blocked those signals in every thread
  // (vigild's main does it before start()).
  void run();

  // Stops the sources' reading, lets them frame what they had already received and the
  // pipeline finish it, all within daemon.drain_timeout_s (what is left then is counted
  // as dropped{reason=shutdown}: at the source when it found no ring slot, in
  // vigil_pipeline_dropped_total when it was still in a ring), flushes the sinks and
  // stops the API.
  // Safe to call more than once.
  void stop();

  // True once every finite source has finished, the pipeline has processed all it
  // published, and the alerts are stored. True from start() on when no source is finite.
  bool replayDone() const { return replay_done_.load(std::memory_order_acquire); }

  // A readable summary of what the appliance did: events, parse results, indicator hits,
  // alerts, cases, and where to look at them.
  std::string summary() const;

  // Reads the configuration file again and validates it in full. When it is valid,
  // applies what can change while running (rule paths, field mappings and log sources,
  // intel feeds, daemon.log_level), reloads the rules and indicator feeds, and lists
  // the changed keys that need a restart. When it is invalid, keeps running on the old
  // configuration. Logs and counts each outcome in vigil_config_reloads_total{result}.
  // Thread-safe.
  ConfigReloadReport reloadConfig(std::string_view reason);

  MetricsRegistry& metrics() { return metrics_; }
  // The threat-intel manager; null before validate().
  IntelManager* intel() { return intel_.get(); }
  // The API server; null before start() and when api.enabled is false.
  ApiServer* api() { return api_.get(); }

  // OK when the API may send work here: indicators and rules are loaded, the pipeline
  // thread has started and stop() has not begun. Otherwise Unavailable naming what is missing.
  // GET /readyz reports it.
  absl::Status readiness() const;

 private:
  // Returns an error naming the configuration key of the first folder that vigild could
  // not create or write: state_dir, the case store's, the evidence, the run store's and
  // the alerts file's folder.
  absl::Status checkFolders() const;
  // Takes an exclusive flock() on <state_dir>/vigild.lock and writes this process's pid
  // into it, so that two vigild processes never share the databases, the run journal or
  // the checkpoint. The lock is held until the Daemon is destroyed (for vigild, until
  // the process exits). Returns AlreadyExists with the other process's pid when that
  // process has the lock.
  absl::Status lockStateDir();
  absl::Status loadIntel();
  // Opens <state_dir>/auth.db and audit.db and registers every tenant the config names.
  absl::Status openAuth();
  absl::Status loadRules();
  // Correlation checkpoints in <state_dir>/correlation.ckpt (see daemon_checkpoint.cc).
  std::string checkpointPath() const;
  void restoreCheckpoint();
  void writeCheckpoint(const std::string& file, std::string_view when);
  absl::Status createSources();
  absl::Status startApi();
  // Content store and service (daemon_content.cc): opens <state_dir>/content.db and
  // activates the stored active versions, which win over the configured files.
  absl::Status startContent();
  // How pushed playbooks are checked and where they go: the playbook runner when the
  // configuration has a playbooks section, nowhere otherwise.
  PlaybookActivation playbookActivation();
  void addConfigRoutes();
  // Rebuilds the rules: the active content version when there is one, else rule_paths.
  absl::Status reloadRules(const DaemonConfig& config, std::string_view reason);
  DaemonConfig liveConfig() const;
  // vigil_config_reloads_total{result}; start() registers "applied" and "rejected" at 0.
  Counter& configReloadCounter(std::string_view result);
  void addIntelRoutes();
  bool checkReplayDone();
  bool pipelineDrained() const;
  void writeSummary() const;

  DaemonConfig config_;
  DaemonOptions options_;
  MetricsRegistry metrics_;
  int64_t start_ns_ = 0;

  std::unique_ptr<IntelManager> intel_;
  std::unique_ptr<RuleReloader> rules_;
  std::unique_ptr<ContentStore> content_store_;
  std::unique_ptr<ContentService> content_;
  // The configuration as last reloaded. config_ stays as started, because the pipeline
  // keeps views into its tenant rules.
  mutable std::mutex live_config_mutex_;
  DaemonConfig live_config_;
  std::mutex reload_mutex_;  // one configuration reload at a time
  std::unique_ptr<CaseStore> store_;
  std::unique_ptr<CaseSink> case_sink_;
  std::unique_ptr<JsonLinesAlertWriter> alert_writer_;
  std::unique_ptr<PlaybookRunner> runner_;  // built by validate()
  std::vector<std::unique_ptr<dataplane::Source>> sources_;
  std::vector<std::string> source_types_;
  std::unique_ptr<correlate::Pipeline> pipeline_;
  std::unique_ptr<AuthStore> auth_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<ApiServer> api_;
  std::thread pipeline_thread_;
  std::atomic<bool> pipeline_started_{false};
  std::atomic<bool> pipeline_returned_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> replay_done_{false};
  std::atomic<bool> api_stopped_{false};  // set by stop(), and reported by summary()
  bool has_finite_sources_ = false;
  bool stopped_ = false;
  int state_lock_fd_ = -1;  // <state_dir>/vigild.lock, locked by lockStateDir()
};

}  // namespace vigil::mgmt

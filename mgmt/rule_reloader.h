// Rule sets of the running daemon: compiles them from the configured rule paths or from
// pushed content, and swaps them into the pipeline through a correlate::EngineSlot. The
// pipeline hands the window state of unchanged rules to the new engine (see
// correlate/pipeline.h), so a reload keeps the windows of rules whose definition did not
// change and starts the others empty.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/metrics.h"
#include "correlate/engine.h"
#include "correlate/engine_slot.h"
#include "mgmt/config.h"
#include "mgmt/content_service.h"

namespace vigil::mgmt {

// Rule files: a file as given, or every *.yml / *.yaml below a folder, sub-folders
// included, sorted by path. A folder with no rule file is an error.
absl::StatusOr<std::vector<std::string>> expandRulePaths(const std::vector<std::string>& paths);

class RuleReloader {
 public:
  // Engine options (key limits, shards, lateness) come from `config` and stay for the
  // daemon's life; field mappings and log sources are read again on every build.
  RuleReloader(const DaemonConfig& config, MetricsRegistry& metrics);

  // Compiles the files under config.rule_paths. Errors name the file and line.
  absl::StatusOr<std::shared_ptr<correlate::Engine>> buildFromPaths(const DaemonConfig& config);

  // Compiles pushed rule files (path -> YAML), appending every problem found, with file
  // and line where the loader reports one. Returns null when there are problems. Alerts
  // of the engine carry `version` as Alert::rules_version.
  std::shared_ptr<correlate::Engine> buildFromFiles(const DaemonConfig& config,
                                                    const ContentFiles& files, uint64_t version,
                                                    std::vector<ContentProblem>& problems);

  // Makes `engine` the running one: the first call creates the slot the pipeline reads,
  // later calls publish into it. Logs and counts the rules kept, changed, removed and
  // added (vigil_rules_reload_rules_total{outcome}) and the reload
  // (vigil_rules_reloads_total{result}).
  absl::Status activate(std::shared_ptr<correlate::Engine> engine, std::string_view reason);

  // The slot the pipeline runs from; null before the first activate().
  correlate::EngineSlot* slot() { return slot_.get(); }
  // The engine activated last.
  std::shared_ptr<correlate::Engine> current() const;

  // Counts a reload that failed before an engine existed (a compile error).
  void countFailure();

 private:
  absl::StatusOr<correlate::FieldMapping> mapping(const DaemonConfig& config) const;
  std::shared_ptr<correlate::Engine> makeEngine(correlate::RuleSet rules, uint64_t version);

  correlate::EngineOptions options_;
  MetricsRegistry& metrics_;
  std::shared_ptr<std::atomic<uint64_t>> alert_sequence_ =
      std::make_shared<std::atomic<uint64_t>>(0);
  mutable std::mutex mutex_;
  std::unique_ptr<correlate::EngineSlot> slot_;
  std::shared_ptr<correlate::Engine> current_;
};

}  // namespace vigil::mgmt

// Rule sets of the running daemon: compiles them from the configured rule paths or from
// pushed content, and swaps them into the pipeline through a correlate::EngineSlot. The
// running set combines the rules for every tenant (from rules.paths or pushed for all
// tenants) with each tenant's pushed rules, which see only that tenant's events. The
// pipeline hands the window state of unchanged rules to the new engine (see
// correlate/pipeline.h), so a reload keeps the windows of rules whose definition did not
// change and starts the others empty.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
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

// The rule files of one scope (every tenant, or one tenant) as the running rule set was
// built from them: (origin, YAML text) pairs in load order, and the content version.
struct RuleScope {
  std::vector<std::pair<std::string, std::string>> files;
  uint64_t version = 0;
};

// A rule set compiled from every scope, ready for RuleReloader::activate().
struct StagedRules {
  std::shared_ptr<correlate::Engine> engine;
  RuleScope global;                         // rules for every tenant
  std::map<std::string, RuleScope> tenants;  // each tenant's own rules
  uint64_t base_generation = 0;              // RuleReloader generation it was built on
};

class RuleReloader {
 public:
  // Engine options (key limits, shards, lateness) come from `config` and stay for the
  // daemon's life; field mappings and log sources are read again on every build.
  RuleReloader(const DaemonConfig& config, MetricsRegistry& metrics);

  // Compiles the files under config.rule_paths as the rules for every tenant, together
  // with the tenants' rules of the running set. Errors name the file and line.
  absl::StatusOr<std::shared_ptr<const StagedRules>> stageFromPaths(const DaemonConfig& config);

  // Compiles the running rule set with the rules of `tenant` (kAllTenants: the rules for
  // every tenant) replaced by pushed `files` (path -> YAML). The files are compiled alone
  // first, so every problem names its file and line; then with the other scopes. Returns
  // null when there are problems. Alerts of the scope's rules carry `version` as
  // Alert::rules_version.
  std::shared_ptr<const StagedRules> stage(const DaemonConfig& config, const std::string& tenant,
                                           const ContentFiles& files, uint64_t version,
                                           std::vector<ContentProblem>& problems);

  // Compiles `files` of one scope alone, as stage() checks them, into an engine that runs
  // nothing live (for dry runs). Null when there are problems.
  std::shared_ptr<correlate::Engine> buildScope(const DaemonConfig& config,
                                                const std::string& tenant,
                                                const ContentFiles& files, uint64_t version,
                                                std::vector<ContentProblem>& problems);

  // Makes `staged` the running rule set: the first call creates the slot the pipeline
  // reads, later calls publish into it. Returns FailedPrecondition, changing nothing,
  // when another rule set was activated after `staged` was built. Logs and counts the rules kept, changed,
  // removed and added (vigil_rules_reload_rules_total{outcome}) and the reload
  // (vigil_rules_reloads_total{result}). Correlation rules of unchanged scopes keep
  // their label and definition hash, so their windows carry over.
  absl::Status activate(std::shared_ptr<const StagedRules> staged, std::string_view reason);

  // The slot the pipeline runs from; null before the first activate().
  correlate::EngineSlot* slot() { return slot_.get(); }
  // The engine activated last.
  std::shared_ptr<correlate::Engine> current() const;

  // Counts a reload that failed before an engine existed (a compile error).
  void countFailure();

 private:
  absl::StatusOr<correlate::FieldMapping> mapping(const DaemonConfig& config) const;
  std::shared_ptr<correlate::Engine> makeEngine(correlate::RuleSet rules, uint64_t version);
  // Compiles `files` as the rules of `tenant` alone, appending every problem found.
  std::optional<correlate::RuleSet> compileScope(const DaemonConfig& config,
                                                 const std::string& tenant,
                                                 const ContentFiles& files, uint64_t version,
                                                 std::vector<ContentProblem>& problems);
  // Compiles `global` and `tenants` into one engine. Errors name the scope.
  absl::StatusOr<std::shared_ptr<correlate::Engine>> buildAll(
      const DaemonConfig& config, const RuleScope& global,
      const std::map<std::string, RuleScope>& tenants);

  correlate::EngineOptions options_;
  MetricsRegistry& metrics_;
  std::shared_ptr<std::atomic<uint64_t>> alert_sequence_ =
      std::make_shared<std::atomic<uint64_t>>(0);
  mutable std::mutex mutex_;
  std::unique_ptr<correlate::EngineSlot> slot_;
  std::shared_ptr<correlate::Engine> current_;
  // What current_ was built from, and how many activations there were.
  RuleScope global_;
  std::map<std::string, RuleScope> tenants_;
  uint64_t generation_ = 0;
};

}  // namespace vigil::mgmt

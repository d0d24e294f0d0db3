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
// included, sorted by path. A folder with no rule file is an error; errors begin with
// `key` (DaemonConfig::rule_paths_key).
absl::StatusOr<std::vector<std::string>> expandRulePaths(const std::vector<std::string>& paths,
                                                         const std::string& key = "rules.paths");

// The rule files of one scope (every tenant, or one tenant) as the running rule set was
// built from them: (origin, YAML text) pairs in load order, the content version, and the
// rules as parsed from them, so a push of another scope does not parse them again.
struct RuleScope {
  std::vector<std::pair<std::string, std::string>> files;
  uint64_t version = 0;
  std::shared_ptr<const correlate::ParsedScope> parsed;
  // The field mapping and log sources `parsed` was parsed with, as one string.
  std::string mapping_key;
};

// A rule set compiled from every scope, ready for RuleReloader::activate().
struct StagedRules {
  std::shared_ptr<correlate::Engine> engine;
  RuleScope global;                         // rules for every tenant
  std::map<std::string, RuleScope> tenants;  // each tenant's own rules
  uint64_t base_generation = 0;              // RuleReloader generation it was built on
};

// One correlation rule of a tenant that references a detection rule for every tenant.
struct GlobalReference {
  std::string tenant;
  std::string rule;       // the correlation's label (id, else title)
  std::string file;       // where the reference is written
  size_t line = 0;
  std::string reference;  // the id or name as written
};

class RuleReloader {
 public:
  // Engine options (key limits, shards, lateness) come from `config` and stay for the
  // daemon's life; field mappings and log sources are read again on every build. With
  // `compile_only` (vigild --check-config), the key limits are capped at
  // kCompileOnlyMaxKeys: those engines only validate the rules and never run, so
  // window tables of the configured size would only cost memory and time.
  RuleReloader(const DaemonConfig& config, MetricsRegistry& metrics, bool compile_only = false);

  static constexpr size_t kCompileOnlyMaxKeys = 64;

  // Compiles the files under config.rule_paths as the rules for every tenant, together
  // with the tenants' rules of the running set. Errors name the file and line.
  absl::StatusOr<std::shared_ptr<const StagedRules>> stageFromPaths(const DaemonConfig& config);

  // Compiles the running rule set with the rules of `tenant` (kAllTenants: the rules for
  // every tenant) replaced by pushed `files` (path -> YAML). Only `files` are parsed. The
  // other scopes reuse their parsed rules unless the field mapping changed. References
  // are resolved and the prefilter is built for the whole set, and the new engine shares
  // the window tables of unchanged correlation rules with the running one. Every problem
  // names its file and line. Returns null when there are
  // problems. Alerts of the scope's rules carry `version` as Alert::rules_version.
  //
  // Empty `files` for a tenant removes that tenant's rules (a deletion). The rules for
  // every tenant cannot be empty. A push for every tenant that drops a detection rule
  // which a tenant's correlation references is rejected, with one problem per such
  // correlation (tenant, rule, file and line); push the tenant's rules without the
  // reference first.
  std::shared_ptr<const StagedRules> stage(const DaemonConfig& config, const std::string& tenant,
                                           const ContentFiles& files, uint64_t version,
                                           std::vector<ContentProblem>& problems);

  // Compiles `files` of one scope, as stage() checks them, into an engine that runs
  // nothing live (for dry runs). A tenant's rules are compiled with the running rules for
  // every tenant, so their references resolve, but only the tenant's rules raise
  // alerts. Null when there are problems.
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

  // Tenants' correlations that reference a detection rule for every tenant, in the
  // running rule set.
  std::vector<GlobalReference> globalReferences() const;

  // Counts a reload that failed before an engine existed (a compile error).
  void countFailure();

 private:
  absl::StatusOr<correlate::FieldMapping> mapping(const DaemonConfig& config) const;
  // Builds the engine of `rules`. With `previous` (the running engine) it shares the
  // window tables of unchanged correlation rules, so only new and changed rules allocate.
  std::shared_ptr<correlate::Engine> makeEngine(
      correlate::RuleSet rules, uint64_t version,
      const std::shared_ptr<correlate::Engine>& previous = nullptr);
  // Parses `files` as the rules of `tenant`, appending every problem found (each file
  // is parsed, so one push reports the errors of all of them).
  std::shared_ptr<const correlate::ParsedScope> parseScope(
      const correlate::FieldMapping& mapping, const std::string& tenant,
      const std::vector<std::pair<std::string, std::string>>& files, uint64_t version,
      std::vector<ContentProblem>& problems);
  // Parses `scope` again when it was parsed with another field mapping (or never).
  absl::Status refreshParse(const correlate::FieldMapping& mapping, const std::string& key,
                            const std::string& tenant, RuleScope& scope);
  // Resolves the references of `global` and `tenants` together and builds one engine,
  // sharing the window tables of `previous` for unchanged correlation rules.
  absl::StatusOr<std::shared_ptr<correlate::Engine>> buildAll(
      correlate::FieldMapping mapping, const RuleScope& global,
      const std::map<std::string, RuleScope>& tenants,
      const std::shared_ptr<correlate::Engine>& previous);

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

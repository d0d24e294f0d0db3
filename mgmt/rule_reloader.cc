#include "mgmt/rule_reloader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <system_error>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "correlate/rules.h"
#include "mgmt/yaml_paths.h"

namespace vigil::mgmt {

absl::StatusOr<std::vector<std::string>> expandRulePaths(const std::vector<std::string>& paths,
                                                         const std::string& key) {
  return expandYamlPaths(paths, key, "rule");
}

namespace {

constexpr char kReloadsName[] = "vigil_rules_reloads_total";
constexpr char kReloadsHelp[] = "Rule set activations after startup, by result";

void appendPart(std::string& key, std::string_view part) {
  absl::StrAppend(&key, part.size(), ":");
  key.append(part);
}

// The field mapping and log sources of `config` as one string. Rules are parsed with
// them, so a scope parsed under another key is parsed again.
std::string mappingKey(const DaemonConfig& config) {
  std::string key;
  for (const auto& [sigma, event] : config.field_mapping) {
    appendPart(key, sigma);
    appendPart(key, event);
  }
  for (const LogSourceConfig& logsource : config.logsources) {
    key += '|';
    for (const std::string* part : {&logsource.name, &logsource.product, &logsource.category,
                                    &logsource.service}) {
      appendPart(key, *part);
    }
    for (const auto& list : {logsource.conditions, logsource.field_mapping}) {
      key += '[';
      for (const auto& [name, value] : list) {
        appendPart(key, name);
        appendPart(key, value);
      }
    }
  }
  return key;
}

// A compile error of the whole rule set as a problem: with the file and line of one of
// `files` when the message starts with one, else as a conflict with the other scopes.
ContentProblem problemFor(const ContentFiles& files, const std::string& message) {
  std::string file;
  for (const auto& [path, text] : files) {
    if (message.starts_with(path + ":") && path.size() > file.size()) file = path;
  }
  if (!file.empty()) return problemFromMessage(file, message);
  return {"", 0, 0,
          absl::StrCat("the rules compile alone but not with the running rules of the other "
                       "scopes: ",
                       message)};
}

// Adds the ids and names of `rules` to `out`.
template <typename Rule>
void addNames(const std::vector<Rule>& rules, absl::flat_hash_set<std::string>& out) {
  for (const Rule& rule : rules) {
    if (!rule.id.empty()) out.insert(rule.id);
    if (!rule.name.empty()) out.insert(rule.name);
  }
}

// The tenants' correlation references that neither their own rules nor the detection
// rules of `global` provide, one problem each, at the tenant rule's file and line.
std::vector<ContentProblem> brokenGlobalReferences(const RuleScope& global,
                                                   const std::map<std::string, RuleScope>& tenants) {
  absl::flat_hash_set<std::string> shared;
  if (global.parsed != nullptr) addNames(global.parsed->detections, shared);
  std::vector<ContentProblem> problems;
  for (const auto& [tenant, scope] : tenants) {
    absl::flat_hash_set<std::string> own;
    addNames(scope.parsed->detections, own);
    addNames(scope.parsed->correlations, own);
    for (const correlate::CorrelationRule& rule : scope.parsed->correlations) {
      for (size_t i = 0; i < rule.rule_refs.size(); ++i) {
        const std::string& ref = rule.rule_refs[i];
        if (own.contains(ref) || shared.contains(ref)) continue;
        const size_t line = i < rule.rule_ref_lines.size() ? rule.rule_ref_lines[i] : rule.line;
        problems.push_back(
            {rule.file, static_cast<int>(line), 0,
             absl::StrCat("correlation ", correlate::ruleLabel(rule.id, rule.title),
                          " of tenant ", tenant, " (", rule.file, ":", line,
                          ") references detection rule '", ref,
                          "' for every tenant, which this rule set no longer contains; keep "
                          "the rule, or first push tenant ",
                          tenant, "'s rules without the reference")});
      }
    }
  }
  return problems;
}

}  // namespace

RuleReloader::RuleReloader(const DaemonConfig& config, MetricsRegistry& metrics, bool compile_only)
    : metrics_(metrics) {
  // Every result is exported from the start at 0, so that an alert on
  // increase(vigil_rules_reloads_total{result="failed"}) fires on the first failure too.
  for (const char* result : {"ok", "failed"}) {
    metrics_.counter(kReloadsName, kReloadsHelp, {{"result", result}});
  }
  options_.max_keys = config.max_keys_per_rule;
  options_.max_keys_per_tenant = config.max_keys_per_tenant;
  if (compile_only) {
    options_.max_keys = std::min(options_.max_keys, kCompileOnlyMaxKeys);
    options_.max_keys_per_tenant = std::min(options_.max_keys_per_tenant, kCompileOnlyMaxKeys);
  }
  options_.shards = config.shards;
  options_.allowed_lateness_ns = int64_t{config.allowed_lateness_s} * 1'000'000'000;
  options_.alert_sequence = alert_sequence_;
}

absl::StatusOr<correlate::FieldMapping> RuleReloader::mapping(const DaemonConfig& config) const {
  correlate::FieldMapping mapping = correlate::FieldMapping::defaults();
  for (const auto& [sigma, event] : config.field_mapping) mapping.set(sigma, event);
  for (const LogSourceConfig& logsource : config.logsources) {
    correlate::LogSourceDefinition definition{
        logsource.name,
        {logsource.product, logsource.category, logsource.service},
        logsource.conditions,
        logsource.field_mapping};
    if (auto st = mapping.addLogSource(std::move(definition)); !st.ok()) return st;
  }
  return mapping;
}

std::shared_ptr<correlate::Engine> RuleReloader::makeEngine(
    correlate::RuleSet rules, uint64_t version,
    const std::shared_ptr<correlate::Engine>& previous) {
  auto shared = std::make_shared<const correlate::RuleSet>(std::move(rules));
  size_t unreachable = 0;
  for (const correlate::DetectionRule& rule : shared->detections) {
    if (!rule.logsource_any && rule.logsource_mask == 0) ++unreachable;
  }
  metrics_
      .gauge("vigil_detection_rules_unreachable",
             "Detection rules whose logsource no rules.logsources entry provides")
      .set(static_cast<int64_t>(unreachable));
  if (unreachable > 0) {
    VIGIL_LOG_WARN("{} detection rules name a logsource that no rules.logsources entry "
                   "provides; they never run",
                   unreachable);
  }
  correlate::EngineOptions options = options_;
  options.rules_version = version;
  return std::make_shared<correlate::Engine>(std::move(shared), options, &metrics_,
                                             previous.get());
}

absl::StatusOr<std::shared_ptr<correlate::Engine>> RuleReloader::buildAll(
    correlate::FieldMapping mapping, const RuleScope& global,
    const std::map<std::string, RuleScope>& tenants,
    const std::shared_ptr<correlate::Engine>& previous) {
  correlate::RuleLoader loader(std::move(mapping));
  if (global.parsed != nullptr) loader.addParsed(*global.parsed);
  for (const auto& [tenant, scope] : tenants) loader.addParsed(*scope.parsed);
  absl::StatusOr<correlate::RuleSet> rules = loader.finish();
  if (!rules.ok()) return rules.status();
  return makeEngine(std::move(*rules), global.version, previous);
}

std::shared_ptr<const correlate::ParsedScope> RuleReloader::parseScope(
    const correlate::FieldMapping& mapping, const std::string& tenant,
    const std::vector<std::pair<std::string, std::string>>& files, uint64_t version,
    std::vector<ContentProblem>& problems) {
  correlate::RuleLoader loader(mapping);
  loader.setScope(tenant == kAllTenants ? "" : tenant, version);
  bool failed = false;
  for (const auto& [path, text] : files) {
    if (absl::Status st = loader.addText(text, path); !st.ok()) {
      problems.push_back(problemFromMessage(path, std::string(st.message())));
      failed = true;
    }
  }
  // A rule file without rules loads, because an empty file is valid YAML, but it is
  // most likely a mistake, so the log names it.
  for (const std::string& warning : loader.warnings()) {
    VIGIL_LOG_WARN("rule load warning tenant={} version={} warning={}",
                   tenant == kAllTenants ? "" : tenant, version, warning);
  }
  if (failed) return nullptr;
  return std::make_shared<const correlate::ParsedScope>(loader.takeParsed());
}

absl::Status RuleReloader::refreshParse(const correlate::FieldMapping& mapping,
                                        const std::string& key, const std::string& tenant,
                                        RuleScope& scope) {
  if (scope.parsed != nullptr && scope.mapping_key == key) return absl::OkStatus();
  std::vector<ContentProblem> problems;
  scope.parsed = parseScope(mapping, tenant, scope.files, scope.version, problems);
  scope.mapping_key = key;
  if (scope.parsed != nullptr) return absl::OkStatus();
  const std::string& first = problems.front().message;
  if (tenant == kAllTenants) {
    return absl::InvalidArgumentError(
        problems.front().line > 0
            ? absl::StrCat(problems.front().file, ":", problems.front().line, ": ", first)
            : first);
  }
  return absl::FailedPreconditionError(absl::StrCat("rules of tenant ", tenant, " version ",
                                                    scope.version, ": ", problems.front().file,
                                                    ":", problems.front().line, ": ", first));
}

absl::StatusOr<std::shared_ptr<const StagedRules>> RuleReloader::stageFromPaths(
    const DaemonConfig& config) {
  auto files = expandRulePaths(config.rule_paths, config.rule_paths_key.text);
  if (!files.ok()) return files.status();
  absl::StatusOr<correlate::FieldMapping> map = mapping(config);
  if (!map.ok()) return map.status();
  const std::string key = mappingKey(config);
  auto staged = std::make_shared<StagedRules>();
  std::shared_ptr<correlate::Engine> previous;
  for (const std::string& file : *files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      return absl::NotFoundError(
          absl::StrCat(config.rule_paths_key.text, ": cannot read rule file ", file, ": ",
                       std::strerror(errno), "; give the user vigild runs as read access"));
    }
    std::stringstream text;
    text << in.rdbuf();
    staged->global.files.emplace_back(file, text.str());
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    staged->tenants = tenants_;
    staged->base_generation = generation_;
    previous = current_;
  }
  if (absl::Status st = refreshParse(*map, key, std::string(kAllTenants), staged->global);
      !st.ok()) {
    return st;
  }
  for (auto& [tenant, scope] : staged->tenants) {
    if (absl::Status st = refreshParse(*map, key, tenant, scope); !st.ok()) return st;
  }
  if (std::vector<ContentProblem> broken = brokenGlobalReferences(staged->global, staged->tenants);
      !broken.empty()) {
    return absl::FailedPreconditionError(broken.front().message);
  }
  absl::StatusOr<std::shared_ptr<correlate::Engine>> engine =
      buildAll(std::move(*map), staged->global, staged->tenants, previous);
  if (!engine.ok()) return engine.status();
  staged->engine = std::move(*engine);
  const correlate::RuleSet& rules = staged->engine->rules();
  VIGIL_LOG_INFO("rules loaded files={} detections={} correlations={} logsources={} tenants={}",
                 files->size(), rules.detections.size(), rules.correlations.size(),
                 rules.logsources.size(), staged->tenants.size());
  return std::shared_ptr<const StagedRules>(std::move(staged));
}

std::shared_ptr<correlate::Engine> RuleReloader::buildScope(const DaemonConfig& config,
                                                            const std::string& tenant,
                                                            const ContentFiles& files,
                                                            uint64_t version,
                                                            std::vector<ContentProblem>& problems) {
  absl::StatusOr<correlate::FieldMapping> map = mapping(config);
  if (!map.ok()) {
    problems.push_back({config.config_path, 0, 0, std::string(map.status().message())});
    return nullptr;
  }
  std::shared_ptr<const correlate::ParsedScope> parsed =
      parseScope(*map, tenant, {files.begin(), files.end()}, version, problems);
  if (parsed == nullptr) return nullptr;
  if (parsed->detections.empty() && parsed->correlations.empty()) {
    problems.push_back({"", 0, 0, "the push contains no rule"});
    return nullptr;
  }
  const bool all = tenant == kAllTenants;
  correlate::RuleLoader loader(*map);
  if (!all) {
    // The detection rules for every tenant, so the tenant's references resolve.
    RuleScope global;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      global = global_;
    }
    if (absl::Status st = refreshParse(*map, mappingKey(config), std::string(kAllTenants), global);
        !st.ok()) {
      problems.push_back({"", 0, 0, std::string(st.message())});
      return nullptr;
    }
    correlate::ParsedScope detections;
    detections.detections = global.parsed->detections;
    detections.regexes = global.parsed->regexes;
    loader.addParsed(detections);
  }
  loader.addParsed(*parsed);
  absl::StatusOr<correlate::RuleSet> rules = loader.finish();
  if (!rules.ok()) {
    problems.push_back(problemFor(files, std::string(rules.status().message())));
    return nullptr;
  }
  for (correlate::DetectionRule& rule : rules->detections) {
    if (!all && rule.tenant.empty()) rule.generates_alerts = false;
  }
  return makeEngine(std::move(*rules), all ? version : 0);
}

std::shared_ptr<const StagedRules> RuleReloader::stage(const DaemonConfig& config,
                                                       const std::string& tenant,
                                                       const ContentFiles& files,
                                                       uint64_t version,
                                                       std::vector<ContentProblem>& problems) {
  absl::StatusOr<correlate::FieldMapping> map = mapping(config);
  if (!map.ok()) {
    problems.push_back({config.config_path, 0, 0, std::string(map.status().message())});
    return nullptr;
  }
  const std::string key = mappingKey(config);
  const bool all = tenant == kAllTenants;
  auto staged = std::make_shared<StagedRules>();
  std::shared_ptr<correlate::Engine> previous;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    staged->global = global_;
    staged->tenants = tenants_;
    staged->base_generation = generation_;
    previous = current_;
  }
  if (files.empty()) {
    if (all) {
      problems.push_back({"", 0, 0,
                          "the rules for every tenant cannot be deleted; push a new version "
                          "or activate an older one"});
      return nullptr;
    }
    // A deletion: the tenant's rules and their window state go.
    staged->tenants.erase(tenant);
  } else {
    RuleScope scope;
    scope.files.assign(files.begin(), files.end());
    scope.version = version;
    scope.mapping_key = key;
    scope.parsed = parseScope(*map, tenant, scope.files, version, problems);
    if (scope.parsed == nullptr) return nullptr;
    if (scope.parsed->detections.empty() && scope.parsed->correlations.empty()) {
      problems.push_back({"", 0, 0, "the push contains no rule"});
      return nullptr;
    }
    (all ? staged->global : staged->tenants[tenant]) = std::move(scope);
  }
  // Scopes parsed under another field mapping (after a configuration reload) are parsed
  // again; the others keep their parsed rules.
  absl::Status refreshed = refreshParse(*map, key, std::string(kAllTenants), staged->global);
  for (auto it = staged->tenants.begin(); refreshed.ok() && it != staged->tenants.end(); ++it) {
    refreshed = refreshParse(*map, key, it->first, it->second);
  }
  if (!refreshed.ok()) {
    problems.push_back({"", 0, 0,
                        absl::StrCat("the running rules of another scope no longer parse: ",
                                     refreshed.message())});
    return nullptr;
  }
  if (all) {
    std::vector<ContentProblem> broken = brokenGlobalReferences(staged->global, staged->tenants);
    if (!broken.empty()) {
      problems.insert(problems.end(), broken.begin(), broken.end());
      return nullptr;
    }
  }
  absl::StatusOr<std::shared_ptr<correlate::Engine>> engine =
      buildAll(std::move(*map), staged->global, staged->tenants, previous);
  if (!engine.ok()) {
    problems.push_back(problemFor(files, std::string(engine.status().message())));
    return nullptr;
  }
  staged->engine = std::move(*engine);
  return staged;
}

std::vector<GlobalReference> RuleReloader::globalReferences() const {
  std::shared_ptr<correlate::Engine> engine = current();
  std::vector<GlobalReference> out;
  if (engine == nullptr) return out;
  const correlate::RuleSet& rules = engine->rules();
  for (const correlate::CorrelationRule& rule : rules.correlations) {
    if (rule.tenant.empty()) continue;
    for (size_t i = 0; i < rule.detections.size(); ++i) {
      const uint32_t target = rule.detections[i];
      if (target == correlate::kNoRule || !rules.detections[target].tenant.empty()) continue;
      out.push_back({rule.tenant, correlate::ruleLabel(rule.id, rule.title), rule.file,
                     i < rule.rule_ref_lines.size() ? rule.rule_ref_lines[i] : rule.line,
                     rule.rule_refs[i]});
    }
  }
  return out;
}

absl::Status RuleReloader::activate(std::shared_ptr<const StagedRules> staged,
                                    std::string_view reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto counter = [this](std::string_view result) -> Counter& {
    return metrics_.counter(kReloadsName, kReloadsHelp, {{"result", std::string(result)}});
  };
  if (staged->base_generation != generation_) {
    counter("failed").add();
    return absl::FailedPreconditionError(
        "another rule set was activated while this one was compiled; push or reload again");
  }
  const std::shared_ptr<correlate::Engine>& engine = staged->engine;
  if (slot_ == nullptr) {
    slot_ = std::make_unique<correlate::EngineSlot>(engine);
  } else {
    correlate::Engine::RuleDiff diff = engine->diffCorrelations(*current_);
    if (absl::Status st = slot_->publish(engine); !st.ok()) {
      counter("failed").add();
      return st;
    }
    counter("ok").add();
    const char* help = "Correlation rules at a rule reload, by outcome: kept (state carried "
                       "over), changed or removed (state dropped), added";
    metrics_.counter("vigil_rules_reload_rules_total", help, {{"outcome", "kept"}}).add(diff.kept);
    metrics_.counter("vigil_rules_reload_rules_total", help, {{"outcome", "changed"}})
        .add(diff.changed);
    metrics_.counter("vigil_rules_reload_rules_total", help, {{"outcome", "removed"}})
        .add(diff.removed);
    metrics_.counter("vigil_rules_reload_rules_total", help, {{"outcome", "added"}})
        .add(diff.added);
    // kept ... added count correlation rules only: detection rules hold no state.
    VIGIL_LOG_INFO(
        "rules reloaded reason={} rules_version={} tenants={} detections={} "
        "correlations={} correlations_kept={} correlations_changed={} "
        "correlations_removed={} correlations_added={}",
        reason, engine->options().rules_version, staged->tenants.size(),
        engine->rules().detections.size(), engine->rules().correlations.size(), diff.kept,
        diff.changed, diff.removed, diff.added);
  }
  current_ = engine;
  global_ = staged->global;
  tenants_ = staged->tenants;
  ++generation_;
  return absl::OkStatus();
}

std::shared_ptr<correlate::Engine> RuleReloader::current() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return current_;
}

void RuleReloader::countFailure() {
  metrics_.counter(kReloadsName, kReloadsHelp, {{"result", "failed"}}).add();
}

}  // namespace vigil::mgmt

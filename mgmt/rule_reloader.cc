#include "mgmt/rule_reloader.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "correlate/rules.h"

namespace vigil::mgmt {

absl::StatusOr<std::vector<std::string>> expandRulePaths(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const std::string& path : paths) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      std::vector<std::string> found;
      std::filesystem::recursive_directory_iterator it(path, ec);
      for (; !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        std::string ext = it->path().extension().string();
        if (it->is_regular_file() && (ext == ".yml" || ext == ".yaml")) {
          found.push_back(it->path().string());
        }
      }
      if (ec) {
        return absl::FailedPreconditionError(
            absl::StrCat("rules.paths: cannot read folder ", path, ": ", ec.message()));
      }
      if (found.empty()) {
        return absl::NotFoundError(absl::StrCat(
            "rules.paths: folder ", path,
            " contains no *.yml or *.yaml file (sub-folders included); check the path"));
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (std::filesystem::is_regular_file(path, ec)) {
      files.push_back(path);
    } else {
      return absl::NotFoundError(absl::StrCat("rules.paths: ", path,
                                              " is neither a rule file nor a folder"));
    }
  }
  return files;
}

RuleReloader::RuleReloader(const DaemonConfig& config, MetricsRegistry& metrics)
    : metrics_(metrics) {
  options_.max_keys = config.max_keys_per_rule;
  options_.max_keys_per_tenant = config.max_keys_per_tenant;
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

std::shared_ptr<correlate::Engine> RuleReloader::makeEngine(correlate::RuleSet rules,
                                                            uint64_t version) {
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
  return std::make_shared<correlate::Engine>(std::move(shared), options, &metrics_);
}

absl::StatusOr<std::shared_ptr<correlate::Engine>> RuleReloader::buildAll(
    const DaemonConfig& config, const RuleScope& global,
    const std::map<std::string, RuleScope>& tenants) {
  absl::StatusOr<correlate::FieldMapping> map = mapping(config);
  if (!map.ok()) return map.status();
  correlate::RuleLoader loader(std::move(*map));
  loader.setScope("", global.version);
  for (const auto& [origin, text] : global.files) {
    if (absl::Status st = loader.addText(text, origin); !st.ok()) return st;
  }
  for (const auto& [tenant, scope] : tenants) {
    loader.setScope(tenant, scope.version);
    for (const auto& [origin, text] : scope.files) {
      if (absl::Status st = loader.addText(text, origin); !st.ok()) {
        return absl::FailedPreconditionError(
            absl::StrCat("rules of tenant ", tenant, " version ", scope.version, ": ", st.message()));
      }
    }
  }
  absl::StatusOr<correlate::RuleSet> rules = loader.finish();
  if (!rules.ok()) return rules.status();
  return makeEngine(std::move(*rules), global.version);
}

absl::StatusOr<std::shared_ptr<const StagedRules>> RuleReloader::stageFromPaths(
    const DaemonConfig& config) {
  auto files = expandRulePaths(config.rule_paths);
  if (!files.ok()) return files.status();
  auto staged = std::make_shared<StagedRules>();
  for (const std::string& file : *files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read rule file ", file));
    std::stringstream text;
    text << in.rdbuf();
    staged->global.files.emplace_back(file, text.str());
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    staged->tenants = tenants_;
    staged->base_generation = generation_;
  }
  absl::StatusOr<std::shared_ptr<correlate::Engine>> engine =
      buildAll(config, staged->global, staged->tenants);
  if (!engine.ok()) return engine.status();
  staged->engine = std::move(*engine);
  const correlate::RuleSet& rules = staged->engine->rules();
  VIGIL_LOG_INFO("rules loaded files={} detections={} correlations={} logsources={} tenants={}",
                 files->size(), rules.detections.size(), rules.correlations.size(),
                 rules.logsources.size(), staged->tenants.size());
  return std::shared_ptr<const StagedRules>(std::move(staged));
}

std::optional<correlate::RuleSet> RuleReloader::compileScope(
    const DaemonConfig& config, const std::string& tenant, const ContentFiles& files,
    uint64_t version, std::vector<ContentProblem>& problems) {
  absl::StatusOr<correlate::FieldMapping> map = mapping(config);
  if (!map.ok()) {
    problems.push_back({config.config_path, 0, 0, std::string(map.status().message())});
    return std::nullopt;
  }
  correlate::RuleLoader loader(std::move(*map));
  loader.setScope(tenant == kAllTenants ? "" : tenant, version);
  // Every file is loaded, so one push reports the errors of all of them.
  for (const auto& [path, text] : files) {
    if (absl::Status st = loader.addText(text, path); !st.ok()) {
      problems.push_back(problemFromMessage(path, std::string(st.message())));
    }
  }
  if (!problems.empty()) return std::nullopt;
  auto rules = loader.finish();
  if (!rules.ok()) {
    // Reference errors start with "<path> document N"; name the file when one matches.
    std::string message(rules.status().message());
    std::string file;
    for (const auto& [path, text] : files) {
      if (message.starts_with(path) && path.size() > file.size()) file = path;
    }
    problems.push_back({file, 0, 0, message});
    return std::nullopt;
  }
  if (rules->detections.empty() && rules->correlations.empty()) {
    problems.push_back({"", 0, 0, "the push contains no rule"});
    return std::nullopt;
  }
  return std::move(*rules);
}

std::shared_ptr<correlate::Engine> RuleReloader::buildScope(const DaemonConfig& config,
                                                            const std::string& tenant,
                                                            const ContentFiles& files,
                                                            uint64_t version,
                                                            std::vector<ContentProblem>& problems) {
  std::optional<correlate::RuleSet> rules = compileScope(config, tenant, files, version, problems);
  if (!rules) return nullptr;
  return makeEngine(std::move(*rules), tenant == kAllTenants ? version : 0);
}

std::shared_ptr<const StagedRules> RuleReloader::stage(const DaemonConfig& config,
                                                       const std::string& tenant,
                                                       const ContentFiles& files,
                                                       uint64_t version,
                                                       std::vector<ContentProblem>& problems) {
  if (!compileScope(config, tenant, files, version, problems)) return nullptr;
  auto staged = std::make_shared<StagedRules>();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    staged->global = global_;
    staged->tenants = tenants_;
    staged->base_generation = generation_;
  }
  RuleScope scope{{files.begin(), files.end()}, version};
  if (tenant == kAllTenants) {
    staged->global = std::move(scope);
  } else {
    staged->tenants[tenant] = std::move(scope);
  }
  absl::StatusOr<std::shared_ptr<correlate::Engine>> engine =
      buildAll(config, staged->global, staged->tenants);
  if (!engine.ok()) {
    problems.push_back({"", 0, 0,
                        absl::StrCat("the rules compile alone but not with the running rules "
                                     "of the other scopes: ",
                                     engine.status().message())});
    return nullptr;
  }
  staged->engine = std::move(*engine);
  return staged;
}

absl::Status RuleReloader::activate(std::shared_ptr<const StagedRules> staged,
                                    std::string_view reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto counter = [this](std::string_view result) -> Counter& {
    return metrics_.counter("vigil_rules_reloads_total",
                            "Rule set activations after startup, by result",
                            {{"result", std::string(result)}});
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
    VIGIL_LOG_INFO("rules reloaded reason={} rules_version={} tenants={} detections={} "
                   "correlations={} kept={} changed={} removed={} added={}",
                   reason, engine->options().rules_version, staged->tenants.size(),
                   engine->rules().detections.size(), engine->rules().correlations.size(),
                   diff.kept, diff.changed, diff.removed, diff.added);
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
  metrics_
      .counter("vigil_rules_reloads_total", "Rule set activations after startup, by result",
               {{"result", "failed"}})
      .add();
}

}  // namespace vigil::mgmt

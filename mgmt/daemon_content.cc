// The daemon's content store and configuration reloads: pushed rules, analyst
// indicators and playbooks, SIGHUP and POST /api/v1/config/reload.
#include <filesystem>
#include <system_error>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "correlate/engine.h"
#include "mgmt/api_server.h"
#include "mgmt/content_service.h"
#include "mgmt/content_store.h"
#include "mgmt/daemon.h"
#include "mgmt/intel_manager.h"
#include "mgmt/playbook_runner.h"
#include "mgmt/rule_reloader.h"

namespace vigil::mgmt {
namespace {

// One configuration key (or group of keys) and whether a reload applies it live.
struct KeyCheck {
  const char* key;
  bool live;
  bool (*changed)(const DaemonConfig&, const DaemonConfig&);
};

// Every key loadConfig() reads. The rules.* and intel.* keys, except intel.refresh_s,
// and daemon.log_level are applied live; the rest are read at start only.
constexpr KeyCheck kKeys[] = {
    {"daemon.log_level", true, [](const auto& a, const auto& b) { return a.log_level != b.log_level; }},
    {"daemon.drain_timeout_s", false,
     [](const auto& a, const auto& b) { return a.drain_timeout_s != b.drain_timeout_s; }},
    {"daemon.state_dir", false, [](const auto& a, const auto& b) { return a.state_dir != b.state_dir; }},
    {"pipeline.workers", false, [](const auto& a, const auto& b) { return a.workers != b.workers; }},
    {"pipeline.shards", false, [](const auto& a, const auto& b) { return a.shards != b.shards; }},
    {"pipeline.batch_size", false,
     [](const auto& a, const auto& b) { return a.batch_size != b.batch_size; }},
    {"pipeline.max_keys_per_rule", false,
     [](const auto& a, const auto& b) { return a.max_keys_per_rule != b.max_keys_per_rule; }},
    {"pipeline.max_keys_per_tenant", false,
     [](const auto& a, const auto& b) { return a.max_keys_per_tenant != b.max_keys_per_tenant; }},
    {"pipeline.default_utc_offset_s", false,
     [](const auto& a, const auto& b) { return a.default_utc_offset_s != b.default_utc_offset_s; }},
    {"pipeline.checkpoint_interval_s", false,
     [](const auto& a, const auto& b) { return a.checkpoint_interval_s != b.checkpoint_interval_s; }},
    {"pipeline.allowed_lateness_s", false,
     [](const auto& a, const auto& b) { return a.allowed_lateness_s != b.allowed_lateness_s; }},
    {"sources", false, [](const auto& a, const auto& b) { return a.sources != b.sources; }},
    {"tenants", false, [](const auto& a, const auto& b) { return a.tenant_rules != b.tenant_rules; }},
    {"tenant_quotas", false,
     [](const auto& a, const auto& b) { return a.tenant_quotas != b.tenant_quotas; }},
    {"intel.lists", true, [](const auto& a, const auto& b) { return a.intel_lists != b.intel_lists; }},
    {"intel.warninglists", true,
     [](const auto& a, const auto& b) { return a.intel_warninglists != b.intel_warninglists; }},
    {"intel.min_ipv4_prefix_len", true,
     [](const auto& a, const auto& b) {
       return a.intel_min_ipv4_prefix_len != b.intel_min_ipv4_prefix_len;
     }},
    {"intel.min_ipv6_prefix_len", true,
     [](const auto& a, const auto& b) {
       return a.intel_min_ipv6_prefix_len != b.intel_min_ipv6_prefix_len;
     }},
    {"intel.default_confidence", true,
     [](const auto& a, const auto& b) {
       return a.intel_default_confidence != b.intel_default_confidence;
     }},
    {"intel.score_half_life_days", true,
     [](const auto& a, const auto& b) {
       return a.intel_score_half_life_days != b.intel_score_half_life_days;
     }},
    {"intel.fetch_timeout_s", true,
     [](const auto& a, const auto& b) { return a.intel_fetch_timeout_s != b.intel_fetch_timeout_s; }},
    {"intel.refresh_s", false,
     [](const auto& a, const auto& b) { return a.intel_refresh_s != b.intel_refresh_s; }},
    {"rules.paths", true, [](const auto& a, const auto& b) { return a.rule_paths != b.rule_paths; }},
    {"rules.field_mapping", true,
     [](const auto& a, const auto& b) { return a.field_mapping != b.field_mapping; }},
    {"rules.logsources", true,
     [](const auto& a, const auto& b) { return a.logsources != b.logsources; }},
    {"alerts.output", false,
     [](const auto& a, const auto& b) { return a.alerts_output != b.alerts_output; }},
    {"api.enabled", false, [](const auto& a, const auto& b) { return a.api_enabled != b.api_enabled; }},
    {"api.listen", false, [](const auto& a, const auto& b) { return a.api_listen != b.api_listen; }},
    {"api.case_db", false, [](const auto& a, const auto& b) { return a.case_db != b.case_db; }},
    {"api.tls", false,
     [](const auto& a, const auto& b) {
       return a.api_tls_certificate != b.api_tls_certificate ||
              a.api_tls_private_key != b.api_tls_private_key ||
              a.api_tls_client_ca_file != b.api_tls_client_ca_file;
     }},
    {"api.metrics_public_on_loopback", false,
     [](const auto& a, const auto& b) {
       return a.api_metrics_public_on_loopback != b.api_metrics_public_on_loopback;
     }},
    {"cases.evidence_dir", false,
     [](const auto& a, const auto& b) { return a.evidence_dir != b.evidence_dir; }},
    {"cases.evidence_max_bytes", false,
     [](const auto& a, const auto& b) { return a.evidence_max_bytes != b.evidence_max_bytes; }},
    {"cases.sla", false, [](const auto& a, const auto& b) { return a.sla != b.sla; }},
    {"playbooks", false, [](const auto& a, const auto& b) { return a.playbooks != b.playbooks; }},
};

nlohmann::json reportJson(const ConfigReloadReport& report) {
  nlohmann::json j = {{"result", report.ok ? "applied" : "rejected"},
                      {"applied", report.applied},
                      {"restart_required", report.restart_required}};
  if (!report.error.empty()) j["error"] = report.error;
  return j;
}

}  // namespace

DaemonConfig Daemon::liveConfig() const {
  std::lock_guard<std::mutex> lock(live_config_mutex_);
  return live_config_;
}

absl::Status Daemon::startContent() {
  {
    std::lock_guard<std::mutex> lock(live_config_mutex_);
    live_config_ = config_;
  }
  std::error_code ec;
  std::filesystem::create_directories(config_.state_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create daemon.state_dir ", config_.state_dir, ": ", ec.message()));
  }
  const std::string path = (std::filesystem::path(config_.state_dir) / "content.db").string();
  auto store = ContentStore::open(path);
  if (!store.ok()) return store.status();
  content_store_ = std::move(*store);
  ContentServiceOptions options;
  // The token check fills ApiRequest::principal before content routes run.
  options.allow_unauthenticated = false;
  content_ = std::make_unique<ContentService>(*content_store_, metrics_, options);
  content_->setActivator(ContentKind::kRules,
                         rulesActivator(*rules_, [this] { return liveConfig(); }));
  content_->setActivator(ContentKind::kIntel, intelActivator(*intel_));
  content_->setActivator(ContentKind::kPlaybooks, playbooksActivator(playbookActivation()));
  for (ContentKind kind : {ContentKind::kRules, ContentKind::kIntel, ContentKind::kPlaybooks}) {
    // Every intel push, rollback and analyst list change is saved with the analyst lists,
    // so the saved lists are newer than the stored active versions. Loading those again
    // would drop the indicators added through the API since the last push.
    if (kind == ContentKind::kIntel && intel_->analystListsRestored()) {
      VIGIL_LOG_INFO(
          "stored intel content not loaded again, because the saved analyst lists "
          "already contain it path={}",
          intel_->analystListPath());
      continue;
    }
    size_t restored = content_->restoreActive(kind);
    if (restored > 0) {
      VIGIL_LOG_INFO("stored content replaces configured content kind={} tenants={} store={}",
                     contentKindName(kind), restored, path);
    }
  }
  return absl::OkStatus();
}

PlaybookActivation Daemon::playbookActivation() {
  PlaybookActivation activation;
  activation.tenant_scoped = true;
  activation.all_tenants_scope = true;
  if (runner_ == nullptr || !config_.playbooks.section) {
    VIGIL_LOG_INFO("pushed playbooks are stored and not run, because the configuration has "
                   "no playbooks section; add one to run them");
    return activation;
  }
  PlaybookRunner* runner = runner_.get();
  activation.check = [runner](const PlaybookBundle& bundle,
                              std::vector<ContentProblem>& problems) {
    runner->checkPushed(bundle, problems);
  };
  activation.listener = [runner](std::shared_ptr<const PlaybookBundle> bundle) {
    return runner->activatePushed(*bundle);
  };
  return activation;
}

absl::Status Daemon::reloadRules(const DaemonConfig& config, std::string_view reason) {
  auto from_paths = [&]() -> absl::Status {
    absl::StatusOr<std::shared_ptr<const StagedRules>> staged = rules_->stageFromPaths(config);
    if (!staged.ok()) {
      rules_->countFailure();
      return staged.status();
    }
    return rules_->activate(std::move(*staged), reason);
  };
  if (content_ == nullptr) return from_paths();
  absl::Status status = content_->refresh(ContentKind::kRules, std::string(kAllTenants), from_paths);
  return status;
}

Counter& Daemon::configReloadCounter(std::string_view result) {
  return metrics_.counter("vigil_config_reloads_total",
                          "Configuration reloads, by result: applied, or rejected (old "
                          "configuration kept)",
                          {{"result", std::string(result)}});
}

ConfigReloadReport Daemon::reloadConfig(std::string_view reason) {
  std::lock_guard<std::mutex> reload_lock(reload_mutex_);
  ConfigReloadReport report;
  auto count = [this](std::string_view result) { configReloadCounter(result).add(); };
  absl::StatusOr<DaemonConfig> next = loadConfig(config_.config_path);
  if (!next.ok()) {
    report.error = std::string(next.status().message());
    count("rejected");
    VIGIL_LOG_ERROR(
        "configuration reload rejected, keeping the running configuration "
        "reason={} error=\"{}\"",
        reason, logText(report.error));
    return report;
  }
  const DaemonConfig previous = liveConfig();
  // The rules are compiled first: a rule error rejects the whole file, like at start.
  {
    std::lock_guard<std::mutex> lock(live_config_mutex_);
    live_config_.rule_paths = next->rule_paths;
    live_config_.rule_paths_key = next->rule_paths_key;
    live_config_.field_mapping = next->field_mapping;
    live_config_.logsources = next->logsources;
  }
  if (absl::Status st = reloadRules(*next, reason); !st.ok()) {
    std::lock_guard<std::mutex> lock(live_config_mutex_);
    live_config_ = previous;
    report.error = std::string(st.message());
    count("rejected");
    VIGIL_LOG_ERROR(
        "configuration reload rejected, keeping the running configuration "
        "reason={} error=\"{}\"",
        reason, logText(report.error));
    return report;
  }
  for (const KeyCheck& check : kKeys) {
    // Restart-only keys are compared with what the daemon started with.
    const DaemonConfig& base = check.live ? previous : config_;
    if (!check.changed(base, *next)) continue;
    (check.live ? report.applied : report.restart_required).push_back(check.key);
  }
  {
    std::lock_guard<std::mutex> lock(live_config_mutex_);
    live_config_.log_level = next->log_level;
    live_config_.intel_lists = next->intel_lists;
    live_config_.intel_warninglists = next->intel_warninglists;
  }
  if (next->log_level != previous.log_level) initLogging(next->log_level);
  if (intel_ != nullptr) {
    intel_->setFeedConfig(*next);
    intel_->requestReload(std::string(reason));
  }
  report.ok = true;
  count("applied");
  VIGIL_LOG_INFO("configuration reloaded reason={} applied=[{}] restart_required=[{}]", reason,
                 absl::StrJoin(report.applied, ","), absl::StrJoin(report.restart_required, ","));
  return report;
}

void Daemon::addConfigRoutes() {
  api_->addRoute("POST", "/api/v1/config/reload",
                 [this](const ApiRequest& request) -> absl::StatusOr<ApiResponse> {
                   if (request.principal.authenticated() && !request.principal.allTenants()) {
                     return absl::PermissionDeniedError(
                         "only the admin role may reload the configuration");
                   }
                   if (!request.query.empty()) {
                     return absl::InvalidArgumentError("this route takes no query parameters");
                   }
                   ConfigReloadReport report = reloadConfig("api");
                   ApiResponse response;
                   response.status = report.ok ? 200 : 422;
                   nlohmann::json body = reportJson(report);
                   if (!report.ok) {
                     body["error"] = {{"code", "invalid_config"}, {"message", report.error}};
                   }
                   response.body = body.dump(-1, ' ', false,
                                             nlohmann::json::error_handler_t::replace);
                   return response;
                 });
}

}  // namespace vigil::mgmt

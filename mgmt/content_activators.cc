#include "mgmt/content_activators.h"

#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/event.h"
#include "correlate/alert.h"
#include "correlate/engine.h"
#include "correlate/rules.h"
#include "dataplane/parser.h"
#include "intel/builder.h"
#include "intel/indicator_set.h"
#include "intel/matcher.h"
#include "mgmt/intel_manager.h"
#include "mgmt/rule_reloader.h"
#include "playbook_vm/compiler/alert_host.h"
#include "playbook_vm/compiler/compiler.h"
#include "playbook_vm/compiler/dry_run.h"
#include "playbook_vm/program.h"
#include "playbook_vm/vm.h"

namespace vigil::mgmt {
namespace {

namespace pb = vigil::playbook_vm;
namespace pbc = vigil::playbook_vm::compiler;

// Largest dry-run sample, in events or alerts.
constexpr size_t kMaxSample = 10000;
// Arena per dry-run event: the raw line is copied once and decoded values again.
constexpr size_t kArenaPerLineFactor = 3;
constexpr size_t kArenaHeadroom = 4096;

absl::Status checkSample(const nlohmann::json& sample) {
  if (!sample.is_array()) return absl::InvalidArgumentError("\"events\" must be an array");
  if (sample.size() > kMaxSample) {
    return absl::InvalidArgumentError(absl::StrCat("the sample has ", sample.size(),
                                                   " entries; the maximum is ", kMaxSample));
  }
  return absl::OkStatus();
}

// Runs `engine` over the sample events and returns every alert, in order. Each event is
// parsed as live ingest parses it: received at `receive_ns` (the year of an RFC 3164
// timestamp comes from it) with `options`. Events without a tenant get `default_tenant`.
absl::StatusOr<nlohmann::json> runRules(correlate::Engine& engine, const nlohmann::json& sample,
                                        const std::string& default_tenant,
                                        const dataplane::ParseOptions& options,
                                        int64_t receive_ns) {
  correlate::DetectScratch scratch(engine.rules());
  nlohmann::json alerts = nlohmann::json::array();
  for (size_t i = 0; i < sample.size(); ++i) {
    const nlohmann::json& item = sample[i];
    std::string raw;
    std::string tenant = default_tenant;
    if (item.is_string()) {
      raw = item.get<std::string>();
    } else if (item.is_object() && item.contains("raw") && item["raw"].is_string()) {
      raw = item["raw"].get<std::string>();
      if (auto t = item.find("tenant"); t != item.end()) {
        if (!t->is_string()) {
          return absl::InvalidArgumentError(absl::StrCat("events[", i, "].tenant must be a string"));
        }
        tenant = t->get<std::string>();
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "events[", i, "] must be a raw log line or {\"raw\": LINE, \"tenant\": NAME}"));
    }
    Event event(raw.size() * kArenaPerLineFactor + kArenaHeadroom);
    event.raw = event.arena.copy(raw);
    event.tenant = event.arena.copy(tenant);
    event.receive_ns = receive_ns;
    dataplane::parseEvent(event, options);
    std::vector<correlate::Alert> out;
    engine.process(event, scratch, out);
    for (const correlate::Alert& alert : out) {
      if (!engine.admitAlert(alert)) continue;
      nlohmann::json j = nlohmann::json::parse(correlate::alertToJson(alert));
      j["event"] = i;
      alerts.push_back(std::move(j));
    }
  }
  return nlohmann::json{{"events", sample.size()}, {"alerts", alerts}};
}

// The analyst list of a push: its files joined in path order, each line tagged with its
// file and line in the report's locations.
ContentCommit checkIntel(const ContentFiles& files, std::vector<ContentProblem>& problems,
                         std::string& joined) {
  for (const auto& [path, text] : files) {
    intel::IndicatorSetBuilder check;
    absl::StatusOr<intel::LoadReport> report = check.addListText("analyst", text, path);
    if (!report.ok()) {
      problems.push_back({path, 0, 0, std::string(report.status().message())});
      continue;
    }
    for (const intel::Rejection& r : report->rejections) {
      ContentProblem p = problemFromMessage(path, r.location + ": " + r.reason);
      if (!r.text.empty()) p.message += absl::StrCat(" (line: ", r.text, ")");
      problems.push_back(std::move(p));
    }
    if (report->rejected > report->rejections.size()) {
      problems.push_back({path, 0, 0,
                          absl::StrCat(report->rejected - report->rejections.size(),
                                       " more lines rejected")});
    }
    joined += text;
    if (!text.empty() && text.back() != '\n') joined.push_back('\n');
  }
  return {};
}

// Reads sample entry `index` of an intel dry run: a raw log line, or an object with
// "raw" (the line) and an optional "tenant".
absl::Status intelSampleEntry(const nlohmann::json& item, size_t index, std::string& raw,
                              std::string& tenant) {
  if (item.is_string()) {
    raw = item.get<std::string>();
    return absl::OkStatus();
  }
  auto raw_member = item.is_object() ? item.find("raw") : item.end();
  if (!item.is_object() || raw_member == item.end() || !raw_member->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "events[", index, "] must be a raw log line or {\"raw\": LINE, \"tenant\": NAME}"));
  }
  raw = raw_member->get<std::string>();
  if (auto t = item.find("tenant"); t != item.end()) {
    if (!t->is_string()) {
      return absl::InvalidArgumentError(absl::StrCat("events[", index, "].tenant must be a string"));
    }
    tenant = t->get<std::string>();
  }
  return absl::OkStatus();
}

// Parses each sample event as the pipeline does and matches it against `set`, which is
// built for this dry run only, so no live snapshot and no sighting counter changes.
// Returns every match with the index of its event, and the events that had more
// matches than an event holds.
absl::StatusOr<nlohmann::json> matchIntel(const intel::IndicatorSet& set,
                                          const nlohmann::json& sample,
                                          const std::string& request_tenant) {
  intel::Scratch scratch(set);
  dataplane::ParseOptions options;
  nlohmann::json matches = nlohmann::json::array();
  nlohmann::json overflowed = nlohmann::json::array();
  size_t matched_events = 0;
  for (size_t i = 0; i < sample.size(); ++i) {
    std::string raw;
    // A tenant's list is tried in that tenant's view: its events, never another tenant's.
    const bool every_tenant = request_tenant == kAllTenants;
    std::string tenant = every_tenant ? std::string("default") : request_tenant;
    if (absl::Status s = intelSampleEntry(sample[i], i, raw, tenant); !s.ok()) return s;
    if (!every_tenant && tenant != request_tenant) {
      return absl::InvalidArgumentError(absl::StrCat(
          "events[", i, "].tenant is '", tenant, "', but the dry run tries the list of tenant ",
          request_tenant, "; leave the tenant out or give ", request_tenant));
    }
    Event event(raw.size() * kArenaPerLineFactor + kArenaHeadroom);
    event.raw = event.arena.copy(raw);
    event.tenant = event.arena.copy(tenant);
    dataplane::parseEvent(event, options);
    intel::matchEvent(set, scratch, event);
    if (event.hit_count > 0) ++matched_events;
    for (size_t h = 0; h < event.hit_count; ++h) {
      const IndicatorHit& hit = event.hits[h];
      matches.push_back({{"event", i},
                         {"tenant", tenant},
                         {"indicator", std::string(hit.indicator)},
                         {"type", std::string(indicatorTypeName(hit.type))},
                         {"feed", std::string(hit.list)},
                         {"field", std::string(hit.field)},
                         {"score", hit.score}});
    }
    if (event.has(kFlagHitsOverflow)) overflowed.push_back(i);
  }
  return nlohmann::json{{"events", sample.size()},
                        {"matched_events", matched_events},
                        {"matches", matches},
                        {"hits_overflow", overflowed}};
}

// The IntelManager tenant of a content request: "" for the list of every tenant.
std::string analystTenant(const std::string& content_tenant) {
  return content_tenant == kAllTenants ? std::string() : content_tenant;
}

const pb::HostRegistry& alertHost() {
  static const pb::HostRegistry* registry = [] {
    auto* r = new pb::HostRegistry();
    // Registering the fixed host functions into an empty registry cannot clash.
    (void)pbc::registerAlertHost(*r);
    return r;
  }();
  return *registry;
}

std::shared_ptr<PlaybookBundle> compilePlaybooks(const ContentRequest& request,
                                                 std::vector<ContentProblem>& problems) {
  auto bundle = std::make_shared<PlaybookBundle>();
  bundle->tenant = request.tenant;
  bundle->version = request.version;
  for (const auto& [path, text] : *request.files) {
    absl::StatusOr<pbc::CompiledPlaybook> compiled = pbc::compilePlaybook(text, path);
    absl::StatusOr<std::unique_ptr<pb::Program>> program =
        compiled.ok() ? pb::loadProgram(compiled->module, alertHost())
                      : absl::StatusOr<std::unique_ptr<pb::Program>>(compiled.status());
    if (!program.ok()) {
      // Load errors carry no file name (compile errors start with it).
      std::string message(program.status().message());
      if (compiled.ok()) message = absl::StrCat(path, ": ", message);
      problems.push_back(problemFromMessage(path, message));
      continue;
    }
    bundle->playbooks.push_back({path, compiled->name, std::move(compiled->module),
                                 std::shared_ptr<const pb::Program>(std::move(*program))});
  }
  if (!problems.empty()) return nullptr;
  return bundle;
}

// Returns the tenant of sample alert `index` when it differs from `content_tenant`, the
// scope of the pushed playbooks, and "" when the alert is in that scope. Content for every
// tenant covers each alert, and an alert without "tenant" counts as the scope's own.
absl::StatusOr<std::string> otherTenant(const nlohmann::json& alert, size_t index,
                                        const std::string& content_tenant) {
  auto tenant = alert.find("tenant");
  if (content_tenant == kAllTenants || tenant == alert.end()) return std::string();
  if (!tenant->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("events[", index, "].tenant must be a string"));
  }
  const std::string name = tenant->get<std::string>();
  return name == content_tenant ? std::string() : name;
}

}  // namespace

ContentActivator rulesActivator(RuleReloader& rules, ConfigSource config) {
  ContentActivator activator;
  activator.tenant_scoped = true;
  activator.all_tenants_scope = true;
  activator.prepare = [&rules, config](const ContentRequest& request,
                                       std::vector<ContentProblem>& problems) -> ContentCommit {
    std::shared_ptr<const StagedRules> staged = rules.stage(
        config(), request.tenant, *request.files, static_cast<uint64_t>(request.version), problems);
    // A push, rollback or restore that does not compile is a failed reload, as a SIGHUP
    // reload of the same files is.
    if (staged == nullptr || !problems.empty()) rules.countFailure();
    if (staged == nullptr) return {};
    return [&rules, staged, tenant = request.tenant, version = request.version]() {
      return rules.activate(staged, absl::StrCat("content version ", version, " tenant ", tenant));
    };
  };
  activator.deletable = true;
  activator.remove_item = [](const ContentFiles& files,
                             const std::string& rule) -> absl::StatusOr<ContentFiles> {
    ContentFiles rest;
    size_t removed = 0;
    for (const auto& [path, text] : files) {
      size_t here = 0;
      absl::StatusOr<std::string> kept = correlate::withoutRule(text, path, rule, here);
      if (!kept.ok()) return kept.status();
      removed += here;
      // A file left with no rule goes; the others keep their remaining rules.
      if (here == 0) {
        rest.emplace(path, text);
      } else if (kept->find_first_not_of(" \t\r\n") != std::string::npos) {
        rest.emplace(path, std::move(*kept));
      }
    }
    if (removed == 0) {
      return absl::NotFoundError(absl::StrCat("no active rule has id (or, without an id, title) '",
                                              rule, "'; list the rules with GET "
                                              "/api/v1/content/rules/versions/N"));
    }
    return rest;
  };
  activator.dry_run = [&rules, config](const ContentRequest& request, const nlohmann::json& sample,
                                       std::vector<ContentProblem>& problems)
      -> absl::StatusOr<nlohmann::json> {
    if (absl::Status s = checkSample(sample); !s.ok()) return s;
    const DaemonConfig live = config();
    std::shared_ptr<correlate::Engine> engine =
        rules.buildScope(live, request.tenant, *request.files, 0, problems);
    if (engine == nullptr) return nlohmann::json();
    const std::string default_tenant =
        request.tenant == kAllTenants ? std::string("default") : request.tenant;
    // The options vigild's pipeline parses with; the sample is received now.
    dataplane::ParseOptions options;
    options.default_utc_offset_s = live.default_utc_offset_s;
    return runRules(*engine, sample, default_tenant, options, RealClock::instance().nowNs());
  };
  return activator;
}

ContentActivator intelActivator(IntelManager& intel) {
  ContentActivator activator;
  activator.tenant_scoped = true;
  activator.all_tenants_scope = true;
  activator.prepare = [&intel](const ContentRequest& request,
                               std::vector<ContentProblem>& problems) -> ContentCommit {
    std::string joined;
    checkIntel(*request.files, problems, joined);
    if (!problems.empty()) return {};
    return [&intel, joined, tenant = analystTenant(request.tenant)]() {
      return intel.replaceIndicators(tenant, joined).status();
    };
  };
  activator.dry_run = [](const ContentRequest& request, const nlohmann::json& sample,
                         std::vector<ContentProblem>& problems) -> absl::StatusOr<nlohmann::json> {
    if (absl::Status s = checkSample(sample); !s.ok()) return s;
    std::string joined;
    checkIntel(*request.files, problems, joined);
    if (!problems.empty()) return nlohmann::json();
    // The same list name, tenant and builder defaults as the analyst list that a push
    // replaces.
    intel::IndicatorSetBuilder builder;
    absl::Status scoped = builder.setTenant(analystTenant(request.tenant));
    absl::StatusOr<intel::LoadReport> report =
        scoped.ok() ? builder.addListText("analyst", joined, "analyst")
                    : absl::StatusOr<intel::LoadReport>(scoped);
    absl::StatusOr<std::shared_ptr<const intel::IndicatorSet>> set =
        report.ok() ? builder.build()
                    : absl::StatusOr<std::shared_ptr<const intel::IndicatorSet>>(report.status());
    if (!set.ok()) {
      // The files passed the line checks, so what is left is a build failure of the set.
      problems.push_back({"", 0, 0, std::string(set.status().message())});
      return nlohmann::json();
    }
    return matchIntel(**set, sample, request.tenant);
  };
  return activator;
}

ContentActivator playbooksActivator(PlaybookListener listener, bool tenant_scoped) {
  PlaybookActivation activation;
  activation.listener = std::move(listener);
  activation.tenant_scoped = tenant_scoped;
  return playbooksActivator(std::move(activation));
}

ContentActivator playbooksActivator(PlaybookActivation activation) {
  ContentActivator activator;
  activator.tenant_scoped = activation.tenant_scoped;
  activator.all_tenants_scope = activation.all_tenants_scope;
  activator.prepare = [listener = activation.listener, check = activation.check](
                          const ContentRequest& request,
                          std::vector<ContentProblem>& problems) -> ContentCommit {
    std::shared_ptr<PlaybookBundle> bundle = compilePlaybooks(request, problems);
    if (bundle == nullptr) return {};
    if (check) check(*bundle, problems);
    if (!problems.empty()) return {};
    return [listener, bundle]() -> absl::Status {
      return listener ? listener(bundle) : absl::OkStatus();
    };
  };
  // A deletion activates the remaining files; an empty set leaves the scope with no pushed
  // playbooks. Runs of a deleted playbook that wait keep their version (programFor()).
  activator.deletable = true;
  activator.remove_item = [](const ContentFiles& files,
                             const std::string& name) -> absl::StatusOr<ContentFiles> {
    ContentFiles rest;
    size_t removed = 0;
    for (const auto& [path, text] : files) {
      // The stored files compiled when they were activated, so the name is there.
      absl::StatusOr<pbc::CompiledPlaybook> compiled = pbc::compilePlaybook(text, path);
      if (compiled.ok() && compiled->name == name) {
        ++removed;
        continue;
      }
      rest.emplace(path, text);
    }
    if (removed == 0) {
      return absl::NotFoundError(absl::StrCat("no active playbook is named '", name,
                                              "'; list them with GET "
                                              "/api/v1/content/playbooks/versions/N"));
    }
    return rest;
  };
  activator.dry_run = [](const ContentRequest& request, const nlohmann::json& sample,
                         std::vector<ContentProblem>& problems)
      -> absl::StatusOr<nlohmann::json> {
    if (absl::Status s = checkSample(sample); !s.ok()) return s;
    std::shared_ptr<PlaybookBundle> bundle = compilePlaybooks(request, problems);
    if (bundle == nullptr) return nlohmann::json();
    nlohmann::json runs = nlohmann::json::array();
    for (size_t i = 0; i < sample.size(); ++i) {
      if (!sample[i].is_object()) {
        return absl::InvalidArgumentError(absl::StrCat("events[", i, "] must be an alert object"));
      }
      absl::StatusOr<std::string> other_tenant = otherTenant(sample[i], i, request.tenant);
      if (!other_tenant.ok()) return other_tenant.status();
      for (const PlaybookBundle::Playbook& playbook : bundle->playbooks) {
        if (!other_tenant->empty()) {
          // Live runs start a tenant's pushed playbooks only on that tenant's alerts.
          runs.push_back({{"alert", i},
                          {"playbook", playbook.path},
                          {"trigger_matched", false},
                          {"completed", false},
                          {"message", absl::StrCat("not run: the alert is of tenant ",
                                                   *other_tenant, ", and the playbooks of tenant ",
                                                   request.tenant, " run only on its own alerts")},
                          {"actions", nlohmann::json::array()},
                          {"steps", nlohmann::json::array()}});
          continue;
        }
        pbc::DryRunOptions options;
        pbc::DryRunReport report =
            pbc::dryRun(*playbook.program, alertHost(), sample[i], options, nullptr);
        runs.push_back({{"alert", i},
                        {"playbook", playbook.path},
                        {"trigger_matched", report.trigger_matched},
                        {"completed", report.status == pb::RunStatus::kReturned},
                        {"message", report.message},
                        {"actions", report.actions},
                        {"steps", report.transcript}});
      }
    }
    return nlohmann::json{{"alerts", sample.size()}, {"runs", runs}};
  };
  return activator;
}

}  // namespace vigil::mgmt

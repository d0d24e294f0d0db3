// Latency of one tenant's rule push while many tenants have rules: RuleReloader::stage()
// and activate() for one tenant of kTenants, each with kRulesPerTenant rules (half
// detection, half event_count correlation), plus a small global set. Run it from a
// release build; docs/benchmarks.md records the figures.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/metrics.h"
#include "mgmt/config.h"
#include "mgmt/content_service.h"
#include "mgmt/rule_reloader.h"

namespace {

using vigil::mgmt::ContentFiles;
using vigil::mgmt::ContentProblem;
using vigil::mgmt::DaemonConfig;
using vigil::mgmt::RuleReloader;
using vigil::mgmt::StagedRules;

constexpr int kTenants = 50;
constexpr int kRulesPerTenant = 20;

// One detection rule and one correlation over it, per pair; `salt` changes the
// detection literal so a push changes the rules' definitions.
std::string tenantRules(int tenant, int salt) {
  std::string text;
  for (int pair = 0; pair < kRulesPerTenant / 2; ++pair) {
    absl::StrAppend(&text, "title: login failure ", pair, "\nid: t", tenant, "-d", pair,
                    "\nlogsource: {product: linux}\n"
                    "detection:\n  sel:\n    message|contains: 'failure ",
                    pair, " tenant ", tenant, " salt ", salt,
                    "'\n  condition: sel\n---\n");
    absl::StrAppend(&text, "title: repeated failure ", pair, "\nid: t", tenant, "-c", pair,
                    "\ncorrelation:\n  type: event_count\n  rules: [t", tenant, "-d", pair,
                    "]\n  group-by: [user]\n  timespan: 5m\n  condition: {gte: 3}\n---\n");
  }
  return text;
}

std::string globalRules() {
  return "title: root login\nid: g-root\ndetection:\n  sel:\n    user: root\n"
         "  condition: sel\n";
}

DaemonConfig benchConfig() {
  DaemonConfig config;
  config.shards = 4;
  config.max_keys_per_rule = 4096;
  return config;
}

std::shared_ptr<const StagedRules> stageOrDie(RuleReloader& reloader, const DaemonConfig& config,
                                              const std::string& tenant,
                                              const ContentFiles& files, uint64_t version) {
  std::vector<ContentProblem> problems;
  auto staged = reloader.stage(config, tenant, files, version, problems);
  if (staged == nullptr) {
    std::string message = problems.empty() ? "no rule set" : problems.front().message;
    throw std::runtime_error(absl::StrCat("stage failed: ", message));
  }
  return staged;
}

// Loads kTenants tenants, then times pushes of a changed rule set for tenant 0.
void BM_TenantPush(benchmark::State& state) {
  vigil::MetricsRegistry metrics;
  DaemonConfig config = benchConfig();
  RuleReloader reloader(config, metrics);
  uint64_t version = 1;
  auto first = stageOrDie(reloader, config, std::string(vigil::mgmt::kAllTenants),
                          {{"global.yml", globalRules()}}, version);
  if (!reloader.activate(first, "bench").ok()) state.SkipWithError("activate failed");
  for (int t = 0; t < kTenants; ++t) {
    auto staged = stageOrDie(reloader, config, absl::StrCat("tenant", t),
                             {{"rules.yml", tenantRules(t, 0)}}, ++version);
    if (!reloader.activate(staged, "bench").ok()) state.SkipWithError("activate failed");
  }
  int salt = 1;
  for (auto _ : state) {
    auto staged = stageOrDie(reloader, config, "tenant0", {{"rules.yml", tenantRules(0, salt++)}},
                             ++version);
    if (!reloader.activate(staged, "bench").ok()) state.SkipWithError("activate failed");
    // Free the engine replaced just now inside the timed part: a daemon frees it too.
    staged.reset();
  }
  state.counters["tenants"] = kTenants;
  state.counters["rules_per_tenant"] = kRulesPerTenant;
}
BENCHMARK(BM_TenantPush)->Unit(benchmark::kMillisecond)->Iterations(10);

}  // namespace

BENCHMARK_MAIN();

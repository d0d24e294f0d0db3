// Cost of correlation checkpoints: how long one shard's serial stage pauses to encode its
// state (Engine::saveShard), and how long a restore takes at start.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "common/event.h"
#include "correlate/engine.h"
#include "correlate/rules.h"

namespace {

using vigil::correlate::Engine;

std::shared_ptr<const vigil::correlate::RuleSet> burstRules() {
  vigil::correlate::RuleLoader loader;
  (void)loader.addText(R"(
title: Burst
id: burst
correlation: {type: event_count, rules: [d], group-by: [src_ip], timespan: 60s,
              condition: {gte: 10}}
---
title: D
name: d
detection: {sel: {a: b}, condition: sel}
)",
                       "bench");
  return std::make_shared<vigil::correlate::RuleSet>(std::move(*loader.finish()));
}

vigil::correlate::EngineOptions optionsFor(uint32_t groups) {
  vigil::correlate::EngineOptions options;
  options.max_keys = groups;
  return options;
}

// An engine with one event_count rule (min 10) whose `groups` groups hold 5 events each.
std::unique_ptr<Engine> filledEngine(uint32_t groups) {
  auto engine = std::make_unique<Engine>(burstRules(), optionsFor(groups));
  vigil::Event event(1024);
  event.raw = event.arena.copy("event");
  vigil::correlate::Alert alert;
  for (uint32_t i = 0; i < 5 * groups; ++i) {
    event.src_ip = vigil::IpAddr::fromV4(0x0A000000u + (i % groups));  // 10.0.0.0 + n
    event.timestamp_ns = static_cast<int64_t>(i) * 1'000;
    engine->updateCorrelation(0, 0, event, alert);
  }
  return engine;
}

void BM_Checkpoint_SaveShard(benchmark::State& state) {
  const auto groups = static_cast<uint32_t>(state.range(0));
  std::unique_ptr<Engine> engine = filledEngine(groups);
  std::string out;
  for (auto _ : state) {
    out.clear();
    engine->saveShard(0, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * groups);
  state.counters["bytes"] = static_cast<double>(out.size());
}
BENCHMARK(BM_Checkpoint_SaveShard)->Arg(4096)->Arg(65536)->Unit(benchmark::kMicrosecond);

void BM_Checkpoint_Restore(benchmark::State& state) {
  const auto groups = static_cast<uint32_t>(state.range(0));
  std::unique_ptr<Engine> engine = filledEngine(groups);
  const std::string file = engine->checkpoint();
  auto rules = burstRules();
  for (auto _ : state) {
    state.PauseTiming();
    auto restored = std::make_unique<Engine>(rules, optionsFor(groups));
    state.ResumeTiming();
    if (!restored->restore(file).ok()) state.SkipWithError("restore failed");
    state.PauseTiming();
    restored.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * groups);
}
BENCHMARK(BM_Checkpoint_Restore)->Arg(4096)->Arg(65536)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();

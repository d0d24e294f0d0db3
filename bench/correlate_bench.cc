// Speed of the correlation engine: detection over the SigmaHQ rules that load, and
// window updates of each correlation type.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/event.h"
#include "common/metrics.h"
#include "correlate/engine.h"
#include "correlate/rules.h"

namespace {

using vigil::Event;
using vigil::correlate::Alert;
using vigil::correlate::DetectScratch;
using vigil::correlate::Engine;
using vigil::correlate::FieldMapping;
using vigil::correlate::LogSourceDefinition;
using vigil::correlate::RuleLoader;
using vigil::correlate::RuleSet;

// Loads every SigmaHQ rule file under sigma/rules/windows that the loader supports.
std::shared_ptr<const RuleSet> loadWindowsRules() {
  RuleLoader loader;
  const std::string root = std::string(VIGIL_SHARED_DIR) + "/corpus/sigma/rules/windows";
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (entry.path().extension() != ".yml") continue;
    (void)loader.addFile(entry.path().string());  // unsupported files are skipped
  }
  absl::StatusOr<RuleSet> rules = loader.finish();
  if (!rules.ok()) return std::make_shared<RuleSet>();
  return std::make_shared<RuleSet>(std::move(*rules));
}

void fillProcessEvent(Event& event, int variant) {
  event.reset();
  event.arena.reset();
  event.raw = event.arena.copy("process creation event");
  event.addField("Image", variant % 2 == 0 ? "C:\\Windows\\System32\\cmd.exe"
                                           : "C:\\Users\\alice\\Desktop\\tool.exe");
  event.addField("CommandLine", "cmd.exe /c whoami /all && net user alice /domain");
  event.addField("ParentImage", "C:\\Windows\\explorer.exe");
  event.addField("User", "EXAMPLE\\alice");
  event.addField("EventID", "1");
}

// Evaluates one Sysmon-like process event against every loaded Windows rule.
void BM_Detect_SigmaWindowsRules(benchmark::State& state) {
  auto rules = loadWindowsRules();
  Engine engine(rules, {});
  DetectScratch scratch(*rules);
  Event event(8192);
  std::array<uint32_t, 64> matches;
  size_t matched = 0;
  int variant = 0;
  for (auto _ : state) {
    fillProcessEvent(event, variant++);
    matched += engine.detect(event, scratch, matches);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["rules"] = static_cast<double>(rules->detections.size());
  state.counters["matches_per_event"] =
      static_cast<double>(matched) / static_cast<double>(state.iterations());
  if (rules->detections.empty()) state.SkipWithError("no rules loaded");
}
BENCHMARK(BM_Detect_SigmaWindowsRules);

// Every rule file of the corpus rule folders that loads on its own, sorted by path, with
// rule ids seen earlier left out; at most `limit` rules.
std::shared_ptr<const RuleSet> loadCorpusRules(size_t limit, const FieldMapping& mapping) {
  const std::string root = std::string(VIGIL_SHARED_DIR) + "/corpus/sigma/";
  std::vector<std::string> files;
  for (const char* folder : {"rules", "rules-emerging-threats", "rules-threat-hunting"}) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root + folder)) {
      if (entry.path().extension() == ".yml") files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  RuleLoader all(mapping);
  std::set<std::string> ids;
  size_t count = 0;
  for (const std::string& file : files) {
    if (count == limit) break;
    RuleLoader alone;
    if (!alone.addFile(file).ok()) continue;
    absl::StatusOr<RuleSet> rules = alone.finish();
    if (!rules.ok() || rules->detections.size() != 1 || !rules->correlations.empty()) continue;
    if (!ids.insert(rules->detections[0].id).second) continue;
    if (all.addFile(file).ok()) ++count;
  }
  absl::StatusOr<RuleSet> rules = all.finish();
  if (!rules.ok()) return std::make_shared<RuleSet>();
  return std::make_shared<RuleSet>(std::move(*rules));
}

// Loads one process_creation rule that matches some of the regression events.
std::shared_ptr<const RuleSet> loadOneRule(const FieldMapping& mapping) {
  RuleLoader loader(mapping);
  (void)loader.addFile(std::string(VIGIL_SHARED_DIR) +
                       "/corpus/sigma/rules/windows/process_creation/"
                       "proc_creation_win_findstr_lsass.yml");
  absl::StatusOr<RuleSet> rules = loader.finish();
  if (!rules.ok()) return std::make_shared<RuleSet>();
  return std::make_shared<RuleSet>(std::move(*rules));
}

// Adds the leaves of a Windows event in JSON as generic fields named by their own key;
// XML attributes become "<element>_<attribute>".
void addLeaves(Event& event, const nlohmann::json& node, const std::string& name) {
  if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      if (key == "#attributes") {
        for (const auto& [attribute, inner] : value.items()) {
          addLeaves(event, inner, name + "_" + attribute);
        }
      } else {
        addLeaves(event, value, key);
      }
    }
    return;
  }
  if (node.is_null() || node.is_array()) return;
  std::string text = node.is_string() ? node.get<std::string>() : node.dump();
  event.addField(event.arena.copy(name), event.arena.copy(text));
}

// The recorded Windows events of the corpus regression folders (Sysmon, Security,
// PowerShell and others), each filled into its own Event.
std::vector<std::unique_ptr<Event>> loadRegressionEvents() {
  std::vector<std::unique_ptr<Event>> events;
  const std::string root = std::string(VIGIL_SHARED_DIR) + "/corpus/sigma/regression";
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  for (const std::string& file : files) {
    std::ifstream in(file);
    while (in >> std::ws && in.peek() != EOF) {
      nlohmann::json document;
      in >> document;
      auto event = std::make_unique<Event>(1 << 16);
      event->raw = event->arena.copy(document.dump());
      addLeaves(*event, document, "");
      events.push_back(std::move(event));
    }
  }
  return events;
}

// Log source definitions for the Windows channels of the regression events: the Sysmon
// event ids by category, and Security, Task Scheduler, Defender and WMI by service.
FieldMapping windowsLogSources() {
  FieldMapping mapping = FieldMapping::defaults();
  const std::string sysmon = "Microsoft-Windows-Sysmon/Operational";
  const std::pair<const char*, const char*> kSysmon[] = {
      {"1", "process_creation"}, {"3", "network_connection"}, {"7", "image_load"},
      {"10", "process_access"},  {"11", "file_event"},        {"12", "registry_event"},
      {"13", "registry_set"},    {"17", "pipe_created"},
  };
  for (const auto& [id, category] : kSysmon) {
    LogSourceDefinition definition;
    definition.name = std::string("sysmon_") + category;
    definition.logsource = {"windows", category, "sysmon"};
    definition.conditions = {{"Channel", sysmon}, {"EventID", id}};
    (void)mapping.addLogSource(definition);
  }
  const std::pair<const char*, const char*> kServices[] = {
      {"Security", "security"},
      {"Microsoft-Windows-TaskScheduler/Operational", "taskscheduler"},
      {"Microsoft-Windows-Windows Defender/Operational", "windefend"},
      {"Microsoft-Windows-WMI-Activity/Operational", "wmi"},
  };
  for (const auto& [channel, service] : kServices) {
    LogSourceDefinition definition;
    definition.name = service;
    definition.logsource = {"windows", "", service};
    definition.conditions = {{"Channel", channel}};
    (void)mapping.addLogSource(definition);
  }
  return mapping;
}

// Detection of one recorded Windows event with range(0) rules loaded (1 or 500), with
// the prefilter (range(1) = 1) or evaluating every rule (0), and with the Windows log
// source definitions (range(2) = 1) or none (0).
void BM_Detect_RuleCount(benchmark::State& state) {
  static const std::vector<std::unique_ptr<Event>> events = loadRegressionEvents();
  const FieldMapping mapping =
      state.range(2) == 1 ? windowsLogSources() : FieldMapping::defaults();
  auto rules = state.range(0) == 1
                   ? loadOneRule(mapping)
                   : loadCorpusRules(static_cast<size_t>(state.range(0)), mapping);
  vigil::correlate::EngineOptions options;
  options.prefilter = state.range(1) == 1;
  vigil::MetricsRegistry metrics;
  Engine engine(rules, options, &metrics);
  DetectScratch scratch(*rules);
  std::array<uint32_t, 64> matches;
  size_t matched = 0;
  size_t next = 0;
  for (auto _ : state) {
    matched += engine.detect(*events[next], scratch, matches);
    next = next + 1 == events.size() ? 0 : next + 1;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["rules"] = static_cast<double>(rules->detections.size());
  state.counters["matches_per_event"] =
      static_cast<double>(matched) / static_cast<double>(state.iterations());
  state.counters["evaluations_per_event"] =
      static_cast<double>(metrics.sum("vigil_detection_evaluations_total")) /
      static_cast<double>(state.iterations());
  if (events.empty() || rules->detections.empty()) state.SkipWithError("no events or rules");
  if (static_cast<size_t>(state.iterations()) >= events.size() && matched == 0) {
    state.SkipWithError("no matches");
  }
}
BENCHMARK(BM_Detect_RuleCount)->ArgsProduct({{1, 500}, {1, 0}, {0, 1}});

// Window updates for one event_count rule over `range(0)` distinct source addresses.
void BM_Correlate_EventCount(benchmark::State& state) {
  RuleLoader loader;
  absl::Status status = loader.addText(R"(
title: Burst
correlation: {type: event_count, rules: [d], group-by: [src_ip], timespan: 60s,
              condition: {gte: 10}}
---
title: D
name: d
detection: {sel: {a: b}, condition: sel}
)",
                                       "bench");
  auto rules = std::make_shared<RuleSet>(std::move(*loader.finish()));
  vigil::correlate::EngineOptions options;
  options.max_keys = 4096;
  Engine engine(rules, options);
  const auto groups = static_cast<uint32_t>(state.range(0));
  Event event(1024);
  event.raw = event.arena.copy("event");
  Alert alert;
  uint64_t alerts = 0;
  uint32_t i = 0;
  for (auto _ : state) {
    event.src_ip = vigil::IpAddr::fromV4(0xC0000200u + (i % groups));  // 192.0.2.0 + n
    event.timestamp_ns = static_cast<int64_t>(i) * 1'000'000;
    ++i;
    if (engine.updateCorrelation(0, 0, event, alert)) {
      ++alerts;
      alert = Alert();
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["alerts"] = static_cast<double>(alerts);
  if (!status.ok()) state.SkipWithError(std::string(status.message()).c_str());
  // Each group needs 10 events, so short calibration runs raise none.
  if (state.iterations() > 20 * groups && alerts == 0) state.SkipWithError("no alerts raised");
}
BENCHMARK(BM_Correlate_EventCount)->Arg(16)->Arg(4096);

// One correlation rule of each type over detection rules a and b, grouped by src_ip.
constexpr const char* kTypeRules[] = {
    "{type: value_count, rules: [a], group-by: [src_ip], timespan: 60s,"
    " condition: {field: User, gte: 10}}",
    "{type: temporal, rules: [a, b], group-by: [src_ip], timespan: 60s}",
    "{type: temporal_ordered, rules: [a, b], group-by: [src_ip], timespan: 60s}",
    // A range: windows close on the watermark, which advanceTime() moves per event. The
    // short timespan closes windows within the first 1000 events of a run.
    "{type: event_count, rules: [a], group-by: [src_ip], timespan: 1s,"
    " condition: {gte: 1, lte: 10000}}",
    "{type: value_percentile, rules: [a], group-by: [src_ip], timespan: 60s,"
    " condition: {field: n, percentile: 90, gte: 8}}",
};

// Window updates for the rule kTypeRules[range(0)] over `range(1)` distinct source
// addresses. Events alternate between rules a and b; value_count sees ten users in turn
// and value_percentile the numbers 0 to 9. Rules whose windows close also move the
// watermark with every event.
void BM_Correlate_Type(benchmark::State& state) {
  RuleLoader loader;
  std::string yaml = std::string("title: Corr\ncorrelation: ") + kTypeRules[state.range(0)] +
                     "\n---\ntitle: A\nname: a\ndetection: {sel: {x: a}, condition: sel}\n"
                     "---\ntitle: B\nname: b\ndetection: {sel: {x: b}, condition: sel}\n";
  absl::Status status = loader.addText(yaml, "bench");
  absl::StatusOr<RuleSet> loaded = loader.finish();
  if (!status.ok() || !loaded.ok()) {
    state.SkipWithError("rules did not load");
    return;
  }
  auto rules = std::make_shared<RuleSet>(std::move(*loaded));
  vigil::correlate::EngineOptions options;
  options.max_keys = 4096;
  Engine engine(rules, options);
  const auto groups = static_cast<uint32_t>(state.range(1));
  const bool single_rule = rules->correlations[0].detections.size() == 1;
  static constexpr const char* kUsers[] = {"u0", "u1", "u2", "u3", "u4",
                                           "u5", "u6", "u7", "u8", "u9"};
  static constexpr const char* kNumbers[] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  const bool closes = rules->correlations[0].closes;
  std::vector<Alert> closed;
  Event event(1024);
  Alert alert;
  uint64_t alerts = 0;
  uint32_t i = 0;
  for (auto _ : state) {
    event.reset();
    event.arena.reset();
    event.raw = event.arena.copy("event");
    event.addField("User", kUsers[(i / groups) % 10]);
    event.addField("n", kNumbers[(i / groups) % 10]);
    event.src_ip = vigil::IpAddr::fromV4(0xC0000200u + (i % groups));  // 192.0.2.0 + n
    event.timestamp_ns = static_cast<int64_t>(i) * 1'000'000;
    uint32_t detection = single_rule ? 0 : (i / groups) % 2;
    ++i;
    if (closes) {
      engine.advanceTime(0, event, closed);
      alerts += closed.size();
      closed.clear();
    }
    if (engine.updateCorrelation(0, 0, detection, event, alert)) {
      ++alerts;
      alert = Alert();
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["alerts"] = static_cast<double>(alerts);
  state.counters["bytes_per_group"] =
      static_cast<double>(engine.stateSizes().front().bytes_per_group);
  // Windows that close need the watermark to pass their end: 1000 events of 1 ms.
  if (state.iterations() > 20 * groups + 2000 && alerts == 0) {
    state.SkipWithError("no alerts raised");
  }
}
BENCHMARK(BM_Correlate_Type)->ArgsProduct({{0, 1, 2, 3, 4}, {16, 4096}});

// One threshold (event_count, gte 5) or value_count (gte 3) rule over one million
// distinct source addresses, visited in a scattered order so that nearly every update
// misses the cache. range(0): 0 event_count, 1 value_count. max_keys is one million,
// so once every address was seen the table is full without evicting.
void BM_Correlate_MillionKeys(benchmark::State& state) {
  constexpr uint32_t kKeys = 1u << 20;
  const bool value_count = state.range(0) == 1;
  std::string yaml =
      std::string("title: Corr\ncorrelation: ") +
      (value_count ? "{type: value_count, rules: [a], group-by: [src_ip], timespan: 1h,"
                     " condition: {field: User, gte: 3}}"
                   : "{type: event_count, rules: [a], group-by: [src_ip], timespan: 1h,"
                     " condition: {gte: 5}}") +
      "\n---\ntitle: A\nname: a\ndetection: {sel: {x: a}, condition: sel}\n";
  RuleLoader loader;
  absl::Status status = loader.addText(yaml, "bench");
  absl::StatusOr<RuleSet> loaded = loader.finish();
  if (!status.ok() || !loaded.ok()) {
    state.SkipWithError("rules did not load");
    return;
  }
  auto rules = std::make_shared<RuleSet>(std::move(*loaded));
  vigil::correlate::EngineOptions options;
  options.max_keys = kKeys;
  Engine engine(rules, options);
  static constexpr const char* kUsers[] = {"u0", "u1", "u2", "u3", "u4"};
  Event event(1024);
  Alert alert;
  uint64_t alerts = 0;
  uint64_t i = 0;
  auto update = [&] {
    // An odd multiplier permutes the 2^20 addresses, so consecutive events hit distant
    // apart slots.
    const auto n = static_cast<uint32_t>((i * 0x9E3779B1u) & (kKeys - 1));
    event.reset();
    event.arena.reset();
    event.raw = event.arena.copy("event");
    if (value_count) event.addField("User", kUsers[(i / kKeys) % 5]);
    event.src_ip = vigil::IpAddr::fromV4(0x0A000000u + n);  // 10.0.0.0 + n
    event.timestamp_ns = static_cast<int64_t>(i) * 1'000;
    ++i;
    if (engine.updateCorrelation(0, 0, 0, event, alert)) {
      ++alerts;
      alert = Alert();
    }
  };
  // Untimed: one event per address, so the timed loop runs on a full table.
  while (i < kKeys) update();
  for (auto _ : state) update();
  state.SetItemsProcessed(state.iterations());
  const Engine::StateSize size = engine.stateSizes().front();
  const double groups = static_cast<double>(std::max<size_t>(size.groups, 1));
  state.counters["groups"] = groups;
  state.counters["alerts"] = static_cast<double>(alerts);
  // Slots, window state, index and key blocks per group held; the evidence pool (shared
  // by all groups of the rule) is left out, and reported per group beside it.
  state.counters["bytes_per_key"] =
      static_cast<double>(size.bytes_per_group) + static_cast<double>(size.key_bytes) / groups;
  state.counters["evidence_per_key"] = static_cast<double>(size.evidence_pool_bytes) / groups;
  if (i > 6 * uint64_t{kKeys} && alerts == 0) state.SkipWithError("no alerts raised");
}
BENCHMARK(BM_Correlate_MillionKeys)->Arg(0)->Arg(1)->Unit(benchmark::kNanosecond);

}  // namespace

BENCHMARK_MAIN();

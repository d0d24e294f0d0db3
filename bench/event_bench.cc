// Event::get() on an event with 40 generic fields: a canonical name, the first and the
// last generic field, and a name the event does not have, each by name and through a
// FieldRef resolved once. BM_LinearScan_* walks the fields the way get() did before the
// index, as the baseline. BM_AddFields_Reset measures adding 40 fields and clearing them,
// BM_AddFields_Index the same plus building the index. BM_GetRef_Overflow150 and
// BM_GetRef_AbsentWithOverflow look up in an event of 200 fields, 104 of them past the
// table in the overflow area.
#include <benchmark/benchmark.h>

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/event.h"
#include "common/ip.h"

namespace {

using vigil::Event;
using vigil::FieldRef;

constexpr size_t kFields = 40;

const std::vector<std::string>& fieldNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (size_t i = 0; i < kFields; ++i) out.push_back("suricata.alert.attr_" + std::to_string(i));
    return out;
  }();
  return names;
}

Event& benchEvent() {
  static Event event = [] {
    Event e(8192);
    e.host = "web1";
    e.message = "hello";
    e.src_ip = vigil::parseIp("198.51.100.7");
    for (const std::string& name : fieldNames()) e.addField(name, "value");
    return e;
  }();
  return event;
}

void lookupByName(benchmark::State& state, std::string_view name) {
  const Event& event = benchEvent();
  std::array<char, 64> scratch;
  for (auto _ : state) {
    std::optional<std::string_view> value = event.get(name, scratch);
    benchmark::DoNotOptimize(value);
  }
}

void lookupByRef(benchmark::State& state, std::string_view name) {
  const Event& event = benchEvent();
  const FieldRef ref = Event::resolve(name);
  std::array<char, 64> scratch;
  for (auto _ : state) {
    std::optional<std::string_view> value = event.get(ref, scratch);
    benchmark::DoNotOptimize(value);
  }
}

void linearScan(benchmark::State& state, std::string_view name) {
  const Event& event = benchEvent();
  for (auto _ : state) {
    std::optional<std::string_view> value;
    for (size_t i = 0; i < event.field_count; ++i) {
      if (event.fields[i].name == name) {
        value = event.fields[i].value;
        break;
      }
    }
    benchmark::DoNotOptimize(value);
  }
}

void BM_Get_Canonical(benchmark::State& state) { lookupByName(state, "host.name"); }
void BM_Get_FirstGeneric(benchmark::State& state) { lookupByName(state, fieldNames().front()); }
void BM_Get_LastGeneric(benchmark::State& state) { lookupByName(state, fieldNames().back()); }
void BM_Get_Absent(benchmark::State& state) { lookupByName(state, "suricata.alert.missing"); }
void BM_GetRef_Canonical(benchmark::State& state) { lookupByRef(state, "host.name"); }
void BM_GetRef_FirstGeneric(benchmark::State& state) { lookupByRef(state, fieldNames().front()); }
void BM_GetRef_LastGeneric(benchmark::State& state) { lookupByRef(state, fieldNames().back()); }
void BM_LinearScan_FirstGeneric(benchmark::State& state) {
  linearScan(state, fieldNames().front());
}
void BM_LinearScan_LastGeneric(benchmark::State& state) { linearScan(state, fieldNames().back()); }

// An event with 200 generic fields: the first 96 in the indexed table, the other 104 in
// the overflow area, which a lookup scans after the table misses.
Event& wideEvent() {
  static Event event = [] {
    Event e(64 * 1024);
    for (size_t i = 0; i < 200; ++i) {
      e.addField(e.arena.copy("suricata.alert.attr_" + std::to_string(i)), "value");
    }
    return e;
  }();
  return event;
}

void lookupWide(benchmark::State& state, std::string_view name) {
  const Event& event = wideEvent();
  const FieldRef ref = Event::resolve(name);
  std::array<char, 64> scratch;
  for (auto _ : state) {
    std::optional<std::string_view> value = event.get(ref, scratch);
    benchmark::DoNotOptimize(value);
  }
}

void BM_GetRef_Overflow150(benchmark::State& state) {
  lookupWide(state, "suricata.alert.attr_150");
}
void BM_GetRef_AbsentWithOverflow(benchmark::State& state) {
  lookupWide(state, "suricata.alert.missing");
}

void BM_AddFields_Reset(benchmark::State& state) {
  Event event(8192);
  for (auto _ : state) {
    event.reset();
    for (const std::string& name : fieldNames()) event.addField(name, "value");
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kFields));
}

// The same adds followed by indexFields(), which the first lookup by a generic name runs.
void BM_AddFields_Index(benchmark::State& state) {
  Event event(8192);
  for (auto _ : state) {
    event.reset();
    for (const std::string& name : fieldNames()) event.addField(name, "value");
    event.indexFields();
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kFields));
}

BENCHMARK(BM_Get_Canonical);
BENCHMARK(BM_Get_FirstGeneric);
BENCHMARK(BM_Get_LastGeneric);
BENCHMARK(BM_Get_Absent);
BENCHMARK(BM_GetRef_Canonical);
BENCHMARK(BM_GetRef_FirstGeneric);
BENCHMARK(BM_GetRef_LastGeneric);
BENCHMARK(BM_LinearScan_FirstGeneric);
BENCHMARK(BM_LinearScan_LastGeneric);
BENCHMARK(BM_GetRef_Overflow150);
BENCHMARK(BM_GetRef_AbsentWithOverflow);
BENCHMARK(BM_AddFields_Reset);
BENCHMARK(BM_AddFields_Index);

}  // namespace

BENCHMARK_MAIN();

// Case store write and read cost on a real SQLite file (WAL, synchronous=FULL), so the
// figures include fsync and depend on the disk under the temp folder.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "correlate/alert.h"
#include "mgmt/case_metrics.h"
#include "mgmt/case_store.h"

namespace {

constexpr int64_t kT0 = 1'767'225'600'000'000'000;  // 2026-01-01T00:00:00Z

// A fresh database file in its own temp folder, removed at the end of the benchmark.
struct TempStore {
  TempStore() {
    std::string pattern = std::filesystem::temp_directory_path() / "vigil-bench-XXXXXX";
    folder = mkdtemp(pattern.data()) != nullptr ? pattern : std::string();
    auto opened = vigil::mgmt::CaseStore::open(folder + "/cases.db");
    if (opened.ok()) store = *std::move(opened);
  }
  ~TempStore() {
    store.reset();
    std::error_code ignored;
    std::filesystem::remove_all(folder, ignored);
  }
  std::string folder;
  std::unique_ptr<vigil::mgmt::CaseStore> store;
};

vigil::correlate::Alert benchAlert(int64_t i) {
  vigil::correlate::Alert alert;
  alert.id = "bench-" + std::to_string(i);
  alert.rule_id = "bench";
  alert.rule_title = "Benchmark rule";
  alert.level = "high";
  alert.tenant = "acme";
  alert.group = {{"source.ip", "10.0.0." + std::to_string(i % 64)}};
  alert.first_event_ns = kT0 + i;
  alert.last_event_ns = kT0 + i;
  alert.detect_ns = kT0 + i;
  alert.event_count = 4;
  // Four evidence lines of a typical syslog length (about 90 bytes).
  for (int e = 0; e < 4; ++e) {
    alert.evidence.push_back(
        "<38>Jan  1 10:00:00 web1 sshd[811]: Failed password for root from 10.0.0." +
        std::to_string(i % 64) + " port 50122 ssh2");
  }
  return alert;
}

// Stores batches of range(0) alerts, one transaction per batch (the case sink's pattern).
void BM_CaseStore_IngestBatch(benchmark::State& state) {
  TempStore temp;
  if (!temp.store) {
    state.SkipWithError("failed to open the case store; check that TMPDIR is writable");
    return;
  }
  const int64_t batch_size = state.range(0);
  int64_t next = 0;
  std::vector<vigil::correlate::Alert> batch;
  for (auto _ : state) {
    state.PauseTiming();
    batch.clear();
    for (int64_t i = 0; i < batch_size; ++i) batch.push_back(benchAlert(next++));
    state.ResumeTiming();
    auto results = temp.store->ingestAlerts(batch);
    if (!results.ok()) {
      state.SkipWithError(std::string(results.status().message()).c_str());
      return;
    }
  }
  state.SetItemsProcessed(next);
  auto page = temp.store->listCases({});
  // Alerts cycle through 64 groups, so the run leaves min(alerts, 64) cases.
  if (!page.ok() || page->total != std::min<int64_t>(next, 64)) {
    state.SkipWithError("unexpected case count after the run");
  }
}
BENCHMARK(BM_CaseStore_IngestBatch)->Arg(1)->Arg(16)->Arg(256)->UseRealTime();

// Files inbox alerts the way default-case runs do: one keyed case.attach_alert action per
// alert (runKeyedAction() around attachQueuedAlert()). range(0) is the group size: 1 is a
// transaction and an fsync per alert, larger sizes share one group commit
// (tryBeginGroupCommit() / commitGroup()) among that many filings. Filling the inbox is
// not timed.
void BM_CaseStore_FileKeyed(benchmark::State& state) {
  TempStore temp;
  if (!temp.store) {
    state.SkipWithError("failed to open the case store; check that TMPDIR is writable");
    return;
  }
  vigil::mgmt::CaseStore& store = *temp.store;
  const int64_t group_size = state.range(0);
  int64_t next = 0;
  std::vector<vigil::correlate::Alert> batch;
  for (auto _ : state) {
    state.PauseTiming();
    batch.clear();
    for (int64_t i = 0; i < group_size; ++i) batch.push_back(benchAlert(next + i));
    auto ids = store.queueAlerts(batch);
    state.ResumeTiming();
    if (!ids.ok()) {
      state.SkipWithError(std::string(ids.status().message()).c_str());
      return;
    }
    const bool grouped = group_size > 1 && store.tryBeginGroupCommit();
    for (int64_t inbox_id : *ids) {
      bool replayed = false;
      auto filing = [&]() -> absl::StatusOr<vigil::mgmt::CaseStore::KeyedActionResult> {
        auto filed = store.attachQueuedAlert(inbox_id, "acme");
        if (!filed.ok()) return filed.status();
        return vigil::mgmt::CaseStore::KeyedActionResult{filed->case_id,
                                                         std::to_string(filed->case_id)};
      };
      auto done = store.runKeyedAction("vigil-bench-" + std::to_string(next++), "acme",
                                       "case.attach_alert", filing, &replayed);
      if (!done.ok()) {
        state.SkipWithError(std::string(done.status().message()).c_str());
        return;
      }
    }
    if (grouped) {
      if (absl::Status committed = store.commitGroup(); !committed.ok()) {
        state.SkipWithError(std::string(committed.message()).c_str());
        return;
      }
    }
  }
  state.SetItemsProcessed(next);
  auto waiting = store.queuedAlertCount();
  if (!waiting.ok() || *waiting != 0) state.SkipWithError("alerts left in the inbox");
}
BENCHMARK(BM_CaseStore_FileKeyed)->Arg(1)->Arg(8)->Arg(64)->UseRealTime();

// Lists one page of 50 cases out of 10,000, newest first, with a tenant filter.
void BM_CaseStore_ListPage(benchmark::State& state) {
  TempStore temp;
  if (!temp.store) {
    state.SkipWithError("failed to open the case store; check that TMPDIR is writable");
    return;
  }
  std::vector<vigil::correlate::Alert> batch;
  for (int64_t i = 0; i < 10000; ++i) {
    vigil::correlate::Alert alert = benchAlert(i);
    alert.group = {{"source.ip", std::to_string(i)}};  // one case per alert
    batch.push_back(std::move(alert));
  }
  if (!temp.store->ingestAlerts(batch).ok()) {
    state.SkipWithError("setup ingest failed");
    return;
  }
  vigil::mgmt::CaseFilter filter;
  filter.tenant = "acme";
  int64_t listed = 0;
  for (auto _ : state) {
    auto page = temp.store->listCases(filter);
    if (!page.ok()) {
      state.SkipWithError(std::string(page.status().message()).c_str());
      return;
    }
    listed += static_cast<int64_t>(page->items.size());
  }
  state.SetItemsProcessed(listed);
  if (listed == 0) state.SkipWithError("no cases listed");
}
BENCHMARK(BM_CaseStore_ListPage);

// Case metrics over range(0) cases in four tenants: range(1) 0 reads every case and
// aggregates in memory (aggregateCaseMetrics), 1 aggregates in SQLite
// (CaseStore::caseMetricsBetween, what GET /api/v1/metrics/cases runs).
void BM_CaseStore_Metrics(benchmark::State& state) {
  TempStore temp;
  if (!temp.store) {
    state.SkipWithError("failed to open the case store; check that TMPDIR is writable");
    return;
  }
  const int64_t cases = state.range(0);
  std::vector<vigil::correlate::Alert> batch;
  for (int64_t i = 0; i < cases; ++i) {
    vigil::correlate::Alert alert = benchAlert(i);
    alert.group = {{"source.ip", std::to_string(i)}};  // one case per alert
    alert.tenant = "tenant" + std::to_string(i % 4);
    alert.first_event_ns = kT0 + i - (i % 97) * 1'000'000'000;
    batch.push_back(std::move(alert));
  }
  if (!temp.store->ingestAlerts(batch).ok()) {
    state.SkipWithError("setup ingest failed");
    return;
  }
  size_t groups = 0;
  for (auto _ : state) {
    if (state.range(1) == 0) {
      auto all = temp.store->casesDetectedBetween(std::nullopt, "", 0, 0);
      if (!all.ok()) {
        state.SkipWithError(std::string(all.status().message()).c_str());
        return;
      }
      groups += vigil::mgmt::aggregateCaseMetrics(*all, temp.store->sla(), temp.store->nowNs())
                    .size();
    } else {
      auto summary = temp.store->caseMetricsBetween(std::nullopt, "", 0, 0);
      if (!summary.ok()) {
        state.SkipWithError(std::string(summary.status().message()).c_str());
        return;
      }
      groups += summary->size();
    }
  }
  state.SetItemsProcessed(state.iterations() * cases);
  if (groups == 0) state.SkipWithError("no metrics groups");
}
BENCHMARK(BM_CaseStore_Metrics)
    ->Args({10000, 0})
    ->Args({10000, 1})
    ->Args({100000, 0})
    ->Args({100000, 1})
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();

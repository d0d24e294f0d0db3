// The alert sink that feeds the case store. The pipeline's last stage hands alerts to
// onAlert(), which only queues them. One writer thread stores them in batched
// transactions, so the pipeline never waits on disk unless the queue is full. Without a
// `filer` the sink files each alert in its case itself; with one, it stores alerts in
// the alert inbox and the filer (the playbook runner) decides their cases.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "correlate/alert.h"
#include "mgmt/case_store.h"

namespace vigil::mgmt {

// Takes each alert after the case sink stored it in the alert inbox.
class StoredAlertSink {
 public:
  virtual ~StoredAlertSink() = default;
  // Called on the sink's writer thread once the batch holding `alert` has committed.
  // Blocking here makes the sink's queue fill up, and then the pipeline waits.
  virtual void onStoredAlert(const correlate::Alert& alert, int64_t inbox_id) = 0;
  // Blocks until the alerts handed over so far have been dealt with.
  virtual void flushStored() {}
};

struct CaseSinkOptions {
  // Not owned. When set, alerts go to CaseStore::queueAlerts() and then to the filer,
  // and the sink opens no case itself.
  StoredAlertSink* filer = nullptr;
  size_t queue_capacity = 1024;  // alerts waiting for the writer; onAlert blocks beyond it
  size_t max_batch = 256;        // alerts per transaction
  // Attempts per alert after its batch failed. Attempts that fail with InvalidArgument (a
  // bad alert) are not repeated.
  int max_attempts = 5;
  std::chrono::milliseconds retry_backoff{50};  // doubles after each failed attempt
  std::chrono::milliseconds max_backoff{2000};
  // Tenants that get their own vigil_alerts_stored_total and vigil_cases_opened_total
  // series, usually every tenant of the configuration. Alerts of any other tenant count
  // under correlate::kOtherTenantLabel.
  std::vector<std::string> tenants;
};

// Counters, registered in the MetricsRegistry given to the constructor:
//   vigil_alerts_stored_total{tenant}  alerts written to the store, by the alert's tenant
//   vigil_cases_opened_total{tenant}   cases opened by those alerts (without a filer; with
//                                      one, the case connector counts them)
//   vigil_case_store_errors_total      failed write attempts (each one is also logged)
//   vigil_case_sink_waits_total        onAlert calls that waited for room in the queue
//   vigil_case_sink_dropped_total      alerts given up on, by reason: invalid_alert (the
//                                      store rejected it) or write_failed (attempts ran out)
// and the gauge vigil_case_sink_queue_depth.
class CaseSink final : public correlate::AlertSink {
 public:
  // Starts the writer thread. `store` and `metrics` are not owned and must outlive the sink.
  CaseSink(CaseStore& store, MetricsRegistry& metrics, CaseSinkOptions options = {});

  // Stores every queued alert, then stops the writer thread.
  ~CaseSink() override;

  CaseSink(const CaseSink&) = delete;
  CaseSink& operator=(const CaseSink&) = delete;

  // Copies `alert` into the queue and returns. When the queue is full it blocks until the
  // writer makes room (counted in vigil_case_sink_waits_total); alerts are never dropped
  // here. Thread-safe, although the pipeline calls it from one stage at a time.
  void onAlert(const correlate::Alert& alert) override;

  // Blocks until every alert queued before the call has been stored or counted as dropped,
  // then flushes the filer.
  void flush() override;

  // Alerts queued and not yet taken by the writer.
  size_t queueDepth() const;

 private:
  void runWriter();
  void writeBatch(const std::vector<correlate::Alert>& batch);
  void writeWithRetries(const correlate::Alert& alert);
  void countStored(const correlate::Alert& alert, const IngestResult& result);
  struct TenantCounters {
    Counter* stored = nullptr;
    Counter* opened = nullptr;
  };
  // The counters of `tenant`, or those of correlate::kOtherTenantLabel.
  const TenantCounters& countersOf(std::string_view tenant) const;
  // Stores `alerts` in the store (filing them, or in the inbox for the filer).
  absl::Status storeBatch(absl::Span<const correlate::Alert> alerts);

  CaseStore& store_;
  CaseSinkOptions options_;

  // Pre-created per tenant, so counting an alert only looks its tenant up.
  std::map<std::string, TenantCounters, std::less<>> by_tenant_;
  TenantCounters other_;
  Counter& errors_;
  Counter& waits_;
  Counter& dropped_invalid_;
  Counter& dropped_write_failed_;
  Gauge& queue_depth_;

  mutable std::mutex mu_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::condition_variable done_;
  std::deque<correlate::Alert> queue_;
  uint64_t enqueued_ = 0;  // alerts ever queued
  uint64_t finished_ = 0;  // alerts stored or dropped by the writer
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace vigil::mgmt

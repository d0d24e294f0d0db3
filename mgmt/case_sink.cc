#include "mgmt/case_sink.h"

#include <algorithm>
#include <utility>

#include "common/log.h"
#include "common/thread_name.h"
#include "correlate/pipeline.h"

namespace vigil::mgmt {
namespace {

constexpr const char* kDroppedName = "vigil_case_sink_dropped_total";
constexpr const char* kDroppedHelp = "Alerts the case sink gave up on, by reason.";
constexpr const char* kStoredName = "vigil_alerts_stored_total";
constexpr const char* kStoredHelp = "Alerts written to the case store, by tenant.";
constexpr const char* kOpenedName = "vigil_cases_opened_total";
constexpr const char* kOpenedHelp = "Cases opened by stored alerts, by tenant.";

}  // namespace

CaseSink::CaseSink(CaseStore& store, MetricsRegistry& metrics, CaseSinkOptions options)
    : store_(store),
      options_(options),
      other_{&metrics.counter(kStoredName, kStoredHelp,
                              {{"tenant", std::string(correlate::kOtherTenantLabel)}}),
             &metrics.counter(kOpenedName, kOpenedHelp,
                              {{"tenant", std::string(correlate::kOtherTenantLabel)}})},
      errors_(
          metrics.counter("vigil_case_store_errors_total", "Failed case store write attempts.")),
      waits_(metrics.counter("vigil_case_sink_waits_total",
                             "Alerts that waited for room in the full case sink queue.")),
      dropped_invalid_(metrics.counter(kDroppedName, kDroppedHelp, {{"reason", "invalid_alert"}})),
      dropped_write_failed_(
          metrics.counter(kDroppedName, kDroppedHelp, {{"reason", "write_failed"}})),
      queue_depth_(metrics.gauge("vigil_case_sink_queue_depth",
                                 "Alerts queued for the case store writer.")) {
  for (const std::string& tenant : options_.tenants) {
    TenantCounters counters;
    counters.stored = &metrics.counter(kStoredName, kStoredHelp, {{"tenant", tenant}});
    counters.opened = &metrics.counter(kOpenedName, kOpenedHelp, {{"tenant", tenant}});
    by_tenant_.emplace(tenant, counters);
  }
  options_.queue_capacity = std::max<size_t>(options_.queue_capacity, 1);
  options_.max_batch = std::max<size_t>(options_.max_batch, 1);
  options_.max_attempts = std::max(options_.max_attempts, 1);
  writer_ = std::thread([this] {
    nameThisThread("vigil-case-sink");
    runWriter();
  });
}

CaseSink::~CaseSink() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  not_empty_.notify_all();
  writer_.join();
}

void CaseSink::onAlert(const correlate::Alert& alert) {
  std::unique_lock<std::mutex> lock(mu_);
  if (queue_.size() >= options_.queue_capacity) {
    waits_.add();
    not_full_.wait(lock, [this] { return queue_.size() < options_.queue_capacity; });
  }
  queue_.push_back(alert);
  ++enqueued_;
  queue_depth_.set(static_cast<int64_t>(queue_.size()));
  lock.unlock();
  not_empty_.notify_one();
}

void CaseSink::flush() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    const uint64_t target = enqueued_;
    done_.wait(lock, [&] { return finished_ >= target; });
  }
  if (options_.filer != nullptr) options_.filer->flushStored();
}

size_t CaseSink::queueDepth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void CaseSink::runWriter() {
  std::vector<correlate::Alert> batch;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      not_empty_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      size_t n = std::min(queue_.size(), options_.max_batch);
      batch.clear();
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queue_depth_.set(static_cast<int64_t>(queue_.size()));
    }
    not_full_.notify_all();

    writeBatch(batch);

    {
      std::lock_guard<std::mutex> lock(mu_);
      finished_ += batch.size();
    }
    done_.notify_all();
  }
}

absl::Status CaseSink::storeBatch(absl::Span<const correlate::Alert> alerts) {
  if (options_.filer == nullptr) {
    absl::StatusOr<std::vector<IngestResult>> results = store_.ingestAlerts(alerts);
    if (!results.ok()) return results.status();
    for (size_t i = 0; i < results->size(); ++i) countStored(alerts[i], (*results)[i]);
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<int64_t>> ids = store_.queueAlerts(alerts);
  if (!ids.ok()) return ids.status();
  for (size_t i = 0; i < alerts.size(); ++i) {
    countersOf(alerts[i].tenant).stored->add();
    options_.filer->onStoredAlert(alerts[i], (*ids)[i]);
  }
  return absl::OkStatus();
}

void CaseSink::writeBatch(const std::vector<correlate::Alert>& batch) {
  absl::Status status = storeBatch(batch);
  if (status.ok()) return;
  // The transaction rolled back as a whole. Store the alerts one by one so a single bad
  // alert cannot hold back the rest of its batch.
  errors_.add();
  VIGIL_LOG_ERROR("case store batch write failed alerts={} first_alert={} error=\"{}\"",
                  batch.size(), batch.front().id, logText(status.ToString()));
  for (const correlate::Alert& alert : batch) writeWithRetries(alert);
}

void CaseSink::writeWithRetries(const correlate::Alert& alert) {
  std::chrono::milliseconds backoff = options_.retry_backoff;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    absl::Status status = storeBatch({&alert, 1});
    if (status.ok()) return;
    errors_.add();
    if (absl::IsInvalidArgument(status)) {
      dropped_invalid_.add();
      VIGIL_LOG_ERROR("case store rejected alert, dropping it alert={} error=\"{}\"", alert.id,
                      logText(status.ToString()));
      return;
    }
    if (attempt == options_.max_attempts) {
      dropped_write_failed_.add();
      VIGIL_LOG_ERROR("case store write failed, dropping alert alert={} attempts={} error=\"{}\"",
                      alert.id, attempt, logText(status.ToString()));
      return;
    }
    VIGIL_LOG_WARN(
        "case store write failed, retrying alert={} attempt={} retry_in_ms={} error=\"{}\"",
        alert.id, attempt, backoff.count(), logText(status.ToString()));
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

const CaseSink::TenantCounters& CaseSink::countersOf(std::string_view tenant) const {
  auto it = by_tenant_.find(tenant);
  return it != by_tenant_.end() ? it->second : other_;
}

void CaseSink::countStored(const correlate::Alert& alert, const IngestResult& result) {
  const TenantCounters& counters = countersOf(alert.tenant);
  counters.stored->add();
  if (result.opened_case) counters.opened->add();
}

}  // namespace vigil::mgmt

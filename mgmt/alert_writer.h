// An AlertSink that writes each alert as one JSON line to stdout or a file.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/metrics.h"
#include "correlate/alert.h"

namespace vigil::mgmt {

// The pipeline hands alerts over through a bounded queue and a writer thread, so a
// reader that stops reading (a full pipe on stdout, a stalled disk) can never block the
// pipeline or the daemon's shutdown. When the queue is full the alert is counted in
// vigil_alerts_output_dropped_total and left out of this output; the case store still
// has it.
class JsonLinesAlertWriter final : public correlate::AlertSink {
 public:
  static constexpr size_t kDefaultMaxQueued = 65536;

  // `target` is "stdout" or a file path (appended to, created when missing). Errors name
  // the path and the reason. Counts lines in vigil_alerts_written_total, failed writes in
  // vigil_alert_write_errors_total and alerts that found the queue full (or were still
  // queued when a shutdown gave up waiting) in vigil_alerts_output_dropped_total.
  static absl::StatusOr<std::unique_ptr<JsonLinesAlertWriter>> open(
      const std::string& target, MetricsRegistry& metrics, size_t max_queued = kDefaultMaxQueued);
  // Waits up to 2 s for the queue to drain. When the output is still blocked then, the
  // writer thread is left behind (it cannot be interrupted inside write), and what is
  // still queued is counted as dropped.
  ~JsonLinesAlertWriter() override;

  // Formats the alert and queues it. Never blocks on the output. Called from the
  // pipeline's last stage.
  void onAlert(const correlate::Alert& alert) override;
  // Waits up to 2 s until every queued alert is written and flushed.
  void flush() override;

 private:
  struct State;
  explicit JsonLinesAlertWriter(std::shared_ptr<State> state);

  std::shared_ptr<State> state_;
};

}  // namespace vigil::mgmt

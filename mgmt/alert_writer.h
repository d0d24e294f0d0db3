// An AlertSink that writes each alert as one JSON line to stdout or a file.
#pragma once

#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/metrics.h"
#include "correlate/alert.h"

namespace vigil::mgmt {

class JsonLinesAlertWriter final : public correlate::AlertSink {
 public:
  // `target` is "stdout" or a file path (appended to, created when missing). Errors name
  // the path and the reason. Counts lines in vigil_alerts_written_total and failed writes
  // in vigil_alert_write_errors_total.
  static absl::StatusOr<std::unique_ptr<JsonLinesAlertWriter>> open(const std::string& target,
                                                                    MetricsRegistry& metrics);
  ~JsonLinesAlertWriter() override;

  // Called from the pipeline's last stage, one call at a time.
  void onAlert(const correlate::Alert& alert) override;
  void flush() override;

 private:
  JsonLinesAlertWriter(std::FILE* file, bool owned, std::string target, MetricsRegistry& metrics);

  std::FILE* file_;
  bool owned_;
  std::string target_;
  Counter& written_;
  Counter& errors_;
};

}  // namespace vigil::mgmt

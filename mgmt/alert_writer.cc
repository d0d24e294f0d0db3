#include "mgmt/alert_writer.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace vigil::mgmt {

absl::StatusOr<std::unique_ptr<JsonLinesAlertWriter>> JsonLinesAlertWriter::open(
    const std::string& target, MetricsRegistry& metrics) {
  if (target == "stdout") {
    return std::unique_ptr<JsonLinesAlertWriter>(
        new JsonLinesAlertWriter(stdout, false, target, metrics));
  }
  std::FILE* file = std::fopen(target.c_str(), "a");
  if (file == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open alerts.output ", target, ": ", std::strerror(errno),
                     "; check that the folder exists and is writable"));
  }
  return std::unique_ptr<JsonLinesAlertWriter>(
      new JsonLinesAlertWriter(file, true, target, metrics));
}

JsonLinesAlertWriter::JsonLinesAlertWriter(std::FILE* file, bool owned, std::string target,
                                           MetricsRegistry& metrics)
    : file_(file),
      owned_(owned),
      target_(std::move(target)),
      written_(metrics.counter("vigil_alerts_written_total", "Alerts written as JSON lines")),
      errors_(metrics.counter("vigil_alert_write_errors_total",
                              "Alerts that could not be written as JSON lines")) {}

JsonLinesAlertWriter::~JsonLinesAlertWriter() {
  flush();
  if (owned_) std::fclose(file_);
}

void JsonLinesAlertWriter::onAlert(const correlate::Alert& alert) {
  std::string line = correlate::alertToJson(alert);
  line.push_back('\n');
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size()) {
    errors_.add();
    VIGIL_LOG_WARN_POW2("alert write failed target={} alert={} error={}", target_, alert.id,
                        std::strerror(errno));
    return;
  }
  // One flush per alert: alerts are rare, and a reader tailing the file must never see
  // a partial JSON line.
  if (std::fflush(file_) != 0) {
    errors_.add();
    VIGIL_LOG_WARN_POW2("alert flush failed target={} alert={} error={}", target_, alert.id,
                        std::strerror(errno));
    return;
  }
  written_.add();
}

void JsonLinesAlertWriter::flush() {
  if (std::fflush(file_) != 0) {
    errors_.add();
    VIGIL_LOG_WARN_POW2("alert flush failed target={} error={}", target_, std::strerror(errno));
  }
}

}  // namespace vigil::mgmt

// The daemon's correlation checkpoints: restored when the rules load, written
// periodically from the pipeline's per-shard snapshots and once more at shutdown.
#include "mgmt/daemon.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "common/log.h"
#include "correlate/checkpoint.h"
#include "correlate/engine.h"
#include "correlate/pipeline.h"
#include "mgmt/rule_reloader.h"

namespace vigil::mgmt {

std::string Daemon::checkpointPath() const {
  return (std::filesystem::path(config_.state_dir) / "correlation.ckpt").string();
}

void Daemon::restoreCheckpoint() {
  const std::string path = checkpointPath();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    VIGIL_LOG_INFO("no correlation checkpoint, windows start empty path={}", path);
    return;
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  if (!in) {
    VIGIL_LOG_WARN("correlation checkpoint not readable, windows start empty path={}", path);
    metrics_.counter("vigil_checkpoint_read_errors_total", "Checkpoint files that could not be read")
        .add();
    return;
  }
  absl::StatusOr<correlate::Engine::RestoreSummary> summary = rules_->current()->restore(bytes.str());
  if (!summary.ok()) {
    // Counted by the engine in vigil_checkpoint_rejected_total.
    VIGIL_LOG_WARN("correlation checkpoint ignored, windows start empty path={} error=\"{}\"", path,
                   logText(summary.status().ToString()));
    return;
  }
  VIGIL_LOG_INFO("correlation checkpoint restored path={} rules_restored={} rules_changed={} "
                 "rules_removed={} groups={} suppress_keys={}",
                 path, summary->rules_restored, summary->rules_changed, summary->rules_removed,
                 summary->groups, summary->suppress_keys);
}

void Daemon::writeCheckpoint(const std::string& file, std::string_view when) {
  const std::string path = checkpointPath();
  const char* help = "Correlation checkpoints written, by result";
  std::error_code ec;
  std::filesystem::create_directories(config_.state_dir, ec);
  absl::Status status = correlate::writeFileAtomically(path, file);
  if (!status.ok()) {
    VIGIL_LOG_ERROR("correlation checkpoint not written when={} path={} error=\"{}\"", when, path,
                    logText(status.ToString()));
    metrics_.counter("vigil_checkpoint_writes_total", help, {{"result", "failed"}}).add();
    return;
  }
  metrics_.counter("vigil_checkpoint_writes_total", help, {{"result", "ok"}}).add();
  VIGIL_LOG_DEBUG("correlation checkpoint written when={} path={} bytes={}", when, path,
                  file.size());
}

}  // namespace vigil::mgmt

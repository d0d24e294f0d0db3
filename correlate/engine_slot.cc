#include "correlate/engine_slot.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace vigil::correlate {

EngineSlot::EngineSlot(std::shared_ptr<Engine> engine)
    : engine_(std::move(engine)), shards_(engine_->options().shards) {}

absl::Status EngineSlot::publish(std::shared_ptr<Engine> engine) {
  if (engine == nullptr) return absl::InvalidArgumentError("no engine to publish");
  if (engine->options().shards != shards_) {
    return absl::InvalidArgumentError(
        absl::StrCat("the new engine has ", engine->options().shards,
                     " shards but the pipeline runs ", shards_,
                     "; changing pipeline.shards needs a restart"));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  engine_ = std::move(engine);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return absl::OkStatus();
}

std::shared_ptr<Engine> EngineSlot::current() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return engine_;
}

}  // namespace vigil::correlate

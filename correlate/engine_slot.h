// The engine the pipeline runs, replaceable while the pipeline runs: a rule reload
// builds a new engine off the hot path and publishes it here. The pipeline's input stage
// picks up the new engine for the next batch that enters, so every batch runs on
// exactly one engine from parse to delivery, and the stages after it hand the window
// state over as the first batch on the new engine passes them (see Pipeline).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "absl/status/status.h"
#include "correlate/engine.h"

namespace vigil::correlate {

class EngineSlot {
 public:
  explicit EngineSlot(std::shared_ptr<Engine> engine);

  // Makes `engine` the one that batches entering from now on run on. Returns
  // InvalidArgument, and changes nothing, when `engine` is null or has another shard
  // count than the first engine (the shard count fixes the pipeline's stages).
  // Thread-safe.
  absl::Status publish(std::shared_ptr<Engine> engine);

  // The engine published last. Takes a mutex; the pipeline calls it only when
  // generation() has changed. Thread-safe.
  std::shared_ptr<Engine> current() const;

  // Bumped by every publish(); one atomic load, cheap enough to check per batch.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  size_t shards() const { return shards_; }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<Engine> engine_;
  std::atomic<uint64_t> generation_{0};
  size_t shards_ = 1;
};

}  // namespace vigil::correlate

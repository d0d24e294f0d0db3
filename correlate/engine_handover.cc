// Rule reloads: a new engine takes over the window state and suppression keys of the
// engine it replaces, for the rules whose definition did not change.
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "correlate/checkpoint.h"
#include "correlate/engine.h"
#include "correlate/internal/checkpoint_codec.h"
#include "correlate/internal/engine_parts.h"

namespace vigil::correlate {
namespace {

// Correlation rule index by state label.
absl::flat_hash_map<std::string, uint32_t> correlationLabels(const RuleSet& rules) {
  absl::flat_hash_map<std::string, uint32_t> labels;
  for (uint32_t i = 0; i < rules.correlations.size(); ++i) {
    labels.emplace(stateLabel(rules.correlations[i]), i);
  }
  return labels;
}

}  // namespace

Engine::HandoverSummary Engine::takeOverShard(uint32_t shard, const Engine& previous) {
  HandoverSummary summary;
  const Shard& from = *previous.shards_[shard];
  Shard& to = *shards_[shard];
  const absl::flat_hash_map<std::string, uint32_t> labels = correlationLabels(*rules_);
  int64_t pending_before = 0;
  for (const auto& table : to.tables) {
    pending_before += static_cast<int64_t>(table->pendingTimers());
  }

  std::string buffer;
  for (uint32_t i = 0; i < previous.rules_->correlations.size(); ++i) {
    const internal::WindowTable& table = *from.tables[i];
    const CorrelationRule& rule = previous.rules_->correlations[i];
    auto it = labels.find(stateLabel(rule));
    if (it == labels.end() || rule_hashes_[it->second] != previous.rule_hashes_[i]) {
      summary.groups_dropped += table.groupCount();
      continue;
    }
    if (to.tables[it->second] == from.tables[i]) {
      // Shared since this engine was built: the groups are already here.
      summary.groups_kept += table.groupCount();
      continue;
    }
    // The saved form is what checkpoints use, so a group moves the same way it is
    // restored after a restart.
    buffer.clear();
    internal::ByteWriter writer(buffer);
    table.save(writer);
    internal::ByteReader reader(buffer);
    uint32_t count = 0;
    reader.u32(count);
    internal::SavedGroup group;
    for (uint32_t g = 0; g < count; ++g) {
      // The bytes were written just above, so they always read back whole.
      if (!internal::WindowTable::readGroup(reader, group)) break;
      // The shard of a key depends on the key and the rule hash only, so an unchanged
      // rule's groups stay in this shard.
      to.tables[it->second]->restoreGroup(group);
      ++summary.groups_kept;
    }
  }
  to.newest_ns = from.newest_ns;
  to.watermark_ns = from.watermark_ns;

  int64_t pending_after = 0;
  for (const auto& table : to.tables) {
    pending_after += static_cast<int64_t>(table->pendingTimers());
  }
  counters_->pending_timers->add(pending_after - pending_before);
  return summary;
}

size_t Engine::takeOverSuppression(const Engine& previous) {
  absl::flat_hash_map<std::string, uint32_t> labels;
  for (uint32_t i = 0; i < rules_->detections.size(); ++i) {
    labels.emplace(stateLabel(rules_->detections[i]), i);
  }
  size_t kept = 0;
  for (uint32_t i = 0; i < previous.rules_->detections.size(); ++i) {
    const DetectionRule& rule = previous.rules_->detections[i];
    if (rule.suppress_ns <= 0) continue;
    auto it = labels.find(stateLabel(rule));
    if (it == labels.end()) continue;
    if (suppressionHash(rules_->detections[it->second]) != suppressionHash(rule)) continue;
    auto& keys = suppressor_->keys(it->second);
    for (const auto& [key, last_ns] : previous.suppressor_->keys(i)) {
      if (keys.size() >= options_.max_suppress_keys) break;
      keys.insert_or_assign(key, last_ns);
      ++kept;
    }
  }
  return kept;
}

Engine::RuleDiff Engine::diffCorrelations(const Engine& previous) const {
  RuleDiff diff;
  const absl::flat_hash_map<std::string, uint32_t> labels = correlationLabels(*rules_);
  for (uint32_t i = 0; i < previous.rules_->correlations.size(); ++i) {
    const CorrelationRule& rule = previous.rules_->correlations[i];
    auto it = labels.find(stateLabel(rule));
    if (it == labels.end()) {
      ++diff.removed;
    } else if (rule_hashes_[it->second] == previous.rule_hashes_[i]) {
      ++diff.kept;
    } else {
      ++diff.changed;
    }
  }
  diff.added = rules_->correlations.size() - diff.kept - diff.changed;
  return diff;
}

}  // namespace vigil::correlate

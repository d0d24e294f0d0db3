// Engine checkpoints: saving each shard's windows and the suppression keys, and
// restoring them into a new engine (file layout in correlate/checkpoint.h).
#include <algorithm>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "correlate/checkpoint.h"
#include "correlate/engine.h"
#include "correlate/internal/checkpoint_codec.h"
#include "correlate/internal/engine_parts.h"
#include "correlate/internal/text.h"

namespace vigil::correlate {
namespace {

// Smallest encoded group: empty key (4), two sequence numbers, newest time, count, word
// count and evidence count. Bounds the group count a record may claim.
constexpr size_t kMinGroupBytes = 4 + 8 + 8 + 8 + 4 + 4 + 4;

struct ParsedRule {
  uint32_t correlation = kNoRule;  // kNoRule: changed or removed, so not restored
  std::vector<internal::SavedGroup> groups;
};

struct ParsedShard {
  int64_t newest_ns = INT64_MIN;
  int64_t watermark_ns = INT64_MIN;
  std::vector<ParsedRule> rules;
};

struct ParsedSuppression {
  uint32_t detection = kNoRule;
  std::vector<std::pair<std::string_view, int64_t>> entries;
};

absl::Status invalid(std::string_view what) {
  return absl::InvalidArgumentError(internal::concat("invalid checkpoint: ", what));
}

}  // namespace

void Engine::saveShard(uint32_t shard, std::string& out) const {
  const Shard& state = *shards_[shard];
  internal::ByteWriter writer(out);
  writer.i64(state.newest_ns);
  writer.i64(state.watermark_ns);
  writer.u32(static_cast<uint32_t>(rules_->correlations.size()));
  for (uint32_t i = 0; i < rules_->correlations.size(); ++i) {
    const CorrelationRule& rule = rules_->correlations[i];
    writer.text(stateLabel(rule));
    writer.u64(correlationRuleHash(*rules_, i));
    state.tables[i]->save(writer);
  }
}

void Engine::saveSuppression(std::string& out) const {
  internal::ByteWriter writer(out);
  std::vector<uint32_t> suppressing;
  for (uint32_t i = 0; i < rules_->detections.size(); ++i) {
    if (rules_->detections[i].suppress_ns > 0) suppressing.push_back(i);
  }
  writer.u32(static_cast<uint32_t>(suppressing.size()));
  for (uint32_t detection : suppressing) {
    const DetectionRule& rule = rules_->detections[detection];
    writer.text(stateLabel(rule));
    writer.u64(suppressionHash(rule));
    const auto& keys = suppressor_->keys(detection);
    writer.u32(static_cast<uint32_t>(keys.size()));
    for (const auto& [key, last_ns] : keys) {
      writer.text(key);
      writer.i64(last_ns);
    }
  }
}

std::string Engine::checkpoint() const {
  std::vector<std::string> parts(shards_.size());
  for (uint32_t s = 0; s < shards_.size(); ++s) saveShard(s, parts[s]);
  std::string suppression;
  saveSuppression(suppression);
  return assembleCheckpoint(parts, suppression);
}

absl::StatusOr<Engine::RestoreSummary> Engine::restore(std::string_view bytes) {
  RestoreSummary summary;
  std::vector<ParsedShard> parsed;
  std::vector<ParsedSuppression> suppression;

  // Parse and check everything first, so a bad file changes nothing.
  absl::Status status = [&]() -> absl::Status {
    absl::StatusOr<std::string_view> body = checkpointBody(bytes);
    if (!body.ok()) return body.status();
    internal::ByteReader in(*body);

    absl::flat_hash_map<std::string, uint32_t> correlation_ids;
    for (uint32_t i = 0; i < rules_->correlations.size(); ++i) {
      const CorrelationRule& rule = rules_->correlations[i];
      correlation_ids.emplace(stateLabel(rule), i);
    }
    uint32_t shard_count = 0;
    if (!in.u32(shard_count) || shard_count > in.remaining() / 20) {
      return invalid("shard count is larger than the file");
    }
    parsed.resize(shard_count);
    for (uint32_t s = 0; s < shard_count; ++s) {
      ParsedShard& shard = parsed[s];
      uint32_t rule_count = 0;
      in.i64(shard.newest_ns);
      in.i64(shard.watermark_ns);
      if (!in.u32(rule_count) || rule_count > in.remaining() / 16) {
        return invalid(internal::concat("rule count of shard ", s, " is larger than the file"));
      }
      shard.rules.resize(rule_count);
      for (ParsedRule& record : shard.rules) {
        std::string_view label;
        uint64_t hash = 0;
        uint32_t group_count = 0;
        in.text(label);
        in.u64(hash);
        if (!in.u32(group_count) || group_count > in.remaining() / kMinGroupBytes) {
          return invalid(internal::concat("group count of rule ", label, " is cut short"));
        }
        auto it = correlation_ids.find(absl::string_view(label.data(), label.size()));
        const bool found = it != correlation_ids.end();
        const bool same = found && correlationRuleHash(*rules_, it->second) == hash;
        if (s == 0) {
          if (same) {
            ++summary.rules_restored;
          } else if (found) {
            ++summary.rules_changed;
          } else {
            ++summary.rules_removed;
          }
        }
        if (same) record.correlation = it->second;
        record.groups.resize(group_count);
        for (internal::SavedGroup& group : record.groups) {
          if (!internal::WindowTable::readGroup(in, group)) {
            return invalid(internal::concat("a group of rule ", label, " is cut short"));
          }
          if (same && !shards_[0]->tables[it->second]->acceptsGroup(group)) {
            return invalid(internal::concat("a group of rule ", label, " does not fit the rule"));
          }
        }
      }
    }

    uint32_t detection_count = 0;
    if (!in.u32(detection_count) || detection_count > in.remaining() / 16) {
      return invalid("suppression rule count is larger than the file");
    }
    absl::flat_hash_map<std::string, uint32_t> detection_ids;
    for (uint32_t i = 0; i < rules_->detections.size(); ++i) {
      const DetectionRule& rule = rules_->detections[i];
      detection_ids.emplace(stateLabel(rule), i);
    }
    suppression.resize(detection_count);
    for (ParsedSuppression& record : suppression) {
      std::string_view label;
      uint64_t hash = 0;
      uint32_t key_count = 0;
      in.text(label);
      in.u64(hash);
      if (!in.u32(key_count) || key_count > in.remaining() / 12) {
        return invalid(internal::concat("key count of rule ", label, " is cut short"));
      }
      auto it = detection_ids.find(absl::string_view(label.data(), label.size()));
      if (it != detection_ids.end() && suppressionHash(rules_->detections[it->second]) == hash) {
        record.detection = it->second;
      }
      record.entries.resize(key_count);
      for (auto& [key, last_ns] : record.entries) {
        in.text(key);
        in.i64(last_ns);
      }
      if (!in.ok()) return invalid(internal::concat("suppression keys of ", label, " are cut short"));
    }
    if (!in.ok() || in.remaining() != 0) return invalid("bytes left after the last record");
    return absl::OkStatus();
  }();
  if (!status.ok()) {
    counters_->checkpoint_rejected->add();
    return status;
  }

  // Apply: each group goes to the shard that owns its key in this engine.
  int64_t pending_before = 0;
  int64_t pending_after = 0;
  for (const auto& shard : shards_) {
    for (const auto& table : shard->tables) {
      pending_before += static_cast<int64_t>(table->pendingTimers());
    }
  }
  for (const ParsedShard& shard : parsed) {
    for (const ParsedRule& record : shard.rules) {
      if (record.correlation == kNoRule) continue;
      for (const internal::SavedGroup& group : record.groups) {
        uint32_t target = shardOfKey(record.correlation, group.key);
        shards_[target]->tables[record.correlation]->restoreGroup(group);
        ++summary.groups;
      }
    }
  }
  for (const auto& shard : shards_) {
    for (const auto& table : shard->tables) {
      pending_after += static_cast<int64_t>(table->pendingTimers());
    }
  }
  counters_->pending_timers->add(pending_after - pending_before);

  // Watermarks: shard by shard when the shard count is unchanged; otherwise the oldest
  // saved one everywhere, so no absence window closes earlier than it would have.
  if (parsed.size() == shards_.size()) {
    for (size_t s = 0; s < parsed.size(); ++s) {
      shards_[s]->newest_ns = parsed[s].newest_ns;
      shards_[s]->watermark_ns = parsed[s].watermark_ns;
    }
  } else if (!parsed.empty()) {
    auto oldest = std::min_element(parsed.begin(), parsed.end(), [](const auto& a, const auto& b) {
      return a.watermark_ns < b.watermark_ns;
    });
    for (auto& shard : shards_) {
      shard->newest_ns = oldest->newest_ns;
      shard->watermark_ns = oldest->watermark_ns;
    }
  }

  for (const ParsedSuppression& record : suppression) {
    if (record.detection == kNoRule) continue;
    auto& keys = suppressor_->keys(record.detection);
    for (const auto& [key, last_ns] : record.entries) {
      if (keys.size() >= options_.max_suppress_keys) break;
      keys.insert_or_assign(std::string(key), last_ns);
      ++summary.suppress_keys;
    }
  }
  counters_->checkpoint_restored->add(summary.rules_restored);
  counters_->checkpoint_changed->add(summary.rules_changed);
  counters_->checkpoint_removed->add(summary.rules_removed);
  return summary;
}

}  // namespace vigil::correlate

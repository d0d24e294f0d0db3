// Correlation checkpoint files: the window state of every correlation rule and the
// suppression keys of the detection rules, saved so a restarted daemon continues its
// windows instead of starting them empty.
//
// Layout (integers little-endian):
//   header: magic "VIGILCKP" (8 bytes), version (u32), CRC32C of the body (u32),
//           body length (u64)
//   body:   shard count (u32), then per shard the part Engine::saveShard() wrote,
//           then the part Engine::saveSuppression() wrote.
// A shard part is its newest event time and watermark (i64 each), the number of
// correlation rules (u32) and per rule: label (text), definition hash (u64), groups
// (u32 count, then each group's key, first and next sequence number, newest time, count,
// state words, and its evidence: a u32 count, then per event its sequence number, raw
// text and hit lines). Text is a u32 length and the bytes. Version 1 files (without
// evidence) are rejected.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "correlate/rules.h"

namespace vigil::correlate {

inline constexpr std::string_view kCheckpointMagic = "VIGILCKP";
inline constexpr uint32_t kCheckpointVersion = 2;
inline constexpr size_t kCheckpointHeaderBytes = 8 + 4 + 4 + 8;

// Builds a checkpoint file from the parts saveShard() wrote for each shard, in shard
// order, and the part saveSuppression() wrote.
std::string assembleCheckpoint(std::span<const std::string> shard_parts,
                               std::string_view suppression_part);

// Returns a checkpoint file around `body`: the header with magic, version, checksum and
// length, then the body.
std::string checkpointFile(std::string_view body);

// Checks the header and checksum of `file` and returns its body. InvalidArgument names
// what is wrong (magic, version, length or checksum).
absl::StatusOr<std::string_view> checkpointBody(std::string_view file);

// Hash of the parts of a correlation rule that shape its window state: label, type,
// referenced rules, group-by fields as read from each rule, counted fields, timespan,
// thresholds and suppress period. Title, level and tags do not count.
uint64_t correlationRuleHash(const RuleSet& rules, uint32_t correlation);
// Hash of a detection rule's label, suppress period and suppress fields.
uint64_t suppressionHash(const DetectionRule& rule);

// Writes `bytes` to `path` atomically: to path + ".tmp", fsync, rename over `path`, and
// fsync of the directory. On error the old file at `path` stays as it was.
absl::Status writeFileAtomically(const std::string& path, std::string_view bytes);

}  // namespace vigil::correlate

#include "correlate/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "correlate/internal/checkpoint_codec.h"
#include "correlate/internal/text.h"

namespace vigil::correlate {
namespace {

// FNV-1a over a sequence of length-prefixed parts, so ("ab", "c") and ("a", "bc") differ.
class DefinitionHash {
 public:
  void add(std::string_view part) {
    addBytes(part.size());
    for (char c : part) mix(static_cast<uint8_t>(c));
  }
  void addBytes(uint64_t value) {
    for (int i = 0; i < 8; ++i) mix(static_cast<uint8_t>(value >> (8 * i)));
  }
  uint64_t value() const { return hash_; }

 private:
  void mix(uint8_t byte) {
    hash_ ^= byte;
    hash_ *= 0x100000001b3ull;
  }
  uint64_t hash_ = 0xcbf29ce484222325ull;
};

absl::Status errnoStatus(std::string_view what, const std::string& path) {
  return absl::InternalError(internal::concat(what, " ", path, ": ", std::strerror(errno)));
}

}  // namespace

std::string assembleCheckpoint(std::span<const std::string> shard_parts,
                               std::string_view suppression_part) {
  std::string body;
  internal::ByteWriter writer(body);
  writer.u32(static_cast<uint32_t>(shard_parts.size()));
  for (const std::string& part : shard_parts) body.append(part);
  body.append(suppression_part);
  return checkpointFile(body);
}

std::string checkpointFile(std::string_view body) {
  std::string file(kCheckpointMagic);
  internal::ByteWriter header(file);
  header.u32(kCheckpointVersion);
  header.u32(internal::crc32c(body));
  header.u64(body.size());
  file.append(body);
  return file;
}

absl::StatusOr<std::string_view> checkpointBody(std::string_view file) {
  if (file.size() < kCheckpointHeaderBytes || file.substr(0, 8) != kCheckpointMagic) {
    return absl::InvalidArgumentError("not a checkpoint: the file does not start with VIGILCKP");
  }
  internal::ByteReader header(file.substr(8, kCheckpointHeaderBytes - 8));
  uint32_t version = 0;
  uint32_t crc = 0;
  uint64_t length = 0;
  header.u32(version);
  header.u32(crc);
  header.u64(length);
  if (version != kCheckpointVersion) {
    return absl::InvalidArgumentError(internal::concat(
        "checkpoint version ", version, " is not supported (expected ", kCheckpointVersion, ")"));
  }
  std::string_view body = file.substr(kCheckpointHeaderBytes);
  if (length != body.size()) {
    return absl::InvalidArgumentError(internal::concat(
        "checkpoint is truncated or padded: header gives ", length, " body bytes, file has ",
        body.size()));
  }
  if (internal::crc32c(body) != crc) {
    return absl::InvalidArgumentError("checkpoint checksum mismatch: the file is corrupt");
  }
  return body;
}

uint64_t correlationRuleHash(const RuleSet& rules, uint32_t correlation) {
  const CorrelationRule& rule = rules.correlations[correlation];
  DefinitionHash hash;
  hash.add(stateLabel(rule));
  hash.addBytes(static_cast<uint64_t>(rule.type));
  hash.addBytes(rule.detections.size());
  for (size_t i = 0; i < rule.detections.size(); ++i) {
    if (rule.chained[i] != kNoRule) {
      const CorrelationRule& inner = rules.correlations[rule.chained[i]];
      hash.add("correlation");
      hash.add(stateLabel(inner));
    } else {
      const DetectionRule& detection = rules.detections[rule.detections[i]];
      hash.add(stateLabel(detection));
    }
    hash.addBytes(rule.group_by_rule[i].size());
    for (const GroupField& field : rule.group_by_rule[i]) hash.add(field.event.name());
  }
  hash.addBytes(rule.value_refs.size());
  for (const GroupField& field : rule.value_refs) hash.add(field.event.name());
  hash.addBytes(static_cast<uint64_t>(rule.timespan_ns));
  hash.addBytes(rule.min_count);
  hash.addBytes(std::bit_cast<uint64_t>(rule.min_value));
  hash.addBytes(rule.min_value_inclusive ? 1 : 0);
  hash.addBytes(rule.bounds.size());
  for (const ConditionBound& bound : rule.bounds) {
    hash.addBytes(static_cast<uint64_t>(bound.op));
    hash.addBytes(std::bit_cast<uint64_t>(bound.value));
  }
  hash.addBytes(rule.count_cap);
  hash.addBytes(std::bit_cast<uint64_t>(rule.percentile));
  hash.addBytes(static_cast<uint64_t>(rule.suppress_ns));
  return hash.value();
}

uint64_t suppressionHash(const DetectionRule& rule) {
  DefinitionHash hash;
  hash.add(stateLabel(rule));
  hash.addBytes(static_cast<uint64_t>(rule.suppress_ns));
  hash.addBytes(rule.suppress_fields.size());
  for (const GroupField& field : rule.suppress_fields) hash.add(field.event.name());
  return hash.value();
}

absl::Status writeFileAtomically(const std::string& path, std::string_view bytes) {
  const std::string temp = internal::concat(path, ".tmp");
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errnoStatus("cannot create", temp);
  size_t written = 0;
  while (written < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status status = errnoStatus("cannot write", temp);
      ::close(fd);
      ::unlink(temp.c_str());
      return status;
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    absl::Status status = errnoStatus("cannot fsync", temp);
    ::close(fd);
    ::unlink(temp.c_str());
    return status;
  }
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    absl::Status status = errnoStatus("cannot rename over", path);
    ::unlink(temp.c_str());
    return status;
  }
  // The rename lasts a crash only once the directory entry is on disk.
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string directory = parent.empty() ? std::string(".") : parent.string();
  int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return errnoStatus("cannot open directory", directory);
  int rc = ::fsync(dir_fd);
  ::close(dir_fd);
  if (rc != 0) return errnoStatus("cannot fsync directory", directory);
  return absl::OkStatus();
}

}  // namespace vigil::correlate

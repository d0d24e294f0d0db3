// Little-endian encoding of correlation checkpoints (see correlate/checkpoint.h for the
// file layout). The CRC32C that guards them is in common/crc32c.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "common/crc32c.h"

namespace vigil::correlate::internal {

using ::vigil::crc32c;
using ::vigil::crc32cPortable;

class ByteWriter {
 public:
  explicit ByteWriter(std::string& out) : out_(out) {}

  void u32(uint32_t value) { put(&value, sizeof(value)); }
  void u64(uint64_t value) { put(&value, sizeof(value)); }
  void i64(int64_t value) { put(&value, sizeof(value)); }
  void text(std::string_view value) {
    u32(static_cast<uint32_t>(value.size()));
    out_.append(value);
  }

 private:
  // NOTE: writes host byte order; every supported target (x86-64, aarch64) is little-endian.
  void put(const void* data, size_t size) { out_.append(static_cast<const char*>(data), size); }

  std::string& out_;
};

// Reads what ByteWriter wrote. Every read checks the remaining length, and after the
// first failed read every later one fails too, so a caller may check ok() once per record.
class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : rest_(bytes) {}

  bool u32(uint32_t& value) { return get(&value, sizeof(value)); }
  bool u64(uint64_t& value) { return get(&value, sizeof(value)); }
  bool i64(int64_t& value) { return get(&value, sizeof(value)); }
  bool text(std::string_view& value) {
    uint32_t size = 0;
    if (!u32(size) || size > rest_.size()) return fail();
    value = rest_.substr(0, size);
    rest_.remove_prefix(size);
    return true;
  }
  bool ok() const { return ok_; }
  size_t remaining() const { return rest_.size(); }

 private:
  bool get(void* data, size_t size) {
    if (!ok_ || rest_.size() < size) return fail();
    std::memcpy(data, rest_.data(), size);
    rest_.remove_prefix(size);
    return true;
  }
  bool fail() {
    ok_ = false;
    rest_ = {};
    return false;
  }

  std::string_view rest_;
  bool ok_ = true;
};

// One correlation group as a checkpoint records it.
struct SavedGroup {
  std::string_view key;
  uint64_t first_seq = 0;
  uint64_t next_seq = 0;
  int64_t newest_ns = 0;
  uint32_t count = 0;
  std::vector<int64_t> words;  // the window state, then the suppress word if the rule has one
  // The group's evidence still in the pool, oldest first: the event's sequence number in
  // the group, its raw text and its indicator hit lines.
  struct Evidence {
    uint64_t seq = 0;
    std::string_view raw;
    std::string_view hits;
  };
  std::vector<Evidence> evidence;
};

}  // namespace vigil::correlate::internal

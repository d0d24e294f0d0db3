// Encoding of correlation group keys. A key is the tenant followed by each group-by
// value, and every part is written as its length (unsigned LEB128) and then its bytes.
// Because a part's length comes before it, no byte inside a value can move the boundary
// of another value, so keys of different value tuples always differ.
//
// A key that fills its buffer is cut, and its last kKeyHashBytes bytes are replaced by a
// marker and a 64-bit hash of the whole encoding, cut bytes included. So two value tuples
// that agree on the kept bytes and differ after them still get different keys (up to a
// hash collision), and a key as long as the buffer is always one in this form.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace vigil::correlate::internal {

// Bytes at the end of a full-length key: a marker byte and a 64-bit hash.
inline constexpr size_t kKeyHashBytes = 9;

// Writes group key parts into a caller-owned buffer. Parts that do not fit are cut at the
// buffer's end, and truncated() then returns true. Never allocates.
class GroupKeyWriter {
 public:
  explicit GroupKeyWriter(std::span<char> buffer) : buffer_(buffer) {}

  // Appends one part: its length, then its bytes.
  void addPart(std::string_view value) {
    uint64_t length = value.size();
    do {
      char byte = static_cast<char>(length & 0x7f);
      length >>= 7;
      if (length != 0) byte = static_cast<char>(byte | 0x80);
      write(std::string_view(&byte, 1));
    } while (length != 0);
    write(value);
  }

  // Returns the key. A key that reached the buffer's size gets its hashed tail here.
  std::string_view key() {
    if (used_ == buffer_.size() && buffer_.size() > kKeyHashBytes && !hashed_) {
      uint64_t hash = hashBytes(0xcbf29ce484222325ull, buffer_.data(), used_) ^ overflow_hash_;
      hash ^= hash >> 29;
      hash *= 0xbf58476d1ce4e5b9ull;
      hash ^= hash >> 32;
      char* tail = buffer_.data() + buffer_.size() - kKeyHashBytes;
      tail[0] = '\xff';
      std::memcpy(tail + 1, &hash, sizeof(hash));
      hashed_ = true;
      truncated_ = true;
    }
    return {buffer_.data(), used_};
  }
  bool truncated() const { return truncated_; }

 private:
  // Returns the FNV-1a hash of `size` bytes, continuing from `hash`.
  static uint64_t hashBytes(uint64_t hash, const char* data, size_t size) {
    for (size_t i = 0; i < size; ++i) {
      hash ^= static_cast<unsigned char>(data[i]);
      hash *= 0x100000001b3ull;
    }
    return hash;
  }

  void write(std::string_view text) {
    size_t n = std::min(text.size(), buffer_.size() - used_);
    if (n < text.size()) {
      truncated_ = true;
      // Hashes the bytes that are cut off. Keys that fit never reach this line.
      overflow_hash_ = hashBytes(overflow_hash_ == 0 ? 0x84222325cbf29ce4ull : overflow_hash_,
                                 text.data() + n, text.size() - n);
    }
    // A missing group-by field arrives as a default string_view, whose data() is null,
    // and memcpy with a null source is undefined even for zero bytes.
    if (n == 0) return;
    std::memcpy(buffer_.data() + used_, text.data(), n);
    used_ += n;
  }

  std::span<char> buffer_;
  size_t used_ = 0;
  bool truncated_ = false;
  bool hashed_ = false;
  uint64_t overflow_hash_ = 0;
};

// Reads the parts of a key written by GroupKeyWriter, in order. On a key that was cut,
// the part at the cut comes back cut, and the parts after it come back empty.
// `full_length` is the writer's buffer size: a key of that length ends in the hashed tail,
// which is not part of any value.
class GroupKeyReader {
 public:
  GroupKeyReader(std::string_view key, size_t full_length)
      : rest_(key.size() == full_length && full_length > kKeyHashBytes
                  ? key.substr(0, key.size() - kKeyHashBytes)
                  : key) {}

  // Returns the next part, or an empty view when the key has no more parts.
  std::string_view nextPart() {
    uint64_t length = 0;
    int shift = 0;
    while (true) {
      if (rest_.empty() || shift > 56) {
        rest_ = {};
        return {};
      }
      uint8_t byte = static_cast<uint8_t>(rest_.front());
      rest_.remove_prefix(1);
      length |= static_cast<uint64_t>(byte & 0x7f) << shift;
      shift += 7;
      if ((byte & 0x80) == 0) break;
    }
    size_t n = length < rest_.size() ? static_cast<size_t>(length) : rest_.size();
    std::string_view part = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return part;
  }

 private:
  std::string_view rest_;
};

}  // namespace vigil::correlate::internal

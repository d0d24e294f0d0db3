// Encoding of correlation group keys. A key is the tenant followed by each group-by
// value, and every part is written as its length (unsigned LEB128) and then its bytes.
// Because a part's length comes before it, no byte inside a value can move the boundary
// of another value, so keys of different value tuples always differ.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace vigil::correlate::internal {

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

  std::string_view key() const { return {buffer_.data(), used_}; }
  bool truncated() const { return truncated_; }

 private:
  void write(std::string_view text) {
    size_t n = std::min(text.size(), buffer_.size() - used_);
    if (n < text.size()) truncated_ = true;
    // A missing group-by field arrives as a default string_view, whose data() is null,
    // and memcpy with a null source is undefined even for zero bytes.
    if (n == 0) return;
    std::memcpy(buffer_.data() + used_, text.data(), n);
    used_ += n;
  }

  std::span<char> buffer_;
  size_t used_ = 0;
  bool truncated_ = false;
};

// Reads the parts of a key written by GroupKeyWriter, in order. On a key that was cut,
// the part at the cut comes back cut, and the parts after it come back empty.
class GroupKeyReader {
 public:
  explicit GroupKeyReader(std::string_view key) : rest_(key) {}

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

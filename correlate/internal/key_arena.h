// Storage for correlation group keys outside the group slots, each in a block sized to
// the key. Blocks come in eight size classes (8 to 1024 bytes, powers of two), and a
// freed block goes on its class's free list, whose links live inside the free blocks, so
// a steady key population reuses blocks without allocating.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace vigil::correlate::internal {

class KeyArena {
 public:
  static constexpr size_t kMaxKeyBytes = 1024;

  // Reserves `initial_bytes` so the first keys do not grow the arena.
  explicit KeyArena(size_t initial_bytes);

  // Copies `key` (at most kMaxKeyBytes) into a free block of its class and returns the
  // block's offset. Grows the arena only when the class has no free block.
  uint32_t store(std::string_view key);
  // Returns the block of a key of `length` bytes at `offset` to its class's free list.
  void release(uint32_t offset, size_t length);
  // The key stored at `offset`. Valid until the next store().
  std::string_view view(uint32_t offset, size_t length) const {
    return {bytes_.data() + offset, length};
  }

  // Bytes held by blocks in use.
  size_t usedBytes() const { return used_bytes_; }
  // Bytes the arena has allocated (used, free and reserved).
  size_t capacityBytes() const { return bytes_.capacity(); }

 private:
  static constexpr uint32_t kNoBlock = UINT32_MAX;
  static constexpr size_t kClasses = 8;

  // Returns the class of a key of `length` bytes: 0 for up to 8 bytes, 7 for up to 1024.
  static size_t classOf(size_t length);
  static size_t blockBytes(size_t size_class) { return size_t{8} << size_class; }

  std::vector<char> bytes_;
  std::array<uint32_t, kClasses> free_heads_;
  size_t used_bytes_ = 0;
};

}  // namespace vigil::correlate::internal

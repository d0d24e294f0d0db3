#include "correlate/internal/key_arena.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace vigil::correlate::internal {

KeyArena::KeyArena(size_t initial_bytes) {
  bytes_.reserve(initial_bytes);
  free_heads_.fill(kNoBlock);
}

size_t KeyArena::classOf(size_t length) {
  if (length <= 8) return 0;
  return std::min<size_t>(static_cast<size_t>(std::bit_width(length - 1)) - 3, kClasses - 1);
}

uint32_t KeyArena::store(std::string_view key) {
  if (key.size() > kMaxKeyBytes) key = key.substr(0, kMaxKeyBytes);
  const size_t size_class = classOf(key.size());
  const size_t block = blockBytes(size_class);
  uint32_t offset = free_heads_[size_class];
  if (offset != kNoBlock) {
    // The first four bytes of a free block hold the offset of the next free block.
    std::memcpy(&free_heads_[size_class], bytes_.data() + offset, sizeof(uint32_t));
  } else {
    offset = static_cast<uint32_t>(bytes_.size());
    bytes_.resize(bytes_.size() + block);
  }
  if (!key.empty()) std::memcpy(bytes_.data() + offset, key.data(), key.size());
  used_bytes_ += block;
  return offset;
}

void KeyArena::release(uint32_t offset, size_t length) {
  const size_t size_class = classOf(length);
  std::memcpy(bytes_.data() + offset, &free_heads_[size_class], sizeof(uint32_t));
  free_heads_[size_class] = offset;
  used_bytes_ -= blockBytes(size_class);
}

}  // namespace vigil::correlate::internal

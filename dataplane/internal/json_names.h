// Field names and arena copies shared by the DOM and On-Demand JSON flatteners.
#pragma once

#include <cstring>
#include <string_view>
#include <utility>

#include "common/event.h"

namespace vigil::dataplane::internal {

// Copies `text` into the event's arena. Returns an empty view with data() == nullptr and
// sets kFlagArenaFull when the arena has no room; an empty `text` gives a non-null view.
inline std::string_view copyToArena(Event& event, std::string_view text) {
  if (text.empty()) return std::string_view("", 0);
  const std::string_view copy = event.arena.copy(text);
  if (copy.empty()) event.flags |= kFlagArenaFull;
  return copy.empty() ? std::string_view{} : copy;
}

// Returns "<prefix>.<key>" in the arena, or `key` itself when `prefix` is empty.
inline std::string_view joinName(Event& event, std::string_view prefix, std::string_view key) {
  if (prefix.empty()) return key;
  const size_t len = prefix.size() + 1 + key.size();
  char* out = event.arena.alloc(len);
  if (out == nullptr) {
    event.flags |= kFlagArenaFull;
    return {};
  }
  std::memcpy(out, prefix.data(), prefix.size());
  out[prefix.size()] = '.';
  std::memcpy(out + prefix.size() + 1, key.data(), key.size());
  return {out, len};
}

// Returns the name of array element `index`: "<prefix>.<index>", in the arena.
inline std::string_view indexName(Event& event, std::string_view prefix, size_t index) {
  char digits[24];
  size_t len = 0;
  do {
    digits[len++] = static_cast<char>('0' + index % 10);
    index /= 10;
  } while (index != 0);
  for (size_t i = 0; i < len / 2; ++i) std::swap(digits[i], digits[len - 1 - i]);
  const std::string_view index_text(digits, len);
  // With an empty prefix (an array under the key "") joinName() would return the stack
  // buffer itself.
  if (prefix.empty()) return copyToArena(event, index_text);
  return joinName(event, prefix, index_text);
}

}  // namespace vigil::dataplane::internal

#include "dataplane/internal/utf8.h"

#include <cstddef>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common/event.h"
#include "common/utf8.h"
#include "simdjson.h"

namespace vigil::dataplane::internal {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD in UTF-8
constexpr size_t kReplacementLen = 3;

size_t validPrefixLength(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    const int len = utf8SequenceLength(text, pos);
    if (len < 0) break;
    pos += static_cast<size_t>(len);
  }
  return pos;
}

}  // namespace

bool isValidUtf8(std::string_view text) {
  // Most log lines are pure ASCII, and for a line of a few hundred bytes the library call
  // costs more than checking the high bits here. Validation resumes in simdjson at the
  // first block with a high bit: every byte before it is ASCII, so a multi-byte sequence
  // cannot start earlier.
  const char* data = text.data();
  const size_t size = text.size();
  size_t pos = 0;
#if defined(__SSE2__)
  // 32 bytes per step, and the last 1 to 16 bytes as one block that ends at the end of
  // the text, overlapping bytes already checked.
  for (; pos + 32 <= size; pos += 32) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + pos));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + pos + 16));
    if (_mm_movemask_epi8(_mm_or_si128(a, b)) != 0) {
      return simdjson::validate_utf8(data + pos, size - pos);
    }
  }
  if (pos + 16 <= size) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + pos));
    if (_mm_movemask_epi8(a) != 0) return simdjson::validate_utf8(data + pos, size - pos);
    pos += 16;
  }
  if (pos < size && size >= 16) {
    const size_t last = size - 16;
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + last));
    if (_mm_movemask_epi8(a) != 0) return simdjson::validate_utf8(data + pos, size - pos);
    return true;
  }
#else
  constexpr uint64_t kHighBits = 0x8080808080808080ull;
  for (; pos + 16 <= size; pos += 16) {
    uint64_t low = 0;
    uint64_t high = 0;
    std::memcpy(&low, data + pos, 8);
    std::memcpy(&high, data + pos + 8, 8);
    if (((low | high) & kHighBits) != 0) {
      return simdjson::validate_utf8(data + pos, size - pos);
    }
  }
#endif
  for (; pos < size; ++pos) {
    if (static_cast<unsigned char>(data[pos]) >= 0x80) {
      return simdjson::validate_utf8(data + pos, size - pos);
    }
  }
  return true;
}

size_t lengthWithoutCutCharacter(std::string_view text) {
  // A character takes at most 4 bytes, so a cut one starts in the last 3.
  const size_t size = text.size();
  size_t start = size;
  for (size_t back = 1; back <= 3 && back <= size; ++back) {
    if ((static_cast<unsigned char>(text[size - back]) & 0xC0) != 0x80) {
      start = size - back;
      break;
    }
  }
  if (start == size) return size;
  const auto lead = static_cast<unsigned char>(text[start]);
  if (lead < 0xC2 || lead > 0xF4) return size;
  // A maximal subpart that reaches the end ran out of bytes and is not ill-formed.
  const int len = utf8SequenceLength(text, start);
  return len < 0 && start + static_cast<size_t>(-len) == size ? start : size;
}

std::string_view repairUtf8(std::string_view text, Arena& arena, uint32_t& flags) {
  if (isValidUtf8(text)) return text;
  flags |= kFlagInvalidUtf8;

  // Each input byte becomes at most one U+FFFD (3 bytes), which bounds the copy.
  const size_t max_len = text.size() * kReplacementLen;
  char* out = arena.alloc(max_len);
  if (out == nullptr) {
    flags |= kFlagArenaFull;
    return text.substr(0, validPrefixLength(text));
  }

  size_t written = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const int len = utf8SequenceLength(text, pos);
    if (len > 0) {
      for (int i = 0; i < len; ++i) out[written++] = text[pos++];
      continue;
    }
    for (size_t i = 0; i < kReplacementLen; ++i) out[written++] = kReplacement[i];
    pos += static_cast<size_t>(-len);
  }
  arena.shrinkLast(out, written);
  return {out, written};
}

}  // namespace vigil::dataplane::internal

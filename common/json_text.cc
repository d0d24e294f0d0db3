#include "common/json_text.h"

#include <emmintrin.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "nlohmann/json.hpp"

namespace vigil {

namespace {

// Returns the offset of the first 16-byte block from `pos` on that contains a byte of 0x80
// or more, or of the first block start with fewer than 16 bytes left.
size_t skipAsciiBlocks(const char* data, size_t size, size_t pos) {
  while (pos + 16 <= size) {
    const __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + pos));
    if (_mm_movemask_epi8(block) != 0) break;
    pos += 16;
  }
  return pos;
}

// Bytes that JSON strings escape: quotes, backslashes and control characters.
constexpr std::array<bool, 256> kNeedsEscape = [] {
  std::array<bool, 256> table{};
  for (int c = 0; c < 0x20; ++c) table[c] = true;
  table['"'] = true;
  table['\\'] = true;
  return table;
}();

}  // namespace

bool validUtf8(std::string_view text) {
  const auto* begin = reinterpret_cast<const unsigned char*>(text.data());
  const size_t ascii = skipAsciiBlocks(text.data(), text.size(), 0);
  if (text.size() - ascii < 16) {
    // Short texts and the tail after the last block: one pass over the bytes.
    unsigned char any = 0;
    for (size_t i = ascii; i < text.size(); ++i) any |= begin[i];
    if (any < 0x80) return true;
  }
  const auto* p = begin + ascii;
  const auto* end = begin + text.size();
  while (p < end) {
    if (*p < 0x80) {
      ++p;
      // Long ASCII runs after a non-ASCII character go 16 bytes at a time again.
      if (end - p >= 16 && *p < 0x80) {
        p = begin + skipAsciiBlocks(text.data(), text.size(), static_cast<size_t>(p - begin));
      }
      continue;
    }
    size_t extra = 0;
    uint32_t code = 0;
    if ((*p & 0xE0) == 0xC0) {
      extra = 1;
      code = *p & 0x1F;
    } else if ((*p & 0xF0) == 0xE0) {
      extra = 2;
      code = *p & 0x0F;
    } else if ((*p & 0xF8) == 0xF0) {
      extra = 3;
      code = *p & 0x07;
    } else {
      return false;
    }
    if (static_cast<size_t>(end - p) <= extra) return false;
    for (size_t i = 1; i <= extra; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      code = (code << 6) | (p[i] & 0x3F);
    }
    constexpr uint32_t kMinForLength[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMinForLength[extra] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    p += extra + 1;
  }
  return true;
}

void appendJsonString(std::string_view text, std::string& out) {
  if (!validUtf8(text)) {
    out += nlohmann::json(std::string(text))
               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return;
  }
  appendValidJsonString(text, out);
}

void appendValidJsonString(std::string_view text, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + text.size() + 2);
  out.push_back('"');
  const char* data = text.data();
  const size_t size = text.size();
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i last_control = _mm_set1_epi8(0x1F);
  size_t plain = 0;  // start of the run of characters copied as they are
  size_t i = 0;
  const auto specialMask = [&](const char* at) {
    // A byte needs escaping when it is a quote, a backslash or at most 0x1F. The unsigned
    // maximum with 0x1F equals 0x1F only for those control characters.
    const __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
    const __m128i control = _mm_cmpeq_epi8(_mm_max_epu8(block, last_control), last_control);
    const __m128i special = _mm_or_si128(
        control, _mm_or_si128(_mm_cmpeq_epi8(block, quote), _mm_cmpeq_epi8(block, backslash)));
    return static_cast<uint32_t>(_mm_movemask_epi8(special));
  };
  while (i < size) {
    uint32_t mask = 0;
    if (i + 16 <= size) {
      mask = specialMask(data + i);
      if (mask == 0) {
        i += 16;
        continue;
      }
    } else {
      // The tail after the last whole block, a byte at a time.
      while (i < size && !kNeedsEscape[static_cast<unsigned char>(data[i])]) ++i;
      if (i == size) break;
      mask = 1;  // bit 0: the byte at i needs escaping
    }
    i += static_cast<size_t>(__builtin_ctz(mask));
    const unsigned char c = static_cast<unsigned char>(data[i]);
    out.append(data + plain, i - plain);
    plain = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0x0f]);
    }
    ++i;
  }
  out.append(data + plain, size - plain);
  out.push_back('"');
}

void appendJsonStringArray(const std::vector<std::string>& texts, std::string& out) {
  out.push_back('[');
  for (size_t i = 0; i < texts.size(); ++i) {
    if (i != 0) out.push_back(',');
    appendJsonString(texts[i], out);
  }
  out.push_back(']');
}

namespace {

template <typename Integer>
void appendDecimal(Integer value, std::string& out) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), value);
  out.append(digits, end);
}

}  // namespace

void appendJsonInteger(int64_t value, std::string& out) { appendDecimal(value, out); }
void appendJsonInteger(uint64_t value, std::string& out) { appendDecimal(value, out); }

void appendJsonKey(std::string_view key, std::string& out) {
  out.push_back('"');
  out.append(key);
  out += "\":";
}

void appendJsonDouble(double value, std::string& out) {
  if (!std::isfinite(value)) {
    out += "null";
    return;
  }
  std::array<char, 64> digits;
  char* end = nlohmann::detail::to_chars(digits.data(), digits.data() + digits.size(), value);
  out.append(digits.data(), static_cast<size_t>(end - digits.data()));
}

}  // namespace vigil

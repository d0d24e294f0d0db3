#include "common/utf8.h"

namespace vigil {
namespace {

bool isContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

}  // namespace

int utf8SequenceLength(std::string_view text, size_t pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  if (lead < 0x80) return 1;
  int len = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    len = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    len = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    len = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return -1;  // a continuation byte, C0, C1 or F5..FF cannot start a character
  }
  for (int i = 1; i < len; ++i) {
    const size_t at = pos + static_cast<size_t>(i);
    if (at >= text.size()) return -i;
    const auto c = static_cast<unsigned char>(text[at]);
    const bool in_range = i == 1 ? (c >= low && c <= high) : isContinuation(c);
    if (!in_range) return -i;
  }
  return len;
}

size_t utf8PrefixLength(std::string_view text, size_t max) {
  if (text.size() <= max) return text.size();
  size_t length = max;
  for (int back = 0; back < 3 && length > 0; ++back) {
    if (!isContinuation(static_cast<unsigned char>(text[length]))) break;
    --length;
  }
  // Not a character start after three continuation bytes: invalid text, cut at `max`.
  return isContinuation(static_cast<unsigned char>(text[length])) ? max : length;
}

}  // namespace vigil

#include "intel/internal/punycode.h"

#include <cstdint>
#include <vector>

namespace vigil::intel::internal {
namespace {

// Bootstring parameters for Punycode (RFC 3492 section 5).
constexpr uint32_t kBase = 36;
constexpr uint32_t kTMin = 1;
constexpr uint32_t kTMax = 26;
constexpr uint32_t kSkew = 38;
constexpr uint32_t kDamp = 700;
constexpr uint32_t kInitialBias = 72;
constexpr uint32_t kInitialN = 128;
constexpr uint32_t kMaxInt = 0xffffffffu;

// Decodes UTF-8 into code points; rejects overlong forms, surrogates and values past
// U+10FFFF.
std::optional<std::vector<uint32_t>> decodeUtf8(std::string_view text) {
  std::vector<uint32_t> out;
  size_t i = 0;
  while (i < text.size()) {
    auto b = static_cast<uint8_t>(text[i]);
    size_t extra = 0;
    uint32_t cp = 0;
    uint32_t min = 0;
    if (b < 0x80) {
      cp = b;
    } else if ((b & 0xe0) == 0xc0) {
      extra = 1, cp = b & 0x1f, min = 0x80;
    } else if ((b & 0xf0) == 0xe0) {
      extra = 2, cp = b & 0x0f, min = 0x800;
    } else if ((b & 0xf8) == 0xf0) {
      extra = 3, cp = b & 0x07, min = 0x10000;
    } else {
      return std::nullopt;
    }
    if (extra > 0 && i + extra >= text.size()) return std::nullopt;
    for (size_t k = 1; k <= extra; ++k) {
      auto c = static_cast<uint8_t>(text[i + k]);
      if ((c & 0xc0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return std::nullopt;
    out.push_back(cp);
    i += extra + 1;
  }
  return out;
}

char encodeDigit(uint32_t d) { return static_cast<char>(d < 26 ? 'a' + d : '0' + (d - 26)); }

uint32_t adapt(uint32_t delta, uint32_t num_points, bool first_time) {
  delta = first_time ? delta / kDamp : delta / 2;
  delta += delta / num_points;
  uint32_t k = 0;
  while (delta > ((kBase - kTMin) * kTMax) / 2) {
    delta /= kBase - kTMin;
    k += kBase;
  }
  return k + (kBase - kTMin + 1) * delta / (delta + kSkew);
}

}  // namespace

std::optional<std::string> punycodeEncode(std::string_view label) {
  std::optional<std::vector<uint32_t>> input = decodeUtf8(label);
  if (!input) return std::nullopt;
  std::string out;
  for (uint32_t cp : *input) {
    if (cp < 0x80) out += static_cast<char>(cp);
  }
  const auto basic = static_cast<uint32_t>(out.size());
  uint32_t handled = basic;
  if (basic > 0) out += '-';

  uint32_t n = kInitialN;
  uint32_t delta = 0;
  uint32_t bias = kInitialBias;
  const auto total = static_cast<uint32_t>(input->size());
  while (handled < total) {
    // The smallest code point not yet handled.
    uint32_t m = kMaxInt;
    for (uint32_t cp : *input) {
      if (cp >= n && cp < m) m = cp;
    }
    if (m - n > (kMaxInt - delta) / (handled + 1)) return std::nullopt;
    delta += (m - n) * (handled + 1);
    n = m;
    for (uint32_t cp : *input) {
      if (cp < n && ++delta == 0) return std::nullopt;
      if (cp != n) continue;
      // Write delta as a variable-length integer with the current bias.
      uint32_t q = delta;
      for (uint32_t k = kBase;; k += kBase) {
        uint32_t t = k <= bias ? kTMin : (k >= bias + kTMax ? kTMax : k - bias);
        if (q < t) break;
        out += encodeDigit(t + (q - t) % (kBase - t));
        q = (q - t) / (kBase - t);
      }
      out += encodeDigit(q);
      bias = adapt(delta, handled + 1, handled == basic);
      delta = 0;
      ++handled;
    }
    ++delta;
    ++n;
  }
  return out;
}

std::optional<std::string> toAsciiDomain(std::string_view name) {
  std::string out;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('.', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view label = name.substr(start, end - start);
    bool ascii = true;
    for (char c : label) ascii = ascii && static_cast<uint8_t>(c) < 0x80;
    if (start > 0) out += '.';
    if (ascii) {
      for (char c : label) out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    } else {
      std::string lower;
      for (char c : label) lower += (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
      std::optional<std::string> encoded = punycodeEncode(lower);
      if (!encoded) return std::nullopt;
      out += "xn--" + *encoded;
    }
    start = end + 1;
  }
  return out;
}

}  // namespace vigil::intel::internal

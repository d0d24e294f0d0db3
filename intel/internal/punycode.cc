#include "intel/internal/punycode.h"

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace vigil::intel::internal {

CodePoint decodeUtf8At(std::string_view text, size_t i) {
  auto b = static_cast<uint8_t>(text[i]);
  size_t extra = 0;
  uint32_t cp = 0;
  uint32_t min = 0;
  if (b < 0x80) {
    return {b, 1};
  } else if ((b & 0xe0) == 0xc0) {
    extra = 1, cp = b & 0x1f, min = 0x80;
  } else if ((b & 0xf0) == 0xe0) {
    extra = 2, cp = b & 0x0f, min = 0x800;
  } else if ((b & 0xf8) == 0xf0) {
    extra = 3, cp = b & 0x07, min = 0x10000;
  } else {
    return {};
  }
  if (i + extra >= text.size()) return {};
  for (size_t k = 1; k <= extra; ++k) {
    auto c = static_cast<uint8_t>(text[i + k]);
    if ((c & 0xc0) != 0x80) return {};
    cp = (cp << 6) | (c & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return {};
  return {cp, extra + 1};
}

bool breaksHostName(uint32_t cp) {
  return cp <= 0xbf || cp == 0xd7 || cp == 0xf7 || (cp >= 0x2000 && cp <= 0x2bff) ||
         (cp >= 0x3000 && cp <= 0x303f) || (cp >= 0xfe30 && cp <= 0xfe4f) ||
         (cp >= 0xff00 && cp <= 0xff20) || (cp >= 0xff3b && cp <= 0xff40) ||
         (cp >= 0xff5b && cp <= 0xff65) || cp == 0xfeff || (cp >= 0xfff0 && cp <= 0xffff) ||
         (cp >= 0x1f000 && cp <= 0x1faff);
}

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

// Decodes UTF-8 into code points.
std::optional<std::vector<uint32_t>> decodeUtf8(std::string_view text) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < text.size();) {
    const CodePoint d = decodeUtf8At(text, i);
    if (d.length == 0) return std::nullopt;
    out.push_back(d.cp);
    i += d.length;
  }
  return out;
}

// Output of the encoder: a growing string, or a fixed buffer that refuses to overflow.
class StringOut {
 public:
  explicit StringOut(std::string& out) : out_(out) {}
  bool put(char c) {
    out_ += c;
    return true;
  }
  size_t size() const { return out_.size(); }

 private:
  std::string& out_;
};

class BufferOut {
 public:
  explicit BufferOut(std::span<char> out) : out_(out) {}
  bool put(char c) {
    if (used_ == out_.size()) return false;
    out_[used_++] = c;
    return true;
  }
  size_t size() const { return used_; }

 private:
  std::span<char> out_;
  size_t used_ = 0;
};

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

template <typename Out>
bool encodeCodePoints(std::span<const uint32_t> input, Out& out) {
  const size_t start = out.size();
  for (uint32_t cp : input) {
    if (cp < 0x80 && !out.put(static_cast<char>(cp))) return false;
  }
  const auto basic = static_cast<uint32_t>(out.size() - start);
  uint32_t handled = basic;
  if (basic > 0 && !out.put('-')) return false;

  uint32_t n = kInitialN;
  uint32_t delta = 0;
  uint32_t bias = kInitialBias;
  const auto total = static_cast<uint32_t>(input.size());
  while (handled < total) {
    // The smallest code point not yet handled.
    uint32_t m = kMaxInt;
    for (uint32_t cp : input) {
      if (cp >= n && cp < m) m = cp;
    }
    if (m - n > (kMaxInt - delta) / (handled + 1)) return false;
    delta += (m - n) * (handled + 1);
    n = m;
    for (uint32_t cp : input) {
      if (cp < n && ++delta == 0) return false;
      if (cp != n) continue;
      // Write delta as a variable-length integer with the current bias.
      uint32_t q = delta;
      for (uint32_t k = kBase;; k += kBase) {
        uint32_t t = k <= bias ? kTMin : (k >= bias + kTMax ? kTMax : k - bias);
        if (q < t) break;
        if (!out.put(encodeDigit(t + (q - t) % (kBase - t)))) return false;
        q = (q - t) / (kBase - t);
      }
      if (!out.put(encodeDigit(q))) return false;
      bias = adapt(delta, handled + 1, handled == basic);
      delta = 0;
      ++handled;
    }
    ++delta;
    ++n;
  }
  return true;
}

}  // namespace

std::optional<std::string> punycodeEncode(std::string_view label) {
  std::optional<std::vector<uint32_t>> input = decodeUtf8(label);
  if (!input) return std::nullopt;
  std::string out;
  StringOut sink(out);
  if (!encodeCodePoints(std::span<const uint32_t>(*input), sink)) return std::nullopt;
  return out;
}

size_t labelToAscii(std::string_view label, std::span<char> out) {
  std::array<uint32_t, kMaxLabelInput> input;
  size_t count = 0;
  bool ascii = true;
  for (size_t i = 0; i < label.size();) {
    const CodePoint d = decodeUtf8At(label, i);
    if (d.length == 0 || count == input.size()) return 0;
    // ASCII letters are lower-cased before encoding, as toAsciiDomain() does.
    input[count++] = d.cp >= 'A' && d.cp <= 'Z' ? d.cp + 32 : d.cp;
    ascii = ascii && d.cp < 0x80;
    i += d.length;
  }
  BufferOut sink(out);
  if (!ascii) {
    for (char c : std::string_view("xn--")) {
      if (!sink.put(c)) return 0;
    }
  }
  if (ascii) {
    for (size_t k = 0; k < count; ++k) {
      if (!sink.put(static_cast<char>(input[k]))) return 0;
    }
  } else if (!encodeCodePoints(std::span<const uint32_t>(input.data(), count), sink)) {
    return 0;
  }
  return sink.size();
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

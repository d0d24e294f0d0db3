#include "common/json_text.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>

#include "nlohmann/json.hpp"

namespace vigil {

bool validUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    if (*p < 0x80) {
      ++p;
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
  out.push_back('"');
  size_t plain = 0;  // start of the run of characters copied as they are
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text.data() + plain, i - plain);
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
  }
  out.append(text.data() + plain, text.size() - plain);
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

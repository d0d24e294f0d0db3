// The number syntax of rules and event values: decimal, with an optional leading minus, an
// optional fraction and an optional exponent.
#pragma once

#include <charconv>
#include <cmath>
#include <optional>
#include <string_view>

namespace vigil::correlate::internal {

// Parses the whole of `text` as a finite decimal number. Returns nullopt for anything
// else, including `inf`, `infinity` and `nan` in any letter case (which std::from_chars
// accepts) and values outside the range of double.
inline std::optional<double> parseDecimal(std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
      !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

}  // namespace vigil::correlate::internal

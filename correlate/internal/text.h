// Small string helpers for the loader's error messages. Debian 12's Abseil is built with
// its own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW = 0), so absl::StrCat does
// not take std::string_view; these helpers take both.
#pragma once

#include <concepts>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace vigil::correlate::internal {

inline void appendPart(std::string& out, const std::string& text) { out += text; }
inline void appendPart(std::string& out, std::string_view text) { out += text; }
inline void appendPart(std::string& out, const char* text) { out += text; }
inline void appendPart(std::string& out, char c) { out += c; }
inline void appendPart(std::string& out, absl::string_view text) {
  out.append(text.data(), text.size());
}
template <std::integral T>
void appendPart(std::string& out, T number) {
  out += std::to_string(number);
}

// Concatenates strings, string views (std and absl), characters and integers.
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::string out;
  (appendPart(out, parts), ...);
  return out;
}

// Compares two strings, folding ASCII letters.
inline bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = (a[i] >= 'A' && a[i] <= 'Z') ? static_cast<char>(a[i] + 32) : a[i];
    char y = (b[i] >= 'A' && b[i] <= 'Z') ? static_cast<char>(b[i] + 32) : b[i];
    if (x != y) return false;
  }
  return true;
}

}  // namespace vigil::correlate::internal

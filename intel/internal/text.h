// Helpers for handing std::string_view to Abseil. Debian 12's Abseil 20220623 is built
// with ABSL_OPTION_USE_STD_STRING_VIEW 0, so absl::string_view is its own class and does
// not convert from std::string_view implicitly.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace vigil::intel::internal {

inline absl::string_view av(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view sv(absl::string_view s) { return {s.data(), s.size()}; }

// Removes a leading UTF-8 byte order mark. Some editors write one at the start of a file,
// and it would otherwise become part of the first value or header name.
inline std::string_view stripUtf8Bom(std::string_view text) {
  constexpr std::string_view kBom = "\xEF\xBB\xBF";
  if (text.substr(0, kBom.size()) == kBom) text.remove_prefix(kBom.size());
  return text;
}

// Returns the rejection reason for the value `text` of the time member or column `field`
// that is no valid RFC 3339 timestamp. common/time.h stores times as int64 nanoseconds,
// which limits them to the years 1678 to 2261.
inline std::string invalidTimeReason(std::string_view field, std::string_view text) {
  return absl::StrCat("invalid ", av(field), " '", av(text),
                      "'; expected an RFC 3339 timestamp such as 2024-05-01T10:00:00Z, in the "
                      "years 1678 to 2261");
}

// Splits `text` at every byte in `separators`, dropping empty pieces when `skip_empty`.
inline std::vector<std::string_view> splitAny(std::string_view text, std::string_view separators,
                                              bool skip_empty) {
  std::vector<std::string_view> pieces;
  while (true) {
    size_t end = text.find_first_of(separators);
    std::string_view piece = text.substr(0, end);
    if (!piece.empty() || !skip_empty) pieces.push_back(piece);
    if (end == std::string_view::npos) return pieces;
    text.remove_prefix(end + 1);
  }
}

}  // namespace vigil::intel::internal

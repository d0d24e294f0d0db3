// The test that lets the matcher skip the URL and email database on most text.
#pragma once

#include <cstring>
#include <string_view>

#include "absl/strings/ascii.h"

namespace vigil::intel::internal {

// True for a byte that may end the local part of an email indicator. parseEmail() in
// list_syntax.cc rejects bytes up to 0x20, 0x7f and '@', '<', '>', ','.
inline bool mayEndLocalPart(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return byte > 0x20 && byte != 0x7f && c != '@' && c != '<' && c != '>' && c != ',';
}

// True when `text` contains "://", or an '@' between a byte that may end a local part and
// a letter, digit or '-'. Every URL indicator contains "://" and every email indicator
// ("local@domain", the domain in LDH form) such an '@'; the builder checks that this
// function holds for each. Neither condition changes with ASCII letter case, so text
// where it fails has no caseless match of a URL or email indicator. An '@' such as the
// one in "client @0x7f3a" of BIND query logs does not count.
inline bool hasUrlOrEmailMarker(std::string_view text) {
  const char* const begin = text.data();
  const char* const end = begin + text.size();
  for (const char* at = begin; at != end;) {
    at = static_cast<const char*>(std::memchr(at, '@', static_cast<size_t>(end - at)));
    if (at == nullptr) break;
    if (at != begin && at + 1 != end && mayEndLocalPart(at[-1]) &&
        (absl::ascii_isalnum(at[1]) || at[1] == '-')) {
      return true;
    }
    ++at;
  }
  return text.find("://") != std::string_view::npos;
}

}  // namespace vigil::intel::internal

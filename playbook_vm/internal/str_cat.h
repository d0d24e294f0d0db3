// absl::StrCat for std::string_view arguments. Debian 12's Abseil 20220623 is built with
// its own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW is 0 in absl/base/options.h),
// so a std::string_view does not convert to absl::AlphaNum and StrCat rejects it.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace vigil::playbook_vm::internal {

template <typename T>
decltype(auto) toAlphaNum(const T& value) {
  if constexpr (std::is_convertible_v<const T&, std::string_view> &&
                !std::is_convertible_v<const T&, absl::string_view>) {
    std::string_view view(value);
    return absl::string_view(view.data(), view.size());
  } else {
    return (value);
  }
}

// Same as absl::StrCat, also accepting std::string_view.
template <typename... T>
std::string strCat(const T&... args) {
  return absl::StrCat(toAlphaNum(args)...);
}

}  // namespace vigil::playbook_vm::internal

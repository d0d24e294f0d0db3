// Fuzzes the alert inbox row reader. A row that decodes must encode to a row that decodes
// to the same alert, so a filing never changes what the case sink stored.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "correlate/alert.h"
#include "mgmt/internal/stored_alert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<vigil::correlate::Alert> alert = vigil::mgmt::internal::decodeStoredAlert(text);
  if (!alert.ok()) {
    if (alert.status().message().empty()) std::abort();
    return 0;
  }
  const std::string again = vigil::mgmt::internal::encodeStoredAlert(*alert);
  absl::StatusOr<vigil::correlate::Alert> back = vigil::mgmt::internal::decodeStoredAlert(again);
  if (!back.ok()) std::abort();
  if (vigil::correlate::alertToJson(*back) != vigil::correlate::alertToJson(*alert)) std::abort();
  if (back->group != alert->group || back->receive_ns != alert->receive_ns) std::abort();
  return 0;
}

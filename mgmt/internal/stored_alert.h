// The alert inbox's text form of a correlate::Alert: every field the case store needs to
// file the alert later, in order, so encode then decode returns an equal alert (the
// suppress fields excepted, which are not serialized). alertToJson() is not enough here,
// because it loses the order of the group-by fields and the times' nanoseconds.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "correlate/alert.h"

namespace vigil::mgmt::internal {

std::string encodeStoredAlert(const correlate::Alert& alert);

// DataLoss naming the failing field when `text` is not what encodeStoredAlert() writes.
absl::StatusOr<correlate::Alert> decodeStoredAlert(std::string_view text);

}  // namespace vigil::mgmt::internal

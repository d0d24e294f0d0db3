// JSON error bodies of the API: {"error": {"code": "not_found", "message": "..."}}.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "mgmt/api_server.h"

namespace vigil::mgmt::internal {

// Returns the error body. Invalid UTF-8 in `message` (it may quote a request path) is
// replaced with U+FFFD.
std::string errorBody(absl::string_view code, absl::string_view message);

// Builds a response with `http_status` and the error body.
ApiResponse errorResponse(int http_status, absl::string_view code, absl::string_view message);

// "invalid_argument" for absl::StatusCode::kInvalidArgument, and so on.
std::string errorCodeName(absl::StatusCode code);

}  // namespace vigil::mgmt::internal

// Small OpenSSL wrappers for tokens and the audit chain.
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace vigil::mgmt::internal {

// Lower-case hex SHA-256 of `data` (64 characters).
std::string sha256Hex(absl::string_view data);

// `bytes` bytes from the OpenSSL CSPRNG as lower-case hex (2 * bytes characters).
// Logs and aborts when RAND_bytes fails, which only a broken host causes.
std::string randomHex(size_t bytes);

// Compares two strings in time that depends only on their lengths.
bool constantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace vigil::mgmt::internal

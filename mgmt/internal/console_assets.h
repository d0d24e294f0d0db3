// The files of the web console (mgmt/console/), compiled into the binary as bytes by
// cmake/EmbedConsole.cmake. The generated console_assets.cc defines consoleAssets().
#pragma once

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace vigil::mgmt::internal {

struct ConsoleAsset {
  absl::string_view name;    // path relative to mgmt/console/, such as "app.js"
  absl::string_view body;    // the file's bytes
  absl::string_view sha256;  // lower-case hex digest of body
};

// Every console file, sorted by name. The data is static; never allocates.
absl::Span<const ConsoleAsset> consoleAssets();

}  // namespace vigil::mgmt::internal

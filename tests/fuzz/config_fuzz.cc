// Fuzzes the daemon configuration loader: YAML parsing plus every validation rule. Any
// input must end in either a config or an error status with a message; yaml-cpp
// exceptions and bad conversions must never escape parseConfig().
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "mgmt/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<vigil::mgmt::DaemonConfig> config =
      vigil::mgmt::parseConfig(text, "fuzz.yaml", "/nonexistent-fuzz-base");
  if (!config.ok() && config.status().message().empty()) std::abort();
  return 0;
}

// Helpers the playbook runner's source files share (playbook_runner*.cc); not part of
// the public surface of mgmt.
#pragma once

#include <cstddef>
#include <iterator>
#include <string>

#include "mgmt/run_store.h"
#include "nlohmann/json.hpp"

namespace vigil::mgmt::internal {

// Final states in the order of PlaybookMetrics::finished.
inline constexpr RunState kFinalStates[] = {RunState::kSucceeded, RunState::kFailed, RunState::kDenied,
                                     RunState::kTimedOut};

inline size_t finalIndex(RunState state) {
  for (size_t i = 0; i < std::size(kFinalStates); ++i) {
    if (kFinalStates[i] == state) return i;
  }
  return 1;  // kFailed
}

// The JSON text of `j`, with invalid UTF-8 replaced by U+FFFD.
inline std::string dumpJson(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace vigil::mgmt::internal

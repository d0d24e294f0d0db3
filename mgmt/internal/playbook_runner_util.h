// Helpers the playbook runner's source files share (playbook_runner*.cc); not part of
// the public surface of mgmt.
#pragma once

#include <cstddef>
#include <iterator>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "mgmt/run_store.h"
#include "nlohmann/json.hpp"
#include "playbook_vm/program.h"

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

// The hash runs record for `program`: the hex SHA-256 of its playbook source.
inline std::string programHash(const playbook_vm::Program& program) {
  const auto& sha = program.sourceSha256();
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(sha.data()), sha.size()));
}

}  // namespace vigil::mgmt::internal

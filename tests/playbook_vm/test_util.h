// Helpers shared by the playbook VM tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "playbook_vm/builder.h"
#include "playbook_vm/program.h"

namespace vigil::playbook_vm::testing {

// Finishes `builder` and loads the bytes against `host`.
inline absl::StatusOr<std::unique_ptr<Program>> buildAndLoad(ProgramBuilder& builder,
                                                             const HostRegistry& host) {
  absl::StatusOr<std::vector<uint8_t>> bytes = builder.finish();
  if (!bytes.ok()) return bytes.status();
  return loadProgram(*bytes, host);
}

// Returns the loaded program or fails the calling test with the load error.
inline std::unique_ptr<Program> mustLoad(ProgramBuilder& builder, const HostRegistry& host) {
  absl::StatusOr<std::unique_ptr<Program>> program = buildAndLoad(builder, host);
  EXPECT_TRUE(program.ok()) << program.status();
  return program.ok() ? std::move(*program) : nullptr;
}

// Returns the load error message ("" when the program loaded).
inline std::string loadError(ProgramBuilder& builder, const HostRegistry& host) {
  absl::StatusOr<std::unique_ptr<Program>> program = buildAndLoad(builder, host);
  return program.ok() ? "" : std::string(program.status().message());
}

}  // namespace vigil::playbook_vm::testing

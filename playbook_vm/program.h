// Loading a playbook module: the host registry that resolves host imports, the verified
// Program that the VM runs, and the load-time limits.
//
// Loading runs on the control plane (it allocates and returns absl::Status); running a
// loaded Program is the data plane's business (vm.h).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "playbook_vm/value.h"

namespace vigil::playbook_vm {

// Version 2 added the module checksum. loadProgram() still reads version 1 modules, which
// have none, because runs that wait for an approval keep the module they started with.
inline constexpr uint32_t kFormatVersion = 2;
inline constexpr uint32_t kMinFormatVersion = 1;
inline constexpr std::string_view kModuleMagic = "VGPB";  // FlatBuffers file identifier

// Load-time limits. Jump targets and constant indexes are 16-bit fields and registers are
// 8-bit fields, so the encoding itself caps code at 65536 instructions. The lower code
// limit keeps the verifier's per-pc dataflow state at most 16384 x 256 bytes (4 MiB).
inline constexpr uint32_t kMaxCodeSize = 16384;          // instructions
inline constexpr uint32_t kMaxConstants = 65536;         // constant pool entries
inline constexpr uint32_t kMaxRegisters = 256;           // declared registers
inline constexpr uint32_t kMaxHostImports = 256;         // host functions per module
inline constexpr uint32_t kMaxStringConstant = 1 << 20;  // bytes per string constant
inline constexpr uint32_t kMaxNameLength = 256;          // program and import names, bytes
inline constexpr uint32_t kMaxHostArity = 16;            // arguments per host function

class HostCall;

// A host function. It reads call.args(), may create strings and lists in the run heap
// through `call`, and writes its result to `result` (null unless set). A non-OK status
// fails the run with RunError::kHostError and the status message; a failed allocation
// through `call` fails it with RunError::kMemoryLimit whatever status is returned.
using HostFunction = std::function<absl::Status(HostCall& call, Value& result)>;

// Host functions by name, with their arity, built on the control plane before any program
// is loaded. A registry must outlive every Program loaded against it. add() is not
// thread-safe, so call it only before those programs run; lookups are read-only.
class HostRegistry {
 public:
  struct Entry {
    std::string name;
    uint8_t arity;
    HostFunction function;
  };

  // Registers `function` under `name`. Fails with InvalidArgument on an empty or
  // over-long name, an arity above kMaxHostArity, or a duplicate name.
  absl::Status add(std::string_view name, uint32_t arity, HostFunction function);

  // Returns the entry for `name`, or nullptr.
  const Entry* find(std::string_view name) const;

  size_t size() const { return entries_.size(); }

 private:
  // std::unique_ptr keeps Entry addresses stable for resolved programs.
  std::vector<std::unique_ptr<Entry>> entries_;
};

inline constexpr uint32_t kMaxTriggerValues = 1024;  // per trigger list

// Alert severities as triggers compare them, lowest first.
enum class Severity : uint8_t { kInformational, kLow, kMedium, kHigh, kCritical };

// The alerts that start a playbook (module.fbs table Trigger). An empty list matches any
// value; has_trigger is false for a module that carries none.
struct Trigger {
  bool has_trigger = false;
  std::vector<std::string> rule_ids;
  std::vector<std::string> tags;
  Severity min_severity = Severity::kInformational;
  std::vector<std::string> tenants;
};

struct SourceLocation {
  uint32_t pc;
  uint32_t line;
  uint32_t column;
};

struct HostImport {
  std::string name;
  uint8_t arity;
  const HostRegistry::Entry* entry;  // resolved at load, owned by the registry
};

// A loaded and verified program. Immutable after load, so any number of Vms on any
// threads may run it at once. Owns a copy of the module bytes that string constants
// point into.
class Program {
 public:
  const std::string& name() const { return name_; }
  const std::array<uint8_t, 32>& sourceSha256() const { return source_sha256_; }
  uint32_t registerCount() const { return register_count_; }
  absl::Span<const uint32_t> code() const { return code_; }
  absl::Span<const Value> constants() const { return constants_; }
  absl::Span<const HostImport> hostImports() const { return imports_; }
  absl::Span<const SourceLocation> sourceMap() const { return source_map_; }
  const HostRegistry* registry() const { return registry_; }
  const Trigger& trigger() const { return trigger_; }

  // Returns the source position of `pc`, or {pc, 0, 0} when the source map has none.
  SourceLocation locate(uint32_t pc) const;

 private:
  friend absl::StatusOr<std::unique_ptr<Program>> loadProgram(absl::Span<const uint8_t>,
                                                              const HostRegistry&);

  std::vector<uint8_t> bytes_;
  std::string name_;
  std::array<uint8_t, 32> source_sha256_{};
  uint32_t register_count_ = 0;
  std::vector<uint32_t> code_;
  std::vector<Value> constants_;
  std::vector<HostImport> imports_;
  std::vector<SourceLocation> source_map_;
  const HostRegistry* registry_ = nullptr;
  Trigger trigger_;
};

// Checks the first 8 bytes of a module: a 4-byte root offset, then the magic "VGPB".
// Returns InvalidArgument starting "not a playbook module:" that reports whether the
// bytes are empty, shorter than 8 bytes or carry another magic.
absl::Status checkModuleHeader(absl::Span<const uint8_t> bytes);

// Sets the checksum of a module of format version 2 or later to the CRC32C of its bytes.
// ProgramBuilder::finish() calls it, and so do tests and fuzzers that change module bytes on
// purpose and want the loader to go past the checksum. Returns false, leaving `bytes`
// unchanged, when they fail the FlatBuffers verifier or carry no checksum field.
bool sealModule(std::vector<uint8_t>& bytes);

// Loads a module produced by ProgramBuilder::finish() (or any writer of module.fbs).
// Checks, in order: the magic (file identifier "VGPB"), the FlatBuffers verifier, the
// format version (kMinFormatVersion to kFormatVersion), the checksum (from version 2), the
// container limits, host import resolution against `host` (name found, arity equal) and
// the bytecode verifier (verifier.h). The version is read only
// after the FlatBuffers verifier, because an unverified read may go out of bounds. Returns
// InvalidArgument naming the failed check; NotFound when an import is not registered.
// Allocates; control plane only. `host` must outlive the returned Program.
absl::StatusOr<std::unique_ptr<Program>> loadProgram(absl::Span<const uint8_t> bytes,
                                                     const HostRegistry& host);

}  // namespace vigil::playbook_vm

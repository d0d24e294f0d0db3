#include "playbook_vm/program.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>

#include "common/crc32c.h"
#include "flatbuffers/flatbuffers.h"
#include "playbook_vm/internal/str_cat.h"
#include "playbook_vm/module_generated.h"
#include "playbook_vm/verifier.h"

namespace vigil::playbook_vm {
namespace {

absl::Status invalid(std::string_view detail) {
  return absl::InvalidArgumentError(internal::strCat("playbook module: ", detail));
}

// Decodes one constant; string constants point into `bytes` owned by the Program.
absl::StatusOr<Value> decodeConstant(const fb::Constant* c, size_t index) {
  if (c == nullptr) return invalid(internal::strCat("constant ", index, " is missing"));
  switch (c->kind()) {
    case fb::ConstantKind::Null:
      return Value::null();
    case fb::ConstantKind::Bool:
      return Value::boolean(c->bool_value());
    case fb::ConstantKind::Int:
      return Value::integer(c->int_value());
    case fb::ConstantKind::Double:
      return Value::real(c->double_value());
    case fb::ConstantKind::String: {
      const flatbuffers::String* s = c->string_value();
      if (s == nullptr) {
        return invalid(internal::strCat("string constant ", index, " has no string_value"));
      }
      if (s->size() > kMaxStringConstant) {
        return invalid(internal::strCat("string constant ", index, " is ", s->size(),
                                        " bytes, above the limit of ", kMaxStringConstant));
      }
      return Value::string(std::string_view(s->data(), s->size()));
    }
  }
  return invalid(internal::strCat("constant ", index, " has unknown kind ",
                                  static_cast<int>(c->kind()), " (valid: 0..4)"));
}

absl::Status checkName(std::string_view what, const flatbuffers::String* name) {
  if (name->size() == 0 || name->size() > kMaxNameLength) {
    return invalid(
        internal::strCat(what, " name length ", name->size(), " is outside 1..", kMaxNameLength));
  }
  return absl::OkStatus();
}

// Copies one trigger list, rejecting more than kMaxTriggerValues entries or empty or
// over-long values.
absl::Status readTriggerList(std::string_view what,
                             const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>* in,
                             std::vector<std::string>& out) {
  if (in == nullptr) return absl::OkStatus();
  if (in->size() > kMaxTriggerValues) {
    return invalid(internal::strCat("trigger ", what, " has ", in->size(),
                                    " entries, above the limit of ", kMaxTriggerValues));
  }
  for (const flatbuffers::String* value : *in) {
    if (absl::Status s = checkName(internal::strCat("trigger ", what), value); !s.ok()) return s;
    out.push_back(value->str());
  }
  return absl::OkStatus();
}

absl::Status readTrigger(const fb::Trigger* in, Trigger& out) {
  if (in == nullptr) return absl::OkStatus();
  if (in->min_severity() > static_cast<uint8_t>(Severity::kCritical)) {
    return invalid(internal::strCat("trigger min_severity ", in->min_severity(),
                                    " is outside 0..4"));
  }
  out.has_trigger = true;
  out.min_severity = static_cast<Severity>(in->min_severity());
  if (absl::Status s = readTriggerList("rule_ids", in->rule_ids(), out.rule_ids); !s.ok()) {
    return s;
  }
  if (absl::Status s = readTriggerList("tags", in->tags(), out.tags); !s.ok()) return s;
  return readTriggerList("tenants", in->tenants(), out.tenants);
}

// Returns the CRC32C of `bytes` with the 4 bytes at `field` (the checksum) taken as zero.
uint32_t moduleChecksum(absl::Span<const uint8_t> bytes, size_t field) {
  auto text = [&](size_t from, size_t to) {
    return std::string_view(reinterpret_cast<const char*>(bytes.data()) + from, to - from);
  };
  uint32_t crc = crc32c(text(0, field));
  crc = crc32cExtend(crc, std::string_view("\0\0\0\0", 4));
  return crc32cExtend(crc, text(field + 4, bytes.size()));
}

// Returns the offset of the checksum field in a module that passed the FlatBuffers
// verifier, or nullopt when the header has none.
std::optional<size_t> checksumOffset(absl::Span<const uint8_t> bytes) {
  const fb::ModuleChecksum* checksum = fb::GetModule(bytes.data())->header()->checksum();
  if (checksum == nullptr) return std::nullopt;
  return static_cast<size_t>(reinterpret_cast<const uint8_t*>(checksum) - bytes.data());
}

std::string hex32(uint32_t value) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) text += kHex[(value >> shift) & 0xf];
  return text;
}

}  // namespace

bool sealModule(std::vector<uint8_t>& bytes) {
  flatbuffers::Verifier verifier(bytes.data(), bytes.size());
  if (!fb::VerifyModuleBuffer(verifier)) return false;
  std::optional<size_t> offset = checksumOffset(bytes);
  if (!offset) return false;
  flatbuffers::WriteScalar(bytes.data() + *offset, moduleChecksum(bytes, *offset));
  return true;
}

absl::Status checkModuleHeader(absl::Span<const uint8_t> bytes) {
  constexpr size_t kHeaderBytes = 4 + kModuleMagic.size();
  if (bytes.empty()) {
    return absl::InvalidArgumentError(
        "not a playbook module: the file is empty; compile the "
        "playbook again with vigilctl playbooks compile");
  }
  if (bytes.size() < kHeaderBytes) {
    return absl::InvalidArgumentError(internal::strCat(
        "not a playbook module: truncated to ", bytes.size(), " bytes, shorter than the ",
        kHeaderBytes, "-byte header; compile the playbook again"));
  }
  if (std::memcmp(bytes.data() + 4, kModuleMagic.data(), kModuleMagic.size()) != 0) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string found;
    for (size_t i = 4; i < kHeaderBytes; ++i) {
      if (!found.empty()) found += ' ';
      found += kHex[bytes[i] >> 4];
      found += kHex[bytes[i] & 0xf];
    }
    return absl::InvalidArgumentError(internal::strCat(
        "not a playbook module: wrong magic: bytes 4..7 are ", found, " (hex), expected \"",
        kModuleMagic, "\"; the file is not a compiled module or is corrupt"));
  }
  return absl::OkStatus();
}

absl::Status HostRegistry::add(std::string_view name, uint32_t arity, HostFunction function) {
  if (name.empty() || name.size() > kMaxNameLength) {
    return absl::InvalidArgumentError(
        internal::strCat("host function name '", name, "' must be 1..", kMaxNameLength, " bytes"));
  }
  if (arity > kMaxHostArity) {
    return absl::InvalidArgumentError(internal::strCat("host function ", name, ": arity ", arity,
                                                       " is above the limit of ", kMaxHostArity));
  }
  if (!function) {
    return absl::InvalidArgumentError(internal::strCat("host function ", name, " is empty"));
  }
  if (find(name) != nullptr) {
    return absl::InvalidArgumentError(
        internal::strCat("host function ", name, " is already registered"));
  }
  entries_.push_back(std::make_unique<Entry>(
      Entry{std::string(name), static_cast<uint8_t>(arity), std::move(function)}));
  return absl::OkStatus();
}

const HostRegistry::Entry* HostRegistry::find(std::string_view name) const {
  for (const auto& entry : entries_) {
    if (entry->name == name) return entry.get();
  }
  return nullptr;
}

SourceLocation Program::locate(uint32_t pc) const {
  // The last entry whose pc is <= `pc` covers it.
  auto it =
      std::upper_bound(source_map_.begin(), source_map_.end(), pc,
                       [](uint32_t value, const SourceLocation& loc) { return value < loc.pc; });
  if (it == source_map_.begin()) return {pc, 0, 0};
  --it;
  return {pc, it->line, it->column};
}

absl::StatusOr<std::unique_ptr<Program>> loadProgram(absl::Span<const uint8_t> bytes,
                                                     const HostRegistry& host) {
  // 1. Magic: the FlatBuffers file identifier sits at bytes 4..7.
  if (absl::Status s = checkModuleHeader(bytes); !s.ok()) return s;

  // 2. FlatBuffers verifier. The Program's own copy is verified and read, so the string
  // constants can point into it; vector storage is 8-aligned as FlatBuffers needs.
  auto program = std::unique_ptr<Program>(new Program());
  program->bytes_.assign(bytes.begin(), bytes.end());
  const uint8_t* data = program->bytes_.data();
  flatbuffers::Verifier verifier(data, program->bytes_.size());
  if (!fb::VerifyModuleBuffer(verifier)) {
    return invalid("FlatBuffers verification failed; the module is truncated or corrupt");
  }
  const fb::Module* module = fb::GetModule(data);
  const fb::Header* header = module->header();

  // 3. Format version, then the checksum that version 2 added. The checksum comes before
  // every other check, so a module damaged on disk is reported as such and not as
  // whichever rule the damage happens to break, or not at all.
  const uint32_t version = header->format_version();
  if (version < kMinFormatVersion || version > kFormatVersion) {
    return invalid(internal::strCat(
        "format version ", version, " is not supported (this build reads versions ",
        kMinFormatVersion, " to ", kFormatVersion, "); recompile the playbook"));
  }
  if (version >= 2) {
    std::optional<size_t> offset = checksumOffset(bytes);
    if (!offset) {
      return invalid(internal::strCat("format version ", version,
                                      " needs a checksum, but the header has none; the module "
                                      "is corrupt, so compile the playbook again"));
    }
    const uint32_t stored = header->checksum()->crc32c();
    const uint32_t actual = moduleChecksum(bytes, *offset);
    if (stored != actual) {
      return invalid(internal::strCat("checksum mismatch: the header holds CRC32C ", hex32(stored),
                                      " but the module bytes give ", hex32(actual),
                                      "; the module is corrupt, so compile the playbook again"));
    }
  }

  // 4. Container fields and limits.
  if (absl::Status s = checkName("program", header->name()); !s.ok()) return s;
  program->name_ = header->name()->str();
  if (header->source_sha256() == nullptr || header->source_sha256()->size() != 32) {
    return invalid(internal::strCat("program ", program->name_,
                                    ": source_sha256 must be 32 bytes, got ",
                                    header->source_sha256() ? header->source_sha256()->size() : 0));
  }
  std::memcpy(program->source_sha256_.data(), header->source_sha256()->data(), 32);
  program->register_count_ = module->register_count();
  if (absl::Status s = readTrigger(module->trigger(), program->trigger_); !s.ok()) return s;
  if (module->code() != nullptr) {
    program->code_.assign(module->code()->begin(), module->code()->end());
  }
  if (module->constants() != nullptr) {
    if (module->constants()->size() > kMaxConstants) {
      return invalid(internal::strCat("constant count ", module->constants()->size(),
                                      " is above the limit of ", kMaxConstants));
    }
    for (flatbuffers::uoffset_t i = 0; i < module->constants()->size(); ++i) {
      absl::StatusOr<Value> value = decodeConstant(module->constants()->Get(i), i);
      if (!value.ok()) return value.status();
      program->constants_.push_back(*value);
    }
  }
  if (module->source_map() != nullptr) {
    uint32_t previous = 0;
    for (const fb::SourceLocation* loc : *module->source_map()) {
      if (loc->pc() >= program->code_.size() ||
          (!program->source_map_.empty() && loc->pc() <= previous)) {
        return invalid(internal::strCat("source map entry for pc ", loc->pc(),
                                        " is out of order or outside the code"));
      }
      previous = loc->pc();
      program->source_map_.push_back({loc->pc(), loc->line(), loc->column()});
    }
  }

  // 5. Host imports, resolved by name and arity against the host's registry.
  std::vector<uint8_t> arities;
  if (module->host_imports() != nullptr) {
    if (module->host_imports()->size() > kMaxHostImports) {
      return invalid(internal::strCat("host import count ", module->host_imports()->size(),
                                      " is above the limit of ", kMaxHostImports));
    }
    for (const fb::HostImport* import : *module->host_imports()) {
      if (absl::Status s = checkName("host import", import->name()); !s.ok()) return s;
      std::string_view name = import->name()->string_view();
      const HostRegistry::Entry* entry = host.find(name);
      if (entry == nullptr) {
        return absl::NotFoundError(internal::strCat("playbook module ", program->name_,
                                                    ": host function ", name,
                                                    " is not registered by this host"));
      }
      if (entry->arity != import->arity()) {
        return invalid(internal::strCat("host function ", name, " is imported with arity ",
                                        import->arity(), " but registered with arity ",
                                        entry->arity));
      }
      program->imports_.push_back({std::string(name), import->arity(), entry});
      arities.push_back(import->arity());
    }
  }

  // 6. Bytecode verifier.
  BytecodeView view{program->code_, program->constants_, arities, program->register_count_};
  if (absl::Status s = verifyBytecode(view); !s.ok()) {
    return absl::InvalidArgumentError(
        internal::strCat("playbook module ", program->name_, ": ", s.message()));
  }
  program->registry_ = &host;
  return program;
}

}  // namespace vigil::playbook_vm

// Vm::saveState() and Vm::resume(): the suspended-run format.
//
// Layout, little-endian:
//   "VGRS", u32 version (2), 32 bytes program SHA-256, u16 name length, name,
//   u32 pc of the YIELD, u8 its destination register, u64 steps, u16 register count,
//   u32 string count S, S strings (u32 length, bytes),
//   u32 list count N, N lists (u32 size, then that many values), one value per register.
// A value is a u8 ValueType followed by: nothing (null), u8 (bool),
// i64 (int), IEEE 754 binary64 (double), u32 string index (string) or u32 list index
// (list). Strings and lists are written once and referenced by index, so a text that
// several registers share is restored once, in the memory it took before the suspend, and
// list sharing and cycles survive.
//
// Version 1 (written before strings were shared) has no string table and writes each
// string value in place as u32 length and bytes. resume() still reads it, so runs that
// were waiting for an approval across an upgrade resume.
#include <cstring>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "playbook_vm/internal/run_state.h"
#include "playbook_vm/internal/str_cat.h"
#include "playbook_vm/vm.h"

namespace vigil::playbook_vm {
namespace {

constexpr std::string_view kStateMagic = "VGRS";
constexpr uint32_t kStateVersion = 2;
constexpr uint32_t kInlineStringsVersion = 1;

template <typename T>
void put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // x86-64 and AArch64 Linux are little-endian
  out.append(bytes, sizeof(T));
}

class StateWriter {
 public:
  explicit StateWriter(std::string& out) : out_(out) {}

  // Gives every string and list reachable from `values` an index, breadth first.
  void collect(const Value* values, size_t count) {
    for (size_t i = 0; i < count; ++i) note(values[i]);
    for (size_t i = 0; i < lists_.size(); ++i) {
      for (uint32_t j = 0; j < lists_[i]->size; ++j) note(lists_[i]->items[j]);
    }
  }

  void writeStrings() {
    put<uint32_t>(out_, static_cast<uint32_t>(strings_.size()));
    for (const std::string_view text : strings_) {
      put<uint32_t>(out_, static_cast<uint32_t>(text.size()));
      out_.append(text);
    }
  }

  void writeLists() {
    put<uint32_t>(out_, static_cast<uint32_t>(lists_.size()));
    for (const List* list : lists_) {
      put<uint32_t>(out_, list->size);
      for (uint32_t j = 0; j < list->size; ++j) writeValue(list->items[j]);
    }
  }

  void writeValue(const Value& v) {
    put<uint8_t>(out_, static_cast<uint8_t>(v.type()));
    switch (v.type()) {
      case ValueType::kNull:
        break;
      case ValueType::kBool:
        put<uint8_t>(out_, v.asBool() ? 1 : 0);
        break;
      case ValueType::kInt:
        put<int64_t>(out_, v.asInt());
        break;
      case ValueType::kDouble:
        put<double>(out_, v.asDouble());
        break;
      case ValueType::kString:
        put<uint32_t>(out_, string_ids_.at(stringKey(v.asString())));
        break;
      case ValueType::kList:
        put<uint32_t>(out_, ids_.at(v.asList()));
        break;
    }
  }

 private:
  // Returns the identity of a string value: two values share one text of the run heap (or
  // of the program's constants) when their characters start at one address with one length.
  static std::pair<const char*, size_t> stringKey(std::string_view text) {
    return {text.data(), text.size()};
  }

  struct KeyHash {
    size_t operator()(const std::pair<const char*, size_t>& k) const {
      return std::hash<const char*>()(k.first) ^ (k.second * 0x9e3779b97f4a7c15ULL);
    }
  };

  void note(const Value& v) {
    if (v.isString()) {
      const auto id = static_cast<uint32_t>(strings_.size());
      if (string_ids_.emplace(stringKey(v.asString()), id).second) strings_.push_back(v.asString());
      return;
    }
    if (!v.isList() || ids_.count(v.asList()) != 0) return;
    ids_.emplace(v.asList(), static_cast<uint32_t>(lists_.size()));
    lists_.push_back(v.asList());
  }

  std::string& out_;
  std::unordered_map<const List*, uint32_t> ids_;
  std::vector<const List*> lists_;
  std::unordered_map<std::pair<const char*, size_t>, uint32_t, KeyHash> string_ids_;
  std::vector<std::string_view> strings_;
};

// Bounds-checked reader; any failure sets error_ and returns zeros from then on.
class StateReader {
 public:
  explicit StateReader(std::string_view bytes) : bytes_(bytes) {}

  template <typename T>
  T get() {
    T value{};
    if (!take(sizeof(T))) return value;
    std::memcpy(&value, bytes_.data() + pos_ - sizeof(T), sizeof(T));
    return value;
  }
  std::string_view bytes(size_t n) {
    if (!take(n)) return {};
    return bytes_.substr(pos_ - n, n);
  }
  void fail(std::string text) {
    if (error_.empty()) error_ = std::move(text);
  }
  bool ok() const { return error_.empty(); }
  bool atEnd() const { return pos_ == bytes_.size(); }
  size_t remaining() const { return bytes_.size() - pos_; }
  const std::string& error() const { return error_; }

 private:
  bool take(size_t n) {
    if (!ok() || n > bytes_.size() - pos_) {
      fail(internal::strCat("state is truncated at byte ", pos_));
      return false;
    }
    pos_ += n;
    return true;
  }

  std::string_view bytes_;
  size_t pos_ = 0;
  std::string error_;
};

// Rebuilds values into the run heap of `state`. Returns kNone, kMemoryLimit or
// kInvalidState (with reader.error() set).
class StateRestorer {
 public:
  StateRestorer(internal::RunState& state, StateReader& reader, uint32_t version)
      : st_(state), in_(reader), inline_strings_(version == kInlineStringsVersion) {}

  // Reads the string table, which only version 2 has.
  RunError readStrings() {
    if (inline_strings_) return RunError::kNone;
    uint32_t count = in_.get<uint32_t>();
    // Each string costs at least 4 bytes of state, so a larger count is corrupt.
    if (!in_.ok() || count > in_.remaining() / 4) {
      in_.fail(internal::strCat("string count ", count, " is invalid"));
      return RunError::kInvalidState;
    }
    strings_.reserve(count);
    for (uint32_t i = 0; i < count; ++i) {
      std::string_view text = in_.bytes(in_.get<uint32_t>());
      if (!in_.ok()) return RunError::kInvalidState;
      Value value;
      if (!st_.newString(text, value)) return RunError::kMemoryLimit;
      strings_.push_back(value);
    }
    return RunError::kNone;
  }

  RunError readLists() {
    uint32_t count = in_.get<uint32_t>();
    // Each list costs at least 4 bytes of state, so a larger count is corrupt.
    if (!in_.ok() || count > st_.memory_limit / 16 + 1) {
      in_.fail(internal::strCat("list count ", count, " is invalid"));
      return RunError::kInvalidState;
    }
    lists_.reserve(count);
    for (uint32_t i = 0; i < count; ++i) {
      List* list = st_.newList();
      if (list == nullptr) return RunError::kMemoryLimit;
      lists_.push_back(list);
    }
    for (uint32_t i = 0; i < count; ++i) {
      uint32_t size = in_.get<uint32_t>();
      if (size > kMaxListLength) in_.fail(internal::strCat("list size ", size, " is invalid"));
      for (uint32_t j = 0; j < size && in_.ok(); ++j) {
        Value item;
        if (RunError e = readValue(item); e != RunError::kNone) return e;
        if (RunError e = st_.append(*lists_[i], item); e != RunError::kNone) return e;
      }
      if (!in_.ok()) return RunError::kInvalidState;
    }
    return RunError::kNone;
  }

  RunError readValue(Value& out) {
    uint8_t tag = in_.get<uint8_t>();
    switch (static_cast<ValueType>(tag)) {
      case ValueType::kNull:
        out = Value();
        break;
      case ValueType::kBool:
        out = Value::boolean(in_.get<uint8_t>() != 0);
        break;
      case ValueType::kInt:
        out = Value::integer(in_.get<int64_t>());
        break;
      case ValueType::kDouble:
        out = Value::real(in_.get<double>());
        break;
      case ValueType::kString: {
        if (!inline_strings_) {
          uint32_t id = in_.get<uint32_t>();
          if (in_.ok() && id >= strings_.size()) {
            in_.fail(internal::strCat("string index ", id, " is invalid"));
          }
          if (in_.ok()) out = strings_[id];
          break;
        }
        std::string_view text = in_.bytes(in_.get<uint32_t>());
        if (!in_.ok()) break;
        // Version 1 wrote a text once per register or list item that held it. Strings are
        // never changed in place, so equal long texts are restored once and shared, and
        // the run fits in the memory it had when it was suspended.
        const bool shareable = text.size() >= kSharedTextMinBytes;
        if (shareable) {
          auto it = inline_texts_.find(text);
          if (it != inline_texts_.end()) {
            out = it->second;
            break;
          }
        }
        if (!st_.newString(text, out)) return RunError::kMemoryLimit;
        if (shareable) inline_texts_.emplace(text, out);
        break;
      }
      case ValueType::kList: {
        uint32_t id = in_.get<uint32_t>();
        if (in_.ok() && id >= lists_.size())
          in_.fail(internal::strCat("list index ", id, " is invalid"));
        if (in_.ok()) out = Value::list(lists_[id]);
        break;
      }
      default:
        in_.fail(internal::strCat("value type ", tag, " is invalid"));
        break;
    }
    return in_.ok() ? RunError::kNone : RunError::kInvalidState;
  }

 private:
  internal::RunState& st_;
  StateReader& in_;
  const bool inline_strings_;
  // Version 1: long texts restored so far, by their bytes in the saved state.
  static constexpr size_t kSharedTextMinBytes = 64;
  std::unordered_map<std::string_view, Value> inline_texts_;
  std::vector<Value> strings_;
  std::vector<List*> lists_;
};

RunResult failedResume(const Program& program, RunError error, std::string_view detail) {
  RunResult result;
  result.error = error;
  result.message = internal::strCat("playbook '", program.name(),
                                    "': resume failed: ", runErrorName(error), ": ", detail);
  return result;
}

}  // namespace

std::string Vm::saveState() const {
  const internal::RunState& st = *state_;
  if (st.status != RunStatus::kSuspended || st.program == nullptr) return {};
  const Program& program = *st.program;
  std::string out(kStateMagic);
  put<uint32_t>(out, kStateVersion);
  out.append(reinterpret_cast<const char*>(program.sourceSha256().data()), 32);
  put<uint16_t>(out, static_cast<uint16_t>(program.name().size()));
  out.append(program.name());
  put<uint32_t>(out, st.pc);
  put<uint8_t>(out, st.yield_register);
  put<uint64_t>(out, st.steps);
  put<uint16_t>(out, static_cast<uint16_t>(program.registerCount()));
  StateWriter writer(out);
  writer.collect(st.registers.data(), program.registerCount());
  writer.writeStrings();
  writer.writeLists();
  for (uint32_t i = 0; i < program.registerCount(); ++i) writer.writeValue(st.registers[i]);
  return out;
}

RunResult Vm::resume(const Program& program, const HostRegistry& host, const Budget& budget,
                     std::string_view saved_state, Value resume_value, void* context) {
  if (&host != program.registry()) {
    return failedResume(program, RunError::kHostMismatch,
                        "the host registry is not the one the program was loaded against");
  }
  if (resume_value.isList()) {
    return failedResume(program, RunError::kInvalidState,
                        "the resume value is a list; pass null, a bool, a number or a string");
  }
  internal::RunState& st = *state_;
  // Copy a string resume value out of the old heap before the restore overwrites it.
  std::string resume_text(resume_value.isString() ? resume_value.asString() : "");
  st.begin(program, budget, context);

  StateReader in(saved_state);
  if (in.bytes(4) != kStateMagic) in.fail("magic is not VGRS");
  uint32_t version = in.get<uint32_t>();
  if (in.ok() && version != kStateVersion && version != kInlineStringsVersion) {
    in.fail(internal::strCat("state version ", version, " is not ", kInlineStringsVersion,
                             " or ", kStateVersion));
  }
  std::string_view sha = in.bytes(32);
  std::string_view name = in.bytes(in.get<uint16_t>());
  if (in.ok() &&
      (std::memcmp(sha.data(), program.sourceSha256().data(), 32) != 0 || name != program.name())) {
    in.fail(internal::strCat("state belongs to program '", name, "', not this one"));
  }
  uint32_t pc = in.get<uint32_t>();
  uint8_t dest = in.get<uint8_t>();
  uint64_t steps = in.get<uint64_t>();
  uint16_t registers = in.get<uint16_t>();
  if (in.ok() &&
      (pc >= program.code().size() ||
       program.code()[pc] != encodeABC(Opcode::kYield, dest, fieldB(program.code()[pc]), 0))) {
    in.fail(internal::strCat("pc ", pc, " is not a YIELD into R[", dest, "]"));
  }
  if (in.ok() && registers != program.registerCount()) {
    in.fail(internal::strCat("register count ", registers, " is not ", program.registerCount()));
  }
  if (!in.ok()) return failedResume(program, RunError::kInvalidState, in.error());

  StateRestorer restorer(st, in, version);
  RunError error = restorer.readStrings();
  if (error == RunError::kNone) error = restorer.readLists();
  for (uint32_t i = 0; i < registers && error == RunError::kNone; ++i) {
    error = restorer.readValue(st.registers[i]);
  }
  if (error == RunError::kNone && !in.atEnd()) {
    in.fail("state has trailing bytes");
    error = RunError::kInvalidState;
  }
  Value resumed = resume_value;
  if (error == RunError::kNone && resume_value.isString() && !st.newString(resume_text, resumed)) {
    error = RunError::kMemoryLimit;
  }
  if (error != RunError::kNone) {
    return failedResume(program, error,
                        error == RunError::kMemoryLimit ? "the run heap memory limit is "
                                                          "too small for the saved state"
                                                        : in.error());
  }
  st.registers[dest] = resumed;
  st.steps = steps;
  return execute(program, pc + 1);
}

}  // namespace vigil::playbook_vm

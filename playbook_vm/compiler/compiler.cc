#include "playbook_vm/compiler/compiler.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "playbook_vm/internal/str_cat.h"
#include "playbook_vm/builder.h"
#include "playbook_vm/compiler/expression.h"
#include "playbook_vm/opcodes.h"
#include "playbook_vm/verifier.h"
#include "yaml-cpp/yaml.h"

namespace vigil::playbook_vm::compiler {
namespace {

constexpr std::string_view kSeverityNames[] = {"informational", "low", "medium", "high",
                                               "critical"};
constexpr std::string_view kFunctions = "len, str, intel, contains";

// A 1-based source position.
struct Pos {
  uint32_t line = 0;
  uint32_t column = 0;
  Pos plus(uint32_t offset) const { return {line, column + offset}; }
};

// Thrown inside the compiler and turned into a Status at the entry points.
struct CompileFailure {
  Pos pos;
  std::string message;
};

[[noreturn]] void failAt(Pos pos, std::string message) {
  throw CompileFailure{pos, std::move(message)};
}

// Position of a node. yaml-cpp marks are 0-based and point at the opening quote of a
// quoted scalar, so the text of a quoted scalar starts one column later.
Pos positionOf(const YAML::Node& node) {
  YAML::Mark mark = node.Mark();
  Pos pos{static_cast<uint32_t>(mark.line + 1), static_cast<uint32_t>(mark.column + 1)};
  if (node.IsScalar() && node.Tag() == "!") pos.column += 1;
  return pos;
}

bool isQuoted(const YAML::Node& node) { return node.IsScalar() && node.Tag() == "!"; }

bool isIdentifier(std::string_view text) {
  if (text.empty() || text.size() > 64) return false;
  if (!std::isalpha(static_cast<unsigned char>(text[0])) && text[0] != '_') return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

bool isReservedName(std::string_view name) {
  static const std::set<std::string_view> kReserved = {
      "alert", "true", "false", "null", "and", "or", "not", "in", "len", "str", "intel",
      "contains"};
  return kReserved.count(name) != 0;
}

std::string typeName(TypeMask mask) { return typeMaskToString(mask); }

// Static type of an expression: the VM types it may hold, and whether it is an event
// handle or the list of them (alert.events), which field access needs to know.
struct Type {
  enum class Handle : uint8_t { kNone, kEvent, kEventList };
  TypeMask mask = kTAny;
  Handle handle = Handle::kNone;
};

struct Variable {
  uint32_t reg;
  Type type;
};

// A piece of a text template: literal text or an expression at `offset` in the scalar.
struct TemplatePart {
  bool is_expression = false;
  std::string text;
  uint32_t offset = 0;
};

std::vector<TemplatePart> splitTemplate(std::string_view text, Pos pos) {
  std::vector<TemplatePart> parts;
  std::string literal;
  size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      literal += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      literal += text[i++];
      continue;
    }
    // Find the closing brace outside quotes.
    size_t j = i + 2;
    char quote = 0;
    for (; j < text.size(); ++j) {
      char c = text[j];
      if (quote != 0) {
        if (c == '\\') ++j;
        else if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '}') {
        break;
      }
    }
    if (j >= text.size()) {
      failAt(pos.plus(static_cast<uint32_t>(i)),
             "'${' is not closed; add '}' (write '$${' for a literal '${')");
    }
    if (!literal.empty()) parts.push_back({false, std::move(literal), 0});
    literal.clear();
    parts.push_back({true, std::string(text.substr(i + 2, j - i - 2)),
                     static_cast<uint32_t>(i + 2)});
    i = j + 1;
  }
  if (!literal.empty() || parts.empty()) parts.push_back({false, std::move(literal), 0});
  return parts;
}

template <typename Range>
std::string joinNames(const Range& names) {
  std::string text;
  for (std::string_view name : names) {
    if (!text.empty()) text += ", ";
    text += name;
  }
  return text;
}

std::string describeKeys(std::initializer_list<std::string_view> keys) { return joinNames(keys); }

// ---------------------------------------------------------------------------------------
// The compiler

class Compiler {
 public:
  Compiler(std::string_view source, std::string_view file) : source_(source), file_(file) {}

  CompiledPlaybook compile() {
    YAML::Node root = YAML::Load(std::string(source_));
    if (!root.IsMap()) {
      failAt(positionOf(root), "a playbook is a YAML mapping with name, trigger and steps");
    }
    checkKeys(root, "playbook", {"name", "description", "trigger", "vars", "steps"});
    std::string name = requireScalar(root, "name", "playbook").as<std::string>();
    Pos name_pos = positionOf(root["name"]);
    if (name.empty() || name.size() > 64 ||
        !std::all_of(name.begin(), name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
        })) {
      failAt(name_pos, internal::strCat("invalid playbook name '", name,
                                    "'; use 1 to 64 characters of A-Z, a-z, 0-9, '-', '_', '.'"));
    }
    builder_.emplace(name);
    builder_->setSourceSha256(sha256(source_));
    if (!root["trigger"]) failAt({1, 1}, "the playbook has no trigger; add a trigger: section");
    builder_->setTrigger(compileTrigger(root["trigger"]));

    scopes_.emplace_back();
    if (root["vars"]) compileVars(root["vars"]);
    YAML::Node steps = root["steps"];
    if (!steps) failAt({1, 1}, "the playbook has no steps; add a steps: list");
    if (!steps.IsSequence() || steps.size() == 0) {
      failAt(positionOf(steps), "steps: must be a non-empty list of steps");
    }
    compileSteps(steps, 0);

    // The end of the steps: the run returns null.
    uint32_t result = temp(positionOf(steps));
    builder_->emitABC(Opcode::kLoadNull, result, 0, 0);
    builder_->emitABC(Opcode::kReturn, result, 0, 0);
    builder_->setRegisterCount(std::max<uint32_t>(max_register_, 1));
    absl::StatusOr<std::vector<uint8_t>> bytes = builder_->finish();
    if (!bytes.ok()) failAt({1, 1}, internal::strCat("code generation failed: ", bytes.status().message()));
    return CompiledPlaybook{name, std::move(*bytes)};
  }

 private:
  // --- YAML structure ---------------------------------------------------------------

  static std::array<uint8_t, 32> sha256(std::string_view text) {
    std::array<uint8_t, 32> digest{};
    unsigned int length = 0;
    EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha256(), nullptr);
    return digest;
  }

  void checkKeys(const YAML::Node& map, std::string_view what,
                 std::initializer_list<std::string_view> allowed) {
    for (const auto& entry : map) {
      if (!entry.first.IsScalar()) {
        failAt(positionOf(entry.first), internal::strCat("keys of a ", what, " must be names"));
      }
      std::string key = entry.first.as<std::string>();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        failAt(positionOf(entry.first),
               internal::strCat("unknown field '", key, "' in ", what, "; expected one of: ",
                            describeKeys(allowed)));
      }
    }
  }

  YAML::Node requireScalar(const YAML::Node& map, std::string_view key, std::string_view what) {
    YAML::Node node = map[std::string(key)];
    if (!node) failAt(positionOf(map), internal::strCat(what, " has no '", key, "' field"));
    if (!node.IsScalar()) {
      failAt(positionOf(node), internal::strCat("'", key, "' in ", what, " must be a single value"));
    }
    return node;
  }

  std::vector<std::string> stringList(const YAML::Node& node, std::string_view field) {
    std::vector<std::string> out;
    YAML::Node list = node;
    if (node.IsScalar()) {
      list = YAML::Node(YAML::NodeType::Sequence);
      list.push_back(node);
    }
    if (!list.IsSequence()) {
      failAt(positionOf(node), internal::strCat(field, " must be a list of strings"));
    }
    if (list.size() > kMaxTriggerValues) {
      failAt(positionOf(node), internal::strCat(field, " has ", list.size(),
                                            " entries; at most ", kMaxTriggerValues));
    }
    for (const YAML::Node& item : list) {
      if (!item.IsScalar() || item.Scalar().empty() || item.Scalar().size() > kMaxNameLength) {
        failAt(positionOf(item), internal::strCat("each entry of ", field,
                                              " must be a string of 1 to ", kMaxNameLength,
                                              " bytes"));
      }
      out.push_back(item.Scalar());
    }
    return out;
  }

  Trigger compileTrigger(const YAML::Node& node) {
    if (!node.IsMap()) {
      failAt(positionOf(node), "trigger: must be a mapping of rule_ids, tags, severity, tenants");
    }
    checkKeys(node, "trigger", {"rule_ids", "tags", "severity", "tenants"});
    Trigger trigger;
    trigger.has_trigger = true;
    if (node["rule_ids"]) trigger.rule_ids = stringList(node["rule_ids"], "trigger rule_ids");
    if (node["tags"]) trigger.tags = stringList(node["tags"], "trigger tags");
    if (node["tenants"]) trigger.tenants = stringList(node["tenants"], "trigger tenants");
    if (YAML::Node severity = node["severity"]) {
      if (!severity.IsScalar() || !parseSeverity(severity.Scalar(), trigger.min_severity)) {
        failAt(positionOf(severity),
               internal::strCat("invalid severity '", severity.IsScalar() ? severity.Scalar() : "",
                            "'; use informational, low, medium, high or critical"));
      }
    }
    return trigger;
  }

  // Reads a duration: an int of seconds or <int>s, m, h or d; within [min, 7 days].
  int64_t duration(const YAML::Node& node, std::string_view field, int64_t min_seconds) {
    std::string text = node.IsScalar() ? node.Scalar() : "";
    int64_t value = 0;
    int64_t unit = 1;
    std::string_view digits = text;
    if (!text.empty() && std::isalpha(static_cast<unsigned char>(text.back()))) {
      switch (text.back()) {
        case 's':
          unit = 1;
          break;
        case 'm':
          unit = 60;
          break;
        case 'h':
          unit = 3600;
          break;
        case 'd':
          unit = 86400;
          break;
        default:
          unit = 0;
      }
      digits.remove_suffix(1);
    }
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    bool parsed = unit != 0 && !digits.empty() && ec == std::errc() &&
                  end == digits.data() + digits.size() && value >= 0 &&
                  value <= kMaxDurationSeconds / unit;
    if (!parsed || value * unit < min_seconds) {
      failAt(positionOf(node),
             internal::strCat("invalid duration '", text, "' for ", field, "; use seconds or a number ",
                          "with s, m, h or d, from ", min_seconds, "s to 7d"));
    }
    return value * unit;
  }

  int64_t integerField(const YAML::Node& node, std::string_view field, int64_t min,
                       int64_t max) {
    int64_t value = 0;
    std::string text = node.IsScalar() ? node.Scalar() : "";
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < min ||
        value > max) {
      failAt(positionOf(node),
             internal::strCat("invalid ", field, " '", text, "'; use an integer from ", min, " to ",
                          max));
    }
    return value;
  }

  std::string variableName(const YAML::Node& node, std::string_view field) {
    std::string name = node.IsScalar() ? node.Scalar() : "";
    if (!isIdentifier(name) || isReservedName(name)) {
      failAt(positionOf(node),
             internal::strCat("invalid variable name '", name, "' for ", field,
                          "; use letters, digits and '_', not starting with a digit, and not ",
                          "a reserved word such as alert, and, or, not, in"));
    }
    return name;
  }

  // --- registers and scopes --------------------------------------------------------

  uint32_t allocate(uint32_t count, Pos pos) {
    uint32_t first = register_top_;
    if (register_top_ + count > kMaxRegisters) {
      failAt(pos, internal::strCat("the playbook needs more than ", kMaxRegisters,
                               " registers here; split long expressions into set: steps"));
    }
    register_top_ += count;
    max_register_ = std::max(max_register_, register_top_);
    return first;
  }
  uint32_t temp(Pos pos) { return allocate(1, pos); }

  const Variable* lookup(std::string_view name) const {
    for (auto scope = scopes_.rbegin(); scope != scopes_.rend(); ++scope) {
      auto it = scope->find(std::string(name));
      if (it != scope->end()) return &it->second;
    }
    return nullptr;
  }

  // Assigns an existing variable (its register) or declares one in the innermost scope.
  uint32_t define(const std::string& name, Type type, Pos pos) {
    for (auto scope = scopes_.rbegin(); scope != scopes_.rend(); ++scope) {
      auto it = scope->find(name);
      if (it != scope->end()) {
        it->second.type = type;
        return it->second.reg;
      }
    }
    uint32_t reg = allocate(1, pos);
    scopes_.back()[name] = Variable{reg, type};
    return reg;
  }

  // Variable types are tracked per path, like the verifier's dataflow, so the compiler
  // never assumes a wider type than the verifier will (it would then miss an error the
  // verifier rejects). A branch starts from the types before it; where paths join, the
  // types are the union. A path that ended in stop: takes no part in the join.
  struct TypeState {
    std::map<std::string, Type> types;
    bool ended = false;
  };

  TypeState saveTypes() const {
    TypeState state;
    for (const auto& scope : scopes_) {
      for (const auto& [name, var] : scope) state.types[name] = var.type;
    }
    state.ended = path_ended_;
    return state;
  }

  void restoreTypes(const TypeState& state) {
    for (auto& scope : scopes_) {
      for (auto& [name, var] : scope) {
        auto it = state.types.find(name);
        if (it != state.types.end()) var.type = it->second;
      }
    }
    path_ended_ = state.ended;
  }

  // Joins the current path with `other` (another path reaching the same point).
  void joinTypes(const TypeState& other) {
    if (other.ended) return;
    if (path_ended_) {
      restoreTypes(other);
      return;
    }
    for (auto& scope : scopes_) {
      for (auto& [name, var] : scope) {
        auto it = other.types.find(name);
        if (it == other.types.end()) continue;
        var.type.mask |= it->second.mask;
        if (var.type.handle != it->second.handle) var.type.handle = Type::Handle::kNone;
      }
    }
  }

  // The variable an action or approval writes with output:. Its register is reserved
  // before the step's temporaries, but a new variable is declared only where it is
  // written, so the step's own expressions cannot read it before then.
  struct OutputSlot {
    bool used = false;
    std::string name;
    uint32_t reg = 0;
  };

  OutputSlot reserveOutput(const YAML::Node& node) {
    OutputSlot slot;
    if (!node) return slot;
    slot.used = true;
    slot.name = variableName(node, "output:");
    const Variable* existing = lookup(slot.name);
    slot.reg = existing != nullptr ? existing->reg : allocate(1, positionOf(node));
    return slot;
  }

  void assignOutput(const OutputSlot& slot, Type type) {
    for (auto scope = scopes_.rbegin(); scope != scopes_.rend(); ++scope) {
      auto it = scope->find(slot.name);
      if (it != scope->end()) {
        it->second.type = type;
        return;
      }
    }
    scopes_.back()[slot.name] = Variable{slot.reg, type};
  }

  uint32_t import(std::string_view name, uint32_t arity) {
    return builder_->importHost(name, arity);
  }

  void loadString(uint32_t reg, std::string_view text) {
    builder_->emitABx(Opcode::kLoadK, reg, builder_->addString(text));
  }

  void loadInt(uint32_t reg, int64_t value) {
    if (value >= INT16_MIN && value <= INT16_MAX) {
      builder_->emitAsBx(Opcode::kLoadInt, reg, static_cast<int32_t>(value));
    } else {
      builder_->emitABx(Opcode::kLoadK, reg, builder_->addInt(value));
    }
  }

  // --- expressions ------------------------------------------------------------------

  // Parses the expression `text` that starts at `pos`.
  std::unique_ptr<Expr> parse(std::string_view text, Pos pos) {
    ExprError error;
    std::unique_ptr<Expr> expr = parseExpression(text, error);
    if (expr == nullptr) failAt(pos.plus(error.offset), "syntax error: " + error.message);
    return expr;
  }

  static void requireType(const Type& type, TypeMask accepts, Pos pos, std::string_view what) {
    if ((type.mask & accepts) == 0) {
      failAt(pos, internal::strCat("type error: ", what, " needs ", typeName(accepts), ", but it is ",
                               typeName(type.mask)));
    }
  }

  // Returns a register holding `e`: a variable's own register, or a new temporary.
  uint32_t operand(const Expr& e, Pos base, Type& type) {
    if (e.kind == ExprKind::kName) {
      if (const Variable* var = lookup(e.text)) {
        type = var->type;
        return var->reg;
      }
    }
    uint32_t reg = temp(base.plus(e.offset));
    type = compileExpr(e, reg, base);
    return reg;
  }

  // Emits code that leaves the value of `e` in `dst`, a temporary no other code reads.
  Type compileExpr(const Expr& e, uint32_t dst, Pos base) {
    Pos pos = base.plus(e.offset);
    builder_->setLocation(pos.line, pos.column);
    switch (e.kind) {
      case ExprKind::kNull:
        builder_->emitABC(Opcode::kLoadNull, dst, 0, 0);
        return {kTNull};
      case ExprKind::kBool:
        builder_->emitABC(Opcode::kLoadBool, dst, e.bool_value ? 1 : 0, 0);
        return {kTBool};
      case ExprKind::kInt:
        loadInt(dst, e.int_value);
        return {kTInt};
      case ExprKind::kDouble:
        builder_->emitABx(Opcode::kLoadK, dst, builder_->addDouble(e.double_value));
        return {kTDouble};
      case ExprKind::kString:
        loadString(dst, e.text);
        return {kTString};
      case ExprKind::kName:
        return compileName(e, dst, pos);
      case ExprKind::kField:
        return compileField(e, dst, base);
      case ExprKind::kIndex:
        return compileIndex(e, dst, base);
      case ExprKind::kCall:
        return compileCall(e, dst, base);
      case ExprKind::kList:
        return compileList(e, dst, base);
      case ExprKind::kUnary:
        return compileUnary(e, dst, base);
      case ExprKind::kBinary:
        return compileBinary(e, dst, base);
    }
    failAt(pos, "unsupported expression");
  }

  Type compileName(const Expr& e, uint32_t dst, Pos pos) {
    if (e.text == "alert") {
      failAt(pos, "'alert' is not a value; name one of its fields, as in alert.rule_id");
    }
    const Variable* var = lookup(e.text);
    if (var == nullptr) {
      failAt(pos, internal::strCat("undefined variable '", e.text, "'; define it under vars: or ",
                               "with set:, output: or for_each: before this step"));
    }
    builder_->emitABC(Opcode::kMove, dst, var->reg, 0);
    return var->type;
  }

  // Collects "a.b.c" from a chain of field accesses rooted at a name.
  static const Expr* fieldPath(const Expr& e, std::string& path) {
    const Expr* node = &e;
    std::vector<const std::string*> names;
    while (node->kind == ExprKind::kField) {
      names.push_back(&node->text);
      node = node->operands[0].get();
    }
    for (auto it = names.rbegin(); it != names.rend(); ++it) {
      if (!path.empty()) path += '.';
      path += **it;
    }
    return node;
  }

  // Emits CALL host(args...) with the result in `dst`.
  void callHost(std::string_view function, uint32_t dst,
                std::initializer_list<std::pair<const Expr*, std::string_view>> args, Pos base,
                Pos pos) {
    uint32_t mark = register_top_;
    uint32_t call_base = allocate(1 + static_cast<uint32_t>(args.size()), pos);
    uint32_t slot = call_base + 1;
    for (const auto& [expr, text] : args) {
      if (expr != nullptr) {
        compileExpr(*expr, slot, base);
      } else {
        loadString(slot, text);
      }
      ++slot;
    }
    builder_->setLocation(pos.line, pos.column);
    builder_->emitABC(Opcode::kCall, call_base, import(function, static_cast<uint32_t>(args.size())),
                      static_cast<uint32_t>(args.size()));
    builder_->emitABC(Opcode::kMove, dst, call_base, 0);
    register_top_ = mark;
  }

  Type compileField(const Expr& e, uint32_t dst, Pos base) {
    Pos pos = base.plus(e.offset);
    std::string path;
    const Expr* root = fieldPath(e, path);
    if (root->kind == ExprKind::kName && root->text == "alert") {
      if (path == "events") {
        callHost(kHostAlertEvents, dst, {}, base, pos);
        return {kTList, Type::Handle::kEventList};
      }
      callHost(kHostAlertField, dst, {{nullptr, path}}, base, pos);
      return {kTAny};
    }
    Type root_type;
    uint32_t mark = register_top_;
    uint32_t handle = operand(*root, base, root_type);
    if (root_type.handle != Type::Handle::kEvent) {
      failAt(pos, internal::strCat("field access '.", path, "' needs alert or an event from ",
                               "alert.events, but the value is ", typeName(root_type.mask)));
    }
    uint32_t call_base = allocate(3, pos);
    builder_->emitABC(Opcode::kMove, call_base + 1, handle, 0);
    loadString(call_base + 2, path);
    builder_->setLocation(pos.line, pos.column);
    builder_->emitABC(Opcode::kCall, call_base, import(kHostEventField, 2), 2);
    builder_->emitABC(Opcode::kMove, dst, call_base, 0);
    register_top_ = mark;
    return {kTAny};
  }

  Type compileIndex(const Expr& e, uint32_t dst, Pos base) {
    Pos pos = base.plus(e.offset);
    uint32_t mark = register_top_;
    Type list_type, index_type;
    uint32_t list = operand(*e.operands[0], base, list_type);
    uint32_t index = operand(*e.operands[1], base, index_type);
    requireType(list_type, kTList, base.plus(e.operands[0]->offset), "indexing with [ ]");
    requireType(index_type, kTInt, base.plus(e.operands[1]->offset), "an index");
    builder_->setLocation(pos.line, pos.column);
    builder_->emitABC(Opcode::kIndex, dst, list, index);
    register_top_ = mark;
    if (list_type.handle == Type::Handle::kEventList) return {kTInt, Type::Handle::kEvent};
    return {kTAny};
  }

  Type compileCall(const Expr& e, uint32_t dst, Pos base) {
    Pos pos = base.plus(e.offset);
    auto arity = [&](size_t n) {
      if (e.operands.size() != n) {
        failAt(pos, internal::strCat(e.text, "() takes ", n, n == 1 ? " argument" : " arguments",
                                 ", got ", e.operands.size()));
      }
    };
    if (e.text == "len" || e.text == "str") {
      arity(1);
      uint32_t mark = register_top_;
      Type type;
      uint32_t value = operand(*e.operands[0], base, type);
      bool is_len = e.text == "len";
      TypeMask accepts = is_len ? (kTString | kTList) : (kTAny & ~kTList);
      requireType(type, accepts, base.plus(e.operands[0]->offset),
                  is_len ? "len()" : "str()");
      builder_->setLocation(pos.line, pos.column);
      builder_->emitABC(is_len ? Opcode::kLen : Opcode::kToStr, dst, value, 0);
      register_top_ = mark;
      return {is_len ? kTInt : kTString};
    }
    if (e.text == "intel") {
      arity(1);
      callHost(kHostIntelMatch, dst, {{e.operands[0].get(), {}}}, base, pos);
      return {kTBool};
    }
    if (e.text == "contains") {
      arity(2);
      callHost(kHostContains, dst, {{e.operands[0].get(), {}}, {e.operands[1].get(), {}}}, base,
               pos);
      return {kTBool};
    }
    failAt(pos, internal::strCat("unknown function '", e.text, "'; available: ", kFunctions));
  }

  Type compileList(const Expr& e, uint32_t dst, Pos base) {
    Pos pos = base.plus(e.offset);
    builder_->emitABC(Opcode::kNewList, dst, 0, 0);
    uint32_t mark = register_top_;
    for (const auto& item : e.operands) {
      Type type;
      uint32_t value = operand(*item, base, type);
      builder_->setLocation(pos.line, pos.column);
      builder_->emitABC(Opcode::kAppend, dst, value, 0);
      register_top_ = mark;
    }
    return {kTList};
  }

  Type compileUnary(const Expr& e, uint32_t dst, Pos base) {
    Pos pos = base.plus(e.offset);
    uint32_t mark = register_top_;
    Type type;
    uint32_t value = operand(*e.operands[0], base, type);
    builder_->setLocation(pos.line, pos.column);
    if (e.text == "not") {
      requireType(type, kTBool, base.plus(e.operands[0]->offset), "'not'");
      builder_->emitABC(Opcode::kNot, dst, value, 0);
      register_top_ = mark;
      return {kTBool};
    }
    requireType(type, kTNumber, base.plus(e.operands[0]->offset), "unary '-'");
    uint32_t zero = temp(pos);
    builder_->emitAsBx(Opcode::kLoadInt, zero, 0);
    builder_->emitABC(Opcode::kSub, dst, zero, value);
    register_top_ = mark;
    return {static_cast<TypeMask>(type.mask & kTNumber)};
  }

  Type compileLogical(const Expr& e, uint32_t dst, Pos base) {
    bool is_and = e.text == "and";
    ProgramBuilder::Label done = builder_->newLabel();
    Type lhs = compileExpr(*e.operands[0], dst, base);
    requireType(lhs, kTBool, base.plus(e.operands[0]->offset), internal::strCat("'", e.text, "'"));
    Pos pos = base.plus(e.offset);
    builder_->setLocation(pos.line, pos.column);
    builder_->emitJump(is_and ? Opcode::kJmpIfNot : Opcode::kJmpIf, dst, done);
    Type rhs = compileExpr(*e.operands[1], dst, base);
    requireType(rhs, kTBool, base.plus(e.operands[1]->offset), internal::strCat("'", e.text, "'"));
    builder_->bind(done);
    return {static_cast<TypeMask>(kTBool | rhs.mask)};
  }

  Type compileBinary(const Expr& e, uint32_t dst, Pos base) {
    const std::string& op = e.text;
    if (op == "and" || op == "or") return compileLogical(e, dst, base);
    Pos pos = base.plus(e.offset);
    Pos lhs_pos = base.plus(e.operands[0]->offset);
    Pos rhs_pos = base.plus(e.operands[1]->offset);
    uint32_t mark = register_top_;
    Type lt, rt;
    uint32_t lhs = operand(*e.operands[0], base, lt);
    uint32_t rhs = operand(*e.operands[1], base, rt);
    builder_->setLocation(pos.line, pos.column);
    Type result{kTBool};
    if (op == "==" || op == "!=") {
      builder_->emitABC(op == "==" ? Opcode::kEq : Opcode::kNe, dst, lhs, rhs);
    } else if (op == "<" || op == "<=" || op == ">" || op == ">=") {
      requireType(lt, kTOrdered, lhs_pos, internal::strCat("'", op, "'"));
      requireType(rt, kTOrdered, rhs_pos, internal::strCat("'", op, "'"));
      bool l_num = (lt.mask & ~kTNumber) == 0, r_num = (rt.mask & ~kTNumber) == 0;
      if ((l_num && rt.mask == kTString) || (lt.mask == kTString && r_num)) {
        failAt(pos, internal::strCat("type error: '", op, "' compares ", typeName(lt.mask), " with ",
                                 typeName(rt.mask), "; both sides must be numbers or strings"));
      }
      bool swap = op[0] == '>';
      Opcode code = op.size() == 2 ? Opcode::kLe : Opcode::kLt;
      builder_->emitABC(code, dst, swap ? rhs : lhs, swap ? lhs : rhs);
    } else if (op == "in" || op == "not in") {
      requireType(rt, kTList, rhs_pos, internal::strCat("the right side of '", op, "'"));
      builder_->emitABC(Opcode::kIn, dst, lhs, rhs);
      if (op == "not in") builder_->emitABC(Opcode::kNot, dst, dst, 0);
    } else if (op == "+" && (lt.mask == kTString || rt.mask == kTString)) {
      result = concat(lhs, lt, lhs_pos, rhs, rt, rhs_pos, dst, pos);
    } else {
      result = arithmetic(op, lhs, lt, lhs_pos, rhs, rt, rhs_pos, dst);
    }
    register_top_ = mark;
    return result;
  }

  // String building: the side that is not a string goes through TOSTR first.
  Type concat(uint32_t lhs, Type lt, Pos lhs_pos, uint32_t rhs, Type rt, Pos rhs_pos,
              uint32_t dst, Pos pos) {
    requireType(lt, kTAny & ~kTList, lhs_pos, "text building with '+'");
    requireType(rt, kTAny & ~kTList, rhs_pos, "text building with '+'");
    if (lt.mask != kTString) {
      uint32_t text = temp(pos);
      builder_->emitABC(Opcode::kToStr, text, lhs, 0);
      lhs = text;
    }
    if (rt.mask != kTString) {
      uint32_t text = temp(pos);
      builder_->emitABC(Opcode::kToStr, text, rhs, 0);
      rhs = text;
    }
    builder_->setLocation(pos.line, pos.column);
    builder_->emitABC(Opcode::kConcat, dst, lhs, rhs);
    return {kTString};
  }

  Type arithmetic(const std::string& op, uint32_t lhs, Type lt, Pos lhs_pos, uint32_t rhs,
                  Type rt, Pos rhs_pos, uint32_t dst) {
    TypeMask accepts = op == "%" ? kTInt : kTNumber;
    std::string what = internal::strCat("'", op, "'");
    if (op == "+") what += " (use str() or a quoted text to build strings)";
    requireType(lt, accepts, lhs_pos, what);
    requireType(rt, accepts, rhs_pos, what);
    Opcode code = op == "+"   ? Opcode::kAdd
                  : op == "-" ? Opcode::kSub
                  : op == "*" ? Opcode::kMul
                  : op == "/" ? Opcode::kDiv
                              : Opcode::kMod;
    builder_->emitABC(code, dst, lhs, rhs);
    // The same narrowing as the verifier's, so both agree on the result.
    TypeMask mask = 0;
    if (code == Opcode::kMod) return {kTInt};
    if ((lt.mask & kTInt) && (rt.mask & kTInt)) mask |= kTInt;
    if (((lt.mask & kTDouble) && (rt.mask & kTNumber)) ||
        ((rt.mask & kTDouble) && (lt.mask & kTNumber))) {
      mask |= kTDouble;
    }
    return {mask};
  }

  // --- values: expressions and text templates -----------------------------------------

  // Emits a text template into `dst`. A template that is exactly one ${expr} keeps the
  // expression's type; anything else is text.
  Type compileTemplate(const YAML::Node& node, uint32_t dst) {
    Pos pos = positionOf(node);
    std::vector<TemplatePart> parts = splitTemplate(node.Scalar(), pos);
    builder_->setLocation(pos.line, pos.column);
    if (parts.size() == 1 && parts[0].is_expression) {
      return compileExpr(*parse(parts[0].text, pos.plus(parts[0].offset)), dst,
                         pos.plus(parts[0].offset));
    }
    uint32_t mark = register_top_;
    bool first = true;
    for (const TemplatePart& part : parts) {
      uint32_t piece = first ? dst : temp(pos);
      if (part.is_expression) {
        Pos expr_pos = pos.plus(part.offset);
        auto expr = parse(part.text, expr_pos);
        Type type;
        uint32_t value = operand(*expr, expr_pos, type);
        requireType(type, kTAny & ~kTList, expr_pos, "inserting into text");
        builder_->setLocation(expr_pos.line, expr_pos.column);
        builder_->emitABC(Opcode::kToStr, piece, value, 0);
      } else {
        loadString(piece, part.text);
      }
      if (!first) builder_->emitABC(Opcode::kConcat, dst, dst, piece);
      first = false;
      register_top_ = mark;
    }
    return {kTString};
  }

  // A value in vars:, set: or with:. A plain scalar is an expression, a quoted scalar a
  // text template and a sequence a list of values.
  Type compileValue(const YAML::Node& node, uint32_t dst) {
    Pos pos = positionOf(node);
    if (node.IsSequence()) {
      builder_->emitABC(Opcode::kNewList, dst, 0, 0);
      uint32_t mark = register_top_;
      for (const YAML::Node& item : node) {
        uint32_t value = temp(pos);
        compileValue(item, value);
        builder_->emitABC(Opcode::kAppend, dst, value, 0);
        register_top_ = mark;
      }
      return {kTList};
    }
    if (node.IsNull()) {
      builder_->emitABC(Opcode::kLoadNull, dst, 0, 0);
      return {kTNull};
    }
    if (!node.IsScalar()) {
      failAt(pos, "a value must be an expression, a quoted text or a list; mappings are not "
                  "values");
    }
    // yaml-cpp tags every non-plain scalar (quoted or block) "!".
    if (isQuoted(node)) return compileTemplate(node, dst);
    if (node.Scalar().empty()) {
      builder_->emitABC(Opcode::kLoadNull, dst, 0, 0);
      return {kTNull};
    }
    return compileExpr(*parse(node.Scalar(), pos), dst, pos);
  }

  // An expression field (if:, in:); quoted or not, the scalar is one expression.
  Type compileExpressionField(const YAML::Node& node, uint32_t dst, std::string_view field) {
    if (!node.IsScalar() || node.Scalar().empty()) {
      failAt(positionOf(node), internal::strCat(field, " must be an expression"));
    }
    Pos pos = positionOf(node);
    return compileExpr(*parse(node.Scalar(), pos), dst, pos);
  }

  // --- steps ------------------------------------------------------------------------

  void compileVars(const YAML::Node& vars) {
    if (!vars.IsMap()) failAt(positionOf(vars), "vars: must map variable names to values");
    for (const auto& entry : vars) {
      std::string name = variableName(entry.first, "vars:");
      if (lookup(name) != nullptr) {
        failAt(positionOf(entry.first), internal::strCat("variable '", name, "' is defined twice"));
      }
      uint32_t mark = register_top_;
      uint32_t value = temp(positionOf(entry.second));
      Type type = compileValue(entry.second, value);
      register_top_ = mark;
      uint32_t reg = define(name, type, positionOf(entry.first));
      if (reg != value) builder_->emitABC(Opcode::kMove, reg, value, 0);
    }
  }

  void compileSteps(const YAML::Node& steps, uint32_t depth) {
    if (depth > kMaxNesting) {
      failAt(positionOf(steps), internal::strCat("steps nest deeper than ", kMaxNesting, " levels"));
    }
    if (!steps.IsSequence()) failAt(positionOf(steps), "expected a list of steps");
    for (const YAML::Node& step : steps) compileStep(step, depth);
  }

  // Compiles a nested block in its own scope: its variables end with it.
  void compileBlock(const YAML::Node& steps, uint32_t depth) {
    uint32_t mark = register_top_;
    scopes_.emplace_back();
    compileSteps(steps, depth + 1);
    scopes_.pop_back();
    register_top_ = mark;
  }

  void compileStep(const YAML::Node& step, uint32_t depth) {
    static constexpr std::string_view kKinds[] = {"action", "if",  "for_each", "set",
                                                  "wait_for_approval", "delay", "log", "stop"};
    Pos pos = positionOf(step);
    if (!step.IsMap()) {
      failAt(pos, internal::strCat("a step is a mapping with one of: ", joinNames(kKinds)));
    }
    std::string kind;
    for (std::string_view k : kKinds) {
      if (!step[std::string(k)]) continue;
      if (!kind.empty()) {
        failAt(positionOf(step[std::string(k)]),
               internal::strCat("a step has one kind, but this one has both '", kind, "' and '", k,
                            "'; split it into two steps"));
      }
      kind = k;
    }
    if (kind.empty()) {
      if (step["while"] || step["loop"]) {
        failAt(pos, "unbounded loop: the only loop is for_each with a limit:");
      }
      failAt(pos, internal::strCat("unknown step; a step has one of: ", joinNames(kKinds)));
    }
    builder_->setLocation(pos.line, pos.column);
    uint32_t mark = register_top_;
    if (kind == "action") compileAction(step, depth);
    if (kind == "if") compileIf(step, depth);
    if (kind == "for_each") compileForEach(step, depth);
    if (kind == "set") compileSet(step);
    if (kind == "wait_for_approval") compileApproval(step, depth);
    if (kind == "delay") compileDelay(step);
    if (kind == "log") compileLog(step);
    if (kind == "stop") compileStop(step);
    // Temporaries end with the step; variables declared by it stay.
    register_top_ = std::max(mark, first_free_after_variables());
  }

  uint32_t first_free_after_variables() const {
    uint32_t top = 0;
    for (const auto& scope : scopes_) {
      for (const auto& [name, var] : scope) top = std::max(top, var.reg + 1);
    }
    return top;
  }

  void compileIf(const YAML::Node& step, uint32_t depth) {
    checkKeys(step, "if step", {"if", "then", "else", "name"});
    if (!step["then"]) failAt(positionOf(step), "if step has no then: list");
    uint32_t cond = temp(positionOf(step["if"]));
    Type type = compileExpressionField(step["if"], cond, "if:");
    requireType(type, kTBool, positionOf(step["if"]), "if:");
    ProgramBuilder::Label otherwise = builder_->newLabel();
    ProgramBuilder::Label done = builder_->newLabel();
    builder_->emitJump(Opcode::kJmpIfNot, cond, otherwise);
    TypeState before = saveTypes();
    compileBlock(step["then"], depth);
    TypeState after_then = saveTypes();
    restoreTypes(before);
    if (step["else"]) builder_->emitJump(Opcode::kJmp, 0, done);
    builder_->bind(otherwise);
    if (step["else"]) compileBlock(step["else"], depth);
    builder_->bind(done);
    joinTypes(after_then);
  }

  void compileForEach(const YAML::Node& step, uint32_t depth) {
    checkKeys(step, "for_each step", {"for_each", "in", "limit", "do", "name"});
    Pos pos = positionOf(step);
    std::string name = variableName(step["for_each"], "for_each:");
    if (!step["in"]) failAt(pos, "for_each step has no in: list expression");
    if (!step["limit"]) {
      failAt(positionOf(step["for_each"]),
             internal::strCat("unbounded loop: for_each '", name, "' has no limit:; add limit: N ",
                          "(1 to ", kMaxLoopLimit, ")"));
    }
    if (!step["do"]) failAt(pos, "for_each step has no do: list");
    int64_t limit = integerField(step["limit"], "for_each limit", 1, kMaxLoopLimit);
    if (lookup(name) != nullptr) {
      failAt(positionOf(step["for_each"]),
             internal::strCat("for_each variable '", name, "' hides a variable of the same name"));
    }
    // R[base] list, R[base+1] cursor, R[base+2] element; then the iteration counter.
    uint32_t base = allocate(3, pos);
    uint32_t count = temp(pos);
    uint32_t bound = temp(pos);
    uint32_t one = temp(pos);
    uint32_t check = temp(pos);
    Type list_type = compileExpressionField(step["in"], base, "in:");
    requireType(list_type, kTList, positionOf(step["in"]), "for_each in:");
    builder_->setLocation(pos.line, pos.column);
    builder_->emitABC(Opcode::kForPrep, base, 0, 0);
    loadInt(count, 0);
    loadInt(bound, limit);
    loadInt(one, 1);
    ProgramBuilder::Label top = builder_->newLabel();
    ProgramBuilder::Label done = builder_->newLabel();
    builder_->bind(top);
    builder_->emitJump(Opcode::kForNext, base, done);
    builder_->emitABC(Opcode::kLt, check, count, bound);
    builder_->emitJump(Opcode::kJmpIfNot, check, done);
    builder_->emitABC(Opcode::kAdd, count, count, one);
    Type element{kTAny};
    if (list_type.handle == Type::Handle::kEventList) element = {kTInt, Type::Handle::kEvent};
    TypeState before = saveTypes();
    scopes_.emplace_back();
    scopes_.back()[name] = Variable{base + 2, element};
    compileBlock(step["do"], depth);
    scopes_.pop_back();
    // The loop runs zero or more times, and a stop: in the body ends only that path.
    path_ended_ = false;
    joinTypes(before);
    builder_->setLocation(pos.line, pos.column);
    builder_->emitJump(Opcode::kJmp, 0, top);
    builder_->bind(done);
  }

  void compileSet(const YAML::Node& step) {
    checkKeys(step, "set step", {"set", "name"});
    YAML::Node values = step["set"];
    if (!values.IsMap() || values.size() == 0) {
      failAt(positionOf(values), "set: must map variable names to values");
    }
    for (const auto& entry : values) {
      std::string name = variableName(entry.first, "set:");
      uint32_t mark = register_top_;
      uint32_t value = temp(positionOf(entry.second));
      Type type = compileValue(entry.second, value);
      register_top_ = mark;
      uint32_t reg = define(name, type, positionOf(entry.first));
      if (reg != value) builder_->emitABC(Opcode::kMove, reg, value, 0);
    }
  }

  // Builds the list [kind, first, second] in `dst` for a YIELD.
  void yieldRequest(uint32_t dst, std::string_view kind, uint32_t first, uint32_t second, Pos pos) {
    uint32_t tag = temp(pos);
    builder_->emitABC(Opcode::kNewList, dst, 0, 0);
    loadString(tag, kind);
    builder_->emitABC(Opcode::kAppend, dst, tag, 0);
    builder_->emitABC(Opcode::kAppend, dst, first, 0);
    builder_->emitABC(Opcode::kAppend, dst, second, 0);
  }

  void compileDelay(const YAML::Node& step) {
    checkKeys(step, "delay step", {"delay", "name"});
    Pos pos = positionOf(step["delay"]);
    int64_t seconds = duration(step["delay"], "delay", 1);
    uint32_t request = temp(pos), amount = temp(pos), reason = temp(pos), answer = temp(pos);
    loadInt(amount, seconds);
    loadString(reason, step["name"] ? step["name"].as<std::string>() : "delay");
    yieldRequest(request, kYieldDelay, amount, reason, pos);
    builder_->setLocation(pos.line, pos.column);
    builder_->emitABC(Opcode::kYield, answer, request, 0);
  }

  void compileLog(const YAML::Node& step) {
    checkKeys(step, "log step", {"log", "name"});
    Pos pos = positionOf(step["log"]);
    if (!step["log"].IsScalar()) failAt(pos, "log: must be a text, not a list or mapping");
    uint32_t call = allocate(2, pos);
    compileTemplate(step["log"], call + 1);
    builder_->setLocation(pos.line, pos.column);
    builder_->emitABC(Opcode::kCall, call, import(kHostLog, 1), 1);
  }

  void compileStop(const YAML::Node& step) {
    checkKeys(step, "stop step", {"stop", "name"});
    Pos pos = positionOf(step["stop"]);
    uint32_t reason = temp(pos);
    compileValue(step["stop"], reason);
    builder_->setLocation(pos.line, pos.column);
    builder_->emitABC(Opcode::kReturn, reason, 0, 0);
    path_ended_ = true;
  }

  void compileApproval(const YAML::Node& step, uint32_t depth) {
    checkKeys(step, "wait_for_approval step",
              {"wait_for_approval", "timeout", "default", "output", "on_approve", "on_reject",
               "on_timeout", "name"});
    Pos pos = positionOf(step["wait_for_approval"]);
    if (!step["wait_for_approval"].IsScalar()) {
      failAt(pos, "wait_for_approval: must be the prompt text");
    }
    if (!step["timeout"]) {
      failAt(pos, "wait_for_approval has no timeout:; add one such as timeout: 30m");
    }
    int64_t timeout = duration(step["timeout"], "timeout", 1);
    // Without on_timeout:, default: names the branch taken when the deadline passes.
    std::string fallback;
    if (step["default"]) {
      fallback = step["default"].IsScalar() ? step["default"].Scalar() : "";
      if (fallback != "approve" && fallback != "reject") {
        failAt(positionOf(step["default"]),
               internal::strCat("invalid default '", fallback, "'; use approve or reject"));
      }
      if (step["on_timeout"]) {
        failAt(positionOf(step["default"]), "give either default: or on_timeout:, not both");
      }
    } else if (!step["on_timeout"]) {
      failAt(pos, "wait_for_approval needs on_timeout: steps or default: approve|reject for "
                  "when the deadline passes");
    }

    // The output register comes first, so the temporaries above it end with the step.
    OutputSlot output = reserveOutput(step["output"]);
    uint32_t request = temp(pos), prompt = temp(pos), seconds = temp(pos);
    uint32_t answer = temp(pos), expected = temp(pos), is_match = temp(pos);
    compileTemplate(step["wait_for_approval"], prompt);
    loadInt(seconds, timeout);
    yieldRequest(request, kYieldApproval, prompt, seconds, pos);
    builder_->setLocation(pos.line, pos.column);
    builder_->emitABC(Opcode::kYield, answer, request, 0);
    if (output.used) {
      assignOutput(output, {kTAny});
      builder_->emitABC(Opcode::kMove, output.reg, answer, 0);
    }

    ProgramBuilder::Label approve = builder_->newLabel(), reject = builder_->newLabel();
    ProgramBuilder::Label timed_out = builder_->newLabel(), done = builder_->newLabel();
    loadString(expected, "approved");
    builder_->emitABC(Opcode::kEq, is_match, answer, expected);
    builder_->emitJump(Opcode::kJmpIf, is_match, approve);
    loadString(expected, "timeout");
    builder_->emitABC(Opcode::kEq, is_match, answer, expected);
    builder_->emitJump(Opcode::kJmpIf, is_match, fallback == "approve" ? approve
                                                 : fallback == "reject" ? reject
                                                                        : timed_out);
    builder_->emitJump(Opcode::kJmp, 0, reject);

    TypeState before = saveTypes();
    builder_->bind(approve);
    if (step["on_approve"]) compileBlock(step["on_approve"], depth);
    builder_->emitJump(Opcode::kJmp, 0, done);
    TypeState after_approve = saveTypes();
    restoreTypes(before);
    builder_->bind(timed_out);
    if (step["on_timeout"]) compileBlock(step["on_timeout"], depth);
    builder_->emitJump(Opcode::kJmp, 0, done);
    TypeState after_timeout = saveTypes();
    restoreTypes(before);
    builder_->bind(reject);
    if (step["on_reject"]) compileBlock(step["on_reject"], depth);
    builder_->bind(done);
    joinTypes(after_approve);
    if (step["on_timeout"]) joinTypes(after_timeout);
  }

  static bool isActionName(std::string_view name) {
    if (name.empty() || name.size() > 128 || name.front() == '.' || name.back() == '.') {
      return false;
    }
    return std::all_of(name.begin(), name.end(), [](char c) {
      return std::islower(static_cast<unsigned char>(c)) ||
             std::isdigit(static_cast<unsigned char>(c)) || c == '_' || c == '.';
    });
  }

  void compileAction(const YAML::Node& step, uint32_t depth) {
    checkKeys(step, "action step", {"action", "name", "with", "output", "retry", "on_error"});
    Pos pos = positionOf(step["action"]);
    std::string action = step["action"].IsScalar() ? step["action"].Scalar() : "";
    if (!isActionName(action)) {
      failAt(pos, internal::strCat("invalid action name '", action,
                               "'; use lower-case words joined by '.', as in edr.isolate_host"));
    }
    int64_t attempts = 1, backoff = 0, factor = 1;
    if (YAML::Node retry = step["retry"]) {
      if (!retry.IsMap()) failAt(positionOf(retry), "retry: must be a mapping of attempts, backoff, factor");
      checkKeys(retry, "retry", {"attempts", "backoff", "factor"});
      if (!retry["attempts"]) failAt(positionOf(retry), "retry has no attempts:");
      attempts = integerField(retry["attempts"], "retry attempts", 1, kMaxRetryAttempts);
      backoff = retry["backoff"] ? duration(retry["backoff"], "retry backoff", 1) : 1;
      factor = retry["factor"] ? integerField(retry["factor"], "retry factor", 1, 10) : 2;
    }

    // The output variable is null when the action failed, so code after an on_error
    // handler may read it.
    OutputSlot output = reserveOutput(step["output"]);
    // Registers: the TRYCALL block (result, name, params, ok flag), then retry state.
    uint32_t call = allocate(4, pos);
    uint32_t attempt = temp(pos), limit = temp(pos), wait = temp(pos), scale = temp(pos);
    uint32_t one = temp(pos), check = temp(pos);
    if (attempts > 1) {
      loadInt(attempt, 0);
      loadInt(limit, attempts);
      loadInt(wait, backoff);
      loadInt(scale, factor);
      loadInt(one, 1);
    }
    ProgramBuilder::Label top = builder_->newLabel(), failed = builder_->newLabel();
    ProgramBuilder::Label succeeded = builder_->newLabel(), done = builder_->newLabel();
    builder_->bind(top);
    loadString(call + 1, action);
    compileParams(step["with"], call + 2, pos);
    builder_->setLocation(pos.line, pos.column);
    builder_->emitABC(Opcode::kTryCall, call, import(kHostAction, 2), 2);
    builder_->emitJump(Opcode::kJmpIf, call + 3, succeeded);
    if (attempts > 1) {
      builder_->emitABC(Opcode::kAdd, attempt, attempt, one);
      builder_->emitABC(Opcode::kLt, check, attempt, limit);
      builder_->emitJump(Opcode::kJmpIfNot, check, failed);
      uint32_t request = temp(pos), reason = temp(pos), answer = temp(pos);
      loadString(reason, internal::strCat("retry ", action));
      yieldRequest(request, kYieldDelay, wait, reason, pos);
      builder_->emitABC(Opcode::kYield, answer, request, 0);
      builder_->emitABC(Opcode::kMul, wait, wait, scale);
      builder_->emitJump(Opcode::kJmp, 0, top);
    }
    TypeState at_call = saveTypes();
    builder_->bind(failed);
    if (output.used) {
      assignOutput(output, {kTNull});
      builder_->emitABC(Opcode::kLoadNull, output.reg, 0, 0);
    }
    if (YAML::Node handler = step["on_error"]) {
      scopes_.emplace_back();
      uint32_t error = allocate(1, pos);
      scopes_.back()["error"] = Variable{error, {kTString}};
      builder_->emitABC(Opcode::kMove, error, call, 0);
      compileBlock(handler, depth);
      scopes_.pop_back();
    } else {
      // No handler: the run fails with the connector's message.
      uint32_t prefix = temp(pos);
      loadString(prefix, internal::strCat("action ", action, " failed after ", attempts,
                                      attempts == 1 ? " attempt: " : " attempts: "));
      builder_->emitABC(Opcode::kConcat, call + 1, prefix, call);
      builder_->emitABC(Opcode::kCall, call, import(kHostFail, 1), 1);
    }
    builder_->emitJump(Opcode::kJmp, 0, done);
    TypeState after_handler = saveTypes();
    restoreTypes(at_call);
    builder_->bind(succeeded);
    if (output.used) {
      assignOutput(output, {kTAny});
      builder_->emitABC(Opcode::kMove, output.reg, call, 0);
    }
    builder_->bind(done);
    joinTypes(after_handler);
  }

  // Builds the parameter list [name1, value1, name2, value2, ...] of an action.
  void compileParams(const YAML::Node& with, uint32_t dst, Pos pos) {
    builder_->emitABC(Opcode::kNewList, dst, 0, 0);
    if (!with) return;
    if (!with.IsMap()) failAt(positionOf(with), "with: must map parameter names to values");
    uint32_t mark = register_top_;
    for (const auto& entry : with) {
      std::string key = entry.first.IsScalar() ? entry.first.Scalar() : "";
      if (!isIdentifier(key)) {
        failAt(positionOf(entry.first),
               internal::strCat("invalid parameter name '", key, "'; use letters, digits and '_'"));
      }
      uint32_t name = temp(pos), value = temp(pos);
      loadString(name, key);
      builder_->emitABC(Opcode::kAppend, dst, name, 0);
      compileValue(entry.second, value);
      builder_->emitABC(Opcode::kAppend, dst, value, 0);
      register_top_ = mark;
    }
  }

  std::string_view source_;
  std::string file_;
  std::optional<ProgramBuilder> builder_;
  std::vector<std::map<std::string, Variable>> scopes_;
  uint32_t register_top_ = 0;
  uint32_t max_register_ = 0;
  bool path_ended_ = false;  // the current path ended in stop: (the code after it is dead)
};

absl::Status positioned(std::string_view file, Pos pos, std::string_view message) {
  return absl::InvalidArgumentError(
      internal::strCat(file, ":", pos.line, ":", pos.column, ": ", message));
}

}  // namespace

bool parseSeverity(std::string_view text, Severity& out) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (size_t i = 0; i < std::size(kSeverityNames); ++i) {
    if (lower == kSeverityNames[i]) {
      out = static_cast<Severity>(i);
      return true;
    }
  }
  return false;
}

std::string_view severityName(Severity severity) {
  size_t i = static_cast<size_t>(severity);
  return i < std::size(kSeverityNames) ? kSeverityNames[i] : "unknown";
}

absl::StatusOr<CompiledPlaybook> compilePlaybook(std::string_view source,
                                                 std::string_view file_name) {
  if (source.size() > kMaxSourceBytes) {
    return positioned(file_name, {1, 1},
                      internal::strCat("the playbook is ", source.size(), " bytes; the limit is ",
                                   kMaxSourceBytes));
  }
  try {
    return Compiler(source, file_name).compile();
  } catch (const CompileFailure& failure) {
    return positioned(file_name, failure.pos, failure.message);
  } catch (const YAML::Exception& e) {
    Pos pos{static_cast<uint32_t>(e.mark.line + 1), static_cast<uint32_t>(e.mark.column + 1)};
    if (e.mark.is_null()) pos = {1, 1};
    return positioned(file_name, pos, internal::strCat("invalid YAML: ", e.msg));
  }
}

absl::StatusOr<std::unique_ptr<Program>> compileAndLoad(std::string_view source,
                                                        std::string_view file_name,
                                                        const HostRegistry& host) {
  absl::StatusOr<CompiledPlaybook> compiled = compilePlaybook(source, file_name);
  if (!compiled.ok()) return compiled.status();
  absl::StatusOr<std::unique_ptr<Program>> program = loadProgram(compiled->module, host);
  if (!program.ok()) {
    return absl::Status(program.status().code(),
                        internal::strCat(file_name, ": ", program.status().message()));
  }
  return program;
}

}  // namespace vigil::playbook_vm::compiler

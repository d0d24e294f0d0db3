// Code generation below the steps: registers, scopes and variable types, expressions,
// text templates and values.
#include <algorithm>
#include <utility>

#include "playbook_vm/compiler/internal/compiler_state.h"
#include "playbook_vm/verifier.h"

namespace vigil::playbook_vm::compiler::internal {
namespace {

constexpr std::string_view kFunctions = "len, str, intel, contains";

}  // namespace

uint32_t Compiler::allocate(uint32_t count, Pos pos) {
  uint32_t first = register_top_;
  if (register_top_ + count > kMaxRegisters) {
    size_t variables = 0;
    for (const auto& scope : scopes_) variables += scope.size();
    // Each variable in scope keeps its register, so when variables take most of them,
    // splitting expressions does not help.
    if (variables * 2 >= register_top_) {
      failAt(pos, strCat("too many variables: ", variables,
                         " are in scope here, and each "
                         "holds one of the playbook's ",
                         kMaxRegisters,
                         " registers; reuse "
                         "variables with set:, keep values in lists, or split the playbook"));
    }
    failAt(pos, strCat("the playbook needs more than ", kMaxRegisters, " registers here (",
                       variables, " hold variables); split long expressions into set: steps"));
  }
  register_top_ += count;
  max_register_ = std::max(max_register_, register_top_);
  return first;
}

void Compiler::checkCodeSize(Pos pos) const {
  if (builder_->pc() <= kMaxCodeSize) return;
  failAt(pos, strCat("the playbook compiles to more than ", kMaxCodeSize,
                     " instructions here, the playbook code-size limit; split it into several "
                     "playbooks, or repeat steps with for_each instead of writing them out"));
}

const Variable* Compiler::lookup(std::string_view name) const {
  for (auto scope = scopes_.rbegin(); scope != scopes_.rend(); ++scope) {
    auto it = scope->find(std::string(name));
    if (it != scope->end()) return &it->second;
  }
  return nullptr;
}

uint32_t Compiler::define(const std::string& name, Type type, Pos pos) {
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

Compiler::TypeState Compiler::saveTypes() const {
  TypeState state;
  for (const auto& scope : scopes_) {
    for (const auto& [name, var] : scope) state.types[name] = var.type;
  }
  state.ended = path_ended_;
  return state;
}

void Compiler::restoreTypes(const TypeState& state) {
  for (auto& scope : scopes_) {
    for (auto& [name, var] : scope) {
      auto it = state.types.find(name);
      if (it != state.types.end()) var.type = it->second;
    }
  }
  path_ended_ = state.ended;
}

void Compiler::joinTypes(const TypeState& other) {
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

Compiler::OutputSlot Compiler::reserveOutput(const YAML::Node& node) {
  OutputSlot slot;
  if (!node) return slot;
  slot.used = true;
  slot.name = variableName(node, "output:");
  const Variable* existing = lookup(slot.name);
  slot.reg = existing != nullptr ? existing->reg : allocate(1, positionOf(node));
  return slot;
}

void Compiler::assignOutput(const OutputSlot& slot, Type type) {
  for (auto scope = scopes_.rbegin(); scope != scopes_.rend(); ++scope) {
    auto it = scope->find(slot.name);
    if (it != scope->end()) {
      it->second.type = type;
      return;
    }
  }
  scopes_.back()[slot.name] = Variable{slot.reg, type};
}

uint32_t Compiler::import(std::string_view name, uint32_t arity) {
  return builder_->importHost(name, arity);
}

void Compiler::loadString(uint32_t reg, std::string_view text) {
  builder_->emitABx(Opcode::kLoadK, reg, builder_->addString(text));
}

void Compiler::loadInt(uint32_t reg, int64_t value) {
  if (value >= INT16_MIN && value <= INT16_MAX) {
    builder_->emitAsBx(Opcode::kLoadInt, reg, static_cast<int32_t>(value));
  } else {
    builder_->emitABx(Opcode::kLoadK, reg, builder_->addInt(value));
  }
}

std::unique_ptr<Expr> Compiler::parse(std::string_view text, Pos pos) {
  ExprError error;
  std::unique_ptr<Expr> expr = parseExpression(text, error);
  if (expr == nullptr) failAt(pos.plus(error.offset), "syntax error: " + error.message);
  return expr;
}

void Compiler::requireType(const Type& type, TypeMask accepts, Pos pos, std::string_view what) {
  if ((type.mask & accepts) == 0) {
    failAt(pos, strCat("type error: ", what, " needs ", typeName(accepts), ", but it is ",
                       typeName(type.mask)));
  }
}

uint32_t Compiler::operand(const Expr& e, Pos base, Type& type) {
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

Type Compiler::compileExpr(const Expr& e, uint32_t dst, Pos base) {
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

Type Compiler::compileName(const Expr& e, uint32_t dst, Pos pos) {
  if (e.text == "alert") {
    failAt(pos, "'alert' is not a value; name one of its fields, as in alert.rule_id");
  }
  const Variable* var = lookup(e.text);
  if (var == nullptr) {
    failAt(pos, strCat("undefined variable '", e.text, "'; define it under vars: or ",
                       "with set:, output: or for_each: before this step"));
  }
  builder_->emitABC(Opcode::kMove, dst, var->reg, 0);
  return var->type;
}

const Expr* Compiler::fieldPath(const Expr& e, std::string& path) {
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

void Compiler::callHost(std::string_view function, uint32_t dst,
                        std::initializer_list<std::pair<const Expr*, std::string_view>> args,
                        Pos base, Pos pos) {
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

Type Compiler::compileField(const Expr& e, uint32_t dst, Pos base) {
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
    failAt(pos, strCat("field access '.", path, "' needs alert or an event from ",
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

Type Compiler::compileIndex(const Expr& e, uint32_t dst, Pos base) {
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

Type Compiler::compileCall(const Expr& e, uint32_t dst, Pos base) {
  Pos pos = base.plus(e.offset);
  auto arity = [&](size_t n) {
    if (e.operands.size() != n) {
      failAt(pos, strCat(e.text, "() takes ", n, n == 1 ? " argument" : " arguments", ", got ",
                         e.operands.size()));
    }
  };
  if (e.text == "len" || e.text == "str") {
    arity(1);
    uint32_t mark = register_top_;
    Type type;
    uint32_t value = operand(*e.operands[0], base, type);
    bool is_len = e.text == "len";
    TypeMask accepts = is_len ? (kTString | kTList) : (kTAny & ~kTList);
    requireType(type, accepts, base.plus(e.operands[0]->offset), is_len ? "len()" : "str()");
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
    callHost(kHostContains, dst, {{e.operands[0].get(), {}}, {e.operands[1].get(), {}}}, base, pos);
    return {kTBool};
  }
  failAt(pos, strCat("unknown function '", e.text, "'; available: ", kFunctions));
}

Type Compiler::compileList(const Expr& e, uint32_t dst, Pos base) {
  Pos pos = base.plus(e.offset);
  builder_->emitABC(Opcode::kNewList, dst, 0, 0);
  uint32_t mark = register_top_;
  for (const auto& item : e.operands) {
    Type type;
    uint32_t value = operand(*item, base, type);
    builder_->setLocation(pos.line, pos.column);
    builder_->emitABC(Opcode::kAppend, dst, value, 0);
    register_top_ = mark;
    checkCodeSize(base.plus(item->offset));
  }
  return {kTList};
}

Type Compiler::compileUnary(const Expr& e, uint32_t dst, Pos base) {
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

Type Compiler::compileLogical(const Expr& e, uint32_t dst, Pos base) {
  bool is_and = e.text == "and";
  ProgramBuilder::Label done = builder_->newLabel();
  Type lhs = compileExpr(*e.operands[0], dst, base);
  requireType(lhs, kTBool, base.plus(e.operands[0]->offset), strCat("'", e.text, "'"));
  Pos pos = base.plus(e.offset);
  builder_->setLocation(pos.line, pos.column);
  builder_->emitJump(is_and ? Opcode::kJmpIfNot : Opcode::kJmpIf, dst, done);
  Type rhs = compileExpr(*e.operands[1], dst, base);
  requireType(rhs, kTBool, base.plus(e.operands[1]->offset), strCat("'", e.text, "'"));
  builder_->bind(done);
  return {static_cast<TypeMask>(kTBool | rhs.mask)};
}

Type Compiler::compileBinary(const Expr& e, uint32_t dst, Pos base) {
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
    requireType(lt, kTOrdered, lhs_pos, strCat("'", op, "'"));
    requireType(rt, kTOrdered, rhs_pos, strCat("'", op, "'"));
    bool l_num = (lt.mask & ~kTNumber) == 0, r_num = (rt.mask & ~kTNumber) == 0;
    if ((l_num && rt.mask == kTString) || (lt.mask == kTString && r_num)) {
      failAt(pos, strCat("type error: '", op, "' compares ", typeName(lt.mask), " with ",
                         typeName(rt.mask), "; both sides must be numbers or strings"));
    }
    bool swap = op[0] == '>';
    Opcode code = op.size() == 2 ? Opcode::kLe : Opcode::kLt;
    builder_->emitABC(code, dst, swap ? rhs : lhs, swap ? lhs : rhs);
  } else if (op == "in" || op == "not in") {
    requireType(rt, kTList, rhs_pos, strCat("the right side of '", op, "'"));
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

Type Compiler::concat(uint32_t lhs, Type lt, Pos lhs_pos, uint32_t rhs, Type rt, Pos rhs_pos,
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

Type Compiler::arithmetic(const std::string& op, uint32_t lhs, Type lt, Pos lhs_pos, uint32_t rhs,
                          Type rt, Pos rhs_pos, uint32_t dst) {
  TypeMask accepts = op == "%" ? kTInt : kTNumber;
  std::string what = strCat("'", op, "'");
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

Type Compiler::compileTemplate(const YAML::Node& node, uint32_t dst) {
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
    checkCodeSize(part.is_expression ? pos.plus(part.offset) : pos);
  }
  return {kTString};
}

Type Compiler::compileValue(const YAML::Node& node, uint32_t dst) {
  Pos pos = positionOf(node);
  if (node.IsSequence()) {
    builder_->emitABC(Opcode::kNewList, dst, 0, 0);
    uint32_t mark = register_top_;
    for (const YAML::Node& item : node) {
      uint32_t value = temp(pos);
      compileValue(item, value);
      builder_->emitABC(Opcode::kAppend, dst, value, 0);
      register_top_ = mark;
      checkCodeSize(positionOf(item));
    }
    return {kTList};
  }
  if (node.IsNull()) {
    builder_->emitABC(Opcode::kLoadNull, dst, 0, 0);
    return {kTNull};
  }
  if (!node.IsScalar()) {
    failAt(pos,
           "a value must be an expression, a quoted text or a list; mappings are not "
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

Type Compiler::compileExpressionField(const YAML::Node& node, uint32_t dst,
                                      std::string_view field) {
  if (node.IsSequence()) {
    // YAML parses `in: [1, 2]` as a sequence, so the expression parser never gets the text.
    failAt(positionOf(node),
           strCat(field, " must be an expression, not a YAML list; quote a list expression, "
                         "for example ", field, " \"[1, 2]\""));
  }
  if (node.IsMap()) {
    failAt(positionOf(node), strCat(field, " must be an expression, not a YAML mapping"));
  }
  if (!node.IsScalar() || node.Scalar().empty()) {
    failAt(positionOf(node), strCat(field, " must be an expression"));
  }
  Pos pos = positionOf(node);
  return compileExpr(*parse(node.Scalar(), pos), dst, pos);
}

}  // namespace vigil::playbook_vm::compiler::internal

// The compiler's internal state and its helpers, shared by compiler.cc (playbook
// structure and steps) and codegen.cc (registers, variable types, expressions, values).
// Private to playbook_vm/compiler.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "playbook_vm/builder.h"
#include "playbook_vm/compiler/compiler.h"
#include "playbook_vm/compiler/expression.h"
#include "playbook_vm/internal/str_cat.h"
#include "playbook_vm/opcodes.h"
#include "yaml-cpp/yaml.h"

namespace vigil::playbook_vm::compiler::internal {

using ::vigil::playbook_vm::internal::strCat;

struct ScalarMap;

// A 1-based source position. Inside a scalar that spans lines it also carries the
// scalar's map and the offset in its text, so plus() can find the line of a later offset.
struct Pos {
  uint32_t line = 0;
  uint32_t column = 0;
  const ScalarMap* scalar = nullptr;
  uint32_t offset = 0;
  Pos plus(uint32_t more) const;
};

// The source position of each character of a scalar's text, for a scalar that spans lines
// or is a block scalar. YAML joins such lines with a space and drops their indentation,
// so the scalar's column plus an offset in its text is wrong past the first line.
struct ScalarMap {
  // Positions of the first characters of the text. Mapping stops at a character that is
  // not in the source as written, such as one from an escape sequence.
  std::vector<Pos> positions;

  // Returns the position of `offset`, or for an offset past the mapped characters the
  // last mapped position moved right by the difference.
  Pos at(uint32_t offset) const;
};

// Source text and scalar maps that positionOf() uses while a Compiler runs on this thread.
struct SourceMaps {
  std::string_view source;
  std::map<size_t, std::unique_ptr<ScalarMap>> by_start;  // by mark.pos; null: one line
};

// Thrown inside the compiler and turned into a Status at the entry points.
struct CompileFailure {
  Pos pos;
  std::string message;
};

[[noreturn]] void failAt(Pos pos, std::string message);

// Position of a node. yaml-cpp marks are 0-based and point at the opening quote of a
// quoted scalar, so the text of a quoted scalar starts one column later. A scalar that
// spans lines gets a ScalarMap while a Compiler runs.
Pos positionOf(const YAML::Node& node);

bool isQuoted(const YAML::Node& node);

// Fails when `key` names an entry that `seen` already has, because yaml-cpp keeps every
// entry of a mapping and node[key] finds only the first. `what` names the mapping.
void rejectDuplicateKey(std::map<std::string, Pos, std::less<>>& seen, const YAML::Node& key,
                        std::string_view what);

// Returns the 1-based line where a second YAML document starts in `source`, or 0 when
// there is one document (or the later ones contain only comments and blank lines).
uint32_t secondDocumentLine(std::string_view source);

bool isIdentifier(std::string_view text);

bool isReservedName(std::string_view name);

std::string typeName(TypeMask mask);

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

std::vector<TemplatePart> splitTemplate(std::string_view text, Pos pos);

template <typename Range>
std::string joinNames(const Range& names) {
  std::string text;
  for (std::string_view name : names) {
    if (!text.empty()) text += ", ";
    text += name;
  }
  return text;
}

std::string describeKeys(std::initializer_list<std::string_view> keys);

// One compilation: the module being built, the variables in scope with their registers
// and types, and the register stack.
class Compiler {
 public:
  Compiler(std::string_view source, std::string_view file) : source_(source), file_(file) {
    maps_.source = source;
  }

  CompiledPlaybook compile();

 private:
  // --- YAML structure ---------------------------------------------------------------

  static std::array<uint8_t, 32> sha256(std::string_view text);

  void checkKeys(const YAML::Node& map, std::string_view what,
                 std::initializer_list<std::string_view> allowed);

  YAML::Node requireScalar(const YAML::Node& map, std::string_view key, std::string_view what);

  std::vector<std::string> stringList(const YAML::Node& node, std::string_view field);

  Trigger compileTrigger(const YAML::Node& node);

  // Reads a duration: an int of seconds or <int>s, m, h or d; within [min, 7 days].
  int64_t duration(const YAML::Node& node, std::string_view field, int64_t min_seconds);

  int64_t integerField(const YAML::Node& node, std::string_view field, int64_t min, int64_t max);

  std::string variableName(const YAML::Node& node, std::string_view field);

  // --- registers and scopes --------------------------------------------------------

  uint32_t allocate(uint32_t count, Pos pos);
  uint32_t temp(Pos pos) { return allocate(1, pos); }

  // Fails at `pos` once the code emitted so far is over kMaxCodeSize instructions, so the
  // error names the step, list item or text part that crosses the limit.
  void checkCodeSize(Pos pos) const;

  const Variable* lookup(std::string_view name) const;

  // Assigns an existing variable (its register) or declares one in the innermost scope.
  uint32_t define(const std::string& name, Type type, Pos pos);

  // Variable types are tracked per path, like the verifier's dataflow, so the compiler
  // never assumes a wider type than the verifier will (it would then miss an error the
  // verifier rejects). A branch starts from the types before it; where paths join, the
  // types are the union. A path that ended in stop: takes no part in the join.
  struct TypeState {
    std::map<std::string, Type> types;
    bool ended = false;
  };

  TypeState saveTypes() const;

  void restoreTypes(const TypeState& state);

  // Joins the current path with `other` (another path reaching the same point).
  void joinTypes(const TypeState& other);

  // The variable an action or approval writes with output:. Its register is reserved
  // before the step's temporaries, but a new variable is declared only where it is
  // written, so the step's own expressions cannot read it before then.
  struct OutputSlot {
    bool used = false;
    std::string name;
    uint32_t reg = 0;
  };

  OutputSlot reserveOutput(const YAML::Node& node);

  void assignOutput(const OutputSlot& slot, Type type);

  uint32_t import(std::string_view name, uint32_t arity);

  void loadString(uint32_t reg, std::string_view text);

  void loadInt(uint32_t reg, int64_t value);

  // --- expressions ------------------------------------------------------------------

  // Parses the expression `text` that starts at `pos`.
  std::unique_ptr<Expr> parse(std::string_view text, Pos pos);

  static void requireType(const Type& type, TypeMask accepts, Pos pos, std::string_view what);

  // Returns a register holding `e`: a variable's own register, or a new temporary.
  uint32_t operand(const Expr& e, Pos base, Type& type);

  // Emits code that leaves the value of `e` in `dst`, a temporary no other code reads.
  Type compileExpr(const Expr& e, uint32_t dst, Pos base);

  Type compileName(const Expr& e, uint32_t dst, Pos pos);

  // Collects "a.b.c" from a chain of field accesses rooted at a name.
  static const Expr* fieldPath(const Expr& e, std::string& path);

  // Emits CALL host(args...) with the result in `dst`.
  void callHost(std::string_view function, uint32_t dst,
                std::initializer_list<std::pair<const Expr*, std::string_view>> args, Pos base,
                Pos pos);

  Type compileField(const Expr& e, uint32_t dst, Pos base);

  Type compileIndex(const Expr& e, uint32_t dst, Pos base);

  Type compileCall(const Expr& e, uint32_t dst, Pos base);

  Type compileList(const Expr& e, uint32_t dst, Pos base);

  Type compileUnary(const Expr& e, uint32_t dst, Pos base);

  Type compileLogical(const Expr& e, uint32_t dst, Pos base);

  Type compileBinary(const Expr& e, uint32_t dst, Pos base);

  // String building: the side that is not a string goes through TOSTR first.
  Type concat(uint32_t lhs, Type lt, Pos lhs_pos, uint32_t rhs, Type rt, Pos rhs_pos, uint32_t dst,
              Pos pos);

  Type arithmetic(const std::string& op, uint32_t lhs, Type lt, Pos lhs_pos, uint32_t rhs, Type rt,
                  Pos rhs_pos, uint32_t dst);

  // --- values: expressions and text templates -----------------------------------------

  // Emits a text template into `dst`. A template that is exactly one ${expr} keeps the
  // expression's type; anything else is text.
  Type compileTemplate(const YAML::Node& node, uint32_t dst);

  // A value in vars:, set: or with:. A plain scalar is an expression, a quoted scalar a
  // text template and a sequence a list of values.
  Type compileValue(const YAML::Node& node, uint32_t dst);

  // An expression field (if:, in:); quoted or not, the scalar is one expression.
  Type compileExpressionField(const YAML::Node& node, uint32_t dst, std::string_view field);

  // --- steps ------------------------------------------------------------------------

  void compileVars(const YAML::Node& vars);

  void compileSteps(const YAML::Node& steps, uint32_t depth);

  // Compiles a nested block in its own scope: its variables end with it.
  void compileBlock(const YAML::Node& steps, uint32_t depth);

  void compileStep(const YAML::Node& step, uint32_t depth);

  uint32_t first_free_after_variables() const;

  void compileIf(const YAML::Node& step, uint32_t depth);

  void compileForEach(const YAML::Node& step, uint32_t depth);

  void compileSet(const YAML::Node& step);

  // Builds the list [kind, first, second] in `dst` for a YIELD.
  void yieldRequest(uint32_t dst, std::string_view kind, uint32_t first, uint32_t second, Pos pos);

  void compileDelay(const YAML::Node& step);

  void compileLog(const YAML::Node& step);

  void compileStop(const YAML::Node& step);

  void compileApproval(const YAML::Node& step, uint32_t depth);

  static bool isActionName(std::string_view name);

  void compileAction(const YAML::Node& step, uint32_t depth);

  // Builds the parameter list [name1, value1, name2, value2, ...] of an action.
  void compileParams(const YAML::Node& with, uint32_t dst, Pos pos);

  std::string_view source_;
  SourceMaps maps_;
  std::string file_;
  std::optional<ProgramBuilder> builder_;
  std::vector<std::map<std::string, Variable>> scopes_;
  uint32_t register_top_ = 0;
  uint32_t max_register_ = 0;
  bool path_ended_ = false;  // the current path ended in stop: (the code after it is dead)
};

}  // namespace vigil::playbook_vm::compiler::internal

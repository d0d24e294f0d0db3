#include "playbook_vm/compiler/compiler.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>
#include <utility>

#include "common/yaml_error.h"
#include "playbook_vm/compiler/internal/compiler_state.h"
#include "playbook_vm/verifier.h"

namespace vigil::playbook_vm::compiler {
namespace internal {

[[noreturn]] void failAt(Pos pos, std::string message) {
  throw CompileFailure{pos, std::move(message)};
}

namespace {

// The maps of the Compiler running on this thread, set by Compiler::compile().
thread_local SourceMaps* t_source_maps = nullptr;

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Maps each character of `text`, the value of the scalar at `mark`, to its position in
// `source`. Returns null when the text is on the mark's line as written.
std::unique_ptr<ScalarMap> mapScalar(std::string_view source, const YAML::Mark& mark,
                                     const std::string& text) {
  if (mark.is_null() || mark.pos < 0 || static_cast<size_t>(mark.pos) >= source.size()) {
    return nullptr;
  }
  size_t p = static_cast<size_t>(mark.pos);
  Pos here{static_cast<uint32_t>(mark.line + 1), static_cast<uint32_t>(mark.column + 1)};
  auto advance = [&] {
    if (source[p] == '\n') {
      ++here.line;
      here.column = 1;
    } else {
      ++here.column;
    }
    ++p;
  };
  // Skip the opening quote, or the header line of a block scalar (`|`, `>-`).
  if (source[p] == '"' || source[p] == '\'') {
    advance();
  } else if (source[p] == '|' || source[p] == '>') {
    while (p < source.size() && source[p] != '\n') advance();
  }
  if (source.substr(p, text.size()) == text && text.find('\n') == std::string::npos) {
    return nullptr;
  }
  auto map = std::make_unique<ScalarMap>();
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\n') {
      // A space may stand for a line break with the indentation around it.
      map->positions.push_back({here.line, here.column});
      if (p < source.size() && source[p] == c) advance();
      continue;
    }
    while (p < source.size() && source[p] != c && isSpace(source[p])) advance();
    if (p >= source.size() || source[p] != c) break;
    map->positions.push_back({here.line, here.column});
    advance();
  }
  if (map->positions.empty()) return nullptr;
  return map;
}

}  // namespace

Pos Pos::plus(uint32_t more) const {
  if (scalar == nullptr) return {line, column + more};
  return scalar->at(offset + more);
}

Pos ScalarMap::at(uint32_t offset) const {
  Pos pos = positions.back();
  if (offset < positions.size()) {
    pos = positions[offset];
  } else {
    pos.column += offset - static_cast<uint32_t>(positions.size() - 1);
  }
  pos.scalar = this;
  pos.offset = offset;
  return pos;
}

Pos positionOf(const YAML::Node& node) {
  YAML::Mark mark = node.Mark();
  Pos pos{static_cast<uint32_t>(mark.line + 1), static_cast<uint32_t>(mark.column + 1)};
  if (!node.IsScalar()) return pos;
  if (t_source_maps != nullptr && !mark.is_null()) {
    auto [it, inserted] = t_source_maps->by_start.try_emplace(static_cast<size_t>(mark.pos));
    if (inserted) it->second = mapScalar(t_source_maps->source, mark, node.Scalar());
    if (it->second != nullptr) return it->second->at(0);
  }
  if (node.Tag() == "!") pos.column += 1;
  return pos;
}

bool isQuoted(const YAML::Node& node) { return node.IsScalar() && node.Tag() == "!"; }

void rejectDuplicateKey(std::map<std::string, Pos, std::less<>>& seen, const YAML::Node& key,
                        std::string_view what) {
  if (!key.IsScalar()) return;
  Pos pos = positionOf(key);
  auto [first, inserted] = seen.emplace(key.Scalar(), pos);
  if (inserted) return;
  failAt(pos, strCat("'", key.Scalar(), "' is given twice in ", what, " (first at line ",
                     first->second.line, "); YAML keeps only one of the two, so remove or ",
                     "rename one"));
}

namespace {

// A document marker line: `marker` ("---" or "...") at column 0, alone or before a blank.
// YAML forbids such a line inside a scalar, so it always starts or ends a document.
bool isMarkerLine(std::string_view line, std::string_view marker) {
  return line.substr(0, 3) == marker && (line.size() == 3 || line[3] == ' ' || line[3] == '\t');
}

// Whether `text` contains anything besides blanks and a comment.
bool hasContent(std::string_view text) {
  size_t start = text.find_first_not_of(" \t\r");
  return start != std::string_view::npos && text[start] != '#';
}

}  // namespace

uint32_t secondDocumentLine(std::string_view source) {
  bool started = false;     // a "---" or content of the first document was seen
  bool ended = false;       // a "..." ended the first document
  uint32_t next_start = 0;  // line of a "---" after the first document, 0 if none
  uint32_t line_number = 0;
  for (std::string_view rest = source; !rest.empty();) {
    size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (isMarkerLine(line, "---")) {
      if (started || ended) {
        if (next_start == 0) next_start = line_number;
      } else {
        started = true;
      }
      if (hasContent(line.substr(3)) && next_start != 0) return next_start;
      continue;
    }
    if (isMarkerLine(line, "...")) {
      ended = started;
      continue;
    }
    // A directive ("%YAML 1.2") belongs to the document after it.
    if (!hasContent(line) || line[0] == '%') continue;
    if (next_start != 0) return next_start;
    if (ended) return line_number;
    started = true;
  }
  return 0;
}

bool isIdentifier(std::string_view text) {
  if (text.empty() || text.size() > 64) return false;
  if (!std::isalpha(static_cast<unsigned char>(text[0])) && text[0] != '_') return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

bool isReservedName(std::string_view name) {
  static const std::set<std::string_view> kReserved = {"alert", "true", "false", "null",
                                                       "and",   "or",   "not",   "in",
                                                       "len",   "str",  "intel", "contains"};
  return kReserved.count(name) != 0;
}

std::string typeName(TypeMask mask) { return typeMaskToString(mask); }

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
        if (c == '\\')
          ++j;
        else if (c == quote)
          quote = 0;
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
    parts.push_back(
        {true, std::string(text.substr(i + 2, j - i - 2)), static_cast<uint32_t>(i + 2)});
    i = j + 1;
  }
  if (!literal.empty() || parts.empty()) parts.push_back({false, std::move(literal), 0});
  return parts;
}

std::string describeKeys(std::initializer_list<std::string_view> keys) { return joinNames(keys); }

// ---------------------------------------------------------------------------------------
// Playbook structure and steps

CompiledPlaybook Compiler::compile() {
  struct MapsInUse {
    explicit MapsInUse(SourceMaps* maps) { t_source_maps = maps; }
    ~MapsInUse() { t_source_maps = nullptr; }
  } maps_in_use(&maps_);
  // YAML::Load reads only the first document, so a second one would be ignored silently.
  if (uint32_t line = secondDocumentLine(source_); line != 0) {
    failAt({line, 1},
           "a second YAML document starts here, but a playbook file contains one "
           "playbook; move each playbook to its own file");
  }
  YAML::Node root = YAML::Load(std::string(source_));
  // An empty document has no position (yaml-cpp marks it at line 0), so it is reported
  // at the first line.
  if (root.IsNull()) {
    failAt({1, 1},
           "the file has no playbook, only blank lines or comments; a playbook is a "
           "YAML mapping with name, trigger and steps");
  }
  if (!root.IsMap()) {
    failAt(positionOf(root), "a playbook is a YAML mapping with name, trigger and steps");
  }
  checkKeys(root, "playbook", {"name", "description", "trigger", "vars", "steps"});
  std::string name = requireScalar(root, "name", "playbook").as<std::string>();
  Pos name_pos = positionOf(root["name"]);
  if (name.empty() || name.size() > 64 || !std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
      })) {
    failAt(name_pos, strCat("invalid playbook name '", name,
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
  if (!bytes.ok()) failAt({1, 1}, strCat("code generation failed: ", bytes.status().message()));
  return CompiledPlaybook{name, std::move(*bytes)};
}

std::array<uint8_t, 32> Compiler::sha256(std::string_view text) {
  std::array<uint8_t, 32> digest{};
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha256(), nullptr);
  return digest;
}

void Compiler::checkKeys(const YAML::Node& map, std::string_view what,
                         std::initializer_list<std::string_view> allowed) {
  std::map<std::string, Pos, std::less<>> seen;
  for (const auto& entry : map) {
    if (!entry.first.IsScalar()) {
      failAt(positionOf(entry.first), strCat("keys of a ", what, " must be names"));
    }
    rejectDuplicateKey(seen, entry.first, what);
    std::string key = entry.first.as<std::string>();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      failAt(positionOf(entry.first), strCat("unknown field '", key, "' in ", what,
                                             "; expected one of: ", describeKeys(allowed)));
    }
  }
}

YAML::Node Compiler::requireScalar(const YAML::Node& map, std::string_view key,
                                   std::string_view what) {
  YAML::Node node = map[std::string(key)];
  if (!node) failAt(positionOf(map), strCat(what, " has no '", key, "' field"));
  if (!node.IsScalar()) {
    failAt(positionOf(node), strCat("'", key, "' in ", what, " must be a single value"));
  }
  return node;
}

std::vector<std::string> Compiler::stringList(const YAML::Node& node, std::string_view field) {
  std::vector<std::string> out;
  const YAML::Node& list = node;
  if (node.IsScalar()) {
    std::string example = node.Scalar().empty() ? "name" : node.Scalar();
    failAt(positionOf(node),
           strCat(field, " must be a list, for example [", example, "], not a single value"));
  }
  if (!list.IsSequence()) {
    failAt(positionOf(node), strCat(field, " must be a list of strings"));
  }
  if (list.size() > kMaxTriggerValues) {
    failAt(positionOf(node),
           strCat(field, " has ", list.size(), " entries; at most ", kMaxTriggerValues));
  }
  for (const YAML::Node& item : list) {
    if (!item.IsScalar() || item.Scalar().empty() || item.Scalar().size() > kMaxNameLength) {
      failAt(positionOf(item), strCat("each entry of ", field, " must be a string of 1 to ",
                                      kMaxNameLength, " bytes"));
    }
    out.push_back(item.Scalar());
  }
  return out;
}

Trigger Compiler::compileTrigger(const YAML::Node& node) {
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
             strCat("invalid severity '", severity.IsScalar() ? severity.Scalar() : "",
                    "'; use informational, low, medium, high or critical"));
    }
  }
  return trigger;
}

int64_t Compiler::duration(const YAML::Node& node, std::string_view field, int64_t min_seconds) {
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
           strCat("invalid duration '", text, "' for ", field, "; use seconds or a number ",
                  "with s, m, h or d, from ", min_seconds, "s to 7d"));
  }
  return value * unit;
}

int64_t Compiler::integerField(const YAML::Node& node, std::string_view field, int64_t min,
                               int64_t max) {
  int64_t value = 0;
  std::string text = node.IsScalar() ? node.Scalar() : "";
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < min ||
      value > max) {
    failAt(positionOf(node),
           strCat("invalid ", field, " '", text, "'; use an integer from ", min, " to ", max));
  }
  return value;
}

std::string Compiler::variableName(const YAML::Node& node, std::string_view field) {
  std::string name = node.IsScalar() ? node.Scalar() : "";
  if (!isIdentifier(name) || isReservedName(name)) {
    failAt(positionOf(node),
           strCat("invalid variable name '", name, "' for ", field,
                  "; use letters, digits and '_', not starting with a digit, and not ",
                  "a reserved word such as alert, and, or, not, in"));
  }
  return name;
}

void Compiler::compileVars(const YAML::Node& vars) {
  if (!vars.IsMap()) failAt(positionOf(vars), "vars: must map variable names to values");
  for (const auto& entry : vars) {
    std::string name = variableName(entry.first, "vars:");
    if (lookup(name) != nullptr) {
      failAt(positionOf(entry.first), strCat("variable '", name, "' is defined twice"));
    }
    uint32_t mark = register_top_;
    uint32_t value = temp(positionOf(entry.second));
    Type type = compileValue(entry.second, value);
    register_top_ = mark;
    uint32_t reg = define(name, type, positionOf(entry.first));
    if (reg != value) builder_->emitABC(Opcode::kMove, reg, value, 0);
  }
}

void Compiler::compileSteps(const YAML::Node& steps, uint32_t depth) {
  if (depth > kMaxNesting) {
    failAt(positionOf(steps), strCat("steps nest deeper than ", kMaxNesting, " levels"));
  }
  if (!steps.IsSequence()) failAt(positionOf(steps), "expected a list of steps");
  for (const YAML::Node& step : steps) compileStep(step, depth);
}

void Compiler::compileBlock(const YAML::Node& steps, uint32_t depth) {
  uint32_t mark = register_top_;
  scopes_.emplace_back();
  compileSteps(steps, depth + 1);
  scopes_.pop_back();
  register_top_ = mark;
}

void Compiler::compileStep(const YAML::Node& step, uint32_t depth) {
  static constexpr std::string_view kKinds[] = {
      "action", "if", "for_each", "set", "wait_for_approval", "delay", "log", "stop"};
  Pos pos = positionOf(step);
  if (!step.IsMap()) {
    failAt(pos, strCat("a step is a mapping with one of: ", joinNames(kKinds)));
  }
  std::string kind;
  for (std::string_view k : kKinds) {
    if (!step[std::string(k)]) continue;
    if (!kind.empty()) {
      failAt(positionOf(step[std::string(k)]),
             strCat("a step has one kind, but this one has both '", kind, "' and '", k,
                    "'; split it into two steps"));
    }
    kind = k;
  }
  if (kind.empty()) {
    if (step["while"] || step["loop"]) {
      failAt(pos, "unbounded loop: the only loop is for_each with a limit:");
    }
    failAt(pos, strCat("unknown step; a step has one of: ", joinNames(kKinds)));
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
  checkCodeSize(pos);
}

uint32_t Compiler::first_free_after_variables() const {
  uint32_t top = 0;
  for (const auto& scope : scopes_) {
    for (const auto& [name, var] : scope) top = std::max(top, var.reg + 1);
  }
  return top;
}

void Compiler::compileIf(const YAML::Node& step, uint32_t depth) {
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

void Compiler::compileForEach(const YAML::Node& step, uint32_t depth) {
  checkKeys(step, "for_each step", {"for_each", "in", "limit", "do", "name"});
  Pos pos = positionOf(step);
  std::string name = variableName(step["for_each"], "for_each:");
  if (!step["in"]) failAt(pos, "for_each step has no in: list expression");
  if (!step["limit"]) {
    failAt(positionOf(step["for_each"]),
           strCat("unbounded loop: for_each '", name, "' has no limit:; add limit: N ", "(1 to ",
                  kMaxLoopLimit, ")"));
  }
  if (!step["do"]) failAt(pos, "for_each step has no do: list");
  int64_t limit = integerField(step["limit"], "for_each limit", 1, kMaxLoopLimit);
  if (lookup(name) != nullptr) {
    failAt(positionOf(step["for_each"]),
           strCat("for_each variable '", name, "' hides a variable of the same name"));
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

void Compiler::compileSet(const YAML::Node& step) {
  checkKeys(step, "set step", {"set", "name"});
  YAML::Node values = step["set"];
  if (!values.IsMap() || values.size() == 0) {
    failAt(positionOf(values), "set: must map variable names to values");
  }
  std::map<std::string, Pos, std::less<>> seen;
  for (const auto& entry : values) {
    rejectDuplicateKey(seen, entry.first, "set:");
    std::string name = variableName(entry.first, "set:");
    uint32_t mark = register_top_;
    uint32_t value = temp(positionOf(entry.second));
    Type type = compileValue(entry.second, value);
    register_top_ = mark;
    uint32_t reg = define(name, type, positionOf(entry.first));
    if (reg != value) builder_->emitABC(Opcode::kMove, reg, value, 0);
  }
}

void Compiler::yieldRequest(uint32_t dst, std::string_view kind, uint32_t first, uint32_t second,
                            Pos pos) {
  uint32_t tag = temp(pos);
  builder_->emitABC(Opcode::kNewList, dst, 0, 0);
  loadString(tag, kind);
  builder_->emitABC(Opcode::kAppend, dst, tag, 0);
  builder_->emitABC(Opcode::kAppend, dst, first, 0);
  builder_->emitABC(Opcode::kAppend, dst, second, 0);
}

void Compiler::compileDelay(const YAML::Node& step) {
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

void Compiler::compileLog(const YAML::Node& step) {
  checkKeys(step, "log step", {"log", "name"});
  Pos pos = positionOf(step["log"]);
  if (!step["log"].IsScalar()) failAt(pos, "log: must be a text, not a list or mapping");
  uint32_t call = allocate(2, pos);
  compileTemplate(step["log"], call + 1);
  builder_->setLocation(pos.line, pos.column);
  builder_->emitABC(Opcode::kCall, call, import(kHostLog, 1), 1);
}

void Compiler::compileStop(const YAML::Node& step) {
  checkKeys(step, "stop step", {"stop", "name"});
  Pos pos = positionOf(step["stop"]);
  uint32_t reason = temp(pos);
  compileValue(step["stop"], reason);
  builder_->setLocation(pos.line, pos.column);
  builder_->emitABC(Opcode::kReturn, reason, 0, 0);
  path_ended_ = true;
}

void Compiler::compileApproval(const YAML::Node& step, uint32_t depth) {
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
             strCat("invalid default '", fallback, "'; use approve or reject"));
    }
    if (step["on_timeout"]) {
      failAt(positionOf(step["default"]), "give either default: or on_timeout:, not both");
    }
  } else if (!step["on_timeout"]) {
    failAt(pos,
           "wait_for_approval needs on_timeout: steps or default: approve|reject for "
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
  builder_->emitJump(Opcode::kJmpIf, is_match,
                     fallback == "approve"  ? approve
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

bool Compiler::isActionName(std::string_view name) {
  if (name.empty() || name.size() > 128 || name.front() == '.' || name.back() == '.') {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) ||
           std::isdigit(static_cast<unsigned char>(c)) || c == '_' || c == '.';
  });
}

void Compiler::compileAction(const YAML::Node& step, uint32_t depth) {
  checkKeys(step, "action step", {"action", "name", "with", "output", "retry", "on_error"});
  Pos pos = positionOf(step["action"]);
  std::string action = step["action"].IsScalar() ? step["action"].Scalar() : "";
  if (!isActionName(action)) {
    failAt(pos, strCat("invalid action name '", action,
                       "'; use lower-case words joined by '.', as in edr.isolate_host"));
  }
  int64_t attempts = 1, backoff = 0, factor = 1;
  if (YAML::Node retry = step["retry"]) {
    if (!retry.IsMap())
      failAt(positionOf(retry), "retry: must be a mapping of attempts, backoff, factor");
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
    loadString(reason, strCat("retry ", action));
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
    loadString(prefix, strCat("action ", action, " failed after ", attempts,
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

void Compiler::compileParams(const YAML::Node& with, uint32_t dst, Pos pos) {
  builder_->emitABC(Opcode::kNewList, dst, 0, 0);
  if (!with) return;
  if (!with.IsMap()) failAt(positionOf(with), "with: must map parameter names to values");
  uint32_t mark = register_top_;
  std::map<std::string, Pos, std::less<>> seen;
  for (const auto& entry : with) {
    rejectDuplicateKey(seen, entry.first, "with:");
    std::string key = entry.first.IsScalar() ? entry.first.Scalar() : "";
    if (!isIdentifier(key)) {
      failAt(positionOf(entry.first),
             strCat("invalid parameter name '", key, "'; use letters, digits and '_'"));
    }
    uint32_t name = temp(pos), value = temp(pos);
    loadString(name, key);
    builder_->emitABC(Opcode::kAppend, dst, name, 0);
    compileValue(entry.second, value);
    builder_->emitABC(Opcode::kAppend, dst, value, 0);
    register_top_ = mark;
  }
}

}  // namespace internal

using internal::CompileFailure;
using internal::Compiler;
using internal::Pos;

namespace {

constexpr std::string_view kSeverityNames[] = {"informational", "low", "medium", "high",
                                               "critical"};

absl::Status positioned(std::string_view file, Pos pos, std::string_view message) {
  return absl::InvalidArgumentError(
      internal::strCat(file, ":", pos.line, ":", pos.column, ": ", message));
}

// Returns line `line` (1-based) of `source` without its line break, or "" past the end.
std::string_view sourceLine(std::string_view source, uint32_t line) {
  size_t start = 0;
  for (uint32_t i = 1; i < line; ++i) {
    start = source.find('\n', start);
    if (start == std::string_view::npos) return {};
    ++start;
  }
  std::string_view text = source.substr(start, source.find('\n', start) - start);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  return text;
}

// If `line` is "KEY: VALUE" or "- KEY: VALUE" where VALUE starts with a quote and goes on
// after the closing quote, returns the line with the whole value in single quotes.
std::string requoted(std::string_view line) {
  size_t colon = line.find(": ");
  if (colon == std::string_view::npos) return {};
  size_t start = line.find_first_not_of(' ', colon + 1);
  if (start == std::string_view::npos || (line[start] != '"' && line[start] != '\'')) return {};
  size_t close = line.find(line[start], start + 1);
  if (close == std::string_view::npos) return {};
  std::string_view after = line.substr(close + 1);
  size_t rest = after.find_first_not_of(" \t");
  if (rest == std::string_view::npos || after[rest] == '#') return {};
  std::string value(line.substr(start));
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
  std::string quoted = "'";
  for (char c : value) quoted += c == '\'' ? std::string("''") : std::string(1, c);
  quoted += "'";
  size_t indent = line.find_first_not_of(" -");
  return internal::strCat(line.substr(indent, start - indent), quoted);
}

// Adds to a yaml-cpp error what to change in the playbook, and moves `pos` to the
// backslash of an unknown escape (yaml-cpp points past it).
std::string yamlErrorWithHint(std::string_view source, const YAML::Exception& e, Pos& pos) {
  std::string message = internal::strCat("invalid YAML: ", yamlErrorText(e));
  std::string_view line = sourceLine(source, pos.line);
  size_t indent_end = line.find_first_not_of(" \t");
  if (line.substr(0, indent_end).find('\t') != std::string_view::npos) {
    return internal::strCat(message,
                            "; YAML does not allow tabs in indentation, so indent "
                            "with spaces");
  }
  if (e.msg.starts_with("unknown escape character")) {
    size_t backslash = line.rfind('\\', pos.column > 0 ? pos.column - 1 : 0);
    if (backslash != std::string_view::npos) pos.column = static_cast<uint32_t>(backslash + 1);
    return internal::strCat(message,
                            "; inside double quotes a backslash starts an escape "
                            "such as \\n or \\\", so write \\\\ for a backslash or "
                            "use single quotes");
  }
  if (std::string fixed = requoted(line); !fixed.empty()) {
    return internal::strCat(message,
                            "; a quoted value ends at its closing quote, so to "
                            "write an expression that starts with a quote, quote "
                            "the whole expression: ",
                            fixed);
  }
  if (e.msg.find("flow") != std::string::npos) {
    return internal::strCat(message,
                            "; close every [ with ] and every { with }, and quote "
                            "a value that contains them");
  }
  return message;
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
    std::string message = yamlErrorWithHint(source, e, pos);
    return positioned(file_name, pos, message);
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

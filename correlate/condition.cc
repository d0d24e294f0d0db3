#include "correlate/condition.h"

#include <cctype>

#include "correlate/internal/text.h"
#include "correlate/pattern.h"

namespace vigil::correlate {

// Recursive-descent parser over the grammar
//   or_expr  := and_expr ("or" and_expr)*
//   and_expr := not_expr ("and" not_expr)*
//   not_expr := "not" not_expr | primary
//   primary  := "(" or_expr ")" | ("1" | "any" | "all") "of" (NAME_PATTERN | "them") | NAME
class ConditionParser {
 public:
  ConditionParser(std::string_view text, const std::vector<std::string>& names)
      : text_(text), names_(names) {}

  absl::StatusOr<Condition> parse() {
    next();
    absl::StatusOr<uint32_t> root = parseOr();
    if (!root.ok()) return root.status();
    if (token_ == "|") return aggregationError();
    if (!token_.empty()) return error("unexpected token");
    condition_.root_ = *root;
    return std::move(condition_);
  }

 private:
  // Moves to the next token: a parenthesis, a pipe or a run of name characters.
  void next() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    token_start_ = pos_;
    if (pos_ >= text_.size()) {
      token_ = {};
      return;
    }
    char c = text_[pos_];
    if (c == '(' || c == ')' || c == '|') {
      token_ = text_.substr(pos_++, 1);
      return;
    }
    size_t end = pos_;
    while (end < text_.size() && !std::isspace(static_cast<unsigned char>(text_[end])) &&
           text_[end] != '(' && text_[end] != ')' && text_[end] != '|') {
      ++end;
    }
    token_ = text_.substr(pos_, end - pos_);
    pos_ = end;
  }

  bool isKeyword(std::string_view keyword) const {
    return internal::equalsIgnoreCase(token_, keyword);
  }

  absl::Status error(std::string_view reason) const {
    std::string shown =
        token_.empty() ? std::string("end of condition") : internal::concat("'", token_, "'");
    // A condition too long to read in one line is shown by its start.
    constexpr size_t kShownBytes = 120;
    std::string_view text = text_.substr(0, kShownBytes);
    return absl::InvalidArgumentError(internal::concat("condition '", text,
                                                       text_.size() > kShownBytes ? "...'" : "'",
                                                       ": ", reason, " at ", shown, " (offset ",
                                                       token_start_, ")"));
  }

  absl::Status aggregationError() const {
    return error(
        "aggregation expressions are not supported; express counts as an event_count "
        "correlation rule");
  }

  uint32_t addNode(Condition::Kind kind, const std::vector<uint32_t>& children) {
    if (children.size() == 1 && kind != Condition::Kind::kNot) return children[0];
    Condition::Node node;
    node.kind = kind;
    node.first_child = static_cast<uint32_t>(condition_.children_.size());
    node.child_count = static_cast<uint32_t>(children.size());
    condition_.children_.insert(condition_.children_.end(), children.begin(), children.end());
    condition_.nodes_.push_back(node);
    return static_cast<uint32_t>(condition_.nodes_.size() - 1);
  }

  uint32_t addSelection(uint32_t selection) {
    Condition::Node node;
    node.kind = Condition::Kind::kSelection;
    node.selection = selection;
    condition_.nodes_.push_back(node);
    return static_cast<uint32_t>(condition_.nodes_.size() - 1);
  }

  absl::StatusOr<uint32_t> parseOr() {
    std::vector<uint32_t> terms;
    while (true) {
      absl::StatusOr<uint32_t> term = parseAnd();
      if (!term.ok()) return term.status();
      terms.push_back(*term);
      if (!isKeyword("or")) break;
      next();
    }
    return addNode(Condition::Kind::kOr, terms);
  }

  absl::StatusOr<uint32_t> parseAnd() {
    std::vector<uint32_t> terms;
    while (true) {
      absl::StatusOr<uint32_t> term = parseNot();
      if (!term.ok()) return term.status();
      terms.push_back(*term);
      if (!isKeyword("and")) break;
      next();
    }
    return addNode(Condition::Kind::kAnd, terms);
  }

  absl::StatusOr<uint32_t> parseNot() {
    if (!isKeyword("not")) return parsePrimary();
    if (absl::Status deeper = enter(); !deeper.ok()) return deeper;
    next();
    absl::StatusOr<uint32_t> operand = parseNot();
    --depth_;
    if (!operand.ok()) return operand.status();
    return addNode(Condition::Kind::kNot, {*operand});
  }

  // Counts one more level of parentheses or "not". Parsing and evaluation recurse once per
  // level, so a condition of thousands of levels would overflow the stack.
  absl::Status enter() {
    if (++depth_ <= kMaxConditionDepth) return absl::OkStatus();
    return error(internal::concat("parentheses and 'not' nest deeper than ", kMaxConditionDepth,
                                  " levels; split the condition into named selections"));
  }

  absl::StatusOr<uint32_t> parsePrimary() {
    if (token_.empty()) return error("missing selection name");
    if (token_ == "|") return aggregationError();
    if (token_ == "(") {
      if (absl::Status deeper = enter(); !deeper.ok()) return deeper;
      next();
      absl::StatusOr<uint32_t> inner = parseOr();
      --depth_;
      if (!inner.ok()) return inner.status();
      if (token_ != ")") return error("missing ')'");
      next();
      return inner;
    }
    if (token_ == ")" || isKeyword("and") || isKeyword("or") || isKeyword("of")) {
      return error("expected a selection name");
    }
    if (token_ == "1" || isKeyword("any") || isKeyword("all")) {
      bool all = isKeyword("all");
      std::string_view quantifier = token_;
      size_t quantifier_start = token_start_;
      size_t quantifier_pos = pos_;
      next();
      if (isKeyword("of")) return parseQuantifier(all);
      // Not a quantifier: treat the word as a selection name.
      pos_ = quantifier_pos;
      token_ = quantifier;
      token_start_ = quantifier_start;
    }
    return parseName();
  }

  absl::StatusOr<uint32_t> parseQuantifier(bool all) {
    next();  // skip "of"
    if (token_.empty() || token_ == "(" || token_ == ")" || token_ == "|") {
      return error("expected a selection pattern or 'them' after 'of'");
    }
    std::vector<uint32_t> matched;
    bool them = isKeyword("them");
    SigmaPattern pattern = SigmaPattern::compile(token_, PatternAnchor::kExact, true, false);
    for (uint32_t i = 0; i < names_.size(); ++i) {
      // As in pySigma, "them" leaves out selections whose names start with '_'.
      if (them ? names_[i].empty() || names_[i][0] != '_' : pattern.matches(names_[i])) {
        matched.push_back(addSelection(i));
      }
    }
    if (matched.empty()) return error("no selection matches the pattern");
    next();
    return addNode(all ? Condition::Kind::kAnd : Condition::Kind::kOr, matched);
  }

  absl::StatusOr<uint32_t> parseName() {
    for (uint32_t i = 0; i < names_.size(); ++i) {
      if (names_[i] == token_) {
        next();
        return addSelection(i);
      }
    }
    if (token_.find('*') != std::string_view::npos) {
      return error("a wildcard name needs '1 of' or 'all of' in front of it");
    }
    return error("unknown selection");
  }

  std::string_view text_;
  const std::vector<std::string>& names_;
  size_t pos_ = 0;
  size_t token_start_ = 0;
  std::string_view token_;
  size_t depth_ = 0;  // parentheses and "not" open around the current token
  Condition condition_;
};

absl::StatusOr<Condition> parseCondition(std::string_view text,
                                         const std::vector<std::string>& selection_names) {
  return ConditionParser(text, selection_names).parse();
}

void Condition::appendText(uint32_t index, const std::vector<std::string>& names,
                           std::string& out) const {
  const Node& node = nodes_[index];
  if (node.kind == Kind::kSelection) {
    out += node.selection < names.size() ? names[node.selection] : "?";
    return;
  }
  if (node.kind == Kind::kNot) {
    out += "not ";
    appendText(children_[node.first_child], names, out);
    return;
  }
  out += '(';
  for (uint32_t i = 0; i < node.child_count; ++i) {
    if (i > 0) out += node.kind == Kind::kAnd ? " and " : " or ";
    appendText(children_[node.first_child + i], names, out);
  }
  out += ')';
}

std::string Condition::toString(const std::vector<std::string>& selection_names) const {
  std::string out;
  if (!nodes_.empty()) appendText(root_, selection_names, out);
  return out;
}

}  // namespace vigil::correlate

#include "playbook_vm/compiler/expression.h"

#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <utility>

#include "playbook_vm/internal/str_cat.h"

namespace vigil::playbook_vm::compiler {
namespace {

using internal::strCat;

constexpr int kMaxDepth = 64;

enum class Tok : uint8_t {
  kEnd,
  kName,
  kInt,
  kDouble,
  kString,
  kOperator,  // punctuation and the word operators and, or, not, in
};

struct Token {
  Tok kind = Tok::kEnd;
  uint32_t offset = 0;
  std::string text;        // operator or name spelling, or the decoded string literal
  uint64_t magnitude = 0;  // an integer literal's value without sign
  double double_value = 0;
};

// The magnitude of INT64_MIN, the only integer literal above INT64_MAX (after '-').
constexpr uint64_t kMinIntMagnitude = uint64_t{1} << 63;

bool isNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool isNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

class Tokenizer {
 public:
  explicit Tokenizer(std::string_view text) : text_(text) {}

  // Reads the next token into `out`; returns false with `error` set on a lexical error.
  bool next(Token& out, ExprError& error) {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    out = Token();
    out.offset = static_cast<uint32_t>(pos_);
    if (pos_ == text_.size()) return true;
    char c = text_[pos_];
    if (isNameStart(c)) return name(out);
    if (std::isdigit(static_cast<unsigned char>(c))) return number(out, error);
    if (c == '"' || c == '\'') return string(out, error);
    static constexpr std::string_view kTwo[] = {"==", "!=", "<=", ">="};
    for (std::string_view op : kTwo) {
      if (text_.substr(pos_, 2) == op) {
        out.kind = Tok::kOperator;
        out.text = op;
        pos_ += 2;
        return true;
      }
    }
    if (std::string_view("+-*/%<>()[].,").find(c) != std::string_view::npos) {
      out.kind = Tok::kOperator;
      out.text = std::string(1, c);
      ++pos_;
      return true;
    }
    error = {out.offset, c == '=' ? std::string("unexpected '='; compare with '=='")
                                  : strCat("unexpected character '", std::string(1, c), "'")};
    return false;
  }

 private:
  bool name(Token& out) {
    size_t start = pos_;
    while (pos_ < text_.size() && isNameChar(text_[pos_])) ++pos_;
    out.text = std::string(text_.substr(start, pos_ - start));
    bool word_operator =
        out.text == "and" || out.text == "or" || out.text == "not" || out.text == "in";
    out.kind = word_operator ? Tok::kOperator : Tok::kName;
    return true;
  }

  bool number(Token& out, ExprError& error) {
    size_t start = pos_;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    bool is_double = false;
    if (pos_ + 1 < text_.size() && text_[pos_] == '.' &&
        std::isdigit(static_cast<unsigned char>(text_[pos_ + 1]))) {
      is_double = true;
      ++pos_;
      while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    }
    if (pos_ < text_.size() && isNameChar(text_[pos_])) {
      error = {static_cast<uint32_t>(start),
               strCat("invalid number '", text_.substr(start, pos_ + 1 - start), "'")};
      return false;
    }
    std::string_view digits = text_.substr(start, pos_ - start);
    if (is_double) {
      out.kind = Tok::kDouble;
      out.double_value = std::strtod(std::string(digits).c_str(), nullptr);
      return true;
    }
    // Read as unsigned, so the parser can fold -9223372036854775808.
    out.kind = Tok::kInt;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out.magnitude);
    if (ec != std::errc() || end != digits.data() + digits.size() ||
        out.magnitude > kMinIntMagnitude) {
      error = {static_cast<uint32_t>(start),
               strCat("integer ", digits, " does not fit in 64 bits")};
      return false;
    }
    return true;
  }

  bool string(Token& out, ExprError& error) {
    char quote = text_[pos_++];
    out.kind = Tok::kString;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      char c = text_[pos_++];
      if (c != '\\') {
        out.text += c;
        continue;
      }
      if (pos_ == text_.size()) break;
      char escaped = text_[pos_++];
      switch (escaped) {
        case 'n':
          out.text += '\n';
          break;
        case 't':
          out.text += '\t';
          break;
        case '\\':
        case '\'':
        case '"':
          out.text += escaped;
          break;
        default:
          error = {static_cast<uint32_t>(pos_ - 2),
                   strCat("unknown escape '\\", std::string(1, escaped),
                          "' in string; use \\\\, \\', \\\", \\n or \\t")};
          return false;
      }
    }
    if (pos_ == text_.size()) {
      error = {out.offset, "string is not closed; add the closing quote"};
      return false;
    }
    ++pos_;
    return true;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

// Binding power of a binary operator at the sum and product levels, 0 for none.
int arithmeticPrecedence(const Token& t) {
  if (t.kind != Tok::kOperator) return 0;
  if (t.text == "+" || t.text == "-") return 1;
  if (t.text == "*" || t.text == "/" || t.text == "%") return 2;
  return 0;
}

bool isComparison(const Token& t) {
  if (t.kind != Tok::kOperator) return false;
  return t.text == "==" || t.text == "!=" || t.text == "<" || t.text == "<=" || t.text == ">" ||
         t.text == ">=" || t.text == "in";
}

std::unique_ptr<Expr> makeNode(ExprKind kind, uint32_t offset) {
  auto node = std::make_unique<Expr>();
  node->kind = kind;
  node->offset = offset;
  return node;
}

std::unique_ptr<Expr> makeBinary(std::string op, uint32_t offset, std::unique_ptr<Expr> lhs,
                                 std::unique_ptr<Expr> rhs) {
  auto node = makeNode(ExprKind::kBinary, offset);
  node->text = std::move(op);
  node->operands.push_back(std::move(lhs));
  node->operands.push_back(std::move(rhs));
  return node;
}

class Parser {
 public:
  Parser(std::string_view text, ExprError& error) : tokens_(text), error_(error) {}

  std::unique_ptr<Expr> parseAll() {
    if (!advance()) return nullptr;
    if (current_.kind == Tok::kEnd) return fail(current_.offset, "expression is empty");
    auto expr = parseOr(0);
    if (expr == nullptr) return nullptr;
    if (current_.kind != Tok::kEnd) {
      return fail(current_.offset,
                  strCat("unexpected '", spelling(current_), "' after the end of the expression"));
    }
    return expr;
  }

 private:
  static std::string spelling(const Token& t) {
    switch (t.kind) {
      case Tok::kEnd:
        return "end of expression";
      case Tok::kString:
        return strCat("\"", t.text, "\"");
      case Tok::kInt:
        return strCat(t.magnitude);
      case Tok::kDouble:
        return strCat(t.double_value);
      default:
        return t.text;
    }
  }

  std::unique_ptr<Expr> fail(uint32_t offset, std::string message) {
    if (!failed_) error_ = {offset, std::move(message)};
    failed_ = true;
    return nullptr;
  }

  bool advance() {
    if (tokens_.next(current_, error_)) return true;
    failed_ = true;
    return false;
  }

  bool isOperator(std::string_view op) const {
    return current_.kind == Tok::kOperator && current_.text == op;
  }

  bool expect(std::string_view op, std::string_view context) {
    if (isOperator(op)) return advance();
    fail(current_.offset,
         strCat("expected '", op, "' ", context, ", found '", spelling(current_), "'"));
    return false;
  }

  std::unique_ptr<Expr> parseOr(int depth) {
    if (depth > kMaxDepth) {
      return fail(current_.offset, strCat("expression nests deeper than ", kMaxDepth,
                                          " levels; split it with set:"));
    }
    auto lhs = parseAnd(depth);
    while (lhs != nullptr && isOperator("or")) {
      uint32_t offset = current_.offset;
      if (!advance()) return nullptr;
      auto rhs = parseAnd(depth);
      if (rhs == nullptr) return nullptr;
      lhs = makeBinary("or", offset, std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  std::unique_ptr<Expr> parseAnd(int depth) {
    auto lhs = parseNot(depth);
    while (lhs != nullptr && isOperator("and")) {
      uint32_t offset = current_.offset;
      if (!advance()) return nullptr;
      auto rhs = parseNot(depth);
      if (rhs == nullptr) return nullptr;
      lhs = makeBinary("and", offset, std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  std::unique_ptr<Expr> parseNot(int depth) {
    if (!isOperator("not")) return parseComparison(depth);
    uint32_t offset = current_.offset;
    if (depth > kMaxDepth) {
      return fail(offset, strCat("more than ", kMaxDepth,
                                 " nested 'not'; remove pairs of "
                                 "'not', which cancel out"));
    }
    if (!advance()) return nullptr;
    auto operand = parseNot(depth + 1);
    if (operand == nullptr) return nullptr;
    auto node = makeNode(ExprKind::kUnary, offset);
    node->text = "not";
    node->operands.push_back(std::move(operand));
    return node;
  }

  std::unique_ptr<Expr> parseComparison(int depth) {
    auto lhs = parseBinary(1, depth);
    if (lhs == nullptr) return nullptr;
    bool negated_in = isOperator("not");
    if (!isComparison(current_) && !negated_in) return lhs;
    uint32_t offset = current_.offset;
    std::string op = current_.text;
    if (!advance()) return nullptr;
    if (negated_in) {
      if (!isOperator("in")) {
        return fail(current_.offset, "expected 'in' after 'not' in a comparison");
      }
      op = "not in";
      if (!advance()) return nullptr;
    }
    auto rhs = parseBinary(1, depth);
    if (rhs == nullptr) return nullptr;
    if (isComparison(current_)) {
      return fail(current_.offset, "comparisons do not chain; join them with 'and'");
    }
    return makeBinary(std::move(op), offset, std::move(lhs), std::move(rhs));
  }

  // Precedence climbing over the arithmetic levels (1 = sum, 2 = product).
  std::unique_ptr<Expr> parseBinary(int min_precedence, int depth) {
    auto lhs = parseUnary(depth);
    while (lhs != nullptr) {
      int precedence = arithmeticPrecedence(current_);
      if (precedence < min_precedence || precedence == 0) break;
      Token op = current_;
      if (!advance()) return nullptr;
      auto rhs = parseBinary(precedence + 1, depth);
      if (rhs == nullptr) return nullptr;
      lhs = makeBinary(op.text, op.offset, std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  std::unique_ptr<Expr> parseUnary(int depth) {
    if (!isOperator("-")) return parsePostfix(depth);
    uint32_t offset = current_.offset;
    if (depth > kMaxDepth) {
      return fail(offset, strCat("more than ", kMaxDepth,
                                 " nested '-'; remove pairs of '-', "
                                 "which cancel out"));
    }
    if (!advance()) return nullptr;
    // A minus before the literal 9223372036854775808 gives INT64_MIN, which no positive
    // literal can hold.
    if (current_.kind == Tok::kInt && current_.magnitude == kMinIntMagnitude) {
      auto literal = makeNode(ExprKind::kInt, offset);
      literal->int_value = INT64_MIN;
      if (!advance()) return nullptr;
      return literal;
    }
    // Fold a minus into a number literal.
    if (current_.kind == Tok::kInt || current_.kind == Tok::kDouble) {
      auto literal = parsePostfix(depth);
      if (literal == nullptr) return nullptr;
      if (literal->kind == ExprKind::kInt) {
        literal->int_value = -literal->int_value;
        literal->offset = offset;
        return literal;
      }
      if (literal->kind == ExprKind::kDouble) {
        literal->double_value = -literal->double_value;
        literal->offset = offset;
        return literal;
      }
      return negate(offset, std::move(literal));
    }
    auto operand = parseUnary(depth + 1);
    if (operand == nullptr) return nullptr;
    return negate(offset, std::move(operand));
  }

  static std::unique_ptr<Expr> negate(uint32_t offset, std::unique_ptr<Expr> operand) {
    auto node = makeNode(ExprKind::kUnary, offset);
    // push_back, not `= "-"`: g++ 12 at -O3 reports a false -Wrestrict overlap for
    // assigning a literal here.
    node->text.push_back('-');
    node->operands.push_back(std::move(operand));
    return node;
  }

  std::unique_ptr<Expr> parsePostfix(int depth) {
    auto expr = parsePrimary(depth);
    while (expr != nullptr) {
      uint32_t offset = current_.offset;
      if (isOperator(".")) {
        if (!advance()) return nullptr;
        if (current_.kind != Tok::kName) {
          return fail(current_.offset,
                      strCat("expected a field name after '.', found '", spelling(current_), "'"));
        }
        auto node = makeNode(ExprKind::kField, expr->offset);
        node->text = current_.text;
        node->operands.push_back(std::move(expr));
        expr = std::move(node);
        if (!advance()) return nullptr;
      } else if (isOperator("[")) {
        if (!advance()) return nullptr;
        auto index = parseOr(depth + 1);
        if (index == nullptr || !expect("]", "to close the index")) return nullptr;
        auto node = makeNode(ExprKind::kIndex, offset);
        node->operands.push_back(std::move(expr));
        node->operands.push_back(std::move(index));
        expr = std::move(node);
      } else if (isOperator("(")) {
        if (expr->kind != ExprKind::kName) {
          return fail(offset, "only a function name can be called");
        }
        auto node = makeNode(ExprKind::kCall, expr->offset);
        node->text = expr->text;
        if (!advance() || !parseItems(")", node->operands, depth)) return nullptr;
        expr = std::move(node);
      } else {
        break;
      }
    }
    return expr;
  }

  // Parses comma-separated expressions up to `close`, which it consumes.
  bool parseItems(std::string_view close, std::vector<std::unique_ptr<Expr>>& items, int depth) {
    if (isOperator(close)) return advance();
    for (;;) {
      auto item = parseOr(depth + 1);
      if (item == nullptr) return false;
      items.push_back(std::move(item));
      if (isOperator(",")) {
        if (!advance()) return false;
        continue;
      }
      return expect(close, close == ")" ? "to close the argument list" : "to close the list");
    }
  }

  std::unique_ptr<Expr> parsePrimary(int depth) {
    Token t = current_;
    std::unique_ptr<Expr> node;
    switch (t.kind) {
      case Tok::kEnd:
        return fail(t.offset, "expression ends early; an operand is missing");
      case Tok::kInt:
        if (t.magnitude > uint64_t{INT64_MAX}) {
          return fail(t.offset, strCat("integer ", t.magnitude, " does not fit in 64 bits"));
        }
        node = makeNode(ExprKind::kInt, t.offset);
        node->int_value = static_cast<int64_t>(t.magnitude);
        break;
      case Tok::kDouble:
        node = makeNode(ExprKind::kDouble, t.offset);
        node->double_value = t.double_value;
        break;
      case Tok::kString:
        node = makeNode(ExprKind::kString, t.offset);
        node->text = t.text;
        break;
      case Tok::kName:
        if (t.text == "true" || t.text == "false") {
          node = makeNode(ExprKind::kBool, t.offset);
          node->bool_value = t.text == "true";
        } else if (t.text == "null") {
          node = makeNode(ExprKind::kNull, t.offset);
        } else {
          node = makeNode(ExprKind::kName, t.offset);
          node->text = t.text;
        }
        break;
      case Tok::kOperator:
        if (t.text == "(") {
          if (!advance()) return nullptr;
          auto inner = parseOr(depth + 1);
          if (inner == nullptr || !expect(")", "to close the parenthesis")) return nullptr;
          return inner;
        }
        if (t.text == "[") {
          node = makeNode(ExprKind::kList, t.offset);
          if (!advance() || !parseItems("]", node->operands, depth)) return nullptr;
          return node;
        }
        return fail(t.offset, strCat("expected a value, found '", t.text, "'"));
    }
    if (!advance()) return nullptr;
    return node;
  }

  Tokenizer tokens_;
  ExprError& error_;
  Token current_;
  bool failed_ = false;
};

}  // namespace

std::unique_ptr<Expr> parseExpression(std::string_view text, ExprError& error) {
  Parser parser(text, error);
  return parser.parseAll();
}

}  // namespace vigil::playbook_vm::compiler

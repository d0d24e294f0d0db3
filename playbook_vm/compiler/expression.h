// The playbook expression language: a tokenizer and a precedence-climbing parser that turn
// one expression string (an `if:` condition, a `set:` value, a `${...}` in a template)
// into a syntax tree. Positions are byte offsets into the expression string; the compiler
// adds them to the YAML scalar's column to report file:line:column.
//
// Grammar, loosest binding first:
//   or:          and ("or" and)*
//   and:         not ("and" not)*
//   not:         "not" not | comparison
//   comparison:  sum (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") sum)?
//   sum:         product (("+" | "-") product)*
//   product:     unary (("*" | "/" | "%") unary)*
//   unary:       "-" unary | postfix
//   postfix:     primary ("." NAME | "[" or "]" | "(" args ")")*
//   primary:     INT | FLOAT | STRING | true | false | null | NAME | "[" list "]" | "(" or ")"
// Strings take single or double quotes with \\, \', \", \n and \t escapes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::playbook_vm::compiler {

enum class ExprKind : uint8_t {
  kNull,
  kBool,
  kInt,
  kDouble,
  kString,
  kName,    // a variable or a namespace such as `alert`
  kField,   // operands[0] . text
  kIndex,   // operands[0] [ operands[1] ]
  kCall,    // text ( operands... ), only on a plain function name
  kList,    // [ operands... ]
  kUnary,   // op operands[0]: "-" or "not"
  kBinary,  // operands[0] op operands[1]
};

struct Expr {
  ExprKind kind;
  uint32_t offset = 0;  // byte offset of the node's first character in the source text
  std::string text;     // name, field, called function, string literal or operator
  bool bool_value = false;
  int64_t int_value = 0;
  double double_value = 0;
  std::vector<std::unique_ptr<Expr>> operands;
};

// A syntax error with its byte offset into the expression text.
struct ExprError {
  uint32_t offset = 0;
  std::string message;
};

// Parses `text` as one whole expression. Returns the tree, or nullptr with `error` set.
// Nesting deeper than 64 levels is an error, so a hostile source cannot exhaust the
// stack. Allocates; any thread.
std::unique_ptr<Expr> parseExpression(std::string_view text, ExprError& error);

}  // namespace vigil::playbook_vm::compiler

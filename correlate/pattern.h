// Sigma string values compiled into wildcard patterns. A pattern is a token list (literal
// byte, `*`, `?`, dash class) built once at rule load. Matching walks the text in place
// and never allocates.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::correlate {

// Anchor that a Sigma modifier adds to a value. kExact (no modifier) matches the whole
// field.
enum class PatternAnchor : uint8_t { kExact, kContains, kStartsWith, kEndsWith };

class SigmaPattern {
 public:
  SigmaPattern() = default;

  // Compiles one Sigma value. Sigma escaping applies: `\*` and `\?` are a literal `*` and
  // `?`, `\\` is one backslash, and a backslash before any other character is literal.
  // The anchor adds its wildcards after escaping, so a value that ends in a backslash
  // keeps it literal ('\Desktop\' with contains is the substring `\Desktop\`).
  // `cased` = false folds ASCII letters for case-insensitive matching. `windash` makes
  // every `-` and `/` match any of `-`, `/`, en dash, em dash and horizontal bar.
  static SigmaPattern compile(std::string_view value, PatternAnchor anchor, bool cased,
                              bool windash);

  // Compiles `literal` as an exact, case-sensitive byte string with no wildcards (used for
  // values that modifiers such as base64 produced).
  static SigmaPattern literal(std::string_view literal, PatternAnchor anchor);

  // Returns true when `text` matches. `?` consumes one UTF-8 character. Never allocates.
  bool matches(std::string_view text) const;

  // The pattern in Sigma notation, with wildcards and escapes, for error messages and
  // tests.
  std::string toString() const;

  // Returns the longest run of literal bytes that every matching text contains (folded to
  // lower case unless cased()), or an empty string when the pattern has none. The
  // detection prefilter looks for it. Allocates.
  std::string requiredLiteral() const;
  // Whether the pattern matches exactly the texts that contain requiredLiteral() (a
  // `contains` value without wildcards inside).
  bool containsLiteralOnly() const { return shape_ == Shape::kInfix; }
  // Whether letters compare case-sensitively (`|cased`, or a literal() pattern).
  bool cased() const { return cased_; }

 private:
  enum class Token : uint8_t { kByte, kStar, kOne, kDash };
  // Shape of the token list. Most Sigma values are one literal with optional stars at
  // the ends, which match by a direct comparison instead of the general walk.
  enum class Shape : uint8_t { kGeneral, kEquals, kPrefix, kSuffix, kInfix };

  void push(Token kind, char byte);
  void classify();
  bool equalsAt(std::string_view text, size_t pos) const;
  bool findInfix(std::string_view text) const;
  bool matchesFrom(size_t token, std::string_view text) const;

  std::vector<Token> tokens_;
  std::string bytes_;  // the byte of each kByte token; unused for the others
  bool cased_ = false;
  Shape shape_ = Shape::kGeneral;
  std::string literal_;  // the literal of the non-general shapes, folded unless cased_
};

}  // namespace vigil::correlate

#include "intel/stix_pattern.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "intel/internal/text.h"

namespace vigil::intel::stix {
namespace {

using internal::av;

constexpr int kMaxDepth = 64;

// ---------------------------------------------------------------------------------------
// Lexer

enum class Tok : uint8_t {
  kEnd,
  kLBracket,
  kRBracket,
  kLParen,
  kRParen,
  kComma,
  kColon,
  kDot,
  kStar,
  kOperator,  // = == != < <= > >=
  kIdent,     // names and keywords
  kString,
  kTimestamp,
  kHex,
  kBinary,
  kNumber,
};

struct Token {
  Tok kind = Tok::kEnd;
  std::string text;
  size_t offset = 0;
};

bool isIdentStart(char c) { return absl::ascii_isalpha(c) || c == '_'; }
bool isIdentChar(char c) { return absl::ascii_isalnum(c) || c == '_' || c == '-'; }

absl::Status syntaxError(size_t offset, std::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid STIX pattern at offset ", offset, ": ", av(problem)));
}

// Reads a quoted literal starting at text[i] == '\''. STIX strings escape only \' and \\.
absl::Status readQuoted(std::string_view text, size_t& i, std::string& out) {
  size_t start = i++;
  while (i < text.size()) {
    char c = text[i++];
    if (c == '\'') return absl::OkStatus();
    if (c == '\\') {
      if (i >= text.size() || (text[i] != '\'' && text[i] != '\\')) {
        return syntaxError(i - 1, "a backslash in a string must escape ' or \\");
      }
      out += text[i++];
      continue;
    }
    out += c;
  }
  return syntaxError(start, "string literal is not closed with '");
}

absl::StatusOr<std::vector<Token>> lex(std::string_view text) {
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (absl::ascii_isspace(c)) {
      ++i;
      continue;
    }
    Token token;
    token.offset = i;
    auto single = [&](Tok kind) {
      token.kind = kind;
      token.text = std::string(1, c);
      ++i;
    };
    switch (c) {
      case '[': single(Tok::kLBracket); break;
      case ']': single(Tok::kRBracket); break;
      case '(': single(Tok::kLParen); break;
      case ')': single(Tok::kRParen); break;
      case ',': single(Tok::kComma); break;
      case ':': single(Tok::kColon); break;
      case '.': single(Tok::kDot); break;
      case '*': single(Tok::kStar); break;
      default: break;
    }
    if (token.kind != Tok::kEnd) {
      tokens.push_back(std::move(token));
      continue;
    }
    if (c == '=' || c == '!' || c == '<' || c == '>') {
      token.kind = Tok::kOperator;
      bool has_equals = i + 1 < text.size() && text[i + 1] == '=';
      if (c == '!' && !has_equals) return syntaxError(i, "'!' must be followed by '='");
      // "==" is another spelling of "=".
      size_t length = has_equals && c != '=' ? 2 : 1;
      token.text = std::string(text.substr(i, length));
      i += has_equals ? 2 : 1;
    } else if (c == '\'') {
      token.kind = Tok::kString;
      if (absl::Status s = readQuoted(text, i, token.text); !s.ok()) return s;
    } else if ((c == 't' || c == 'h' || c == 'b') && i + 1 < text.size() && text[i + 1] == '\'') {
      token.kind = c == 't' ? Tok::kTimestamp : (c == 'h' ? Tok::kHex : Tok::kBinary);
      ++i;
      if (absl::Status s = readQuoted(text, i, token.text); !s.ok()) return s;
    } else if (absl::ascii_isdigit(c) ||
               ((c == '-' || c == '+') && i + 1 < text.size() && absl::ascii_isdigit(text[i + 1]))) {
      token.kind = Tok::kNumber;
      token.text += text[i++];
      while (i < text.size() && (absl::ascii_isdigit(text[i]) || text[i] == '.')) {
        token.text += text[i++];
      }
    } else if (isIdentStart(c)) {
      token.kind = Tok::kIdent;
      while (i < text.size() && isIdentChar(text[i])) token.text += text[i++];
    } else {
      return syntaxError(i, absl::StrCat("unexpected character '", std::string(1, c), "'"));
    }
    tokens.push_back(std::move(token));
  }
  tokens.push_back(Token{Tok::kEnd, "", text.size()});
  return tokens;
}

// ---------------------------------------------------------------------------------------
// Parser

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  absl::StatusOr<std::unique_ptr<Node>> parse() {
    absl::StatusOr<std::unique_ptr<Node>> root = observationExpression(0);
    if (!root.ok()) return root;
    if (peek().kind != Tok::kEnd) return expected("AND, OR, FOLLOWEDBY or the end");
    return root;
  }

 private:
  using Result = absl::StatusOr<std::unique_ptr<Node>>;

  const Token& peek(size_t ahead = 0) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  Token take() { return tokens_[std::min(pos_++, tokens_.size() - 1)]; }
  bool keyword(std::string_view word, size_t ahead = 0) const {
    return peek(ahead).kind == Tok::kIdent && peek(ahead).text == word;
  }
  absl::Status expected(std::string_view wanted) const {
    std::string got = peek().kind == Tok::kEnd ? "the end" : absl::StrCat("'", peek().text, "'");
    return syntaxError(peek().offset, absl::StrCat("expected ", av(wanted), ", got ", got));
  }
  absl::Status checkDepth(int depth) const {
    if (depth <= kMaxDepth) return absl::OkStatus();
    return syntaxError(peek().offset, absl::StrCat("nesting deeper than ", kMaxDepth, " levels"));
  }

  static std::unique_ptr<Node> join(Node::Kind kind, std::unique_ptr<Node> left,
                                    std::unique_ptr<Node> right) {
    if (left->kind == kind && left->qualifiers.empty()) {
      left->children.push_back(std::move(right));
      return left;
    }
    auto node = std::make_unique<Node>();
    node->kind = kind;
    node->children.push_back(std::move(left));
    node->children.push_back(std::move(right));
    return node;
  }

  // Parses `operand (WORD operand)*` into a `kind` node.
  template <typename Operand>
  Result binary(Node::Kind kind, std::string_view word, int depth, Operand operand) {
    Result left = operand(depth);
    if (!left.ok()) return left;
    std::unique_ptr<Node> node = std::move(*left);
    while (keyword(word)) {
      take();
      Result right = operand(depth);
      if (!right.ok()) return right;
      node = join(kind, std::move(node), std::move(*right));
    }
    return node;
  }

  Result observationExpression(int depth) {
    if (absl::Status s = checkDepth(depth); !s.ok()) return s;
    return binary(Node::Kind::kFollowedBy, "FOLLOWEDBY", depth,
                  [this](int d) { return observationOr(d); });
  }
  Result observationOr(int depth) {
    return binary(Node::Kind::kOr, "OR", depth, [this](int d) { return observationAnd(d); });
  }
  Result observationAnd(int depth) {
    return binary(Node::Kind::kAnd, "AND", depth,
                  [this](int d) { return qualifiedObservation(d); });
  }

  Result qualifiedObservation(int depth) {
    Result node = primaryObservation(depth);
    if (!node.ok()) return node;
    while (keyword("WITHIN") || keyword("REPEATS") || keyword("START")) {
      absl::StatusOr<std::string> qualifier = readQualifier();
      if (!qualifier.ok()) return qualifier.status();
      (*node)->qualifiers.push_back(std::move(*qualifier));
    }
    return node;
  }

  absl::StatusOr<std::string> readQualifier() {
    std::string word = take().text;
    if (word == "WITHIN") {
      if (peek().kind != Tok::kNumber) return expected("a number of seconds after WITHIN");
      std::string seconds = take().text;
      if (!keyword("SECONDS")) return expected("SECONDS");
      take();
      return absl::StrCat("WITHIN ", seconds, " SECONDS");
    }
    if (word == "REPEATS") {
      if (peek().kind != Tok::kNumber) return expected("a count after REPEATS");
      std::string count = take().text;
      if (!keyword("TIMES")) return expected("TIMES");
      take();
      return absl::StrCat("REPEATS ", count, " TIMES");
    }
    if (peek().kind != Tok::kTimestamp) return expected("a t'...' timestamp after START");
    std::string start = take().text;
    if (!keyword("STOP")) return expected("STOP");
    take();
    if (peek().kind != Tok::kTimestamp) return expected("a t'...' timestamp after STOP");
    return absl::StrCat("START t'", start, "' STOP t'", take().text, "'");
  }

  Result primaryObservation(int depth) {
    if (peek().kind == Tok::kLParen) {
      take();
      Result inner = observationExpression(depth + 1);
      if (!inner.ok()) return inner;
      if (peek().kind != Tok::kRParen) return expected("')'");
      take();
      return inner;
    }
    if (peek().kind != Tok::kLBracket) return expected("'[' or '('");
    take();
    Result expression = comparisonOr(depth + 1);
    if (!expression.ok()) return expression;
    if (peek().kind != Tok::kRBracket) return expected("']', AND or OR");
    take();
    auto node = std::make_unique<Node>();
    node->kind = Node::Kind::kObservation;
    node->children.push_back(std::move(*expression));
    return node;
  }

  Result comparisonOr(int depth) {
    if (absl::Status s = checkDepth(depth); !s.ok()) return s;
    return binary(Node::Kind::kOr, "OR", depth, [this](int d) { return comparisonAnd(d); });
  }
  Result comparisonAnd(int depth) {
    return binary(Node::Kind::kAnd, "AND", depth,
                  [this](int d) { return primaryComparison(d); });
  }

  Result primaryComparison(int depth) {
    if (peek().kind == Tok::kLParen) {
      take();
      Result inner = comparisonOr(depth + 1);
      if (!inner.ok()) return inner;
      if (peek().kind != Tok::kRParen) return expected("')'");
      take();
      return inner;
    }
    auto node = std::make_unique<Node>();
    node->kind = Node::Kind::kComparison;
    Comparison& comparison = node->comparison;
    if (keyword("EXISTS")) {
      take();
      comparison.op = Op::kExists;
      if (absl::Status s = objectPath(comparison); !s.ok()) return s;
      return node;
    }
    if (absl::Status s = objectPath(comparison); !s.ok()) return s;
    if (keyword("NOT")) {
      take();
      comparison.negated = true;
    }
    if (absl::Status s = operatorAndValues(comparison); !s.ok()) return s;
    return node;
  }

  absl::Status objectPath(Comparison& comparison) {
    if (peek().kind != Tok::kIdent) return expected("an object type such as ipv4-addr");
    comparison.object_type = take().text;
    if (peek().kind != Tok::kColon) return expected("':' after the object type");
    take();
    if (peek().kind != Tok::kIdent && peek().kind != Tok::kString) {
      return expected("a property name");
    }
    comparison.path.push_back(take().text);
    while (true) {
      if (peek().kind == Tok::kDot) {
        take();
        if (peek().kind != Tok::kIdent && peek().kind != Tok::kString) {
          return expected("a property name after '.'");
        }
        comparison.path.push_back(take().text);
      } else if (peek().kind == Tok::kLBracket &&
                 (peek(1).kind == Tok::kStar || peek(1).kind == Tok::kNumber) &&
                 peek(2).kind == Tok::kRBracket) {
        take();
        comparison.path.push_back(absl::StrCat("[", take().text, "]"));
        take();
      } else {
        return absl::OkStatus();
      }
    }
  }

  absl::Status literal(Comparison& comparison) {
    Literal value;
    switch (peek().kind) {
      case Tok::kString: value.kind = Literal::Kind::kString; break;
      case Tok::kTimestamp: value.kind = Literal::Kind::kTimestamp; break;
      case Tok::kHex: value.kind = Literal::Kind::kHex; break;
      case Tok::kBinary: value.kind = Literal::Kind::kBinary; break;
      case Tok::kNumber: value.kind = Literal::Kind::kNumber; break;
      case Tok::kIdent:
        if (peek().text != "true" && peek().text != "false") return expected("a literal value");
        value.kind = Literal::Kind::kBool;
        break;
      default:
        return expected("a literal value");
    }
    value.text = take().text;
    comparison.values.push_back(std::move(value));
    return absl::OkStatus();
  }

  absl::Status operatorAndValues(Comparison& comparison) {
    if (peek().kind == Tok::kOperator) {
      static constexpr std::pair<std::string_view, Op> kOperators[] = {
          {"=", Op::kEqual},      {"!=", Op::kNotEqual},   {"<", Op::kLess},
          {"<=", Op::kLessEqual}, {">", Op::kGreater}, {">=", Op::kGreaterEqual}};
      std::string_view text = peek().text;
      for (const auto& [name, op] : kOperators) {
        if (text == name) comparison.op = op;
      }
      take();
      return literal(comparison);
    }
    if (keyword("IN")) {
      take();
      comparison.op = Op::kIn;
      if (peek().kind != Tok::kLParen) return expected("'(' after IN");
      take();
      while (true) {
        if (absl::Status s = literal(comparison); !s.ok()) return s;
        if (peek().kind == Tok::kRParen) break;
        if (peek().kind != Tok::kComma) return expected("',' or ')'");
        take();
      }
      take();
      return absl::OkStatus();
    }
    static constexpr std::pair<std::string_view, Op> kStringOps[] = {
        {"LIKE", Op::kLike},
        {"MATCHES", Op::kMatches},
        {"ISSUBSET", Op::kIsSubset},
        {"ISSUPERSET", Op::kIsSuperset}};
    for (const auto& [word, op] : kStringOps) {
      if (!keyword(word)) continue;
      take();
      comparison.op = op;
      if (peek().kind != Tok::kString) return expected(absl::StrCat("a string after ", av(word)));
      return literal(comparison);
    }
    return expected("a comparison operator (=, !=, <, >, IN, LIKE, MATCHES, ISSUBSET, ...)");
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------
// Reduction to indicator values

absl::Status notRunnable(std::string_view part) {
  return absl::UnimplementedError(
      absl::StrCat(av(part), "; only single values joined by OR load as indicators"));
}

absl::StatusOr<IndicatorType> valueType(const Comparison& c) {
  std::string path = c.pathText();
  std::string type = c.object_type;
  if (path == "ipv4-addr:value") return IndicatorType::kIpv4;
  if (path == "ipv6-addr:value") return IndicatorType::kIpv6;
  if (path == "domain-name:value") return IndicatorType::kDomain;
  if (path == "url:value") return IndicatorType::kUrl;
  if (path == "file:name") return IndicatorType::kFilename;
  if (path == "email-addr:value") return IndicatorType::kEmail;
  if (type == "email-message" && c.path.size() >= 2 && c.path.back() == "value") {
    std::string_view ref = c.path.front();
    if (ref == "from_ref" || ref == "sender_ref" || ref == "to_refs" || ref == "cc_refs" ||
        ref == "bcc_refs") {
      return IndicatorType::kEmail;
    }
  }
  if (type == "file" && c.path.size() == 2 && c.path[0] == "hashes") {
    std::string algorithm = absl::AsciiStrToUpper(av(c.path[1]));
    if (algorithm == "MD5") return IndicatorType::kMd5;
    if (algorithm == "SHA-1" || algorithm == "SHA1") return IndicatorType::kSha1;
    if (algorithm == "SHA-256" || algorithm == "SHA256") return IndicatorType::kSha256;
    return notRunnable(absl::StrCat("hash algorithm '", c.path[1], "' is not supported"));
  }
  return notRunnable(absl::StrCat("object path '", path, "' is not supported"));
}

// Turns a LIKE operand into a regex: '%' is any run, '_' one character, and the rest is
// literal. The match is not anchored, because the matcher scans whole log lines.
std::string likeToRegex(std::string_view like) {
  while (!like.empty() && like.front() == '%') like.remove_prefix(1);
  while (!like.empty() && like.back() == '%') like.remove_suffix(1);
  std::string out;
  for (char c : like) {
    if (c == '%') {
      out += ".*";
    } else if (c == '_') {
      out += '.';
    } else if (absl::ascii_isalnum(c)) {
      out += c;
    } else {
      absl::StrAppend(&out, "\\x", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
    }
  }
  return out;
}

absl::Status addComparison(const Comparison& c, std::vector<PatternValue>& out) {
  absl::StatusOr<IndicatorType> type = valueType(c);
  if (!type.ok()) return type.status();
  if (c.negated) return notRunnable(absl::StrCat("NOT on ", c.pathText()));
  for (const Literal& value : c.values) {
    if (value.kind != Literal::Kind::kString) {
      return notRunnable(absl::StrCat("non-string value '", value.text, "' on ", c.pathText()));
    }
  }
  switch (c.op) {
    case Op::kEqual:
    case Op::kIn:
      for (const Literal& value : c.values) out.push_back({*type, value.text});
      return absl::OkStatus();
    case Op::kIsSubset:
      if (*type != IndicatorType::kIpv4 && *type != IndicatorType::kIpv6) {
        return notRunnable("ISSUBSET on a non-address path");
      }
      out.push_back({*type, c.values.front().text});
      return absl::OkStatus();
    case Op::kLike:
      out.push_back({IndicatorType::kRegex, likeToRegex(c.values.front().text)});
      return absl::OkStatus();
    case Op::kMatches:
      out.push_back({IndicatorType::kRegex, c.values.front().text});
      return absl::OkStatus();
    default:
      return notRunnable(absl::StrCat("operator ", av(opName(c.op)), " on ", c.pathText()));
  }
}

absl::Status reduceComparisons(const Node& node, std::vector<PatternValue>& out) {
  switch (node.kind) {
    case Node::Kind::kComparison:
      return addComparison(node.comparison, out);
    case Node::Kind::kOr:
      for (const auto& child : node.children) {
        if (absl::Status s = reduceComparisons(*child, out); !s.ok()) return s;
      }
      return absl::OkStatus();
    default:
      return notRunnable("AND inside an observation needs several values at once");
  }
}

absl::Status reduceObservations(const Node& node, std::vector<PatternValue>& out) {
  if (!node.qualifiers.empty()) {
    return notRunnable(absl::StrCat("qualifier ", node.qualifiers.front(),
                                    " needs several events"));
  }
  switch (node.kind) {
    case Node::Kind::kObservation:
      return reduceComparisons(*node.children.front(), out);
    case Node::Kind::kOr:
      for (const auto& child : node.children) {
        if (absl::Status s = reduceObservations(*child, out); !s.ok()) return s;
      }
      return absl::OkStatus();
    case Node::Kind::kAnd:
      return notRunnable("AND between observations needs several events");
    default:
      return notRunnable("FOLLOWEDBY needs several events in order");
  }
}

}  // namespace

std::string_view opName(Op op) {
  switch (op) {
    case Op::kEqual: return "=";
    case Op::kNotEqual: return "!=";
    case Op::kLess: return "<";
    case Op::kLessEqual: return "<=";
    case Op::kGreater: return ">";
    case Op::kGreaterEqual: return ">=";
    case Op::kIn: return "IN";
    case Op::kLike: return "LIKE";
    case Op::kMatches: return "MATCHES";
    case Op::kIsSubset: return "ISSUBSET";
    case Op::kIsSuperset: return "ISSUPERSET";
    case Op::kExists: return "EXISTS";
  }
  return "?";
}

std::string Comparison::pathText() const {
  std::string out = absl::StrCat(object_type, ":");
  for (size_t i = 0; i < path.size(); ++i) {
    if (i > 0 && path[i].front() != '[') out += '.';
    out += path[i];
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Node>> parsePattern(std::string_view pattern) {
  absl::StatusOr<std::vector<Token>> tokens = lex(pattern);
  if (!tokens.ok()) return tokens.status();
  return Parser(std::move(*tokens)).parse();
}

absl::StatusOr<std::vector<PatternValue>> patternValues(const Node& pattern) {
  std::vector<PatternValue> out;
  if (absl::Status s = reduceObservations(pattern, out); !s.ok()) return s;
  return out;
}

std::string addressFamilyError(const PatternValue& value) {
  const bool colon = value.value.find(':') != std::string::npos;
  if (value.type == IndicatorType::kIpv4 && colon) {
    return absl::StrCat("ipv4-addr:value holds the IPv6 value '", value.value,
                        "'; write it as ipv6-addr:value");
  }
  if (value.type == IndicatorType::kIpv6 && !colon) {
    return absl::StrCat("ipv6-addr:value holds the IPv4 value '", value.value,
                        "'; write it as ipv4-addr:value");
  }
  return {};
}

}  // namespace vigil::intel::stix

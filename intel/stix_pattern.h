// STIX 2.1 patterning language: a lexer and recursive-descent parser that turn a pattern
// ("[ipv4-addr:value = '198.51.100.1'] OR [domain-name:value = 'bad.example']") into a
// tree, and the reduction of a tree to single indicator values for the matcher.
//
// The grammar follows STIX 2.1 section 9. Observation expressions are joined by AND, OR
// and FOLLOWEDBY and take WITHIN, REPEATS and START/STOP qualifiers. Inside brackets,
// comparisons are joined by AND and OR. Parsing checks syntax only; it does not check that
// an object type or property exists.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/event.h"

namespace vigil::intel::stix {

enum class Op : uint8_t {
  kEqual,
  kNotEqual,
  kLess,
  kLessEqual,
  kGreater,
  kGreaterEqual,
  kIn,
  kLike,
  kMatches,
  kIsSubset,
  kIsSuperset,
  kExists,
};

std::string_view opName(Op op);

// One literal: 'text', t'2020-01-01T00:00:00Z', h'ff', b'AQID', a number or a boolean.
struct Literal {
  enum class Kind : uint8_t { kString, kTimestamp, kHex, kBinary, kNumber, kBool };
  Kind kind = Kind::kString;
  std::string text;  // unescaped for strings; as written for the other kinds
};

// One comparison: OBJECT-TYPE:PATH [NOT] OP VALUE(S).
struct Comparison {
  std::string object_type;  // "file"
  // Property path components; list indexes are written "[*]" or "[3]". For
  // file:hashes.'SHA-256' this is {"hashes", "SHA-256"}.
  std::vector<std::string> path;
  bool negated = false;
  Op op = Op::kEqual;
  std::vector<Literal> values;  // one, several for IN, none for EXISTS

  // "file:hashes.SHA-256", "email-message:to_refs[*].value".
  std::string pathText() const;
};

// A node of the tree. Inside brackets: kComparison leaves under kAnd / kOr. Outside:
// kObservation nodes (one bracketed expression) under kAnd / kOr / kFollowedBy.
struct Node {
  enum class Kind : uint8_t { kComparison, kAnd, kOr, kObservation, kFollowedBy };
  Kind kind = Kind::kComparison;
  Comparison comparison;                      // kComparison only
  std::vector<std::unique_ptr<Node>> children;  // operands, or the bracket's expression
  std::vector<std::string> qualifiers;        // "WITHIN 300 SECONDS", "REPEATS 5 TIMES", ...
};

// Parses one pattern. Returns InvalidArgument with the byte offset and what was expected
// when the text is not a valid pattern, or when it nests deeper than 64 levels.
absl::StatusOr<std::unique_ptr<Node>> parsePattern(std::string_view pattern);

// One value that the matcher can look for on its own.
struct PatternValue {
  // kIpv4 for ipv4-addr and kIpv6 for ipv6-addr, each an address or a CIDR of that family
  // (checked by the feed loader: addressFamilyError()).
  IndicatorType type = IndicatorType::kIpv4;
  std::string value;
};

// Reduces a parsed pattern to the values of its indicators. Runnable patterns are
// observations joined by OR, each a comparison or an OR of comparisons with =, IN,
// ISSUBSET (addresses), LIKE or MATCHES (both give regexes) on ipv4-addr:value,
// ipv6-addr:value, domain-name:value, url:value, file:name, file:hashes.MD5 / SHA-1 /
// SHA-256, email-addr:value and the address refs of email-message. Returns
// Unimplemented naming the first part that is not runnable (AND, FOLLOWEDBY, a
// qualifier, NOT, another operator or object path), so that a pattern is loaded whole
// or not at all.
absl::StatusOr<std::vector<PatternValue>> patternValues(const Node& pattern);

// Returns why a value of ipv4-addr or ipv6-addr is not of that family, such as an IPv6
// text like "2001:db8::1" on ipv4-addr or an IPv4 one on ipv6-addr. Returns an empty
// string when it is, and for other types. IPv4-mapped IPv6 addresses belong to ipv6-addr.
std::string addressFamilyError(const PatternValue& value);

}  // namespace vigil::intel::stix

// STIX pattern lexer and parser, and the reduction of patterns to indicator values.
#include "intel/stix_pattern.h"

#include <gtest/gtest.h>

#include <string>

namespace vigil::intel::stix {
namespace {

// Returns the reason a pattern is not runnable, "" when it reduces, or the parse error.
std::string reduceError(std::string_view pattern) {
  absl::StatusOr<std::unique_ptr<Node>> tree = parsePattern(pattern);
  if (!tree.ok()) return std::string(tree.status().message());
  absl::StatusOr<std::vector<PatternValue>> values = patternValues(**tree);
  return values.ok() ? "" : std::string(values.status().message());
}

std::vector<PatternValue> reduce(std::string_view pattern) {
  absl::StatusOr<std::unique_ptr<Node>> tree = parsePattern(pattern);
  EXPECT_TRUE(tree.ok()) << tree.status();
  if (!tree.ok()) return {};
  absl::StatusOr<std::vector<PatternValue>> values = patternValues(**tree);
  EXPECT_TRUE(values.ok()) << values.status();
  return values.ok() ? *values : std::vector<PatternValue>{};
}

// A single comparison parses into an observation with one comparison leaf.
TEST(StixPatternTest, ParsesComparison) {
  absl::StatusOr<std::unique_ptr<Node>> tree =
      parsePattern("[file:hashes.'SHA-256' = 'ab\\'c\\\\']");
  ASSERT_TRUE(tree.ok()) << tree.status();
  const Node& root = **tree;
  ASSERT_EQ(root.kind, Node::Kind::kObservation);
  ASSERT_EQ(root.children.size(), 1u);
  const Comparison& c = root.children[0]->comparison;
  EXPECT_EQ(c.object_type, "file");
  ASSERT_EQ(c.path.size(), 2u);
  EXPECT_EQ(c.path[1], "SHA-256");
  EXPECT_EQ(c.pathText(), "file:hashes.SHA-256");
  EXPECT_EQ(c.op, Op::kEqual);
  ASSERT_EQ(c.values.size(), 1u);
  EXPECT_EQ(c.values[0].text, "ab'c\\");
}

// AND binds tighter than OR, and FOLLOWEDBY is loosest; qualifiers attach to observations.
TEST(StixPatternTest, Precedence) {
  absl::StatusOr<std::unique_ptr<Node>> tree = parsePattern(
      "[a:x = 1 OR a:y = 2 AND a:z = 3] AND [b:x = 'q'] WITHIN 60 SECONDS FOLLOWEDBY "
      "([c:x = 'r'] OR [d:x != 'y']) REPEATS 2 TIMES");
  ASSERT_TRUE(tree.ok()) << tree.status();
  const Node& root = **tree;
  ASSERT_EQ(root.kind, Node::Kind::kFollowedBy);
  ASSERT_EQ(root.children.size(), 2u);
  const Node& left = *root.children[0];
  ASSERT_EQ(left.kind, Node::Kind::kAnd);
  ASSERT_EQ(left.children.size(), 2u);
  EXPECT_EQ(left.children[1]->qualifiers.front(), "WITHIN 60 SECONDS");
  const Node& inner = *left.children[0]->children[0];
  ASSERT_EQ(inner.kind, Node::Kind::kOr);
  EXPECT_EQ(inner.children[1]->kind, Node::Kind::kAnd);
  EXPECT_EQ(root.children[1]->qualifiers.front(), "REPEATS 2 TIMES");
}

// Every operator of the grammar parses, with the literal kinds it takes.
TEST(StixPatternTest, ParsesEveryOperator) {
  for (const char* pattern : {
           "[x:a != 'v']",
           "[x:a < 5]",
           "[x:a <= 5.5]",
           "[x:a > -3]",
           "[x:a >= 3]",
           "[x:a IN ('p', 'q', 'r')]",
           "[x:a LIKE 'p%']",
           "[x:a MATCHES '^p.*$']",
           "[ipv4-addr:value ISSUBSET '198.51.100.0/24']",
           "[ipv4-addr:value ISSUPERSET '198.51.100.7']",
           "[x:a NOT = 'v']",
           "[EXISTS x:a]",
           "[x:a = true]",
           "[x:created = t'2020-01-01T00:00:00Z']",
           "[x:payload = h'ff00']",
           "[x:payload = b'AQID']",
           "[x:refs[*].value = 'v' AND x:list[2] = 'w']",
           "[x:a = 'v'] START t'2020-01-01T00:00:00Z' STOP t'2020-02-01T00:00:00Z'",
       }) {
    absl::StatusOr<std::unique_ptr<Node>> tree = parsePattern(pattern);
    EXPECT_TRUE(tree.ok()) << pattern << ": " << tree.status();
  }
}

// Syntax errors name the offset and what was expected.
TEST(StixPatternTest, SyntaxErrors) {
  struct Case {
    const char* pattern;
    const char* message;
  };
  for (const Case& c : {
           Case{"", "expected '[' or '(', got the end"},
           Case{"[x:a = 'v'", "expected ']', AND or OR"},
           Case{"[x:a = 'v]", "string literal is not closed"},
           Case{"[x:a 'v']", "expected a comparison operator"},
           Case{"[x:a = 'v'] AND", "offset 15: expected '[' or '('"},
           Case{"[x:a = 'v'] WITHIN SECONDS", "a number of seconds after WITHIN"},
           Case{"[xa = 'v']", "expected ':' after the object type"},
           Case{"[x:a = 'v\\n']", "a backslash in a string must escape"},
           Case{"[x:a ! 'v']", "'!' must be followed by '='"},
           Case{"[x:a = 'v'] [x:b = 'w']", "expected AND, OR, FOLLOWEDBY or the end"},
           Case{"[x:a IN ('v' 'w')]", "expected ',' or ')'"},
       }) {
    absl::StatusOr<std::unique_ptr<Node>> tree = parsePattern(c.pattern);
    ASSERT_FALSE(tree.ok()) << c.pattern;
    EXPECT_NE(tree.status().message().find(c.message), std::string::npos)
        << c.pattern << ": " << tree.status().message();
  }
}

// Deep nesting is rejected instead of overflowing the stack.
TEST(StixPatternTest, NestingLimit) {
  std::string deep = std::string(200, '(') + "[x:a = 'v']" + std::string(200, ')');
  absl::StatusOr<std::unique_ptr<Node>> tree = parsePattern(deep);
  ASSERT_FALSE(tree.ok());
  EXPECT_NE(tree.status().message().find("nesting deeper than 64"), std::string::npos);
}

// Supported paths reduce to values of their indicator type.
TEST(StixPatternTest, ReducesSupportedPaths) {
  std::vector<PatternValue> values = reduce(
      "[ipv4-addr:value = '198.51.100.7'] OR [ipv6-addr:value = '2001:db8::1'] OR "
      "[domain-name:value = 'bad.example' OR url:value = 'http://bad.example/x'] OR "
      "[file:hashes.MD5 = 'm'] OR [file:hashes.'SHA-1' = 's1'] OR "
      "[file:hashes.sha256 = 's2'] OR [file:name = 'evil.exe'] OR "
      "[email-addr:value = 'a@bad.example'] OR [email-message:from_ref.value = 'b@bad.example']");
  ASSERT_EQ(values.size(), 10u);
  EXPECT_EQ(values[0].type, IndicatorType::kIpv4);
  EXPECT_EQ(values[1].type, IndicatorType::kIpv6);
  EXPECT_EQ(values[2].type, IndicatorType::kDomain);
  EXPECT_EQ(values[3].type, IndicatorType::kUrl);
  EXPECT_EQ(values[4].type, IndicatorType::kMd5);
  EXPECT_EQ(values[5].type, IndicatorType::kSha1);
  EXPECT_EQ(values[6].type, IndicatorType::kSha256);
  EXPECT_EQ(values[7].type, IndicatorType::kFilename);
  EXPECT_EQ(values[8].type, IndicatorType::kEmail);
  EXPECT_EQ(values[9].value, "b@bad.example");
}

// IN gives one value per member, ISSUBSET a CIDR, LIKE and MATCHES regexes.
TEST(StixPatternTest, ReducesSetAndTextOperators) {
  std::vector<PatternValue> in = reduce("[domain-name:value IN ('a.example', 'b.example')]");
  ASSERT_EQ(in.size(), 2u);
  EXPECT_EQ(in[1].value, "b.example");
  std::vector<PatternValue> subset = reduce("[ipv4-addr:value ISSUBSET '198.51.100.0/24']");
  ASSERT_EQ(subset.size(), 1u);
  EXPECT_EQ(subset[0].value, "198.51.100.0/24");
  std::vector<PatternValue> like = reduce("[url:value LIKE '%/gate_.php%']");
  ASSERT_EQ(like.size(), 1u);
  EXPECT_EQ(like[0].type, IndicatorType::kRegex);
  EXPECT_EQ(like[0].value, "\\x2fgate.\\x2ephp");
  std::vector<PatternValue> matches = reduce("[file:name MATCHES '^inv[0-9]+\\\\.exe$']");
  ASSERT_EQ(matches.size(), 1u);
  EXPECT_EQ(matches[0].value, "^inv[0-9]+\\.exe$");
}

// Parts that need several values or events are not runnable, with the reason.
TEST(StixPatternTest, RejectsUnrunnable) {
  struct Case {
    const char* pattern;
    const char* reason;
  };
  for (const Case& c : {
           Case{"[domain-name:value = 'a.example' AND domain-name:value = 'b.example']",
                "AND inside an observation"},
           Case{"[domain-name:value = 'a.example'] AND [url:value = 'http://b.example/']",
                "AND between observations"},
           Case{"[domain-name:value = 'a.example'] FOLLOWEDBY [url:value = 'http://b.example/']",
                "FOLLOWEDBY"},
           Case{"[domain-name:value = 'a.example'] WITHIN 5 SECONDS", "qualifier WITHIN 5"},
           Case{"[domain-name:value = 'a.example'] REPEATS 3 TIMES", "qualifier REPEATS 3"},
           Case{"[domain-name:value != 'a.example']", "operator != on domain-name:value"},
           Case{"[domain-name:value NOT = 'a.example']", "NOT on domain-name:value"},
           Case{"[ipv4-addr:value ISSUPERSET '198.51.100.7']", "operator ISSUPERSET"},
           Case{"[x509-certificate:issuer = 'CN=x']", "object path 'x509-certificate:issuer'"},
           Case{"[file:hashes.'SHA-512' = 'ab']", "hash algorithm 'SHA-512'"},
           Case{"[network-traffic:dst_port = 9090]", "object path 'network-traffic:dst_port'"},
           Case{"[file:size = 5]", "object path 'file:size'"},
       }) {
    std::string reason = reduceError(c.pattern);
    EXPECT_NE(reason.find(c.reason), std::string::npos) << c.pattern << ": " << reason;
  }
}

}  // namespace
}  // namespace vigil::intel::stix

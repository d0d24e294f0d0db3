// The `condition` expression of a Sigma detection: selection names combined with `and`,
// `or`, `not`, parentheses and the `1 of` / `all of` quantifiers. Parsed once at rule load
// into a flat node array; evaluation walks it without allocating.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace vigil::correlate {

class Condition {
 public:
  enum class Kind : uint8_t { kSelection, kAnd, kOr, kNot };

  struct Node {
    Kind kind = Kind::kSelection;
    uint32_t selection = 0;    // kSelection: index into the rule's selections
    uint32_t first_child = 0;  // others: first index into children()
    uint32_t child_count = 0;
  };

  // Evaluates the expression. `selection_matches(i)` returns whether selection i matched;
  // it is called lazily, so `and`/`or` short-circuit. Never allocates.
  template <typename SelectionFn>
  bool evaluate(SelectionFn&& selection_matches) const {
    return evaluateNode(root_, selection_matches);
  }

  // The expression in fully parenthesized form, for tests and error messages.
  std::string toString(const std::vector<std::string>& selection_names) const;

  const std::vector<Node>& nodes() const { return nodes_; }
  // Child node indices: node n's children are children()[n.first_child ...].
  const std::vector<uint32_t>& children() const { return children_; }
  uint32_t root() const { return root_; }

 private:
  friend class ConditionParser;

  template <typename SelectionFn>
  bool evaluateNode(uint32_t index, SelectionFn& selection_matches) const {
    const Node& node = nodes_[index];
    switch (node.kind) {
      case Kind::kSelection:
        return selection_matches(node.selection);
      case Kind::kNot:
        return !evaluateNode(children_[node.first_child], selection_matches);
      case Kind::kAnd:
        for (uint32_t i = 0; i < node.child_count; ++i) {
          if (!evaluateNode(children_[node.first_child + i], selection_matches)) return false;
        }
        return true;
      case Kind::kOr:
        for (uint32_t i = 0; i < node.child_count; ++i) {
          if (evaluateNode(children_[node.first_child + i], selection_matches)) return true;
        }
        return false;
    }
    return false;
  }
  void appendText(uint32_t index, const std::vector<std::string>& names, std::string& out) const;

  std::vector<Node> nodes_;
  std::vector<uint32_t> children_;
  uint32_t root_ = 0;
};

// Levels of parentheses and `not` that a condition may nest. Sigma rules use a handful.
inline constexpr size_t kMaxConditionDepth = 64;

// Parses a condition over the named selections. Precedence is `not` > `and` > `or`;
// keywords are case-insensitive. `1 of X*` / `any of X*` is the OR and `all of X*` the
// AND of every selection whose name matches the `*` pattern; `them` means all selections.
// Returns InvalidArgument naming the token and its offset for unknown selections,
// patterns that match nothing, aggregations (`| count() ...`), which Sigma moved to
// correlation rules, nesting deeper than kMaxConditionDepth, and syntax errors. Allocates
// (control plane).
absl::StatusOr<Condition> parseCondition(std::string_view text,
                                         const std::vector<std::string>& selection_names);

}  // namespace vigil::correlate

// Hyperscan databases for the `re` values of a rule set, one block-mode database per
// value, and the per-worker scratch that scanning them needs.
#pragma once

#include <hs.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace vigil::correlate {

class RegexTable {
 public:
  RegexTable() = default;
  ~RegexTable() = default;
  RegexTable(const RegexTable&) = delete;
  RegexTable& operator=(const RegexTable&) = delete;

  // Compiles `expression` with Sigma's `re` sub-modifiers (`i` caseless, `m` multi-line,
  // `s` dot matches newline). Returns the new index, or InvalidArgument with Hyperscan's
  // message for constructs it does not support (back-references, look-around).
  absl::StatusOr<uint32_t> add(std::string_view expression, bool caseless, bool multiline,
                               bool dotall);

  // Drops databases added after the first `count` (undoes a rule that failed to load).
  void truncate(size_t count);
  // Appends the databases of `other`, shared with it rather than compiled again. Entry i
  // of `other` becomes entry size() + i of this table.
  void append(const RegexTable& other);
  size_t size() const { return databases_.size(); }
  // The expression of entry `index`, as given to add().
  std::string_view expression(uint32_t index) const { return *expressions_[index]; }

  // Grows `scratch` (which may be null) to fit every database. Returns false on
  // allocation failure.
  bool allocScratch(hs_scratch_t** scratch) const;

  // Returns true when expression `index` matches anywhere in `text`. `scratch` belongs to
  // the calling thread. Never allocates.
  bool matches(uint32_t index, std::string_view text, hs_scratch_t* scratch) const;

 private:
  // Shared, because the rule sets of several reloads may use one compiled database.
  std::vector<std::shared_ptr<hs_database_t>> databases_;
  std::vector<std::shared_ptr<const std::string>> expressions_;  // per database
};

}  // namespace vigil::correlate

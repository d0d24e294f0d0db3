#include "correlate/internal/regex_table.h"

#include "correlate/internal/text.h"

namespace vigil::correlate {
namespace {

int stopOnFirstMatch(unsigned int, unsigned long long, unsigned long long, unsigned int, void*) {
  return 1;  // non-zero ends the scan: one match is enough
}

}  // namespace

absl::StatusOr<uint32_t> RegexTable::add(std::string_view expression, bool caseless, bool multiline,
                                         bool dotall) {
  unsigned int flags =
      HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY;  // byte mode: fields may hold invalid UTF-8
  if (caseless) flags |= HS_FLAG_CASELESS;
  if (multiline) flags |= HS_FLAG_MULTILINE;
  if (dotall) flags |= HS_FLAG_DOTALL;
  std::string pattern(expression);
  hs_database_t* database = nullptr;
  hs_compile_error_t* compile_error = nullptr;
  if (hs_compile(pattern.c_str(), flags, HS_MODE_BLOCK, nullptr, &database, &compile_error) !=
      HS_SUCCESS) {
    std::string message = compile_error != nullptr ? compile_error->message : "unknown error";
    hs_free_compile_error(compile_error);
    return absl::InvalidArgumentError(internal::concat(
        "regular expression '", expression, "' is not supported by Hyperscan: ", message));
  }
  databases_.emplace_back(database, hs_free_database);
  expressions_.push_back(std::make_shared<const std::string>(std::move(pattern)));
  return static_cast<uint32_t>(databases_.size() - 1);
}

void RegexTable::truncate(size_t count) {
  if (databases_.size() > count) databases_.resize(count);
  if (expressions_.size() > count) expressions_.resize(count);
}

void RegexTable::append(const RegexTable& other) {
  databases_.insert(databases_.end(), other.databases_.begin(), other.databases_.end());
  expressions_.insert(expressions_.end(), other.expressions_.begin(), other.expressions_.end());
}

bool RegexTable::allocScratch(hs_scratch_t** scratch) const {
  for (const std::shared_ptr<hs_database_t>& database : databases_) {
    if (hs_alloc_scratch(database.get(), scratch) != HS_SUCCESS) return false;
  }
  return true;
}

bool RegexTable::matches(uint32_t index, std::string_view text, hs_scratch_t* scratch) const {
  hs_error_t result =
      hs_scan(databases_[index].get(), text.data(), static_cast<unsigned int>(text.size()), 0, scratch,
              stopOnFirstMatch, nullptr);
  return result == HS_SCAN_TERMINATED;
}

}  // namespace vigil::correlate

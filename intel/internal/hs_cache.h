// An on-disk cache of compiled Hyperscan databases. Compiling the URL, email and regex
// patterns of a million-indicator set takes most of a snapshot build; after a restart or
// a reload that left the patterns alone, the databases are read back instead.
//
// One build compiles two databases (see HsDatabase), and one cache file contains both, so
// the folder keeps one file per build. A file is named by the SHA-256 of everything the
// compiled databases depend on: the Hyperscan version, the CPU platform they were
// compiled for, and each pattern's id, flags and expression in order. The flags also
// decide which database a pattern goes to (regexes have kRegexFlags), so the name covers
// the split. A file of another format version (such as version 1, which held one
// database), a truncated file, one that fails its checksum or one that Hyperscan refuses
// is rejected: it is removed, the load reports why, and the caller compiles again.
#pragma once

#include <hs.h>

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace vigil::intel::internal {

// The databases of one indicator set, in the order a cache file stores them.
enum HsDatabase : size_t {
  kUrlEmailDatabase = 0,  // URLs and emails as caseless literals
  kRegexDatabase = 1,     // regular expressions
  kHsDatabaseCount = 2,
};

struct HsCacheEntry {
  // Indexed by HsDatabase; nullptr for a kind the set has no pattern of. Owned by the
  // caller on a hit.
  std::array<hs_database_t*, kHsDatabaseCount> databases{};
  // Pattern ids left out because Hyperscan rejected them when the entry was compiled.
  std::vector<unsigned> rejected_ids;
};

// The cache key for patterns `expressions` with `flags` and `ids` (same lengths), as 64
// lower-case hex digits.
std::string hsCacheKey(const std::vector<std::string>& expressions,
                       const std::vector<unsigned>& flags, const std::vector<unsigned>& ids);

// Reads the entry for `key` from `dir`. Returns false on a miss or a rejected file (which
// it removes); `error` then contains the reason when there was a file.
bool hsCacheLoad(const std::string& dir, const std::string& key, HsCacheEntry& entry,
                 std::string& error);

// Writes `databases` (indexed by HsDatabase, nullptr for none) and `rejected_ids` under
// `key` in `dir` (created when missing) through a temporary file and a rename, so readers
// never see a partial entry, then removes all but the `keep` newest entries. Returns
// false with `error` set on failure; the caller goes on without the cache.
bool hsCacheStore(const std::string& dir, const std::string& key,
                  std::span<const hs_database_t* const, kHsDatabaseCount> databases,
                  const std::vector<unsigned>& rejected_ids, size_t keep, std::string& error);

}  // namespace vigil::intel::internal

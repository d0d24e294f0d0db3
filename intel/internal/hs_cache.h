// An on-disk cache of compiled Hyperscan databases. Compiling the URL, hash and regex
// patterns of a million-indicator set takes most of a snapshot build; after a restart or
// a reload that left the patterns alone, the database is read back instead.
//
// A cache file is named by the SHA-256 of everything the compiled database depends on:
// the Hyperscan version, the CPU platform it was compiled for, and each pattern's id,
// flags and expression in order. A file that is truncated, fails its checksum or that
// Hyperscan refuses is treated as a miss and replaced.
#pragma once

#include <hs.h>

#include <string>
#include <vector>

namespace vigil::intel::internal {

struct HsCacheEntry {
  hs_database_t* database = nullptr;  // owned by the caller on a hit
  // Pattern ids left out because Hyperscan rejected them when the entry was compiled.
  std::vector<unsigned> rejected_ids;
};

// The cache key for patterns `expressions` with `flags` and `ids` (same lengths), as 64
// lower-case hex digits.
std::string hsCacheKey(const std::vector<std::string>& expressions,
                       const std::vector<unsigned>& flags, const std::vector<unsigned>& ids);

// Reads the entry for `key` from `dir`. Returns false on a miss or a damaged file (which
// it removes); `error` then holds the reason when there was a file.
bool hsCacheLoad(const std::string& dir, const std::string& key, HsCacheEntry& entry,
                 std::string& error);

// Writes `database` and `rejected_ids` under `key` in `dir` (created when missing) through
// a temporary file and a rename, so readers never see a partial entry, then removes all
// but the `keep` newest entries. Returns false with `error` set on failure; the caller
// goes on without the cache.
bool hsCacheStore(const std::string& dir, const std::string& key, const hs_database_t* database,
                  const std::vector<unsigned>& rejected_ids, size_t keep, std::string& error);

}  // namespace vigil::intel::internal

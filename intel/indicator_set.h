// The immutable indicator snapshot that the matcher runs against. IndicatorSetBuilder
// (intel/builder.h) creates it. Nothing in it changes after build(), so any number of
// workers may read it at once without locks, each with its own Scratch.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <map>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "common/event.h"
#include "common/ip.h"

struct hs_database;  // Hyperscan's database type (hs_database_t in <hs.h>)

namespace vigil::intel {

// Number of IndicatorType values, for arrays indexed by type.
inline constexpr size_t kIndicatorTypeCount = static_cast<size_t>(IndicatorType::kRegex) + 1;

// One indicator of compromise as loaded from one or more feeds.
struct Indicator {
  // Normalized text: canonical address or "ADDR/LEN" for IP types, lower-case domain
  // without a trailing dot, URL with lower-case scheme and host and no default port,
  // lower-case hex for hashes, lower-case address for email and file names, the
  // expression as written for regexes. Domains with non-ASCII labels are in their
  // punycode (xn--) form. Hyperscan patterns and IndicatorHit::indicator use it.
  std::string text;
  IndicatorType type = IndicatorType::kIpv4;
  // Names of every list that contains the indicator, comma-separated, in load order.
  std::string lists;
  // "file:line" (or "file:object") of the first record that produced the indicator.
  std::string origin;

  // Metadata merged over every feed that carried the indicator: the highest
  // confidence, the union of tags, the earliest first_seen and valid_from, and the
  // latest last_seen and valid_until. Unknown times are InfinitePast (first_seen,
  // last_seen, valid_from) or InfiniteFuture (valid_until).
  uint8_t confidence = 0;  // 0..100
  std::vector<std::string> tags;
  absl::Time first_seen = absl::InfinitePast();
  absl::Time last_seen = absl::InfinitePast();
  absl::Time valid_from = absl::InfinitePast();
  absl::Time valid_until = absl::InfiniteFuture();
  uint32_t feed_count = 0;  // distinct feeds that carried the indicator
  // Reputation 1..100 computed by build(); see BuilderOptions::score_half_life.
  uint8_t score = 0;
};

// Figures about one snapshot, fixed at build time.
struct IndicatorSetStats {
  // Indexed by static_cast<size_t>(IndicatorType).
  std::array<size_t, kIndicatorTypeCount> count_by_type{};
  size_t pattern_count = 0;               // indicators compiled into Hyperscan
  size_t hs_database_bytes = 0;           // 0 when there are no patterns
  absl::Duration hs_compile_time = absl::ZeroDuration();  // compile, or cache read on a hit
  // What the compiled-database cache did for this build: "off", "hit", "miss" (compiled
  // and stored) or "error" (compiled; `hs_cache_error` says why the cache failed).
  std::string hs_cache = "off";
  std::string hs_cache_error;
  size_t prefix_lengths = 0;   // distinct CIDR lengths, each one hash probe per lookup
  size_t duplicate_lines = 0;  // accepted lines whose indicator was already loaded
  // Indicators left out because a warninglist contains their value, per list name.
  std::map<std::string, size_t> suppressed_by_warninglist;
  // Regular expressions left out because Hyperscan rejected them at compile time.
  size_t rejected_regexes = 0;

  size_t count(IndicatorType type) const { return count_by_type[static_cast<size_t>(type)]; }
};

class IndicatorSet {
 public:
  ~IndicatorSet();
  IndicatorSet(const IndicatorSet&) = delete;
  IndicatorSet& operator=(const IndicatorSet&) = delete;

  size_t size() const { return indicators_.size(); }
  // The indicator with index `id` (0 <= id < size()); also the Hyperscan pattern id.
  const Indicator& indicator(uint32_t id) const { return indicators_[id]; }
  const IndicatorSetStats& stats() const { return stats_; }

  // Finds the indicator for one address: an exact address indicator first, else the
  // CIDR with the longest prefix that contains it. IPv4 and IPv4-mapped IPv6 addresses
  // are the same key (see common/ip.h). Returns nullopt when nothing matches.
  // Never allocates; costs one hash probe plus one per distinct CIDR length.
  // Thread-safe.
  std::optional<uint32_t> lookupAddress(const IpAddr& addr) const;

  // Finds the file name indicator equal to `key`, a lower-case name without a
  // directory (the caller lower-cases it). Never allocates. Thread-safe.
  std::optional<uint32_t> lookupFilename(std::string_view key) const;
  bool hasFilenames() const { return !filenames_.empty(); }

  // Finds the domain indicator equal to `key`, a lower-case name without a trailing dot.
  // Never allocates. Thread-safe.
  std::optional<uint32_t> lookupDomain(std::string_view key) const;
  bool hasDomains() const { return !domains_.empty(); }

  // The compiled Hyperscan block-mode database, or nullptr when the set has no URL, hash,
  // email or regex indicators. Owned by the set.
  const hs_database* database() const { return database_.get(); }

 private:
  friend class IndicatorSetBuilder;

  struct DatabaseDeleter {
    void operator()(hs_database* db) const;
  };
  // All CIDRs of one prefix length, keyed by the masked network address.
  struct PrefixTable {
    uint8_t len = 0;  // in IPv6 bits (IPv4 /24 is 120)
    absl::flat_hash_map<IpAddr, uint32_t> networks;
  };

  IndicatorSet() = default;

  std::vector<Indicator> indicators_;
  absl::flat_hash_map<IpAddr, uint32_t> addresses_;
  std::vector<PrefixTable> prefixes_;  // longest prefix first
  absl::flat_hash_map<std::string, uint32_t> filenames_;
  absl::flat_hash_map<std::string, uint32_t> domains_;
  std::unique_ptr<hs_database, DatabaseDeleter> database_;
  IndicatorSetStats stats_;
};

}  // namespace vigil::intel

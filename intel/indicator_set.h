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
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "common/event.h"
#include "common/ip.h"

struct hs_database;  // Hyperscan's database type (hs_database_t in <hs.h>)

namespace vigil::intel {

// One indicator of compromise as loaded from a list.
struct Indicator {
  // Normalized text: canonical address or "ADDR/LEN" for IP types, lower-case domain
  // without a trailing dot, URL with lower-case scheme and host and no default port,
  // lower-case hex for hashes. Hyperscan patterns and IndicatorHit::indicator use it.
  std::string text;
  IndicatorType type = IndicatorType::kIpv4;
  // Names of every list that contains the indicator, comma-separated, in load order.
  std::string lists;
  // "file:line" of the first line that produced the indicator.
  std::string origin;
};

// Figures about one snapshot, fixed at build time.
struct IndicatorSetStats {
  std::array<size_t, 8> count_by_type{};  // indexed by static_cast<size_t>(IndicatorType)
  size_t pattern_count = 0;               // indicators compiled into Hyperscan
  size_t hs_database_bytes = 0;           // 0 when there are no patterns
  absl::Duration hs_compile_time = absl::ZeroDuration();
  size_t prefix_lengths = 0;   // distinct CIDR lengths, each one hash probe per lookup
  size_t duplicate_lines = 0;  // accepted lines whose indicator was already loaded

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

  // The compiled Hyperscan block-mode database, or nullptr when the set has no domain,
  // URL or hash indicators. Owned by the set.
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
  std::unique_ptr<hs_database, DatabaseDeleter> database_;
  IndicatorSetStats stats_;
};

}  // namespace vigil::intel

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

// One indicator of compromise with its metadata, as IndicatorSet::indicator() assembles
// it: a copy that owns its strings, so it may outlive the snapshot.
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
  // The tenant that owns the indicator: only that tenant's events match it. Empty for an
  // indicator of every tenant.
  std::string tenant;

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
  size_t hs_database_bytes = 0;           // both databases; 0 when there are no patterns
  absl::Duration hs_compile_time = absl::ZeroDuration();  // compile, or cache read on a hit
  // What the compiled-database cache did for this build: "off", "hit", "miss" (compiled
  // and stored) or "error" (compiled; `hs_cache_error` gives the reason the cache failed).
  std::string hs_cache = "off";
  std::string hs_cache_error;
  // True when a cache file for these patterns existed but was rejected (damaged, or of
  // another format version) and removed. `hs_cache_error` gives the reason.
  bool hs_cache_rejected = false;
  size_t prefix_lengths = 0;   // distinct CIDR lengths, each one hash probe per lookup
  size_t duplicate_lines = 0;  // accepted lines whose indicator was already loaded
  // Indicators left out because a warninglist contains their value, per list name.
  std::map<std::string, size_t> suppressed_by_warninglist;
  // Regular expressions left out because Hyperscan rejected them at compile time.
  size_t rejected_regexes = 0;
  // Distinct metadata rows (lists, tags, confidence, times, origin file) shared by the
  // indicators; see IndicatorSet.
  size_t metadata_rows = 0;
  // Heap bytes of the indicator records, texts, metadata and lookup tables, without the
  // Hyperscan database (hs_database_bytes).
  size_t table_bytes = 0;

  size_t count(IndicatorType type) const { return count_by_type[static_cast<size_t>(type)]; }
};

namespace internal {
class AddressTable;  // intel/internal/flat_table.h
class TextTable;
}  // namespace internal

// Storage: each indicator is one 16-byte record (text offset and length, type, metadata
// row, origin line) plus its text in one shared buffer. Everything else it carries
// (lists, tags, confidence, times, score, origin file) sits in a metadata row that all
// indicators with equal values share: a list of a million addresses from one feed
// has one row. Lookup tables are open-addressing arrays of ids (internal/flat_table.h).
class IndicatorSet {
 public:
  ~IndicatorSet();
  IndicatorSet(const IndicatorSet&) = delete;
  IndicatorSet& operator=(const IndicatorSet&) = delete;

  size_t size() const { return records_.size(); }

  // The indicator with index `id` (0 <= id < size()), which is also its Hyperscan
  // pattern id, with all its metadata. Allocates (every string is copied); the matcher
  // uses the accessors below instead. Thread-safe.
  Indicator indicator(uint32_t id) const;

  // Parts of indicator `id` (0 <= id < size()). Never allocate. Thread-safe. The views
  // stay valid while the set lives.
  std::string_view text(uint32_t id) const {
    const Record& r = records_[id];
    return std::string_view(text_.data() + r.text_offset, r.text_len);
  }
  IndicatorType type(uint32_t id) const { return records_[id].type; }
  std::string_view lists(uint32_t id) const { return strings_[rows_[records_[id].row].lists]; }
  uint8_t score(uint32_t id) const { return rows_[records_[id].row].score; }
  // The owning tenant, empty for an indicator of every tenant.
  std::string_view tenant(uint32_t id) const { return strings_[rows_[records_[id].row].tenant]; }

  // Tenant copies: one value may be an indicator of every tenant and of several tenants,
  // each with its own metadata. The copies of one type and text have consecutive ids,
  // the copy of every tenant (if any) first. Only the first id of such a group is in the
  // lookup tables and the Hyperscan database, so lookups return group heads.
  // True when indicator `id + 1` is another copy of indicator `id`.
  bool hasNextCopy(uint32_t id) const { return records_[id].next_copy; }
  // True when some indicator is owned by a tenant. When false, every indicator is
  // visible to every event and every group has one member.
  bool tenantScoped() const { return tenant_scoped_; }
  // True when an event of `event_tenant` matches indicator `id`: the indicator belongs
  // to every tenant or to that one. Never allocates.
  bool visibleTo(uint32_t id, std::string_view event_tenant) const {
    const std::string_view owner = tenant(id);
    return owner.empty() || owner == event_tenant;
  }
  // The first copy in the group of head `id` that `event_tenant` matches, or nullopt.
  std::optional<uint32_t> firstVisible(uint32_t id, std::string_view event_tenant) const;

  const IndicatorSetStats& stats() const { return stats_; }

  // Finds the indicator for one address: an exact address indicator first, else the
  // CIDR with the longest prefix that contains it. IPv4 and IPv4-mapped IPv6 addresses
  // are the same key (see common/ip.h). Returns nullopt when nothing matches.
  // Never allocates; costs one hash probe plus one per distinct CIDR length.
  // Thread-safe.
  std::optional<uint32_t> lookupAddress(const IpAddr& addr) const;
  // Same, among the indicators that an event of `event_tenant` matches (visibleTo()):
  // another tenant's exact address does not hide a shorter prefix of this tenant's or of
  // every tenant. Returns a group head. Never allocates. Thread-safe.
  std::optional<uint32_t> lookupAddress(const IpAddr& addr, std::string_view event_tenant) const {
    return tenant_scoped_ ? lookupVisibleAddress(addr, event_tenant) : lookupAddress(addr);
  }

  // Finds the file name indicator equal to `key`, a lower-case name without a
  // directory (the caller lower-cases it). Never allocates. Thread-safe.
  std::optional<uint32_t> lookupFilename(std::string_view key) const;
  // Same, for a key whose hash the caller computed with textHashSeed().
  std::optional<uint32_t> lookupFilename(std::string_view key, uint64_t hash) const;
  bool hasFilenames() const;

  // Finds the domain indicator equal to `key`, a lower-case name without a trailing dot.
  // Never allocates. Thread-safe.
  std::optional<uint32_t> lookupDomain(std::string_view key) const;
  // Same, for a key whose hash the caller computed with textHashSeed() (see
  // internal/flat_table.h), so that parent domains reuse one pass over the name.
  std::optional<uint32_t> lookupDomain(std::string_view key, uint64_t hash) const;
  bool hasDomains() const;

  // Finds the MD5, SHA-1 or SHA-256 indicator equal to `key`, lower-case hex digits.
  // Never allocates. Thread-safe.
  std::optional<uint32_t> lookupHash(std::string_view key) const;
  // Same, for a key whose hash the caller computed with textHashSeed().
  std::optional<uint32_t> lookupHash(std::string_view key, uint64_t hash) const;
  bool hasHashes() const;

  // Prefetch hints for the lookups above: each starts loading the table line that the
  // lookup of that key reads first, and returns without waiting. The matcher calls them
  // for every key of an event before it looks any up, so that their cache misses overlap.
  // prefetchAddress() covers the exact table and the first kPrefetchedPrefixLengths
  // CIDR lengths. Text keys take the hash that the lookup takes. Never allocate.
  // Thread-safe.
  static constexpr size_t kPrefetchedPrefixLengths = 4;
  void prefetchAddress(const IpAddr& addr) const;
  void prefetchFilename(uint64_t hash) const;
  void prefetchDomain(uint64_t hash) const;
  void prefetchHash(uint64_t hash) const;

  // Seed of the text hashes of this set's tables.
  uint64_t textHashSeed() const { return seed_; }

  // The compiled Hyperscan block-mode databases, owned by the set. URLs and emails are
  // in one, as caseless literals, and regexes in the other, so that text without "://"
  // and "@" (which every URL and every email indicator contains) skips the first. Each
  // is nullptr when the set has no indicator of its kinds.
  const hs_database* urlEmailDatabase() const { return url_email_database_.get(); }
  const hs_database* regexDatabase() const { return regex_database_.get(); }

 private:
  friend class IndicatorSetBuilder;

  struct DatabaseDeleter {
    void operator()(hs_database* db) const;
  };
  // Per-indicator part. 16 bytes.
  struct Record {
    uint32_t text_offset = 0;  // into text_; the copies of a group share one text
    uint16_t text_len = 0;     // URLs and regexes are at most 4096 bytes
    IndicatorType type = IndicatorType::kIpv4;
    bool next_copy = false;    // the next record is another tenant's copy (hasNextCopy())
    uint32_t row = 0;          // into rows_
    uint32_t origin_number = 0;  // the number in the origin, or kNoOriginNumber
  };
  static_assert(sizeof(Record) == 16, "the flag of tenant copies must fit in the padding");
  // Metadata shared by indicators with equal values. The origin of an indicator is
  // strings_[origin_prefix] + its origin_number in decimal + strings_[origin_suffix].
  struct Row {
    absl::Time first_seen = absl::InfinitePast();
    absl::Time last_seen = absl::InfinitePast();
    absl::Time valid_from = absl::InfinitePast();
    absl::Time valid_until = absl::InfiniteFuture();
    uint32_t lists = 0;  // into strings_
    uint32_t tags = 0;   // into tag_lists_
    uint32_t origin_prefix = 0;  // into strings_
    uint32_t origin_suffix = 0;  // into strings_
    uint32_t tenant = 0;         // into strings_; 0 ("") for every tenant
    uint32_t feed_count = 0;
    uint8_t confidence = 0;
    uint8_t score = 0;
  };
  static constexpr uint32_t kNoOriginNumber = UINT32_MAX;
  // All CIDRs of one prefix length, keyed by the masked network address.
  struct PrefixTable {
    uint8_t len = 0;  // in IPv6 bits (IPv4 /24 is 120)
    std::unique_ptr<internal::AddressTable> networks;
  };

  IndicatorSet();
  std::optional<uint32_t> lookupVisibleAddress(const IpAddr& addr,
                                               std::string_view event_tenant) const;

  std::vector<Record> records_;
  std::string text_;
  std::vector<Row> rows_;
  std::vector<std::string> strings_;  // interned list names, origin parts and tags
  std::vector<std::vector<uint32_t>> tag_lists_;  // interned; ids into strings_
  uint64_t seed_ = 0;
  bool tenant_scoped_ = false;
  std::unique_ptr<internal::AddressTable> addresses_;
  std::vector<PrefixTable> prefixes_;  // longest prefix first
  std::unique_ptr<internal::TextTable> filenames_;
  std::unique_ptr<internal::TextTable> domains_;
  std::unique_ptr<internal::TextTable> hashes_;
  std::unique_ptr<hs_database, DatabaseDeleter> url_email_database_;
  std::unique_ptr<hs_database, DatabaseDeleter> regex_database_;
  IndicatorSetStats stats_;
};

}  // namespace vigil::intel

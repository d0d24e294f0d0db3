// The build side of threat intelligence: reads plain indicator lists and compiles them
// into an immutable IndicatorSet (intel/indicator_set.h).
//
// Plain-list format, one indicator per line:
//   - blank lines, whole-line `#` comments and trailing ` # ...` comments are skipped,
//     and surrounding whitespace is ignored;
//   - hosts-file lines (`0.0.0.0 NAME...`, `127.0.0.1 NAME...`, `::` or `::1`) give the
//     names after the address, which must be domains;
//   - `INDICATOR;DESCRIPTION` (the LOKI IOC format) keeps the text before the first `;`
//     unless the indicator is a URL;
//   - `INDICATOR<whitespace>NUMBER` (the IPsum format: address and a count) keeps the
//     indicator;
//   - the type is detected per line: IPv4, IPv6, CIDR, URL (`scheme://...`), MD5, SHA-1,
//     SHA-256 (32, 40 or 64 hex digits), else a domain name.
// Lines that fit none of these are rejected and reported; they never fail the load.
//
// Duplicates: an indicator (same type and normalized text) is stored once. Its `lists`
// names every list it came from, and each repeated line counts in `duplicates`.
//
// The CSV, MISP and STIX 2.1 loaders (addCsvText(), addMispText(), addStixText() and
// their file variants) are described in docs/intel.md. Every loader ends in
// addIndicator(), which also takes the metadata of each value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <array>
#include <map>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "intel/indicator_set.h"

namespace vigil::intel {
namespace internal {
struct Warninglist;  // intel/internal/warninglist.h
}  // namespace internal

struct BuilderOptions {
  // CIDRs shorter than these are rejected as over-broad. /0 is always rejected, and so
  // is an IPv6 prefix that contains the whole IPv4-mapped range (::ffff:0:0/96).
  uint8_t min_ipv4_prefix_len = 8;   // 1..32
  uint8_t min_ipv6_prefix_len = 32;  // 1..128
  // Rejections kept with their text per list; later ones are only counted.
  size_t max_kept_rejections = 1000;
  // The builder's "now": indicators whose valid_until is before it are dropped as
  // expired, and scores decay by the time since last seen. InfinitePast means the
  // wall clock when the builder is created. Tests set a fixed time.
  absl::Time now = absl::InfinitePast();
  // Confidence (0..100) of values whose feed gives none.
  uint8_t default_confidence = 50;
  // Age after which an indicator's confidence counts half in its score; zero turns
  // decay off. Age runs from last_seen, else first_seen, else valid_from.
  absl::Duration score_half_life = absl::Hours(24 * 30);
  // Folder of the compiled-database cache (see intel/internal/hs_cache.h); empty turns
  // the cache off. `hs_cache_keep` is how many databases the folder keeps.
  std::string hs_cache_dir = {};
  size_t hs_cache_keep = 4;
};

// Metadata that a feed gives for one value, besides the value itself.
struct IndicatorMeta {
  std::optional<uint8_t> confidence;  // 0..100; BuilderOptions::default_confidence if unset
  std::vector<std::string> tags;
  absl::Time first_seen = absl::InfinitePast();
  absl::Time last_seen = absl::InfinitePast();
  absl::Time valid_from = absl::InfinitePast();
  absl::Time valid_until = absl::InfiniteFuture();
};

// A CSV column chosen by header name (when `name` is set) or by 0-based index.
struct CsvColumn {
  std::string name;
  int index = -1;  // -1 = column not used

  bool used() const { return !name.empty() || index >= 0; }
};

// Layout of one CSV feed. Fields follow RFC 4180: a field in double quotes may contain
// the delimiter, line breaks and doubled quotes ("").
struct CsvOptions {
  char delimiter = ',';
  bool header = true;           // the first record (after comments) names the columns
  char comment = '#';           // lines starting with it are skipped; '\0' = none
  CsvColumn value;              // required
  CsvColumn type;               // optional: a type name ("ipv4", "domain", "md5", ...)
  std::optional<IndicatorType> fixed_type;  // used when `type` is not set; else detected
  CsvColumn confidence;         // optional, an integer 0..100
  CsvColumn first_seen;         // optional, RFC 3339
  CsvColumn last_seen;          // optional, RFC 3339
  CsvColumn tags;               // optional
  // Optional path column for feeds that split URLs into host and path (URLhaus's Splunk
  // lookup). A record with a non-empty path gives the URL "http://" + value + path;
  // NOTE: such feeds give no scheme, so https URLs in logs do not match these.
  CsvColumn url_path;
  char tag_separator = '|';     // separates several tags in the tags column
};

// One rejected line.
struct Rejection {
  std::string location;  // "file:line"
  std::string reason;    // why the line was rejected and what would be accepted
  std::string text;      // the line as read, cut to 256 bytes
};

// The result of loading one list.
struct LoadReport {
  std::string list;
  size_t loaded = 0;                  // indicators new to the builder
  size_t duplicates = 0;              // accepted indicators that an earlier line already gave
  size_t rejected = 0;                // every rejected line, kept or not
  std::vector<Rejection> rejections;  // the first max_kept_rejections of them
  // New indicators per type (they sum to `loaded`).
  std::array<size_t, kIndicatorTypeCount> loaded_by_type{};
  // Values dropped because valid_until was before BuilderOptions::now.
  size_t expired = 0;
  // MISP attributes with to_ids false: context, not for detection.
  size_t not_for_detection = 0;
  // MISP attribute types with no indicator type, with their counts.
  std::map<std::string, size_t> unknown_types;
};

// The result of loading one MISP warninglist (values that must never alert).
struct WarninglistReport {
  std::string list;  // the warninglist's "name"
  std::string type;  // string, hostname, cidr, substring or regex
  size_t entries = 0;
  size_t rejected = 0;
  std::vector<Rejection> rejections;
};

// Collects indicators from lists and builds a snapshot. Not thread-safe; use one builder
// per thread. Allocates freely: it runs on the control plane.
class IndicatorSetBuilder {
 public:
  explicit IndicatorSetBuilder(BuilderOptions options = {});
  ~IndicatorSetBuilder();

  // Reads the list file at `path` under the list name `name` ([A-Za-z0-9._-], 1 to 64
  // characters). Errors: InvalidArgument for a bad name or options, and for a `path` that
  // is not a regular file, such as a folder or a FIFO (never read, so it cannot block).
  // NotFound or PermissionDenied when the file cannot be opened, DataLoss when a read
  // fails, FailedPrecondition after build(). Rejected lines are reported in the
  // LoadReport, not as an error.
  absl::StatusOr<LoadReport> addListFile(std::string_view name, const std::string& path);

  // Same as addListFile() for a list already in memory. `origin` names the source in
  // reported locations ("origin:line"), usually a file path or a feed URL.
  absl::StatusOr<LoadReport> addListText(std::string_view name, std::string_view text,
                                         std::string_view origin);

  // Reads a list of regular expressions, one per line as LOKI writes them
  // ("REGEX;SCORE" or "REGEX;SCORE;FALSE_POSITIVE_REGEX", SCORE 0..100 as the confidence,
  // '#' comments). The first ';' that no backslash escapes ends the regex, so a
  // literal ';' in the regex is written as \;. A line whose SCORE is not a number 0 to 100
  // is rejected. The false-positive regex is not used. Each expression is checked with
  // Hyperscan; the ones it rejects are reported with its error text.
  absl::StatusOr<LoadReport> addRegexListFile(std::string_view name, const std::string& path);
  absl::StatusOr<LoadReport> addRegexListText(std::string_view name, std::string_view text,
                                              std::string_view origin);

  // Reads a CSV feed laid out as `options` describes. Errors: as addListFile(), plus
  // InvalidArgument when a column name is missing from the header, a column index lies
  // beyond the header (or, without a header, beyond the widest record), or no value
  // column is set.
  absl::StatusOr<LoadReport> addCsvFile(std::string_view name, const std::string& path,
                                        const CsvOptions& options);
  absl::StatusOr<LoadReport> addCsvText(std::string_view name, std::string_view text,
                                        std::string_view origin, const CsvOptions& options);

  // Reads MISP JSON: one event ({"Event": ...}), a REST collection ({"response": [...]}
  // of events, or {"response": {"Attribute": [...]}}), or a bare event body. Attributes
  // in objects count too. Errors: InvalidArgument when the text is not JSON of one of
  // these shapes.
  absl::StatusOr<LoadReport> addMispFile(std::string_view name, const std::string& path);
  absl::StatusOr<LoadReport> addMispText(std::string_view name, std::string_view text,
                                         std::string_view origin);
  // Reads a MISP feed folder: manifest.json and one <uuid>.json per event it lists. An
  // event file that is missing or broken is one rejection; other files are ignored.
  absl::StatusOr<LoadReport> addMispFeedFolder(std::string_view name, const std::string& dir);

  // Reads a STIX 2.x bundle (or a JSON array of STIX objects) and loads each indicator
  // whose pattern reduces to single values (see docs/intel.md). Other patterns are
  // rejected whole with the reason. Errors: InvalidArgument for text that is not JSON.
  absl::StatusOr<LoadReport> addStixFile(std::string_view name, const std::string& path);
  absl::StatusOr<LoadReport> addStixText(std::string_view name, std::string_view text,
                                         std::string_view origin);

  // Reads one MISP warninglist (misp-warninglists format). build() leaves out every
  // indicator whose value is on a list and counts it in
  // IndicatorSetStats::suppressed_by_warninglist. Errors: as addMispFile(), and
  // InvalidArgument for an unknown list type.
  absl::StatusOr<WarninglistReport> addWarninglistFile(const std::string& path);
  absl::StatusOr<WarninglistReport> addWarninglistText(std::string_view text,
                                                       std::string_view origin);

  // Adds one value from feed `name`. `type` is the type the feed declares, or nullopt to
  // detect it as in plain lists. Email, file name and regex values need a declared
  // type. The value is normalized, checked and merged with an earlier indicator of the
  // same type and text; a rejected value goes into `report` with `location`.
  void addIndicator(std::string_view name, std::optional<IndicatorType> type,
                    std::string_view value, const IndicatorMeta& meta,
                    const std::string& location, LoadReport& report);

  // Counts one rejected record in `report` and keeps its location, reason and text
  // (cut to 256 bytes) while fewer than max_kept_rejections are kept.
  void reject(const std::string& location, std::string reason, std::string_view line,
              LoadReport& report) const;

  // Sets the tenant that owns the indicators added from now on; empty (the default) means
  // every tenant. The same type and text added for several tenants gives one indicator
  // per tenant, each with its own metadata, and the matcher reports to an event only the
  // copies of its tenant and of every tenant. Errors: InvalidArgument for a name longer
  // than 64 bytes or with a byte outside [A-Za-z0-9._-], FailedPrecondition after
  // build().
  absl::Status setTenant(std::string_view tenant);

  // The time used for expiry and score decay (BuilderOptions::now or the creation time).
  absl::Time now() const { return now_; }

  // Compiles everything added so far into a snapshot: address and prefix tables, a file
  // name set, and a Hyperscan block-mode database of the domain, URL, hash, email and
  // regex indicators. Scores each indicator and leaves out those on a warninglist. An
  // empty builder gives an empty set. Errors: Internal when Hyperscan rejects the patterns,
  // FailedPrecondition when called twice (the builder hands its indicators over).
  absl::StatusOr<std::shared_ptr<const IndicatorSet>> build();

 private:
  // One indicator while lists are loaded. Strings that repeat across indicators (list
  // names, origin file, tags) are interned in strings_ and referred to by id, so that
  // build() can share them in the snapshot's metadata rows.
  struct Pending {
    std::string text;  // normalized
    IndicatorType type = IndicatorType::kIpv4;
    uint32_t lists = 0;            // strings_ id of the comma-separated list names
    uint32_t tags = 0;             // tag_lists_ id
    uint32_t origin_prefix = 0;    // strings_ id
    uint32_t origin_number = 0;    // IndicatorSet::kNoOriginNumber when none
    uint32_t origin_suffix = 0;    // strings_ id
    uint32_t tenant = 0;           // strings_ id; 0 ("") for every tenant
    uint32_t feed_count = 0;
    uint8_t confidence = 0;
    absl::Time first_seen = absl::InfinitePast();
    absl::Time last_seen = absl::InfinitePast();
    absl::Time valid_from = absl::InfinitePast();
    absl::Time valid_until = absl::InfiniteFuture();
  };
  struct Entry {
    Pending indicator;
    IpPrefix prefix;  // address (len 128) or network for IP types
  };
  // Index of entries_ by (type, text, tenant), without a second copy of the text.
  struct EntryKey {
    IndicatorType type;
    std::string_view text;
    uint32_t tenant;
  };
  struct EntryHash {
    using is_transparent = void;
    const std::vector<Entry>* entries;
    size_t operator()(uint32_t id) const;
    size_t operator()(const EntryKey& key) const;
  };
  struct EntryEq {
    using is_transparent = void;
    const std::vector<Entry>* entries;
    EntryKey key(uint32_t id) const;
    EntryKey key(const EntryKey& k) const { return k; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      EntryKey x = key(a);
      EntryKey y = key(b);
      return x.type == y.type && x.text == y.text && x.tenant == y.tenant;
    }
  };

  absl::Status checkReady(std::string_view name) const;
  absl::StatusOr<std::string> readFile(std::string_view name, const std::string& path) const;
  void addLine(std::string_view list, std::string_view line, const std::string& location,
               LoadReport& report);
  void addEntry(std::string_view list, Entry entry, const IndicatorMeta& meta,
                const std::string& location, LoadReport& report);
  bool suppressed(const Entry& entry, IndicatorSetStats& stats) const;
  uint8_t scoreOf(const Pending& indicator) const;
  std::string originOf(const Pending& indicator) const;
  std::vector<uint32_t> groupCopies(std::vector<uint32_t> kept) const;
  uint32_t intern(std::string_view text);
  uint32_t internTags(std::vector<uint32_t> tags);
  // Compiles the URL and email patterns and the regexes among `ids` into the set's two
  // Hyperscan databases, or reads both from the cache.
  absl::Status compileDatabases(IndicatorSet& set, const std::vector<unsigned>& ids) const;
  static size_t tableBytes(const IndicatorSet& set);

  BuilderOptions options_;
  absl::Time now_;
  bool built_ = false;
  std::vector<std::unique_ptr<internal::Warninglist>> warninglists_;
  std::vector<Entry> entries_;
  absl::flat_hash_set<uint32_t, EntryHash, EntryEq> index_{0, EntryHash{&entries_},
                                                           EntryEq{&entries_}};
  // Interned strings and tag lists; strings_[0] is "" and tag_lists_[0] is empty.
  std::vector<std::string> strings_{""};
  absl::flat_hash_map<std::string, uint32_t> string_ids_{{"", 0}};
  std::vector<std::vector<uint32_t>> tag_lists_{{}};
  absl::flat_hash_map<std::vector<uint32_t>, uint32_t> tag_list_ids_{{{}, 0}};
  size_t duplicate_lines_ = 0;
  uint32_t tenant_ = 0;         // strings_ id of the owner of new indicators
  bool tenant_scoped_ = false;  // some indicator has an owner
};

}  // namespace vigil::intel

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
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "intel/indicator_set.h"

namespace vigil::intel {

struct BuilderOptions {
  // CIDRs shorter than these are rejected as over-broad. /0 is always rejected, and so
  // is an IPv6 prefix that contains the whole IPv4-mapped range (::ffff:0:0/96).
  uint8_t min_ipv4_prefix_len = 8;   // 1..32
  uint8_t min_ipv6_prefix_len = 16;  // 1..128
  // Rejections kept with their text per list; later ones are only counted.
  size_t max_kept_rejections = 1000;
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
};

// Collects indicators from lists and builds a snapshot. Not thread-safe; use one builder
// per thread. Allocates freely: it runs on the control plane.
class IndicatorSetBuilder {
 public:
  explicit IndicatorSetBuilder(BuilderOptions options = {});

  // Reads the list file at `path` under the list name `name` ([A-Za-z0-9._-], 1 to 64
  // characters). Errors: InvalidArgument for a bad name or options, NotFound or
  // PermissionDenied when the file cannot be read, FailedPrecondition after build().
  // Rejected lines are reported in the LoadReport, not as an error.
  absl::StatusOr<LoadReport> addListFile(std::string_view name, const std::string& path);

  // Same as addListFile() for a list already in memory. `origin` names the source in
  // reported locations ("origin:line"), usually a file path or a feed URL.
  absl::StatusOr<LoadReport> addListText(std::string_view name, std::string_view text,
                                         std::string_view origin);

  // Compiles everything added so far into a snapshot: address and prefix tables, and a
  // Hyperscan block-mode database of the domain, URL and hash indicators. An empty
  // builder gives an empty set. Errors: Internal when Hyperscan rejects the patterns,
  // FailedPrecondition when called twice (the builder hands its indicators over).
  absl::StatusOr<std::shared_ptr<const IndicatorSet>> build();

 private:
  struct Entry {
    Indicator indicator;
    IpPrefix prefix;  // address (len 128) or network for IP types
  };

  absl::Status checkReady(std::string_view name) const;
  void addLine(std::string_view list, std::string_view line, const std::string& location,
               LoadReport& report);
  void addIndicator(std::string_view list, Entry entry, LoadReport& report);
  void reject(const std::string& location, std::string reason, std::string_view line,
              LoadReport& report) const;

  BuilderOptions options_;
  bool built_ = false;
  std::vector<Entry> entries_;
  // Key: one byte of IndicatorType followed by the normalized text.
  absl::flat_hash_map<std::string, uint32_t> index_;
  size_t duplicate_lines_ = 0;
};

}  // namespace vigil::intel

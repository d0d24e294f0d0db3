// A loaded MISP warninglist, as IndicatorSetBuilder::build() checks indicators against it.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "common/ip.h"
#include "intel/builder.h"

namespace vigil::intel::internal {

struct Warninglist {
  std::string name;
  std::string type;  // string, hostname, cidr, substring or regex
  // Indicator types the list applies to, from its matching_attributes.
  std::array<bool, kIndicatorTypeCount> applies{};
  // "string": lower-case values. "hostname": names that match themselves and their
  // subdomains (entries written "example.com").
  absl::flat_hash_set<std::string> names;
  // "hostname" entries written ".example.com", which match only subdomains.
  absl::flat_hash_set<std::string> parents_only;
  // "cidr": masked networks per prefix length (IPv6 bits; an address is length 128).
  std::map<uint8_t, absl::flat_hash_set<IpAddr>> networks;
  std::vector<std::string> substrings;  // "substring": lower-case
  std::vector<std::regex> regexes;      // "regex": ECMAScript, case-insensitive

  // True when the list contains the indicator's value.
  bool contains(const IndicatorType type, const std::string& text, const IpPrefix& prefix) const;
};

}  // namespace vigil::intel::internal

#include "intel/indicator_set.h"

#include <hs.h>

#include <cstring>

namespace vigil::intel {
namespace {

// Clears every bit after the first `len` (0..128).
IpAddr maskTo(const IpAddr& addr, unsigned len) {
  IpAddr out;
  unsigned full_bytes = len / 8;
  std::memcpy(out.bytes.data(), addr.bytes.data(), full_bytes);
  if (full_bytes < 16 && len % 8 != 0) {
    out.bytes[full_bytes] = static_cast<uint8_t>(addr.bytes[full_bytes] & (0xffu << (8 - len % 8)));
  }
  return out;
}

}  // namespace

IndicatorSet::~IndicatorSet() = default;

void IndicatorSet::DatabaseDeleter::operator()(hs_database* db) const { hs_free_database(db); }

std::optional<uint32_t> IndicatorSet::lookupAddress(const IpAddr& addr) const {
  if (auto it = addresses_.find(addr); it != addresses_.end()) return it->second;
  for (const PrefixTable& table : prefixes_) {
    auto it = table.networks.find(maskTo(addr, table.len));
    if (it != table.networks.end()) return it->second;
  }
  return std::nullopt;
}

std::optional<uint32_t> IndicatorSet::lookupFilename(std::string_view key) const {
  auto it = filenames_.find(absl::string_view(key.data(), key.size()));
  if (it == filenames_.end()) return std::nullopt;
  return it->second;
}

std::optional<uint32_t> IndicatorSet::lookupDomain(std::string_view key) const {
  auto it = domains_.find(absl::string_view(key.data(), key.size()));
  if (it == domains_.end()) return std::nullopt;
  return it->second;
}

}  // namespace vigil::intel

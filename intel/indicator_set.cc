#include "intel/indicator_set.h"

#include <hs.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "intel/internal/flat_table.h"

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

std::optional<uint32_t> found(uint32_t id) {
  if (id == internal::kNoId) return std::nullopt;
  return id;
}

}  // namespace

IndicatorSet::IndicatorSet()
    : addresses_(std::make_unique<internal::AddressTable>()),
      filenames_(std::make_unique<internal::TextTable>()),
      domains_(std::make_unique<internal::TextTable>()),
      hashes_(std::make_unique<internal::TextTable>()) {}

IndicatorSet::~IndicatorSet() = default;

void IndicatorSet::DatabaseDeleter::operator()(hs_database* db) const { hs_free_database(db); }

Indicator IndicatorSet::indicator(uint32_t id) const {
  const Record& record = records_[id];
  const Row& row = rows_[record.row];
  Indicator out;
  out.text = text(id);
  out.type = record.type;
  out.lists = strings_[row.lists];
  out.tenant = strings_[row.tenant];
  out.origin = strings_[row.origin_prefix];
  if (record.origin_number != kNoOriginNumber) absl::StrAppend(&out.origin, record.origin_number);
  out.origin += strings_[row.origin_suffix];
  out.confidence = row.confidence;
  for (uint32_t tag : tag_lists_[row.tags]) out.tags.push_back(strings_[tag]);
  out.first_seen = row.first_seen;
  out.last_seen = row.last_seen;
  out.valid_from = row.valid_from;
  out.valid_until = row.valid_until;
  out.feed_count = row.feed_count;
  out.score = row.score;
  return out;
}

std::optional<uint32_t> IndicatorSet::lookupAddress(const IpAddr& addr) const {
  if (uint32_t id = addresses_->find(addr); id != internal::kNoId) return id;
  for (const PrefixTable& table : prefixes_) {
    uint32_t id = table.networks->find(maskTo(addr, table.len));
    if (id != internal::kNoId) return id;
  }
  return std::nullopt;
}

void IndicatorSet::prefetchAddress(const IpAddr& addr) const {
  addresses_->prefetch(addr);
  const size_t lengths = std::min(prefixes_.size(), kPrefetchedPrefixLengths);
  for (size_t i = 0; i < lengths; ++i) {
    prefixes_[i].networks->prefetch(maskTo(addr, prefixes_[i].len));
  }
}

void IndicatorSet::prefetchFilename(uint64_t hash) const { filenames_->prefetch(hash); }
void IndicatorSet::prefetchDomain(uint64_t hash) const { domains_->prefetch(hash); }
void IndicatorSet::prefetchHash(uint64_t hash) const { hashes_->prefetch(hash); }

std::optional<uint32_t> IndicatorSet::lookupVisibleAddress(const IpAddr& addr,
                                                          std::string_view event_tenant) const {
  if (uint32_t id = addresses_->find(addr); id != internal::kNoId && firstVisible(id, event_tenant)) {
    return id;
  }
  for (const PrefixTable& table : prefixes_) {
    uint32_t id = table.networks->find(maskTo(addr, table.len));
    if (id != internal::kNoId && firstVisible(id, event_tenant)) return id;
  }
  return std::nullopt;
}

std::optional<uint32_t> IndicatorSet::firstVisible(uint32_t id,
                                                   std::string_view event_tenant) const {
  while (true) {
    if (visibleTo(id, event_tenant)) return id;
    if (!records_[id].next_copy) return std::nullopt;
    ++id;
  }
}

bool IndicatorSet::hasFilenames() const { return !filenames_->empty(); }
bool IndicatorSet::hasDomains() const { return !domains_->empty(); }
bool IndicatorSet::hasHashes() const { return !hashes_->empty(); }

std::optional<uint32_t> IndicatorSet::lookupFilename(std::string_view key) const {
  return lookupFilename(key, internal::hashText(key, seed_));
}

std::optional<uint32_t> IndicatorSet::lookupFilename(std::string_view key, uint64_t hash) const {
  return found(filenames_->find(hash, [&](uint32_t id) { return text(id) == key; }));
}

std::optional<uint32_t> IndicatorSet::lookupDomain(std::string_view key) const {
  return lookupDomain(key, internal::hashText(key, seed_));
}

std::optional<uint32_t> IndicatorSet::lookupDomain(std::string_view key, uint64_t hash) const {
  return found(domains_->find(hash, [&](uint32_t id) { return text(id) == key; }));
}

std::optional<uint32_t> IndicatorSet::lookupHash(std::string_view key) const {
  return lookupHash(key, internal::hashText(key, seed_));
}

std::optional<uint32_t> IndicatorSet::lookupHash(std::string_view key, uint64_t hash) const {
  return found(hashes_->find(hash, [&](uint32_t id) { return text(id) == key; }));
}

}  // namespace vigil::intel

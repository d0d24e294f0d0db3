// Open-addressing hash tables of an indicator snapshot. Each is filled once by the
// builder and only read afterwards, so they need no erase and no rehash on insert.
//
// Layout: one flat array of small slots, linear probing, a power-of-two capacity of at
// least twice the number of keys (load factor at most 0.5, so a miss probes about 1.5
// slots on average). A slot holds the key, or for text keys 32 bits of its hash, next to
// the indicator id; kNoId marks an empty slot.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "common/ip.h"

namespace vigil::intel::internal {

inline constexpr uint32_t kNoId = UINT32_MAX;

// The avalanche step of a 64-bit hash: every input bit changes about half the output
// bits, so the low bits that pick a slot are as good as the high ones.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ULL;
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ULL;
  x ^= x >> 32;
  return x;
}

// Hash of a text key, seeded per snapshot. It reads the text from its last byte
// backwards in 8-byte words, so that SuffixHasher can produce the hash of every suffix
// of a name (its parent domains) in one pass over the name.
class SuffixHasher {
 public:
  // `text` stays owned by the caller and must outlive the hasher.
  SuffixHasher(std::string_view text, uint64_t seed) : text_(text), seed_(seed), state_(seed) {}

  // Hash of text.substr(start), equal to hashText(text.substr(start), seed). Words
  // already absorbed are reused while `start` moves towards the front, so the parents of
  // a name cost one pass in total when asked from the shortest suffix to the longest.
  // Never allocates.
  uint64_t suffix(size_t start) {
    const size_t len = text_.size() - start;
    if (len / 8 < words_) {
      words_ = 0;
      state_ = seed_;
    }
    while (words_ < len / 8) {
      ++words_;
      uint64_t word;
      std::memcpy(&word, text_.data() + text_.size() - 8 * words_, 8);
      state_ = std::rotl((state_ ^ word) * kWordMultiplier, 31);
    }
    uint64_t head = 0;
    std::memcpy(&head, text_.data() + start, len % 8);
    return mix64(state_ ^ head ^ (static_cast<uint64_t>(len) * kWordMultiplier));
  }

 private:
  static constexpr uint64_t kWordMultiplier = 0x9e3779b97f4a7c15ULL;

  std::string_view text_;
  uint64_t seed_;
  uint64_t state_;
  size_t words_ = 0;  // 8-byte words from the end absorbed into state_
};

inline uint64_t hashText(std::string_view text, uint64_t seed) {
  return SuffixHasher(text, seed).suffix(0);
}

// Capacity (a power of two) for `keys` keys at a load factor of at most 0.5.
inline size_t tableCapacity(size_t keys) { return std::bit_ceil(std::max<size_t>(keys * 2, 8)); }

// Addresses and masked networks of one length, keyed by their 16-byte IpAddr. IPv4
// keys (IPv4-mapped addresses) sit in a table of 4-byte keys, the rest in one of 16-byte
// keys.
class AddressTable {
 public:
  // Fills the table from (key, id) pairs; a key seen twice keeps its first id.
  void build(const std::vector<std::pair<IpAddr, uint32_t>>& entries) {
    size_t v4 = 0;
    for (const auto& entry : entries) v4 += entry.first.isV4() ? 1 : 0;
    v4_.assign(v4 == 0 ? 0 : tableCapacity(v4), V4Slot{0, kNoId});
    v6_.assign(entries.size() == v4 ? 0 : tableCapacity(entries.size() - v4), V6Slot{{}, kNoId});
    for (const auto& [addr, id] : entries) {
      if (addr.isV4()) {
        insertV4(addr.v4(), id);
      } else {
        insertV6(addr, id);
      }
    }
  }

  // The id stored for `addr`, or kNoId. Never allocates.
  uint32_t find(const IpAddr& addr) const {
    if (addr.isV4()) {
      if (v4_.empty()) return kNoId;
      const uint32_t key = addr.v4();
      const size_t mask = v4_.size() - 1;
      for (size_t i = hashV4(key) & mask;; i = (i + 1) & mask) {
        if (v4_[i].id == kNoId || v4_[i].key == key) return v4_[i].id;
      }
    }
    if (v6_.empty()) return kNoId;
    const size_t mask = v6_.size() - 1;
    for (size_t i = hashV6(addr) & mask;; i = (i + 1) & mask) {
      if (v6_[i].id == kNoId || v6_[i].key == addr.bytes) return v6_[i].id;
    }
  }

  bool empty() const { return v4_.empty() && v6_.empty(); }
  size_t bytes() const { return v4_.capacity() * sizeof(V4Slot) + v6_.capacity() * sizeof(V6Slot); }

 private:
  struct V4Slot {
    uint32_t key;
    uint32_t id;
  };
  struct V6Slot {
    std::array<uint8_t, 16> key;
    uint32_t id;
  };

  static uint64_t hashV4(uint32_t key) { return mix64(key); }
  static uint64_t hashV6(const IpAddr& addr) {
    uint64_t high;
    uint64_t low;
    std::memcpy(&high, addr.bytes.data(), 8);
    std::memcpy(&low, addr.bytes.data() + 8, 8);
    return mix64(high ^ mix64(low));
  }

  void insertV4(uint32_t key, uint32_t id) {
    const size_t mask = v4_.size() - 1;
    size_t i = hashV4(key) & mask;
    while (v4_[i].id != kNoId) {
      if (v4_[i].key == key) return;
      i = (i + 1) & mask;
    }
    v4_[i] = {key, id};
  }
  void insertV6(const IpAddr& addr, uint32_t id) {
    const size_t mask = v6_.size() - 1;
    size_t i = hashV6(addr) & mask;
    while (v6_[i].id != kNoId) {
      if (v6_[i].key == addr.bytes) return;
      i = (i + 1) & mask;
    }
    v6_[i] = {addr.bytes, id};
  }

  std::vector<V4Slot> v4_;
  std::vector<V6Slot> v6_;
};

// Text keys (domains, file names, hashes) whose text lives elsewhere: a slot keeps 32
// bits of the key's hash and the indicator id, and the caller compares the text of a
// slot whose hash bits agree.
class TextTable {
 public:
  // Sizes the table for `keys` keys; call before insert().
  void reserve(size_t keys) { slots_.assign(keys == 0 ? 0 : tableCapacity(keys), Slot{0, kNoId}); }

  // Inserts `id` under `hash` unless `same(existing_id)` says the key is already there.
  template <typename Same>
  void insert(uint64_t hash, uint32_t id, Same&& same) {
    const size_t mask = slots_.size() - 1;
    const auto tag = static_cast<uint32_t>(hash >> 32);
    size_t i = hash & mask;
    while (slots_[i].id != kNoId) {
      if (slots_[i].tag == tag && same(slots_[i].id)) return;
      i = (i + 1) & mask;
    }
    slots_[i] = {tag, id};
  }

  // The id under `hash` whose text `same(id)` accepts, or kNoId. Never allocates.
  template <typename Same>
  uint32_t find(uint64_t hash, Same&& same) const {
    if (slots_.empty()) return kNoId;
    const size_t mask = slots_.size() - 1;
    const auto tag = static_cast<uint32_t>(hash >> 32);
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      const Slot& slot = slots_[i];
      if (slot.id == kNoId) return kNoId;
      if (slot.tag == tag && same(slot.id)) return slot.id;
    }
  }

  bool empty() const { return slots_.empty(); }
  size_t bytes() const { return slots_.capacity() * sizeof(Slot); }

 private:
  struct Slot {
    uint32_t tag;  // hash >> 32
    uint32_t id;
  };
  std::vector<Slot> slots_;
};

}  // namespace vigil::intel::internal

// Open-addressing hash tables of an indicator snapshot. Each is filled once by the
// builder and only read afterwards, so they need no erase and no rehash on insert.
//
// Layout: linear probing over a power-of-two capacity of at least twice the number of
// keys (load factor at most 0.5). A control array of one byte per slot holds 7 bits of
// the key's hash with the high bit set, or 0 for an empty slot. Most lookups are misses
// (benign traffic), and they read only this array, which is an eighth of the slots'
// size and so stays in cache where the slots would not; a slot is read only when its
// control byte matches (a false match for 1 in 128 occupied slots). A slot holds the
// key, or for text keys 32 more bits of its hash, next to the indicator id.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <climits>
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
    return mix64(state_ ^ head(start, len % 8) ^ (static_cast<uint64_t>(len) * kWordMultiplier));
  }

 private:
  static constexpr uint64_t kWordMultiplier = 0x9e3779b97f4a7c15ULL;

  // The `n` (0..7) bytes at `start` as a little-endian number. A memcpy of n bytes into
  // a word stalls the following 8-byte read (no store forwarding from partial writes),
  // so the bytes come from one 8-byte load inside the text where it has 8 bytes.
  uint64_t head(size_t start, size_t n) const {
    if constexpr (std::endian::native == std::endian::little) {
      if (n == 0) return 0;
      uint64_t word;
      if (text_.size() - start >= 8) {
        std::memcpy(&word, text_.data() + start, 8);
        return word & ((uint64_t{1} << (8 * n)) - 1);
      }
      if (text_.size() >= 8 && start + n == text_.size()) {
        std::memcpy(&word, text_.data() + text_.size() - 8, 8);
        return word >> (8 * (8 - n));
      }
    }
    uint64_t value = 0;
    for (size_t i = 0; i < n; ++i) {
      value |= uint64_t{static_cast<uint8_t>(text_[start + i])} << (8 * i);
    }
    return value;
  }

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

// The control byte of a key with hash `hash`: never 0, which marks an empty slot.
inline uint8_t controlByte(uint64_t hash) { return static_cast<uint8_t>((hash >> 57) | 0x80); }

// Walks the probe sequence of `hash` and returns the first slot index whose control byte
// matches and for which `match(index)` holds, or SIZE_MAX at the first empty slot.
template <typename Match>
size_t probe(const std::vector<uint8_t>& controls, uint64_t hash, Match&& match) {
  const size_t mask = controls.size() - 1;
  const uint8_t control = controlByte(hash);
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const uint8_t c = controls[i];
    if (c == 0) return SIZE_MAX;
    if (c == control && match(i)) return i;
  }
}

// Asks the CPU to load the cache line of `hash`'s first control byte, the one probe()
// reads first. A lookup that misses usually reads nothing else, so the matcher prefetches
// this line for every key of an event before it probes any, and the cache misses of the
// keys overlap instead of following one another. Reads nothing itself.
inline void prefetchControl(const std::vector<uint8_t>& controls, uint64_t hash) {
  if (controls.empty()) return;
  __builtin_prefetch(controls.data() + (hash & (controls.size() - 1)));
}

// The first empty slot index of `hash`'s probe sequence, whose control byte it sets.
inline size_t claim(std::vector<uint8_t>& controls, uint64_t hash) {
  const size_t mask = controls.size() - 1;
  size_t i = hash & mask;
  while (controls[i] != 0) i = (i + 1) & mask;
  controls[i] = controlByte(hash);
  return i;
}

// Addresses and masked networks of one length, keyed by their 16-byte IpAddr. IPv4
// keys (IPv4-mapped addresses) sit in a table of 4-byte keys, the rest in one of 16-byte
// keys.
class AddressTable {
 public:
  // Fills the table from (key, id) pairs; a key seen twice keeps its first id.
  void build(const std::vector<std::pair<IpAddr, uint32_t>>& entries) {
    size_t v4 = 0;
    for (const auto& entry : entries) v4 += isV4(entry.first) ? 1 : 0;
    const size_t v6 = entries.size() - v4;
    v4_.assign(v4 == 0 ? 0 : tableCapacity(v4), V4Slot{});
    v4_controls_.assign(v4_.size(), 0);
    v6_.assign(v6 == 0 ? 0 : tableCapacity(v6), V6Slot{});
    v6_controls_.assign(v6_.size(), 0);
    for (const auto& [addr, id] : entries) {
      if (find(addr) != kNoId) continue;
      if (isV4(addr)) {
        const uint32_t key = v4Key(addr);
        v4_[claim(v4_controls_, hashV4(key))] = {key, id};
      } else {
        v6_[claim(v6_controls_, hashV6(addr))] = {addr.bytes, id};
      }
    }
  }

  // The id stored for `addr`, or kNoId. Never allocates.
  uint32_t find(const IpAddr& addr) const {
    if (isV4(addr)) {
      if (v4_.empty()) return kNoId;
      const uint32_t key = v4Key(addr);
      size_t i = probe(v4_controls_, hashV4(key), [&](size_t k) { return v4_[k].key == key; });
      return i == SIZE_MAX ? kNoId : v4_[i].id;
    }
    if (v6_.empty()) return kNoId;
    size_t i = probe(v6_controls_, hashV6(addr), [&](size_t k) { return v6_[k].key == addr.bytes; });
    return i == SIZE_MAX ? kNoId : v6_[i].id;
  }

  // Prefetches the control line that find(addr) reads first (see prefetchControl()).
  void prefetch(const IpAddr& addr) const {
    if (isV4(addr)) {
      prefetchControl(v4_controls_, hashV4(v4Key(addr)));
    } else {
      prefetchControl(v6_controls_, hashV6(addr));
    }
  }

  bool empty() const { return v4_.empty() && v6_.empty(); }
  size_t bytes() const {
    return v4_.capacity() * sizeof(V4Slot) + v4_controls_.capacity() +
           v6_.capacity() * sizeof(V6Slot) + v6_controls_.capacity();
  }

 private:
  struct V4Slot {
    uint32_t key = 0;
    uint32_t id = kNoId;
  };
  struct V6Slot {
    std::array<uint8_t, 16> key{};
    uint32_t id = kNoId;
  };

  // IpAddr::isV4() and v4() are out of line in common/ip.cc; these run per lookup.
  static bool isV4(const IpAddr& addr) {
    static constexpr std::array<uint8_t, 12> kMapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(addr.bytes.data(), kMapped.data(), kMapped.size()) == 0;
  }
  // The last four bytes as they lie in memory; only used as a key.
  static uint32_t v4Key(const IpAddr& addr) {
    uint32_t key;
    std::memcpy(&key, addr.bytes.data() + 12, 4);
    return key;
  }
  static uint64_t hashV4(uint32_t key) { return mix64(key); }
  static uint64_t hashV6(const IpAddr& addr) {
    uint64_t high;
    uint64_t low;
    std::memcpy(&high, addr.bytes.data(), 8);
    std::memcpy(&low, addr.bytes.data() + 8, 8);
    return mix64(high ^ mix64(low));
  }

  std::vector<V4Slot> v4_;
  std::vector<uint8_t> v4_controls_;
  std::vector<V6Slot> v6_;
  std::vector<uint8_t> v6_controls_;
};

// Text keys (domains, file names, hashes) whose text lives elsewhere: a slot keeps 32
// bits of the key's hash and the indicator id, and the caller compares the text of a
// slot whose hash bits agree.
class TextTable {
 public:
  // Sizes the table for `keys` keys; call before insert().
  void reserve(size_t keys) {
    slots_.assign(keys == 0 ? 0 : tableCapacity(keys), Slot{});
    controls_.assign(slots_.size(), 0);
  }

  // Inserts `id` under `hash` unless `same(existing_id)` returns true for a stored id,
  // which means the key is already there.
  template <typename Same>
  void insert(uint64_t hash, uint32_t id, Same&& same) {
    if (find(hash, same) != kNoId) return;
    slots_[claim(controls_, hash)] = {static_cast<uint32_t>(hash >> 32), id};
  }

  // The id under `hash` whose text `same(id)` accepts, or kNoId. Never allocates.
  template <typename Same>
  uint32_t find(uint64_t hash, Same&& same) const {
    if (slots_.empty()) return kNoId;
    const auto tag = static_cast<uint32_t>(hash >> 32);
    size_t i = probe(controls_, hash, [&](size_t k) {
      return slots_[k].tag == tag && same(slots_[k].id);
    });
    return i == SIZE_MAX ? kNoId : slots_[i].id;
  }

  // Prefetches the control line that find(hash, ...) reads first (see prefetchControl()).
  void prefetch(uint64_t hash) const { prefetchControl(controls_, hash); }

  bool empty() const { return slots_.empty(); }
  size_t bytes() const { return slots_.capacity() * sizeof(Slot) + controls_.capacity(); }

 private:
  struct Slot {
    uint32_t tag = 0;  // hash >> 32
    uint32_t id = kNoId;
  };
  std::vector<Slot> slots_;
  std::vector<uint8_t> controls_;
};

}  // namespace vigil::intel::internal

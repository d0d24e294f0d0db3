// A fixed-capacity byte arena owned by one event. The buffer is allocated once when the
// event slot is created and reused for every event that passes through the slot, so the
// hot path never allocates. Views handed out stay valid until reset().
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

namespace vigil {

class Arena {
 public:
  // The buffer is left uninitialized (make_unique<char[]> would zero it), so only the
  // pages that events fill become resident: the pipeline's arenas are sized for the
  // largest message and most events use a few hundred bytes of them.
  explicit Arena(size_t capacity_bytes)
      : buf_(new char[capacity_bytes]), capacity_(capacity_bytes) {}

  // Reserves `len` bytes; returns nullptr when the arena is full (the caller flags the
  // event and keeps what it has).
  char* alloc(size_t len) {
    if (len > capacity_ - used_) return nullptr;
    char* p = buf_.get() + used_;
    used_ += len;
    return p;
  }

  // Reserves `len` bytes that start at a multiple of `align` (a power of two), for
  // structs kept in the arena. Returns nullptr when the arena is full.
  char* allocAligned(size_t len, size_t align) {
    const uintptr_t base = reinterpret_cast<uintptr_t>(buf_.get());
    const uintptr_t start = (base + used_ + align - 1) & ~(uintptr_t{align} - 1);
    const size_t offset = static_cast<size_t>(start - base);
    if (offset > capacity_ || len > capacity_ - offset) return nullptr;
    used_ = offset + len;
    return buf_.get() + offset;
  }

  // Copies `text` into the arena. Returns an empty view when it does not fit.
  std::string_view copy(std::string_view text) {
    char* p = alloc(text.size());
    if (p == nullptr) return {};
    std::memcpy(p, text.data(), text.size());
    return {p, text.size()};
  }

  // Trades buffers with `buffer`, which must hold capacity() bytes, and marks its first
  // `used` bytes as allocated. `buffer` gets this arena's old buffer. Returns a view of
  // those bytes. Lets a producer's filled buffer become the arena without copying it.
  std::string_view adopt(std::unique_ptr<char[]>& buffer, size_t used) {
    buf_.swap(buffer);
    used_ = used;
    return {buf_.get(), used};
  }

  // Gives back the tail of the most recent alloc() that the caller did not use.
  void shrinkLast(char* start, size_t used_len) { used_ = static_cast<size_t>(start - buf_.get()) + used_len; }

  void reset() { used_ = 0; }
  size_t used() const { return used_; }
  size_t capacity() const { return capacity_; }

 private:
  std::unique_ptr<char[]> buf_;
  size_t capacity_;
  size_t used_ = 0;
};

}  // namespace vigil

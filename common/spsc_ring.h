// A bounded single-producer single-consumer ring. One thread pushes, one thread pops;
// neither ever blocks or takes a lock. Slots are constructed once and reused, so a
// producer fills a slot in place (tryClaim / publish) without copying or allocating.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <new>
#include <vector>

#include "common/consumer_wake.h"

namespace vigil {

template <typename T>
class SpscRing {
 public:
  // `capacity` is rounded up to a power of two. `make` builds each slot once.
  template <typename Make>
  SpscRing(size_t capacity, Make make) {
    size_t cap = 1;
    while (cap < capacity) cap <<= 1;
    mask_ = cap - 1;
    slots_.reserve(cap);
    for (size_t i = 0; i < cap; ++i) slots_.push_back(make());
  }

  // Producer: returns the next free slot, or nullptr when the ring is full.
  T* tryClaim() {
    size_t head = head_.load(std::memory_order_relaxed);
    if (head - tail_.load(std::memory_order_acquire) > mask_) return nullptr;
    return slots_[head & mask_].get();
  }
  // Producer: makes the slot from the last successful tryClaim() visible to the consumer.
  void publish() {
    head_.store(head_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    notifyConsumer();
  }

  // Producer: the number of slots that can be filled before the ring is full. The consumer
  // may free more at any time, so the true number is at least this.
  size_t freeSlots() const {
    size_t used = head_.load(std::memory_order_relaxed) - tail_.load(std::memory_order_acquire);
    return capacity() - used;
  }
  // Producer: returns the slot `offset` places after the one tryClaim() would return, for
  // filling a batch in place. Requires offset < freeSlots().
  T* claimAhead(size_t offset) {
    return slots_[(head_.load(std::memory_order_relaxed) + offset) & mask_].get();
  }
  // Producer: makes the next `n` claimed slots visible to the consumer at once.
  void publish(size_t n) {
    head_.store(head_.load(std::memory_order_relaxed) + n, std::memory_order_release);
    notifyConsumer();
  }

  // Lets publish() wake a consumer that sleeps on `wake` (nullptr: none). May be called
  // while the producer runs; `wake` must outlive the ring or be replaced first.
  void setConsumerWake(ConsumerWake* wake) { wake_.store(wake, std::memory_order_release); }

  // Consumer: returns the oldest published slot, or nullptr when empty.
  T* front() {
    size_t tail = tail_.load(std::memory_order_relaxed);
    if (tail == head_.load(std::memory_order_acquire)) return nullptr;
    return slots_[tail & mask_].get();
  }
  // Consumer: releases the slot returned by front() back to the producer.
  void pop() { tail_.store(tail_.load(std::memory_order_relaxed) + 1, std::memory_order_release); }

  // The number of slots popped since the ring was made. A producer that lends the
  // consumer memory by reference in its slots may reuse that memory once this count has
  // passed the slot (acquire: the consumer's reads of the slot happened before).
  size_t popped() const { return tail_.load(std::memory_order_acquire); }

  size_t size() const {
    return head_.load(std::memory_order_acquire) - tail_.load(std::memory_order_acquire);
  }
  size_t capacity() const { return mask_ + 1; }

 private:
  void notifyConsumer() {
    if (ConsumerWake* wake = wake_.load(std::memory_order_acquire)) wake->notify();
  }

  std::vector<std::unique_ptr<T>> slots_;
  size_t mask_ = 0;
  std::atomic<ConsumerWake*> wake_{nullptr};
  alignas(64) std::atomic<size_t> head_{0};
  alignas(64) std::atomic<size_t> tail_{0};
};

}  // namespace vigil

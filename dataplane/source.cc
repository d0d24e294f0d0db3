#include "dataplane/source.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/clock.h"

namespace vigil::dataplane {
namespace {

constexpr char kDroppedName[] = "vigil_source_dropped_total";
constexpr char kDroppedHelp[] = "Messages a source discarded, by reason";

// Bytes of a traded message that moveToEvent() prefetches: the syslog header and the
// start of MSG, which the parser reads first.
constexpr size_t kPrefetchBytes = 512;

}  // namespace

SourceCounters registerSourceCounters(MetricsRegistry& registry, const std::string& source_name) {
  const Labels source{{"source", source_name}};
  auto dropped = [&](const char* reason) {
    return &registry.counter(kDroppedName, kDroppedHelp,
                             {{"reason", reason}, {"source", source_name}});
  };
  SourceCounters c;
  c.received = &registry.counter("vigil_source_received_total",
                                 "Messages a source published to its ring", source);
  c.bytes = &registry.counter("vigil_source_bytes_total",
                              "Bytes of the messages a source published", source);
  c.truncated = &registry.counter("vigil_source_truncated_total",
                                  "Published messages cut to max_message_bytes", source);
  c.dropped_queue_full = dropped("queue_full");
  c.dropped_empty = dropped("empty");
  c.dropped_kernel = dropped("kernel");
  c.dropped_shutdown = dropped("shutdown");
  c.framing_errors = &registry.counter("vigil_source_framing_errors_total",
                                       "Invalid octet counts; each closes its connection", source);
  auto discarded = [&](const char* reason) {
    return &registry.counter("vigil_source_discarded_bytes_total",
                             "Bytes read from a connection and never framed, by reason",
                             {{"reason", reason}, {"source", source_name}});
  };
  c.discarded_bytes_rejected = discarded("rejected_connection");
  c.discarded_bytes_framing = discarded("framing_error");
  return c;
}

bool validateSourceLimits(const std::string& name, size_t max_message_bytes, size_t ring_capacity,
                          std::string& error) {
  if (name.empty()) {
    error = "source name is empty; give every source a unique name";
    return false;
  }
  if (max_message_bytes < kMinMessageBytes || max_message_bytes > kMaxMessageBytesLimit) {
    error = "source " + name + ": max_message_bytes=" + std::to_string(max_message_bytes) +
            " is outside [" + std::to_string(kMinMessageBytes) + ", " +
            std::to_string(kMaxMessageBytesLimit) + "]";
    return false;
  }
  if (ring_capacity < 1 || ring_capacity > kMaxRingCapacity) {
    error = "source " + name + ": ring_capacity=" + std::to_string(ring_capacity) +
            " is outside [1, " + std::to_string(kMaxRingCapacity) + "]";
    return false;
  }
  return true;
}

bool waitForFreeSlot(RawRing& ring, int64_t deadline_ns) {
  while (ring.freeSlots() == 0) {
    if (monotonicNs() >= deadline_ns) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

std::unique_ptr<RawRing> makeRawRing(size_t capacity, size_t max_message_bytes) {
  const size_t buffer_bytes = eventArenaBytes(max_message_bytes);
  return std::make_unique<RawRing>(capacity, [max_message_bytes, buffer_bytes] {
    return std::make_unique<RawMessage>(max_message_bytes, buffer_bytes);
  });
}

void moveToEvent(RawMessage& message, Event& event) {
  if (message.external != nullptr || message.buffer_bytes != event.arena.capacity()) {
    event.raw = event.arena.copy(message.view());
    return;
  }
  event.raw = event.arena.adopt(message.data, message.len);
  // The source wrote the message up to a ring's length of messages ago, so its bytes are
  // usually out of the cache by now. A copy would stream them in; without one, the
  // parser's first reads would each wait for memory. Prefetching the first lines now
  // overlaps those misses with the rest of the batch.
  const size_t prefetch_bytes = std::min<size_t>(event.raw.size(), kPrefetchBytes);
  for (size_t offset = 0; offset < prefetch_bytes; offset += 64) {
    __builtin_prefetch(event.raw.data() + offset);
  }
}

}  // namespace vigil::dataplane

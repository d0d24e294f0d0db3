// Sources hand framed messages to the pipeline. Each source runs its own thread and owns
// one single-producer ring of RawMessage slots; the pipeline's input stage is the only
// consumer. Slot buffers are allocated once and reused, or traded with event arenas.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/event.h"
#include "common/ip.h"
#include "common/metrics.h"
#include "common/spsc_ring.h"

namespace vigil::dataplane {

enum class Format : uint8_t { kAuto, kRfc3164, kRfc5424, kJson, kCef, kLeef };

// Bytes an event arena needs for messages of up to `max_message_bytes`: the raw bytes,
// as much again for decoded values, and `headroom_bytes` (see PipelineOptions).
inline constexpr size_t kDefaultArenaHeadroomBytes = 4096;
constexpr size_t eventArenaBytes(size_t max_message_bytes,
                                 size_t headroom_bytes = kDefaultArenaHeadroomBytes) {
  return 2 * max_message_bytes + headroom_bytes;
}

struct RawMessage {
  // The buffer is left uninitialized, so the pages of a large ring are only touched (and
  // resident) once messages fill them; make_unique<char[]> would zero every byte up front.
  // `allocated_bytes` (at least `capacity_bytes`) is the size allocated: makeRawRing() sizes
  // it as an event arena, so the consumer can trade the buffer instead of copying it
  // (moveToEvent()).
  RawMessage(size_t capacity_bytes, size_t allocated_bytes)
      : data(new char[std::max(capacity_bytes, allocated_bytes)]),
        capacity(capacity_bytes),
        buffer_bytes(std::max(capacity_bytes, allocated_bytes)) {}
  explicit RawMessage(size_t capacity_bytes) : RawMessage(capacity_bytes, capacity_bytes) {}

  std::unique_ptr<char[]> data;
  size_t capacity;       // the longest message the slot takes; longer ones are cut
  size_t buffer_bytes;   // the size of `data`, the same for every slot of a ring
  size_t len = 0;
  bool truncated = false;    // the frame was longer than capacity; the rest was discarded
  int64_t receive_ns = 0;    // when the source read it (or the replay's receive stamp)
  std::optional<IpAddr> peer;
  uint16_t source_id = 0;
  uint16_t vlan = 0;  // innermost 802.1Q VLAN id of the frame (DPDK only); 0 = untagged
  // Set when the message's bytes are not in `data` but in a buffer the producer owns (the
  // file source's read blocks). The producer keeps them unchanged until the consumer
  // has popped the slot. Producers that fill `data` leave it null.
  const char* external = nullptr;

  std::string_view view() const { return {external != nullptr ? external : data.get(), len}; }
};

using RawRing = SpscRing<RawMessage>;

// Base of every source (file replay, UDP, TCP, DPDK). Control-plane object: start() and
// stop() are called from the daemon thread; the source's own thread fills ring().
class Source {
 public:
  virtual ~Source() = default;

  // Opens sockets/files and starts the source thread. Returns false with `error` set
  // when the source cannot start (port in use, file missing).
  virtual bool start(std::string& error) = 0;
  // Asks the source thread to stop reading new input and returns without waiting for it.
  // The next stop() may then wait until `drain_deadline_ns` (monotonicNs()) for ring slots
  // for the messages it still frames from what was already received (socket buffers,
  // partial frames), instead of counting them as dropped{reason=shutdown} at once. The
  // daemon calls it on every source before it stops the first one. Sources that hold
  // nothing outside their ring keep this default, which does nothing.
  virtual void beginStop(int64_t drain_deadline_ns) { (void)drain_deadline_ns; }
  // Asks the thread to stop and joins it. Messages already in the ring stay there.
  virtual void stop() = 0;
  // True once a finite source (file replay) has published its last message.
  virtual bool finished() const = 0;

  virtual const std::string& name() const = 0;
  virtual uint16_t id() const = 0;
  virtual Format format() const = 0;
  virtual const std::string& tenant() const = 0;
  virtual RawRing& ring() = 0;
};

// The counters every kernel source keeps, labelled {source=NAME}. Each message offered to
// a source ends in exactly one of `received` or a `dropped_*` counter, except that a TCP
// stream with an invalid octet count ends in `framing_errors` and is closed. The bytes
// such a stream still had, and those a connection over max_connections sent before it
// was closed, are counted in `discarded_bytes_*`.
struct SourceCounters {
  Counter* received = nullptr;            // vigil_source_received_total: frames published
  Counter* bytes = nullptr;               // vigil_source_bytes_total: bytes published
  Counter* truncated = nullptr;           // vigil_source_truncated_total: published, cut
  Counter* dropped_queue_full = nullptr;  // vigil_source_dropped_total{reason=queue_full}
  Counter* dropped_empty = nullptr;       // {reason=empty}: empty lines skipped
  Counter* dropped_kernel = nullptr;      // {reason=kernel}: socket buffer overflow
  // {reason=shutdown}: no ring slot at stop(), after the wait that beginStop() allows
  Counter* dropped_shutdown = nullptr;
  Counter* framing_errors = nullptr;      // vigil_source_framing_errors_total
  // vigil_source_discarded_bytes_total: bytes read from a connection and never framed.
  Counter* discarded_bytes_rejected = nullptr;  // {reason=rejected_connection}
  Counter* discarded_bytes_framing = nullptr;   // {reason=framing_error}
};

// Registers (or finds) the counters above for `source_name`. Control plane only; the
// counters live as long as `registry`.
SourceCounters registerSourceCounters(MetricsRegistry& registry, const std::string& source_name);

// Bounds on the options every kernel source shares.
inline constexpr size_t kMinMessageBytes = 16;
inline constexpr size_t kMaxMessageBytesLimit = 16 * 1024 * 1024;
inline constexpr size_t kMaxRingCapacity = size_t{1} << 20;

// Checks the options every kernel source shares: a non-empty name, max_message_bytes in
// [kMinMessageBytes, kMaxMessageBytesLimit] and ring_capacity in [1, kMaxRingCapacity].
// Returns false with `error` naming the source, the bad value and the accepted range.
// NOTE: the ring takes ring_capacity * max_message_bytes bytes, and no limit applies to
// that product.
bool validateSourceLimits(const std::string& name, size_t max_message_bytes, size_t ring_capacity,
                          std::string& error);

// Producer side, at stop(): waits until `ring` has a free slot or monotonicNs() reaches
// `deadline_ns`, polling every millisecond because the consumer does not signal freed
// slots. Returns whether a slot is free. A deadline in the past only checks once.
bool waitForFreeSlot(RawRing& ring, int64_t deadline_ns);

// Returns the ring a source owns: `capacity` slots (rounded up to a power of two) that
// take messages of up to `max_message_bytes`, each with a buffer of
// eventArenaBytes(max_message_bytes), all allocated here. Only the pages that messages
// and decoded values fill become resident.
std::unique_ptr<RawRing> makeRawRing(size_t capacity, size_t max_message_bytes);

// Makes `message` the raw text of `event`, which the caller has reset. When the message
// is in the slot's own buffer and that buffer is as large as the event's arena, the two
// trade buffers: the event's arena then starts with the message and the slot gets the
// arena's old buffer, so the message is not copied. Otherwise (a view of the producer's
// buffer, or buffers of another size) the message is copied into the arena. Sets event.raw only; the caller
// copies the other RawMessage members and then pops the slot. Never allocates.
void moveToEvent(RawMessage& message, Event& event);

}  // namespace vigil::dataplane

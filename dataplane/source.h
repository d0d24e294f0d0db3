// Sources hand framed messages to the pipeline. Each source runs its own thread and owns
// one single-producer ring of RawMessage slots; the pipeline's input stage is the only
// consumer. A slot's buffer is allocated once (max_message_bytes) and reused.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/ip.h"
#include "common/spsc_ring.h"

namespace vigil::dataplane {

enum class Format : uint8_t { kAuto, kRfc3164, kRfc5424, kJson };

struct RawMessage {
  explicit RawMessage(size_t capacity_bytes)
      : data(std::make_unique<char[]>(capacity_bytes)), capacity(capacity_bytes) {}

  std::unique_ptr<char[]> data;
  size_t capacity;
  size_t len = 0;
  bool truncated = false;    // the frame was longer than capacity; the rest was discarded
  int64_t receive_ns = 0;    // when the source read it (or the replay's receive stamp)
  std::optional<IpAddr> peer;
  uint16_t source_id = 0;

  std::string_view view() const { return {data.get(), len}; }
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

}  // namespace vigil::dataplane

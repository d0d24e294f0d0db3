#include "dataplane/internal/stream_buffer.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/log.h"
#include "dataplane/internal/socket_util.h"

namespace vigil::dataplane::internal {
namespace {

void publish(RawMessage& slot, const Frame& frame, const StreamBuffer& stream, RawRing& ring,
             const SourceCounters& counters, uint16_t source_id) {
  std::memcpy(slot.data.get(), frame.data.data(), frame.data.size());
  slot.len = frame.data.size();
  slot.truncated = frame.truncated;
  slot.receive_ns = stream.receive_ns;
  slot.peer = stream.peer;
  slot.source_id = source_id;
  ring.publish();
  counters.received->add();
  counters.bytes->add(slot.len);
  if (frame.truncated) counters.truncated->add();
}

void publishOrDrop(const Frame& frame, const StreamBuffer& stream, RawRing& ring,
                   const SourceCounters& counters, uint16_t source_id) {
  if (RawMessage* slot = ring.tryClaim()) {
    publish(*slot, frame, stream, ring, counters, source_id);
  } else {
    counters.dropped_shutdown->add();
  }
}

}  // namespace

StreamStep frameBuffered(StreamBuffer& stream, RawRing& ring, const SourceCounters& counters,
                         uint16_t source_id) {
  while (stream.begin < stream.end) {
    // A slot is claimed first, so a frame is only cut from the buffer when it can be kept.
    RawMessage* slot = ring.tryClaim();
    if (slot == nullptr) return StreamStep::kRingFull;
    Frame frame;
    FeedResult r = stream.framer.feed(stream.unframed(), frame);
    stream.begin += r.consumed;
    if (r.status == FrameStatus::kFrame) {
      publish(*slot, frame, stream, ring, counters, source_id);
    } else if (r.status == FrameStatus::kEmpty) {
      counters.dropped_empty->add();
    } else if (r.status == FrameStatus::kError) {
      return StreamStep::kFramingError;
    }
  }
  stream.begin = 0;
  stream.end = 0;
  return StreamStep::kDone;
}

StreamStep finishAtEof(StreamBuffer& stream, RawRing& ring, const SourceCounters& counters,
                       uint16_t source_id) {
  RawMessage* slot = ring.tryClaim();
  if (slot == nullptr) return StreamStep::kRingFull;
  Frame frame;
  FrameStatus status = stream.framer.finish(frame);
  if (status == FrameStatus::kFrame) {
    publish(*slot, frame, stream, ring, counters, source_id);
  } else if (status == FrameStatus::kEmpty) {
    counters.dropped_empty->add();
  } else if (status == FrameStatus::kError) {
    return StreamStep::kFramingError;
  }
  return StreamStep::kDone;
}

namespace {

// Frames the buffered bytes for drainStream(). Returns false after a framing error, which
// it counts.
bool drainBuffered(StreamBuffer& stream, RawRing& ring, const SourceCounters& counters,
                   uint16_t source_id) {
  bool ok = true;
  while (stream.begin < stream.end) {
    Frame frame;
    FeedResult r = stream.framer.feed(stream.unframed(), frame);
    stream.begin += r.consumed;
    if (r.status == FrameStatus::kError) {
      counters.framing_errors->add();
      counters.discarded_bytes_framing->add(stream.framer.errorBytes() + stream.end -
                                            stream.begin);
      ok = false;
      break;
    }
    if (r.status == FrameStatus::kEmpty) counters.dropped_empty->add();
    if (r.status == FrameStatus::kFrame) publishOrDrop(frame, stream, ring, counters, source_id);
  }
  stream.begin = stream.end = 0;
  return ok;
}

}  // namespace

void drainStream(StreamBuffer& stream, RawRing& ring, const SourceCounters& counters,
                 uint16_t source_id, size_t max_read_bytes, const ReadMore& read_more) {
  bool ok = drainBuffered(stream, ring, counters, source_id);
  size_t read_total = 0;
  while (read_total < max_read_bytes) {
    const size_t n =
        read_more(stream.data.get(), std::min(stream.capacity, max_read_bytes - read_total));
    if (n == 0) break;
    read_total += n;
    if (!ok) {
      // The stream cannot be framed after an error, so the rest is only counted.
      counters.discarded_bytes_framing->add(n);
      continue;
    }
    stream.begin = 0;
    stream.end = n;
    ok = drainBuffered(stream, ring, counters, source_id);
  }
  Frame frame;
  FrameStatus status = stream.framer.finish(frame);
  if (status == FrameStatus::kEmpty) counters.dropped_empty->add();
  if (status == FrameStatus::kError) {
    counters.framing_errors->add();
    counters.discarded_bytes_framing->add(stream.framer.errorBytes());
  }
  if (status == FrameStatus::kFrame) publishOrDrop(frame, stream, ring, counters, source_id);
}

void rejectConnection(int fd, const sockaddr_storage& addr, const std::string& source_name,
                      size_t max_connections, Counter& rejected, const SourceCounters& counters,
                      std::atomic<uint64_t>& log_hits) {
  rejected.add();
  if (shouldLogPow2(log_hits)) {
    VIGIL_LOG_WARN("connection rejected, max_connections reached source={} peer={} max={}",
                   source_name, formatSockaddr(addr), max_connections);
  }
  // NOTE: only bytes that arrived before the accept are counted. Bytes the peer sends
  // after the close are refused by the kernel and never reach the source.
  counters.discarded_bytes_rejected->add(discardReadable(fd, kMaxDiscardBytes));
  ::close(fd);
}

}  // namespace vigil::dataplane::internal

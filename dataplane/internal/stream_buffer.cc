#include "dataplane/internal/stream_buffer.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/clock.h"
#include "common/log.h"
#include "dataplane/internal/socket_util.h"

namespace vigil::dataplane::internal {
namespace {

constexpr int64_t kNanosPerMilli = 1'000'000;
constexpr int64_t kAcceptBackoffMinMs = 100;
constexpr int64_t kAcceptBackoffMaxMs = 1000;

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

// Returns a slot of `ring`, waiting for one until `wait_until_ns`, or null at the deadline.
RawMessage* waitForSlot(RawRing& ring, int64_t wait_until_ns) {
  if (RawMessage* slot = ring.tryClaim()) return slot;
  if (!waitForFreeSlot(ring, wait_until_ns)) return nullptr;
  return ring.tryClaim();
}

void publishOrDrop(const Frame& frame, const StreamBuffer& stream, RawRing& ring,
                   const SourceCounters& counters, uint16_t source_id, int64_t wait_until_ns) {
  if (RawMessage* slot = waitForSlot(ring, wait_until_ns)) {
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
                   uint16_t source_id, int64_t wait_until_ns) {
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
    if (r.status == FrameStatus::kFrame) {
      publishOrDrop(frame, stream, ring, counters, source_id, wait_until_ns);
    }
  }
  stream.begin = stream.end = 0;
  return ok;
}

}  // namespace

void drainStream(StreamBuffer& stream, RawRing& ring, const SourceCounters& counters,
                 uint16_t source_id, size_t max_read_bytes, int64_t wait_until_ns,
                 const ReadMore& read_more) {
  bool ok = drainBuffered(stream, ring, counters, source_id, wait_until_ns);
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
    ok = drainBuffered(stream, ring, counters, source_id, wait_until_ns);
  }
  Frame frame;
  FrameStatus status = stream.framer.finish(frame);
  if (status == FrameStatus::kEmpty) counters.dropped_empty->add();
  if (status == FrameStatus::kError) {
    counters.framing_errors->add();
    counters.discarded_bytes_framing->add(stream.framer.errorBytes());
  }
  if (status == FrameStatus::kFrame) {
    publishOrDrop(frame, stream, ring, counters, source_id, wait_until_ns);
  }
}

void rejectConnection(int fd, const sockaddr_storage& addr, const std::string& source_name,
                      size_t max_connections, Counter& rejected, const SourceCounters& counters,
                      std::atomic<uint64_t>& log_hits) {
  rejected.add();
  if (shouldLogPow2(log_hits)) {
    // Logged on power-of-two counts only, so `total` gives how many were rejected.
    VIGIL_LOG_WARN("connection rejected, max_connections reached source={} peer={} max={} total={}",
                   source_name, formatSockaddr(addr), max_connections, rejected.value());
  }
  // NOTE: only bytes that arrived before the accept are counted. Bytes the peer sends
  // after the close are refused by the kernel and never reach the source.
  counters.discarded_bytes_rejected->add(discardReadable(fd, kMaxDiscardBytes));
  ::close(fd);
}

AcceptBackoff::AcceptBackoff(MetricsRegistry& metrics, const std::string& source_name,
                             void* listen_tag)
    : source_name_(source_name), listen_tag_(listen_tag) {
  auto counter = [&](const char* reason) {
    return &metrics.counter("vigil_source_accept_errors_total",
                            "accept() calls that failed, other than EAGAIN and EINTR",
                            {{"source", source_name}, {"reason", reason}});
  };
  emfile_ = counter("emfile");
  enfile_ = counter("enfile");
  other_ = counter("other");
}

void AcceptBackoff::onError(int err, int epoll_fd, int listen_fd) {
  const bool fd_limit = err == EMFILE || err == ENFILE;
  Counter* counter = other_;
  if (err == EMFILE) counter = emfile_;
  if (err == ENFILE) counter = enfile_;
  counter->add();
  if (fd_limit) {
    backoff_ms_ = backoff_ms_ == 0 ? kAcceptBackoffMinMs
                                   : std::min(backoff_ms_ * 2, kAcceptBackoffMaxMs);
    resume_ns_ = monotonicNs() + backoff_ms_ * kNanosPerMilli;
    if (!paused_) {
      ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, listen_fd, nullptr);
      paused_ = true;
    }
  }
  if (shouldLogPow2(log_hits_)) {
    VIGIL_LOG_ERROR("accept failed source={} error=\"{}\" retry_in_ms={} total={}", source_name_,
                    logText(errnoText(err)), fd_limit ? backoff_ms_ : 0, counter->value());
  }
}

int AcceptBackoff::clampTimeout(int timeout_ms) const {
  if (!paused_) return timeout_ms;
  const int64_t wait_ms = (resume_ns_ - monotonicNs()) / kNanosPerMilli + 1;
  return static_cast<int>(std::clamp<int64_t>(wait_ms, 0, timeout_ms));
}

void AcceptBackoff::resumeIfDue(int epoll_fd, int listen_fd) {
  if (!paused_) return;
  const int64_t now_ns = monotonicNs();
  if (now_ns < resume_ns_) return;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = listen_tag_;
  if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev) != 0) {
    if (shouldLogPow2(log_hits_)) {
      VIGIL_LOG_ERROR("epoll_ctl failed for the listener source={} error=\"{}\"", source_name_,
                      logText(errnoText(errno)));
    }
    resume_ns_ = now_ns + kAcceptBackoffMaxMs * kNanosPerMilli;
    return;
  }
  paused_ = false;
}

}  // namespace vigil::dataplane::internal

// Framing shared by the stream sources (TcpSource, TlsSource): the bytes a connection has
// read but not yet framed, and the steps that turn them into ring messages. StreamServer
// (stream_server.h) calls these steps from its epoll loop.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/ip.h"
#include "dataplane/framing.h"
#include "dataplane/source.h"

namespace vigil::dataplane::internal {

// Upper bound on the bytes read from a connection that is being closed, so one closing
// peer cannot hold the source thread.
inline constexpr size_t kMaxDiscardBytes = 1 << 20;

// One connection's read buffer and framer. Allocated once per connection.
struct StreamBuffer {
  StreamBuffer(const FramingOptions& framing, size_t capacity_bytes, std::optional<IpAddr> from)
      : framer(framing),
        data(std::make_unique<char[]>(capacity_bytes)),
        capacity(capacity_bytes),
        peer(from) {}

  std::string_view unframed() const { return {data.get() + begin, end - begin}; }

  Framer framer;
  std::unique_ptr<char[]> data;
  size_t capacity;
  size_t begin = 0;  // bytes [begin, end) of `data` are read but not yet framed
  size_t end = 0;
  std::optional<IpAddr> peer;
  int64_t receive_ns = 0;  // wall clock of the last read, stamped on its messages
};

// How far a framing step got.
enum class StreamStep : uint8_t {
  kDone,          // every byte was framed (or the final frame published)
  kRingFull,      // stopped because the ring is full; nothing was lost, call again later
  kFramingError,  // the framer failed; the caller counts it and closes the connection
};

// Publishes the frames in `stream`'s unframed bytes to `ring`, counting empty frames as
// dropped{reason=empty}. On kFramingError the bytes after the error stay in the buffer.
StreamStep frameBuffered(StreamBuffer& stream, RawRing& ring, const SourceCounters& counters,
                         uint16_t source_id);

// Publishes the frame still held by the framer when the peer closed the stream.
StreamStep finishAtEof(StreamBuffer& stream, RawRing& ring, const SourceCounters& counters,
                       uint16_t source_id);

// Reads bytes a closing connection still has (the socket's receive queue, or decrypted TLS
// records) into `buffer`. Returns the count, or 0 when nothing more is readable now.
using ReadMore = std::function<size_t(char* buffer, size_t capacity)>;

// Frames every byte still held at stop() or idle close, then up to `max_read_bytes` more
// from `read_more`, publishing each message when the ring has room. A message that finds
// the ring full waits for a slot until `wait_until_ns` (monotonicNs(); 0 waits not at all)
// and is then counted as dropped{reason=shutdown}. A framing error is counted in
// framing_errors, and the bad octet count and every byte after it (up to the same bound)
// in discarded_bytes_framing.
void drainStream(StreamBuffer& stream, RawRing& ring, const SourceCounters& counters,
                 uint16_t source_id, size_t max_read_bytes, int64_t wait_until_ns,
                 const ReadMore& read_more);

// Closes `fd`, a connection accepted over max_connections. Counts it in `rejected`, counts
// the bytes it had already sent in discarded_bytes_rejected, and logs on power-of-two
// counts of `log_hits`.
void rejectConnection(int fd, const sockaddr_storage& addr, const std::string& source_name,
                      size_t max_connections, Counter& rejected, const SourceCounters& counters,
                      std::atomic<uint64_t>& log_hits);

// Accept back-off at the descriptor limit for the stream sources' listeners. When accept()
// fails with EMFILE or ENFILE the listener stays readable, so it leaves epoll for 100 ms,
// doubling to 1 s while the failures last. New connections wait in the kernel's backlog
// meanwhile. Counts vigil_source_accept_errors_total{source,reason=emfile|enfile|other}.
// Used by the source's epoll thread only.
class AcceptBackoff {
 public:
  // Registers the counters. `listen_tag` is the listener's epoll_event.data.ptr.
  AcceptBackoff(MetricsRegistry& metrics, const std::string& source_name, void* listen_tag);

  // Counts a failed accept() with errno `err` and logs it at power-of-two counts. At the
  // descriptor limit it removes `listen_fd` from `epoll_fd` for the back-off.
  void onError(int err, int epoll_fd, int listen_fd);
  // Resets the back-off after a successful accept().
  void onAccepted() { backoff_ms_ = 0; }
  // Returns `timeout_ms`, shortened so epoll_wait() returns when the back-off ends.
  int clampTimeout(int timeout_ms) const;
  // Watches `listen_fd` again once the back-off has passed.
  void resumeIfDue(int epoll_fd, int listen_fd);

 private:
  std::string source_name_;
  void* listen_tag_;
  Counter* emfile_;
  Counter* enfile_;
  Counter* other_;
  bool paused_ = false;
  int64_t backoff_ms_ = 0;
  int64_t resume_ns_ = 0;  // monotonic
  std::atomic<uint64_t> log_hits_{0};
};

}  // namespace vigil::dataplane::internal

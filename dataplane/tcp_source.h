// A Source that accepts syslog over TCP. One thread serves every connection through epoll;
// each connection has its own Framer, so octet-counted and LF-framed senders can share
// one listener. TCP is never dropped: when the ring is full the source stops reading
// from the sockets that have data waiting until the consumer frees slots, and the
// senders are slowed down by TCP flow control.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/metrics.h"
#include "dataplane/framing.h"
#include "dataplane/source.h"

namespace vigil::dataplane {
namespace internal {
class StreamServer;
struct SocketAddress;
}  // namespace internal

struct TcpSourceOptions {
  std::string name = "tcp0";  // `source` label of every metric, and the name in logs
  uint16_t id = 0;            // RawMessage::source_id
  std::string tenant;
  Format format = Format::kAuto;
  // IPV4:PORT or [IPV6]:PORT, numeric only. Port 0 binds an ephemeral port (boundPort()).
  std::string listen = "127.0.0.1:514";
  // Per-connection limit: a longer frame is cut to this size and flagged truncated, and
  // the rest of that frame is discarded.
  size_t max_message_bytes = kDefaultMaxMessageBytes;
  size_t ring_capacity = 1024;  // RawMessage slots, rounded up to a power of two
  // kAuto picks the framing per connection from its first byte.
  FramingMode framing = FramingMode::kAuto;
  bool nul_terminates = false;  // LF framing: NUL also ends a message
  // An octet count above this is a framing error that closes the connection.
  size_t max_octet_count = kDefaultMaxOctetCount;
  size_t max_connections = 256;      // further connections are accepted and closed at once
  int64_t idle_timeout_ms = 300000;  // close a connection silent this long; 0 disables
  size_t read_buffer_bytes = 16384;  // per-connection read() buffer
  int rcvbuf_bytes = 0;              // SO_RCVBUF per connection; 0 keeps the kernel default
};

// Counters: the shared SourceCounters (framing_errors counts invalid octet counts, each of
// which closes its connection) plus vigil_source_connections_accepted_total,
// _rejected_total (over max_connections), _idle_closed_total, _closed_total, the
// gauge vigil_source_connections_active, and vigil_source_accept_errors_total{reason}
// (emfile, enfile, other). At the descriptor limit (EMFILE, ENFILE) the listener is left
// unwatched for a back-off of 100 ms doubling to 1 s, and connections wait in the backlog.
// At stop() the bytes still buffered and those waiting in each socket (up to its SO_RCVBUF
// size) are framed, and each message is published when the ring has room. A message that
// finds the ring full waits for a slot until the deadline that beginStop() set, and is
// then counted as dropped{reason=shutdown}.
//
// Memory: each connection allocates read_buffer_bytes + max_message_bytes when it is
// accepted; nothing is allocated per message.
//
// Threads: start() and stop() from one control thread; the epoll thread is the ring's
// only producer.
class TcpSource final : public Source {
 public:
  // Validates `options` and allocates the ring. Returns nullptr with `error` naming the
  // bad value. `metrics` and `clock` must outlive the source. Does not open the socket.
  static std::unique_ptr<TcpSource> create(TcpSourceOptions options, MetricsRegistry& metrics,
                                           std::string& error,
                                           Clock& clock = RealClock::instance());
  ~TcpSource() override;

  // Binds and listens, then starts the epoll thread. Fails with the address and the errno
  // text, or when the source already ran.
  bool start(std::string& error) override;
  // Stops the thread, frames the bytes still buffered per connection, closes every
  // connection and the listener.
  void beginStop(int64_t drain_deadline_ns) override;
  void stop() override;
  bool finished() const override { return false; }

  const std::string& name() const override { return options_.name; }
  uint16_t id() const override { return options_.id; }
  Format format() const override { return options_.format; }
  const std::string& tenant() const override { return options_.tenant; }
  RawRing& ring() override;

  // The bound port after a successful start(), else 0.
  uint16_t boundPort() const;
  const SourceCounters& counters() const;

 private:
  TcpSource(TcpSourceOptions options, const internal::SocketAddress& addr,
            MetricsRegistry& metrics, Clock& clock);

  TcpSourceOptions options_;
  // The listener, the epoll thread, the connections and the ring.
  std::unique_ptr<internal::StreamServer> server_;
};

}  // namespace vigil::dataplane

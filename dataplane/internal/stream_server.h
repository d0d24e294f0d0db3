// The connection handling shared by the stream sources (TcpSource, TlsSource): the
// listener, the epoll loop, the max_connections limit, per-connection framing, pausing
// connections while the ring is full, the idle timeout, the drain at stop() and the
// connection counters and logs. StreamServer reads plain TCP sockets. TlsSource derives
// from it and overrides the hooks for its handshake and for SSL_read() and SSL_shutdown().
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "dataplane/framing.h"
#include "dataplane/internal/socket_util.h"
#include "dataplane/internal/stream_buffer.h"
#include "dataplane/source.h"

namespace vigil::dataplane::internal {

// The options TcpSourceOptions and TlsSourceOptions have in common.
struct StreamSettings {
  std::string name;
  uint16_t id = 0;
  std::string listen;
  size_t max_message_bytes = 0;
  size_t ring_capacity = 0;
  FramingOptions framing;
  size_t max_connections = 0;
  int64_t idle_timeout_ms = 0;
  size_t read_buffer_bytes = 0;
  int rcvbuf_bytes = 0;
};

// Copies the shared fields of a TcpSourceOptions or TlsSourceOptions.
template <typename Options>
StreamSettings streamSettings(const Options& options) {
  StreamSettings settings;
  settings.name = options.name;
  settings.id = options.id;
  settings.listen = options.listen;
  settings.max_message_bytes = options.max_message_bytes;
  settings.ring_capacity = options.ring_capacity;
  settings.framing.mode = options.framing;
  settings.framing.max_message_bytes = options.max_message_bytes;
  settings.framing.max_octet_count = options.max_octet_count;
  settings.framing.nul_terminates = options.nul_terminates;
  settings.max_connections = options.max_connections;
  settings.idle_timeout_ms = options.idle_timeout_ms;
  settings.read_buffer_bytes = options.read_buffer_bytes;
  settings.rcvbuf_bytes = options.rcvbuf_bytes;
  return settings;
}

// Upper bound for checkStreamSettings() that leaves read_buffer_bytes without a maximum.
inline constexpr size_t kNoReadBufferMax = SIZE_MAX;

// Checks the shared limits: those of validateSourceLimits(), max_octet_count,
// max_connections, idle_timeout_ms, read_buffer_bytes (at least 512, at most
// `max_read_buffer_bytes`) and rcvbuf_bytes. Returns false with `error` naming the value.
bool checkStreamSettings(const StreamSettings& settings, size_t max_read_buffer_bytes,
                         std::string& error);

// One accepted connection: its socket, framing state and place in the epoll loop.
struct StreamConnection {
  StreamConnection(int socket_fd, const sockaddr_storage& addr, const FramingOptions& framing,
                   size_t buffer_bytes);
  virtual ~StreamConnection() = default;
  StreamConnection(const StreamConnection&) = delete;
  StreamConnection& operator=(const StreamConnection&) = delete;

  int fd;
  std::string peer_text;          // "ADDR:PORT" for logs
  StreamBuffer stream;            // bytes read (decrypted under TLS) and their framer
  int64_t accepted_ns = 0;        // monotonic; the handshake deadline counts from here
  int64_t last_activity_ns = 0;   // monotonic
  bool handshaking = false;       // set by a transport that must finish a handshake first
  bool want_write = false;        // the transport waits for the socket to become writable
  bool paused = false;            // out of epoll until the ring has room
  bool ready = false;             // listed in ready_
  bool eof = false;               // the peer closed; buffered bytes are still to be framed
  bool closed = false;
};

// The result of one read from a connection.
enum class ReadStatus : uint8_t {
  kData,        // bytes were read into the connection's buffer
  kWouldBlock,  // nothing to read now; epoll reports the socket again (or it was closed)
  kRetry,       // interrupted; read again
  kEnd,         // end of stream or an error: frame what is buffered, then close
};

// The listener and epoll thread of a stream source. The public methods are called from
// one control thread. The epoll thread is the ring's only producer.
class StreamServer {
 public:
  // Registers the connection counters and allocates the ring. `metrics` and `clock` must
  // outlive the server. Nothing is opened yet.
  StreamServer(StreamSettings settings, const SocketAddress& listen_addr,
               MetricsRegistry& metrics, Clock& clock);
  // Stops the thread. A subclass that overrides the close hooks stops it in its own
  // destructor, because the base destructor cannot call them.
  virtual ~StreamServer();
  StreamServer(const StreamServer&) = delete;
  StreamServer& operator=(const StreamServer&) = delete;

  // Binds and listens, and creates the epoll and wake descriptors. Fails with the address
  // and the errno text, or when the server already ran.
  bool open(std::string& error);
  // Starts the epoll thread after a successful open().
  void startThread();
  // Asks the epoll thread to stop reading and returns at once; stop() waits for ring slots
  // for what it drains until `drain_deadline_ns` (see Source::beginStop()).
  void beginStop(int64_t drain_deadline_ns);
  // Stops the thread, frames the bytes still buffered per connection, closes every
  // connection and the listener. Returns false when the thread was not running.
  bool stop();

  RawRing& ring() { return *ring_; }
  const SourceCounters& counters() const { return counters_; }
  uint16_t boundPort() const { return bound_port_; }
  uint64_t acceptedCount() const { return accepted_->value(); }
  uint64_t rejectedCount() const { return rejected_->value(); }

 protected:
  // Transport hooks, all called on the epoll thread (and from stop() after it ended). The
  // defaults serve plain TCP.

  // Creates the connection for accepted socket `fd`. Returns nullptr, after logging why,
  // when it cannot be served. The caller then closes `fd`.
  virtual std::unique_ptr<StreamConnection> makeConnection(int fd, const sockaddr_storage& addr);
  // Advances the handshake of a connection that has `handshaking` set.
  virtual void continueHandshake(StreamConnection& conn);
  // Closes a connection whose handshake did not finish within idle_timeout_ms.
  virtual void onHandshakeTimeout(StreamConnection& conn);
  // Reads into conn.stream.data, up to conn.stream.capacity bytes, and sets `bytes` on kData.
  virtual ReadStatus readSome(StreamConnection& conn, size_t& bytes);
  // True when the transport has buffered input that epoll will not report.
  virtual bool hasBufferedInput(StreamConnection& conn);
  // Counts the bytes after a framing error that will never be framed, beyond the buffer.
  virtual size_t discardAfterFramingError(StreamConnection& conn);
  // Reads what a closing connection still has into `buffer`. Returns 0 when nothing more.
  virtual size_t readOnClose(StreamConnection& conn, char* buffer, size_t capacity);
  // Runs before the socket of `conn` is closed.
  virtual void beforeClose(StreamConnection& conn);

  // Adds (EPOLL_CTL_ADD) or modifies (EPOLL_CTL_MOD) the registration of `conn`: readable,
  // plus writable while `want_write` is set. Logs and returns false when epoll_ctl fails.
  bool watch(StreamConnection& conn, int op);
  // Frames what is buffered and reads until the socket would block or the read budget ends.
  void onReadable(StreamConnection& conn);
  void closeConnection(StreamConnection& conn);

  const StreamSettings& settings() const { return settings_; }
  Counter& idleClosed() { return *idle_closed_; }
  std::atomic<uint64_t>& errorLogs() { return error_logs_; }

 private:
  void run();
  void acceptConnections();
  bool handleStep(StreamConnection& conn, StreamStep step);
  bool processBuffered(StreamConnection& conn);
  bool flushAtEof(StreamConnection& conn);
  void onFramingError(StreamConnection& conn);
  void pause(StreamConnection& conn);
  void resumePaused();
  void serveReady();
  void closeIdle(int64_t now_ns);
  void removeClosed();
  // `wait_until_ns` as in drainStream(): the drain deadline at stop(), 0 at an idle close.
  void drainOnStop(StreamConnection& conn, int64_t wait_until_ns);

  StreamSettings settings_;
  SocketAddress listen_addr_;
  Clock& clock_;
  SourceCounters counters_;
  Counter* accepted_;
  Counter* rejected_;
  Counter* idle_closed_;
  Counter* closed_;
  Gauge* active_;
  std::unique_ptr<RawRing> ring_;
  std::unique_ptr<AcceptBackoff> accept_backoff_;

  std::vector<std::unique_ptr<StreamConnection>> connections_;
  std::vector<StreamConnection*> paused_;  // removed from epoll until the ring has room
  std::vector<StreamConnection*> resume_scratch_;
  // Connections with input left inside the transport (decrypted TLS records) after their
  // read budget. The socket may not become readable again for them, so the loop serves
  // them without waiting for epoll.
  std::vector<StreamConnection*> ready_;
  std::vector<StreamConnection*> ready_scratch_;
  bool any_closed_ = false;

  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd that stop() writes to end epoll_wait()
  uint16_t bound_port_ = 0;
  bool started_ = false;
  std::atomic<bool> stop_{false};
  int64_t drain_deadline_ns_ = 0;  // set by beginStop(), read by stop() on the same thread
  std::atomic<uint64_t> framing_error_logs_{0};
  std::atomic<uint64_t> error_logs_{0};
  std::thread thread_;
};

}  // namespace vigil::dataplane::internal

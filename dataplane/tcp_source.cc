#include "dataplane/tcp_source.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "common/log.h"
#include "dataplane/internal/socket_util.h"
#include "dataplane/internal/stream_buffer.h"

namespace vigil::dataplane {
namespace {

constexpr int kMaxEvents = 64;
constexpr int kListenBacklog = 128;
constexpr int kIdlePollMs = 100;
// While a connection waits for ring space the loop polls this often for freed slots.
constexpr int kPausedPollMs = 1;
// read() calls per readiness report before the loop serves other connections.
constexpr int kReadsPerWake = 8;
constexpr size_t kMinReadBuffer = 512;
constexpr int64_t kNanosPerMilli = 1'000'000;

}  // namespace

struct TcpSource::Connection {
  Connection(int socket_fd, const sockaddr_storage& addr, const FramingOptions& framing,
             size_t buffer_bytes)
      : fd(socket_fd),
        peer_text(internal::formatSockaddr(addr)),
        stream(framing, buffer_bytes, internal::ipFromSockaddr(addr)) {}

  int fd;
  std::string peer_text;  // "ADDR:PORT" for logs
  internal::StreamBuffer stream;
  int64_t last_activity_ns = 0;  // monotonic
  bool paused = false;           // out of epoll until the ring has room
  bool eof = false;              // the peer closed; buffered bytes are still to be framed
  bool closed = false;
};

std::unique_ptr<TcpSource> TcpSource::create(TcpSourceOptions options, MetricsRegistry& metrics,
                                             std::string& error, Clock& clock) {
  if (!validateSourceLimits(options.name, options.max_message_bytes, options.ring_capacity,
                            error)) {
    return nullptr;
  }
  const std::string prefix = "source " + options.name + ": ";
  if (options.max_octet_count < options.max_message_bytes || options.max_octet_count > 999999999) {
    error = prefix + "max_octet_count=" + std::to_string(options.max_octet_count) +
            " is outside [max_message_bytes=" + std::to_string(options.max_message_bytes) +
            ", 999999999]";
    return nullptr;
  }
  if (options.max_connections < 1) {
    error = prefix + "max_connections=0; allow at least 1 connection";
    return nullptr;
  }
  if (options.idle_timeout_ms < 0) {
    error = prefix + "idle_timeout_ms=" + std::to_string(options.idle_timeout_ms) +
            " is negative; use 0 to disable the idle timeout";
    return nullptr;
  }
  if (options.read_buffer_bytes < kMinReadBuffer) {
    error = prefix + "read_buffer_bytes=" + std::to_string(options.read_buffer_bytes) +
            " is below " + std::to_string(kMinReadBuffer);
    return nullptr;
  }
  if (options.rcvbuf_bytes < 0) {
    error = prefix + "rcvbuf_bytes=" + std::to_string(options.rcvbuf_bytes) +
            " is negative; use 0 for the kernel default";
    return nullptr;
  }
  auto addr = internal::parseListenAddress(options.listen, error);
  if (!addr) {
    error = prefix + error;
    return nullptr;
  }
  return std::unique_ptr<TcpSource>(
      new TcpSource(std::move(options), addr->storage, addr->len, metrics, clock));
}

TcpSource::TcpSource(TcpSourceOptions options, const sockaddr_storage& addr, socklen_t addr_len,
                     MetricsRegistry& metrics, Clock& clock)
    : options_(std::move(options)),
      listen_addr_(addr),
      listen_addr_len_(addr_len),
      clock_(clock),
      counters_(registerSourceCounters(metrics, options_.name)),
      ring_(makeRawRing(options_.ring_capacity, options_.max_message_bytes)) {
  const Labels labels{{"source", options_.name}};
  accepted_ = &metrics.counter("vigil_source_connections_accepted_total",
                               "TCP connections accepted and served", labels);
  rejected_ = &metrics.counter("vigil_source_connections_rejected_total",
                               "TCP connections closed at once because of max_connections", labels);
  idle_closed_ = &metrics.counter("vigil_source_connections_idle_closed_total",
                                  "TCP connections closed after the idle timeout", labels);
  closed_ = &metrics.counter("vigil_source_connections_closed_total",
                             "Served TCP connections that ended, for any reason", labels);
  active_ = &metrics.gauge("vigil_source_connections_active", "Open TCP connections", labels);
  accept_backoff_ =
      std::make_unique<internal::AcceptBackoff>(metrics, options_.name, &listen_fd_);
  connections_.reserve(options_.max_connections);
  paused_.reserve(options_.max_connections);
  resume_scratch_.reserve(options_.max_connections);
}

TcpSource::~TcpSource() { stop(); }

bool TcpSource::start(std::string& error) {
  if (started_) {
    error = "source " + options_.name + " was already started; create a new source instead";
    return false;
  }
  const std::string prefix = "source " + options_.name + ": ";
  internal::SocketAddress addr;
  addr.storage = listen_addr_;
  addr.len = listen_addr_len_;
  listen_fd_ = internal::bindSocket(addr, SOCK_STREAM, error);
  if (listen_fd_ < 0) {
    error = prefix + error;
    return false;
  }
  auto fail = [&](const std::string& what) {
    error = prefix + what + " failed: " + internal::errnoText(errno);
    for (int* fd : {&listen_fd_, &epoll_fd_, &wake_fd_}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
    return false;
  };
  if (::listen(listen_fd_, kListenBacklog) != 0) return fail("listen() on " + options_.listen);
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return fail("epoll_create1()");
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return fail("eventfd()");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &listen_fd_;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) return fail("epoll_ctl()");
  ev.data.ptr = &wake_fd_;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) return fail("epoll_ctl()");

  bound_port_ = internal::localPort(listen_fd_);
  started_ = true;
  stop_.store(false);
  // Log before the thread starts. The first log call sets up spdlog's registry, and doing
  // that on one thread keeps ThreadSanitizer runs free of reports from inside spdlog.
  VIGIL_LOG_INFO(
      "source started source={} kind=tcp listen={} port={} framing={} ring={} max_message={} "
      "max_connections={}",
      options_.name, options_.listen, bound_port_, framingModeName(options_.framing),
      ring_->capacity(), options_.max_message_bytes, options_.max_connections);
  thread_ = std::thread([this] { run(); });
  return true;
}

void TcpSource::stop() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  thread_.join();
  for (auto& conn : connections_) {
    if (conn->closed) continue;
    drainOnStop(*conn);
    closeConnection(*conn);
  }
  connections_.clear();
  paused_.clear();
  for (int* fd : {&listen_fd_, &epoll_fd_, &wake_fd_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
  VIGIL_LOG_INFO(
      "source stopped source={} received={} framing_errors={} accepted={} rejected={} "
      "dropped_shutdown={}",
      options_.name, counters_.received->value(), counters_.framing_errors->value(),
      accepted_->value(), rejected_->value(), counters_.dropped_shutdown->value());
}

void TcpSource::run() {
  epoll_event events[kMaxEvents];
  int64_t next_idle_check_ns = monotonicNs();
  while (!stop_.load(std::memory_order_relaxed)) {
    int timeout_ms = paused_.empty() ? kIdlePollMs : kPausedPollMs;
    timeout_ms = accept_backoff_->clampTimeout(timeout_ms);
    int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, timeout_ms);
    if (n < 0 && errno != EINTR && shouldLogPow2(error_logs_)) {
      VIGIL_LOG_ERROR("epoll_wait failed source={} error={}", options_.name,
                      internal::errnoText(errno));
    }
    for (int i = 0; i < n; ++i) {
      void* ptr = events[i].data.ptr;
      if (ptr == &listen_fd_) {
        acceptConnections();
      } else if (ptr == &wake_fd_) {
        uint64_t value = 0;
        [[maybe_unused]] ssize_t r = ::read(wake_fd_, &value, sizeof(value));
      } else {
        auto* conn = static_cast<Connection*>(ptr);
        if (!conn->closed && !conn->paused) onReadable(*conn);
      }
    }
    if (!paused_.empty()) resumePaused();
    int64_t now_ns = monotonicNs();
    accept_backoff_->resumeIfDue(epoll_fd_, listen_fd_);
    if (options_.idle_timeout_ms > 0 && now_ns >= next_idle_check_ns) {
      closeIdle(now_ns);
      next_idle_check_ns = now_ns + kIdlePollMs * kNanosPerMilli;
    }
    if (any_closed_) removeClosed();
  }
}

void TcpSource::acceptConnections() {
  FramingOptions framing;
  framing.mode = options_.framing;
  framing.max_message_bytes = options_.max_message_bytes;
  framing.max_octet_count = options_.max_octet_count;
  framing.nul_terminates = options_.nul_terminates;
  while (true) {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      // At the descriptor limit this also takes the listener out of epoll for a back-off.
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        accept_backoff_->onError(errno, epoll_fd_, listen_fd_);
      }
      return;
    }
    accept_backoff_->onAccepted();
    size_t open = connections_.size();
    if (open >= options_.max_connections) {
      internal::rejectConnection(fd, addr, options_.name, options_.max_connections, *rejected_,
                                 counters_, error_logs_);
      continue;
    }
    if (options_.rcvbuf_bytes > 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &options_.rcvbuf_bytes,
                   sizeof(options_.rcvbuf_bytes));
    }
    auto conn = std::make_unique<Connection>(fd, addr, framing, options_.read_buffer_bytes);
    conn->last_activity_ns = monotonicNs();
    if (!watch(*conn)) {
      ::close(fd);
      continue;
    }
    accepted_->add();
    active_->add(1);
    VIGIL_LOG_DEBUG("connection accepted source={} peer={}", options_.name, conn->peer_text);
    connections_.push_back(std::move(conn));
  }
}

bool TcpSource::watch(Connection& conn) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.ptr = &conn;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, conn.fd, &ev) == 0) return true;
  if (shouldLogPow2(error_logs_)) {
    VIGIL_LOG_ERROR("epoll_ctl failed source={} peer={} error={}", options_.name, conn.peer_text,
                    internal::errnoText(errno));
  }
  return false;
}

void TcpSource::onReadable(Connection& conn) {
  for (int reads = 0;; ++reads) {
    if (!processBuffered(conn)) return;
    // Level-triggered epoll reports the socket again if data is left.
    if (reads == kReadsPerWake) return;
    ssize_t n = ::read(conn.fd, conn.stream.data.get(), conn.stream.capacity);
    if (n > 0) {
      conn.stream.begin = 0;
      conn.stream.end = static_cast<size_t>(n);
      conn.last_activity_ns = monotonicNs();
      conn.stream.receive_ns = clock_.nowNs();
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != ECONNRESET && shouldLogPow2(error_logs_)) {
      VIGIL_LOG_WARN("read failed source={} peer={} error={}", options_.name, conn.peer_text,
                     internal::errnoText(errno));
    }
    // End of stream (or a reset): frame what is buffered, then close.
    conn.eof = true;
  }
}

// Frames the buffered bytes into the ring. Returns true when the buffer is empty and the
// connection stays open and readable; false when it was paused or closed.
bool TcpSource::processBuffered(Connection& conn) {
  switch (internal::frameBuffered(conn.stream, *ring_, counters_, options_.id)) {
    case internal::StreamStep::kRingFull:
      pause(conn);
      return false;
    case internal::StreamStep::kFramingError:
      onFramingError(conn);
      return false;
    case internal::StreamStep::kDone:
      break;
  }
  if (conn.eof) return flushAtEof(conn);
  return true;
}

// Publishes the frame still buffered when the peer closed, then closes the connection.
// Returns false: the connection is closed, or paused until a slot frees.
bool TcpSource::flushAtEof(Connection& conn) {
  switch (internal::finishAtEof(conn.stream, *ring_, counters_, options_.id)) {
    case internal::StreamStep::kRingFull:
      pause(conn);
      return false;
    case internal::StreamStep::kFramingError:
      onFramingError(conn);
      return false;
    case internal::StreamStep::kDone:
      break;
  }
  closeConnection(conn);
  return false;
}

void TcpSource::onFramingError(Connection& conn) {
  counters_.framing_errors->add();
  // The bad octet count, the rest of the read buffer and whatever waits in the socket
  // will never be framed.
  const size_t unframed = conn.stream.framer.errorBytes() + conn.stream.end - conn.stream.begin;
  conn.stream.begin = conn.stream.end;
  counters_.discarded_bytes_framing->add(
      unframed + internal::discardReadable(conn.fd, internal::kMaxDiscardBytes));
  // The connection closes right after this, so a connection logs at most once. Across
  // connections the source logs on power-of-two counts only.
  if (shouldLogPow2(framing_error_logs_)) {
    VIGIL_LOG_WARN("framing error, closing connection source={} peer={} error=\"{}\" total={}",
                   options_.name, conn.peer_text, framingErrorText(conn.stream.framer.error()),
                   counters_.framing_errors->value());
  }
  closeConnection(conn);
}

void TcpSource::pause(Connection& conn) {
  if (conn.paused) return;
  // Removing the socket from epoll (instead of clearing EPOLLIN) also silences EPOLLHUP
  // and EPOLLERR, which epoll reports regardless of the event mask.
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, conn.fd, nullptr);
  conn.paused = true;
  paused_.push_back(&conn);
}

void TcpSource::resumePaused() {
  if (ring_->freeSlots() == 0) return;
  resume_scratch_.swap(paused_);
  paused_.clear();
  for (Connection* conn : resume_scratch_) {
    if (conn->closed) continue;
    conn->paused = false;
    // Connections that fill the ring again go back to paused_ inside processBuffered.
    if (processBuffered(*conn) && !watch(*conn)) closeConnection(*conn);
  }
  resume_scratch_.clear();
}

void TcpSource::closeIdle(int64_t now_ns) {
  const int64_t limit_ns = options_.idle_timeout_ms * kNanosPerMilli;
  for (auto& conn : connections_) {
    // A paused connection waits for the consumer, not for its sender.
    if (conn->closed || conn->paused || now_ns - conn->last_activity_ns < limit_ns) continue;
    idle_closed_->add();
    VIGIL_LOG_DEBUG("connection idle, closing source={} peer={}", options_.name, conn->peer_text);
    drainOnStop(*conn);
    closeConnection(*conn);
  }
}

void TcpSource::closeConnection(Connection& conn) {
  if (conn.closed) return;
  if (!conn.paused) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, conn.fd, nullptr);
  ::close(conn.fd);
  conn.closed = true;
  any_closed_ = true;
  closed_->add();
  active_->add(-1);
}

void TcpSource::removeClosed() {
  std::erase_if(paused_, [](const Connection* c) { return c->closed; });
  std::erase_if(connections_, [](const std::unique_ptr<Connection>& c) { return c->closed; });
  any_closed_ = false;
}

// Frames every byte still held for `conn`, then what waits in its socket's receive queue
// (bytes the kernel has already acknowledged), at most one receive buffer's worth.
// Publishes where the ring has room and counts the rest as dropped{reason=shutdown}.
void TcpSource::drainOnStop(Connection& conn) {
  const size_t budget = internal::receiveBufferBytes(conn.fd, internal::kMaxDiscardBytes);
  internal::drainStream(conn.stream, *ring_, counters_, options_.id, budget,
                        [&](char* buffer, size_t capacity) {
                          size_t n = internal::readWaiting(conn.fd, buffer, capacity);
                          if (n > 0) conn.stream.receive_ns = clock_.nowNs();
                          return n;
                        });
}

}  // namespace vigil::dataplane

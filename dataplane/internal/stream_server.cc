#include "dataplane/internal/stream_server.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "common/log.h"
#include "common/thread_name.h"

namespace vigil::dataplane::internal {
namespace {

constexpr int kMaxEvents = 64;
constexpr int kListenBacklog = 128;
constexpr int kIdlePollMs = 100;
// While a connection waits for ring space the loop polls this often for freed slots.
constexpr int kPausedPollMs = 1;
// Reads per readiness report before the loop serves other connections.
constexpr int kReadsPerWake = 8;
constexpr size_t kMinReadBuffer = 512;
constexpr int64_t kNanosPerMilli = 1'000'000;

}  // namespace

bool checkStreamSettings(const StreamSettings& settings, size_t max_read_buffer_bytes,
                         std::string& error) {
  if (!validateSourceLimits(settings.name, settings.max_message_bytes, settings.ring_capacity,
                            error)) {
    return false;
  }
  const std::string prefix = "source " + settings.name + ": ";
  const size_t max_octet_count = settings.framing.max_octet_count;
  if (max_octet_count < settings.max_message_bytes || max_octet_count > 999999999) {
    error = prefix + "max_octet_count=" + std::to_string(max_octet_count) +
            " is outside [max_message_bytes=" + std::to_string(settings.max_message_bytes) +
            ", 999999999]";
    return false;
  }
  if (settings.max_connections < 1) {
    error = prefix + "max_connections=0; allow at least 1 connection";
    return false;
  }
  if (settings.idle_timeout_ms < 0) {
    error = prefix + "idle_timeout_ms=" + std::to_string(settings.idle_timeout_ms) +
            " is negative; use 0 to disable the idle timeout";
    return false;
  }
  if (max_read_buffer_bytes == kNoReadBufferMax && settings.read_buffer_bytes < kMinReadBuffer) {
    error = prefix + "read_buffer_bytes=" + std::to_string(settings.read_buffer_bytes) +
            " is below " + std::to_string(kMinReadBuffer);
    return false;
  }
  if (settings.read_buffer_bytes < kMinReadBuffer ||
      settings.read_buffer_bytes > max_read_buffer_bytes) {
    error = prefix + "read_buffer_bytes=" + std::to_string(settings.read_buffer_bytes) +
            " is outside [" + std::to_string(kMinReadBuffer) + ", " +
            std::to_string(max_read_buffer_bytes) + "]";
    return false;
  }
  if (settings.rcvbuf_bytes < 0) {
    error = prefix + "rcvbuf_bytes=" + std::to_string(settings.rcvbuf_bytes) +
            " is negative; use 0 for the kernel default";
    return false;
  }
  return true;
}

StreamConnection::StreamConnection(int socket_fd, const sockaddr_storage& addr,
                                   const FramingOptions& framing, size_t buffer_bytes)
    : fd(socket_fd),
      peer_text(formatSockaddr(addr)),
      stream(framing, buffer_bytes, ipFromSockaddr(addr)) {}

StreamServer::StreamServer(StreamSettings settings, const SocketAddress& listen_addr,
                           MetricsRegistry& metrics, Clock& clock)
    : settings_(std::move(settings)),
      listen_addr_(listen_addr),
      clock_(clock),
      counters_(registerSourceCounters(metrics, settings_.name)),
      ring_(makeRawRing(settings_.ring_capacity, settings_.max_message_bytes)) {
  const Labels labels{{"source", settings_.name}};
  // TcpSource and TlsSource share these names and help texts, so one dashboard covers both.
  accepted_ = &metrics.counter("vigil_source_connections_accepted_total",
                               "TCP connections accepted and served", labels);
  rejected_ = &metrics.counter("vigil_source_connections_rejected_total",
                               "TCP connections closed at once because of max_connections", labels);
  idle_closed_ = &metrics.counter("vigil_source_connections_idle_closed_total",
                                  "TCP connections closed after the idle timeout", labels);
  closed_ = &metrics.counter("vigil_source_connections_closed_total",
                             "Served TCP connections that ended, for any reason", labels);
  active_ = &metrics.gauge("vigil_source_connections_active", "Open TCP connections", labels);
  accept_backoff_ = std::make_unique<AcceptBackoff>(metrics, settings_.name, &listen_fd_);
  connections_.reserve(settings_.max_connections);
  paused_.reserve(settings_.max_connections);
  resume_scratch_.reserve(settings_.max_connections);
  ready_.reserve(settings_.max_connections);
  ready_scratch_.reserve(settings_.max_connections);
}

StreamServer::~StreamServer() { stop(); }

bool StreamServer::open(std::string& error) {
  if (started_) {
    error = "source " + settings_.name + " was already started; create a new source instead";
    return false;
  }
  const std::string prefix = "source " + settings_.name + ": ";
  listen_fd_ = bindSocket(listen_addr_, SOCK_STREAM, error);
  if (listen_fd_ < 0) {
    error = prefix + error;
    return false;
  }
  auto fail = [&](const std::string& what) {
    error = prefix + what + " failed: " + errnoText(errno);
    for (int* fd : {&listen_fd_, &epoll_fd_, &wake_fd_}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
    return false;
  };
  if (::listen(listen_fd_, kListenBacklog) != 0) return fail("listen() on " + settings_.listen);
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

  bound_port_ = localPort(listen_fd_);
  started_ = true;
  stop_.store(false);
  return true;
}

void StreamServer::startThread() {
  thread_ = std::thread([this] {
    nameThisThread("vigil-src-stream");
    run();
  });
}

void StreamServer::beginStop(int64_t drain_deadline_ns) {
  if (!thread_.joinable()) return;
  drain_deadline_ns_ = drain_deadline_ns;
  stop_.store(true);
  uint64_t increment = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &increment, sizeof(increment));
}

bool StreamServer::stop() {
  if (!thread_.joinable()) return false;
  stop_.store(true);
  uint64_t increment = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &increment, sizeof(increment));
  thread_.join();
  for (auto& conn : connections_) {
    if (conn->closed) continue;
    drainOnStop(*conn, drain_deadline_ns_);
    closeConnection(*conn);
  }
  connections_.clear();
  paused_.clear();
  ready_.clear();
  for (int* fd : {&listen_fd_, &epoll_fd_, &wake_fd_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
  return true;
}

void StreamServer::run() {
  epoll_event events[kMaxEvents];
  int64_t next_idle_check_ns = monotonicNs();
  while (!stop_.load(std::memory_order_relaxed)) {
    int timeout_ms = kIdlePollMs;
    if (!paused_.empty()) timeout_ms = kPausedPollMs;
    if (!ready_.empty()) timeout_ms = 0;
    timeout_ms = accept_backoff_->clampTimeout(timeout_ms);
    int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, timeout_ms);
    if (n < 0 && errno != EINTR && shouldLogPow2(error_logs_)) {
      VIGIL_LOG_ERROR("epoll_wait failed source={} error=\"{}\"", settings_.name,
                      logText(errnoText(errno)));
    }
    for (int i = 0; i < n; ++i) {
      void* ptr = events[i].data.ptr;
      if (ptr == &listen_fd_) {
        acceptConnections();
      } else if (ptr == &wake_fd_) {
        uint64_t value = 0;
        [[maybe_unused]] ssize_t r = ::read(wake_fd_, &value, sizeof(value));
      } else {
        auto* conn = static_cast<StreamConnection*>(ptr);
        if (conn->closed || conn->paused) continue;
        if (conn->handshaking) {
          continueHandshake(*conn);
        } else {
          onReadable(*conn);
        }
      }
    }
    if (!ready_.empty()) serveReady();
    if (!paused_.empty()) resumePaused();
    accept_backoff_->resumeIfDue(epoll_fd_, listen_fd_);
    int64_t now_ns = monotonicNs();
    if (settings_.idle_timeout_ms > 0 && now_ns >= next_idle_check_ns) {
      closeIdle(now_ns);
      next_idle_check_ns = now_ns + kIdlePollMs * kNanosPerMilli;
    }
    if (any_closed_) removeClosed();
  }
}

void StreamServer::acceptConnections() {
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
    if (connections_.size() >= settings_.max_connections) {
      rejectConnection(fd, addr, settings_.name, settings_.max_connections, *rejected_, counters_,
                       error_logs_);
      continue;
    }
    if (settings_.rcvbuf_bytes > 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &settings_.rcvbuf_bytes,
                   sizeof(settings_.rcvbuf_bytes));
    }
    std::unique_ptr<StreamConnection> conn = makeConnection(fd, addr);
    if (conn == nullptr) {
      ::close(fd);
      continue;
    }
    conn->accepted_ns = conn->last_activity_ns = monotonicNs();
    if (!watch(*conn, EPOLL_CTL_ADD)) {
      ::close(fd);
      continue;
    }
    accepted_->add();
    active_->add(1);
    VIGIL_LOG_DEBUG("connection accepted source={} peer={}", settings_.name, conn->peer_text);
    connections_.push_back(std::move(conn));
  }
}

bool StreamServer::watch(StreamConnection& conn, int op) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | (conn.want_write ? EPOLLOUT : 0u);
  ev.data.ptr = &conn;
  if (::epoll_ctl(epoll_fd_, op, conn.fd, &ev) == 0) return true;
  if (shouldLogPow2(error_logs_)) {
    VIGIL_LOG_ERROR("epoll_ctl failed source={} peer={} error=\"{}\"", settings_.name,
                    conn.peer_text, logText(errnoText(errno)));
  }
  return false;
}

void StreamServer::onReadable(StreamConnection& conn) {
  for (int reads = 0;; ++reads) {
    if (!processBuffered(conn)) return;
    if (reads == kReadsPerWake) {
      // Level-triggered epoll reports the socket again if bytes wait in the kernel, but
      // not for input the transport has already taken from it.
      if (hasBufferedInput(conn) && !conn.ready) {
        conn.ready = true;
        ready_.push_back(&conn);
      }
      return;
    }
    size_t bytes = 0;
    switch (readSome(conn, bytes)) {
      case ReadStatus::kData:
        conn.stream.begin = 0;
        conn.stream.end = bytes;
        conn.last_activity_ns = monotonicNs();
        conn.stream.receive_ns = clock_.nowNs();
        break;
      case ReadStatus::kWouldBlock:
        return;
      case ReadStatus::kRetry:
        break;
      case ReadStatus::kEnd:
        // Frame what is buffered, then close.
        conn.eof = true;
        break;
    }
  }
}

// Pauses `conn` when the ring was full, or closes it after a framing error. Returns true
// when `step` framed everything.
bool StreamServer::handleStep(StreamConnection& conn, StreamStep step) {
  switch (step) {
    case StreamStep::kRingFull:
      pause(conn);
      return false;
    case StreamStep::kFramingError:
      onFramingError(conn);
      return false;
    case StreamStep::kDone:
      break;
  }
  return true;
}

// Frames the buffered bytes into the ring. Returns true when the buffer is empty and the
// connection stays open and readable; false when it was paused or closed.
bool StreamServer::processBuffered(StreamConnection& conn) {
  if (!handleStep(conn, frameBuffered(conn.stream, *ring_, counters_, settings_.id))) {
    return false;
  }
  if (conn.eof) return flushAtEof(conn);
  return true;
}

// Publishes the frame still buffered when the peer closed, then closes the connection.
// Returns false: the connection is closed, or paused until a slot frees.
bool StreamServer::flushAtEof(StreamConnection& conn) {
  if (handleStep(conn, finishAtEof(conn.stream, *ring_, counters_, settings_.id))) {
    closeConnection(conn);
  }
  return false;
}

void StreamServer::onFramingError(StreamConnection& conn) {
  counters_.framing_errors->add();
  // The bad octet count and the rest of the read buffer will never be framed.
  // discardAfterFramingError() adds the bytes the transport throws away after them.
  const size_t unframed = conn.stream.framer.errorBytes() + conn.stream.end - conn.stream.begin;
  conn.stream.begin = conn.stream.end;
  counters_.discarded_bytes_framing->add(unframed + discardAfterFramingError(conn));
  // The connection closes right after this, so a connection logs at most once. Across
  // connections the source logs on power-of-two counts only.
  if (shouldLogPow2(framing_error_logs_)) {
    VIGIL_LOG_WARN("framing error, closing connection source={} peer={} error=\"{}\" total={}",
                   settings_.name, conn.peer_text,
                   logText(framingErrorText(conn.stream.framer.error())),
                   counters_.framing_errors->value());
  }
  closeConnection(conn);
}

void StreamServer::pause(StreamConnection& conn) {
  if (conn.paused) return;
  // Removing the socket from epoll (instead of clearing EPOLLIN) also silences EPOLLHUP
  // and EPOLLERR, which epoll reports regardless of the event mask.
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, conn.fd, nullptr);
  conn.paused = true;
  paused_.push_back(&conn);
}

void StreamServer::resumePaused() {
  if (ring_->freeSlots() == 0) return;
  resume_scratch_.swap(paused_);
  paused_.clear();
  for (StreamConnection* conn : resume_scratch_) {
    if (conn->closed) continue;
    conn->paused = false;
    // Connections that fill the ring again go back to paused_ inside processBuffered.
    if (!processBuffered(*conn)) continue;
    if (!watch(*conn, EPOLL_CTL_ADD)) {
      closeConnection(*conn);
      continue;
    }
    // The transport may hold input that epoll will not report.
    if (hasBufferedInput(*conn)) onReadable(*conn);
  }
  resume_scratch_.clear();
}

void StreamServer::serveReady() {
  ready_scratch_.swap(ready_);
  ready_.clear();
  for (StreamConnection* conn : ready_scratch_) {
    conn->ready = false;
    // A paused connection reads again from resumePaused().
    if (!conn->closed && !conn->paused) onReadable(*conn);
  }
  ready_scratch_.clear();
}

void StreamServer::closeIdle(int64_t now_ns) {
  const int64_t limit_ns = settings_.idle_timeout_ms * kNanosPerMilli;
  for (auto& conn : connections_) {
    // A paused connection waits for the consumer, not for its sender.
    if (conn->closed || conn->paused) continue;
    if (conn->handshaking) {
      // The deadline counts from the accept, so a client that trickles handshake bytes
      // cannot hold the slot forever.
      if (now_ns - conn->accepted_ns < limit_ns) continue;
      idle_closed_->add();
      onHandshakeTimeout(*conn);
      continue;
    }
    if (now_ns - conn->last_activity_ns < limit_ns) continue;
    idle_closed_->add();
    VIGIL_LOG_DEBUG("connection idle, closing source={} peer={}", settings_.name,
                    conn->peer_text);
    drainOnStop(*conn, 0);
    closeConnection(*conn);
  }
}

void StreamServer::closeConnection(StreamConnection& conn) {
  if (conn.closed) return;
  if (!conn.paused) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, conn.fd, nullptr);
  beforeClose(conn);
  ::close(conn.fd);
  conn.closed = true;
  any_closed_ = true;
  closed_->add();
  active_->add(-1);
}

void StreamServer::removeClosed() {
  std::erase_if(paused_, [](const StreamConnection* c) { return c->closed; });
  std::erase_if(ready_, [](const StreamConnection* c) { return c->closed; });
  std::erase_if(connections_,
                [](const std::unique_ptr<StreamConnection>& c) { return c->closed; });
  any_closed_ = false;
}

// Frames every byte still held for `conn`, then what the transport can still read without
// blocking (bytes the kernel has already acknowledged), at most one receive buffer's
// worth. Publishes each message when the ring has room, waiting for a slot until
// `wait_until_ns`, and counts the rest as dropped{reason=shutdown}.
void StreamServer::drainOnStop(StreamConnection& conn, int64_t wait_until_ns) {
  const size_t budget = receiveBufferBytes(conn.fd, kMaxDiscardBytes);
  drainStream(conn.stream, *ring_, counters_, settings_.id, budget, wait_until_ns,
              [&](char* buffer, size_t capacity) {
                size_t n = readOnClose(conn, buffer, capacity);
                if (n > 0) conn.stream.receive_ns = clock_.nowNs();
                return n;
              });
}

std::unique_ptr<StreamConnection> StreamServer::makeConnection(int fd,
                                                               const sockaddr_storage& addr) {
  return std::make_unique<StreamConnection>(fd, addr, settings_.framing,
                                            settings_.read_buffer_bytes);
}

// Plain TCP has no handshake, so `handshaking` is never set and these are not called.
void StreamServer::continueHandshake(StreamConnection& conn) {
  conn.handshaking = false;
  onReadable(conn);
}

void StreamServer::onHandshakeTimeout(StreamConnection& conn) { closeConnection(conn); }

ReadStatus StreamServer::readSome(StreamConnection& conn, size_t& bytes) {
  ssize_t n = ::read(conn.fd, conn.stream.data.get(), conn.stream.capacity);
  if (n > 0) {
    bytes = static_cast<size_t>(n);
    return ReadStatus::kData;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return ReadStatus::kWouldBlock;
  if (n < 0 && errno == EINTR) return ReadStatus::kRetry;
  if (n < 0 && errno != ECONNRESET && shouldLogPow2(error_logs_)) {
    VIGIL_LOG_WARN("read failed source={} peer={} error=\"{}\"", settings_.name, conn.peer_text,
                   logText(errnoText(errno)));
  }
  return ReadStatus::kEnd;
}

bool StreamServer::hasBufferedInput(StreamConnection& /*conn*/) { return false; }

size_t StreamServer::discardAfterFramingError(StreamConnection& conn) {
  // What waits in the socket follows the bad octet count, so it is read and thrown away.
  return discardReadable(conn.fd, kMaxDiscardBytes);
}

size_t StreamServer::readOnClose(StreamConnection& conn, char* buffer, size_t capacity) {
  return readWaiting(conn.fd, buffer, capacity);
}

void StreamServer::beforeClose(StreamConnection& /*conn*/) {}

}  // namespace vigil::dataplane::internal

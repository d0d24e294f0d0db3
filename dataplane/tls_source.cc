#include "dataplane/tls_source.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
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
// SSL_read() calls per readiness report before the loop serves other connections.
constexpr int kReadsPerWake = 8;
constexpr size_t kMinReadBuffer = 512;
constexpr int64_t kNanosPerMilli = 1'000'000;

// Returns the oldest error on this thread's OpenSSL error queue as text and clears the
// queue, or `fallback` when the queue is empty.
std::string takeOpenSslError(std::string_view fallback) {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return std::string(fallback);
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

// Sets SIGPIPE to SIG_IGN unless the process already chose a disposition for it.
void ignoreSigpipeByDefault() {
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) != 0 || current.sa_handler != SIG_DFL) return;
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ::sigemptyset(&ignore.sa_mask);
  if (::sigaction(SIGPIPE, &ignore, nullptr) == 0) {
    VIGIL_LOG_INFO("SIGPIPE set to SIG_IGN so that TLS writes to a closed peer fail with EPIPE");
  }
}

// Builds the server context: TLS 1.2 or later, the certificate chain and key, and client
// verification. Returns nullptr with `error` naming the file or option.
SSL_CTX* makeServerContext(const TlsSourceOptions& options, std::string& error) {
  const std::string prefix = options.name.empty() ? "" : "source " + options.name + ": ";
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) {
    error = prefix + "SSL_CTX_new() failed: " + takeOpenSslError("unknown error");
    return nullptr;
  }
  auto fail = [&](const std::string& what) {
    error = prefix + what + ": " + takeOpenSslError("unknown error");
    SSL_CTX_free(ctx);
    return nullptr;
  };
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
    return fail("setting the minimum protocol version to TLS 1.2 failed");
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  // Senders reconnect rarely, so session resumption gains little; without tickets and a
  // cache the server never writes after the handshake.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx, 0);
  if (SSL_CTX_use_certificate_chain_file(ctx, options.certificate_file.c_str()) != 1) {
    return fail("certificate '" + options.certificate_file +
                "' could not be loaded; give a readable PEM certificate chain");
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, options.private_key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    // OpenSSL compares the key with the certificate while loading it.
    if (ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH) {
      return fail("private_key '" + options.private_key_file + "' does not match certificate '" +
                  options.certificate_file + "'");
    }
    return fail("private_key '" + options.private_key_file +
                "' could not be loaded; give a readable, unencrypted PEM key");
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return fail("private_key '" + options.private_key_file + "' does not match certificate '" +
                options.certificate_file + "'");
  }
  if (!options.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) != 1) {
      return fail("ca_file '" + options.ca_file +
                  "' could not be loaded; give a readable file of PEM CA certificates");
    }
    // The CA names go into the CertificateRequest so clients can pick a matching
    // certificate. SSL_CTX takes ownership of the list.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.ca_file.c_str())) {
      SSL_CTX_set_client_CA_list(ctx, names);
    }
    ERR_clear_error();
  }
  int mode = SSL_VERIFY_NONE;
  if (options.verify_client == VerifyClient::kOptional) mode = SSL_VERIFY_PEER;
  if (options.verify_client == VerifyClient::kRequired) {
    mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  }
  SSL_CTX_set_verify(ctx, mode, nullptr);
  return ctx;
}

}  // namespace

std::string_view verifyClientName(VerifyClient mode) {
  switch (mode) {
    case VerifyClient::kNone:
      return "none";
    case VerifyClient::kOptional:
      return "optional";
    case VerifyClient::kRequired:
      return "required";
  }
  return "none";
}

struct TlsSource::Connection {
  Connection(int socket_fd, SSL* tls, const sockaddr_storage& addr,
             const FramingOptions& framing, size_t buffer_bytes)
      : fd(socket_fd),
        ssl(tls),
        peer_text(internal::formatSockaddr(addr)),
        stream(framing, buffer_bytes, internal::ipFromSockaddr(addr)) {}
  ~Connection() { SSL_free(ssl); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  int fd;
  SSL* ssl;  // owned
  std::string peer_text;  // "ADDR:PORT" for logs
  internal::StreamBuffer stream;  // decrypted bytes and their framer
  int64_t accepted_ns = 0;        // monotonic; the handshake deadline counts from here
  int64_t last_activity_ns = 0;   // monotonic
  bool handshaking = true;
  bool want_write = false;  // OpenSSL waits for the socket to become writable
  bool tls_failed = false;  // a fatal TLS error happened, so no close_notify may be sent
  bool paused = false;      // out of epoll until the ring has room
  bool ready = false;       // listed in ready_
  bool eof = false;         // the peer closed; buffered bytes are still to be framed
  bool closed = false;
};

void TlsSource::ContextDeleter::operator()(void* ctx) const {
  SSL_CTX_free(static_cast<SSL_CTX*>(ctx));
}

std::string checkTlsFiles(const TlsSourceOptions& options) {
  std::string error;
  SSL_CTX* ctx = makeServerContext(options, error);
  if (ctx != nullptr) SSL_CTX_free(ctx);
  return error;
}

std::unique_ptr<TlsSource> TlsSource::create(TlsSourceOptions options, MetricsRegistry& metrics,
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
  if (options.read_buffer_bytes < kMinReadBuffer || options.read_buffer_bytes > INT_MAX) {
    error = prefix + "read_buffer_bytes=" + std::to_string(options.read_buffer_bytes) +
            " is outside [" + std::to_string(kMinReadBuffer) + ", " + std::to_string(INT_MAX) +
            "]";
    return nullptr;
  }
  if (options.rcvbuf_bytes < 0) {
    error = prefix + "rcvbuf_bytes=" + std::to_string(options.rcvbuf_bytes) +
            " is negative; use 0 for the kernel default";
    return nullptr;
  }
  if (options.certificate_file.empty()) {
    error = prefix + "certificate is missing; give the PEM file of the server certificate chain";
    return nullptr;
  }
  if (options.private_key_file.empty()) {
    error = prefix + "private_key is missing; give the PEM file of the server's private key";
    return nullptr;
  }
  if (options.verify_client != VerifyClient::kNone && options.ca_file.empty()) {
    error = prefix + "verify_client=" + std::string(verifyClientName(options.verify_client)) +
            " needs ca_file, the PEM file of the CAs that sign client certificates";
    return nullptr;
  }
  auto addr = internal::parseListenAddress(options.listen, error);
  if (!addr) {
    error = prefix + error;
    return nullptr;
  }
  SSL_CTX* ctx = makeServerContext(options, error);
  if (ctx == nullptr) return nullptr;
  return std::unique_ptr<TlsSource>(
      new TlsSource(std::move(options), addr->storage, addr->len, ctx, metrics, clock));
}

TlsSource::TlsSource(TlsSourceOptions options, const sockaddr_storage& addr, socklen_t addr_len,
                     void* ssl_ctx, MetricsRegistry& metrics, Clock& clock)
    : options_(std::move(options)),
      listen_addr_(addr),
      listen_addr_len_(addr_len),
      ssl_ctx_(ssl_ctx),
      clock_(clock),
      counters_(registerSourceCounters(metrics, options_.name)),
      ring_(makeRawRing(options_.ring_capacity, options_.max_message_bytes)) {
  const Labels labels{{"source", options_.name}};
  // Same names and help texts as TcpSource, so one dashboard covers both kinds.
  accepted_ = &metrics.counter("vigil_source_connections_accepted_total",
                               "TCP connections accepted and served", labels);
  rejected_ = &metrics.counter("vigil_source_connections_rejected_total",
                               "TCP connections closed at once because of max_connections", labels);
  idle_closed_ = &metrics.counter("vigil_source_connections_idle_closed_total",
                                  "TCP connections closed after the idle timeout", labels);
  closed_ = &metrics.counter("vigil_source_connections_closed_total",
                             "Served TCP connections that ended, for any reason", labels);
  handshake_failures_ =
      &metrics.counter("vigil_source_tls_handshake_failures_total",
                       "TLS connections closed before the handshake finished", labels);
  active_ = &metrics.gauge("vigil_source_connections_active", "Open TCP connections", labels);
  accept_backoff_ =
      std::make_unique<internal::AcceptBackoff>(metrics, options_.name, &listen_fd_);
  connections_.reserve(options_.max_connections);
  paused_.reserve(options_.max_connections);
  resume_scratch_.reserve(options_.max_connections);
  ready_.reserve(options_.max_connections);
  ready_scratch_.reserve(options_.max_connections);
}

TlsSource::~TlsSource() { stop(); }

bool TlsSource::start(std::string& error) {
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
      "source started source={} kind=tls listen={} port={} framing={} verify_client={} ring={} "
      "max_message={} max_connections={}",
      options_.name, options_.listen, bound_port_, framingModeName(options_.framing),
      verifyClientName(options_.verify_client), ring_->capacity(), options_.max_message_bytes,
      options_.max_connections);
  ignoreSigpipeByDefault();
  thread_ = std::thread([this] { run(); });
  return true;
}

void TlsSource::stop() {
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
  ready_.clear();
  for (int* fd : {&listen_fd_, &epoll_fd_, &wake_fd_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
  VIGIL_LOG_INFO(
      "source stopped source={} received={} framing_errors={} accepted={} rejected={} "
      "handshake_failures={} dropped_shutdown={}",
      options_.name, counters_.received->value(), counters_.framing_errors->value(),
      accepted_->value(), rejected_->value(), handshake_failures_->value(),
      counters_.dropped_shutdown->value());
}

void TlsSource::run() {
  epoll_event events[kMaxEvents];
  int64_t next_idle_check_ns = monotonicNs();
  while (!stop_.load(std::memory_order_relaxed)) {
    int timeout_ms = kIdlePollMs;
    if (!paused_.empty()) timeout_ms = kPausedPollMs;
    if (!ready_.empty()) timeout_ms = 0;
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
        if (!conn->closed && !conn->paused) onEvent(*conn);
      }
    }
    if (!ready_.empty()) serveReady();
    if (!paused_.empty()) resumePaused();
    accept_backoff_->resumeIfDue(epoll_fd_, listen_fd_);
    int64_t now_ns = monotonicNs();
    if (options_.idle_timeout_ms > 0 && now_ns >= next_idle_check_ns) {
      closeIdle(now_ns);
      next_idle_check_ns = now_ns + kIdlePollMs * kNanosPerMilli;
    }
    if (any_closed_) removeClosed();
  }
}

void TlsSource::acceptConnections() {
  FramingOptions framing;
  framing.mode = options_.framing;
  framing.max_message_bytes = options_.max_message_bytes;
  framing.max_octet_count = options_.max_octet_count;
  framing.nul_terminates = options_.nul_terminates;
  auto* ctx = static_cast<SSL_CTX*>(ssl_ctx_.get());
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
    if (connections_.size() >= options_.max_connections) {
      internal::rejectConnection(fd, addr, options_.name, options_.max_connections, *rejected_,
                                 counters_, error_logs_);
      continue;
    }
    if (options_.rcvbuf_bytes > 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &options_.rcvbuf_bytes,
                   sizeof(options_.rcvbuf_bytes));
    }
    ERR_clear_error();
    SSL* ssl = SSL_new(ctx);
    if (ssl == nullptr || SSL_set_fd(ssl, fd) != 1) {
      if (shouldLogPow2(error_logs_)) {
        VIGIL_LOG_ERROR("SSL_new failed, closing connection source={} peer={} error={}",
                        options_.name, internal::formatSockaddr(addr),
                        takeOpenSslError("unknown error"));
      }
      SSL_free(ssl);
      ::close(fd);
      continue;
    }
    SSL_set_accept_state(ssl);
    auto conn = std::make_unique<Connection>(fd, ssl, addr, framing, options_.read_buffer_bytes);
    conn->accepted_ns = conn->last_activity_ns = monotonicNs();
    if (!watch(*conn, EPOLL_CTL_ADD)) {
      ::close(fd);
      continue;
    }
    accepted_->add();
    active_->add(1);
    VIGIL_LOG_DEBUG("connection accepted source={} peer={}", options_.name, conn->peer_text);
    connections_.push_back(std::move(conn));
  }
}

// Adds or modifies the epoll registration of `conn`: readable, plus writable while
// OpenSSL waits to write.
bool TlsSource::watch(Connection& conn, int op) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | (conn.want_write ? EPOLLOUT : 0u);
  ev.data.ptr = &conn;
  if (::epoll_ctl(epoll_fd_, op, conn.fd, &ev) == 0) return true;
  if (shouldLogPow2(error_logs_)) {
    VIGIL_LOG_ERROR("epoll_ctl failed source={} peer={} error={}", options_.name, conn.peer_text,
                    internal::errnoText(errno));
  }
  return false;
}

void TlsSource::onEvent(Connection& conn) {
  if (conn.handshaking) {
    continueHandshake(conn);
  } else {
    onReadable(conn);
  }
}

void TlsSource::continueHandshake(Connection& conn) {
  ERR_clear_error();
  int r = SSL_do_handshake(conn.ssl);
  if (r == 1) {
    conn.handshaking = false;
    conn.last_activity_ns = monotonicNs();
    if (conn.want_write) {
      conn.want_write = false;
      if (!watch(conn, EPOLL_CTL_MOD)) {
        closeConnection(conn);
        return;
      }
    }
    VIGIL_LOG_DEBUG("TLS handshake done source={} peer={} protocol={} cipher={}", options_.name,
                    conn.peer_text, SSL_get_version(conn.ssl), SSL_get_cipher_name(conn.ssl));
    // The client's first records may have arrived with its Finished message.
    onReadable(conn);
    return;
  }
  int err = SSL_get_error(conn.ssl, r);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    bool want_write = err == SSL_ERROR_WANT_WRITE;
    if (want_write != conn.want_write) {
      conn.want_write = want_write;
      if (!watch(conn, EPOLL_CTL_MOD)) closeConnection(conn);
    }
    return;
  }
  std::string reason;
  if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    reason = errno != 0 ? internal::errnoText(errno) : "peer closed the connection";
  } else {
    reason = takeOpenSslError("TLS protocol error");
  }
  onHandshakeFailure(conn, reason);
}

void TlsSource::onHandshakeFailure(Connection& conn, std::string_view reason) {
  handshake_failures_->add();
  conn.tls_failed = true;
  if (shouldLogPow2(handshake_logs_)) {
    VIGIL_LOG_WARN("TLS handshake failed, closing connection source={} peer={} error=\"{}\" "
                   "total={}",
                   options_.name, conn.peer_text, reason, handshake_failures_->value());
  }
  ERR_clear_error();
  closeConnection(conn);
}

void TlsSource::onReadable(Connection& conn) {
  for (int reads = 0;; ++reads) {
    if (!processBuffered(conn)) return;
    if (reads == kReadsPerWake) {
      // Level-triggered epoll reports the socket again if bytes wait in the kernel, but
      // not for records OpenSSL has already read.
      if (SSL_has_pending(conn.ssl) && !conn.ready) {
        conn.ready = true;
        ready_.push_back(&conn);
      }
      return;
    }
    ERR_clear_error();
    int n = SSL_read(conn.ssl, conn.stream.data.get(), static_cast<int>(conn.stream.capacity));
    if (n > 0) {
      conn.stream.begin = 0;
      conn.stream.end = static_cast<size_t>(n);
      conn.last_activity_ns = monotonicNs();
      conn.stream.receive_ns = clock_.nowNs();
      continue;
    }
    int err = SSL_get_error(conn.ssl, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      bool want_write = err == SSL_ERROR_WANT_WRITE;
      if (want_write != conn.want_write) {
        conn.want_write = want_write;
        if (!watch(conn, EPOLL_CTL_MOD)) closeConnection(conn);
      }
      return;
    }
    if (err != SSL_ERROR_ZERO_RETURN) {
      // A reset, a peer that closed without close_notify, or a corrupt record. Senders
      // often just close, so the frame still buffered is published like a clean end.
      conn.tls_failed = true;
      // OpenSSL 3 reports a close without close_notify as SSL_R_UNEXPECTED_EOF_WHILE_READING.
      bool quiet_close =
          (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 &&
           (errno == 0 || errno == ECONNRESET)) ||
          (err == SSL_ERROR_SSL &&
           ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
      std::string reason = takeOpenSslError(err == SSL_ERROR_SYSCALL ? internal::errnoText(errno)
                                                                     : "TLS protocol error");
      if (quiet_close) {
        VIGIL_LOG_DEBUG("TLS peer closed without close_notify source={} peer={}", options_.name,
                        conn.peer_text);
      } else if (shouldLogPow2(error_logs_)) {
        VIGIL_LOG_WARN("TLS read failed source={} peer={} error=\"{}\"", options_.name,
                       conn.peer_text, reason);
      }
    }
    conn.eof = true;
  }
}

// Frames the buffered bytes into the ring. Returns true when the buffer is empty and the
// connection stays open and readable; false when it was paused or closed.
bool TlsSource::processBuffered(Connection& conn) {
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
bool TlsSource::flushAtEof(Connection& conn) {
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

void TlsSource::onFramingError(Connection& conn) {
  counters_.framing_errors->add();
  // The bad octet count and the rest of the decrypted buffer will never be framed. Records
  // still encrypted in the socket are not decrypted, so their bytes are not counted.
  counters_.discarded_bytes_framing->add(conn.stream.framer.errorBytes() + conn.stream.end -
                                         conn.stream.begin);
  conn.stream.begin = conn.stream.end;
  // The connection closes right after this, so a connection logs at most once. Across
  // connections the source logs on power-of-two counts only.
  if (shouldLogPow2(framing_error_logs_)) {
    VIGIL_LOG_WARN("framing error, closing connection source={} peer={} error=\"{}\" total={}",
                   options_.name, conn.peer_text, framingErrorText(conn.stream.framer.error()),
                   counters_.framing_errors->value());
  }
  closeConnection(conn);
}

void TlsSource::pause(Connection& conn) {
  if (conn.paused) return;
  // Removing the socket from epoll (instead of clearing EPOLLIN) also silences EPOLLHUP
  // and EPOLLERR, which epoll reports regardless of the event mask.
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, conn.fd, nullptr);
  conn.paused = true;
  paused_.push_back(&conn);
}

void TlsSource::resumePaused() {
  if (ring_->freeSlots() == 0) return;
  resume_scratch_.swap(paused_);
  paused_.clear();
  for (Connection* conn : resume_scratch_) {
    if (conn->closed) continue;
    conn->paused = false;
    // Connections that fill the ring again go back to paused_ inside processBuffered.
    if (!processBuffered(*conn)) continue;
    if (!watch(*conn, EPOLL_CTL_ADD)) {
      closeConnection(*conn);
      continue;
    }
    // OpenSSL may hold decrypted records that epoll will not report.
    onReadable(*conn);
  }
  resume_scratch_.clear();
}

void TlsSource::serveReady() {
  ready_scratch_.swap(ready_);
  ready_.clear();
  for (Connection* conn : ready_scratch_) {
    conn->ready = false;
    // A paused connection reads again from resumePaused().
    if (!conn->closed && !conn->paused) onReadable(*conn);
  }
  ready_scratch_.clear();
}

void TlsSource::closeIdle(int64_t now_ns) {
  const int64_t limit_ns = options_.idle_timeout_ms * kNanosPerMilli;
  for (auto& conn : connections_) {
    // A paused connection waits for the consumer, not for its sender.
    if (conn->closed || conn->paused) continue;
    if (conn->handshaking) {
      // The deadline counts from the accept, so a client that trickles handshake bytes
      // cannot hold the slot forever.
      if (now_ns - conn->accepted_ns < limit_ns) continue;
      idle_closed_->add();
      onHandshakeFailure(*conn, "handshake not finished within the idle timeout (idle_timeout_s)");
      continue;
    }
    if (now_ns - conn->last_activity_ns < limit_ns) continue;
    idle_closed_->add();
    VIGIL_LOG_DEBUG("connection idle, closing source={} peer={}", options_.name, conn->peer_text);
    drainOnStop(*conn);
    closeConnection(*conn);
  }
}

void TlsSource::closeConnection(Connection& conn) {
  if (conn.closed) return;
  if (!conn.paused) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, conn.fd, nullptr);
  if (!conn.handshaking && !conn.tls_failed) {
    // One non-blocking attempt to send close_notify; the peer's reply is not awaited.
    SSL_shutdown(conn.ssl);
    ERR_clear_error();
  }
  ::close(conn.fd);
  conn.closed = true;
  any_closed_ = true;
  closed_->add();
  active_->add(-1);
}

void TlsSource::removeClosed() {
  std::erase_if(paused_, [](const Connection* c) { return c->closed; });
  std::erase_if(ready_, [](const Connection* c) { return c->closed; });
  std::erase_if(connections_, [](const std::unique_ptr<Connection>& c) { return c->closed; });
  any_closed_ = false;
}

// Frames every byte still held for `conn`, then the records still waiting in OpenSSL and
// in the socket, decrypted through SSL_read() until it would block, at most one receive
// buffer's worth. Publishes where the ring has room and counts the rest as
// dropped{reason=shutdown}. A connection still in its handshake has no records to read.
void TlsSource::drainOnStop(Connection& conn) {
  if (conn.handshaking || conn.tls_failed) {
    internal::drainStream(conn.stream, *ring_, counters_, options_.id, 0, nullptr);
    return;
  }
  const size_t budget = internal::receiveBufferBytes(conn.fd, internal::kMaxDiscardBytes);
  internal::drainStream(conn.stream, *ring_, counters_, options_.id, budget,
                        [&](char* buffer, size_t capacity) -> size_t {
                          ERR_clear_error();
                          int n = SSL_read(conn.ssl, buffer, static_cast<int>(capacity));
                          if (n <= 0) {
                            // WANT_READ, a close or an error all end the drain.
                            ERR_clear_error();
                            return 0;
                          }
                          conn.stream.receive_ns = clock_.nowNs();
                          return static_cast<size_t>(n);
                        });
}

}  // namespace vigil::dataplane

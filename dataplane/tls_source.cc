#include "dataplane/tls_source.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/epoll.h>

#include <cerrno>
#include <climits>
#include <csignal>

#include "common/log.h"
#include "dataplane/internal/socket_util.h"
#include "dataplane/internal/stream_server.h"

namespace vigil::dataplane {
namespace {

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

// The pass phrase callback of every context. It records the request when the context
// carries a flag, and returns -1, so an encrypted key fails to load instead of prompting.
int rejectPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* requested) {
  if (requested != nullptr) *static_cast<bool*>(requested) = true;
  return -1;
}

}  // namespace

void disablePassphrasePrompt(void* ssl_ctx) {
  SSL_CTX_set_default_passwd_cb(static_cast<SSL_CTX*>(ssl_ctx), rejectPassphrase);
  SSL_CTX_set_default_passwd_cb_userdata(static_cast<SSL_CTX*>(ssl_ctx), nullptr);
}

std::string loadCertificateAndKey(void* ssl_ctx, const std::string& certificate_file,
                                  const std::string& private_key_file) {
  SSL_CTX* ctx = static_cast<SSL_CTX*>(ssl_ctx);
  disablePassphrasePrompt(ctx);
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, certificate_file.c_str()) != 1) {
    return "certificate '" + certificate_file +
           "' could not be loaded; give a readable PEM certificate chain: " +
           takeOpenSslError("unknown error");
  }
  bool requested = false;
  SSL_CTX_set_default_passwd_cb_userdata(ctx, &requested);
  const int loaded = SSL_CTX_use_PrivateKey_file(ctx, private_key_file.c_str(), SSL_FILETYPE_PEM);
  SSL_CTX_set_default_passwd_cb_userdata(ctx, nullptr);
  if (loaded != 1) {
    if (requested) {
      ERR_clear_error();
      return "private_key '" + private_key_file +
             "' is encrypted; vigil does not ask for pass phrases, so give an unencrypted PEM "
             "key (openssl pkey -in ENCRYPTED.pem -out KEY.pem writes one)";
    }
    // OpenSSL compares the key with the certificate while loading it.
    if (ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH) {
      return "private_key '" + private_key_file + "' does not match certificate '" +
             certificate_file + "': " + takeOpenSslError("unknown error");
    }
    return "private_key '" + private_key_file +
           "' could not be loaded; give a readable, unencrypted PEM key: " +
           takeOpenSslError("unknown error");
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return "private_key '" + private_key_file + "' does not match certificate '" +
           certificate_file + "': " + takeOpenSslError("unknown error");
  }
  return "";
}

namespace {

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
  if (std::string problem =
          loadCertificateAndKey(ctx, options.certificate_file, options.private_key_file);
      !problem.empty()) {
    error = prefix + problem;
    SSL_CTX_free(ctx);
    return nullptr;
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

namespace {

// A connection with its OpenSSL state. `stream` contains the decrypted bytes.
struct TlsConnection final : internal::StreamConnection {
  TlsConnection(int socket_fd, SSL* tls, const sockaddr_storage& addr,
                const FramingOptions& framing, size_t buffer_bytes)
      : StreamConnection(socket_fd, addr, framing, buffer_bytes), ssl(tls) {
    handshaking = true;
  }
  ~TlsConnection() override { SSL_free(ssl); }

  SSL* ssl;                 // owned
  bool tls_failed = false;  // a fatal TLS error happened, so no close_notify may be sent
};

TlsConnection& tls(internal::StreamConnection& conn) { return static_cast<TlsConnection&>(conn); }

// The shared stream server with a non-blocking TLS handshake per connection, SSL_read()
// in place of read() and close_notify before the close.
class TlsServer final : public internal::StreamServer {
 public:
  TlsServer(internal::StreamSettings settings, const internal::SocketAddress& addr,
            SSL_CTX* ctx, Counter& handshake_failures, MetricsRegistry& metrics, Clock& clock)
      : StreamServer(std::move(settings), addr, metrics, clock),
        ctx_(ctx),
        handshake_failures_(handshake_failures) {}
  // The base destructor cannot reach the close hooks below, so the thread stops here.
  ~TlsServer() override {
    stop();
    SSL_CTX_free(ctx_);
  }

 protected:
  std::unique_ptr<internal::StreamConnection> makeConnection(
      int fd, const sockaddr_storage& addr) override;
  void continueHandshake(internal::StreamConnection& conn) override;
  void onHandshakeTimeout(internal::StreamConnection& conn) override;
  internal::ReadStatus readSome(internal::StreamConnection& conn, size_t& bytes) override;
  bool hasBufferedInput(internal::StreamConnection& conn) override {
    return SSL_has_pending(tls(conn).ssl) == 1;
  }
  // The bad octet count and the rest of the decrypted buffer are counted by the caller.
  // Records still encrypted in the socket are not decrypted, so their bytes are not counted.
  size_t discardAfterFramingError(internal::StreamConnection& /*conn*/) override { return 0; }
  size_t readOnClose(internal::StreamConnection& conn, char* buffer, size_t capacity) override;
  void beforeClose(internal::StreamConnection& conn) override;

 private:
  // Records whether OpenSSL waits to write and updates the epoll registration to match.
  // Closes the connection when epoll_ctl fails.
  void waitForSocket(TlsConnection& conn, bool want_write);
  void onHandshakeFailure(TlsConnection& conn, std::string_view reason);

  SSL_CTX* ctx_;  // owned
  Counter& handshake_failures_;
  std::atomic<uint64_t> handshake_logs_{0};
};

std::unique_ptr<internal::StreamConnection> TlsServer::makeConnection(
    int fd, const sockaddr_storage& addr) {
  ERR_clear_error();
  SSL* ssl = SSL_new(ctx_);
  if (ssl == nullptr || SSL_set_fd(ssl, fd) != 1) {
    if (shouldLogPow2(errorLogs())) {
      VIGIL_LOG_ERROR("SSL_new failed, closing connection source={} peer={} error=\"{}\"",
                      settings().name, internal::formatSockaddr(addr),
                      logText(takeOpenSslError("unknown error")));
    }
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return std::make_unique<TlsConnection>(fd, ssl, addr, settings().framing,
                                         settings().read_buffer_bytes);
}

void TlsServer::waitForSocket(TlsConnection& conn, bool want_write) {
  if (want_write == conn.want_write) return;
  conn.want_write = want_write;
  if (!watch(conn, EPOLL_CTL_MOD)) closeConnection(conn);
}

void TlsServer::continueHandshake(internal::StreamConnection& base) {
  TlsConnection& conn = tls(base);
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
    VIGIL_LOG_DEBUG("TLS handshake done source={} peer={} protocol={} cipher={}",
                    settings().name, conn.peer_text, SSL_get_version(conn.ssl),
                    SSL_get_cipher_name(conn.ssl));
    // The client's first records may have arrived with its Finished message.
    onReadable(conn);
    return;
  }
  int err = SSL_get_error(conn.ssl, r);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    waitForSocket(conn, err == SSL_ERROR_WANT_WRITE);
    return;
  }
  std::string reason;
  if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    reason = errno != 0 ? internal::errnoText(errno) : "peer closed the connection";
  } else {
    reason = takeOpenSslError("TLS protocol error");
    // OpenSSL's error text is only "certificate verify failed". The verify result names the
    // check of the client's certificate that failed.
    const long verify = SSL_get_verify_result(conn.ssl);
    if (verify != X509_V_OK) {
      reason += "; client certificate: ";
      reason += X509_verify_cert_error_string(verify);
    }
  }
  onHandshakeFailure(conn, reason);
}

void TlsServer::onHandshakeTimeout(internal::StreamConnection& conn) {
  onHandshakeFailure(tls(conn), "handshake not finished within the idle timeout (idle_timeout_s)");
}

void TlsServer::onHandshakeFailure(TlsConnection& conn, std::string_view reason) {
  handshake_failures_.add();
  conn.tls_failed = true;
  if (shouldLogPow2(handshake_logs_)) {
    VIGIL_LOG_WARN(
        "TLS handshake failed, closing connection source={} peer={} error=\"{}\" "
        "total={}",
        settings().name, conn.peer_text, logText(reason), handshake_failures_.value());
  }
  ERR_clear_error();
  closeConnection(conn);
}

internal::ReadStatus TlsServer::readSome(internal::StreamConnection& base, size_t& bytes) {
  TlsConnection& conn = tls(base);
  ERR_clear_error();
  int n = SSL_read(conn.ssl, conn.stream.data.get(), static_cast<int>(conn.stream.capacity));
  if (n > 0) {
    bytes = static_cast<size_t>(n);
    return internal::ReadStatus::kData;
  }
  int err = SSL_get_error(conn.ssl, n);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    waitForSocket(conn, err == SSL_ERROR_WANT_WRITE);
    return internal::ReadStatus::kWouldBlock;
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
      VIGIL_LOG_DEBUG("TLS peer closed without close_notify source={} peer={}", settings().name,
                      conn.peer_text);
    } else if (shouldLogPow2(errorLogs())) {
      VIGIL_LOG_WARN("TLS read failed source={} peer={} error=\"{}\"", settings().name,
                     conn.peer_text, logText(reason));
    }
  }
  return internal::ReadStatus::kEnd;
}

// Decrypts the records still waiting in OpenSSL and in the socket through SSL_read()
// until it would block. A connection still in its handshake, or after a fatal TLS error,
// has no records to read.
size_t TlsServer::readOnClose(internal::StreamConnection& base, char* buffer, size_t capacity) {
  TlsConnection& conn = tls(base);
  if (conn.handshaking || conn.tls_failed) return 0;
  ERR_clear_error();
  int n = SSL_read(conn.ssl, buffer, static_cast<int>(capacity));
  if (n <= 0) {
    // WANT_READ, a close or an error all end the drain.
    ERR_clear_error();
    return 0;
  }
  return static_cast<size_t>(n);
}

void TlsServer::beforeClose(internal::StreamConnection& base) {
  TlsConnection& conn = tls(base);
  if (!conn.handshaking && !conn.tls_failed) {
    // One non-blocking attempt to send close_notify; the peer's reply is not awaited.
    SSL_shutdown(conn.ssl);
    ERR_clear_error();
  }
}

}  // namespace

std::string checkTlsFiles(const TlsSourceOptions& options) {
  std::string error;
  SSL_CTX* ctx = makeServerContext(options, error);
  if (ctx != nullptr) SSL_CTX_free(ctx);
  return error;
}

std::unique_ptr<TlsSource> TlsSource::create(TlsSourceOptions options, MetricsRegistry& metrics,
                                             std::string& error, Clock& clock) {
  // The read buffer size is passed to SSL_read() as an int.
  if (!internal::checkStreamSettings(internal::streamSettings(options), INT_MAX, error)) {
    return nullptr;
  }
  const std::string prefix = "source " + options.name + ": ";
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
  return std::unique_ptr<TlsSource>(new TlsSource(std::move(options), *addr, ctx, metrics, clock));
}

TlsSource::TlsSource(TlsSourceOptions options, const internal::SocketAddress& addr,
                     void* ssl_ctx, MetricsRegistry& metrics, Clock& clock)
    : options_(std::move(options)),
      handshake_failures_(&metrics.counter("vigil_source_tls_handshake_failures_total",
                                           "TLS connections closed before the handshake finished",
                                           {{"source", options_.name}})),
      server_(std::make_unique<TlsServer>(internal::streamSettings(options_), addr,
                                          static_cast<SSL_CTX*>(ssl_ctx), *handshake_failures_,
                                          metrics, clock)) {}

TlsSource::~TlsSource() { stop(); }

bool TlsSource::start(std::string& error) {
  if (!server_->open(error)) return false;
  // Log before the thread starts. The first log call sets up spdlog's registry, and doing
  // that on one thread keeps ThreadSanitizer runs free of reports from inside spdlog.
  VIGIL_LOG_INFO(
      "source started source={} kind=tls listen={} port={} framing={} verify_client={} ring={} "
      "max_message={} max_connections={}",
      options_.name, options_.listen, server_->boundPort(), framingModeName(options_.framing),
      verifyClientName(options_.verify_client), server_->ring().capacity(),
      options_.max_message_bytes, options_.max_connections);
  ignoreSigpipeByDefault();
  server_->startThread();
  return true;
}

void TlsSource::beginStop(int64_t drain_deadline_ns) { server_->beginStop(drain_deadline_ns); }

void TlsSource::stop() {
  if (!server_->stop()) return;
  const SourceCounters& counters = server_->counters();
  VIGIL_LOG_INFO(
      "source stopped source={} received={} framing_errors={} accepted={} rejected={} "
      "handshake_failures={} dropped_shutdown={}",
      options_.name, counters.received->value(), counters.framing_errors->value(),
      server_->acceptedCount(), server_->rejectedCount(), handshake_failures_->value(),
      counters.dropped_shutdown->value());
}

RawRing& TlsSource::ring() { return server_->ring(); }

uint16_t TlsSource::boundPort() const { return server_->boundPort(); }

const SourceCounters& TlsSource::counters() const { return server_->counters(); }

}  // namespace vigil::dataplane

// A Source that accepts syslog over TLS (RFC 5425). One thread serves every connection
// through epoll and drives each TLS handshake as a non-blocking state machine, so a slow
// client never blocks the others. After the handshake each connection has its own Framer:
// RFC 5425 mandates octet counting, and framing kAuto also accepts LF-framed senders, as
// TcpSource does. Like TcpSource it never drops: when the ring is full the source stops
// reading from the connections that have data waiting.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/metrics.h"
#include "dataplane/framing.h"
#include "dataplane/source.h"

namespace vigil::dataplane {
namespace internal {
class StreamServer;
struct SocketAddress;
}  // namespace internal

// Whether the server requests a client certificate and what it does without one.
enum class VerifyClient : uint8_t {
  kNone,      // no certificate is requested
  kOptional,  // requested; a client without one is accepted, an invalid one is rejected
  kRequired,  // requested; a client without a valid one is rejected
};

// Returns "none", "optional" or "required".
std::string_view verifyClientName(VerifyClient mode);

struct TlsSourceOptions {
  std::string name = "tls0";  // `source` label of every metric, and the name in logs
  uint16_t id = 0;            // RawMessage::source_id
  std::string tenant;
  Format format = Format::kAuto;
  // IPV4:PORT or [IPV6]:PORT, numeric only. Port 0 binds an ephemeral port (boundPort()).
  // 6514 is the port IANA assigned to syslog over TLS.
  std::string listen = "127.0.0.1:6514";
  std::string certificate_file;  // PEM: the server certificate, then any intermediates
  std::string private_key_file;  // PEM, unencrypted
  std::string ca_file;           // PEM CA certificates for client verification
  VerifyClient verify_client = VerifyClient::kNone;  // kOptional and kRequired need ca_file
  // Per-connection limit: a longer frame is cut to this size and flagged truncated, and
  // the rest of that frame is discarded.
  size_t max_message_bytes = kDefaultMaxMessageBytes;
  size_t ring_capacity = 1024;  // RawMessage slots, rounded up to a power of two
  // kAuto picks the framing per connection from its first decrypted byte.
  FramingMode framing = FramingMode::kAuto;
  bool nul_terminates = false;  // LF framing: NUL also ends a message
  // An octet count above this is a framing error that closes the connection.
  size_t max_octet_count = kDefaultMaxOctetCount;
  size_t max_connections = 256;  // further connections are accepted and closed at once
  // Closes a connection silent this long, and a handshake not finished this long after
  // the TCP accept. 0 disables both.
  int64_t idle_timeout_ms = 300000;
  size_t read_buffer_bytes = 16384;  // per-connection SSL_read() buffer
  int rcvbuf_bytes = 0;              // SO_RCVBUF per connection; 0 keeps the kernel default
};

// Counters: the shared SourceCounters and TcpSource's connection counters under the same
// names (vigil_source_connections_accepted_total, _rejected_total, _idle_closed_total,
// _closed_total and the gauge vigil_source_connections_active). Accepted counts TCP
// accepts, so it includes failed handshakes. vigil_source_tls_handshake_failures_total
// counts connections closed before the handshake finished: a protocol error, a rejected
// client certificate, or the idle timeout.
//
// Memory: each connection allocates read_buffer_bytes + max_message_bytes plus OpenSSL's
// per-connection state when it is accepted; nothing is allocated per message by this
// class (OpenSSL keeps its record buffers per connection).
//
// Threads: start() and stop() from one control thread; the epoll thread is the ring's
// only producer and the only user of the connections' SSL objects while it runs.
//
// Signals: OpenSSL writes to the sockets with write(), which raises SIGPIPE when the peer
// has gone. start() therefore sets SIGPIPE to SIG_IGN when it is still SIG_DFL.
// Loads the certificate chain, private key and CA file of `options` into a throwaway
// OpenSSL context, as create() does, so configuration checks can report a bad PEM file or
// a key that does not match its certificate before anything starts. Returns an empty
// string when all load, otherwise the error naming the file.
std::string checkTlsFiles(const TlsSourceOptions& options);

// Installs a pass phrase callback on `ssl_ctx` (an SSL_CTX*) that rejects every request. Without
// one, OpenSSL prompts for a pass phrase on the terminal when it reads an encrypted key and blocks
// until someone answers. Call it on every context before loading a key.
void disablePassphrasePrompt(void* ssl_ctx);

// Loads the PEM certificate chain and the unencrypted PEM private key into `ssl_ctx` (an
// SSL_CTX*) and checks that they match. Returns an empty string on success, otherwise an
// error naming the file and the reason, such as an encrypted key or a key that does not
// match the certificate. Installs the callback of disablePassphrasePrompt().
std::string loadCertificateAndKey(void* ssl_ctx, const std::string& certificate_file,
                                  const std::string& private_key_file);

class TlsSource final : public Source {
 public:
  // Validates `options`, loads the certificate, key and CA files, and allocates the ring.
  // Returns nullptr with `error` naming the bad value or file and the OpenSSL error.
  // `metrics` and `clock` must outlive the source. Does not open the socket.
  static std::unique_ptr<TlsSource> create(TlsSourceOptions options, MetricsRegistry& metrics,
                                           std::string& error,
                                           Clock& clock = RealClock::instance());
  ~TlsSource() override;

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
  uint64_t handshakeFailures() const { return handshake_failures_->value(); }

 private:
  TlsSource(TlsSourceOptions options, const internal::SocketAddress& addr, void* ssl_ctx,
            MetricsRegistry& metrics, Clock& clock);

  TlsSourceOptions options_;
  Counter* handshake_failures_;
  // The listener, the epoll thread, the connections and the ring, with the TLS handshake
  // and SSL_read() added (TlsServer in tls_source.cc).
  std::unique_ptr<internal::StreamServer> server_;
};

}  // namespace vigil::dataplane

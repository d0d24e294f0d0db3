// A playbook connector that forwards each action as one syslog message to a collector,
// over UDP, TCP (RFC 6587 octet counting) or TLS (RFC 5425: octet counting inside a TLS
// session that verifies the collector's certificate and name), formatted as RFC 5424 or
// as CEF.
//
// RFC 5424: <PRI>1 TIMESTAMP HOST APP - ACTION [vigil@32473 run="7" tenant="acme"
//           playbook="p" alert="a" idempotency_key="vigil-..."] {"param": ...}
// CEF:      CEF:0|Vigil|vigild|VERSION|ACTION|ACTION|SEVERITY|rt=... cs1=7 ... externalId=vigil-...
//           key=value
// The idempotency key (actionIdempotencyKey() in action_router.h) is the same for every
// attempt of one action, also after a restart, so a collector can drop repeated messages.
// Keys contain only letters, digits and '-', so they need no escaping in either format.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "mgmt/playbook_config.h"
#include "playbook_vm/compiler/alert_host.h"

struct ssl_ctx_st;
struct ssl_st;

namespace vigil::mgmt {

class SyslogConnector final : public playbook_vm::compiler::ActionConnector {
 public:
  // Checks the address (host:port with an IP address host) and the options; for TLS it
  // also loads the CA file and the client certificate and key. Opens no socket.
  static absl::StatusOr<std::unique_ptr<SyslogConnector>> create(const ConnectorConfig& config);
  ~SyslogConnector() override;

  // Sends one message, and a send error fails the action. A TCP or TLS connection is
  // opened on the first call and again after an error. A failed TLS handshake names the
  // certificate check that failed. The result is the message length. One call at a
  // time; blocks up to timeout_ms.
  absl::Status perform(std::string_view action, const playbook_vm::List& params,
                       playbook_vm::HostCall& call, playbook_vm::Value& result) override;

  // The message perform() sends (without TCP framing), for tests.
  std::string format(std::string_view action, const playbook_vm::List& params,
                     playbook_vm::HostCall& call) const;

 private:
  struct TlsFree {
    void operator()(ssl_ctx_st* ctx) const;
    void operator()(ssl_st* ssl) const;
  };

  explicit SyslogConnector(ConnectorConfig config);
  absl::Status loadTls();
  absl::Status connectTcp();
  absl::Status startTls();
  absl::Status sendStream(const std::string& frame);
  void closeSocket();
  bool peerClosed() const;

  ConnectorConfig config_;
  std::string host_;
  uint16_t port_ = 0;
  std::string hostname_;
  int fd_ = -1;
  std::unique_ptr<ssl_ctx_st, TlsFree> tls_ctx_;  // transport tls only
  std::unique_ptr<ssl_st, TlsFree> tls_;          // the open session, with fd_
};

}  // namespace vigil::mgmt

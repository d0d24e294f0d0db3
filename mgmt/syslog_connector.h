// A playbook connector that forwards each action as one syslog message to a collector,
// over UDP or TCP (RFC 6587 octet counting), formatted as RFC 5424 or as CEF.
//
// RFC 5424: <PRI>1 TIMESTAMP HOST APP - ACTION [vigil@32473 run="7" tenant="acme"
//           playbook="p" alert="a"] {"param": ...}
// CEF:      CEF:0|Vigil|vigild|VERSION|ACTION|ACTION|SEVERITY|run=7 tenant=acme ... key=value
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "mgmt/playbook_config.h"
#include "playbook_vm/compiler/alert_host.h"

namespace vigil::mgmt {

class SyslogConnector final : public playbook_vm::compiler::ActionConnector {
 public:
  // Checks the address (host:port with an IP address host) and the options. Opens nothing.
  static absl::StatusOr<std::unique_ptr<SyslogConnector>> create(const ConnectorConfig& config);
  ~SyslogConnector() override;

  // Sends one message; a send error fails the action (a TCP connection is opened on the
  // first call and again after an error). The result is the message length. One call at a
  // time; blocks up to timeout_ms.
  absl::Status perform(std::string_view action, const playbook_vm::List& params,
                       playbook_vm::HostCall& call, playbook_vm::Value& result) override;

  // The message perform() sends (without TCP framing), for tests.
  std::string format(std::string_view action, const playbook_vm::List& params,
                     playbook_vm::HostCall& call) const;

 private:
  explicit SyslogConnector(ConnectorConfig config);
  absl::Status connectTcp();
  void closeSocket();

  ConnectorConfig config_;
  std::string host_;
  uint16_t port_ = 0;
  std::string hostname_;
  int fd_ = -1;
};

}  // namespace vigil::mgmt

// A playbook connector that keeps a block list of IP addresses in an nftables file the
// operator's firewall loads (`nft -f PATH`), optionally running a configured command after
// every change.
//
// Actions (by the last part of the name): block_ip / block add `ip` for `duration_s`
// (default: the connector's default_duration_s; 0 never expires), unblock_ip / unblock
// remove it. An address blocked again while still listed is a repeat offender: its
// duration doubles for each repeat, up to 30 days. Expired entries are removed whenever
// the file is rewritten. A block with the idempotency key of an earlier block of the same
// listed address (a retry, or a run that runs again after a restart) is not a repeat: the
// entry stays as it is, and the file is written and applied again. Unblocking an address
// that is not listed succeeds and changes nothing.
//
// The file declares the sets <set>_v4 and <set>_v6 in `table`, flushes them and adds every
// listed address with its remaining timeout. It is written to a temporary file, synced and
// renamed over PATH, so the firewall never reads half a file. PATH.state.json keeps the
// absolute expiry times and repeat counts across restarts.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "mgmt/playbook_config.h"
#include "playbook_vm/compiler/alert_host.h"

namespace vigil::mgmt {

class BlocklistConnector final : public playbook_vm::compiler::ActionConnector {
 public:
  struct Entry {
    int64_t expires_ns = 0;  // wall clock; 0 never expires
    int64_t count = 1;       // times blocked while listed
    std::string comment;
    // Idempotency keys of the latest blocks of this entry, oldest first, at most
    // kKeysPerEntry.
    std::vector<std::string> keys;
  };
  static constexpr size_t kKeysPerEntry = 8;

  // Checks the options and reads PATH.state.json when it exists. Does not write.
  static absl::StatusOr<std::unique_ptr<BlocklistConnector>> create(const ConnectorConfig& config,
                                                                    const Clock* clock = nullptr);

  // Blocks or unblocks one address and rewrites the file. Fails for a missing or invalid
  // `ip`, an unknown verb, a full list, a failed write or a failed apply command. The
  // result is the canonical address. One call at a time.
  absl::Status perform(std::string_view action, const playbook_vm::List& params,
                       playbook_vm::HostCall& call, playbook_vm::Value& result) override;

  // Applies one change without a VM, for tests and the API of later tools. `action_key`
  // is the idempotency key of the block; empty makes every call count as a repeat.
  absl::Status block(const std::string& ip, int64_t duration_s, const std::string& comment,
                     const std::string& action_key = "");
  absl::Status unblock(const std::string& ip);

  const std::map<std::string, Entry>& entries() const { return entries_; }

 private:
  BlocklistConnector(ConnectorConfig config, const Clock* clock);
  absl::Status loadState();
  absl::Status rewrite();
  std::string render(int64_t now_ns) const;
  absl::Status runApplyCommand() const;

  ConnectorConfig config_;
  const Clock* clock_;
  std::map<std::string, Entry> entries_;  // canonical address -> entry
};

}  // namespace vigil::mgmt

// The process-wide EAL that every DpdkSource shares. DPDK allows rte_eal_init once per
// process and nothing after rte_eal_cleanup, so this file keeps the one reference count
// and the arguments EAL was started with. No DPDK types appear here.
#pragma once

#include <string>
#include <vector>

namespace vigil::dataplane::internal {

// Takes a reference on the EAL, calling rte_eal_init with `args` (program name added) on
// the first call. A later call while the EAL is up must pass the same `args`. Returns
// false with `error` set when rte_eal_init fails (with rte_errno's text), when it failed
// before, when the EAL was already cleaned up, or when `args` differ. Thread-safe
// (control plane: takes a mutex).
bool acquireEal(const std::vector<std::string>& args, std::string& error);

// Drops a reference taken by acquireEal(). The last one calls rte_eal_cleanup, and from
// then on acquireEal() fails for the rest of the process. Thread-safe.
void releaseEal();

}  // namespace vigil::dataplane::internal

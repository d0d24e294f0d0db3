#include "dataplane/internal/dpdk_eal.h"

#if VIGIL_WITH_DPDK

#include <pthread.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <sched.h>

#include <mutex>

#include "common/log.h"

namespace vigil::dataplane::internal {
namespace {

enum class EalState { kUninitialized, kRunning, kFailed, kCleanedUp };

struct EalGuard {
  std::mutex mu;
  EalState state = EalState::kUninitialized;
  int references = 0;
  std::vector<std::string> args;
  std::string init_error;
  // rte_eal_init reorders argv and may keep pointers into it, so the strings it was
  // given live as long as the process.
  std::vector<std::string> argv_storage;
  std::vector<char*> argv;
};

EalGuard& guard() {
  static EalGuard* instance = new EalGuard();  // never destroyed: EAL may outlive main()
  return *instance;
}

std::string joinArgs(const std::vector<std::string>& args) {
  std::string joined;
  for (const std::string& arg : args) {
    if (!joined.empty()) joined += ' ';
    joined += arg;
  }
  return joined;
}

// Calls rte_eal_init and restores the caller's CPU affinity afterwards. EAL pins the
// calling thread to the first core of its -l list, and the caller is a control-plane
// thread whose later children (pipeline workers) would inherit that pinning.
bool initEal(EalGuard& g, const std::vector<std::string>& args, std::string& error) {
  g.argv_storage.clear();
  g.argv_storage.push_back("vigil");
  g.argv_storage.insert(g.argv_storage.end(), args.begin(), args.end());
  g.argv.clear();
  for (std::string& arg : g.argv_storage) g.argv.push_back(arg.data());
  g.argv.push_back(nullptr);

  cpu_set_t affinity;
  const bool saved_affinity =
      pthread_getaffinity_np(pthread_self(), sizeof(affinity), &affinity) == 0;

  const int parsed = rte_eal_init(static_cast<int>(g.argv.size() - 1), g.argv.data());
  if (parsed < 0) {
    const int code = rte_errno;
    g.state = EalState::kFailed;
    g.init_error = std::string("rte_eal_init failed: ") + rte_strerror(code) +
                   " (rte_errno=" + std::to_string(code) + ") with EAL args \"" + joinArgs(args) +
                   "\"; see the EAL log lines above for the cause";
    error = g.init_error;
    return false;
  }
  if (saved_affinity) pthread_setaffinity_np(pthread_self(), sizeof(affinity), &affinity);

  g.state = EalState::kRunning;
  g.args = args;
  VIGIL_LOG_INFO("DPDK EAL initialized args=\"{}\"", joinArgs(args));
  return true;
}

}  // namespace

bool acquireEal(const std::vector<std::string>& args, std::string& error) {
  EalGuard& g = guard();
  std::lock_guard<std::mutex> lock(g.mu);
  switch (g.state) {
    case EalState::kUninitialized:
      if (!initEal(g, args, error)) return false;
      break;
    case EalState::kRunning:
      if (args != g.args) {
        error = "EAL is already running with args \"" + joinArgs(g.args) +
                "\" but this source asks for \"" + joinArgs(args) +
                "\"; give every DPDK source in one process the same eal_args";
        return false;
      }
      break;
    case EalState::kFailed:
      error = "EAL cannot be initialized again in this process after an earlier failure (" +
              g.init_error + "); restart the process";
      return false;
    case EalState::kCleanedUp:
      error =
          "EAL was already cleaned up in this process and DPDK cannot initialize it twice; "
          "restart the process to start a DPDK source again";
      return false;
  }
  ++g.references;
  return true;
}

void releaseEal() {
  EalGuard& g = guard();
  std::lock_guard<std::mutex> lock(g.mu);
  if (g.state != EalState::kRunning || g.references == 0) return;
  if (--g.references > 0) return;
  const int rc = rte_eal_cleanup();
  g.state = EalState::kCleanedUp;
  if (rc != 0) {
    VIGIL_LOG_WARN("DPDK rte_eal_cleanup failed error=\"{}\"", logText(rte_strerror(-rc)));
  } else {
    VIGIL_LOG_INFO("DPDK EAL cleaned up");
  }
}

}  // namespace vigil::dataplane::internal

#endif  // VIGIL_WITH_DPDK

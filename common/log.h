// Logging for the whole appliance: spdlog behind a few macros. Messages are one line,
// a short sentence followed by key=value pairs with the ids involved, for example
//   VIGIL_LOG_INFO("source started source={} addr={}", id, addr);
// Libraries on the scan side (intel matcher, playbook VM) do not log; they return status
// and bump counters, and the host decides what to log.
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace vigil {

// Sets up the process logger on stderr at `level` ("trace", "debug", "info", "warn",
// "error", "critical"). Calling it again replaces the logger and its level.
void initLogging(const std::string& level);

// Returns `text` for a quoted log value. Valid UTF-8 stays as it is. Control bytes, quotes,
// backslashes and bytes of invalid UTF-8 become \xNN, so that a value read from the network
// cannot break the line or write raw bytes into the log.
std::string logText(std::string_view text);

// True on the 1st, 2nd, 4th, 8th, ... call with the same counter; used to rate-limit
// repeated warnings from hot paths.
inline bool shouldLogPow2(std::atomic<uint64_t>& hits) {
  uint64_t n = hits.fetch_add(1, std::memory_order_relaxed) + 1;
  return (n & (n - 1)) == 0;
}

}  // namespace vigil

#define VIGIL_LOG_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)
#define VIGIL_LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define VIGIL_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define VIGIL_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define VIGIL_LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)

// Logs at most on power-of-two repeats of this call site; the count is appended.
#define VIGIL_LOG_WARN_POW2(fmt_str, ...)                                             \
  do {                                                                                \
    static std::atomic<uint64_t> vigil_log_hits_{0};                                  \
    if (::vigil::shouldLogPow2(vigil_log_hits_)) {                                    \
      ::spdlog::warn(fmt_str " repeats={}", __VA_ARGS__,                              \
                     vigil_log_hits_.load(std::memory_order_relaxed));                \
    }                                                                                 \
  } while (0)

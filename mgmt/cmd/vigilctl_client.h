// Shared pieces of vigilctl: global options and a small JSON client for the vigild API.
// Each command group registers itself from its own file (vigilctl_cases.cc, ...).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace vigil::ctl {

inline constexpr const char* kDefaultApiUrl = "http://127.0.0.1:8080";

// Options every command reads. Filled by CLI11 before any command callback runs.
struct GlobalOptions {
  std::string api_url = kDefaultApiUrl;
};

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// Sends GET `path` with `params` to the API at `api_url` and parses the JSON body.
// Errors: Unavailable when the server cannot be reached (the message names the URL and
// suggests --api), the API's own error message for non-2xx responses, and Internal for a
// body that is not JSON.
absl::StatusOr<nlohmann::json> getJson(const std::string& api_url, const std::string& path,
                                       const QueryParams& params = {});

// The status and parsed body of an API response; the body is null when it is not JSON.
struct ApiReply {
  int status = 0;
  nlohmann::json body;
};

// Sends POST `path` with `params` and the JSON `body`, and returns the reply whatever its
// status, so callers can print the details of a 4xx body. Errors only when the server
// cannot be reached (Unavailable, naming the URL) or --api is not a URL.
absl::StatusOr<ApiReply> postJson(const std::string& api_url, const std::string& path,
                                  const QueryParams& params, const nlohmann::json& body);

// Replaces control characters with \xNN so text from logs cannot drive the terminal.
std::string printable(absl::string_view text);

// Prints `message` as "vigilctl: <message>" on stderr and throws the CLI11 error that
// makes main() return `exit_code`.
[[noreturn]] void fail(absl::string_view message, int exit_code = 1);

// Registers "vigilctl cases list|show".
void registerCasesCommands(CLI::App& app, const GlobalOptions& options);

// Registers "vigilctl parse", which works offline and never contacts the API.
void registerParseCommands(CLI::App& app);

}  // namespace vigil::ctl

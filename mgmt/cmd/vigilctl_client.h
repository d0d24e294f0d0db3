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
  std::string token;    // API token (--token or $VIGIL_TOKEN); sent as a Bearer token
  std::string ca_cert;  // PEM CA file that signs the API's certificate (--ca-cert), for https
  std::string api_url_error;  // why $VIGIL_API is unusable; "" when it is fine or --api is set
};

// Checks an API base URL as --api or $VIGIL_API gives it and drops trailing slashes, so
// paths join without "//". Returns an error message naming the value, or "" when `url` is
// http:// or https:// with a host and no path.
std::string normalizeApiUrl(std::string& url);

// Returns a validator of an integer option of at least `min`, whose message names the value,
// `label` ("run id") and the bound. CLI11's PositiveNumber prints the largest double instead.
CLI::Validator integerAtLeast(int64_t min, const std::string& label);

// Makes every request of this process carry the token and CA of `options`, which must
// outlive all requests. main() calls it once before parsing; the values are read at
// request time, after CLI11 has filled them.
void useGlobalOptions(const GlobalOptions* options);

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// Sends GET `path` with `params` to the API at `api_url` and parses the JSON body.
// Errors: Unavailable when the server cannot be reached (the message names the URL and
// suggests --api), Unauthenticated for 401 (suggests --token), the API's own error message
// for other non-2xx responses, and Internal for a body that is not JSON.
absl::StatusOr<nlohmann::json> getJson(const std::string& api_url, const std::string& path,
                                       const QueryParams& params = {});

// Sends `method` (POST, PUT, PATCH, DELETE) with a JSON body (none when `body` is null)
// and parses the JSON response, with the errors of getJson().
absl::StatusOr<nlohmann::json> sendJson(const std::string& api_url, const std::string& method,
                                        const std::string& path, const nlohmann::json& body);

// Sends `method` (GET, POST, PATCH or DELETE) with `body` of `content_type` and parses the JSON
// reply. Errors as for getJson; the message starts with the method.
absl::StatusOr<nlohmann::json> sendJson(const std::string& api_url, const std::string& method,
                                        const std::string& path, const QueryParams& params,
                                        const std::string& body,
                                        const std::string& content_type = "application/json");

// GETs `path` and returns the raw body (for file downloads). Errors as for getJson.
absl::StatusOr<std::string> getBytes(const std::string& api_url, const std::string& path);

// Sends POST `path` with the JSON `body` and parses the JSON answer. Errors as getJson(),
// plus FailedPrecondition for a 409 answer.
absl::StatusOr<nlohmann::json> postJson(const std::string& api_url, const std::string& path,
                                        const nlohmann::json& body);

// The status and parsed body of an API response; the body is null when it is not JSON.
struct ApiReply {
  int status = 0;
  nlohmann::json body;
};

// Sends POST `path` with `params` and the JSON `body`, and returns the reply whatever its
// status, so callers can print the details of a 4xx body. Errors only when the server
// cannot be reached (Unavailable, naming the URL) or --api is not a URL.
absl::StatusOr<ApiReply> postJsonReply(const std::string& api_url, const std::string& path,
                                       const QueryParams& params, const nlohmann::json& body);

// Sends DELETE `path` with `params` and returns the reply whatever its status, as
// postJsonReply() does.
absl::StatusOr<ApiReply> deleteReply(const std::string& api_url, const std::string& path,
                                     const QueryParams& params);

// Replaces control characters with \xNN so text from logs cannot drive the terminal.
std::string printable(absl::string_view text);

// Returns member `key` of `j` as display text: strings unquoted, other values as JSON,
// control characters escaped; "" when absent.
std::string field(const nlohmann::json& j, const char* key);

// Prints rows as columns padded to their widest cell, each line starting with `indent`.
void printTable(const std::vector<std::vector<std::string>>& rows, const std::string& indent);

// Prints the fields of one case (as served by /api/v1/cases/{id}) as a two-column table.
void printCase(const nlohmann::json& c);

// Prints `message` as "vigilctl: <message>" on stderr and throws the CLI11 error that
// makes main() return `exit_code`.
[[noreturn]] void fail(absl::string_view message, int exit_code = 1);

// Registers "vigilctl cases list|show".
void registerCasesCommands(CLI::App& app, const GlobalOptions& options);

// Registers "vigilctl runs list|show|approvals|approve|deny".
void registerRunsCommands(CLI::App& app, const GlobalOptions& options);

// Registers "vigilctl parse", which works offline and never contacts the API.
void registerParseCommands(CLI::App& app);

// Registers "vigilctl tokens", "vigilctl tenants" and "vigilctl audit" (vigilctl_tokens.cc).
void registerAuthCommands(CLI::App& app, const GlobalOptions& options);

}  // namespace vigil::ctl

#include "mgmt/cmd/vigilctl_client.h"

#include <httplib.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <stdexcept>

#include <algorithm>
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace vigil::ctl {

CLI::Validator integerAtLeast(int64_t min, const std::string& label) {
  return CLI::Validator(
      [min, label](std::string& value) -> std::string {
        size_t used = 0;
        long long parsed = 0;
        try {
          parsed = std::stoll(value, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != value.size() || parsed < min) {
          return absl::StrCat("'", value, "' is not a valid ", label, "; give an integer >= ", min);
        }
        return std::string();
      },
      absl::StrCat("INT>=", min));
}

std::string normalizeApiUrl(std::string& url) {
  while (url.size() > 1 && url.back() == '/') url.pop_back();
  const std::string hint = absl::StrCat("; use http://HOST:PORT or https://HOST:PORT such as ",
                                        kDefaultApiUrl);
  size_t host = 0;
  if (absl::StartsWith(url, "http://")) {
    host = 7;
  } else if (absl::StartsWith(url, "https://")) {
    host = 8;
  } else {
    return absl::StrCat("API URL '", url, "' does not start with http:// or https://", hint);
  }
  if (host == url.size()) return absl::StrCat("API URL '", url, "' has no host", hint);
  if (url.find('/', host) != std::string::npos) {
    return absl::StrCat("API URL '", url, "' has a path; give only the scheme, host and port",
                        hint);
  }
  return "";
}

namespace {

constexpr time_t kConnectTimeoutSeconds = 5;
constexpr time_t kReadTimeoutSeconds = 30;

std::string describeUrl(const std::string& api_url, const std::string& path,
                        const QueryParams& params) {
  std::string url = absl::StrCat(api_url, path);
  char separator = '?';
  for (const auto& [name, value] : params) {
    absl::StrAppend(&url, std::string(1, separator), name, "=", value);
    separator = '&';
  }
  return url;
}

const GlobalOptions* global_options = nullptr;

// A client for `api_url` with timeouts, the bearer token and the CA file applied.
absl::StatusOr<std::unique_ptr<httplib::Client>> makeClient(const std::string& api_url) {
  if (global_options != nullptr && !global_options->api_url_error.empty()) {
    return absl::InvalidArgumentError(global_options->api_url_error);
  }
  auto client = std::make_unique<httplib::Client>(api_url);
  if (!client->is_valid()) {
    return absl::InvalidArgumentError(absl::StrCat("--api ", api_url,
                                                   " is not a valid URL; use http://HOST:PORT or "
                                                   "https://HOST:PORT such as ",
                                                   kDefaultApiUrl));
  }
  client->set_connection_timeout(kConnectTimeoutSeconds);
  client->set_read_timeout(kReadTimeoutSeconds);
  if (global_options != nullptr) {
    if (!global_options->token.empty()) client->set_bearer_token_auth(global_options->token);
    if (!global_options->ca_cert.empty()) client->set_ca_cert_path(global_options->ca_cert);
  }
  return client;
}

// Turns a transport failure or a non-2xx response into a status; parses the body.
absl::StatusOr<nlohmann::json> readResponse(const std::string& what, const httplib::Result& result) {
  if (!result) {
    std::string hint = "check that vigild is running, or pass --api URL (or set VIGIL_API)";
    if (result.error() == httplib::Error::SSLServerVerification) {
      hint = "pass the CA that signed the API certificate with --ca-cert FILE";
    } else if (result.error() == httplib::Error::SSLConnection) {
      hint = "check that the URL scheme (http or https) matches api.tls in the vigild config";
    }
    return absl::UnavailableError(absl::StrCat(
        what, " failed: ", httplib::to_string(result.error()), " error; ", hint));
  }
  nlohmann::json body = nlohmann::json::parse(result->body, nullptr, /*allow_exceptions=*/false);
  if (result->status < 200 || result->status >= 300) {
    std::string message = absl::StrCat("HTTP ", result->status);
    if (body.is_object() && body.contains("error") && body["error"].is_object()) {
      absl::StrAppend(&message, ": ", body["error"].value("message", std::string()));
    }
    absl::StatusCode code = absl::StatusCode::kUnknown;
    if (result->status == 404) code = absl::StatusCode::kNotFound;
    if (result->status == 401) {
      code = absl::StatusCode::kUnauthenticated;
      absl::StrAppend(&message, " (pass --token or set VIGIL_TOKEN)");
    }
    if (result->status == 403) code = absl::StatusCode::kPermissionDenied;
    if (result->status == 409) code = absl::StatusCode::kFailedPrecondition;
    return absl::Status(code, absl::StrCat(what, " failed with ", message));
  }
  if (body.is_discarded()) {
    return absl::InternalError(
        absl::StrCat(what, " returned a body that is not JSON; is --api pointing at vigild?"));
  }
  return body;
}

}  // namespace

void useGlobalOptions(const GlobalOptions* options) { global_options = options; }

absl::StatusOr<nlohmann::json> getJson(const std::string& api_url, const std::string& path,
                                       const QueryParams& params) {
  const std::string url = describeUrl(api_url, path, params);
  absl::StatusOr<std::unique_ptr<httplib::Client>> client = makeClient(api_url);
  if (!client.ok()) return client.status();
  httplib::Params query(params.begin(), params.end());
  httplib::Result result = (*client)->Get(path, query, httplib::Headers{});
  return readResponse(absl::StrCat("GET ", url), result);
}

absl::StatusOr<nlohmann::json> sendJson(const std::string& api_url, const std::string& method,
                                        const std::string& path, const nlohmann::json& body) {
  const std::string what = absl::StrCat(method, " ", api_url, path);
  absl::StatusOr<std::unique_ptr<httplib::Client>> client = makeClient(api_url);
  if (!client.ok()) return client.status();
  const std::string text = body.is_null() ? std::string() : body.dump();
  const char* type = "application/json";
  httplib::Result result(nullptr, httplib::Error::Unknown);
  if (method == "POST") {
    result = (*client)->Post(path, text, type);
  } else if (method == "PUT") {
    result = (*client)->Put(path, text, type);
  } else if (method == "PATCH") {
    result = (*client)->Patch(path, text, type);
  } else if (method == "DELETE") {
    result = body.is_null() ? (*client)->Delete(path) : (*client)->Delete(path, text, type);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unsupported method ", method));
  }
  return readResponse(what, result);
}

absl::StatusOr<nlohmann::json> sendJson(const std::string& api_url, const std::string& method,
                                        const std::string& path, const QueryParams& params,
                                        const std::string& body, const std::string& content_type) {
  const std::string what = absl::StrCat(method, " ", describeUrl(api_url, path, params));
  absl::StatusOr<std::unique_ptr<httplib::Client>> client = makeClient(api_url);
  if (!client.ok()) return client.status();
  const std::string target =
      httplib::append_query_params(path, httplib::Params(params.begin(), params.end()));
  httplib::Result result(nullptr, httplib::Error::Unknown);
  if (method == "GET") {
    result = (*client)->Get(target);
  } else if (method == "PATCH") {
    result = (*client)->Patch(target, body, content_type.c_str());
  } else if (method == "POST") {
    result = (*client)->Post(target, body, content_type.c_str());
  } else if (method == "DELETE") {
    result = (*client)->Delete(target, body, content_type.c_str());
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unsupported method ", method));
  }
  return readResponse(what, result);
}

absl::StatusOr<std::string> getBytes(const std::string& api_url, const std::string& path) {
  const std::string what = absl::StrCat("GET ", api_url, path);
  absl::StatusOr<std::unique_ptr<httplib::Client>> client = makeClient(api_url);
  if (!client.ok()) return client.status();
  httplib::Result result = (*client)->Get(path);
  if (result && result->status >= 200 && result->status < 300) return result->body;
  absl::StatusOr<nlohmann::json> error = readResponse(what, result);
  if (!error.ok()) return error.status();
  return absl::InternalError(absl::StrCat(what, " failed"));
}

absl::StatusOr<nlohmann::json> postJson(const std::string& api_url, const std::string& path,
                                        const nlohmann::json& body) {
  return sendJson(api_url, "POST", path, body);
}

namespace {

absl::StatusOr<ApiReply> sendReply(const std::string& api_url, const std::string& method,
                                   const std::string& path, const QueryParams& params,
                                   const nlohmann::json* body) {
  const std::string url = describeUrl(api_url, path, params);
  absl::StatusOr<std::unique_ptr<httplib::Client>> client = makeClient(api_url);
  if (!client.ok()) return client.status();
  std::string target = httplib::append_query_params(
      path, httplib::Params(params.begin(), params.end()));
  httplib::Result result = body != nullptr
                               ? (*client)->Post(target, body->dump(), "application/json")
                               : (*client)->Delete(target);
  if (!result) {
    return absl::UnavailableError(
        absl::StrCat(method, " ", url, " failed: ", httplib::to_string(result.error()),
                     " error; check that vigild is running, or pass --api URL (or set VIGIL_API)"));
  }
  ApiReply reply;
  reply.status = result->status;
  reply.body = nlohmann::json::parse(result->body, nullptr, /*allow_exceptions=*/false);
  if (reply.body.is_discarded()) reply.body = nullptr;
  return reply;
}

}  // namespace

absl::StatusOr<ApiReply> postJsonReply(const std::string& api_url, const std::string& path,
                                       const QueryParams& params, const nlohmann::json& body) {
  return sendReply(api_url, "POST", path, params, &body);
}

absl::StatusOr<ApiReply> deleteReply(const std::string& api_url, const std::string& path,
                                     const QueryParams& params) {
  return sendReply(api_url, "DELETE", path, params, nullptr);
}

std::string printable(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      char escaped[5];
      std::snprintf(escaped, sizeof(escaped), "\\x%02x", byte);
      out += escaped;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

void fail(absl::string_view message, int exit_code) {
  std::cerr << "vigilctl: " << message << "\n";
  throw CLI::RuntimeError(exit_code);
}

// Returns member `key` of `j` as display text: strings unquoted, other values as JSON.
std::string field(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return "";
  const nlohmann::json& value = j[key];
  if (value.is_string()) return printable(value.get<std::string>());
  return printable(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

// Prints rows as columns padded to their widest cell; the last column is not padded.
void printTable(const std::vector<std::vector<std::string>>& rows, const std::string& indent) {
  if (rows.empty()) return;
  std::vector<size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line = indent;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

}  // namespace vigil::ctl

#include "mgmt/cmd/vigilctl_client.h"

#include <httplib.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "absl/strings/str_cat.h"

namespace vigil::ctl {
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

// The API's error message from a non-2xx reply, prefixed with the HTTP status.
absl::Status replyError(const std::string& method, const std::string& url,
                        const httplib::Response& reply) {
  std::string message = absl::StrCat("HTTP ", reply.status);
  nlohmann::json body = nlohmann::json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    absl::StrAppend(&message, ": ", body["error"].value("message", std::string()));
  }
  return absl::Status(
      reply.status == 404 ? absl::StatusCode::kNotFound : absl::StatusCode::kUnknown,
      absl::StrCat(method, " ", url, " failed with ", message));
}

absl::StatusOr<httplib::Result> sendRequest(const std::string& api_url, const std::string& method,
                                            const std::string& path, const QueryParams& params,
                                            const std::string& body,
                                            const std::string& content_type) {
  const std::string url = describeUrl(api_url, path, params);
  httplib::Client client(api_url);
  if (!client.is_valid()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--api ", api_url, " is not a valid URL; use http://HOST:PORT such as ", kDefaultApiUrl));
  }
  client.set_connection_timeout(kConnectTimeoutSeconds);
  client.set_read_timeout(kReadTimeoutSeconds);
  const std::string target =
      httplib::append_query_params(path, httplib::Params(params.begin(), params.end()));
  httplib::Result result = method == "GET"     ? client.Get(target)
                           : method == "PATCH" ? client.Patch(target, body, content_type.c_str())
                                               : client.Post(target, body, content_type.c_str());
  if (!result) {
    return absl::UnavailableError(
        absl::StrCat(method, " ", url, " failed: ", httplib::to_string(result.error()),
                     " error; check that vigild is running, or pass --api URL (or set VIGIL_API)"));
  }
  if (result->status < 200 || result->status >= 300) return replyError(method, url, *result);
  return result;
}

}  // namespace

absl::StatusOr<nlohmann::json> sendJson(const std::string& api_url, const std::string& method,
                                        const std::string& path, const QueryParams& params,
                                        const std::string& body, const std::string& content_type) {
  absl::StatusOr<httplib::Result> result =
      sendRequest(api_url, method, path, params, body, content_type);
  if (!result.ok()) return result.status();
  nlohmann::json parsed =
      nlohmann::json::parse((*result)->body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return absl::InternalError(absl::StrCat(method, " ", describeUrl(api_url, path, params),
                                            " returned a body that is not JSON; is --api "
                                            "pointing at vigild?"));
  }
  return parsed;
}

absl::StatusOr<std::string> getBytes(const std::string& api_url, const std::string& path) {
  absl::StatusOr<httplib::Result> result = sendRequest(api_url, "GET", path, {}, "", "");
  if (!result.ok()) return result.status();
  return (*result)->body;
}

absl::StatusOr<nlohmann::json> getJson(const std::string& api_url, const std::string& path,
                                       const QueryParams& params) {
  const std::string url = describeUrl(api_url, path, params);
  httplib::Client client(api_url);
  if (!client.is_valid()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--api ", api_url, " is not a valid URL; use http://HOST:PORT such as ", kDefaultApiUrl));
  }
  client.set_connection_timeout(kConnectTimeoutSeconds);
  client.set_read_timeout(kReadTimeoutSeconds);

  httplib::Params query(params.begin(), params.end());
  httplib::Result result = client.Get(path, query, httplib::Headers{});
  if (!result) {
    return absl::UnavailableError(
        absl::StrCat("GET ", url, " failed: ", httplib::to_string(result.error()),
                     " error; check that vigild is running, or pass --api URL (or set VIGIL_API)"));
  }

  nlohmann::json body = nlohmann::json::parse(result->body, nullptr, /*allow_exceptions=*/false);
  if (result->status < 200 || result->status >= 300) {
    std::string message = absl::StrCat("HTTP ", result->status);
    if (body.is_object() && body.contains("error") && body["error"].is_object()) {
      absl::StrAppend(&message, ": ", body["error"].value("message", std::string()));
    }
    return absl::Status(
        result->status == 404 ? absl::StatusCode::kNotFound : absl::StatusCode::kUnknown,
        absl::StrCat("GET ", url, " failed with ", message));
  }
  if (body.is_discarded()) {
    return absl::InternalError(absl::StrCat(
        "GET ", url, " returned a body that is not JSON; is --api pointing at vigild?"));
  }
  return body;
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

#include "mgmt/cmd/vigilctl_client.h"

#include <httplib.h>

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

}  // namespace

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

absl::StatusOr<ApiReply> postJson(const std::string& api_url, const std::string& path,
                                  const QueryParams& params, const nlohmann::json& body) {
  const std::string url = describeUrl(api_url, path, params);
  httplib::Client client(api_url);
  if (!client.is_valid()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--api ", api_url, " is not a valid URL; use http://HOST:PORT such as ", kDefaultApiUrl));
  }
  client.set_connection_timeout(kConnectTimeoutSeconds);
  client.set_read_timeout(kReadTimeoutSeconds);
  std::string target = httplib::append_query_params(
      path, httplib::Params(params.begin(), params.end()));
  httplib::Result result = client.Post(target, body.dump(), "application/json");
  if (!result) {
    return absl::UnavailableError(
        absl::StrCat("POST ", url, " failed: ", httplib::to_string(result.error()),
                     " error; check that vigild is running, or pass --api URL (or set VIGIL_API)"));
  }
  ApiReply reply;
  reply.status = result->status;
  reply.body = nlohmann::json::parse(result->body, nullptr, /*allow_exceptions=*/false);
  if (reply.body.is_discarded()) reply.body = nullptr;
  return reply;
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

}  // namespace vigil::ctl

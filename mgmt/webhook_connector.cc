#include "mgmt/webhook_connector.h"

#include <httplib.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/json_depth.h"
#include "common/log.h"
#include "mgmt/action_router.h"

namespace vigil::mgmt {
namespace {

using json = nlohmann::json;
namespace pb = playbook_vm;

constexpr size_t kLoggedBodyBytes = 200;
constexpr std::string_view kRedacted = "[redacted]";
// Shorter words of a header value are not redacted on their own, because they are
// likely to be common text such as an auth scheme name.
constexpr size_t kMinRedactedWordBytes = 8;

// Returns the texts to remove from response bodies for the header values: each value, its
// JSON-escaped form and its space-separated words of kMinRedactedWordBytes or more, longest
// first so that a value is replaced before its words.
std::vector<std::string> secretTexts(
    const std::vector<std::pair<std::string, std::string>>& headers) {
  std::vector<std::string> texts;
  for (const auto& [name, value] : headers) {
    if (value.empty()) continue;
    texts.push_back(value);
    std::string escaped = json(value).dump(-1, ' ', false, json::error_handler_t::replace);
    texts.push_back(escaped.substr(1, escaped.size() - 2));
    for (absl::string_view word : absl::StrSplit(value, absl::ByAnyChar(" \t"))) {
      if (word.size() >= kMinRedactedWordBytes) texts.emplace_back(word.data(), word.size());
    }
  }
  std::sort(texts.begin(), texts.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() > b.size() : a < b;
  });
  texts.erase(std::unique(texts.begin(), texts.end()), texts.end());
  return texts;
}

std::string redactText(const std::vector<std::string>& secrets, std::string text) {
  for (const std::string& secret : secrets) {
    for (size_t at = text.find(secret); at != std::string::npos;
         at = text.find(secret, at + kRedacted.size())) {
      text.replace(at, secret.size(), kRedacted);
    }
  }
  return text;
}

// Redacts every string and object key in `value`. The caller bounds the nesting depth
// (jsonNestsDeeper), so the recursion is bounded too.
void redactJson(const std::vector<std::string>& secrets, json& value) {
  if (value.is_string()) {
    value = redactText(secrets, value.get<std::string>());
  } else if (value.is_array()) {
    for (json& item : value) redactJson(secrets, item);
  } else if (value.is_object()) {
    json redacted = json::object();
    for (auto& [key, item] : value.items()) {
      redactJson(secrets, item);
      redacted[redactText(secrets, key)] = std::move(item);
    }
    value = std::move(redacted);
  }
}

// Returns a transport failure in words. httplib::to_string() gives only the enum name
// ("Read", "Connection").
std::string transportErrorText(httplib::Error error) {
  switch (error) {
    case httplib::Error::Connection:
      return "cannot connect (refused, unreachable or timed out); check the URL and that the "
             "receiver is up";
    case httplib::Error::Read:
      return "reading the response failed or timed out";
    case httplib::Error::Write:
      return "sending the request failed or timed out";
    case httplib::Error::SSLConnection:
      return "the TLS handshake failed";
    case httplib::Error::SSLServerVerification:
      return "the server's TLS certificate did not verify";
    case httplib::Error::ConnectionTimeout:
      return "connecting timed out";
    default:
      return absl::StrCat("transport error ", httplib::to_string(error));
  }
}

std::string ownedString(std::string_view text) { return std::string(text); }

// An HTTP header name: one or more token characters (RFC 9110 section 5.6.2).
bool isHeaderName(const std::string& name) {
  if (name.empty()) return false;
  for (char ch : name) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(ch))) continue;
    if (std::string_view("!#$%&'*+-.^_`|~").find(ch) == std::string_view::npos) return false;
  }
  return true;
}

}  // namespace

std::string urlForDisplay(const std::string& url) {
  const size_t scheme_end = url.find("://");
  const size_t host_start = scheme_end == std::string::npos ? 0 : scheme_end + 3;
  const size_t authority_end = url.find_first_of("/?#", host_start);
  const std::string authority =
      url.substr(host_start, authority_end == std::string::npos ? std::string::npos
                                                                : authority_end - host_start);
  const size_t at = authority.rfind('@');
  if (at == std::string::npos) return url;
  const size_t colon = authority.substr(0, at).find(':');
  const std::string userinfo =
      colon == std::string::npos ? "***" : authority.substr(0, colon) + ":***";
  return url.substr(0, host_start) + userinfo + url.substr(host_start + at);
}

absl::StatusOr<std::unique_ptr<WebhookConnector>> WebhookConnector::create(WebhookOptions options) {
  const std::string& url = options.url;
  const std::string shown_url = urlForDisplay(url);
  size_t scheme_end = url.find("://");
  std::string scheme = scheme_end == std::string::npos ? "" : url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    return absl::InvalidArgumentError(
        absl::StrCat("webhook url '", shown_url, "' must start with http:// or https://"));
  }
  size_t host_start = scheme_end + 3;
  size_t path_start = url.find('/', host_start);
  std::string authority = url.substr(
      host_start, path_start == std::string::npos ? std::string::npos : path_start - host_start);
  std::string path = path_start == std::string::npos ? "/" : url.substr(path_start);
  // Userinfo (user:password@) is sent as HTTP Basic authentication, and the origin that
  // logs and run records show keeps only the host and port.
  // NOTE: percent-encoded characters in the userinfo are sent as written, not decoded.
  if (size_t at = authority.rfind('@'); at != std::string::npos) {
    const std::string userinfo = authority.substr(0, at);
    authority.erase(0, at + 1);
    const size_t colon = userinfo.find(':');
    for (const auto& [name, value] : options.headers) {
      if (absl::EqualsIgnoreCase(name, "Authorization")) {
        return absl::InvalidArgumentError(
            absl::StrCat("webhook url '", shown_url,
                         "' has credentials and the headers have an "
                         "Authorization header; give only one of them"));
      }
    }
    options.headers.push_back(httplib::make_basic_authentication_header(
        userinfo.substr(0, colon), colon == std::string::npos ? "" : userinfo.substr(colon + 1)));
  }
  std::string host = authority;
  int port = scheme == "https" ? 443 : 80;
  size_t colon = authority.rfind(':');
  if (colon != std::string::npos && authority.find(']', colon) == std::string::npos) {
    host = authority.substr(0, colon);
    std::string_view digits = std::string_view(authority).substr(colon + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc() || end != digits.data() + digits.size() || port < 1 || port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("webhook url '", shown_url, "' has an invalid port; use 1 to 65535"));
    }
  }
  if (host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("webhook url '", shown_url, "' has no host"));
  }
  if (options.timeout < std::chrono::milliseconds(1) ||
      options.timeout > std::chrono::minutes(10)) {
    return absl::InvalidArgumentError(
        absl::StrCat("webhook timeout ", options.timeout.count(), " ms is outside 1 ms to 10 min"));
  }
  const std::string& key_header = options.idempotency_header;
  if (!key_header.empty()) {
    if (!isHeaderName(key_header)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "webhook idempotency header '", key_header,
          "' is not an HTTP header name; use letters, digits and - (e.g. Idempotency-Key)"));
    }
    for (const auto& [name, value] : options.headers) {
      if (absl::EqualsIgnoreCase(name, key_header)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "webhook header '", name, "' is also the idempotency header; remove it from the "
            "headers or name another idempotency header"));
      }
    }
  }
  std::string origin = absl::StrCat(scheme, "://", host, ":", port);
  return std::unique_ptr<WebhookConnector>(
      new WebhookConnector(std::move(options), std::move(origin), std::move(path)));
}

WebhookConnector::WebhookConnector(WebhookOptions options, std::string origin, std::string path)
    : options_(std::move(options)),
      origin_(std::move(origin)),
      path_(std::move(path)),
      secrets_(secretTexts(options_.headers)),
      client_(std::make_unique<httplib::Client>(origin_)) {
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(options_.timeout);
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(options_.timeout - seconds);
  client_->set_connection_timeout(seconds.count(), micros.count());
  client_->set_read_timeout(seconds.count(), micros.count());
  client_->set_write_timeout(seconds.count(), micros.count());
  client_->set_keep_alive(true);
}

WebhookConnector::~WebhookConnector() = default;

absl::Status WebhookConnector::perform(std::string_view action, const pb::List& params,
                                       pb::HostCall& call, pb::Value& result) {
  calls_.fetch_add(1, std::memory_order_relaxed);
  json body = {{"action", ownedString(action)}, {"params", json::object()}};
  for (uint32_t i = 0; i + 1 < params.size; i += 2) {
    const pb::Value& key = params.items[i];
    if (!key.isString()) continue;
    body["params"][ownedString(key.asString())] = pb::compiler::valueToJson(params.items[i + 1]);
  }
  if (options_.body == WebhookBody::kNotify) {
    const json& p = body["params"];
    auto text = [&](const char* key) {
      auto it = p.find(key);
      if (it == p.end() || it->is_null()) return std::string();
      return it->is_string() ? it->get<std::string>() : it->dump();
    };
    std::string message = text("text").empty() ? text("message") : text("text");
    if (message.empty()) message = pb::compiler::describeAction(action, params);
    body["text"] = message;
    body["channel"] = text("channel").empty() ? options_.channel : text("channel");
  }
  httplib::Headers headers(options_.headers.begin(), options_.headers.end());
  if (!options_.idempotency_header.empty()) {
    const RunContext& ctx = runContext(call);
    std::string key = ctx.action_key;
    if (key.empty()) {
      // Called without the ActionRouter (which sets the key): derive the same key here.
      key = actionIdempotencyKey(ctx, call.pc(), action,
                                 body["params"].dump(-1, ' ', false, json::error_handler_t::replace));
    }
    headers.emplace(options_.idempotency_header, std::move(key));
  }
  httplib::Request request;
  request.method = "POST";
  request.path = path_;
  request.headers = std::move(headers);
  request.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  request.set_header("Content-Type", "application/json");
  // The body is read through a receiver that stops at the size limit and at the call's
  // deadline. httplib's own timeouts apply to each read, so a server that sends a byte
  // now and then would otherwise hold the worker without end.
  const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
  std::string received;
  bool too_large = false;
  bool timed_out = false;
  request.content_receiver = [&](const char* data, size_t length, uint64_t, uint64_t) {
    if (std::chrono::steady_clock::now() > deadline) {
      timed_out = true;
      return false;
    }
    if (received.size() + length > options_.max_response_bytes) {
      too_large = true;
      return false;
    }
    received.append(data, length);
    return true;
  };
  httplib::Response reply;
  httplib::Error transport = httplib::Error::Success;
  const bool sent = client_->send(request, reply, transport);

  auto failed = [&](std::string message) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    VIGIL_LOG_WARN_POW2("webhook action failed action={} url={}{} error=\"{}\"",
                        ownedString(action), origin_, path_, logText(message));
    return absl::UnavailableError(message);
  };
  const std::string call_text = absl::StrCat("webhook POST ", origin_, path_);
  if (too_large) {
    return failed(absl::StrCat(call_text, " failed: the response is over ",
                               options_.max_response_bytes,
                               " bytes; raise max_response_bytes or return less"));
  }
  if (timed_out) {
    return failed(absl::StrCat(call_text, " timed out: the response did not arrive in full within ",
                               options_.timeout.count(), " ms"));
  }
  if (!sent) return failed(absl::StrCat(call_text, " failed: ", transportErrorText(transport)));
  // A receiver may echo the request headers (a debug endpoint, a proxy's error page), so
  // the body is redacted before any of it reaches the log, the run or the result.
  if (reply.status < 200 || reply.status > 299) {
    return failed(
        absl::StrCat(call_text, " returned HTTP ", reply.status, ": ",
                     redactText(secrets_, std::move(received)).substr(0, kLoggedBodyBytes)));
  }
  if (received.empty()) return absl::OkStatus();
  // A response nested deeper than kMaxJsonDepth is taken as text, as one that is not JSON,
  // because turning it into a VM value recurses once per level.
  json parsed = jsonNestsDeeper(received)
                    ? json(json::value_t::discarded)
                    : json::parse(received, nullptr, /*allow_exceptions=*/false);
  bool ok = true;
  if (parsed.is_discarded()) {
    std::optional<pb::Value> text = call.newString(redactText(secrets_, std::move(received)));
    ok = text.has_value();
    if (ok) result = *text;
  } else if (parsed.is_object() && parsed.contains("result")) {
    redactJson(secrets_, parsed["result"]);
    ok = pb::compiler::jsonToHeapValue(parsed["result"], call, result);
  } else {
    redactJson(secrets_, parsed);
    ok = pb::compiler::jsonToHeapValue(parsed, call, result);
  }
  if (!ok) return failed("the webhook response does not fit in the run heap");
  return absl::OkStatus();
}

}  // namespace vigil::mgmt

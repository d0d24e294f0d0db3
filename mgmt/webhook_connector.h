// A playbook connector that performs every action as an HTTP POST to one webhook URL.
//
// Request body: {"action": "edr.isolate_host", "params": {"host": "ws-1", ...}}.
// A 2xx response is the action's result: the "result" member of a JSON object body, else
// the whole JSON body, else the body as text (null when empty). Any other status, a
// transport error or a timeout fails the action, so the playbook's retry and on_error
// handle it. Configured header values (tokens) are sent but never logged, and the
// connector replaces them with "[redacted]" in every response body it returns or puts in
// an error, so a receiver that echoes request headers does not leak them.
//
// Every request carries the action's idempotency key (actionIdempotencyKey() in
// action_router.h) in the Idempotency-Key header, or the header WebhookOptions names. The
// key is the same for every attempt of one action of one run, also after a restart, so a
// receiver that stores keys can drop a repeat of an action it already performed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "playbook_vm/compiler/alert_host.h"

namespace httplib {
class Client;
}

namespace vigil::mgmt {

// Returns `url` for logs and error messages: the password of its userinfo becomes ***, as
// in http://admin:***@host/hook, and userinfo without a password becomes *** as a whole,
// because it is then usually a token.
std::string urlForDisplay(const std::string& url);

// kAction posts {"action", "params"}. kNotify posts a chat message, {"channel", "text",
// "action", "params"}, with text from the `text` or `message` parameter and channel from
// the `channel` parameter or WebhookOptions::channel.
enum class WebhookBody { kAction, kNotify };

struct WebhookOptions {
  std::string url;                          // http://host[:port][/path] or https://...
  // Connect and send each, and the whole response, from the request's start to its last byte.
  std::chrono::milliseconds timeout{5000};
  // Largest response body read; a larger one fails the action.
  size_t max_response_bytes = 1 << 20;
  std::vector<std::pair<std::string, std::string>> headers;
  WebhookBody body = WebhookBody::kAction;
  std::string channel;  // kNotify: channel when the action gives none
  // Header that carries the action's idempotency key; empty sends no key.
  std::string idempotency_header = "Idempotency-Key";
};

class WebhookConnector : public playbook_vm::compiler::ActionConnector {
 public:
  // Checks the URL (scheme http or https, a host, a port in 1..65535), the timeout (1 ms
  // to 10 min) and the idempotency header name (an HTTP token that no configured header
  // uses). Returns InvalidArgument naming the bad value.
  static absl::StatusOr<std::unique_ptr<WebhookConnector>> create(WebhookOptions options);
  ~WebhookConnector() override;

  // Blocks for the HTTP round trip, up to about three timeouts (connect, send, response).
  // One call at a time per connector: the HTTP client is not shared between threads.
  // call.context() must be the run's RunContext (action_router.h).
  absl::Status perform(std::string_view action, const playbook_vm::List& params,
                       playbook_vm::HostCall& call, playbook_vm::Value& result) override;

  uint64_t calls() const { return calls_.load(std::memory_order_relaxed); }
  uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }

 private:
  WebhookConnector(WebhookOptions options, std::string origin, std::string path);

  WebhookOptions options_;
  std::string origin_;  // scheme://host:port
  std::string path_;
  // Texts to redact from response bodies, longest first: each header value, its JSON
  // escaped form and each of its space-separated words of 8 or more bytes (the token
  // after "Bearer ").
  std::vector<std::string> secrets_;
  std::unique_ptr<httplib::Client> client_;
  std::atomic<uint64_t> calls_{0};
  std::atomic<uint64_t> failures_{0};
};

}  // namespace vigil::mgmt

// Requests that cpp-httplib rejects itself, before any route runs. These are a body over
// the payload limit or without a length, a malformed request line, a header line or
// request line over its limit, and a body that stops before its end. Each gets the API's
// JSON error body, a stable reason for the metrics and the audit log, and a message
// naming the limit and the fix.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include <httplib.h>

namespace vigil::mgmt::internal {

// The limits the server was configured with, for the messages.
struct RejectionLimits {
  size_t max_payload_bytes = 0;
  std::chrono::seconds read_timeout{0};
};

struct HttpRejection {
  int status = 400;     // HTTP status to send, which may differ from cpp-httplib's
  std::string reason;   // stable label such as "payload_too_large" or "length_required"
  std::string code;     // "code" of the JSON error body
  std::string message;  // "message" of the JSON error body
};

// Classifies a response that cpp-httplib produced without a route: `request` is as far as
// cpp-httplib parsed it and `status` is the status it chose. Turns the 400 of a body
// method without Content-Length or Transfer-Encoding into 411, and the 400 of a method no
// route serves into 405.
HttpRejection classifyHttpRejection(const httplib::Request& request, int status,
                                    const RejectionLimits& limits);

// True when cpp-httplib parsed the request line and headers of `request`, because it fills
// the peer address only after both parsed.
bool requestHeadersParsed(const httplib::Request& request);

}  // namespace vigil::mgmt::internal

#include "mgmt/internal/http_rejection.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace vigil::mgmt::internal {
namespace {

// cpp-httplib 0.11.4 rejects request lines longer than this with 414.
constexpr size_t kMaxRequestLineBytes = CPPHTTPLIB_REQUEST_URI_MAX_LENGTH;

// Methods whose body cpp-httplib 0.11.4 reads even without Content-Length, until the read
// timeout. A DELETE without Content-Length is routed at once (checked against vigild).
bool expectsBody(const std::string& method) {
  return method == "POST" || method == "PUT" || method == "PATCH";
}

// Methods that cpp-httplib 0.11.4 accepts in a request line (Server::parse_request_line).
bool knownMethod(const std::string& method) {
  return method == "GET" || method == "HEAD" || method == "POST" || method == "PUT" ||
         method == "DELETE" || method == "CONNECT" || method == "OPTIONS" || method == "TRACE" ||
         method == "PATCH" || method == "PRI";
}

// Methods the API routes. cpp-httplib rejects any other method it parses with 400.
bool routedMethod(const std::string& method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "DELETE" ||
         expectsBody(method);
}

HttpRejection rejectUnparsed(const httplib::Request& request, const RejectionLimits& limits) {
  HttpRejection rejection;
  rejection.code = "invalid_argument";
  const bool line_ok = knownMethod(request.method) && !request.target.empty() &&
                       (request.version == "HTTP/1.1" || request.version == "HTTP/1.0");
  if (!line_ok) {
    rejection.reason = "malformed_request_line";
    rejection.message =
        "the request line is malformed; send 'METHOD /path HTTP/1.1' ending in CRLF, with "
        "one of GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS";
    return rejection;
  }
  rejection.reason = "malformed_headers";
  rejection.message = absl::StrCat(
      "the headers of ", request.method, " ", request.path, " have a line over ",
      CPPHTTPLIB_HEADER_MAX_LENGTH, " bytes or did not end within the read timeout of ",
      limits.read_timeout.count(),
      " s; send shorter 'Name: value' lines ending in CRLF, then an empty line");
  return rejection;
}

}  // namespace

bool requestHeadersParsed(const httplib::Request& request) { return !request.remote_addr.empty(); }

HttpRejection classifyHttpRejection(const httplib::Request& request, int status,
                                    const RejectionLimits& limits) {
  HttpRejection rejection;
  rejection.status = status;
  const std::string call = absl::StrCat(request.method, " ", request.path);

  if (status == 413) {
    const std::string length = request.get_header_value("Content-Length");
    // cpp-httplib reads "-5" with strtoull, so a negative length arrives as a huge one.
    if (!length.empty() && !std::all_of(length.begin(), length.end(), [](char c) {
          return c >= '0' && c <= '9';
        })) {
      rejection.status = 400;
      rejection.reason = "invalid_content_length";
      rejection.code = "invalid_argument";
      rejection.message = absl::StrCat("the Content-Length of ", call, " is '",
                                       length.substr(0, 40),
                                       "', not a byte count; send the body's length in bytes");
      return rejection;
    }
    rejection.reason = "payload_too_large";
    rejection.code = "payload_too_large";
    rejection.message = absl::StrCat(
        "the request body of ", call,
        length.empty() ? "" : absl::StrCat(" (Content-Length ", length, ")"),
        " is over the limit of ", limits.max_payload_bytes,
        " bytes; send a smaller body (the limit follows cases.evidence_max_bytes)");
    return rejection;
  }
  if (status == 414) {
    rejection.reason = "uri_too_long";
    rejection.code = "uri_too_long";
    rejection.message = absl::StrCat("the request line is longer than ", kMaxRequestLineBytes,
                                     " bytes; shorten the path and query string");
    return rejection;
  }
  if (status == 400 && !requestHeadersParsed(request)) return rejectUnparsed(request, limits);
  if (status == 400 && !routedMethod(request.method)) {
    rejection.status = 405;
    rejection.reason = "method_not_allowed";
    rejection.code = "method_not_allowed";
    rejection.message = absl::StrCat(
        "method ", request.method,
        " is not served; use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS");
    return rejection;
  }
  if (status == 400 && expectsBody(request.method) && !request.has_header("Content-Length") &&
      !request.has_header("Transfer-Encoding")) {
    rejection.status = 411;
    rejection.reason = "length_required";
    rejection.code = "length_required";
    rejection.message = absl::StrCat(
        call, " has no Content-Length header, and the body did not end within the read timeout of ",
        limits.read_timeout.count(),
        " s; send Content-Length (0 for no body) or Transfer-Encoding: chunked");
    return rejection;
  }
  if (status == 400) {
    rejection.reason = "body_incomplete";
    rejection.code = "invalid_argument";
    rejection.message = absl::StrCat(
        "the body of ", call,
        " is shorter than its Content-Length, has malformed chunked encoding, or stalled past "
        "the read timeout of ",
        limits.read_timeout.count(), " s; send the whole body at once");
    return rejection;
  }
  rejection.reason = status >= 500 ? "internal" : absl::StrCat("http_", status);
  if (status >= 500) {
    rejection.code = "internal";
  } else if (status == 404) {
    rejection.code = "not_found";
  } else {
    rejection.code = "bad_request";
  }
  rejection.message = status >= 500 ? absl::StrCat("HTTP ", status, " on ", call,
                                                   " before any route ran; see the vigild log")
                                    : absl::StrCat("HTTP ", status, " on ", call);
  return rejection;
}

}  // namespace vigil::mgmt::internal

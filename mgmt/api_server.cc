#include "mgmt/api_server.h"

#include <httplib.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <exception>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "dataplane/tls_source.h"
#include "mgmt/internal/access_control.h"
#include "mgmt/internal/api_errors.h"
#include "mgmt/internal/auth_routes.h"
#include "mgmt/internal/case_json.h"
#include "mgmt/internal/case_routes.h"
#include "mgmt/internal/console_routes.h"
#include "mgmt/internal/http_rejection.h"
#include "mgmt/internal/router.h"

namespace vigil::mgmt {
namespace {

constexpr std::chrono::seconds kStartTimeout{5};

struct ListenAddress {
  std::string host;
  int port = 0;
};

// Accepts "host:port" and "[v6-address]:port".
absl::StatusOr<ListenAddress> parseListen(absl::string_view listen) {
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("listen=", listen, " is invalid: ", why,
                                                   "; use host:port such as 127.0.0.1:8080 "
                                                   "or [::1]:8080"));
  };
  size_t colon = listen.rfind(':');
  if (colon == absl::string_view::npos) return invalid("no port");
  ListenAddress address;
  absl::string_view host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != absl::string_view::npos) {
    return invalid("an IPv6 address needs brackets");
  }
  if (host.empty()) return invalid("no host");
  address.host = std::string(host);
  if (!absl::SimpleAtoi(listen.substr(colon + 1), &address.port) || address.port < 0 ||
      address.port > 65535) {
    return invalid("the port is not a number in 0..65535");
  }
  return address;
}

ApiRequest toApiRequest(const httplib::Request& req) {
  ApiRequest request;
  request.method = req.method;
  request.path = req.path;
  // cpp-httplib also parses an application/x-www-form-urlencoded body (curl's default
  // for -d) into req.params. Take the query from the request target only, so a body
  // is never read as query parameters.
  if (size_t mark = req.target.find('?'); mark != std::string::npos) {
    httplib::detail::parse_query_text(req.target.substr(mark + 1), request.query);
  }
  request.headers.insert(req.headers.begin(), req.headers.end());
  request.body = req.body;
  return request;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Errors: the only place that maps status codes to HTTP.

int httpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    // Another writer changed what the request was built on (a content push racing another
    // process): a conflict the client resolves by sending it again.
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

ApiResponse errorResponse(const absl::Status& status) {
  return internal::errorResponse(httpStatusFor(status.code()),
                                 internal::errorCodeName(status.code()), status.message());
}

namespace internal {

std::string errorCodeName(absl::StatusCode code) {
  return absl::AsciiStrToLower(absl::StatusCodeToString(code));
}

std::string errorBody(absl::string_view code, absl::string_view message) {
  nlohmann::json body = {
      {"error", {{"code", std::string(code)}, {"message", std::string(message)}}}};
  return dumpJson(body);
}

ApiResponse errorResponse(int http_status, absl::string_view code, absl::string_view message) {
  ApiResponse response;
  response.status = http_status;
  response.body = errorBody(code, message);
  return response;
}

}  // namespace internal

std::string ApiRequest::pathParam(absl::string_view name) const {
  auto it = path_params.find(std::string(name));
  return it == path_params.end() ? std::string() : it->second;
}

std::string ApiRequest::header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return value;
  }
  return "";
}

// ---------------------------------------------------------------------------------------
// Server

class ApiServer::Impl {
 public:
  Impl(CaseStore& store, MetricsRegistry& metrics, ApiServerOptions options)
      : store_(store),
        metrics_(metrics),
        options_(std::move(options)),
        access_(options_.auth, options_.audit, metrics) {}

  void addBuiltinRoutes();
  void createServer();
  void configureServer();
  void serve(const httplib::Request& req, httplib::Response& res);
  void serveWithBody(const httplib::Request& req, httplib::Response& res,
                     const httplib::ContentReader& read_body);
  bool readBody(const httplib::Request& req, const httplib::ContentReader& read_body,
                std::string& body, httplib::Response& res);
  void send(const ApiRequest& request, const internal::AccessState& state, ApiResponse response,
            httplib::Response& res);
  void countAndLog(const ApiRequest& request, const ApiResponse& response);
  void rejectBeforeRouting(const httplib::Request& req, httplib::Response& res);

  absl::Status checkReady() const;

  CaseStore& store_;
  MetricsRegistry& metrics_;
  ApiServerOptions options_;
  ReadinessCheck readiness_check_;
  internal::AccessControl access_;
  internal::Router router_;
  // An httplib::SSLServer when options_.tls is enabled.
  std::unique_ptr<httplib::Server> server_;
  // The reason the TLS context could not be set up, reported by start().
  std::string tls_error_;
  std::thread thread_;
  std::string bound_;
  bool running_ = false;
};

void ApiServer::Impl::addBuiltinRoutes() {
  router_.add(
      "GET", "/healthz",
      [](const ApiRequest&) -> absl::StatusOr<ApiResponse> {
        ApiResponse response;
        response.body = R"({"status":"ok"})";
        return response;
      },
      RouteAccess::kPublic);
  router_.add(
      "GET", "/readyz",
      [this](const ApiRequest&) -> absl::StatusOr<ApiResponse> {
        ApiResponse response;
        absl::Status ready = checkReady();
        nlohmann::json body = {{"status", ready.ok() ? "ready" : "not_ready"}};
        if (!ready.ok()) {
          response.status = 503;
          body["reason"] = std::string(ready.message());
        }
        response.body = internal::dumpJson(body);
        return response;
      },
      RouteAccess::kPublic);
  // The counters carry every tenant's labels, so only admins (or a local Prometheus when
  // the config allows it) read them.
  router_.add(
      "GET", "/metrics",
      [this](const ApiRequest&) -> absl::StatusOr<ApiResponse> {
        ApiResponse response;
        response.content_type = "text/plain; version=0.0.4";
        response.body = metrics_.renderPrometheus();
        return response;
      },
      options_.metrics_public_on_loopback ? RouteAccess::kPublicOnLoopback : RouteAccess::kAdmin);
  internal::addCaseRoutes(router_, store_, options_.auth);
  internal::addConsoleRoutes(router_);
  if (options_.auth != nullptr) {
    internal::addAuthRoutes(router_, {*options_.auth, options_.audit, &store_});
  }
}

// Queries one row of the case store, then runs the daemon's own check.
absl::Status ApiServer::Impl::checkReady() const {
  CaseFilter probe;
  probe.limit = 1;
  if (absl::StatusOr<CasePage> page = store_.listCases(probe); !page.ok()) {
    return absl::UnavailableError(
        absl::StrCat("case store ", store_.path(), " does not answer: ", page.status().message()));
  }
  if (readiness_check_) return readiness_check_();
  return absl::OkStatus();
}

void ApiServer::Impl::createServer() {
  if (!options_.tls.enabled()) {
    server_ = std::make_unique<httplib::Server>();
    return;
  }
  // The context is set up here rather than by httplib's file constructor, which leaves
  // OpenSSL's default pass phrase prompt in place, so an encrypted key would block start() on
  // the terminal. tls_error_ keeps the reason for start().
  const ApiTlsOptions& tls = options_.tls;
  server_ = std::make_unique<httplib::SSLServer>([this, &tls](SSL_CTX& ctx) {
    SSL_CTX_set_options(&ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
    tls_error_ = dataplane::loadCertificateAndKey(&ctx, tls.cert_file, tls.key_file);
    if (!tls_error_.empty()) return false;
    if (!tls.client_ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(&ctx, tls.client_ca_file.c_str(), nullptr) != 1) {
        ERR_clear_error();
        tls_error_ = absl::StrCat("client_ca_file '", tls.client_ca_file,
                                  "' could not be loaded; give a readable file of PEM CA "
                                  "certificates");
        return false;
      }
      SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    return true;
  });
}

void ApiServer::Impl::configureServer() {
  // Every method goes through the router, which decides between 404 and 405. Methods that
  // may carry a body get a content reader, so that serveWithBody() checks the token before
  // it reads the body.
  auto handler = [this](const httplib::Request& req, httplib::Response& res) { serve(req, res); };
  auto body_handler = [this](const httplib::Request& req, httplib::Response& res,
                             const httplib::ContentReader& read_body) {
    serveWithBody(req, res, read_body);
  };
  // cpp-httplib matches these patterns with std::regex, where "." never matches a line
  // break. So ".*" would leave a path with an encoded newline (%0A) unrouted, and that
  // request would get cpp-httplib's own 404 without a token check.
  const std::string any_path = "[\\s\\S]*";
  httplib::Server& server = *server_;
  server.Get(any_path, handler);
  server.Post(any_path, body_handler);
  server.Put(any_path, body_handler);
  server.Patch(any_path, body_handler);
  server.Delete(any_path, body_handler);
  server.Options(any_path, handler);

  // cpp-httplib 0.11.4's default_socket_options() also sets SO_REUSEPORT, which lets a second
  // vigild bind the same port and silently share its connections. Keep only SO_REUSEADDR,
  // so a restart can bind while old connections sit in TIME_WAIT.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  // An idle connection, before its first request line or between keep-alive requests,
  // gets the same limit as a stalled read.
  server.set_keep_alive_timeout(options_.read_timeout.count());
  server.set_read_timeout(options_.read_timeout);
  server.set_write_timeout(options_.write_timeout);
  // cpp-httplib 0.11.4 checks this limit only against a Content-Length header. readBody()
  // applies it to chunked bodies and to bodies without a length as well.
  server.set_payload_max_length(options_.max_payload_bytes);

  // cpp-httplib calls the error handler for every status >= 400 before it writes the
  // status line, including responses from the router, which already carry a body. An empty
  // body means cpp-httplib rejected the request itself, before any route ran.
  httplib::Server::HandlerWithResponse error_handler = [this](const httplib::Request& req,
                                                               httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    rejectBeforeRouting(req, res);
    return httplib::Server::HandlerResponse::Handled;
  };
  server.set_error_handler(std::move(error_handler));
  server.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string error_text = "unknown exception";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          error_text = e.what();
        } catch (...) {
        }
        VIGIL_LOG_ERROR("api request threw method={} path={} error=\"{}\"", logText(req.method),
                        logText(req.path), logText(error_text));
        res.status = 500;
        res.set_content(internal::errorBody("internal", "internal error; see the vigild log"),
                        "application/json");
      });
}

void ApiServer::Impl::serve(const httplib::Request& req, httplib::Response& res) {
  ApiRequest request = toApiRequest(req);
  request.principal.remote_addr = req.remote_addr;
  const std::string authorization = req.get_header_value("Authorization");
  internal::AccessState state;
  ApiResponse response =
      router_.dispatch(request, [&](ApiRequest& routed, RouteAccess access) {
        return access_.check(routed, access, authorization, state);
      });
  send(request, state, std::move(response), res);
}

// Serves POST, PUT, PATCH and DELETE. cpp-httplib calls this before it reads the body, so a
// request that fails the token or role check gets its 401 or 403 before any of its body is
// stored.
void ApiServer::Impl::serveWithBody(const httplib::Request& req, httplib::Response& res,
                                    const httplib::ContentReader& read_body) {
  ApiRequest request = toApiRequest(req);
  request.principal.remote_addr = req.remote_addr;
  internal::AccessState state;
  std::optional<ApiResponse> denied = access_.check(request, router_.accessFor(request),
                                                    req.get_header_value("Authorization"), state);
  if (denied) {
    // A body of a declared length within the limit is read and dropped, so the connection
    // stays in step for the client's next request. Any other body stays unread. cpp-httplib
    // 0.11.4 has no call to close a connection from a handler, so the response carries
    // "Connection: close" for the client to close it.
    // NOTE: a client that ignores that header and goes on sending may have the rest of its
    // body parsed as further requests, each rejected as a malformed request line.
    const std::string length = req.get_header_value("Content-Length");
    uint64_t declared = 0;
    const bool discard = !req.has_header("Transfer-Encoding") && !length.empty() &&
                         absl::SimpleAtoi(length, &declared) &&
                         declared <= options_.max_payload_bytes;
    if (!discard || !read_body([](const char*, size_t) { return true; })) {
      res.set_header("Connection", "close");
    }
    send(request, state, *std::move(denied), res);
    return;
  }
  if (!readBody(req, read_body, request.body, res)) return;
  send(request, state, router_.dispatch(request), res);
}

// Reads the body of `req` into `body`, up to options_.max_payload_bytes. On failure sets
// the status, 413 for a body over the limit and 400 for one that is malformed or stalls,
// and returns false. The response body stays empty, so the error handler writes the JSON
// error as for any request that cpp-httplib rejects itself.
bool ApiServer::Impl::readBody(const httplib::Request& req, const httplib::ContentReader& read_body,
                               std::string& body, httplib::Response& res) {
  bool over_limit = false;
  auto append = [&](const char* data, size_t size) {
    if (size > options_.max_payload_bytes - body.size()) {
      over_limit = true;
      return false;
    }
    body.append(data, size);
    return true;
  };
  bool complete = false;
  if (req.is_multipart_form_data()) {
    // cpp-httplib splits a multipart body into parts and offers no way to read it whole.
    // No route takes multipart bodies, so the parts count against the limit but are
    // dropped, and the route gets an empty body.
    size_t part_bytes = 0;
    complete = read_body([](const httplib::MultipartFormData&) { return true; },
                         [&](const char*, size_t size) {
                           part_bytes += size;
                           over_limit = part_bytes > options_.max_payload_bytes;
                           return !over_limit;
                         });
  } else {
    complete = read_body(append);
  }
  if (complete) return true;
  if (over_limit) {
    res.status = 413;
  } else if (res.status < 400) {
    res.status = 400;
  }
  // The rest of the body is unread, see serveWithBody().
  res.set_header("Connection", "close");
  return false;
}

void ApiServer::Impl::send(const ApiRequest& request, const internal::AccessState& state,
                           ApiResponse response, httplib::Response& res) {
  // The record is on disk before cpp-httplib writes the first byte of the response.
  access_.record(request, state, response);
  countAndLog(request, response);
  res.status = response.status;
  for (const auto& [name, value] : response.headers) res.set_header(name, value);
  res.set_content(std::move(response.body), response.content_type);
}

// Completes the response to a request that cpp-httplib rejected before routing: JSON error
// body, counters by status and reason, and the audit record of a mutating method, all
// before cpp-httplib writes the first byte of the response.
//
// NOTE: cpp-httplib 0.11.4 fills Request::remote_addr only after the request line and
// headers parse, and no hook exposes the socket. So the audit record of a malformed
// request line or header, or of a request line over 8192 bytes, has remote_addr "unknown".
// A client that closes or stalls before its request line ends gets no response and reaches
// no hook, so it is neither counted nor audited.
void ApiServer::Impl::rejectBeforeRouting(const httplib::Request& req, httplib::Response& res) {
  const internal::HttpRejection rejection = internal::classifyHttpRejection(
      req, res.status, {options_.max_payload_bytes, options_.read_timeout});
  res.status = rejection.status;

  ApiRequest request;
  request.method = req.method;
  // The query string is left out, as in the log lines, because it may carry secrets.
  request.path = req.path.empty() ? req.target.substr(0, req.target.find('?')) : req.path;
  request.principal.remote_addr =
      internal::requestHeadersParsed(req) ? req.remote_addr : std::string("unknown");
  access_.recordRejected(request, req.get_header_value("Authorization"), rejection.status,
                         rejection.reason);

  metrics_
      .counter("vigil_api_requests_total", "API requests served, by HTTP status.",
               {{"status", std::to_string(rejection.status)}})
      .add();
  metrics_
      .counter("vigil_api_rejected_requests_total",
               "API requests that the HTTP layer rejected before any route ran, by reason and "
               "HTTP status.",
               {{"reason", rejection.reason}, {"status", std::to_string(rejection.status)}})
      .add();
  VIGIL_LOG_WARN_POW2(
      "api request rejected before routing method={} path={} status={} "
      "reason={} remote={}",
      logText(request.method), logText(request.path), rejection.status, rejection.reason,
      request.principal.remote_addr);
  res.set_content(internal::errorBody(rejection.code, rejection.message), "application/json");
}

void ApiServer::Impl::countAndLog(const ApiRequest& request, const ApiResponse& response) {
  metrics_
      .counter("vigil_api_requests_total", "API requests served, by HTTP status.",
               {{"status", std::to_string(response.status)}})
      .add();
  // 401s are logged by the access check, rate limited, because anyone can cause them.
  if (response.status < 400 || response.status == 401) return;
  // The query is left out of the log line because later endpoints may take tokens there.
  // A 503 from /readyz is a state the prober polls for, not a failure of the server.
  const bool not_ready = response.status == 503 && request.path == "/readyz";
  // An error body may quote a client's value at any length, so the line keeps its start.
  constexpr size_t kLoggedBodyBytes = 1024;
  const std::string body =
      response.body.size() <= kLoggedBodyBytes
          ? response.body
          : absl::StrCat(response.body.substr(0, kLoggedBodyBytes), "... (",
                         response.body.size(), " bytes)");
  if (response.status >= 500 && !not_ready) {
    VIGIL_LOG_ERROR("api request failed method={} path={} status={} body=\"{}\"", request.method,
                    logText(request.path), response.status, logText(body));
  } else {
    VIGIL_LOG_INFO("api request rejected method={} path={} status={} body=\"{}\"", request.method,
                   logText(request.path), response.status, logText(body));
  }
}

ApiServer::ApiServer(CaseStore& store, MetricsRegistry& metrics, ApiServerOptions options)
    : impl_(std::make_unique<Impl>(store, metrics, std::move(options))) {
  impl_->addBuiltinRoutes();
  impl_->createServer();
  impl_->configureServer();
}

ApiServer::~ApiServer() { stop(); }

void ApiServer::addRoute(absl::string_view method, absl::string_view pattern, ApiHandler handler,
                         RouteAccess access) {
  impl_->router_.add(method, pattern, std::move(handler), access);
}

void ApiServer::setReadinessCheck(ReadinessCheck check) {
  impl_->readiness_check_ = std::move(check);
}

std::vector<RouteInfo> ApiServer::routes() const { return impl_->router_.routes(); }

ApiResponse ApiServer::handle(ApiRequest request) const { return impl_->router_.dispatch(request); }

absl::Status ApiServer::start() {
  if (impl_->running_) {
    return absl::FailedPreconditionError(
        absl::StrCat("api server already listens on ", address(), "; call stop() first"));
  }
  absl::StatusOr<ListenAddress> listen = parseListen(impl_->options_.listen);
  if (!listen.ok()) return listen.status();
  const ApiTlsOptions& tls = impl_->options_.tls;
  if (!impl_->server_->is_valid()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "api.tls: cannot load cert_file=", tls.cert_file, " key_file=", tls.key_file,
        tls.client_ca_file.empty() ? "" : absl::StrCat(" client_ca_file=", tls.client_ca_file),
        ": ",
        impl_->tls_error_.empty() ? "OpenSSL could not create a TLS context" : impl_->tls_error_));
  }

  httplib::Server& server = *impl_->server_;
  int port = listen->port;
  if (port == 0) {
    port = server.bind_to_any_port(listen->host);
  } else if (!server.bind_to_port(listen->host, port)) {
    port = -1;
  }
  if (port <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot bind api server to listen=", impl_->options_.listen,
                     "; the port may be in use or the address may not "
                     "belong to this host"));
  }
  port_ = port;
  impl_->bound_ = listen->host.find(':') == std::string::npos
                      ? absl::StrCat(listen->host, ":", port)
                      : absl::StrCat("[", listen->host, "]:", port);
  impl_->thread_ = std::thread([&server] { server.listen_after_bind(); });
  impl_->running_ = true;

  // cpp-httplib 0.11.4 has no wait_until_ready(); is_running() turns true once the accept
  // loop runs.
  auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (!server.is_running()) {
    if (std::chrono::steady_clock::now() > deadline) {
      stop();
      return absl::UnavailableError(
          absl::StrCat("api server on ", impl_->bound_, " did not start within 5 s"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  VIGIL_LOG_INFO("api server started addr={} scheme={} client_certs={}", impl_->bound_,
                 tls.enabled() ? "https" : "http", tls.client_ca_file.empty() ? "no" : "required");
  return absl::OkStatus();
}

void ApiServer::stop() {
  if (!impl_->running_) return;
  impl_->server_->stop();
  if (impl_->thread_.joinable()) impl_->thread_.join();
  impl_->running_ = false;
  VIGIL_LOG_INFO("api server stopped addr={}", impl_->bound_);
}

std::string ApiServer::address() const { return impl_->bound_; }

}  // namespace vigil::mgmt

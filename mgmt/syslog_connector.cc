#include "mgmt/syslog_connector.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/time.h"
#include "dataplane/tls_source.h"
#include "mgmt/action_router.h"
#include "mgmt/config.h"

namespace vigil::mgmt {
namespace {

namespace pb = playbook_vm;

// facility security/authorization (4) x 8 + severity notice (5)
constexpr int kPriority = 4 * 8 + 5;

std::string sdEscape(std::string_view text) {
  return absl::StrReplaceAll(absl::string_view(text.data(), text.size()), {{"\\", "\\\\"}, {"\"", "\\\""}, {"]", "\\]"}});
}

std::string cefHeaderEscape(std::string_view text) {
  return absl::StrReplaceAll(absl::string_view(text.data(), text.size()), {{"\\", "\\\\"}, {"|", "\\|"}});
}

std::string cefValueEscape(std::string_view text) {
  return absl::StrReplaceAll(absl::string_view(text.data(), text.size()),
                             {{"\\", "\\\\"}, {"=", "\\="}, {"\n", "\\n"}, {"\r", "\\r"}});
}

// A CEF extension key: letters and digits only.
std::string cefKey(std::string_view key) {
  std::string out;
  for (char ch : key) {
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) {
      out.push_back(ch);
    }
  }
  return out.empty() ? "param" : out;
}

// The oldest OpenSSL error queued on this thread as text (clearing the queue), or
// `fallback` when none is queued.
std::string takeSslError(const char* fallback) {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return fallback;
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

// Sets SIGPIPE to SIG_IGN unless the process already chose a disposition for it, because
// OpenSSL writes with write(2), which raises SIGPIPE when the collector has closed.
void ignoreSigpipeByDefault() {
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) != 0 || current.sa_handler != SIG_DFL) return;
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ::sigemptyset(&ignore.sa_mask);
  if (::sigaction(SIGPIPE, &ignore, nullptr) == 0) {
    VIGIL_LOG_INFO("SIGPIPE set to SIG_IGN so that TLS writes to a closed collector fail with EPIPE");
  }
}

// Sends all of `data` within `timeout_ms` in total, not per send(2) call. Returns false
// with errno set (ETIMEDOUT when the time ran out) and `sent` the bytes the kernel took.
bool sendAll(int fd, const std::string& data, int timeout_ms, size_t& sent) {
  const int64_t deadline = monotonicNs() + int64_t{timeout_ms} * 1'000'000;
  sent = 0;
  while (sent < data.size()) {
    ssize_t n =
        ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return false;
    const int64_t left_ns = deadline - monotonicNs();
    if (left_ns <= 0) {
      errno = ETIMEDOUT;
      return false;
    }
    pollfd p{fd, POLLOUT, 0};
    const int ready = ::poll(&p, 1, static_cast<int>((left_ns + 999'999) / 1'000'000));
    if (ready == 0) {
      errno = ETIMEDOUT;
      return false;
    }
    if (ready < 0 && errno != EINTR) return false;
    // Writable, or an error that the next send() reports.
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SyslogConnector>> SyslogConnector::create(
    const ConnectorConfig& config) {
  std::string host;
  uint16_t port = 0;
  if (!splitHostPort(config.address, host, port) || port == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("connector ", config.name, ": address '", config.address,
                     "' is not host:port with a port in 1..65535"));
  }
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("connector ", config.name, ": host '", host,
                                                   "' is not an IPv4 address; give the "
                                                   "collector's address, e.g. 127.0.0.1:514"));
  }
  std::unique_ptr<SyslogConnector> c(new SyslogConnector(config));
  c->host_ = host;
  c->port_ = port;
  if (config.transport == "tls") {
    if (absl::Status st = c->loadTls(); !st.ok()) return st;
  }
  return c;
}

void SyslogConnector::TlsFree::operator()(ssl_ctx_st* ctx) const { SSL_CTX_free(ctx); }
void SyslogConnector::TlsFree::operator()(ssl_st* ssl) const { SSL_free(ssl); }

absl::Status SyslogConnector::loadTls() {
  ignoreSigpipeByDefault();
  auto failed = [this](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("connector ", config_.name, ": ", what, ": ",
                                                   takeSslError("unknown OpenSSL error")));
  };
  tls_ctx_.reset(SSL_CTX_new(TLS_client_method()));
  if (tls_ctx_ == nullptr) return failed("cannot create a TLS context");
  dataplane::disablePassphrasePrompt(tls_ctx_.get());
  SSL_CTX_set_min_proto_version(tls_ctx_.get(), TLS1_2_VERSION);
  SSL_CTX_set_verify(tls_ctx_.get(), SSL_VERIFY_PEER, nullptr);
  if (config_.tls_ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(tls_ctx_.get()) != 1) {
      return failed("cannot load the system CA certificates; set tls_ca_file");
    }
  } else if (SSL_CTX_load_verify_locations(tls_ctx_.get(), config_.tls_ca_file.c_str(),
                                           nullptr) != 1) {
    return failed(absl::StrCat("cannot load tls_ca_file ", config_.tls_ca_file,
                               " as PEM certificates"));
  }
  if (!config_.tls_cert_file.empty()) {
    if (std::string problem = dataplane::loadCertificateAndKey(
            tls_ctx_.get(), config_.tls_cert_file, config_.tls_key_file);
        !problem.empty()) {
      const bool certificate = absl::StartsWith(problem, "certificate");
      return absl::InvalidArgumentError(absl::StrCat(
          "connector ", config_.name, ": cannot load ",
          certificate ? "tls_cert_file " + config_.tls_cert_file
                      : "tls_key_file " + config_.tls_key_file + " as the key of tls_cert_file",
          ": ", problem));
    }
  }
  return absl::OkStatus();
}

SyslogConnector::SyslogConnector(ConnectorConfig config) : config_(std::move(config)) {
  char name[256] = {};
  hostname_ = gethostname(name, sizeof(name) - 1) == 0 && name[0] != '\0' ? name : "vigil";
}

SyslogConnector::~SyslogConnector() { closeSocket(); }

// Closing a socket with unread bytes in its buffer sends a reset instead of a FIN, and a
// reset makes the collector's kernel drop records it has received but not yet read. A TLS
// 1.3 collector sends session tickets that this connector never reads, so the close ends
// the TLS stream (close_notify, bounded by the send timeout), then reads and discards
// what is pending before it closes.
void SyslogConnector::closeSocket() {
  if (tls_ != nullptr) SSL_shutdown(tls_.get());
  tls_.reset();
  if (fd_ >= 0) {
    ::shutdown(fd_, SHUT_WR);
    char unread[4096];
    while (::recv(fd_, unread, sizeof(unread), MSG_DONTWAIT) > 0) {
    }
    ::close(fd_);
  }
  fd_ = -1;
}

std::string SyslogConnector::format(std::string_view action, const pb::List& params,
                                    pb::HostCall& call) const {
  const RunContext& ctx = runContext(call);
  nlohmann::json json = paramsToJson(params);
  const int64_t now = RealClock::instance().nowNs();
  if (config_.format == "cef") {
    std::string ext = absl::StrCat("rt=", now / 1'000'000, " cs1Label=run cs1=", ctx.run_id,
                                   " cs2Label=tenant cs2=", cefValueEscape(ctx.tenant),
                                   " cs3Label=playbook cs3=", cefValueEscape(ctx.playbook),
                                   " cs4Label=alert cs4=", cefValueEscape(ctx.alert_id));
    if (!ctx.action_key.empty()) absl::StrAppend(&ext, " externalId=", ctx.action_key);
    for (const auto& [key, value] : json.items()) {
      std::string text = value.is_string() ? value.get<std::string>() : value.dump();
      absl::StrAppend(&ext, " ", cefKey(key), "=", cefValueEscape(text));
    }
    return absl::StrCat("<", kPriority, ">CEF:0|Vigil|vigild|", VIGIL_VERSION, "|",
                        cefHeaderEscape(action), "|", cefHeaderEscape(action), "|5|", ext);
  }
  std::string sd = absl::StrCat("[vigil@32473 run=\"", ctx.run_id, "\" tenant=\"",
                                sdEscape(ctx.tenant), "\" playbook=\"", sdEscape(ctx.playbook),
                                "\" alert=\"", sdEscape(ctx.alert_id), "\"",
                                ctx.action_key.empty() ? "" : " idempotency_key=\"",
                                ctx.action_key, ctx.action_key.empty() ? "]" : "\"]");
  std::string msgid(action.substr(0, 32));
  return absl::StrCat("<", kPriority, ">1 ", formatRfc3339(now), " ", hostname_, " ",
                      config_.app_name, " - ", msgid, " ", sd, " ",
                      json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

absl::Status SyslogConnector::connectTcp() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) return absl::UnavailableError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_);
  inet_pton(AF_INET, host_.c_str(), &addr.sin_addr);
  int rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{fd_, POLLOUT, 0};
    rc = ::poll(&p, 1, config_.timeout_ms) == 1 ? 0 : -1;
    int error = 0;
    socklen_t len = sizeof(error);
    if (rc == 0 && (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0)) {
      errno = error;
      rc = -1;
    } else if (rc != 0) {
      errno = ETIMEDOUT;
    }
  }
  if (rc != 0) {
    std::string why = std::strerror(errno);
    closeSocket();
    return absl::UnavailableError(
        absl::StrCat("syslog connect to ", config_.address, " failed: ", why));
  }
  // Blocking sends (and TLS handshake reads) from here on, bounded by the timeout.
  int flags = 0;
  ::ioctl(fd_, FIONBIO, &flags);
  timeval tv{config_.timeout_ms / 1000, (config_.timeout_ms % 1000) * 1000};
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return absl::OkStatus();
}

absl::Status SyslogConnector::startTls() {
  ERR_clear_error();
  tls_.reset(SSL_new(tls_ctx_.get()));
  bool ok = tls_ != nullptr && SSL_set_fd(tls_.get(), fd_) == 1;
  if (ok && !config_.tls_server_name.empty()) {
    ok = SSL_set_tlsext_host_name(tls_.get(), config_.tls_server_name.c_str()) == 1 &&
         SSL_set1_host(tls_.get(), config_.tls_server_name.c_str()) == 1;
  } else if (ok) {
    ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(tls_.get()), host_.c_str()) == 1;
  }
  if (ok && SSL_connect(tls_.get()) == 1) return absl::OkStatus();

  std::string why;
  long verify = tls_ != nullptr ? SSL_get_verify_result(tls_.get()) : X509_V_OK;
  if (verify != X509_V_OK) {
    why = absl::StrCat("certificate verification failed: ", X509_verify_cert_error_string(verify));
  } else {
    why = takeSslError(errno != 0 ? std::strerror(errno) : "connection closed during handshake");
  }
  ERR_clear_error();
  closeSocket();
  VIGIL_LOG_WARN_POW2(
      "syslog TLS handshake failed connector={} address={} server_name={} error=\"{}\"",
      config_.name, config_.address, config_.tls_server_name, logText(why));
  return absl::UnavailableError(
      absl::StrCat("syslog TLS handshake with ", config_.address, " failed: ", why));
}

// Whether the collector closed or reset the connection. Bytes it sent (a TLS session
// ticket, say) do not close it; a FIN does, even behind such bytes (POLLRDHUP).
bool SyslogConnector::peerClosed() const {
  pollfd p{fd_, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) != 1) return false;
  if ((p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) return true;
  char byte = 0;
  return (p.revents & POLLIN) != 0 && ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

absl::Status SyslogConnector::sendStream(const std::string& frame) {
  bool sent = false;
  size_t sent_bytes = 0;
  if (tls_ != nullptr) {
    // NOTE: TLS writes block on the socket's send timeout (timeout_ms) per write, so a
    // collector that keeps reading slowly can hold a large frame longer than timeout_ms.
    sent = SSL_write_ex(tls_.get(), frame.data(), frame.size(), &sent_bytes) == 1 &&
           sent_bytes == frame.size();
  } else {
    sent = sendAll(fd_, frame, config_.timeout_ms, sent_bytes);
  }
  if (sent) return absl::OkStatus();
  const int error = errno;
  std::string why = tls_ != nullptr ? takeSslError(std::strerror(error)) : std::strerror(error);
  closeSocket();
  if (error == ETIMEDOUT || error == EAGAIN || error == EWOULDBLOCK) {
    VIGIL_LOG_WARN_POW2("syslog send timed out connector={} address={} timeout_ms={} "
                        "bytes_sent={} frame_bytes={}",
                        config_.name, config_.address, config_.timeout_ms, sent_bytes,
                        frame.size());
    return absl::DeadlineExceededError(absl::StrCat(
        "syslog send to ", config_.address, " timed out after ", config_.timeout_ms, " ms with ",
        sent_bytes, " of ", frame.size(),
        " bytes sent: the collector is not reading; check it, or raise the connector's "
        "timeout_ms"));
  }
  return absl::UnavailableError(absl::StrCat("syslog send to ", config_.address, " failed: ", why));
}

absl::Status SyslogConnector::perform(std::string_view action, const pb::List& params,
                                      pb::HostCall& call, pb::Value& result) {
  std::string message = format(action, params, call);
  if (config_.transport == "udp") {
    if (fd_ < 0) {
      fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (fd_ < 0) return absl::UnavailableError(absl::StrCat("socket: ", std::strerror(errno)));
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    inet_pton(AF_INET, host_.c_str(), &addr.sin_addr);
    ssize_t n = ::sendto(fd_, message.data(), message.size(), 0,
                         reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    if (n != static_cast<ssize_t>(message.size())) {
      return absl::UnavailableError(
          absl::StrCat("syslog send to ", config_.address, " failed: ", std::strerror(errno)));
    }
  } else {
    if (fd_ >= 0 && peerClosed()) {
      // A write into a connection the collector has closed succeeds locally and is lost,
      // so a collector that restarted gets a new connection before the message.
      VIGIL_LOG_INFO("syslog collector closed the connection, reconnecting connector={} "
                     "address={}",
                     config_.name, config_.address);
      closeSocket();
    }
    if (fd_ < 0) {
      if (absl::Status st = connectTcp(); !st.ok()) return st;
      if (config_.transport == "tls") {
        if (absl::Status st = startTls(); !st.ok()) return st;
      }
    }
    // Octet counting, as RFC 6587 (TCP) and RFC 5425 (TLS) frame messages.
    std::string frame = absl::StrCat(message.size(), " ", message);
    if (absl::Status st = sendStream(frame); !st.ok()) return st;
  }
  result = pb::Value::integer(static_cast<int64_t>(message.size()));
  return absl::OkStatus();
}

}  // namespace vigil::mgmt

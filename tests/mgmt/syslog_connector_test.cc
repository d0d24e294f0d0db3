// The syslog connector over TLS (RFC 5425) against a TLS receiver on 127.0.0.1, with
// certificates the openssl command makes for each test: a verified handshake with a
// client certificate, messages framed by octet counting, and handshakes that must fail.
#include "mgmt/syslog_connector.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mgmt/action_router.h"
#include "mgmt_test_util.h"
#include "playbook_vm/compiler/compiler.h"
#include "playbook_vm/vm.h"

namespace vigil::mgmt {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::TempDir;
using testing::waitFor;
namespace pb = playbook_vm;
namespace pbc = playbook_vm::compiler;

std::string readAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A TLS syslog receiver on 127.0.0.1: accepts connections one at a time, requires a
// client certificate signed by `client_ca`, and appends the decrypted bytes to data().
class TlsReceiver {
 public:
  TlsReceiver(const std::string& cert, const std::string& key, const std::string& client_ca) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    ok_ = ctx_ != nullptr && SSL_CTX_use_certificate_file(ctx_, cert.c_str(), SSL_FILETYPE_PEM) == 1 &&
          SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM) == 1 &&
          SSL_CTX_load_verify_locations(ctx_, client_ca.c_str(), nullptr) == 1;
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = ok_ && bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
          listen(listen_fd_, 4) == 0;
    socklen_t len = sizeof(addr);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~TlsReceiver() {
    stop_ = true;
    thread_.join();
    close(listen_fd_);
    SSL_CTX_free(ctx_);
  }

  bool ok() const { return ok_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string data() {
    std::lock_guard<std::mutex> lock(mu_);
    return data_;
  }
  std::string peer() {
    std::lock_guard<std::mutex> lock(mu_);
    return peer_;
  }
  // The OpenSSL error of the last failed handshake, for failure messages.
  std::string lastError() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_error_;
  }
  int handshakes() const { return handshakes_.load(); }
  int failedHandshakes() const { return failed_handshakes_.load(); }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 50) != 1) continue;
      int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      timeval tv{0, 50'000};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, fd);
      int accepted = -1;
      // The receive timeout interrupts the handshake; retry until it ends or the test stops.
      while (!stop_) {
        accepted = SSL_accept(ssl);
        if (accepted == 1 || SSL_get_error(ssl, accepted) != SSL_ERROR_WANT_READ) break;
      }
      if (accepted == 1) {
        ++handshakes_;
        recordPeer(ssl);
        readUntilClosed(ssl);
      } else {
        ++failed_handshakes_;
        char text[256] = {};
        ERR_error_string_n(ERR_peek_last_error(), text, sizeof(text));
        std::lock_guard<std::mutex> lock(mu_);
        last_error_ = text;
      }
      ERR_clear_error();
      SSL_free(ssl);
      close(fd);
    }
  }

  void recordPeer(SSL* ssl) {
    X509* cert = SSL_get1_peer_certificate(ssl);
    if (cert == nullptr) return;
    char name[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name, sizeof(name));
    X509_free(cert);
    std::lock_guard<std::mutex> lock(mu_);
    peer_ = name;
  }

  // Reads until the client closes. The receive timeout only lets the loop see stop_, so a
  // read that timed out (WANT_READ, or SYSCALL with EAGAIN or EINTR) is tried again. Any
  // other end is kept in last_error_ for the test's failure message.
  void readUntilClosed(SSL* ssl) {
    char buf[4096];
    while (!stop_) {
      int n = SSL_read(ssl, buf, sizeof(buf));
      if (n > 0) {
        std::lock_guard<std::mutex> lock(mu_);
        data_.append(buf, static_cast<size_t>(n));
        continue;
      }
      const int error = SSL_get_error(ssl, n);
      const int saved_errno = errno;
      if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) continue;
      if (error == SSL_ERROR_SYSCALL &&
          (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || saved_errno == EINTR)) {
        continue;
      }
      if (error != SSL_ERROR_ZERO_RETURN) {
        std::lock_guard<std::mutex> lock(mu_);
        last_error_ = "read ended: SSL error " + std::to_string(error) + ", errno " +
                      std::to_string(saved_errno);
      }
      return;
    }
  }

  SSL_CTX* ctx_ = nullptr;
  bool ok_ = false;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> handshakes_{0};
  std::atomic<int> failed_handshakes_{0};
  std::mutex mu_;
  std::string data_;
  std::string peer_;
  std::string last_error_;
  std::thread thread_;
};

// Splits octet-counted frames ("LEN SP MSG"); returns false when the bytes are not a
// whole number of well-formed frames.
bool splitFrames(const std::string& data, std::vector<std::string>& frames) {
  size_t at = 0;
  while (at < data.size()) {
    size_t space = data.find(' ', at);
    if (space == std::string::npos || space == at) return false;
    if (data.find_first_not_of("0123456789", at) != space) return false;
    size_t length = std::stoul(data.substr(at, space - at));
    if (space + 1 + length > data.size()) return false;
    frames.push_back(data.substr(space + 1, length));
    at = space + 1 + length;
  }
  return true;
}

class SyslogTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pbc::registerAlertHost(host_).ok());
    ASSERT_TRUE(makeCert("collector", "collector.test"));
    ASSERT_TRUE(makeCert("client", "client.test"));
    ASSERT_TRUE(makeCert("other", "collector.test"));
  }

  // A self-signed certificate and key, dir_/STEM.pem and dir_/STEM.key, for `name`.
  bool makeCert(const std::string& stem, const std::string& name) {
    const std::string d = "'" + dir_.file("") + "'";
    const std::string command =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-subj /CN=" + name + " -addext subjectAltName=DNS:" + name + " -keyout " + d + stem +
        ".key -out " + d + stem + ".pem >>" + d + "openssl.log 2>&1";
    return std::system(command.c_str()) == 0;
  }

  ConnectorConfig tlsConfig(const std::string& address) {
    ConnectorConfig c;
    c.name = "siem-tls";
    c.type = "syslog";
    c.transport = "tls";
    c.address = address;
    c.timeout_ms = 2000;
    c.tls_ca_file = dir_.file("collector.pem");
    c.tls_cert_file = dir_.file("client.pem");
    c.tls_key_file = dir_.file("client.key");
    c.tls_server_name = "collector.test";
    return c;
  }

  // Runs `steps` through an ActionRouter that sends every action to `connector`.
  // Returns the rendered result or the failure message.
  std::string runPlaybook(const std::string& steps, std::unique_ptr<SyslogConnector> connector) {
    std::vector<NamedConnector> connectors(1);
    connectors[0].name = "siem-tls";
    connectors[0].type = "syslog";
    connectors[0].connector = std::move(connector);
    ActionRouter router(std::move(connectors), {{"*", "siem-tls"}}, metrics_);
    auto program =
        pbc::compileAndLoad("name: fwd\ntrigger: {}\nsteps:\n" + steps, "fwd.yml", host_);
    EXPECT_TRUE(program.ok()) << program.status();
    if (!program.ok()) return "";
    nlohmann::json alert = {{"src_ip", "203.0.113.9"}};
    RunContext context;
    context.alert = &alert;
    context.connector = &router;
    context.run_id = 12;
    context.tenant = "acme";
    context.playbook = "fwd";
    pb::Vm vm;
    pb::RunResult r = vm.run(**program, host_, pb::Budget{}, &context);
    return r.status == pb::RunStatus::kReturned ? pb::valueToString(r.value) : r.message;
  }

  uint64_t failures() {
    return metrics_.sum("vigil_playbook_connector_calls_total",
                        {{"connector", "siem-tls"}, {"outcome", "error"}});
  }

  TempDir dir_;
  pb::HostRegistry host_;
  MetricsRegistry metrics_;
};

constexpr const char* kTwoForwards =
    "  - action: siem.forward\n"
    "    with: {src_ip: alert.src_ip, note: \"line one\\nline two, 12 34\"}\n"
    "  - action: siem.forward\n"
    "    with: {src_ip: alert.src_ip, note: \"second\"}\n"
    "  - stop: \"sent\"\n";

// A verified handshake with a client certificate; both messages arrive framed and intact.
TEST_F(SyslogTlsTest, ForwardsFramedMessages) {
  TlsReceiver receiver(dir_.file("collector.pem"), dir_.file("collector.key"),
                       dir_.file("client.pem"));
  ASSERT_TRUE(receiver.ok());
  auto connector = SyslogConnector::create(tlsConfig(receiver.address()));
  ASSERT_TRUE(connector.ok()) << connector.status();
  EXPECT_EQ(runPlaybook(kTwoForwards, std::move(*connector)), "\"sent\"")
      << "receiver error: " << receiver.lastError();

  std::vector<std::string> frames;
  ASSERT_TRUE(waitFor([&] {
    frames.clear();
    return splitFrames(receiver.data(), frames) && frames.size() == 2;
  })) << receiver.data() << "\nreceiver: " << receiver.lastError();
  EXPECT_EQ(receiver.handshakes(), 1);  // one session carries both messages
  EXPECT_EQ(receiver.peer(), "client.test");
  EXPECT_EQ(frames[0].rfind("<37>1 ", 0), 0u) << frames[0];
  EXPECT_THAT(frames[0], HasSubstr("[vigil@32473 run=\"12\" tenant=\"acme\" playbook=\"fwd\""));
  EXPECT_THAT(frames[0], HasSubstr(R"("note":"line one\nline two, 12 34")"));
  EXPECT_THAT(frames[1], HasSubstr(R"("note":"second")"));
  EXPECT_EQ(failures(), 0u);
}

// A CA that did not sign the collector's certificate fails the action, and the router
// counts it. The message names the failed check and carries no key material.
TEST_F(SyslogTlsTest, WrongCaFailsAndCounts) {
  TlsReceiver receiver(dir_.file("collector.pem"), dir_.file("collector.key"),
                       dir_.file("client.pem"));
  ASSERT_TRUE(receiver.ok());
  ConnectorConfig config = tlsConfig(receiver.address());
  config.tls_ca_file = dir_.file("other.pem");
  auto connector = SyslogConnector::create(config);
  ASSERT_TRUE(connector.ok()) << connector.status();
  std::string result = runPlaybook("  - action: siem.forward\n", std::move(*connector));
  EXPECT_THAT(result, HasSubstr("syslog TLS handshake with " + receiver.address() + " failed"));
  EXPECT_THAT(result, HasSubstr("certificate verification failed"));
  EXPECT_THAT(result, Not(HasSubstr("PRIVATE KEY")));
  std::string key = readAll(dir_.file("client.key"));
  ASSERT_GT(key.size(), 100u);
  EXPECT_THAT(result, Not(HasSubstr(key.substr(40, 40))));  // a line of the key's base64
  EXPECT_EQ(failures(), 1u);
  EXPECT_EQ(receiver.data(), "");
}

// A certificate for another name fails the check of tls_server_name.
TEST_F(SyslogTlsTest, WrongServerNameFails) {
  TlsReceiver receiver(dir_.file("collector.pem"), dir_.file("collector.key"),
                       dir_.file("client.pem"));
  ASSERT_TRUE(receiver.ok());
  ConnectorConfig config = tlsConfig(receiver.address());
  config.tls_server_name = "elsewhere.test";
  auto connector = SyslogConnector::create(config);
  ASSERT_TRUE(connector.ok()) << connector.status();
  std::string result = runPlaybook("  - action: siem.forward\n", std::move(*connector));
  EXPECT_THAT(result, HasSubstr("certificate verification failed: hostname mismatch"));
  EXPECT_EQ(failures(), 1u);
  EXPECT_EQ(receiver.data(), "");
}

// Unreadable CA files and a key that does not match the certificate are rejected when the
// connector is created, naming the file.
TEST_F(SyslogTlsTest, RejectsBadFiles) {
  ConnectorConfig config = tlsConfig("127.0.0.1:6514");
  config.tls_ca_file = dir_.file("missing.pem");
  auto bad = SyslogConnector::create(config);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("cannot load tls_ca_file " + dir_.file("missing.pem")));

  config = tlsConfig("127.0.0.1:6514");
  config.tls_key_file = dir_.file("other.key");
  bad = SyslogConnector::create(config);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("cannot load tls_key_file " + dir_.file("other.key")));
}

// A TCP collector on 127.0.0.1 that accepts connections and never reads from them.
class StalledReceiver {
 public:
  StalledReceiver() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    // A small receive buffer (inherited by accepted sockets) fills after a few KiB.
    const int small = 4096;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    ok_ = ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0 &&
          ::listen(listen_fd_, 4) == 0 &&
          ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      pollfd p{listen_fd_, POLLIN, 0};
      while (!stop_.load()) {
        if (::poll(&p, 1, 50) != 1) continue;
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) accepted_.push_back(fd);
      }
    });
  }
  ~StalledReceiver() {
    stop_.store(true);
    thread_.join();
    for (const int fd : accepted_) ::close(fd);
    ::close(listen_fd_);
  }
  bool ok() const { return ok_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int listen_fd_ = -1;
  bool ok_ = false;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::vector<int> accepted_;  // touched by the accept thread only, until the join
  std::thread thread_;
};

// A plain TCP collector that stops reading fails the forward with a timeout that names
// timeout_ms, instead of hanging or reporting EAGAIN.
TEST_F(SyslogTlsTest, StalledTcpCollectorTimesOut) {
  StalledReceiver receiver;
  ASSERT_TRUE(receiver.ok());
  ConnectorConfig config;
  config.name = "siem-tls";
  config.type = "syslog";
  config.transport = "tcp";
  config.address = receiver.address();
  config.timeout_ms = 200;
  auto connector = SyslogConnector::create(config);
  ASSERT_TRUE(connector.ok()) << connector.status();
  // Forty messages of 512 KiB: more than the two socket buffers on loopback can take.
  std::string steps;
  for (int i = 0; i < 40; ++i) steps += "  - action: siem.forward\n    with: {note: chunk}\n";
  steps += "  - stop: \"sent\"\nvars:\n  chunk: \"" + std::string(512 * 1024, 'x') + "\"\n";
  const std::string outcome = runPlaybook(steps, std::move(*connector));
  EXPECT_THAT(outcome,
              HasSubstr("syslog send to " + receiver.address() + " timed out after 200 ms"));
  EXPECT_THAT(outcome, HasSubstr("raise the connector's timeout_ms"));
  EXPECT_THAT(outcome, Not(HasSubstr("Resource temporarily unavailable")));
  EXPECT_EQ(failures(), 1u);
}

}  // namespace
}  // namespace vigil::mgmt

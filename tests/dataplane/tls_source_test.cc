#include "dataplane/tls_source.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <linux/sockios.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "spdlog/sinks/ringbuffer_sink.h"
#include "spdlog/spdlog.h"

namespace vigil::dataplane {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// Runs `command` through the shell and returns true when it exited with status 0.
bool run(const std::string& command) { return std::system(command.c_str()) == 0; }

// A CA, a server certificate for 127.0.0.1 and a client certificate, both signed by the
// CA. Generated once per test program with the openssl command into a fresh temporary
// folder.
class TestPki {
 public:
  fs::path dir;
  bool ok = false;

  std::string path(const char* name) const { return (dir / name).string(); }

  static const TestPki& get() {
    static const TestPki pki;
    return pki;
  }

  ~TestPki() {
    std::error_code ignored;
    if (!dir.empty()) fs::remove_all(dir, ignored);
  }

 private:
  TestPki() {
    std::string templ = (fs::temp_directory_path() / "vigil-tls-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) return;
    dir = templ;
    const std::string d = "'" + dir.string() + "'";
    const std::string quiet = " >" + d + "/openssl.log 2>&1";
    const std::string key = "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
    auto makeCa = [&](const std::string& name) {
      return run(key + "-x509 -days 2 -subj /CN=" + name +
                 " -addext basicConstraints=critical,CA:TRUE"
                 " -addext keyUsage=critical,keyCertSign,cRLSign -keyout " +
                 d + "/" + name + ".key -out " + d + "/" + name + ".pem" + quiet);
    };
    auto makeLeaf = [&](const std::string& name, const std::string& extensions) {
      return run(key + "-subj /CN=" + name + " -keyout " + d + "/" + name + ".key -out " + d +
                 "/" + name + ".csr" + quiet) &&
             run("printf '" + extensions + "\\n' >" + d + "/" + name + ".ext") &&
             run("openssl x509 -req -days 2 -in " + d + "/" + name + ".csr -CA " + d +
                 "/ca.pem -CAkey " + d + "/ca.key -CAcreateserial -extfile " + d + "/" + name +
                 ".ext -out " + d + "/" + name + ".pem" + quiet);
    };
    ok = makeCa("ca") &&
         makeLeaf("server", "subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth") &&
         makeLeaf("client", "extendedKeyUsage=clientAuth") &&
         run(key + "-x509 -days 2 -subj /CN=stranger -keyout " + d + "/stranger.key -out " + d +
             "/stranger.pem" + quiet);
  }
};

// A blocking TLS 1.2+ client on 127.0.0.1:port that verifies the server against ca.pem.
// With `certificate` set it presents that certificate ("client" or "server" file stem).
// A nonzero `max_version` (e.g. TLS1_1_VERSION) caps the protocol versions it offers.
class TlsClient {
 public:
  TlsClient(uint16_t port, const std::string& certificate = "", int max_version = 0) {
    const TestPki& pki = TestPki::get();
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (max_version != 0) {
      // Security level 0 lets this client offer versions older than TLS 1.2.
      SSL_CTX_set_security_level(ctx_, 0);
      SSL_CTX_set_min_proto_version(ctx_, TLS1_VERSION);
      SSL_CTX_set_max_proto_version(ctx_, max_version);
    } else {
      SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    }
    SSL_CTX_load_verify_locations(ctx_, pki.path("ca.pem").c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    if (!certificate.empty()) {
      SSL_CTX_use_certificate_file(ctx_, pki.path((certificate + ".pem").c_str()).c_str(),
                                   SSL_FILETYPE_PEM);
      SSL_CTX_use_PrivateKey_file(ctx_, pki.path((certificate + ".key").c_str()).c_str(),
                                  SSL_FILETYPE_PEM);
    }
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval timeout{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return;
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set1_host(ssl_, "127.0.0.1");
    connected_ = SSL_connect(ssl_) == 1;
    ERR_clear_error();
  }
  ~TlsClient() {
    close();
    SSL_CTX_free(ctx_);
  }

  // True when SSL_connect() succeeded. With TLS 1.3 the server checks the client
  // certificate after this, so a rejected client learns it on its next read.
  bool connected() const { return connected_; }

  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      int n = SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()));
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // True when the server ended the connection (EOF, alert or reset) before the receive
  // timeout; the server never sends application data.
  bool closedByPeer() {
    char byte;
    int n = SSL_read(ssl_, &byte, 1);
    int err = SSL_get_error(ssl_, n);
    ERR_clear_error();
    return n <= 0 && !(err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK));
  }

  // True when the peer's kernel acknowledged every byte sent within two seconds.
  bool allAcked() {
    const auto deadline = steady_clock::now() + std::chrono::seconds(2);
    while (steady_clock::now() < deadline) {
      int unacked = 0;
      if (::ioctl(fd_, SIOCOUTQ, &unacked) != 0) return false;
      if (unacked == 0) return true;
      std::this_thread::sleep_for(milliseconds(1));
    }
    return false;
  }

  // Sends close_notify and closes the socket.
  void close() {
    if (ssl_ != nullptr) {
      if (connected_) SSL_shutdown(ssl_);
      SSL_free(ssl_);
      ssl_ = nullptr;
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool connected_ = false;
};

// A plain TCP client, for a sender that does not speak TLS.
class PlainClient {
 public:
  explicit PlainClient(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~PlainClient() { ::close(fd_); }

  bool connected() const { return connected_; }
  bool send(std::string_view bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }

  // True when the server closed the connection within `timeout`. Bytes before the end
  // (a TLS alert) are skipped.
  bool closedByPeer(milliseconds timeout) {
    const auto deadline = steady_clock::now() + timeout;
    while (steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char bytes[256];
      if (::recv(fd_, bytes, sizeof(bytes), 0) <= 0) return true;
    }
    return false;
  }

 private:
  int fd_;
  bool connected_ = false;
};

struct Received {
  std::string text;
  bool truncated;
};

class TlsSourceTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(TestPki::get().ok) << "openssl failed in " << pki().dir; }
  void TearDown() override {
    if (source_) source_->stop();
  }

  static const TestPki& pki() { return TestPki::get(); }

  TlsSourceOptions options() const {
    TlsSourceOptions o;
    o.name = "tls_test";
    o.listen = "127.0.0.1:0";
    o.certificate_file = pki().path("server.pem");
    o.private_key_file = pki().path("server.key");
    return o;
  }

  void startSource(TlsSourceOptions o) {
    std::string error;
    source_ = TlsSource::create(std::move(o), metrics_, error);
    ASSERT_NE(source_, nullptr) << error;
    ASSERT_TRUE(source_->start(error)) << error;
    ASSERT_NE(source_->boundPort(), 0);
  }

  // Pops messages until `count` arrived or two seconds passed.
  std::vector<Received> receive(size_t count) {
    std::vector<Received> out;
    const auto deadline = steady_clock::now() + std::chrono::seconds(2);
    while (out.size() < count && steady_clock::now() < deadline) {
      if (RawMessage* m = source_->ring().front()) {
        out.push_back({std::string(m->view()), m->truncated});
        source_->ring().pop();
      } else {
        std::this_thread::sleep_for(milliseconds(1));
      }
    }
    return out;
  }

  // Waits up to two seconds for `counter` to reach `value`.
  static bool waitFor(const Counter& counter, uint64_t value) {
    const auto deadline = steady_clock::now() + std::chrono::seconds(2);
    while (counter.value() < value && steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(1));
    }
    return counter.value() >= value;
  }

  Counter& handshakeCounter() {
    return metrics_.counter("vigil_source_tls_handshake_failures_total",
                            "TLS connections closed before the handshake finished",
                            {{"source", "tls_test"}});
  }
  uint64_t handshakeFailures() { return handshakeCounter().value(); }

  MetricsRegistry metrics_;
  std::unique_ptr<TlsSource> source_;
};

// Records the kernel acknowledged but the source never decrypted (the ring is full, so the
// connection is paused) are framed at stop(): every message ends in received or
// dropped{reason=shutdown}.
TEST_F(TlsSourceTest, StopDrainsSocketQueue) {
  TlsSourceOptions o = options();
  o.ring_capacity = 16;
  o.read_buffer_bytes = 512;
  startSource(std::move(o));
  TlsClient client(source_->boundPort());
  ASSERT_TRUE(client.connected());
  constexpr size_t kSent = 400;
  std::string stream;
  for (size_t i = 0; i < kSent; ++i) stream += "<13>message number " + std::to_string(i) + "\n";
  ASSERT_TRUE(client.send(stream));
  ASSERT_TRUE(client.allAcked());
  EXPECT_TRUE(waitFor(*source_->counters().received, 16));
  source_->stop();

  const SourceCounters& c = source_->counters();
  EXPECT_EQ(c.received->value(), 16u);
  EXPECT_EQ(c.received->value() + c.dropped_shutdown->value(), kSent);
  EXPECT_EQ(c.framing_errors->value(), 0u);
}

// At the descriptor limit accept() fails with EMFILE: the source counts it, backs off
// instead of retrying in a tight loop, and accepts the waiting connection once
// descriptors are free again.
TEST_F(TlsSourceTest, AcceptBacksOffAtFdLimit) {
  startSource(options());
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit lowered = saved;
  lowered.rlim_cur = std::min<rlim_t>(saved.rlim_cur, 512);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lowered), 0);
  std::vector<int> fillers;
  // Restores the limit and frees the descriptors on every exit from this test.
  struct Restore {
    rlimit& limit;
    std::vector<int>& fds;
    ~Restore() {
      for (int fd : fds) ::close(fd);
      fds.clear();
      ::setrlimit(RLIMIT_NOFILE, &limit);
    }
  } restore{saved, fillers};
  while (true) {
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) break;
    fillers.push_back(fd);
  }
  ASSERT_FALSE(fillers.empty());
  // The client takes the last free descriptor, so the source has none left for accept().
  ::close(fillers.back());
  fillers.pop_back();
  PlainClient client(source_->boundPort());
  const bool connected = client.connected();

  Counter& emfile = metrics_.counter("vigil_source_accept_errors_total", "",
                                     {{"source", "tls_test"}, {"reason", "emfile"}});
  const bool failed = waitFor(emfile, 1);
  std::this_thread::sleep_for(milliseconds(500));
  const uint64_t errors_in_500ms = emfile.value();
  for (int fd : fillers) ::close(fd);
  fillers.clear();
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);

  ASSERT_TRUE(connected);
  ASSERT_TRUE(failed);
  // A back-off of 100, 200 and 400 ms allows about four attempts in 500 ms, and a retry
  // on every wake-up would count far more.
  EXPECT_LE(errors_in_500ms, 6u);
  Counter& accepted = metrics_.counter("vigil_source_connections_accepted_total", "",
                                       {{"source", "tls_test"}});
  EXPECT_TRUE(waitFor(accepted, 1));
}

// Both framings arrive on separate connections of one kAuto listener.
TEST_F(TlsSourceTest, BothFramingsArrive) {
  startSource(options());
  TlsClient lf(source_->boundPort());
  ASSERT_TRUE(lf.connected());
  ASSERT_TRUE(lf.send("<13>one\n<13>two\n"));
  auto first = receive(2);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].text, "<13>one");
  EXPECT_EQ(first[1].text, "<13>two");

  TlsClient counted(source_->boundPort());
  ASSERT_TRUE(counted.connected());
  ASSERT_TRUE(counted.send("9 <13>three10 <13>four\nx"));
  auto second = receive(2);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(second[0].text, "<13>three");
  EXPECT_EQ(second[1].text, "<13>four\nx");
  EXPECT_EQ(source_->counters().received->value(), 4u);
  EXPECT_EQ(source_->handshakeFailures(), 0u);
}

// The RFC 6587 octet-counting corpus stream gives its four messages over TLS, the last
// one when the client closes.
TEST_F(TlsSourceTest, Br06OverTls) {
  std::ifstream in(std::string(VIGIL_SHARED_DIR) + "/corpus/edge/br06-rfc6587-octet-counting.bin",
                   std::ios::binary);
  ASSERT_TRUE(in.good());
  std::string stream((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  startSource(options());
  TlsClient client(source_->boundPort());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.send(stream));
  client.close();
  auto got = receive(4);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].text, "<6>Sep 10 00:00:00 localhost logger: hello!");
  EXPECT_EQ(got[1].text.size(), 111u);
  EXPECT_NE(got[1].text.find("first line\n  second line of the same message"), std::string::npos);
  EXPECT_EQ(got[2].text.size(), 95u);
  EXPECT_EQ(got[3].text.size(), 71u);
  EXPECT_EQ(got[3].text.substr(got[3].text.size() - 4), "last");
  for (const auto& m : got) EXPECT_FALSE(m.truncated);
}

// A client that sends plain syslog without TLS is counted as a handshake failure and
// closed, and nothing it sent is published.
TEST_F(TlsSourceTest, PlainTcpClientRejected) {
  startSource(options());
  PlainClient plain(source_->boundPort());
  ASSERT_TRUE(plain.connected());
  ASSERT_TRUE(plain.send("<13>not encrypted\n"));
  EXPECT_TRUE(plain.closedByPeer(milliseconds(2000)));
  EXPECT_EQ(handshakeFailures(), 1u);
  EXPECT_EQ(source_->counters().received->value(), 0u);
  EXPECT_EQ(source_->ring().size(), 0u);
}

// A client limited to TLS 1.1 fails the handshake, because the server requires TLS 1.2.
TEST_F(TlsSourceTest, Tls11ClientRejected) {
  startSource(options());
  TlsClient old_client(source_->boundPort(), "", TLS1_1_VERSION);
  EXPECT_FALSE(old_client.connected());
  EXPECT_TRUE(waitFor(handshakeCounter(), 1));
  EXPECT_EQ(source_->counters().received->value(), 0u);
}

// A TCP client that never starts the handshake is closed after idle_timeout_ms and
// counted as a handshake failure.
TEST_F(TlsSourceTest, StalledHandshakeTimesOut) {
  auto o = options();
  o.idle_timeout_ms = 200;
  startSource(o);
  PlainClient silent(source_->boundPort());
  ASSERT_TRUE(silent.connected());
  EXPECT_TRUE(silent.closedByPeer(milliseconds(3000)));
  EXPECT_EQ(handshakeFailures(), 1u);
  EXPECT_EQ(metrics_
                .counter("vigil_source_connections_idle_closed_total",
                         "TCP connections closed after idle_timeout_ms", {{"source", "tls_test"}})
                .value(),
            1u);
}

// With verify_client=required a client without a certificate is rejected, and one whose
// certificate the CA signed is served.
TEST_F(TlsSourceTest, RequiredClientCertificate) {
  auto o = options();
  o.ca_file = pki().path("ca.pem");
  o.verify_client = VerifyClient::kRequired;
  startSource(o);

  TlsClient anonymous(source_->boundPort());
  // TLS 1.3 lets the client finish its side first, so the rejection shows on the read.
  if (anonymous.connected()) {
    anonymous.send("<13>anonymous\n");
    EXPECT_TRUE(anonymous.closedByPeer());
  }
  ASSERT_TRUE(waitFor(handshakeCounter(), 1));

  TlsClient signed_client(source_->boundPort(), "client");
  ASSERT_TRUE(signed_client.connected());
  ASSERT_TRUE(signed_client.send("<13>signed\n"));
  auto got = receive(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].text, "<13>signed");
  EXPECT_EQ(source_->handshakeFailures(), 1u);
  EXPECT_EQ(source_->counters().received->value(), 1u);
}

// A client certificate that the CA did not sign is rejected, and the log names the failed
// check, not only OpenSSL's "certificate verify failed".
TEST_F(TlsSourceTest, UntrustedClientCertificateLogsCheck) {
  // Added before the source's threads start and left in place: the logger's sink list has
  // no lock, so changing it while a thread logs would race.
  auto log = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
  spdlog::default_logger()->sinks().push_back(log);
  auto o = options();
  o.ca_file = pki().path("ca.pem");
  o.verify_client = VerifyClient::kRequired;
  startSource(o);

  TlsClient stranger(source_->boundPort(), "stranger");
  if (stranger.connected()) {
    stranger.send("<13>stranger\n");
    EXPECT_TRUE(stranger.closedByPeer());
  }
  // The counter is raised just before the line is logged, so wait for the line itself.
  std::string failure;
  for (int i = 0; i < 500 && failure.empty(); ++i) {
    for (const std::string& line : log->last_formatted()) {
      if (line.find("TLS handshake failed") != std::string::npos) failure = line;
    }
    if (failure.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(source_->handshakeFailures(), 1u);
  EXPECT_NE(failure.find("certificate verify failed"), std::string::npos) << failure;
  EXPECT_NE(failure.find("client certificate: self"), std::string::npos) << failure;
  EXPECT_EQ(source_->counters().received->value(), 0u);
}

// With verify_client=optional a client without a certificate is served.
TEST_F(TlsSourceTest, OptionalClientCertificate) {
  auto o = options();
  o.ca_file = pki().path("ca.pem");
  o.verify_client = VerifyClient::kOptional;
  startSource(o);
  TlsClient anonymous(source_->boundPort());
  ASSERT_TRUE(anonymous.connected());
  ASSERT_TRUE(anonymous.send("<13>anonymous\n"));
  auto got = receive(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].text, "<13>anonymous");
}

// A frame longer than max_message_bytes is cut once and flagged, and the next frame on
// the same connection arrives whole.
TEST_F(TlsSourceTest, OversizeFrameTruncatedOnce) {
  auto o = options();
  o.max_message_bytes = 64;
  o.framing = FramingMode::kOctetCounting;
  startSource(o);
  TlsClient client(source_->boundPort());
  ASSERT_TRUE(client.connected());
  const std::string big(200, 'a');
  ASSERT_TRUE(client.send("200 " + big + "5 small"));
  auto got = receive(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].text, big.substr(0, 64));
  EXPECT_TRUE(got[0].truncated);
  EXPECT_EQ(got[1].text, "small");
  EXPECT_FALSE(got[1].truncated);
  EXPECT_EQ(source_->counters().truncated->value(), 1u);
  EXPECT_EQ(source_->counters().received->value(), 2u);
}

// A full ring stops reading; after the consumer frees slots every message still arrives.
TEST_F(TlsSourceTest, FullRingPausesWithoutLoss) {
  auto o = options();
  o.ring_capacity = 4;
  startSource(o);
  TlsClient client(source_->boundPort());
  ASSERT_TRUE(client.connected());
  std::string batch;
  for (int i = 0; i < 100; ++i) batch += "<13>m" + std::to_string(i) + "\n";
  ASSERT_TRUE(client.send(batch));
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(source_->ring().size(), 4u);
  auto got = receive(100);
  ASSERT_EQ(got.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(got[i].text, "<13>m" + std::to_string(i));
  EXPECT_EQ(source_->counters().dropped_queue_full->value(), 0u);
}

// Connections beyond max_connections are accepted, closed at once and counted, and the
// served connections keep working.
TEST_F(TlsSourceTest, MaxConnectionsRejectsExtra) {
  auto o = options();
  o.max_connections = 2;
  startSource(o);
  TlsClient a(source_->boundPort());
  TlsClient b(source_->boundPort());
  ASSERT_TRUE(a.connected());
  ASSERT_TRUE(b.connected());
  ASSERT_TRUE(a.send("<13>a\n"));
  ASSERT_TRUE(b.send("<13>b\n"));
  ASSERT_EQ(receive(2).size(), 2u);  // both are being served

  TlsClient c(source_->boundPort());
  EXPECT_FALSE(c.connected());
  Counter& rejected = metrics_.counter("vigil_source_connections_rejected_total", "",
                                       {{"source", "tls_test"}});
  EXPECT_TRUE(waitFor(rejected, 1));
  EXPECT_EQ(rejected.value(), 1u);
  EXPECT_EQ(metrics_.sum("vigil_source_connections_accepted_total", {{"source", "tls_test"}}),
            2u);

  ASSERT_TRUE(a.send("<13>a again\n"));
  auto got = receive(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].text, "<13>a again");
  EXPECT_EQ(source_->handshakeFailures(), 0u);
}

// A connection that finished its handshake and then stays silent past idle_timeout_ms is
// closed and counted, and the partial message it left is published.
TEST_F(TlsSourceTest, IdleConnectionClosed) {
  auto o = options();
  o.idle_timeout_ms = 200;
  startSource(o);
  TlsClient client(source_->boundPort());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.send("<13>no newline yet"));
  const auto begin = steady_clock::now();
  EXPECT_TRUE(client.closedByPeer());
  EXPECT_GE(steady_clock::now() - begin, milliseconds(150));
  Counter& idle_closed = metrics_.counter("vigil_source_connections_idle_closed_total", "",
                                          {{"source", "tls_test"}});
  EXPECT_EQ(idle_closed.value(), 1u);
  auto got = receive(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].text, "<13>no newline yet");
  EXPECT_EQ(source_->handshakeFailures(), 0u);
}

// An invalid octet count is counted as a framing error and closes the connection, and
// the decrypted bytes after the last good frame are counted as discarded. Other
// connections keep working.
TEST_F(TlsSourceTest, InvalidOctetCountCloses) {
  startSource(options());
  TlsClient bad(source_->boundPort());
  TlsClient good(source_->boundPort());
  ASSERT_TRUE(bad.connected());
  ASSERT_TRUE(good.connected());
  const std::string first = "9 <13>first";
  const std::string rest = "12x <13>garbage";
  // One SSL_write() of this size is one record, so the source decrypts it whole.
  ASSERT_TRUE(bad.send(first + rest));
  EXPECT_TRUE(bad.closedByPeer());
  EXPECT_TRUE(waitFor(*source_->counters().framing_errors, 1));
  EXPECT_EQ(source_->counters().framing_errors->value(), 1u);
  EXPECT_EQ(source_->counters().discarded_bytes_framing->value(), rest.size());

  ASSERT_TRUE(good.send("<13>still fine\n"));
  auto got = receive(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].text, "<13>first");
  EXPECT_EQ(got[1].text, "<13>still fine");
  EXPECT_EQ(source_->counters().received->value(), 2u);
}

// An LF line longer than max_message_bytes is cut once and flagged, the rest of the line
// is discarded, and the next line arrives whole.
TEST_F(TlsSourceTest, OversizeLfLineTruncatedOnce) {
  auto o = options();
  o.max_message_bytes = 32;
  startSource(o);
  TlsClient client(source_->boundPort());
  ASSERT_TRUE(client.connected());
  const std::string big = "<13>" + std::string(96, 'b');
  ASSERT_TRUE(client.send(big + "\n<13>after lf\n"));
  auto got = receive(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].text, big.substr(0, 32));
  EXPECT_TRUE(got[0].truncated);
  EXPECT_EQ(got[1].text, "<13>after lf");
  EXPECT_FALSE(got[1].truncated);
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(source_->ring().size(), 0u);  // no message from the discarded rest
  EXPECT_EQ(source_->counters().truncated->value(), 1u);
  EXPECT_EQ(source_->counters().received->value(), 2u);
}

// An LF-framed message without a trailing LF is published when the client closes, and the
// connection is counted as closed.
TEST_F(TlsSourceTest, LastLfMessageAtClose) {
  startSource(options());
  TlsClient client(source_->boundPort());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.send("<13>first\n<13>second without lf"));
  client.close();
  auto got = receive(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].text, "<13>first");
  EXPECT_EQ(got[1].text, "<13>second without lf");
  Counter& closed =
      metrics_.counter("vigil_source_connections_closed_total", "", {{"source", "tls_test"}});
  EXPECT_TRUE(waitFor(closed, 1));
}

// The connection limits TlsSource shares with TcpSource are checked with the value named.
TEST_F(TlsSourceTest, CreateRejectsBadLimits) {
  std::string error;
  auto o = options();
  o.max_connections = 0;
  EXPECT_EQ(TlsSource::create(o, metrics_, error), nullptr);
  EXPECT_NE(error.find("max_connections=0"), std::string::npos) << error;

  o = options();
  o.max_octet_count = 10;
  EXPECT_EQ(TlsSource::create(o, metrics_, error), nullptr);
  EXPECT_NE(error.find("max_octet_count=10"), std::string::npos) << error;

  o = options();
  o.idle_timeout_ms = -1;
  EXPECT_EQ(TlsSource::create(o, metrics_, error), nullptr);
  EXPECT_NE(error.find("idle_timeout_ms=-1"), std::string::npos) << error;

  o = options();
  o.read_buffer_bytes = 100;
  EXPECT_EQ(TlsSource::create(o, metrics_, error), nullptr);
  EXPECT_NE(error.find("read_buffer_bytes=100 is outside [512, 2147483647]"), std::string::npos)
      << error;

  o = options();
  o.rcvbuf_bytes = -1;
  EXPECT_EQ(TlsSource::create(o, metrics_, error), nullptr);
  EXPECT_NE(error.find("rcvbuf_bytes=-1"), std::string::npos) << error;
}

// Options that cannot work are rejected with the value or file named.
TEST_F(TlsSourceTest, CreateRejectsBadOptions) {
  std::string error;
  auto o = options();
  o.certificate_file = pki().path("missing.pem");
  EXPECT_EQ(TlsSource::create(o, metrics_, error), nullptr);
  EXPECT_NE(error.find("missing.pem"), std::string::npos) << error;

  o = options();
  o.private_key_file = pki().path("client.key");
  EXPECT_EQ(TlsSource::create(o, metrics_, error), nullptr);
  EXPECT_NE(error.find("does not match"), std::string::npos) << error;

  o = options();
  o.verify_client = VerifyClient::kRequired;
  EXPECT_EQ(TlsSource::create(o, metrics_, error), nullptr);
  EXPECT_NE(error.find("needs ca_file"), std::string::npos) << error;

  o = options();
  o.ca_file = pki().path("nope-ca.pem");
  o.verify_client = VerifyClient::kOptional;
  EXPECT_EQ(TlsSource::create(o, metrics_, error), nullptr);
  EXPECT_NE(error.find("nope-ca.pem"), std::string::npos) << error;
}

}  // namespace
}  // namespace vigil::dataplane

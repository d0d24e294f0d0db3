#include "dataplane/tcp_source.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include <poll.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"

namespace vigil::dataplane {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// A blocking TCP client connected to 127.0.0.1:port, with Nagle off so small writes
// leave as separate segments.
class TcpClient {
 public:
  explicit TcpClient(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~TcpClient() { close(); }

  bool connected() const { return connected_; }

  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // True when the server closed the connection within `timeout`.
  bool closedByPeer(milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char byte;
    return ::recv(fd_, &byte, 1, 0) <= 0;
  }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // True when the peer's kernel acknowledged every byte sent within `timeout`.
  bool allAcked(milliseconds timeout) {
    auto deadline = steady_clock::now() + timeout;
    while (steady_clock::now() < deadline) {
      int unacked = 0;
      if (::ioctl(fd_, SIOCOUTQ, &unacked) != 0) return false;
      if (unacked == 0) return true;
      std::this_thread::sleep_for(milliseconds(1));
    }
    return false;
  }

 private:
  int fd_;
  bool connected_ = false;
};

// A real clock that can hold the source thread: while closed, nowNs() (which the source
// calls after each read()) waits until open() is called.
class GateClock final : public Clock {
 public:
  int64_t nowNs() const override {
    waiting_.store(true);
    while (closed_.load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
    waiting_.store(false);
    return RealClock::instance().nowNs();
  }
  void close() { closed_.store(true); }
  void open() { closed_.store(false); }
  bool waiting() const { return waiting_.load(); }

 private:
  std::atomic<bool> closed_{false};
  mutable std::atomic<bool> waiting_{false};
};

struct Received {
  std::string text;
  bool truncated;
};

// Returns the listen address for a test source: an ephemeral port, or with
// VIGIL_TEST_PORTS=LOW-HIGH (HIGH exclusive) the first port of that range that binds.
std::string testListenAddress() {
  const char* range = std::getenv("VIGIL_TEST_PORTS");
  int low = 0;
  int high = 0;
  if (range == nullptr || std::sscanf(range, "%d-%d", &low, &high) != 2) return "127.0.0.1:0";
  for (int port = low; port < high; ++port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    ::close(fd);
    if (free) return "127.0.0.1:" + std::to_string(port);
  }
  return "127.0.0.1:0";
}

class TcpSourceTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (source_) source_->stop();
  }

  void startSource(TcpSourceOptions options) {
    options.listen = testListenAddress();
    std::string error;
    source_ = TcpSource::create(options, metrics_, error);
    ASSERT_NE(source_, nullptr) << error;
    ASSERT_TRUE(source_->start(error)) << error;
    ASSERT_NE(source_->boundPort(), 0);
  }

  // Pops `count` messages or gives up after `timeout`; sleeps `pause` after each message
  // to act as a slow consumer.
  std::vector<Received> collect(size_t count, milliseconds timeout = milliseconds(5000),
                                std::chrono::microseconds pause = {}) {
    std::vector<Received> out;
    auto deadline = steady_clock::now() + timeout;
    while (out.size() < count && steady_clock::now() < deadline) {
      RawMessage* m = source_->ring().front();
      if (m == nullptr) {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
        continue;
      }
      out.push_back({std::string(m->view()), m->truncated});
      source_->ring().pop();
      if (pause.count() > 0) std::this_thread::sleep_for(pause);
    }
    return out;
  }

  // Waits until `counter` reaches `value` or 5 s pass.
  static bool waitCounter(const Counter& counter, uint64_t value) {
    auto deadline = steady_clock::now() + milliseconds(5000);
    while (counter.value() < value && steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(1));
    }
    return counter.value() >= value;
  }

  uint64_t connectionCounter(const std::string& name) {
    return metrics_.sum("vigil_source_connections_" + name + "_total", {{"source", "tcp0"}});
  }

  MetricsRegistry metrics_;
  std::unique_ptr<TcpSource> source_;
};

std::string readOctetSample() {
  std::ifstream in(VIGIL_SHARED_DIR "/corpus/edge/br06-rfc6587-octet-counting.bin",
                   std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// One listener serves an LF-framed and an octet-counted connection at the same time.
TEST_F(TcpSourceTest, MixedFramingOnOneListener) {
  startSource(TcpSourceOptions{});
  TcpClient lf(source_->boundPort());
  TcpClient octet(source_->boundPort());
  ASSERT_TRUE(lf.connected());
  ASSERT_TRUE(octet.connected());
  ASSERT_TRUE(lf.send("<13>lf one\n<13>lf two\r\n"));
  ASSERT_TRUE(octet.send("13 <13>octet one13 <13>octet two"));

  std::vector<Received> got = collect(4);
  ASSERT_EQ(got.size(), 4u);
  std::vector<std::string> lf_msgs;
  std::vector<std::string> octet_msgs;
  for (const Received& r : got) {
    (r.text.find("octet") != std::string::npos ? octet_msgs : lf_msgs).push_back(r.text);
  }
  EXPECT_EQ(lf_msgs, (std::vector<std::string>{"<13>lf one", "<13>lf two"}));
  EXPECT_EQ(octet_msgs, (std::vector<std::string>{"<13>octet one", "<13>octet two"}));
  EXPECT_EQ(connectionCounter("accepted"), 2u);
}

// The RFC 6587 sample stream, written one byte at a time and in random chunks, yields
// messages of 43, 111, 95 and 71 octets each time. The last one arrives at close.
TEST_F(TcpSourceTest, OctetSampleInOddChunks) {
  startSource(TcpSourceOptions{});
  const std::string bytes = readOctetSample();
  ASSERT_EQ(bytes.size(), 333u);
  std::mt19937 rng(42);
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    TcpClient client(source_->boundPort());
    ASSERT_TRUE(client.connected());
    std::uniform_int_distribution<size_t> size(1, round == 0 ? 1 : 37);
    for (size_t i = 0; i < bytes.size();) {
      size_t n = std::min(size(rng), bytes.size() - i);
      ASSERT_TRUE(client.send(std::string_view(bytes).substr(i, n)));
      i += n;
    }
    client.close();
    std::vector<Received> got = collect(4);
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[0].text.size(), 43u);
    EXPECT_EQ(got[1].text.size(), 111u);
    EXPECT_EQ(got[2].text.size(), 95u);
    EXPECT_EQ(got[3].text.size(), 71u);
    EXPECT_EQ(got[3].text.substr(67), "last");
  }
  EXPECT_EQ(source_->counters().framing_errors->value(), 0u);
}

// An oversize frame is cut, flagged and counted once, and the next frame is intact, in
// both framings.
TEST_F(TcpSourceTest, OversizeFrameBothFramings) {
  TcpSourceOptions options;
  options.max_message_bytes = 32;
  startSource(options);
  const std::string big = "<13>" + std::string(96, 'b');
  TcpClient lf(source_->boundPort());
  ASSERT_TRUE(lf.send(big + "\n<13>after lf\n"));
  std::vector<Received> lf_got = collect(2);
  ASSERT_EQ(lf_got.size(), 2u);
  EXPECT_EQ(lf_got[0].text, big.substr(0, 32));
  EXPECT_TRUE(lf_got[0].truncated);
  EXPECT_EQ(lf_got[1].text, "<13>after lf");
  EXPECT_FALSE(lf_got[1].truncated);

  TcpClient octet(source_->boundPort());
  ASSERT_TRUE(octet.send("100 " + big + "15 <13>after octet"));
  std::vector<Received> octet_got = collect(2);
  ASSERT_EQ(octet_got.size(), 2u);
  EXPECT_EQ(octet_got[0].text, big.substr(0, 32));
  EXPECT_TRUE(octet_got[0].truncated);
  EXPECT_EQ(octet_got[1].text, "<13>after octet");
  EXPECT_FALSE(octet_got[1].truncated);

  EXPECT_EQ(collect(1, milliseconds(100)).size(), 0u);  // no phantom event from the rest
  EXPECT_EQ(source_->counters().truncated->value(), 2u);
}

// A full ring with a slow consumer loses nothing: N messages sent, N received in order.
TEST_F(TcpSourceTest, BackpressureLosesNothing) {
  TcpSourceOptions options;
  options.ring_capacity = 8;
  options.read_buffer_bytes = 1024;
  startSource(options);
  constexpr size_t kMessages = 3000;
  std::thread sender([port = source_->boundPort()] {
    TcpClient client(port);
    std::string batch;
    for (size_t i = 0; i < kMessages; ++i) {
      batch += "<13>backpressure message " + std::to_string(i) + "\n";
      if (batch.size() > 4000) {
        client.send(batch);
        batch.clear();
      }
    }
    client.send(batch);
  });
  // Let the ring fill up first so the source has to stop reading.
  auto deadline = steady_clock::now() + milliseconds(5000);
  while (source_->ring().size() < source_->ring().capacity() && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  EXPECT_EQ(source_->ring().size(), source_->ring().capacity());
  std::this_thread::sleep_for(milliseconds(50));
  std::vector<Received> got =
      collect(kMessages, milliseconds(30000), std::chrono::microseconds(20));
  sender.join();

  ASSERT_EQ(got.size(), kMessages);
  for (size_t i = 0; i < kMessages; ++i) {
    ASSERT_EQ(got[i].text, "<13>backpressure message " + std::to_string(i));
  }
  EXPECT_EQ(metrics_.sum("vigil_source_dropped_total", {{"source", "tcp0"}}), 0u);
  EXPECT_EQ(source_->counters().received->value(), kMessages);
}

// Connections beyond max_connections are accepted, closed at once and counted.
TEST_F(TcpSourceTest, MaxConnections) {
  TcpSourceOptions options;
  options.max_connections = 2;
  startSource(options);
  TcpClient a(source_->boundPort());
  TcpClient b(source_->boundPort());
  ASSERT_TRUE(a.send("<13>a\n"));
  ASSERT_TRUE(b.send("<13>b\n"));
  ASSERT_EQ(collect(2).size(), 2u);  // both are being served
  TcpClient c(source_->boundPort());
  EXPECT_TRUE(c.closedByPeer(milliseconds(5000)));
  EXPECT_EQ(connectionCounter("rejected"), 1u);
  EXPECT_EQ(connectionCounter("accepted"), 2u);
  EXPECT_FALSE(a.closedByPeer(milliseconds(50)));
}

// The bytes a rejected connection sent before the source accepted it are counted as
// discarded. The source thread is held while the client connects and sends, so every
// byte is waiting when the source accepts and rejects the connection.
TEST_F(TcpSourceTest, RejectedConnectionBytesCounted) {
  GateClock clock;
  TcpSourceOptions options;
  options.listen = "127.0.0.1:0";
  options.max_connections = 1;
  std::string error;
  source_ = TcpSource::create(options, metrics_, error, clock);
  ASSERT_NE(source_, nullptr) << error;
  ASSERT_TRUE(source_->start(error)) << error;
  TcpClient served(source_->boundPort());
  ASSERT_TRUE(served.send("<13>served\n"));
  ASSERT_EQ(collect(1).size(), 1u);

  clock.close();
  ASSERT_TRUE(served.send("<13>holds the thread\n"));
  auto deadline = steady_clock::now() + milliseconds(5000);
  while (!clock.waiting() && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  ASSERT_TRUE(clock.waiting());
  TcpClient rejected(source_->boundPort());
  const std::string sent = "<13>never framed 1\n<13>never framed 2\n";
  ASSERT_TRUE(rejected.send(sent));
  std::this_thread::sleep_for(milliseconds(20));
  clock.open();

  EXPECT_TRUE(rejected.closedByPeer(milliseconds(5000)));
  EXPECT_EQ(connectionCounter("rejected"), 1u);
  EXPECT_EQ(source_->counters().discarded_bytes_rejected->value(), sent.size());
  EXPECT_EQ(collect(1).size(), 1u);
  EXPECT_EQ(source_->counters().received->value(), 2u);
}

// A connection that stays silent past idle_timeout_ms is closed and counted; a partial
// message it left is published.
TEST_F(TcpSourceTest, IdleTimeoutCloses) {
  TcpSourceOptions options;
  options.idle_timeout_ms = 200;
  startSource(options);
  TcpClient client(source_->boundPort());
  ASSERT_TRUE(client.send("<13>no newline yet"));
  auto begin = steady_clock::now();
  EXPECT_TRUE(client.closedByPeer(milliseconds(5000)));
  EXPECT_GE(steady_clock::now() - begin, milliseconds(150));
  EXPECT_EQ(connectionCounter("idle_closed"), 1u);
  std::vector<Received> got = collect(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].text, "<13>no newline yet");
}

// An invalid octet count is counted as a framing error and closes the connection; other
// connections keep working.
TEST_F(TcpSourceTest, InvalidOctetCountCloses) {
  startSource(TcpSourceOptions{});
  TcpClient bad(source_->boundPort());
  TcpClient good(source_->boundPort());
  const std::string first = "9 <13>first";
  const std::string rest = "12x <13>garbage";
  ASSERT_TRUE(bad.send(first + rest));
  EXPECT_TRUE(bad.closedByPeer(milliseconds(5000)));
  EXPECT_TRUE(waitCounter(*source_->counters().framing_errors, 1));
  // Every byte after the first frame is discarded: the bad count "12x" and what follows.
  EXPECT_EQ(source_->counters().discarded_bytes_framing->value(), rest.size());
  ASSERT_TRUE(good.send("<13>still fine\n"));
  std::vector<Received> got = collect(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].text, "<13>first");
  EXPECT_EQ(got[1].text, "<13>still fine");
  EXPECT_EQ(source_->counters().received->value(), 2u);
}

// Under auto framing, LF lines that start with digits are published, not rejected as bad
// octet counts.
TEST_F(TcpSourceTest, AutoLfDigitLines) {
  startSource(TcpSourceOptions{});
  TcpClient client(source_->boundPort());
  const std::string epoch = "1700000000 fw1.example.com CEF:0|Vendor|FW|1.0|100|Blocked|5|";
  const std::string dated = "2024-01-01T00:00:00Z host app: started";
  ASSERT_TRUE(client.send(epoch + "\n" + dated + "\n"));
  std::vector<Received> got = collect(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].text, epoch);
  EXPECT_EQ(got[1].text, dated);
  EXPECT_EQ(source_->counters().framing_errors->value(), 0u);
}

// Bytes the kernel acknowledged but the source never read (the ring is full, so the
// connection is paused) are framed at stop(): every message ends in received or
// dropped{reason=shutdown}.
TEST_F(TcpSourceTest, StopDrainsSocketQueue) {
  TcpSourceOptions options;
  options.ring_capacity = 16;
  options.read_buffer_bytes = 512;
  startSource(options);
  TcpClient client(source_->boundPort());
  constexpr size_t kSent = 400;
  std::string stream;
  for (size_t i = 0; i < kSent; ++i) stream += "<13>message number " + std::to_string(i) + "\n";
  ASSERT_TRUE(client.send(stream));
  ASSERT_TRUE(client.allAcked(milliseconds(5000)));
  EXPECT_TRUE(waitCounter(*source_->counters().received, 16));
  source_->stop();

  const SourceCounters& c = source_->counters();
  EXPECT_EQ(c.received->value(), 16u);
  EXPECT_EQ(c.received->value() + c.dropped_shutdown->value(), kSent);
  EXPECT_EQ(c.framing_errors->value(), 0u);
}

// With a drain deadline from beginStop(), stop() waits for the consumer to free ring slots
// instead of dropping what the socket had already received: nothing is dropped.
TEST_F(TcpSourceTest, StopWaitsForRingSlots) {
  TcpSourceOptions options;
  options.ring_capacity = 16;
  options.read_buffer_bytes = 512;
  startSource(options);
  TcpClient client(source_->boundPort());
  constexpr size_t kSent = 400;
  std::string stream;
  for (size_t i = 0; i < kSent; ++i) stream += "<13>message number " + std::to_string(i) + "\n";
  ASSERT_TRUE(client.send(stream));
  ASSERT_TRUE(client.allAcked(milliseconds(5000)));
  EXPECT_TRUE(waitCounter(*source_->counters().received, 16));

  // The source stops reading first; then a slow consumer frees slots while stop() drains
  // the socket, so the drain has to wait for them.
  source_->beginStop(monotonicNs() + 10'000'000'000);
  std::vector<Received> got;
  std::thread consumer(
      [&] { got = collect(kSent, milliseconds(10000), std::chrono::microseconds(200)); });
  source_->stop();
  consumer.join();

  const SourceCounters& c = source_->counters();
  EXPECT_EQ(c.dropped_shutdown->value(), 0u);
  EXPECT_EQ(c.received->value(), kSent);
  ASSERT_EQ(got.size(), kSent);
  EXPECT_EQ(got.back().text, "<13>message number " + std::to_string(kSent - 1));
}

// At the descriptor limit accept() fails with EMFILE: the source counts it, backs off
// instead of retrying in a tight loop, and accepts the waiting connection once
// descriptors are free again.
TEST_F(TcpSourceTest, AcceptBacksOffAtFdLimit) {
  startSource(TcpSourceOptions{});
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
  auto client = std::make_unique<TcpClient>(source_->boundPort());
  const bool connected = client->connected();

  Counter& emfile = metrics_.counter("vigil_source_accept_errors_total", "",
                                     {{"source", "tcp0"}, {"reason", "emfile"}});
  const bool failed = waitCounter(emfile, 1);
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
  EXPECT_EQ(connectionCounter("accepted"), 0u);
  ASSERT_TRUE(client->send("<13>after the limit\n"));
  std::vector<Received> got = collect(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].text, "<13>after the limit");
  EXPECT_EQ(connectionCounter("accepted"), 1u);
}

// An LF-framed message without a trailing LF is published when the peer closes.
TEST_F(TcpSourceTest, LastMessageAtClose) {
  startSource(TcpSourceOptions{});
  TcpClient client(source_->boundPort());
  ASSERT_TRUE(client.send("<13>first\n<13>second without lf"));
  client.close();
  std::vector<Received> got = collect(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].text, "<13>second without lf");
  Counter& closed =
      metrics_.counter("vigil_source_connections_closed_total", "", {{"source", "tcp0"}});
  EXPECT_TRUE(waitCounter(closed, 1));
}

// Invalid options are rejected with the bad value named.
TEST_F(TcpSourceTest, InvalidOptionsRejected) {
  std::string error;
  TcpSourceOptions zero_connections;
  zero_connections.max_connections = 0;
  EXPECT_EQ(TcpSource::create(zero_connections, metrics_, error), nullptr);
  EXPECT_NE(error.find("max_connections=0"), std::string::npos) << error;

  TcpSourceOptions small_limit;
  small_limit.max_octet_count = 10;
  EXPECT_EQ(TcpSource::create(small_limit, metrics_, error), nullptr);
  EXPECT_NE(error.find("max_octet_count=10"), std::string::npos) << error;

  TcpSourceOptions huge_message;
  huge_message.max_message_bytes = size_t{1} << 30;
  EXPECT_EQ(TcpSource::create(huge_message, metrics_, error), nullptr);
  EXPECT_NE(error.find("max_message_bytes=1073741824"), std::string::npos) << error;
}

// The connection limits TcpSource shares with TlsSource are checked with the value named.
TEST_F(TcpSourceTest, SharedLimitsRejected) {
  std::string error;
  TcpSourceOptions negative_idle;
  negative_idle.idle_timeout_ms = -1;
  EXPECT_EQ(TcpSource::create(negative_idle, metrics_, error), nullptr);
  EXPECT_NE(error.find("idle_timeout_ms=-1"), std::string::npos) << error;

  TcpSourceOptions small_buffer;
  small_buffer.read_buffer_bytes = 100;
  EXPECT_EQ(TcpSource::create(small_buffer, metrics_, error), nullptr);
  EXPECT_NE(error.find("read_buffer_bytes=100 is below 512"), std::string::npos) << error;

  TcpSourceOptions negative_rcvbuf;
  negative_rcvbuf.rcvbuf_bytes = -1;
  EXPECT_EQ(TcpSource::create(negative_rcvbuf, metrics_, error), nullptr);
  EXPECT_NE(error.find("rcvbuf_bytes=-1"), std::string::npos) << error;
}

}  // namespace
}  // namespace vigil::dataplane

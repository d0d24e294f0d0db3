#include "dataplane/udp_source.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"

namespace vigil::dataplane {
namespace {

// A UDP client socket that sends to 127.0.0.1:port.
class UdpClient {
 public:
  explicit UdpClient(uint16_t port) : fd_(::socket(AF_INET, SOCK_DGRAM, 0)) {
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(port);
    addr_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
  ~UdpClient() { ::close(fd_); }

  bool send(const std::string& datagram) {
    ssize_t n = ::sendto(fd_, datagram.data(), datagram.size(), 0,
                         reinterpret_cast<const sockaddr*>(&addr_), sizeof(addr_));
    return n == static_cast<ssize_t>(datagram.size());
  }

 private:
  int fd_;
  sockaddr_in addr_{};
};

// Pops up to `count` messages, waiting at most 5 s in total.
std::vector<RawMessage*> waitFor(RawRing& ring, size_t count, std::vector<std::string>& texts) {
  std::vector<RawMessage*> out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (out.size() < count && std::chrono::steady_clock::now() < deadline) {
    if (RawMessage* m = ring.front()) {
      texts.emplace_back(m->view());
      out.push_back(m);
      ring.pop();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  return out;
}

// A real clock that can hold the receive thread: while closed, nowNs() (which the source
// calls after each recvmmsg()) waits until open() is called.
class GateClock final : public Clock {
 public:
  int64_t nowNs() const override {
    waiting_.store(true);
    while (closed_.load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
    return RealClock::instance().nowNs();
  }
  void close() { closed_.store(true); }
  void open() { closed_.store(false); }
  bool waiting() const { return waiting_.load(); }

 private:
  std::atomic<bool> closed_{false};
  mutable std::atomic<bool> waiting_{false};
};

class UdpSourceTest : public ::testing::Test {
 protected:
  std::unique_ptr<UdpSource> startSource(UdpSourceOptions options,
                                         Clock& clock = RealClock::instance()) {
    options.listen = "127.0.0.1:0";
    std::string error;
    auto source = UdpSource::create(options, metrics_, error, clock);
    EXPECT_NE(source, nullptr) << error;
    if (source == nullptr) return nullptr;
    EXPECT_TRUE(source->start(error)) << error;
    EXPECT_NE(source->boundPort(), 0);
    return source;
  }

  MetricsRegistry metrics_;
};

// Datagrams arrive in the ring in order, with the peer address and source id set.
TEST_F(UdpSourceTest, DatagramsArriveWithPeer) {
  UdpSourceOptions options;
  options.id = 7;
  auto source = startSource(options);
  ASSERT_NE(source, nullptr);
  UdpClient client(source->boundPort());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(client.send("<13>msg " + std::to_string(i)));

  std::vector<std::string> texts;
  std::vector<RawMessage*> got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (texts.size() < 10 && std::chrono::steady_clock::now() < deadline) {
    RawMessage* m = source->ring().front();
    if (m == nullptr) continue;
    texts.emplace_back(m->view());
    ASSERT_TRUE(m->peer.has_value());
    EXPECT_EQ(formatIp(*m->peer), "127.0.0.1");
    EXPECT_EQ(m->source_id, 7);
    EXPECT_FALSE(m->truncated);
    EXPECT_GT(m->receive_ns, 0);
    source->ring().pop();
  }
  source->stop();
  ASSERT_EQ(texts.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(texts[i], "<13>msg " + std::to_string(i));
  EXPECT_EQ(source->counters().received->value(), 10u);
}

// A datagram longer than max_message_bytes is cut to the max and flagged.
TEST_F(UdpSourceTest, OversizeDatagramTruncated) {
  UdpSourceOptions options;
  options.max_message_bytes = 64;
  auto source = startSource(options);
  ASSERT_NE(source, nullptr);
  UdpClient client(source->boundPort());
  const std::string big = "<13>" + std::string(196, 'x');
  ASSERT_TRUE(client.send(big));
  ASSERT_TRUE(client.send("<13>small"));

  std::vector<std::string> texts;
  std::vector<bool> truncated;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (texts.size() < 2 && std::chrono::steady_clock::now() < deadline) {
    if (RawMessage* m = source->ring().front()) {
      texts.emplace_back(m->view());
      truncated.push_back(m->truncated);
      source->ring().pop();
    }
  }
  source->stop();
  ASSERT_EQ(texts.size(), 2u);
  EXPECT_EQ(texts[0], big.substr(0, 64));
  EXPECT_TRUE(truncated[0]);
  EXPECT_EQ(texts[1], "<13>small");
  EXPECT_FALSE(truncated[1]);
  EXPECT_EQ(source->counters().truncated->value(), 1u);
}

// Empty datagrams are dropped as `empty`, and the datagrams between them still arrive in
// order, each with its own bytes.
TEST_F(UdpSourceTest, EmptyDatagramsDropped) {
  UdpSourceOptions options;
  options.batch_size = 8;
  auto source = startSource(options);
  ASSERT_NE(source, nullptr);
  UdpClient client(source->boundPort());
  const std::vector<std::string> sent = {"", "<13>a", "", "", "<13>bb", "<13>ccc", "", "<13>d"};
  for (int round = 0; round < 3; ++round) {
    for (const std::string& datagram : sent) ASSERT_TRUE(client.send(datagram));
  }
  std::vector<std::string> texts;
  waitFor(source->ring(), 12, texts);
  const SourceCounters& c = source->counters();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (c.dropped_empty->value() < 12 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  source->stop();
  ASSERT_EQ(texts.size(), 12u);
  for (size_t i = 0; i < texts.size(); i += 4) {
    EXPECT_EQ(texts[i], "<13>a") << i;
    EXPECT_EQ(texts[i + 1], "<13>bb") << i;
    EXPECT_EQ(texts[i + 2], "<13>ccc") << i;
    EXPECT_EQ(texts[i + 3], "<13>d") << i;
  }
  EXPECT_EQ(c.received->value(), 12u);
  EXPECT_EQ(c.dropped_empty->value(), 12u);
  EXPECT_EQ(c.bytes->value(), 3u * (5 + 6 + 7 + 5));
}

// Without a consumer the ring fills, further datagrams are dropped as queue_full, and
// every datagram sent is either received or counted as dropped.
TEST_F(UdpSourceTest, FullRingDropsAndCounts) {
  UdpSourceOptions options;
  options.ring_capacity = 8;
  options.rcvbuf_bytes = 1 << 20;
  auto source = startSource(options);
  ASSERT_NE(source, nullptr);
  UdpClient client(source->boundPort());
  constexpr uint64_t kSent = 200;
  for (uint64_t i = 0; i < kSent; ++i) {
    ASSERT_TRUE(client.send("<13>flood " + std::to_string(i)));
    if (i % 20 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const SourceCounters& c = source->counters();
  auto accounted = [&] {
    return c.received->value() + c.dropped_queue_full->value() + c.dropped_kernel->value();
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (accounted() < kSent && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  source->stop();

  EXPECT_EQ(c.received->value(), 8u);
  EXPECT_EQ(source->ring().size(), 8u);
  EXPECT_GT(c.dropped_queue_full->value(), 0u);
  EXPECT_EQ(accounted(), kSent);
  EXPECT_EQ(metrics_.sum("vigil_source_dropped_total", {{"source", "udp0"}}),
            c.dropped_queue_full->value() + c.dropped_kernel->value());
}

// A malformed listen address is rejected at create() with the value named.
TEST_F(UdpSourceTest, BadListenAddressRejected) {
  std::string error;
  for (const char* listen : {"localhost:514", "127.0.0.1", "127.0.0.1:99999", "::1:514"}) {
    SCOPED_TRACE(listen);
    UdpSourceOptions options;
    options.listen = listen;
    EXPECT_EQ(UdpSource::create(options, metrics_, error), nullptr);
    EXPECT_NE(error.find(listen), std::string::npos) << error;
  }
}

// A port already bound by another socket fails start() with the address and errno text.
TEST_F(UdpSourceTest, PortInUseFailsStart) {
  auto first = startSource(UdpSourceOptions{});
  ASSERT_NE(first, nullptr);
  UdpSourceOptions options;
  options.name = "udp1";
  options.listen = "127.0.0.1:" + std::to_string(first->boundPort());
  std::string error;
  auto second = UdpSource::create(options, metrics_, error);
  ASSERT_NE(second, nullptr) << error;
  EXPECT_FALSE(second->start(error));
  EXPECT_NE(error.find("Address already in use"), std::string::npos) << error;
  EXPECT_NE(error.find(options.listen), std::string::npos) << error;
}

// IPv6 loopback works too, and the peer is the IPv6 address.
TEST_F(UdpSourceTest, Ipv6Loopback) {
  UdpSourceOptions options;
  options.listen = "[::1]:0";
  std::string error;
  auto source = UdpSource::create(options, metrics_, error);
  ASSERT_NE(source, nullptr) << error;
  if (!source->start(error)) GTEST_SKIP() << "no IPv6 loopback: " << error;
  int fd = ::socket(AF_INET6, SOCK_DGRAM, 0);
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_port = htons(source->boundPort());
  addr.sin6_addr = in6addr_loopback;
  const std::string msg = "<13>v6";
  ASSERT_EQ(
      ::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
      static_cast<ssize_t>(msg.size()));
  ::close(fd);
  std::vector<std::string> texts;
  std::vector<RawMessage*> got = waitFor(source->ring(), 1, texts);
  source->stop();
  ASSERT_EQ(texts.size(), 1u);
  EXPECT_EQ(texts[0], msg);
  ASSERT_TRUE(got[0]->peer.has_value());
  EXPECT_EQ(formatIp(*got[0]->peer), "::1");
}

// Datagrams still queued in the socket at stop() are read and counted: every datagram
// sent ends in received or a dropped counter, and some of them end in reason shutdown.
TEST_F(UdpSourceTest, StopDrainsSocketQueue) {
  GateClock clock;
  UdpSourceOptions options;
  options.ring_capacity = 16;
  options.batch_size = 1;
  options.rcvbuf_bytes = 1 << 20;
  auto source = startSource(options, clock);
  ASSERT_NE(source, nullptr);
  clock.close();
  UdpClient client(source->boundPort());
  constexpr size_t kSent = 150;
  ASSERT_TRUE(client.send("<13>msg 0"));
  // The receive thread now waits inside nowNs(), so the other datagrams stay queued.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!clock.waiting() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(clock.waiting());
  for (size_t i = 1; i < kSent; ++i) ASSERT_TRUE(client.send("<13>msg " + std::to_string(i)));
  std::thread stopper([&] { source->stop(); });
  // Give stop() time to raise the stop flag before the thread resumes.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  clock.open();
  stopper.join();

  const SourceCounters& c = source->counters();
  EXPECT_EQ(c.received->value(), 16u);
  EXPECT_GT(c.dropped_shutdown->value(), 0u);
  EXPECT_EQ(c.received->value() + c.dropped_queue_full->value() + c.dropped_shutdown->value() +
                c.dropped_kernel->value(),
            kSent);
}

}  // namespace
}  // namespace vigil::dataplane

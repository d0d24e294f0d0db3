// DpdkSource against a real EAL and a net_pcap virtual port reading a pcap file that the
// test writes with libpcap: delivery, drop counters, VLAN ids and EAL errors.
#include "dataplane/dpdk_source.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/dataplane/dpdk/dpdk_test_util.h"

namespace vigil::dataplane {
namespace {

using namespace vigil::dataplane::testing;  // NOLINT(build/namespaces): test helpers

// Every syslog datagram in the pcap arrives in order with its payload and peer, every
// other frame lands in the drop counter for its reason, and the port gauges match.
TEST_F(DpdkSourceTest, PcapDeliversEveryDatagram) {
  PcapWriter pcap(pcap_path_);
  ASSERT_TRUE(pcap.ok()) << pcap_path_;
  std::vector<Expected> expected;
  constexpr int kDatagrams = 60;
  for (int i = 0; i < kDatagrams; ++i) {
    const std::string payload =
        "<13>Dec  4 16:00:00 host" + std::to_string(i) + " app: message " + std::to_string(i);
    if (i % 3 == 2) {
      const IpAddr peer = *parseIp("2001:db8::" + std::to_string(i + 1));
      pcap.add(ipv6Frame(peer, 17, udp(514, payload)));
      expected.push_back({payload, peer});
    } else {
      const IpAddr peer = *parseIp("192.0.2." + std::to_string(i + 1));
      const bool tagged = i % 3 == 1;
      pcap.add(ipv4Frame(peer, 17, udp(514, payload), tagged));
      expected.push_back({payload, peer, static_cast<uint16_t>(tagged ? 42 : 0)});
    }
    // Non-syslog frames interleaved with the datagrams.
    if (i % 20 == 0) pcap.add(ipv4Frame(*parseIp("192.0.2.200"), 6, Frame(20, 0)));  // TCP
    if (i % 30 == 0) pcap.add(ethernet(kEtherArp));
    if (i % 15 == 0) pcap.add(ipv4Frame(*parseIp("192.0.2.201"), 17, udp(53, "dns")));
    if (i % 30 == 5) {
      pcap.add(ipv4Frame(*parseIp("192.0.2.202"), 17, udp(514, "first"), false, 0x2000));
    }
  }
  // A 300-byte payload is cut to max_message_bytes (256) and flagged.
  const std::string long_payload = "<13>" + std::string(296, 'x');
  pcap.add(ipv4Frame(*parseIp("192.0.2.250"), 17, udp(514, long_payload)));
  // A frame captured with a 30-byte snap length ends inside the IPv4 header.
  pcap.add(ipv4Frame(*parseIp("192.0.2.251"), 17, udp(514, "cut")), 30);
  const size_t frames = pcap.count();
  pcap.close();

  DpdkSource source(options(pcap_path_), metrics_, clock_);
  std::string error;
  ASSERT_TRUE(source.start(error)) << error;
  const size_t total_expected = expected.size() + 1;
  ASSERT_TRUE(waitFor([&] { return received() + allDrops() >= frames; }))
      << "received=" << received() << " drops=" << allDrops() << " frames=" << frames;
  source.stop();

  EXPECT_EQ(received(), total_expected);
  EXPECT_EQ(dropped("non_udp"), 3u);
  EXPECT_EQ(dropped("non_ip"), 2u);
  EXPECT_EQ(dropped("port_not_accepted"), 4u);
  EXPECT_EQ(dropped("ip_fragment"), 2u);
  EXPECT_EQ(dropped("truncated_frame"), 1u);
  EXPECT_EQ(dropped("queue_full"), 0u);
  EXPECT_EQ(received() + allDrops(), frames);
  EXPECT_EQ(metrics_.sum("vigil_source_truncated_total", {{"source", "dpdk_test"}}), 1u);
  const Labels port_labels = {{"source", "dpdk_test"}};
  EXPECT_EQ(metrics_.gauge("vigil_dpdk_port_ipackets", "", port_labels).value(),
            static_cast<int64_t>(frames));
  EXPECT_EQ(metrics_.gauge("vigil_dpdk_port_rx_nombuf", "", port_labels).value(), 0);

  RawRing& ring = source.ring();
  ASSERT_EQ(ring.size(), total_expected);
  for (size_t i = 0; i < expected.size(); ++i) {
    const RawMessage* m = ring.front();
    ASSERT_NE(m, nullptr) << "message " << i;
    EXPECT_EQ(m->view(), expected[i].payload) << "message " << i;
    ASSERT_TRUE(m->peer.has_value()) << "message " << i;
    EXPECT_EQ(*m->peer, expected[i].peer) << "message " << i << " peer " << formatIp(*m->peer);
    EXPECT_FALSE(m->truncated) << "message " << i;
    EXPECT_EQ(m->source_id, 7) << "message " << i;
    EXPECT_EQ(m->vlan, expected[i].vlan) << "message " << i;
    EXPECT_EQ(m->receive_ns, clock_.nowNs()) << "message " << i;
    ring.pop();
  }
  const RawMessage* cut = ring.front();
  ASSERT_NE(cut, nullptr);
  EXPECT_TRUE(cut->truncated);
  EXPECT_EQ(cut->view(), long_payload.substr(0, 256));
  EXPECT_EQ(*cut->peer, *parseIp("192.0.2.250"));
}

// With no consumer draining the ring, datagrams beyond its capacity are counted as queue_full.
TEST_F(DpdkSourceTest, RingFullCountsQueueFull) {
  PcapWriter pcap(pcap_path_);
  ASSERT_TRUE(pcap.ok()) << pcap_path_;
  constexpr size_t kDatagrams = 40;
  for (size_t i = 0; i < kDatagrams; ++i) {
    pcap.add(ipv4Frame(*parseIp("192.0.2.9"), 17, udp(514, "<13>msg " + std::to_string(i))));
  }
  pcap.close();

  DpdkSourceOptions o = options(pcap_path_);
  o.ring_capacity = 8;
  DpdkSource source(o, metrics_, clock_);
  std::string error;
  ASSERT_TRUE(source.start(error)) << error;
  ASSERT_TRUE(waitFor([&] { return received() + allDrops() >= kDatagrams; }));
  source.stop();

  EXPECT_EQ(received(), 8u);
  EXPECT_EQ(dropped("queue_full"), kDatagrams - 8);
  EXPECT_EQ(source.ring().size(), 8u);
  EXPECT_EQ(source.ring().front()->view(), "<13>msg 0");
}

// A pcap vdev whose file is missing fails to probe without failing rte_eal_init; start()
// reports that no port exists.
TEST_F(DpdkSourceTest, MissingPcapReportsNoPort) {
  DpdkSource source(options((dir_ / "missing.pcap").string()), metrics_, clock_);
  std::string error;
  EXPECT_FALSE(source.start(error));
  EXPECT_NE(error.find("no DPDK port is available"), std::string::npos) << error;
}

// An EAL option EAL does not know makes start() fail with rte_eal_init's error.
TEST_F(DpdkSourceTest, BadEalArgumentFails) {
  DpdkSourceOptions o = options(pcap_path_);
  o.eal_args.push_back("--no-such-eal-option");
  DpdkSource source(o, metrics_, clock_);
  std::string error;
  EXPECT_FALSE(source.start(error));
  EXPECT_NE(error.find("rte_eal_init failed"), std::string::npos) << error;
  EXPECT_NE(error.find("--no-such-eal-option"), std::string::npos) << error;

  // The failure is remembered: a second attempt in this process fails without retrying.
  DpdkSource again(options(pcap_path_), metrics_, clock_);
  EXPECT_FALSE(again.start(error));
  EXPECT_NE(error.find("earlier failure"), std::string::npos) << error;
}

// A port name that EAL did not probe is rejected with the name in the error, and the EAL
// cleanup that follows forbids a restart in this process.
TEST_F(DpdkSourceTest, UnknownPortNameRejected) {
  PcapWriter pcap(pcap_path_);
  ASSERT_TRUE(pcap.ok()) << pcap_path_;
  pcap.close();
  DpdkSourceOptions o = options(pcap_path_);
  o.port = "net_pcap9";
  DpdkSource source(o, metrics_, clock_);
  std::string error;
  EXPECT_FALSE(source.start(error));
  EXPECT_NE(error.find("no port is named \"net_pcap9\""), std::string::npos) << error;

  o.port = "net_pcap0";
  DpdkSource retry(o, metrics_, clock_);
  EXPECT_FALSE(retry.start(error));
  EXPECT_NE(error.find("already cleaned up"), std::string::npos) << error;
}

// Options outside their ranges are rejected before DPDK is touched, naming the value.
TEST(DpdkSourceOptionsTest, InvalidOptionsRejected) {
  std::string error;
  DpdkSourceOptions o;
  EXPECT_TRUE(DpdkSource::validateOptions(o, error)) << error;

  o.rx_queues = 0;
  EXPECT_FALSE(DpdkSource::validateOptions(o, error));
  EXPECT_NE(error.find("rx_queues=0"), std::string::npos) << error;

  o.rx_queues = DpdkSource::kMaxRxQueues + 1;
  EXPECT_FALSE(DpdkSource::validateOptions(o, error));
  EXPECT_NE(error.find("rx_queues=65"), std::string::npos) << error;

  // Four queues need 4 * (2 * 1024 + 32) = 8320 mbufs, more than the default pool.
  o = DpdkSourceOptions{};
  o.rx_queues = 4;
  EXPECT_FALSE(DpdkSource::validateOptions(o, error));
  EXPECT_NE(error.find("= 8320"), std::string::npos) << error;
  o.mbuf_pool_size = 8320;
  EXPECT_TRUE(DpdkSource::validateOptions(o, error)) << error;

  o.lcores = {0, 1};
  EXPECT_FALSE(DpdkSource::validateOptions(o, error));
  EXPECT_NE(error.find("lcores lists 2 CPUs for 4 RX queues"), std::string::npos) << error;
  o.lcores = {0, 1, 0, 1};
  EXPECT_TRUE(DpdkSource::validateOptions(o, error)) << error;

  o = DpdkSourceOptions{};
  o.fragment_max_flows = 0;
  EXPECT_FALSE(DpdkSource::validateOptions(o, error));
  EXPECT_NE(error.find("fragment_max_flows=0"), std::string::npos) << error;

  o = DpdkSourceOptions{};
  o.fragment_timeout_ms = 60001;
  EXPECT_FALSE(DpdkSource::validateOptions(o, error));
  EXPECT_NE(error.find("fragment_timeout_ms=60001"), std::string::npos) << error;

  o = DpdkSourceOptions{};
  o.exception = ExceptionPath::kKernel;
  EXPECT_FALSE(DpdkSource::validateOptions(o, error));
  EXPECT_NE(error.find("exception=kernel needs exception_port"), std::string::npos) << error;
  o.exception_port = "net_tap0";
  o.mbuf_pool_size = 2591;
  EXPECT_FALSE(DpdkSource::validateOptions(o, error));
  EXPECT_NE(error.find("+ rx_queues * 512 = 2592"), std::string::npos) << error;
  o.mbuf_pool_size = 2592;
  EXPECT_TRUE(DpdkSource::validateOptions(o, error)) << error;
  o.port = "net_tap0";
  EXPECT_FALSE(DpdkSource::validateOptions(o, error));
  EXPECT_NE(error.find("is the receiving port itself"), std::string::npos) << error;

  o = DpdkSourceOptions{};
  o.burst_size = 0;
  EXPECT_FALSE(DpdkSource::validateOptions(o, error));
  EXPECT_NE(error.find("burst_size=0"), std::string::npos) << error;

  o = DpdkSourceOptions{};
  o.burst_size = DpdkSource::kMaxBurst + 1;
  EXPECT_FALSE(DpdkSource::validateOptions(o, error));
  EXPECT_NE(error.find("burst_size=513"), std::string::npos) << error;

  o = DpdkSourceOptions{};
  o.mbuf_pool_size = 100;
  EXPECT_FALSE(DpdkSource::validateOptions(o, error));
  EXPECT_NE(error.find("mbuf_pool_size=100"), std::string::npos) << error;

  o = DpdkSourceOptions{};
  o.udp_ports.clear();
  EXPECT_FALSE(DpdkSource::validateOptions(o, error));
  EXPECT_NE(error.find("udp_ports is empty"), std::string::npos) << error;

  o = DpdkSourceOptions{};
  o.udp_ports = {514, 0};
  EXPECT_FALSE(DpdkSource::validateOptions(o, error));
  EXPECT_NE(error.find("udp_ports contains 0"), std::string::npos) << error;

  o = DpdkSourceOptions{};
  o.max_message_bytes = 70000;
  EXPECT_FALSE(DpdkSource::validateOptions(o, error));
  EXPECT_NE(error.find("max_message_bytes=70000"), std::string::npos) << error;

  o = DpdkSourceOptions{};
  o.ring_capacity = 0;
  EXPECT_FALSE(DpdkSource::validateOptions(o, error));
  EXPECT_NE(error.find("ring_capacity=0"), std::string::npos) << error;

  o.ring_capacity = (size_t{1} << 20) + 1;
  EXPECT_FALSE(DpdkSource::validateOptions(o, error));
  EXPECT_NE(error.find("ring_capacity=1048577"), std::string::npos) << error;
}

}  // namespace
}  // namespace vigil::dataplane

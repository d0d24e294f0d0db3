// DpdkSource against a real EAL and a net_pcap virtual port reading a pcap file that the
// test writes with libpcap. DPDK lets a process call rte_eal_init only once, so every test
// of the DpdkSourceTest fixture needs a process of its own. ctest runs each test as its
// own process. Run by hand, pass --gtest_filter with one test, because the second EAL test
// in a process is skipped.
#include "dataplane/dpdk_source.h"

#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/ip.h"
#include "common/metrics.h"

namespace vigil::dataplane {
namespace {

using Frame = std::vector<uint8_t>;

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86dd;
constexpr uint16_t kEtherArp = 0x0806;

void putBe16(Frame& f, uint16_t v) {
  f.push_back(static_cast<uint8_t>(v >> 8));
  f.push_back(static_cast<uint8_t>(v));
}

// Ethernet header with locally administered MACs, optionally with one 802.1Q tag.
Frame ethernet(uint16_t ether_type, bool vlan = false) {
  Frame f = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01};
  if (vlan) {
    putBe16(f, 0x8100);
    putBe16(f, 42);  // VLAN id
  }
  putBe16(f, ether_type);
  return f;
}

Frame udp(uint16_t destination_port, const std::string& payload) {
  Frame f;
  putBe16(f, 40000);
  putBe16(f, destination_port);
  putBe16(f, static_cast<uint16_t>(8 + payload.size()));
  putBe16(f, 0);  // no checksum
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

Frame ipv4Frame(const IpAddr& source, uint8_t protocol, const Frame& l4, bool vlan = false,
                uint16_t fragment_field = 0) {
  Frame f = ethernet(kEtherIpv4, vlan);
  f.push_back(0x45);
  f.push_back(0);
  putBe16(f, static_cast<uint16_t>(20 + l4.size()));
  putBe16(f, 1);  // identification
  putBe16(f, fragment_field);
  f.push_back(64);
  f.push_back(protocol);
  putBe16(f, 0);
  const uint32_t v4 = source.v4();
  putBe16(f, static_cast<uint16_t>(v4 >> 16));
  putBe16(f, static_cast<uint16_t>(v4));
  f.insert(f.end(), {192, 0, 2, 254});
  f.insert(f.end(), l4.begin(), l4.end());
  return f;
}

Frame ipv6Frame(const IpAddr& source, uint8_t next_header, const Frame& l4) {
  Frame f = ethernet(kEtherIpv6);
  f.insert(f.end(), {0x60, 0, 0, 0});
  putBe16(f, static_cast<uint16_t>(l4.size()));
  f.push_back(next_header);
  f.push_back(64);
  f.insert(f.end(), source.bytes.begin(), source.bytes.end());
  const IpAddr destination = *parseIp("2001:db8::fe");
  f.insert(f.end(), destination.bytes.begin(), destination.bytes.end());
  f.insert(f.end(), l4.begin(), l4.end());
  return f;
}

// Writes Ethernet frames to a pcap file. `captured_bytes` below a frame's size stores a cut
// frame, the way a capture with a small snap length does.
class PcapWriter {
 public:
  explicit PcapWriter(const std::string& path)
      : pcap_(pcap_open_dead(DLT_EN10MB, 65535)), dumper_(pcap_dump_open(pcap_, path.c_str())) {}
  ~PcapWriter() { close(); }

  bool ok() const { return dumper_ != nullptr; }
  void add(const Frame& frame, size_t captured_bytes = SIZE_MAX) {
    pcap_pkthdr header{};
    header.ts.tv_sec = 1764864000 + static_cast<time_t>(count_);
    header.len = static_cast<bpf_u_int32>(frame.size());
    header.caplen = static_cast<bpf_u_int32>(std::min(frame.size(), captured_bytes));
    pcap_dump(reinterpret_cast<u_char*>(dumper_), &header, frame.data());
    ++count_;
  }
  void close() {
    if (dumper_ != nullptr) pcap_dump_close(dumper_);
    if (pcap_ != nullptr) pcap_close(pcap_);
    dumper_ = nullptr;
    pcap_ = nullptr;
  }
  size_t count() const { return count_; }

 private:
  pcap_t* pcap_;
  pcap_dumper_t* dumper_;
  size_t count_ = 0;
};

// One datagram the source should publish.
struct Expected {
  std::string payload;
  IpAddr peer;
};

bool waitFor(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

class DpdkSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static bool eal_used_in_this_process = false;
    if (eal_used_in_this_process) {
      GTEST_SKIP() << "rte_eal_init runs once per process; run this test on its own "
                      "(ctest does, or pass --gtest_filter=DpdkSourceTest."
                   << ::testing::UnitTest::GetInstance()->current_test_info()->name() << ")";
    }
    eal_used_in_this_process = true;
    const std::string test_name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = std::filesystem::temp_directory_path() /
           ("vigil_dpdk_" + std::to_string(getpid()) + "_" + test_name);
    std::filesystem::create_directories(dir_);
    pcap_path_ = (dir_ / "rx.pcap").string();
    file_prefix_ = "vigil_" + std::to_string(getpid());
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  DpdkSourceOptions options(const std::string& vdev_pcap) const {
    DpdkSourceOptions o;
    o.name = "dpdk_test";
    o.id = 7;
    o.tenant = "acme";
    o.eal_args = {"-l",
                  "0",
                  "--no-huge",
                  "--no-pci",
                  "-m",
                  "256",
                  "--no-shconf",
                  "--no-telemetry",
                  "--file-prefix=" + file_prefix_,
                  "--log-level=lib.eal:warning",
                  "--vdev=net_pcap0,rx_pcap=" + vdev_pcap};
    o.mbuf_pool_size = 4095;
    o.rx_descriptors = 512;
    o.max_message_bytes = 256;
    o.ring_capacity = 256;
    return o;
  }

  uint64_t dropped(const std::string& reason) const {
    return metrics_.sum("vigil_source_dropped_total",
                        {{"source", "dpdk_test"}, {"reason", reason}});
  }
  uint64_t received() const {
    return metrics_.sum("vigil_source_received_total", {{"source", "dpdk_test"}});
  }
  uint64_t allDrops() const {
    return metrics_.sum("vigil_source_dropped_total", {{"source", "dpdk_test"}});
  }

  std::filesystem::path dir_;
  std::string pcap_path_;
  std::string file_prefix_;
  MetricsRegistry metrics_;
  SimulatedClock clock_{1'764'864'000'000'000'000};
};

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
      pcap.add(ipv4Frame(peer, 17, udp(514, payload), /*vlan=*/i % 3 == 1));
      expected.push_back({payload, peer});
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

  o.rx_queues = 2;
  EXPECT_FALSE(DpdkSource::validateOptions(o, error));
  EXPECT_NE(error.find("rx_queues=2"), std::string::npos) << error;

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

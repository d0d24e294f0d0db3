// The kernel exception path of DpdkSource: frames that are not syslog go to a net_tap
// port, and what the kernel sends on the tap interface goes out of the port. Also
// net_af_packet on a veth pair, the way to use a NIC without binding it. Each test
// first moves its own process into a new network namespace, so no interface it creates
// appears on the host. Creating the namespace and the interfaces needs root
// (CAP_NET_ADMIN); the tests skip without it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "dataplane/dpdk_source.h"
#include "tests/dataplane/dpdk/dpdk_test_util.h"

namespace vigil::dataplane {
namespace {

using namespace vigil::dataplane::testing;  // NOLINT(build/namespaces): test helpers

constexpr char kTapInterface[] = "vigiltap0";
// IEEE 802 local experimental EtherType: nothing in the kernel sends or handles it.
constexpr uint16_t kEtherExperimental = 0x88b5;

// Packets the interface `name` received, from /proc/net/dev of the current namespace.
// Returns -1 when the interface is not listed.
int64_t interfaceRxPackets(const std::string& name) {
  std::ifstream dev("/proc/net/dev");
  std::string line;
  while (std::getline(dev, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string interface = line.substr(0, colon);
    interface.erase(0, interface.find_first_not_of(' '));
    if (interface != name) continue;
    std::istringstream fields(line.substr(colon + 1));
    int64_t bytes = 0;
    int64_t packets = 0;
    fields >> bytes >> packets;
    return packets;
  }
  return -1;
}

// Sends `frame` on interface `name` through an AF_PACKET socket, as the kernel's own
// traffic would leave it. Returns false with errno set on failure.
bool sendOnInterface(const std::string& name, const Frame& frame) {
  const int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
  if (fd < 0) return false;
  sockaddr_ll address{};
  address.sll_family = AF_PACKET;
  address.sll_ifindex = static_cast<int>(if_nametoindex(name.c_str()));
  address.sll_halen = 6;
  const ssize_t sent = sendto(fd, frame.data(), frame.size(), 0,
                              reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  close(fd);
  return sent == static_cast<ssize_t>(frame.size());
}

// Frames of a pcap file, empty when it cannot be read.
std::vector<Frame> readPcap(const std::string& path) {
  std::vector<Frame> frames;
  char error[PCAP_ERRBUF_SIZE];
  pcap_t* pcap = pcap_open_offline(path.c_str(), error);
  if (pcap == nullptr) return frames;
  pcap_pkthdr* header = nullptr;
  const u_char* data = nullptr;
  while (pcap_next_ex(pcap, &header, &data) == 1) frames.emplace_back(data, data + header->caplen);
  pcap_close(pcap);
  return frames;
}

class DpdkExceptionTest : public DpdkSourceTest {
 protected:
  void SetUp() override {
    DpdkSourceTest::SetUp();
    if (IsSkipped()) return;
    if (unshare(CLONE_NEWNET) != 0) {
      GTEST_SKIP() << "unshare(CLONE_NEWNET) failed (" << std::strerror(errno)
                   << "); the exception path tests need root to create a network namespace";
    }
    tx_pcap_path_ = (dir_ / "tx.pcap").string();
  }

  DpdkSourceOptions kernelPath() const {
    DpdkSourceOptions o =
        options(pcap_path_, {std::string("net_tap0,iface=") + kTapInterface},
                "--vdev=net_pcap0,rx_pcap=" + pcap_path_ + ",tx_pcap=" + tx_pcap_path_);
    o.exception = ExceptionPath::kKernel;
    o.exception_port = "net_tap0";
    o.port = "net_pcap0";
    o.eal_args.push_back("--log-level=pmd.net.tap:error");
    return o;
  }

  std::string tx_pcap_path_;
};

// ARP, TCP, ICMP and UDP to another port reach the tap interface, counted as exception_tx
// and in the interface's RX counter. The syslog datagram still reaches the ring, and a
// truncated frame is still dropped.
TEST_F(DpdkExceptionTest, NonSyslogFramesReachKernel) {
  PcapWriter pcap(pcap_path_);
  ASSERT_TRUE(pcap.ok()) << pcap_path_;
  Frame arp = ethernet(0x0806);
  arp.resize(60, 0);
  pcap.add(arp);
  pcap.add(ipv4Frame(*parseIp("192.0.2.200"), 6, Frame(20, 0)));            // TCP
  pcap.add(ipv4Frame(*parseIp("192.0.2.201"), 1, Frame{8, 0, 0, 0, 0, 0, 0, 0}));  // ICMP echo
  pcap.add(ipv4Frame(*parseIp("192.0.2.202"), 17, udp(53, "dns")));
  pcap.add(ipv4Frame(*parseIp("192.0.2.9"), 17, udp(514, "<13>syslog")));
  pcap.add(ipv4Frame(*parseIp("192.0.2.9"), 17, udp(514, "cut")), 30);
  pcap.close();

  DpdkSource source(kernelPath(), metrics_, clock_);
  std::string error;
  ASSERT_TRUE(source.start(error)) << error;
  ASSERT_TRUE(waitFor([&] { return counter("vigil_dpdk_exception_tx_total") >= 4; }))
      << "exception_tx=" << counter("vigil_dpdk_exception_tx_total");
  ASSERT_TRUE(waitFor([&] { return received() + allDrops() >= 2; }));
  const int64_t tap_rx = interfaceRxPackets(kTapInterface);
  source.stop();

  EXPECT_EQ(counter("vigil_dpdk_exception_tx_total"), 4u);
  EXPECT_EQ(counter("vigil_dpdk_exception_dropped_total"), 0u);
  EXPECT_EQ(tap_rx, 4);
  EXPECT_EQ(received(), 1u);
  EXPECT_EQ(dropped("truncated_frame"), 1u);
  EXPECT_EQ(dropped("non_ip"), 0u);
  EXPECT_EQ(dropped("non_udp"), 0u);
  EXPECT_EQ(dropped("port_not_accepted"), 0u);
  EXPECT_EQ(source.ring().front()->view(), "<13>syslog");
}

// A datagram to another UDP port that arrives in fragments is reassembled first and then
// sent to the kernel whole, as one frame.
TEST_F(DpdkExceptionTest, ReassembledNonSyslogReachesKernel) {
  PcapWriter pcap(pcap_path_);
  ASSERT_TRUE(pcap.ok()) << pcap_path_;
  const std::vector<Frame> parts =
      ipv4Fragments(*parseIp("192.0.2.30"), udp(53, std::string(400, 'q')), 208, 31);
  ASSERT_EQ(parts.size(), 2u);
  pcap.add(parts[1]);
  pcap.add(parts[0]);
  pcap.close();

  DpdkSourceOptions o = kernelPath();
  o.reassemble_fragments = true;
  DpdkSource source(o, metrics_, clock_);
  std::string error;
  ASSERT_TRUE(source.start(error)) << error;
  ASSERT_TRUE(waitFor([&] { return counter("vigil_dpdk_exception_tx_total") >= 1; }));
  const int64_t tap_rx = interfaceRxPackets(kTapInterface);
  source.stop();

  EXPECT_EQ(counter("vigil_dpdk_ip_reassembled_total"), 1u);
  EXPECT_EQ(counter("vigil_dpdk_exception_tx_total"), 1u);
  EXPECT_EQ(tap_rx, 1);
  EXPECT_EQ(received(), 0u);
}

// A frame the kernel sends on the tap interface leaves through the port (here net_pcap's
// tx_pcap file), counted as kernel_tx.
TEST_F(DpdkExceptionTest, KernelFramesLeaveThroughPort) {
  PcapWriter pcap(pcap_path_);
  ASSERT_TRUE(pcap.ok()) << pcap_path_;
  pcap.add(ipv4Frame(*parseIp("192.0.2.9"), 17, udp(514, "<13>syslog")));
  pcap.close();

  DpdkSource source(kernelPath(), metrics_, clock_);
  std::string error;
  ASSERT_TRUE(source.start(error)) << error;
  ASSERT_TRUE(waitFor([&] { return received() == 1; }));
  Frame frame = ethernet(kEtherExperimental);
  const std::string marker = "vigil kernel to wire";
  frame.insert(frame.end(), marker.begin(), marker.end());
  frame.resize(60, 0);
  ASSERT_TRUE(sendOnInterface(kTapInterface, frame)) << std::strerror(errno);
  ASSERT_TRUE(waitFor([&] { return counter("vigil_dpdk_kernel_tx_total") >= 1; }));
  source.stop();

  // The kernel may send its own frames (IPv6 neighbor discovery) too, so look for ours.
  bool found = false;
  for (const Frame& sent : readPcap(tx_pcap_path_)) found = found || sent == frame;
  EXPECT_TRUE(found) << "the frame sent on " << kTapInterface << " is not in " << tx_pcap_path_;
  EXPECT_EQ(counter("vigil_dpdk_kernel_tx_dropped_total"), 0u);
}

// net_af_packet, the no-bind alternative to vfio-pci, receives syslog sent over a veth
// pair inside the test's namespace, on two queues (qpairs=2) filled by the kernel.
TEST_F(DpdkExceptionTest, AfPacketReceivesFromVeth) {
  ASSERT_EQ(std::system("ip link add vigilveth0 type veth peer name vigilveth1 && "
                        "ip link set vigilveth0 up && ip link set vigilveth1 up"),
            0);
  DpdkSourceOptions o = options("", {}, "--vdev=net_af_packet0,iface=vigilveth0,qpairs=2");
  o.rx_queues = 2;
  DpdkSource source(o, metrics_, clock_);
  std::string error;
  ASSERT_TRUE(source.start(error)) << error;
  constexpr int kDatagrams = 20;
  for (int i = 0; i < kDatagrams; ++i) {
    const IpAddr peer = *parseIp("192.0.2." + std::to_string(i + 1));
    ASSERT_TRUE(sendOnInterface("vigilveth1",
                                ipv4Frame(peer, 17, udp(514, "<13>veth " + std::to_string(i)))))
        << std::strerror(errno);
  }
  ASSERT_TRUE(waitFor([&] { return received() >= kDatagrams; })) << "received=" << received();
  source.stop();

  // The kernel may also send its own frames (IPv6 neighbor discovery) over the pair.
  EXPECT_EQ(received(), static_cast<uint64_t>(kDatagrams));
  EXPECT_EQ(source.queueRing(0).size() + source.queueRing(1).size(),
            static_cast<size_t>(kDatagrams));
}

// An exception_port that EAL did not create is rejected with its name.
TEST_F(DpdkExceptionTest, MissingExceptionPortRejected) {
  PcapWriter pcap(pcap_path_);
  ASSERT_TRUE(pcap.ok()) << pcap_path_;
  pcap.close();
  DpdkSourceOptions o = kernelPath();
  o.exception_port = "net_tap7";
  DpdkSource source(o, metrics_, clock_);
  std::string error;
  EXPECT_FALSE(source.start(error));
  EXPECT_NE(error.find("no port is named \"net_tap7\" (exception_port)"), std::string::npos)
      << error;
}

}  // namespace
}  // namespace vigil::dataplane

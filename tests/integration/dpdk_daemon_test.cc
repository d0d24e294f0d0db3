// vigild with a dpdk source on net_pcap ports (no hugepages, no NIC). VLAN-tagged frames
// get the tenant of their `tenants:` rule through two RX queues and IPv4 reassembly. A
// dpdk source whose EAL cannot start leaves the kernel sources running.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include "daemon_process.h"
#include "tests/dataplane/dpdk/dpdk_test_util.h"

namespace vigil::testing {
namespace {

using dataplane::testing::Frame;
using dataplane::testing::ipv4Fragments;
using dataplane::testing::ipv4Frame;
using dataplane::testing::PcapWriter;
using dataplane::testing::udp;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Sums the samples of `name` whose label set contains every `key="value"` in `labels`.
uint64_t metricSum(const std::string& text, const std::string& name,
                   const std::vector<std::string>& labels = {}) {
  uint64_t total = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0) continue;
    const char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != ' ' && next != '{') continue;
    bool match = true;
    for (const std::string& label : labels) match = match && line.find(label) != std::string::npos;
    if (match) total += static_cast<uint64_t>(std::stod(line.substr(line.rfind(' ') + 1)));
  }
  return total;
}

class DpdkDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = makeTempDir("vigil-dpdk-it");
    api_port_ = freePort(SOCK_STREAM);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // EAL arguments as a YAML flow list for a net_pcap vdev string.
  std::string ealArgs(const std::string& vdev) const {
    return "[-l, '0', --no-huge, --no-pci, -m, '256', --no-shconf, --no-telemetry, "
           "--file-prefix=vigil_it_" +
           std::to_string(getpid()) + ", '--log-level=lib.eal:warning', '--vdev=" + vdev + "']";
  }

  std::string metrics() {
    httplib::Client client("127.0.0.1", api_port_);
    auto res = client.Get("/metrics");
    return res ? res->body : "";
  }

  bool waitFor(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return done();
  }

  std::string dir_;
  int api_port_ = 0;
};

// Frames tagged with VLAN 42 end in tenant lab, untagged ones and VLAN 7 keep the source's
// tenant acme. The frames arrive on two RX queues (one pcap file each), so the pipeline
// drains both queue rings, and one tagged datagram arrives in two fragments.
TEST_F(DpdkDaemonTest, VlanFramesGetRuleTenant) {
  const std::string first = dir_ + "/q0.pcap";
  const std::string second = dir_ + "/q1.pcap";
  const IpAddr peer = *parseIp("192.0.2.20");
  const std::string line = "<13>Dec  4 16:00:00 web01 app: request served";
  {
    PcapWriter q0(first);
    ASSERT_TRUE(q0.ok()) << first;
    for (int i = 0; i < 5; ++i) q0.add(ipv4Frame(peer, 17, udp(514, line), true, 0, 1, 42));
    for (int i = 0; i < 3; ++i) q0.add(ipv4Frame(peer, 17, udp(514, line)));
    PcapWriter q1(second);
    ASSERT_TRUE(q1.ok()) << second;
    for (int i = 0; i < 4; ++i) q1.add(ipv4Frame(peer, 17, udp(514, line), true, 0, 1, 42));
    q1.add(ipv4Frame(peer, 17, udp(514, line), true, 0, 1, 7));
    // A 600-byte datagram in two fragments, tagged 42 like the first fragment's frame.
    std::vector<Frame> parts = ipv4Fragments(peer, udp(514, line + std::string(560, ' ')), 320, 9);
    ASSERT_EQ(parts.size(), 2u);
    for (Frame& part : parts) {
      Frame tagged(part.begin(), part.begin() + 12);
      tagged.insert(tagged.end(), {0x81, 0x00, 0x00, 42});
      tagged.insert(tagged.end(), part.begin() + 12, part.end());
      part = tagged;
    }
    q1.add(parts[1]);
    q1.add(parts[0]);
  }
  writeFile(dir_ + "/vigil.yaml",
            "state_dir: " + dir_ +
                "/state\n"
                "sources:\n"
                "  - name: nic0\n"
                "    type: dpdk\n"
                "    tenant: acme\n"
                "    rx_queues: 2\n"
                "    reassemble_fragments: true\n"
                "    eal_args: " +
                ealArgs("net_pcap0,rx_pcap=" + first + ",rx_pcap=" + second) +
                "\n"
                "tenants:\n"
                "  - {vlan: 42, tenant: lab}\n"
                "api: {listen: '127.0.0.1:" +
                std::to_string(api_port_) + "', metrics_public_on_loopback: true}\n");

  DaemonProcess daemon({"--config", dir_ + "/vigil.yaml"}, dir_ + "/vigild.log");
  std::string m;
  const bool settled = waitFor([&] {
    m = metrics();
    return metricSum(m, "vigil_source_received_total") == 14 &&
           metricSum(m, "vigil_pipeline_events_done_total") == 14;
  });
  ASSERT_TRUE(settled) << m << daemon.log();

  EXPECT_EQ(metricSum(m, "vigil_dpdk_queue_frames_total", {"queue=\"0\""}), 8u);
  EXPECT_EQ(metricSum(m, "vigil_dpdk_queue_frames_total", {"queue=\"1\""}), 7u);
  EXPECT_EQ(metricSum(m, "vigil_dpdk_ip_reassembled_total"), 1u);
  EXPECT_EQ(metricSum(m, "vigil_tenant_events_total", {"tenant=\"lab\""}), 10u);
  EXPECT_EQ(metricSum(m, "vigil_tenant_events_total", {"tenant=\"acme\""}), 4u);
  EXPECT_EQ(metricSum(m, "vigil_source_dropped_total", {"source=\"nic0\""}), 0u);
  EXPECT_EQ(daemon.stop(), 0) << daemon.log();
}

// An EAL argument that rte_eal_init rejects is logged, the dpdk source is counted as
// failed, and the udp source next to it still delivers.
TEST_F(DpdkDaemonTest, EalFailureKeepsKernelSources) {
  const int udp_port = freePort(SOCK_DGRAM);
  writeFile(dir_ + "/vigil.yaml",
            "state_dir: " + dir_ +
                "/state\n"
                "sources:\n"
                "  - name: nic0\n"
                "    type: dpdk\n"
                "    eal_args: [--no-such-eal-option]\n"
                "  - {name: udp, type: udp, listen: '127.0.0.1:" +
                std::to_string(udp_port) +
                "'}\n"
                "api: {listen: '127.0.0.1:" +
                std::to_string(api_port_) + "', metrics_public_on_loopback: true}\n");

  DaemonProcess daemon({"--config", dir_ + "/vigil.yaml"}, dir_ + "/vigild.log");
  ASSERT_TRUE(waitFor([&] { return !metrics().empty(); })) << daemon.log();

  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(udp_port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const std::string message = "<13>Dec  4 16:00:00 host app: still here";
  sendto(fd, message.data(), message.size(), 0, reinterpret_cast<sockaddr*>(&address),
         sizeof(address));
  close(fd);

  std::string m;
  ASSERT_TRUE(waitFor([&] {
    m = metrics();
    return metricSum(m, "vigil_source_received_total", {"source=\"udp\""}) == 1;
  })) << m << daemon.log();
  EXPECT_EQ(metricSum(m, "vigil_sources_failed_total", {"source=\"nic0\""}), 1u);
  const std::string log = daemon.log();
  EXPECT_NE(log.find("dpdk source not started"), std::string::npos) << log;
  EXPECT_NE(log.find("rte_eal_init failed"), std::string::npos) << log;
  EXPECT_EQ(daemon.stop(), 0) << log;
}

}  // namespace
}  // namespace vigil::testing

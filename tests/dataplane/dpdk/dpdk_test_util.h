// Frames, a pcap writer and the EAL test fixture shared by the DpdkSource tests. DPDK lets
// a process call rte_eal_init only once, so every test of the DpdkSourceTest fixture needs
// a process of its own. ctest runs each test as its own process. Run by hand, pass
// --gtest_filter with one test, because the second EAL test in a process is skipped.
#pragma once

#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <unistd.h>

#include <algorithm>
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
#include "dataplane/dpdk_source.h"

namespace vigil::dataplane::testing {

using Frame = std::vector<uint8_t>;

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86dd;
constexpr uint16_t kEtherArp = 0x0806;

inline void putBe16(Frame& f, uint16_t v) {
  f.push_back(static_cast<uint8_t>(v >> 8));
  f.push_back(static_cast<uint8_t>(v));
}

// Ethernet header with locally administered MACs, optionally with one 802.1Q tag carrying
// `vlan_id`.
inline Frame ethernet(uint16_t ether_type, bool vlan = false, uint16_t vlan_id = 42) {
  Frame f = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01};
  if (vlan) {
    putBe16(f, 0x8100);
    putBe16(f, vlan_id);
  }
  putBe16(f, ether_type);
  return f;
}

inline Frame udp(uint16_t destination_port, const std::string& payload) {
  Frame f;
  putBe16(f, 40000);
  putBe16(f, destination_port);
  putBe16(f, static_cast<uint16_t>(8 + payload.size()));
  putBe16(f, 0);  // no checksum
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

// IPv4 frame carrying `l4`. `fragment_field` is the flags and offset word (MF = 0x2000,
// offset in 8-byte units in the low 13 bits).
inline Frame ipv4Frame(const IpAddr& source, uint8_t protocol, const Frame& l4, bool vlan = false,
                       uint16_t fragment_field = 0, uint16_t identification = 1,
                       uint16_t vlan_id = 42) {
  Frame f = ethernet(kEtherIpv4, vlan, vlan_id);
  f.push_back(0x45);
  f.push_back(0);
  putBe16(f, static_cast<uint16_t>(20 + l4.size()));
  putBe16(f, identification);
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

inline Frame ipv6Frame(const IpAddr& source, uint8_t next_header, const Frame& l4) {
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
  uint16_t vlan = 0;
};

inline bool waitFor(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

// Splits the UDP datagram `l4` into IPv4 fragments of at most `bytes_per_fragment` bytes
// (a multiple of 8), all with `identification`. Returns them in offset order.
inline std::vector<Frame> ipv4Fragments(const IpAddr& source, const Frame& l4,
                                        size_t bytes_per_fragment, uint16_t identification) {
  std::vector<Frame> fragments;
  for (size_t offset = 0; offset < l4.size(); offset += bytes_per_fragment) {
    const size_t end = std::min(l4.size(), offset + bytes_per_fragment);
    const Frame part(l4.begin() + static_cast<long>(offset), l4.begin() + static_cast<long>(end));
    const uint16_t more = end < l4.size() ? 0x2000 : 0;
    fragments.push_back(ipv4Frame(source, 17, part, false,
                                  static_cast<uint16_t>(more | (offset / 8)), identification));
  }
  return fragments;
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

  // Options for a net_pcap port reading `vdev_pcap`. `extra_vdevs` are added as further
  // --vdev arguments; `vdev_override`, when set, replaces the net_pcap argument.
  DpdkSourceOptions options(const std::string& vdev_pcap,
                            const std::vector<std::string>& extra_vdevs = {},
                            const std::string& vdev_override = "") const {
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
                  vdev_override.empty() ? "--vdev=net_pcap0,rx_pcap=" + vdev_pcap
                                        : vdev_override};
    for (const std::string& vdev : extra_vdevs) o.eal_args.push_back("--vdev=" + vdev);
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
  uint64_t counter(const std::string& name) const {
    return metrics_.sum(name, {{"source", "dpdk_test"}});
  }
  int64_t portGauge(const std::string& name) {
    return metrics_.gauge(name, "", {{"source", "dpdk_test"}}).value();
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

}  // namespace vigil::dataplane::testing

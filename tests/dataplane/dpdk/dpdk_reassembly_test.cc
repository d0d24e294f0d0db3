// IPv4 reassembly in DpdkSource with rte_ip_frag: fragments from a pcap file arrive out of
// order on a net_pcap port, and every fragment ends reassembled or in a drop counter.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dataplane/dpdk_source.h"
#include "tests/dataplane/dpdk/dpdk_test_util.h"

namespace vigil::dataplane {
namespace {

using namespace vigil::dataplane::testing;  // NOLINT(build/namespaces): test helpers

class DpdkReassemblyTest : public DpdkSourceTest {
 protected:
  DpdkSourceOptions reassembling() const {
    DpdkSourceOptions o = options(pcap_path_);
    o.reassemble_fragments = true;
    o.fragment_timeout_ms = 200;
    o.max_message_bytes = 2048;
    return o;
  }
  uint64_t fragments() const { return counter("vigil_dpdk_ip_fragments_total"); }
  uint64_t reassembled() const { return counter("vigil_dpdk_ip_reassembled_total"); }
  uint64_t merged() const { return counter("vigil_dpdk_ip_fragments_merged_total"); }
  uint64_t fragmentDrops() const {
    return dropped("fragment_table_full") + dropped("fragment_timeout") +
           dropped("fragment_invalid") + dropped("fragment_shutdown");
  }
  // Every fragment is merged into a datagram or dropped, once nothing waits in the table.
  bool fragmentsSettled() const { return fragments() == merged() + fragmentDrops(); }
};

std::string syslogText(const std::string& tag, size_t bytes) {
  std::string text = "<13>Dec  4 16:00:00 host " + tag + ": ";
  text.resize(bytes, static_cast<char>('a' + tag.size() % 26));
  return text;
}

// A datagram in 2 fragments (last one first) and one in 3 (order 3, 1, 2) are reassembled
// and published with their full payloads. An incomplete one times out and is counted.
TEST_F(DpdkReassemblyTest, OutOfOrderFragmentsReassembled) {
  const IpAddr peer_a = *parseIp("192.0.2.10");
  const IpAddr peer_b = *parseIp("192.0.2.11");
  const IpAddr peer_c = *parseIp("192.0.2.12");
  const std::string text_a = syslogText("two", 300);
  const std::string text_b = syslogText("three", 500);
  const std::string text_c = syslogText("incomplete", 300);
  const std::vector<Frame> a = ipv4Fragments(peer_a, udp(514, text_a), 160, 100);
  const std::vector<Frame> b = ipv4Fragments(peer_b, udp(514, text_b), 200, 200);
  const std::vector<Frame> c = ipv4Fragments(peer_c, udp(514, text_c), 160, 300);
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 3u);
  ASSERT_EQ(c.size(), 2u);

  PcapWriter pcap(pcap_path_);
  ASSERT_TRUE(pcap.ok()) << pcap_path_;
  pcap.add(a[1]);
  pcap.add(b[2]);
  pcap.add(ipv4Frame(*parseIp("192.0.2.9"), 17, udp(514, "<13>whole")));
  pcap.add(a[0]);
  pcap.add(b[0]);
  pcap.add(c[0]);  // c[1] never arrives
  pcap.add(b[1]);
  const size_t frames = pcap.count();
  pcap.close();

  DpdkSource source(reassembling(), metrics_, clock_);
  std::string error;
  ASSERT_TRUE(source.start(error)) << error;
  ASSERT_TRUE(waitFor([&] { return dropped("fragment_timeout") >= 1 && fragmentsSettled(); }))
      << "fragments=" << fragments() << " merged=" << merged() << " drops=" << fragmentDrops();
  source.stop();

  EXPECT_EQ(received(), 3u);
  EXPECT_EQ(fragments(), 6u);
  EXPECT_EQ(reassembled(), 2u);
  EXPECT_EQ(merged(), 5u);
  EXPECT_EQ(dropped("fragment_timeout"), 1u);
  EXPECT_EQ(dropped("fragment_table_full"), 0u);
  EXPECT_EQ(dropped("fragment_invalid"), 0u);
  EXPECT_EQ(dropped("fragment_shutdown"), 0u);
  EXPECT_EQ(dropped("ip_fragment"), 0u);
  EXPECT_EQ(portGauge("vigil_dpdk_port_ipackets"), static_cast<int64_t>(frames));

  RawRing& ring = source.ring();
  ASSERT_EQ(ring.size(), 3u);
  EXPECT_EQ(ring.front()->view(), "<13>whole");
  ring.pop();
  EXPECT_EQ(ring.front()->view(), text_a);
  EXPECT_EQ(*ring.front()->peer, peer_a);
  EXPECT_FALSE(ring.front()->truncated);
  ring.pop();
  EXPECT_EQ(ring.front()->view(), text_b);
  EXPECT_EQ(*ring.front()->peer, peer_b);
  ring.pop();
}

// With reassembly off, every fragment is dropped as ip_fragment, as before reassembly existed.
TEST_F(DpdkReassemblyTest, ReassemblyOffDropsFragments) {
  const std::vector<Frame> a =
      ipv4Fragments(*parseIp("192.0.2.10"), udp(514, syslogText("off", 300)), 160, 100);
  PcapWriter pcap(pcap_path_);
  ASSERT_TRUE(pcap.ok()) << pcap_path_;
  pcap.add(a[1]);
  pcap.add(a[0]);
  pcap.close();

  DpdkSourceOptions o = reassembling();
  o.reassemble_fragments = false;
  DpdkSource source(o, metrics_, clock_);
  std::string error;
  ASSERT_TRUE(source.start(error)) << error;
  ASSERT_TRUE(waitFor([&] { return allDrops() >= 2; }));
  source.stop();

  EXPECT_EQ(dropped("ip_fragment"), 2u);
  EXPECT_EQ(received(), 0u);
  EXPECT_EQ(fragments(), 0u);
}

// With room for 2 flows, the first fragment of a third concurrent datagram is dropped as
// fragment_table_full, and the two held flows later time out.
TEST_F(DpdkReassemblyTest, TableFullCounted) {
  PcapWriter pcap(pcap_path_);
  ASSERT_TRUE(pcap.ok()) << pcap_path_;
  for (uint16_t id = 1; id <= 3; ++id) {
    const IpAddr peer = *parseIp("192.0.2." + std::to_string(id));
    pcap.add(ipv4Fragments(peer, udp(514, syslogText("full", 300)), 160, id)[0]);
  }
  pcap.close();

  DpdkSourceOptions o = reassembling();
  o.fragment_max_flows = 2;
  DpdkSource source(o, metrics_, clock_);
  std::string error;
  ASSERT_TRUE(source.start(error)) << error;
  ASSERT_TRUE(waitFor([&] { return fragments() == 3 && fragmentsSettled(); }));
  source.stop();

  EXPECT_EQ(dropped("fragment_table_full"), 1u);
  EXPECT_EQ(dropped("fragment_timeout"), 2u);
  EXPECT_EQ(reassembled(), 0u);
}

// A repeated first fragment frees the whole flow (both copies) as fragment_invalid. The
// second fragment then starts a new flow that times out.
TEST_F(DpdkReassemblyTest, DuplicateFragmentInvalid) {
  const std::vector<Frame> a =
      ipv4Fragments(*parseIp("192.0.2.10"), udp(514, syslogText("dup", 300)), 160, 100);
  PcapWriter pcap(pcap_path_);
  ASSERT_TRUE(pcap.ok()) << pcap_path_;
  pcap.add(a[0]);
  pcap.add(a[0]);
  pcap.add(a[1]);
  pcap.close();

  DpdkSource source(reassembling(), metrics_, clock_);
  std::string error;
  ASSERT_TRUE(source.start(error)) << error;
  ASSERT_TRUE(waitFor([&] { return fragments() == 3 && fragmentsSettled(); }));
  source.stop();

  EXPECT_EQ(dropped("fragment_invalid"), 2u);
  EXPECT_EQ(dropped("fragment_timeout"), 1u);
  EXPECT_EQ(received(), 0u);
}

// Fragments still waiting when the source stops are freed and counted as fragment_shutdown.
TEST_F(DpdkReassemblyTest, StopCountsHeldFragments) {
  const std::vector<Frame> a =
      ipv4Fragments(*parseIp("192.0.2.10"), udp(514, syslogText("held", 500)), 200, 100);
  PcapWriter pcap(pcap_path_);
  ASSERT_TRUE(pcap.ok()) << pcap_path_;
  pcap.add(a[0]);
  pcap.add(a[2]);
  pcap.close();

  DpdkSourceOptions o = reassembling();
  o.fragment_timeout_ms = 60000;
  DpdkSource source(o, metrics_, clock_);
  std::string error;
  ASSERT_TRUE(source.start(error)) << error;
  ASSERT_TRUE(waitFor([&] { return fragments() == 2; }));
  EXPECT_EQ(fragmentDrops(), 0u);
  source.stop();

  EXPECT_EQ(dropped("fragment_shutdown"), 2u);
  EXPECT_TRUE(fragmentsSettled());
}

// A fragment with no payload bytes is dropped as fragment_invalid before it reaches the table.
TEST_F(DpdkReassemblyTest, EmptyFragmentInvalid) {
  PcapWriter pcap(pcap_path_);
  ASSERT_TRUE(pcap.ok()) << pcap_path_;
  pcap.add(ipv4Frame(*parseIp("192.0.2.10"), 17, Frame{}, false, 0x2000, 7));
  pcap.close();

  DpdkSource source(reassembling(), metrics_, clock_);
  std::string error;
  ASSERT_TRUE(source.start(error)) << error;
  ASSERT_TRUE(waitFor([&] { return fragments() == 1 && fragmentsSettled(); }));
  source.stop();

  EXPECT_EQ(dropped("fragment_invalid"), 1u);
}

}  // namespace
}  // namespace vigil::dataplane

#include "dataplane/internal/packet_decode.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip.h"

namespace vigil::dataplane::internal {
namespace {

using Frame = std::vector<uint8_t>;

// Ethernet 02:00:00:00:00:02 <- 02:00:00:00:00:01, EtherType IPv4
// IPv4 192.0.2.1 -> 192.0.2.2, IHL 5, total length 37, no fragment, protocol UDP
// UDP 12345 -> 514, length 17, payload "<13>hello"
const Frame kIpv4Udp = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
                        0x08, 0x00,                                                              //
                        0x45, 0x00, 0x00, 0x25, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00,  //
                        0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,                          //
                        0x30, 0x39, 0x02, 0x02, 0x00, 0x11, 0x00, 0x00,                          //
                        '<',  '1',  '3',  '>',  'h',  'e',  'l',  'l',  'o'};

// Same datagram behind one 802.1Q tag (TPID 0x8100, VLAN 100).
const Frame kVlanIpv4Udp = {
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,  //
    0x81, 0x00, 0x00, 0x64, 0x08, 0x00,                                      //
    0x45, 0x00, 0x00, 0x25, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00,  //
    0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,                          //
    0x30, 0x39, 0x02, 0x02, 0x00, 0x11, 0x00, 0x00,                          //
    '<',  '1',  '3',  '>',  'h',  'e',  'l',  'l',  'o'};

// Same datagram behind an 802.1ad service tag (0x88a8, VLAN 200) and an 802.1Q customer
// tag (0x8100, VLAN 100).
const Frame kQinQIpv4Udp = {
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,  //
    0x88, 0xa8, 0x00, 0xc8, 0x81, 0x00, 0x00, 0x64, 0x08, 0x00,              //
    0x45, 0x00, 0x00, 0x25, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00,  //
    0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,                          //
    0x30, 0x39, 0x02, 0x02, 0x00, 0x11, 0x00, 0x00,                          //
    '<',  '1',  '3',  '>',  'h',  'e',  'l',  'l',  'o'};

// Ethernet, EtherType IPv6
// IPv6 2001:db8::1 -> 2001:db8::2, payload length 17, next header UDP, hop limit 64
// UDP 12345 -> 514, length 17, payload "<13>hello"
const Frame kIpv6Udp = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00,
                        0x00, 0x00, 0x01, 0x86, 0xdd,                    //
                        0x60, 0x00, 0x00, 0x00, 0x00, 0x11, 0x11, 0x40,  //
                        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,  //
                        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,  //
                        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,  //
                        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,  //
                        0x30, 0x39, 0x02, 0x02, 0x00, 0x11, 0x00, 0x00,  //
                        '<',  '1',  '3',  '>',  'h',  'e',  'l',  'l',  'o'};

// IPv4 with IHL 6 (one 4-byte option: NOP NOP NOP EOL), total length 41, UDP to 514.
const Frame kIpv4OptionsUdp = {
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00,  //
    0x46, 0x00, 0x00, 0x29, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00,              //
    0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02, 0x01, 0x01, 0x01, 0x00,              //
    0x30, 0x39, 0x02, 0x02, 0x00, 0x11, 0x00, 0x00,                                      //
    '<',  '1',  '3',  '>',  'h',  'e',  'l',  'l',  'o'};

// IPv4 192.0.2.1 -> 192.0.2.2, protocol TCP (6), total length 40, TCP 12345 -> 514 SYN.
const Frame kIpv4Tcp = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
                        0x08, 0x00,                                                              //
                        0x45, 0x00, 0x00, 0x28, 0x00, 0x01, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00,  //
                        0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,                          //
                        0x30, 0x39, 0x02, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,  //
                        0x50, 0x02, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00};

// ARP request: who has 192.0.2.2? tell 192.0.2.1 (EtherType 0x0806, 28-byte body).
const Frame kArp = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00,
                    0x00, 0x01, 0x08, 0x06,                                      //
                    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,              //
                    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0xc0, 0x00, 0x02, 0x01,  //
                    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x02, 0x02};

// Ethernet, IPv6 2001:db8::1 -> 2001:db8::2, next header 44 (fragment), payload length 25
// Fragment header: next header UDP, offset 0, M=1, id 1, then UDP 12345 -> 514 length 17
const Frame kIpv6Fragment = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00,
                             0x00, 0x00, 0x01, 0x86, 0xdd,                    //
                             0x60, 0x00, 0x00, 0x00, 0x00, 0x19, 0x2c, 0x40,  //
                             0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,  //
                             0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,  //
                             0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,  //
                             0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,  //
                             0x11, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,  //
                             0x30, 0x39, 0x02, 0x02, 0x00, 0x11, 0x00, 0x00,  //
                             '<',  '1',  '3',  '>',  'h',  'e',  'l',  'l',  'o'};

UdpPortSet syslogPorts() {
  UdpPortSet ports;
  ports.set(514);
  return ports;
}

std::string payloadText(const UdpDatagram& d) {
  return std::string(reinterpret_cast<const char*>(d.payload.data()), d.payload.size());
}

FrameVerdict decode(const Frame& frame, UdpDatagram& out) {
  return decodeFrame(frame, syslogPorts(), out);
}

// Sets one byte of a copy of `frame`.
Frame withByte(Frame frame, size_t offset, uint8_t value) {
  frame.at(offset) = value;
  return frame;
}

// Plain IPv4/UDP yields the payload, both ports and the source address.
TEST(PacketDecodeTest, Ipv4UdpAccepted) {
  UdpDatagram d;
  ASSERT_EQ(decode(kIpv4Udp, d), FrameVerdict::kAccepted);
  EXPECT_EQ(payloadText(d), "<13>hello");
  EXPECT_EQ(d.source_port, 12345);
  EXPECT_EQ(d.destination_port, 514);
  EXPECT_EQ(d.source, *parseIp("192.0.2.1"));
}

// One 802.1Q tag is skipped.
TEST(PacketDecodeTest, VlanTagSkipped) {
  UdpDatagram d;
  ASSERT_EQ(decode(kVlanIpv4Udp, d), FrameVerdict::kAccepted);
  EXPECT_EQ(payloadText(d), "<13>hello");
  EXPECT_EQ(d.source, *parseIp("192.0.2.1"));
}

// An 802.1ad outer tag followed by an 802.1Q inner tag is skipped.
TEST(PacketDecodeTest, QinQTagsSkipped) {
  UdpDatagram d;
  ASSERT_EQ(decode(kQinQIpv4Udp, d), FrameVerdict::kAccepted);
  EXPECT_EQ(payloadText(d), "<13>hello");
  EXPECT_EQ(d.source, *parseIp("192.0.2.1"));
}

// An untagged frame reports VLAN 0, the 14-byte Ethernet header and the IPv4 header length.
TEST(PacketDecodeTest, UntaggedLayersReported) {
  UdpDatagram d;
  ASSERT_EQ(decode(kIpv4Udp, d), FrameVerdict::kAccepted);
  EXPECT_EQ(d.vlan, 0);
  EXPECT_EQ(d.l2_bytes, 14);
  EXPECT_EQ(d.ip_version, 4);
  EXPECT_EQ(d.l3_bytes, 20);
}

// One 802.1Q tag gives its VLAN id and moves the IP header 4 bytes further.
TEST(PacketDecodeTest, VlanIdReported) {
  UdpDatagram d;
  ASSERT_EQ(decode(kVlanIpv4Udp, d), FrameVerdict::kAccepted);
  EXPECT_EQ(d.vlan, 100);
  EXPECT_EQ(d.l2_bytes, 18);
}

// For QinQ the inner (customer) VLAN id is reported, not the service tag's 200.
TEST(PacketDecodeTest, QinQReportsInnerVlan) {
  UdpDatagram d;
  ASSERT_EQ(decode(kQinQIpv4Udp, d), FrameVerdict::kAccepted);
  EXPECT_EQ(d.vlan, 100);
  EXPECT_EQ(d.l2_bytes, 22);
}

// The priority and DEI bits of the TCI are not part of the VLAN id.
TEST(PacketDecodeTest, VlanIdIgnoresPriorityBits) {
  UdpDatagram d;
  ASSERT_EQ(decode(withByte(kVlanIpv4Udp, 14, 0xf0), d), FrameVerdict::kAccepted);
  EXPECT_EQ(d.vlan, 100);
}

// A fragment still reports where its IP header starts and how long it is, and a second
// decode into the same output clears the previous frame's VLAN.
TEST(PacketDecodeTest, FragmentReportsLayers) {
  UdpDatagram d;
  ASSERT_EQ(decode(kVlanIpv4Udp, d), FrameVerdict::kAccepted);
  ASSERT_EQ(decode(withByte(kIpv4OptionsUdp, 20, 0x20), d), FrameVerdict::kIpFragment);
  EXPECT_EQ(d.vlan, 0);
  EXPECT_EQ(d.l2_bytes, 14);
  EXPECT_EQ(d.ip_version, 4);
  EXPECT_EQ(d.l3_bytes, 24);
}

// ARP is not IP, so no IP version is reported.
TEST(PacketDecodeTest, ArpReportsNoIpVersion) {
  UdpDatagram d;
  ASSERT_EQ(decode(kArp, d), FrameVerdict::kNonIp);
  EXPECT_EQ(d.ip_version, 0);
}

// IPv6/UDP yields the payload and the full 128-bit source address.
TEST(PacketDecodeTest, Ipv6UdpAccepted) {
  UdpDatagram d;
  ASSERT_EQ(decode(kIpv6Udp, d), FrameVerdict::kAccepted);
  EXPECT_EQ(payloadText(d), "<13>hello");
  EXPECT_EQ(d.source, *parseIp("2001:db8::1"));
  EXPECT_EQ(d.destination_port, 514);
}

// IPv4 options are skipped by IHL, so the UDP header is found after them.
TEST(PacketDecodeTest, Ipv4OptionsSkipped) {
  UdpDatagram d;
  ASSERT_EQ(decode(kIpv4OptionsUdp, d), FrameVerdict::kAccepted);
  EXPECT_EQ(payloadText(d), "<13>hello");
  EXPECT_EQ(d.source_port, 12345);
}

// Ethernet padding after the IP packet is not part of the payload.
TEST(PacketDecodeTest, EthernetPaddingIgnored) {
  Frame padded = kIpv4Udp;
  padded.resize(60, 0x00);
  UdpDatagram d;
  ASSERT_EQ(decode(padded, d), FrameVerdict::kAccepted);
  EXPECT_EQ(payloadText(d), "<13>hello");
}

// A UDP datagram with no payload is dropped as empty, as the kernel UDP source drops it.
TEST(PacketDecodeTest, EmptyPayloadDropped) {
  Frame empty(kIpv4Udp.begin(), kIpv4Udp.begin() + 42);
  empty[17] = 28;  // IPv4 total length: 20 + 8
  empty[39] = 8;   // UDP length: header only
  UdpDatagram d;
  EXPECT_EQ(decode(empty, d), FrameVerdict::kEmptyPayload);
  EXPECT_EQ(frameVerdictName(FrameVerdict::kEmptyPayload), "empty");
}

// An empty datagram to a port the source does not accept is still a port drop.
TEST(PacketDecodeTest, EmptyPayloadWrongPort) {
  Frame empty(kIpv4Udp.begin(), kIpv4Udp.begin() + 42);
  empty[17] = 28;
  empty[39] = 8;
  empty[36] = 0x02;  // destination port 515
  empty[37] = 0x03;
  UdpDatagram d;
  EXPECT_EQ(decode(empty, d), FrameVerdict::kPortNotAccepted);
}

// IPv4 with MF set, with a non-zero offset, or both is a fragment whatever it carries.
TEST(PacketDecodeTest, Ipv4FragmentsDropped) {
  UdpDatagram d;
  EXPECT_EQ(decode(withByte(kIpv4Udp, 20, 0x20), d), FrameVerdict::kIpFragment);  // MF, off 0
  EXPECT_EQ(decode(withByte(kIpv4Udp, 21, 0x01), d), FrameVerdict::kIpFragment);  // offset 8
  EXPECT_EQ(decode(withByte(kIpv4Udp, 20, 0x3f), d), FrameVerdict::kIpFragment);  // MF + off
  EXPECT_EQ(decode(withByte(kIpv4Tcp, 21, 0x10), d), FrameVerdict::kIpFragment);  // TCP frag
}

// DF alone (0x4000) is not a fragment.
TEST(PacketDecodeTest, DontFragmentAccepted) {
  UdpDatagram d;
  EXPECT_EQ(decode(withByte(kIpv4Udp, 20, 0x40), d), FrameVerdict::kAccepted);
}

// An IPv6 fragment header counts as a fragment.
TEST(PacketDecodeTest, Ipv6FragmentDropped) {
  UdpDatagram d;
  EXPECT_EQ(decode(kIpv6Fragment, d), FrameVerdict::kIpFragment);
}

// An IPv6 extension header other than fragment (hop-by-hop, 0) is not walked.
TEST(PacketDecodeTest, Ipv6ExtensionHeaderIsNonUdp) {
  UdpDatagram d;
  EXPECT_EQ(decode(withByte(kIpv6Udp, 20, 0x00), d), FrameVerdict::kNonUdp);
}

// UDP to a port outside the accepted set is dropped; adding the port accepts it.
TEST(PacketDecodeTest, WrongPortDropped) {
  const Frame to_53 = withByte(withByte(kIpv4Udp, 36, 0x00), 37, 0x35);  // destination 53
  UdpDatagram d;
  EXPECT_EQ(decode(to_53, d), FrameVerdict::kPortNotAccepted);

  UdpPortSet ports = syslogPorts();
  ports.set(53);
  EXPECT_EQ(decodeFrame(to_53, ports, d), FrameVerdict::kAccepted);
  EXPECT_EQ(d.destination_port, 53);
}

// TCP is non-UDP even when sent to the syslog port.
TEST(PacketDecodeTest, TcpDropped) {
  UdpDatagram d;
  EXPECT_EQ(decode(kIpv4Tcp, d), FrameVerdict::kNonUdp);
}

// ARP, and any EtherType other than IPv4 or IPv6, is non-IP.
TEST(PacketDecodeTest, ArpDropped) {
  UdpDatagram d;
  EXPECT_EQ(decode(kArp, d), FrameVerdict::kNonIp);
  // 802.3 frame: the EtherType field is a length (0x0026).
  EXPECT_EQ(decode(withByte(withByte(kArp, 12, 0x00), 13, 0x26), d), FrameVerdict::kNonIp);
}

// Wrong version nibbles, IHL < 5 and total length < header length are bad IP headers.
TEST(PacketDecodeTest, BadIpHeaderDropped) {
  UdpDatagram d;
  EXPECT_EQ(decode(withByte(kIpv4Udp, 14, 0x65), d), FrameVerdict::kBadIpHeader);  // v6 nibble
  EXPECT_EQ(decode(withByte(kIpv4Udp, 14, 0x44), d), FrameVerdict::kBadIpHeader);  // IHL 4
  EXPECT_EQ(decode(withByte(kIpv4Udp, 17, 0x10), d), FrameVerdict::kBadIpHeader);  // len 16
  EXPECT_EQ(decode(withByte(kIpv6Udp, 14, 0x40), d), FrameVerdict::kBadIpHeader);  // v4 nibble
}

// A UDP length below 8 or beyond the IP payload is a bad UDP header.
TEST(PacketDecodeTest, BadUdpLengthDropped) {
  UdpDatagram d;
  EXPECT_EQ(decode(withByte(kIpv4Udp, 39, 0x07), d), FrameVerdict::kBadUdpHeader);
  EXPECT_EQ(decode(withByte(kIpv4Udp, 39, 0x12), d), FrameVerdict::kBadUdpHeader);
  EXPECT_EQ(decode(withByte(kIpv6Udp, 59, 0x12), d), FrameVerdict::kBadUdpHeader);
  // IPv4 total length 24 leaves 4 bytes, too few for a UDP header.
  EXPECT_EQ(decode(withByte(kIpv4Udp, 17, 0x18), d), FrameVerdict::kBadUdpHeader);
}

// A UDP length shorter than the IP payload bounds the payload.
TEST(PacketDecodeTest, UdpLengthBoundsPayload) {
  const Frame frame = withByte(kIpv4Udp, 39, 0x0c);  // UDP length 12: 4 payload bytes
  UdpDatagram d;
  ASSERT_EQ(decode(frame, d), FrameVerdict::kAccepted);
  EXPECT_EQ(payloadText(d), "<13>");
}

// Every proper prefix of every valid frame is truncated_frame, and each prefix lives in a
// buffer of exactly its size, so a read past the end shows up under AddressSanitizer.
TEST(PacketDecodeTest, TruncatedAtEveryLength) {
  const std::vector<std::pair<std::string, const Frame*>> frames = {
      {"ipv4", &kIpv4Udp},
      {"vlan", &kVlanIpv4Udp},
      {"qinq", &kQinQIpv4Udp},
      {"ipv6", &kIpv6Udp},
      {"ipv4_options", &kIpv4OptionsUdp},
      {"tcp", &kIpv4Tcp},
      {"ipv6_fragment", &kIpv6Fragment}};
  for (const auto& [name, frame] : frames) {
    for (size_t len = 0; len < frame->size(); ++len) {
      const Frame prefix(frame->begin(), frame->begin() + static_cast<std::ptrdiff_t>(len));
      UdpDatagram d;
      EXPECT_EQ(decode(prefix, d), FrameVerdict::kTruncatedFrame) << name << " len=" << len;
    }
  }
}

// An ARP frame cut inside the Ethernet header is truncated; cut after it, non-IP.
TEST(PacketDecodeTest, ArpTruncatedOnlyInEthernetHeader) {
  for (size_t len = 0; len < kArp.size(); ++len) {
    const Frame prefix(kArp.begin(), kArp.begin() + static_cast<std::ptrdiff_t>(len));
    UdpDatagram d;
    const FrameVerdict expected = len < 14 ? FrameVerdict::kTruncatedFrame : FrameVerdict::kNonIp;
    EXPECT_EQ(decode(prefix, d), expected) << "len=" << len;
  }
}

// Every drop reason has its own label, because each is a separate counter series.
TEST(PacketDecodeTest, VerdictNamesUnique) {
  std::set<std::string_view> names;
  for (size_t i = 0; i < kFrameVerdictCount; ++i) {
    const std::string_view name = frameVerdictName(static_cast<FrameVerdict>(i));
    EXPECT_NE(name, "unknown") << "verdict " << i;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), kFrameVerdictCount);
  EXPECT_EQ(frameVerdictName(FrameVerdict::kIpFragment), "ip_fragment");
}

}  // namespace
}  // namespace vigil::dataplane::internal

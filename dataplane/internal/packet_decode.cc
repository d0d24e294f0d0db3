#include "dataplane/internal/packet_decode.h"

#include <cstring>

namespace vigil::dataplane::internal {
namespace {

constexpr size_t kEthernetHeaderBytes = 14;
constexpr size_t kVlanTagBytes = 4;
constexpr size_t kIpv4MinHeaderBytes = 20;
constexpr size_t kIpv6HeaderBytes = 40;
constexpr size_t kUdpHeaderBytes = 8;

constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
constexpr uint16_t kEtherTypeVlan = 0x8100;  // IEEE 802.1Q customer tag
constexpr uint16_t kEtherTypeQinQ = 0x88a8;  // IEEE 802.1ad service tag
constexpr uint16_t kVlanIdMask = 0x0fff;     // the TCI's low 12 bits; the top 4 are PCP and DEI

constexpr uint8_t kProtocolUdp = 17;
constexpr uint8_t kIpv6NextHeaderFragment = 44;

// IPv4 flags and fragment offset share one 16-bit field: bit 13 is MF, bits 0-12 the offset.
constexpr uint16_t kIpv4MoreFragments = 0x2000;
constexpr uint16_t kIpv4OffsetMask = 0x1fff;

uint16_t loadBe16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// Decodes the UDP header at the start of `ip_payload`, whose size the IP header fixed.
FrameVerdict decodeUdp(std::span<const uint8_t> ip_payload, const UdpPortSet& ports,
                       UdpDatagram& out) {
  if (ip_payload.size() < kUdpHeaderBytes) return FrameVerdict::kBadUdpHeader;
  const uint8_t* udp = ip_payload.data();
  const size_t udp_len = loadBe16(udp + 4);
  if (udp_len < kUdpHeaderBytes || udp_len > ip_payload.size()) {
    return FrameVerdict::kBadUdpHeader;
  }
  const uint16_t destination_port = loadBe16(udp + 2);
  if (!ports.test(destination_port)) return FrameVerdict::kPortNotAccepted;
  // Dropped with the label the kernel UDP source gives an empty datagram.
  if (udp_len == kUdpHeaderBytes) return FrameVerdict::kEmptyPayload;

  out.source_port = loadBe16(udp);
  out.destination_port = destination_port;
  out.payload = ip_payload.subspan(kUdpHeaderBytes, udp_len - kUdpHeaderBytes);
  return FrameVerdict::kAccepted;
}

FrameVerdict decodeIpv4(std::span<const uint8_t> packet, const UdpPortSet& ports,
                        UdpDatagram& out) {
  if (packet.size() < kIpv4MinHeaderBytes) return FrameVerdict::kTruncatedFrame;
  const uint8_t* ip = packet.data();
  if ((ip[0] >> 4) != 4) return FrameVerdict::kBadIpHeader;
  const size_t header_len = static_cast<size_t>(ip[0] & 0x0f) * 4;
  if (header_len < kIpv4MinHeaderBytes) return FrameVerdict::kBadIpHeader;
  out.l3_bytes = static_cast<uint16_t>(header_len);
  if (packet.size() < header_len) return FrameVerdict::kTruncatedFrame;
  const size_t total_len = loadBe16(ip + 2);
  if (total_len < header_len) return FrameVerdict::kBadIpHeader;
  if (packet.size() < total_len) return FrameVerdict::kTruncatedFrame;

  // A fragment is reported whatever it carries, because a first fragment's UDP length
  // would not match the bytes present. The caller reassembles it or drops it.
  const uint16_t fragment = loadBe16(ip + 6);
  if ((fragment & (kIpv4MoreFragments | kIpv4OffsetMask)) != 0) {
    return FrameVerdict::kIpFragment;
  }
  if (ip[9] != kProtocolUdp) return FrameVerdict::kNonUdp;

  const FrameVerdict verdict =
      decodeUdp(packet.subspan(header_len, total_len - header_len), ports, out);
  if (verdict != FrameVerdict::kAccepted) return verdict;
  const uint32_t source = (static_cast<uint32_t>(ip[12]) << 24) |
                          (static_cast<uint32_t>(ip[13]) << 16) |
                          (static_cast<uint32_t>(ip[14]) << 8) | static_cast<uint32_t>(ip[15]);
  out.source = IpAddr::fromV4(source);
  return FrameVerdict::kAccepted;
}

FrameVerdict decodeIpv6(std::span<const uint8_t> packet, const UdpPortSet& ports,
                        UdpDatagram& out) {
  if (packet.size() < kIpv6HeaderBytes) return FrameVerdict::kTruncatedFrame;
  const uint8_t* ip = packet.data();
  if ((ip[0] >> 4) != 6) return FrameVerdict::kBadIpHeader;
  out.l3_bytes = static_cast<uint16_t>(kIpv6HeaderBytes);
  const size_t payload_len = loadBe16(ip + 4);
  if (packet.size() - kIpv6HeaderBytes < payload_len) return FrameVerdict::kTruncatedFrame;

  const uint8_t next_header = ip[6];
  if (next_header == kIpv6NextHeaderFragment) return FrameVerdict::kIpFragment;
  // Hop-by-hop, routing and destination options are not walked, so UDP behind them
  // counts as non-UDP. Senders of syslog do not add them in practice.
  if (next_header != kProtocolUdp) return FrameVerdict::kNonUdp;

  const FrameVerdict verdict = decodeUdp(packet.subspan(kIpv6HeaderBytes, payload_len), ports, out);
  if (verdict != FrameVerdict::kAccepted) return verdict;
  std::memcpy(out.source.bytes.data(), ip + 8, out.source.bytes.size());
  return FrameVerdict::kAccepted;
}

}  // namespace

std::string_view frameVerdictName(FrameVerdict verdict) {
  switch (verdict) {
    case FrameVerdict::kAccepted:
      return "accepted";
    case FrameVerdict::kTruncatedFrame:
      return "truncated_frame";
    case FrameVerdict::kNonIp:
      return "non_ip";
    case FrameVerdict::kBadIpHeader:
      return "bad_ip_header";
    case FrameVerdict::kIpFragment:
      return "ip_fragment";
    case FrameVerdict::kNonUdp:
      return "non_udp";
    case FrameVerdict::kBadUdpHeader:
      return "bad_udp_header";
    case FrameVerdict::kPortNotAccepted:
      return "port_not_accepted";
    case FrameVerdict::kEmptyPayload:
      return "empty";
  }
  return "unknown";
}

FrameVerdict decodeFrame(std::span<const uint8_t> frame, const UdpPortSet& ports,
                         UdpDatagram& out) {
  out = UdpDatagram{};
  if (frame.size() < kEthernetHeaderBytes) return FrameVerdict::kTruncatedFrame;
  size_t offset = kEthernetHeaderBytes;
  uint16_t ether_type = loadBe16(frame.data() + 12);

  // Each tag is 2 bytes of TCI followed by the next EtherType. The loop ends because
  // every pass consumes 4 bytes of a finite frame.
  while (ether_type == kEtherTypeVlan || ether_type == kEtherTypeQinQ) {
    if (frame.size() - offset < kVlanTagBytes) return FrameVerdict::kTruncatedFrame;
    // The last tag read is the innermost one (the customer tag of a QinQ frame).
    out.vlan = loadBe16(frame.data() + offset) & kVlanIdMask;
    ether_type = loadBe16(frame.data() + offset + 2);
    offset += kVlanTagBytes;
  }

  out.l2_bytes = static_cast<uint16_t>(offset);
  const std::span<const uint8_t> packet = frame.subspan(offset);
  switch (ether_type) {
    case kEtherTypeIpv4:
      out.ip_version = 4;
      return decodeIpv4(packet, ports, out);
    case kEtherTypeIpv6:
      out.ip_version = 6;
      return decodeIpv6(packet, ports, out);
    default:
      return FrameVerdict::kNonIp;
  }
}

}  // namespace vigil::dataplane::internal

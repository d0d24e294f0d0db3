// Decodes one Ethernet frame down to a UDP payload for the DPDK source. Pure functions over
// a byte span: no DPDK types, no allocation, no state, so tests and the fuzzer drive them
// with plain byte arrays.
#pragma once

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/ip.h"

namespace vigil::dataplane::internal {

// Outcome of decoding one frame. Every value except kAccepted is a drop reason, and
// frameVerdictName() gives the label the source counts it under.
enum class FrameVerdict : uint8_t {
  kAccepted,
  kTruncatedFrame,   // the frame ends inside a header or before the length an IP header gives
  kNonIp,            // ARP, LLDP, 802.3 length frames: any EtherType but IPv4/IPv6 after tags
  kBadIpHeader,      // wrong version nibble, IPv4 IHL < 5 or total length < header length
  kIpFragment,       // IPv4 with MF set or offset != 0, or IPv6 with a fragment header
  kNonUdp,           // TCP, ICMP, or IPv6 with any extension header other than fragment
  kBadUdpHeader,     // UDP length < 8 or longer than the IP payload
  kPortNotAccepted,  // UDP to a destination port the source does not listen on
  kEmptyPayload,     // UDP to an accepted port with no payload bytes
};

inline constexpr size_t kFrameVerdictCount = 9;

// Label for a drop reason ("ip_fragment", "non_udp", ...); "accepted" for kAccepted.
std::string_view frameVerdictName(FrameVerdict verdict);

// The destination ports a source accepts: one bit per port (8 KiB), so the per-packet
// check is a single bit test.
using UdpPortSet = std::bitset<65536>;

// One decoded frame. `payload` points into the frame passed to decodeFrame() and is valid
// only as long as that frame. The layer fields (vlan, l2_bytes, ip_version, l3_bytes) are
// set as far as decoding got, whatever the verdict, so the DPDK source can hand an IPv4
// fragment to reassembly. The other fields are set only for kAccepted.
struct UdpDatagram {
  IpAddr source;  // IPv4 in mapped form, as IpAddr stores it
  uint16_t source_port = 0;
  uint16_t destination_port = 0;
  std::span<const uint8_t> payload;

  uint16_t vlan = 0;        // VLAN id (low 12 bits of the TCI) of the innermost tag; 0 = untagged
  uint16_t l2_bytes = 0;    // Ethernet header plus tags: the offset of the IP header
  uint8_t ip_version = 0;   // 4 or 6 once the EtherType is known to be IP, else 0
  uint16_t l3_bytes = 0;    // IPv4 header length from IHL, or 40 for IPv6
};

// Decodes `frame`, which starts at the destination MAC and has no FCS. The layers are
// Ethernet II, any number of 802.1Q (0x8100) and 802.1ad (0x88a8) tags, IPv4 (options
// skipped by IHL) or IPv6 (fixed header only, so no extension header is skipped), then UDP.
// Bytes after the length the IP header gives (Ethernet padding) are ignored, and IP and
// UDP checksums are not checked. Resets `out` first, then fills it as UdpDatagram describes.
// Never reads outside `frame`, never allocates, and is safe to call from any thread.
FrameVerdict decodeFrame(std::span<const uint8_t> frame, const UdpPortSet& ports, UdpDatagram& out);

}  // namespace vigil::dataplane::internal

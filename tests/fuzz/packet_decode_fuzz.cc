// Feeds arbitrary bytes to decodeFrame() as an Ethernet frame, once with only port 514
// accepted and once with every port. Aborts when an accepted payload does not lie inside
// the input or after the headers, when its size disagrees with the UDP header it came
// from, or when the VLAN id or header offsets are out of range.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "dataplane/internal/packet_decode.h"

namespace {

using vigil::dataplane::internal::decodeFrame;
using vigil::dataplane::internal::FrameVerdict;
using vigil::dataplane::internal::UdpDatagram;
using vigil::dataplane::internal::UdpPortSet;

void checkDecode(std::span<const uint8_t> frame, const UdpPortSet& ports) {
  UdpDatagram datagram;
  const FrameVerdict verdict = decodeFrame(frame, ports, datagram);
  // The layer fields hold for every verdict, because reassembly reads them from fragments.
  if (datagram.vlan > 0x0fff) std::abort();
  if (datagram.l2_bytes > frame.size()) std::abort();
  if (datagram.ip_version != 0 && datagram.ip_version != 4 && datagram.ip_version != 6) {
    std::abort();
  }
  if (datagram.ip_version == 0 && datagram.l3_bytes != 0) std::abort();
  if (verdict == FrameVerdict::kIpFragment && datagram.ip_version == 4 &&
      datagram.l2_bytes + size_t{datagram.l3_bytes} > frame.size()) {
    std::abort();
  }
  if (verdict != FrameVerdict::kAccepted) return;
  if (datagram.payload.data() < frame.data() + datagram.l2_bytes + datagram.l3_bytes + 8) {
    std::abort();
  }
  const uint8_t* begin = frame.data();
  const uint8_t* end = begin + frame.size();
  const uint8_t* payload = datagram.payload.data();
  if (payload < begin + 42 || payload + datagram.payload.size() > end) std::abort();
  if (!ports.test(datagram.destination_port)) std::abort();
  // The UDP length field sits 4 bytes into the 8-byte header just before the payload.
  const size_t udp_len = (static_cast<size_t>(payload[-4]) << 8) | payload[-3];
  if (udp_len != datagram.payload.size() + 8) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const UdpPortSet syslog_only = [] {
    UdpPortSet ports;
    ports.set(514);
    return ports;
  }();
  static const UdpPortSet every_port = UdpPortSet().set();

  const std::span<const uint8_t> frame(data, size);
  checkDecode(frame, syslog_only);
  checkDecode(frame, every_port);
  return 0;
}

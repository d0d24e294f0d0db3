// Feeds arbitrary bytes to decodeFrame() as an Ethernet frame, once with only port 514
// accepted and once with every port. Aborts when an accepted payload does not lie inside
// the input, or when its size disagrees with the UDP header it came from.
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
  if (decodeFrame(frame, ports, datagram) != FrameVerdict::kAccepted) return;
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

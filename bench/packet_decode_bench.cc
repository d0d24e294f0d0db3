// Speed of the DPDK source's frame decoder on frames built in memory: accepted IPv4 and
// IPv6 syslog datagrams, a QinQ-tagged one, and a frame dropped at the port check.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/internal/packet_decode.h"

namespace {

using vigil::dataplane::internal::decodeFrame;
using vigil::dataplane::internal::FrameVerdict;
using vigil::dataplane::internal::UdpDatagram;
using vigil::dataplane::internal::UdpPortSet;

void putBe16(std::vector<uint8_t>& f, size_t value) {
  f.push_back(static_cast<uint8_t>(value >> 8));
  f.push_back(static_cast<uint8_t>(value));
}

// Builds Ethernet (with `tags` VLAN tags), IPv4 or IPv6, UDP to `port` and a 150-byte
// payload, a typical syslog line length.
std::vector<uint8_t> buildFrame(bool ipv6, int tags, uint16_t port) {
  const std::string payload = "<34>" + std::string(146, 'a');
  std::vector<uint8_t> f(12, 0x02);
  for (int i = 0; i < tags; ++i) {
    putBe16(f, i == 0 && tags == 2 ? 0x88a8 : 0x8100);
    putBe16(f, 100);
  }
  const size_t udp_len = 8 + payload.size();
  if (ipv6) {
    putBe16(f, 0x86dd);
    f.insert(f.end(), {0x60, 0, 0, 0});
    putBe16(f, udp_len);
    f.insert(f.end(), {17, 64});
    f.insert(f.end(), 32, 0x20);
  } else {
    putBe16(f, 0x0800);
    f.insert(f.end(), {0x45, 0});
    putBe16(f, 20 + udp_len);
    f.insert(f.end(), {0, 1, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2});
  }
  putBe16(f, 40000);
  putBe16(f, port);
  putBe16(f, udp_len);
  putBe16(f, 0);
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

void runDecode(benchmark::State& state, const std::vector<uint8_t>& frame,
               FrameVerdict expected) {
  UdpPortSet ports;
  ports.set(514);
  UdpDatagram datagram;
  size_t matched = 0;
  for (auto _ : state) {
    const FrameVerdict verdict = decodeFrame(frame, ports, datagram);
    benchmark::DoNotOptimize(datagram);
    matched += verdict == expected ? 1 : 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(frame.size()));
  if (matched != static_cast<size_t>(state.iterations())) state.SkipWithError("wrong verdict");
}

void BM_PacketDecode_Ipv4(benchmark::State& state) {
  runDecode(state, buildFrame(false, 0, 514), FrameVerdict::kAccepted);
}
void BM_PacketDecode_Ipv6(benchmark::State& state) {
  runDecode(state, buildFrame(true, 0, 514), FrameVerdict::kAccepted);
}
void BM_PacketDecode_QinQIpv4(benchmark::State& state) {
  runDecode(state, buildFrame(false, 2, 514), FrameVerdict::kAccepted);
}
void BM_PacketDecode_WrongPort(benchmark::State& state) {
  runDecode(state, buildFrame(false, 0, 53), FrameVerdict::kPortNotAccepted);
}

BENCHMARK(BM_PacketDecode_Ipv4);
BENCHMARK(BM_PacketDecode_Ipv6);
BENCHMARK(BM_PacketDecode_QinQIpv4);
BENCHMARK(BM_PacketDecode_WrongPort);

}  // namespace

BENCHMARK_MAIN();

// End-to-end speed of DpdkSource: a net_pcap port replays an in-memory copy of a pcap file
// of syslog datagrams without end (infinite_rx=1), and the benchmark thread consumes the
// ring. One iteration is one message taken from the ring, so items_per_second is the rate
// at which decoded payloads reach a consumer, and rx_frames is the rate at which the RX
// thread handled frames. EAL starts once, so the source lives for the whole program and
// stops after the last benchmark.
#include <benchmark/benchmark.h>
#include <pcap/pcap.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "dataplane/dpdk_source.h"

namespace {

using vigil::MetricsRegistry;
using vigil::dataplane::DpdkSource;
using vigil::dataplane::DpdkSourceOptions;

void putBe16(std::vector<uint8_t>& f, size_t value) {
  f.push_back(static_cast<uint8_t>(value >> 8));
  f.push_back(static_cast<uint8_t>(value));
}

// Builds an Ethernet/IPv4/UDP frame to port 514 carrying `payload`.
std::vector<uint8_t> syslogFrame(const std::string& payload) {
  std::vector<uint8_t> f(12, 0x02);
  putBe16(f, 0x0800);
  f.insert(f.end(), {0x45, 0});
  putBe16(f, 28 + payload.size());
  f.insert(f.end(), {0, 1, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2});
  putBe16(f, 40000);
  putBe16(f, 514);
  putBe16(f, 8 + payload.size());
  putBe16(f, 0);
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

// Writes 1024 datagrams with 150-byte payloads. Returns false when libpcap cannot write.
bool writePcap(const std::string& path) {
  pcap_t* pcap = pcap_open_dead(DLT_EN10MB, 65535);
  pcap_dumper_t* dumper = pcap_dump_open(pcap, path.c_str());
  if (dumper == nullptr) {
    pcap_close(pcap);
    return false;
  }
  for (int i = 0; i < 1024; ++i) {
    std::string payload = "<34>Dec  4 16:00:00 host sshd[" + std::to_string(i) + "]: ";
    payload.resize(150, 'a');
    const std::vector<uint8_t> frame = syslogFrame(payload);
    pcap_pkthdr header{};
    header.caplen = header.len = static_cast<bpf_u_int32>(frame.size());
    pcap_dump(reinterpret_cast<u_char*>(dumper), &header, frame.data());
  }
  pcap_dump_close(dumper);
  pcap_close(pcap);
  return true;
}

struct Replay {
  MetricsRegistry metrics;
  std::unique_ptr<DpdkSource> source;
  std::string pcap_path;
  std::string error;
};

Replay& replay() {
  static Replay* r = [] {
    auto* state = new Replay();
    state->pcap_path = (std::filesystem::temp_directory_path() /
                        ("vigil_dpdk_bench_" + std::to_string(getpid()) + ".pcap"))
                           .string();
    if (!writePcap(state->pcap_path)) {
      state->error = "cannot write " + state->pcap_path;
      return state;
    }
    DpdkSourceOptions o;
    o.name = "dpdk_bench";
    o.eal_args = {"-l",
                  "0",
                  "--no-huge",
                  "--no-pci",
                  "-m",
                  "256",
                  "--no-shconf",
                  "--no-telemetry",
                  "--file-prefix=vigil_bench_" + std::to_string(getpid()),
                  "--log-level=lib.eal:warning",
                  "--vdev=net_pcap0,rx_pcap=" + state->pcap_path + ",infinite_rx=1"};
    o.max_message_bytes = 2048;
    o.ring_capacity = 4096;
    o.idle_sleep_us = 0;
    state->source = std::make_unique<DpdkSource>(o, state->metrics);
    if (!state->source->start(state->error)) state->source.reset();
    return state;
  }();
  return *r;
}

void BM_DpdkSource_PcapReplay(benchmark::State& state) {
  Replay& r = replay();
  if (!r.source) {
    state.SkipWithError(r.error.c_str());
    return;
  }
  vigil::dataplane::RawRing& ring = r.source->ring();
  // Frames the RX thread handled, published or dropped as queue_full when the consumer
  // fell behind: the rate at which the source decodes, apart from the consumer's speed.
  auto rx_frames = [&r] {
    return r.metrics.sum("vigil_source_received_total") +
           r.metrics.sum("vigil_source_dropped_total");
  };
  const uint64_t rx_frames_before = rx_frames();
  int64_t bytes = 0;
  for (auto _ : state) {
    const vigil::dataplane::RawMessage* m = ring.front();
    while (m == nullptr) m = ring.front();
    bytes += static_cast<int64_t>(m->len);
    ring.pop();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(bytes);
  state.counters["rx_frames"] = benchmark::Counter(
      static_cast<double>(rx_frames() - rx_frames_before), benchmark::Counter::kIsRate);
  if (bytes == 0) state.SkipWithError("no message arrived");
}

BENCHMARK(BM_DpdkSource_PcapReplay)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  Replay& r = replay();
  if (r.source) r.source->stop();
  std::filesystem::remove(r.pcap_path);
  benchmark::Shutdown();
  return 0;
}

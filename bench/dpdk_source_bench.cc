// Speed of DpdkSource on net_pcap ports that replay a pcap file of syslog datagrams
// without end (infinite_rx=1).
//
// BM_DpdkToEvent runs the whole path to a parsed event on one core: rte_eth_rx_burst, frame
// decode and the copy into the ring (DpdkSource::pollOnce), then moveToEvent and
// parseEvent into a reused Event, as the pipeline's input and parse stages do.
// items_per_second is events per second. copy:0 trades the slot buffer for the arena, as
// the pipeline does; copy:1 copies the message into the arena.
//
// BM_DpdkSource_PcapReplay runs the source's own RX thread, and the benchmark thread takes
// messages off the ring. items_per_second is the rate at which payloads reach the
// consumer, rx_frames the rate at which the RX thread handled frames.
//
// BM_DpdkRxDecode is BM_DpdkToEvent without the parse, to split the cost.
//
// All report allocs_per_item: operator new calls in the whole process during the timed
// loop, divided by the items. This file replaces the global operator new to count them.
// EAL starts once per process, so both sources share one EAL with two net_pcap ports.
#include <benchmark/benchmark.h>
#include <pcap/pcap.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "common/event.h"
#include "common/metrics.h"
#include "dataplane/dpdk_source.h"
#include "dataplane/parser.h"

namespace {

std::atomic<uint64_t> g_allocations{0};

}  // namespace

// Counting replacements of the global allocation functions. The sized, aligned and
// nothrow forms of the standard library forward to these two. GCC 12 inlines the
// replaced operator delete into callers and then reports free() on memory from operator
// new as mismatched, although this operator new gets it from malloc().
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace {

using vigil::Event;
using vigil::MetricsRegistry;
using vigil::dataplane::DpdkSource;
using vigil::dataplane::DpdkSourceOptions;
using vigil::dataplane::RawMessage;
using vigil::dataplane::RawRing;

constexpr size_t kDatagrams = 1024;
constexpr size_t kPayloadBytes = 200;

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

// Alternates RFC 5424 and RFC 3164 lines, each padded to kPayloadBytes.
std::string syslogLine(size_t i) {
  std::string line;
  if (i % 2 == 0) {
    line = "<34>1 2026-12-04T16:00:00.123Z host" + std::to_string(i % 50) + " sshd " +
           std::to_string(1000 + i) + " ID47 [origin ip=\"192.0.2.7\"] Failed password for " +
           "root from 198.51.100." + std::to_string(i % 250) + " port 22 ssh2 ";
  } else {
    line = "<86>Dec  4 16:00:00 host" + std::to_string(i % 50) + " sudo[" +
           std::to_string(2000 + i) + "]: alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; " +
           "COMMAND=/usr/bin/systemctl restart nginx ";
  }
  line.resize(kPayloadBytes, 'x');
  return line;
}

// Writes kDatagrams datagrams. Returns false when libpcap cannot write.
bool writePcap(const std::string& path) {
  pcap_t* pcap = pcap_open_dead(DLT_EN10MB, 65535);
  pcap_dumper_t* dumper = pcap_dump_open(pcap, path.c_str());
  if (dumper == nullptr) {
    pcap_close(pcap);
    return false;
  }
  for (size_t i = 0; i < kDatagrams; ++i) {
    const std::vector<uint8_t> frame = syslogFrame(syslogLine(i));
    pcap_pkthdr header{};
    header.caplen = header.len = static_cast<bpf_u_int32>(frame.size());
    pcap_dump(reinterpret_cast<u_char*>(dumper), &header, frame.data());
  }
  pcap_dump_close(dumper);
  pcap_close(pcap);
  return true;
}

struct Bench {
  MetricsRegistry metrics;
  std::string pcap_path;
  std::vector<std::string> eal_args;
  // Polled by the benchmark thread (start_rx_threads = false) on port net_pcap0.
  std::unique_ptr<DpdkSource> polled;
  // Runs its own RX thread on port net_pcap1, started by its benchmark only.
  std::unique_ptr<DpdkSource> threaded;
  std::string error;
};

DpdkSourceOptions benchOptions(const Bench& b, const std::string& name, const std::string& port) {
  DpdkSourceOptions o;
  o.name = name;
  o.port = port;
  o.eal_args = b.eal_args;
  o.max_message_bytes = 2048;
  o.ring_capacity = 4096;
  o.idle_sleep_us = 0;
  return o;
}

Bench& bench() {
  static Bench* b = [] {
    auto* state = new Bench();
    state->pcap_path = (std::filesystem::temp_directory_path() /
                        ("vigil_dpdk_bench_" + std::to_string(getpid()) + ".pcap"))
                           .string();
    if (!writePcap(state->pcap_path)) {
      state->error = "cannot write " + state->pcap_path;
      return state;
    }
    const std::string vdev = ",rx_pcap=" + state->pcap_path + ",infinite_rx=1";
    state->eal_args = {"-l",
                       "0",
                       "--no-huge",
                       "--no-pci",
                       "-m",
                       "512",
                       "--no-shconf",
                       "--no-telemetry",
                       "--file-prefix=vigil_bench_" + std::to_string(getpid()),
                       "--log-level=lib.eal:warning",
                       "--vdev=net_pcap0" + vdev,
                       "--vdev=net_pcap1" + vdev};
    DpdkSourceOptions o = benchOptions(*state, "dpdk_polled", "net_pcap0");
    o.start_rx_threads = false;
    state->polled = std::make_unique<DpdkSource>(o, state->metrics);
    if (!state->polled->start(state->error)) state->polled.reset();
    return state;
  }();
  return *b;
}

void BM_DpdkToEvent(benchmark::State& state) {
  Bench& b = bench();
  if (!b.polled) {
    state.SkipWithError(b.error.c_str());
    return;
  }
  RawRing& ring = b.polled->ring();
  // The pipeline sizes each event arena at twice the largest message plus headroom, as
  // the ring's slot buffers are, so moveToEvent() trades buffers as in the pipeline. With
  // the argument copy:1 the arena is 64 bytes larger, so moveToEvent() copies each
  // message instead, as the pipeline did before it traded buffers.
  const bool copy = state.range(0) != 0;
  Event event(vigil::dataplane::eventArenaBytes(2048) + (copy ? 64 : 0));
  vigil::dataplane::ParseOptions parse_options;
  int64_t events = 0;
  int64_t parsed = 0;
  int64_t bytes = 0;

  const uint64_t allocations_before = g_allocations.load(std::memory_order_relaxed);
  for (auto _ : state) {
    b.polled->pollOnce(0);
    for (RawMessage* m = ring.front(); m != nullptr; m = ring.front()) {
      event.reset();
      vigil::dataplane::moveToEvent(*m, event);
      event.receive_ns = m->receive_ns;
      event.peer = m->peer;
      event.vlan = m->vlan;
      bytes += static_cast<int64_t>(m->len);
      ring.pop();
      vigil::dataplane::parseEvent(event, parse_options);
      parsed += (event.flags & vigil::kFlagParseError) == 0 ? 1 : 0;
      ++events;
    }
  }
  const uint64_t allocations = g_allocations.load(std::memory_order_relaxed) - allocations_before;

  state.SetItemsProcessed(events);
  state.SetBytesProcessed(bytes);
  state.counters["allocs_per_item"] =
      static_cast<double>(allocations) / static_cast<double>(events == 0 ? 1 : events);
  state.counters["parsed_share"] =
      static_cast<double>(parsed) / static_cast<double>(events == 0 ? 1 : events);
  if (events == 0) state.SkipWithError("no message arrived");
}

// The RX half of BM_DpdkToEvent alone: poll, decode and copy into the ring, then pop
// without parsing. The difference to BM_DpdkToEvent is the parse stage.
void BM_DpdkRxDecode(benchmark::State& state) {
  Bench& b = bench();
  if (!b.polled) {
    state.SkipWithError(b.error.c_str());
    return;
  }
  RawRing& ring = b.polled->ring();
  int64_t messages = 0;
  const uint64_t allocations_before = g_allocations.load(std::memory_order_relaxed);
  for (auto _ : state) {
    b.polled->pollOnce(0);
    for (RawMessage* m = ring.front(); m != nullptr; m = ring.front()) {
      benchmark::DoNotOptimize(m->data.get());
      ring.pop();
      ++messages;
    }
  }
  const uint64_t allocations = g_allocations.load(std::memory_order_relaxed) - allocations_before;
  state.SetItemsProcessed(messages);
  state.counters["allocs_per_item"] =
      static_cast<double>(allocations) / static_cast<double>(messages == 0 ? 1 : messages);
  if (messages == 0) state.SkipWithError("no message arrived");
}

void BM_DpdkSource_PcapReplay(benchmark::State& state) {
  Bench& b = bench();
  if (!b.polled) {
    state.SkipWithError(b.error.c_str());
    return;
  }
  if (!b.threaded) {
    b.threaded = std::make_unique<DpdkSource>(benchOptions(b, "dpdk_threaded", "net_pcap1"),
                                              b.metrics);
    if (!b.threaded->start(b.error)) {
      b.threaded.reset();
      state.SkipWithError(b.error.c_str());
      return;
    }
  }
  RawRing& ring = b.threaded->ring();
  // Frames the RX thread handled, published or dropped as queue_full when the consumer
  // fell behind: the rate at which the source decodes, apart from the consumer's speed.
  auto rx_frames = [&b] {
    return b.metrics.sum("vigil_source_received_total", {{"source", "dpdk_threaded"}}) +
           b.metrics.sum("vigil_source_dropped_total", {{"source", "dpdk_threaded"}});
  };
  const uint64_t rx_frames_before = rx_frames();
  const uint64_t allocations_before = g_allocations.load(std::memory_order_relaxed);
  int64_t bytes = 0;
  for (auto _ : state) {
    const RawMessage* m = ring.front();
    while (m == nullptr) m = ring.front();
    bytes += static_cast<int64_t>(m->len);
    ring.pop();
  }
  const uint64_t allocations = g_allocations.load(std::memory_order_relaxed) - allocations_before;
  const uint64_t frames = rx_frames() - rx_frames_before;
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(bytes);
  state.counters["rx_frames"] =
      benchmark::Counter(static_cast<double>(frames), benchmark::Counter::kIsRate);
  state.counters["allocs_per_item"] =
      static_cast<double>(allocations) / static_cast<double>(frames == 0 ? 1 : frames);
  if (bytes == 0) state.SkipWithError("no message arrived");
}

BENCHMARK(BM_DpdkToEvent)->ArgName("copy")->Arg(0)->Arg(1);
BENCHMARK(BM_DpdkRxDecode);
BENCHMARK(BM_DpdkSource_PcapReplay)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  Bench& b = bench();
  if (b.threaded) b.threaded->stop();
  if (b.polled) b.polled->stop();
  std::filesystem::remove(b.pcap_path);
  benchmark::Shutdown();
  return 0;
}

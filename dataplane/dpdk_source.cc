#include "dataplane/dpdk_source.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstring>
#include <thread>
#include <utility>

#include "common/log.h"
#include "dataplane/internal/dpdk_eal.h"
#include "dataplane/internal/packet_decode.h"

#if VIGIL_WITH_DPDK
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#endif

namespace vigil::dataplane {
namespace {

using internal::FrameVerdict;
using internal::kFrameVerdictCount;

// Every UDP payload (at most 65527 bytes over IPv6) fits in a slot of this size.
constexpr size_t kMaxMessageBytes = 65536;
constexpr size_t kMaxRingSlots = size_t{1} << 20;
// Name and help text shared with the kernel sources, so all drops render as one family.
constexpr char kDroppedName[] = "vigil_source_dropped_total";
constexpr char kDroppedHelp[] = "Messages a source discarded, by reason";
constexpr int64_t kPortStatsIntervalNs = 1'000'000'000;
// Frames of several segments are copied into a buffer of this size before decoding. The
// largest IP packet (65535 bytes) plus Ethernet and a few VLAN tags fits. A longer frame
// is decoded from its first kLinearFrameBytes, so it counts as truncated_frame.
constexpr size_t kLinearFrameBytes = 65536 + 128;

// Counters one burst adds up locally and flushes once, so the per-packet path does no
// atomic operations.
struct BurstTally {
  std::array<uint32_t, kFrameVerdictCount> verdicts{};
  uint32_t queue_full = 0;
  uint32_t truncated = 0;
  uint64_t bytes = 0;
};

}  // namespace

struct DpdkSource::Impl {
  Impl(DpdkSourceOptions opts, MetricsRegistry& metrics, Clock& clk);

  bool startPort(std::string& error);
  void stopPort();
  void pollQueue(uint16_t rx_queue);
  void handleFrame(std::span<const uint8_t> frame, int64_t receive_ns, BurstTally& tally);
  void flushTally(BurstTally& tally);
  void refreshPortStats();

  DpdkSourceOptions options;
  Clock& clock;
  RawRing ring;
  internal::UdpPortSet ports;

  Counter& received;
  Counter& bytes;
  Counter& truncated;
  Counter& queue_full;
  // One counter per drop reason. The kAccepted entry stays null, because `received`
  // counts accepted frames.
  std::array<Counter*, kFrameVerdictCount> drops{};
  Gauge& port_ipackets;
  Gauge& port_imissed;
  Gauge& port_rx_nombuf;
  Gauge& port_ierrors;

  bool running = false;
  std::atomic<bool> stop_requested{false};
  std::thread rx_thread;
  std::unique_ptr<uint8_t[]> linear_frame;  // kLinearFrameBytes, RX thread only
#if VIGIL_WITH_DPDK
  bool eal_acquired = false;
  bool port_configured = false;
  bool port_started = false;
  uint16_t port_id = 0;
  rte_mempool* pool = nullptr;
#endif
};

DpdkSource::Impl::Impl(DpdkSourceOptions opts, MetricsRegistry& metrics, Clock& clk)
    : options(std::move(opts)),
      clock(clk),
      // Clamped so that options which validateOptions() will reject cannot make the
      // constructor allocate gigabytes first.
      ring(std::clamp<size_t>(options.ring_capacity, 1, kMaxRingSlots),
           [size = std::clamp<size_t>(options.max_message_bytes, 1, kMaxMessageBytes)] {
             return std::make_unique<RawMessage>(size);
           }),
      received(metrics.counter("vigil_source_received_total",
                               "Messages a source published to its ring",
                               {{"source", options.name}})),
      bytes(metrics.counter("vigil_source_bytes_total", "Bytes of the messages a source published",
                            {{"source", options.name}})),
      truncated(metrics.counter("vigil_source_truncated_total",
                                "Published messages cut to max_message_bytes",
                                {{"source", options.name}})),
      queue_full(metrics.counter(kDroppedName, kDroppedHelp,
                                 {{"reason", "queue_full"}, {"source", options.name}})),
      port_ipackets(metrics.gauge("vigil_dpdk_port_ipackets",
                                  "Packets the DPDK port received (rte_eth_stats.ipackets)",
                                  {{"source", options.name}})),
      port_imissed(metrics.gauge("vigil_dpdk_port_imissed",
                                 "Packets the NIC dropped because RX descriptors were full",
                                 {{"source", options.name}})),
      port_rx_nombuf(metrics.gauge("vigil_dpdk_port_rx_nombuf",
                                   "RX mbuf allocation failures (rte_eth_stats.rx_nombuf)",
                                   {{"source", options.name}})),
      port_ierrors(metrics.gauge("vigil_dpdk_port_ierrors",
                                 "Erroneous packets the port received (rte_eth_stats.ierrors)",
                                 {{"source", options.name}})) {
  for (size_t i = 1; i < kFrameVerdictCount; ++i) {
    const auto verdict = static_cast<FrameVerdict>(i);
    const std::string reason(internal::frameVerdictName(verdict));
    drops[i] = &metrics.counter(kDroppedName, kDroppedHelp,
                                {{"reason", reason}, {"source", options.name}});
  }
}

// Decodes one frame and publishes its payload, or counts why it was dropped.
void DpdkSource::Impl::handleFrame(std::span<const uint8_t> frame, int64_t receive_ns,
                                   BurstTally& tally) {
  internal::UdpDatagram datagram;
  const FrameVerdict verdict = internal::decodeFrame(frame, ports, datagram);
  if (verdict != FrameVerdict::kAccepted) {
    ++tally.verdicts[static_cast<size_t>(verdict)];
    return;
  }
  RawMessage* slot = ring.tryClaim();
  if (slot == nullptr) {
    ++tally.queue_full;
    return;
  }
  const size_t len = std::min(datagram.payload.size(), slot->capacity);
  std::memcpy(slot->data.get(), datagram.payload.data(), len);
  slot->len = len;
  slot->truncated = len < datagram.payload.size();
  slot->receive_ns = receive_ns;
  slot->peer = datagram.source;
  slot->source_id = options.id;
  ring.publish();

  ++tally.verdicts[static_cast<size_t>(FrameVerdict::kAccepted)];
  tally.truncated += slot->truncated ? 1 : 0;
  tally.bytes += len;
}

void DpdkSource::Impl::flushTally(BurstTally& tally) {
  const uint32_t accepted = tally.verdicts[static_cast<size_t>(FrameVerdict::kAccepted)];
  if (accepted != 0) received.add(accepted);
  if (tally.bytes != 0) bytes.add(tally.bytes);
  if (tally.truncated != 0) truncated.add(tally.truncated);
  if (tally.queue_full != 0) queue_full.add(tally.queue_full);
  for (size_t i = 1; i < kFrameVerdictCount; ++i) {
    if (tally.verdicts[i] != 0) drops[i]->add(tally.verdicts[i]);
  }
  tally = BurstTally{};
}

DpdkSource::DpdkSource(DpdkSourceOptions options, MetricsRegistry& metrics, Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(options), metrics, clock)) {}

DpdkSource::~DpdkSource() { stop(); }

bool DpdkSource::validateOptions(const DpdkSourceOptions& o, std::string& error) {
  const std::string where = "DPDK source " + o.name + ": ";
  if (o.rx_queues != 1) {
    error = where + "rx_queues=" + std::to_string(o.rx_queues) + " is not supported; use 1";
    return false;
  }
  if (o.burst_size == 0 || o.burst_size > kMaxBurst) {
    error = where + "burst_size=" + std::to_string(o.burst_size) + " is outside [1, " +
            std::to_string(kMaxBurst) + "]";
    return false;
  }
  if (o.rx_descriptors == 0) {
    error = where + "rx_descriptors=0 is invalid; use a power of two such as 1024";
    return false;
  }
  const uint64_t min_pool = uint64_t{2} * o.rx_descriptors + o.burst_size;
  if (o.mbuf_pool_size < min_pool) {
    error = where + "mbuf_pool_size=" + std::to_string(o.mbuf_pool_size) +
            " is too small; it must be at least 2 * rx_descriptors + burst_size = " +
            std::to_string(min_pool);
    return false;
  }
  if (o.udp_ports.empty()) {
    error = where + "udp_ports is empty; list at least one UDP destination port such as 514";
    return false;
  }
  for (uint16_t port : o.udp_ports) {
    if (port == 0) {
      error = where + "udp_ports contains 0, which is not a valid destination port";
      return false;
    }
  }
  if (o.max_message_bytes == 0 || o.max_message_bytes > kMaxMessageBytes) {
    error = where + "max_message_bytes=" + std::to_string(o.max_message_bytes) +
            " is outside [1, 65536]";
    return false;
  }
  if (o.ring_capacity == 0 || o.ring_capacity > kMaxRingSlots) {
    error = where + "ring_capacity=" + std::to_string(o.ring_capacity) + " is outside [1, " +
            std::to_string(kMaxRingSlots) + "]";
    return false;
  }
  return true;
}

bool DpdkSource::start(std::string& error) {
  Impl& s = *impl_;
  if (s.running) {
    error = "DPDK source " + s.options.name + " is already running";
    return false;
  }
  if (!validateOptions(s.options, error)) return false;
  s.ports.reset();
  for (uint16_t port : s.options.udp_ports) s.ports.set(port);
  if (!s.linear_frame) s.linear_frame = std::make_unique<uint8_t[]>(kLinearFrameBytes);

  if (!s.startPort(error)) {
    s.stopPort();
    return false;
  }
  s.stop_requested.store(false, std::memory_order_relaxed);
  s.rx_thread = std::thread([&s] { s.pollQueue(0); });
  s.running = true;
  return true;
}

void DpdkSource::stop() {
  Impl& s = *impl_;
  if (!s.running) return;
  s.stop_requested.store(true, std::memory_order_release);
  if (s.rx_thread.joinable()) s.rx_thread.join();
  VIGIL_LOG_INFO("DPDK source stopping source={} received={} bytes={} truncated={} queue_full={}",
                 s.options.name, s.received.value(), s.bytes.value(), s.truncated.value(),
                 s.queue_full.value());
  s.stopPort();
  s.running = false;
}

const std::string& DpdkSource::name() const { return impl_->options.name; }
uint16_t DpdkSource::id() const { return impl_->options.id; }
Format DpdkSource::format() const { return impl_->options.format; }
const std::string& DpdkSource::tenant() const { return impl_->options.tenant; }
RawRing& DpdkSource::ring() { return impl_->ring; }

#if VIGIL_WITH_DPDK
// ---------------------------------------------------------------------------------------
// Port setup and the RX loop (DPDK builds)

namespace {

std::string dpdkError(const std::string& source, const char* call, int rc) {
  const int code = rc < 0 ? -rc : rc;
  return "DPDK source " + source + ": " + call + " failed: " + rte_strerror(code) + " (error " +
         std::to_string(code) + ")";
}

// Resolves DpdkSourceOptions::port to a port id, or sets `error`.
bool findPort(const DpdkSourceOptions& o, uint16_t& port_id, std::string& error) {
  const std::string where = "DPDK source " + o.name + ": ";
  if (rte_eth_dev_count_avail() == 0) {
    error = where +
            "no DPDK port is available; a --vdev that failed to probe or a NIC not bound to "
            "vfio-pci leaves none (see the EAL log lines above)";
    return false;
  }
  if (o.port.empty()) {
    RTE_ETH_FOREACH_DEV(port_id) { return true; }
  }
  uint16_t number = 0;
  const char* end = o.port.data() + o.port.size();
  const auto parsed = std::from_chars(o.port.data(), end, number);
  if (parsed.ec == std::errc() && parsed.ptr == end) {
    if (!rte_eth_dev_is_valid_port(number)) {
      error = where + "port " + o.port + " does not exist; " +
              std::to_string(rte_eth_dev_count_avail()) + " port(s) are available";
      return false;
    }
    port_id = number;
    return true;
  }
  if (rte_eth_dev_get_port_by_name(o.port.c_str(), &port_id) != 0) {
    error = where + "no port is named \"" + o.port +
            "\"; give a port id or the device name EAL probed (for example net_pcap0)";
    return false;
  }
  return true;
}

}  // namespace

bool DpdkSource::Impl::startPort(std::string& error) {
  if (!internal::acquireEal(options.eal_args, error)) return false;
  eal_acquired = true;
  if (!findPort(options, port_id, error)) return false;

  rte_eth_dev_info info;
  int rc = rte_eth_dev_info_get(port_id, &info);
  if (rc != 0) {
    error = dpdkError(options.name, "rte_eth_dev_info_get", rc);
    return false;
  }
  if (options.rx_queues > info.max_rx_queues) {
    error = "DPDK source " + options.name + ": rx_queues=" + std::to_string(options.rx_queues) +
            " exceeds the port's maximum of " + std::to_string(info.max_rx_queues);
    return false;
  }

  // No TX queue, because frames this source does not accept are dropped, not forwarded.
  // TODO: send non-syslog frames to the kernel through an exception path (virtio-user or
  // TAP). Until then ARP and all other traffic on a DPDK-owned port is dropped and counted.
  rte_eth_conf conf;
  std::memset(&conf, 0, sizeof(conf));
  rc = rte_eth_dev_configure(port_id, options.rx_queues, 0, &conf);
  if (rc != 0) {
    error = dpdkError(options.name, "rte_eth_dev_configure", rc);
    return false;
  }
  port_configured = true;

  uint16_t rx_descriptors = options.rx_descriptors;
  uint16_t tx_descriptors = 0;
  rc = rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &rx_descriptors, &tx_descriptors);
  if (rc != 0) {
    error = dpdkError(options.name, "rte_eth_dev_adjust_nb_rx_tx_desc", rc);
    return false;
  }

  const int socket = rte_eth_dev_socket_id(port_id);
  const std::string pool_name = "vigil_rx_" + std::to_string(port_id);
  const unsigned cache_size = std::min<unsigned>(256, options.mbuf_pool_size / 4);
  pool = rte_pktmbuf_pool_create(pool_name.c_str(), options.mbuf_pool_size, cache_size, 0,
                                 RTE_MBUF_DEFAULT_BUF_SIZE, socket);
  if (pool == nullptr) {
    error = dpdkError(options.name, "rte_pktmbuf_pool_create", rte_errno) + " for " +
            std::to_string(options.mbuf_pool_size) +
            " mbufs; lower mbuf_pool_size or give EAL more memory (-m MB or hugepages)";
    return false;
  }

  for (uint16_t q = 0; q < options.rx_queues; ++q) {
    rc = rte_eth_rx_queue_setup(port_id, q, rx_descriptors, static_cast<unsigned>(socket), nullptr,
                                pool);
    if (rc != 0) {
      error = dpdkError(options.name, "rte_eth_rx_queue_setup", rc);
      return false;
    }
  }
  rc = rte_eth_dev_start(port_id);
  if (rc != 0) {
    error = dpdkError(options.name, "rte_eth_dev_start", rc);
    return false;
  }
  port_started = true;

  rc = rte_eth_promiscuous_enable(port_id);
  if (rc != 0) {
    VIGIL_LOG_WARN("DPDK promiscuous mode not enabled source={} port={} error={}", options.name,
                   port_id, rte_strerror(-rc));
  }
  rte_eth_stats_reset(port_id);

  char device_name[RTE_ETH_NAME_MAX_LEN] = {};
  rte_eth_dev_get_name_by_port(port_id, device_name);
  VIGIL_LOG_INFO(
      "DPDK source started source={} port={} device={} driver={} numa_socket={} rx_queues={} "
      "rx_descriptors={} burst={} mbufs={}",
      options.name, port_id, device_name, info.driver_name, socket, options.rx_queues,
      rx_descriptors, options.burst_size, options.mbuf_pool_size);
  return true;
}

// Releases whatever startPort() set up, in reverse order.
void DpdkSource::Impl::stopPort() {
  if (port_started) {
    const int rc = rte_eth_dev_stop(port_id);
    if (rc != 0) {
      VIGIL_LOG_WARN("DPDK rte_eth_dev_stop failed source={} port={} error={}", options.name,
                     port_id, rte_strerror(-rc));
    }
    port_started = false;
  }
  if (port_configured) {
    rte_eth_dev_close(port_id);
    port_configured = false;
  }
  if (pool != nullptr) {
    rte_mempool_free(pool);
    pool = nullptr;
  }
  if (eal_acquired) {
    internal::releaseEal();
    eal_acquired = false;
  }
}

void DpdkSource::Impl::refreshPortStats() {
  rte_eth_stats stats;
  if (rte_eth_stats_get(port_id, &stats) != 0) return;
  port_ipackets.set(static_cast<int64_t>(stats.ipackets));
  port_imissed.set(static_cast<int64_t>(stats.imissed));
  port_rx_nombuf.set(static_cast<int64_t>(stats.rx_nombuf));
  port_ierrors.set(static_cast<int64_t>(stats.ierrors));
}

// The RX loop of one queue: poll a burst, decode and publish each frame, free every mbuf,
// flush the burst's counters, check the stop flag. Each queue's loop must run on its own
// thread because rte_eth_rx_burst is not thread-safe on one queue.
// TODO: more RX queues need one RawRing per queue, because the ring has one producer, and
// one thread or lcore per queue. start() launches only queue 0.
void DpdkSource::Impl::pollQueue(uint16_t rx_queue) {
  // A registered thread gets an lcore id, so mbuf alloc and free use the pool's per-lcore
  // cache. An unregistered thread goes to the shared pool ring for every mbuf.
  const bool registered = rte_thread_register() == 0;
  if (!registered) {
    VIGIL_LOG_WARN("DPDK RX thread not registered as an lcore source={} error={}", options.name,
                   rte_strerror(rte_errno));
  }

  std::array<rte_mbuf*, kMaxBurst> burst;
  BurstTally tally;
  int64_t next_stats_ns = monotonicNs() + kPortStatsIntervalNs;
  while (!stop_requested.load(std::memory_order_acquire)) {
    const uint16_t count = rte_eth_rx_burst(port_id, rx_queue, burst.data(), options.burst_size);
    if (count > 0) {
      const int64_t receive_ns = clock.nowNs();
      for (uint16_t i = 0; i < count; ++i) {
        const rte_mbuf* m = burst[i];
        const size_t len = std::min<size_t>(rte_pktmbuf_pkt_len(m), kLinearFrameBytes);
        const auto* data = static_cast<const uint8_t*>(
            rte_pktmbuf_read(m, 0, static_cast<uint32_t>(len), linear_frame.get()));
        handleFrame({data, data == nullptr ? 0 : len}, receive_ns, tally);
      }
      rte_pktmbuf_free_bulk(burst.data(), count);
      flushTally(tally);
    }

    const int64_t now_ns = monotonicNs();
    if (now_ns >= next_stats_ns) {
      refreshPortStats();
      next_stats_ns = now_ns + kPortStatsIntervalNs;
    }
    if (count == 0 && options.idle_sleep_us > 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(options.idle_sleep_us));
    }
  }
  refreshPortStats();
  if (registered) rte_thread_unregister();
}

#else  // !VIGIL_WITH_DPDK

bool DpdkSource::Impl::startPort(std::string& error) {
  error = "DPDK source " + options.name +
          ": this build has no DPDK support (VIGIL_WITH_DPDK=OFF); install libdpdk-dev and "
          "rebuild, or use a kernel UDP source";
  return false;
}

void DpdkSource::Impl::stopPort() {}
void DpdkSource::Impl::pollQueue(uint16_t) {}
void DpdkSource::Impl::refreshPortStats() {}

#endif  // VIGIL_WITH_DPDK

}  // namespace vigil::dataplane

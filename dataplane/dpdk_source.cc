#include "dataplane/dpdk_source.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstring>
#include <string>
#include <thread>
#include <utility>

#include "common/log.h"
#include "common/thread_name.h"
#include "dataplane/internal/dpdk_eal.h"
#include "dataplane/internal/dpdk_rx_queue.h"
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
static_assert(DpdkSource::kMaxBurst <= internal::kMaxRxBurst,
              "an RX queue's burst arrays must hold the largest burst_size");

// The queue views handed to the pipeline for queues 1 .. rx_queues - 1.
class QueueView final : public Source {
 public:
  QueueView(DpdkSource& owner, uint16_t queue)
      : owner_(owner), queue_(queue), name_(owner.name() + ".q" + std::to_string(queue)) {}

  bool start(std::string&) override { return true; }
  void stop() override {}
  bool finished() const override { return false; }
  const std::string& name() const override { return name_; }
  uint16_t id() const override { return owner_.id(); }
  Format format() const override { return owner_.format(); }
  const std::string& tenant() const override { return owner_.tenant(); }
  RawRing& ring() override { return owner_.queueRing(queue_); }

 private:
  DpdkSource& owner_;
  uint16_t queue_;
  std::string name_;
};

}  // namespace

struct DpdkSource::Impl {
  Impl(DpdkSourceOptions opts, MetricsRegistry& metrics, Clock& clk);

  bool startPort(std::string& error);
  bool setupExceptionPort(std::string& error);
  bool createQueues(std::string& error);
  void stopPort();
  void runQueue(uint16_t queue);
  void refreshPortStats();

  DpdkSourceOptions options;
  Clock& clock;
  MetricsRegistry& metrics;
  std::vector<std::unique_ptr<RawRing>> rings;  // one per RX queue
  internal::UdpPortSet ports;
  internal::DpdkCounters counters;
  std::vector<Counter*> queue_frames;  // vigil_dpdk_queue_frames_total{queue=q}
  std::vector<std::unique_ptr<internal::RxQueue>> queues;

  Gauge& port_ipackets;
  Gauge& port_imissed;
  Gauge& port_rx_nombuf;
  Gauge& port_ierrors;

  bool running = false;
  std::atomic<bool> stop_requested{false};
  std::vector<std::thread> rx_threads;
  uint64_t rss_hash_functions = 0;
#if VIGIL_WITH_DPDK
  bool eal_acquired = false;
  bool port_configured = false;
  bool port_started = false;
  bool exception_configured = false;
  bool exception_started = false;
  uint16_t port_id = 0;
  uint16_t exception_port_id = 0;
  rte_mempool* pool = nullptr;
#endif
};

DpdkSource::Impl::Impl(DpdkSourceOptions opts, MetricsRegistry& registry, Clock& clk)
    : options(std::move(opts)),
      clock(clk),
      metrics(registry),
      port_ipackets(registry.gauge("vigil_dpdk_port_ipackets",
                                   "Packets the DPDK port received (rte_eth_stats.ipackets)",
                                   {{"source", options.name}})),
      port_imissed(registry.gauge("vigil_dpdk_port_imissed",
                                  "Packets the NIC dropped because RX descriptors were full",
                                  {{"source", options.name}})),
      port_rx_nombuf(registry.gauge("vigil_dpdk_port_rx_nombuf",
                                    "RX mbuf allocation failures (rte_eth_stats.rx_nombuf)",
                                    {{"source", options.name}})),
      port_ierrors(registry.gauge("vigil_dpdk_port_ierrors",
                                  "Erroneous packets the port received (rte_eth_stats.ierrors)",
                                  {{"source", options.name}})) {
  // Clamped so that options which validateOptions() will reject cannot make the
  // constructor allocate gigabytes first.
  const size_t ring_count = std::clamp<size_t>(options.rx_queues, 1, kMaxRxQueues);
  const size_t slots = std::clamp<size_t>(options.ring_capacity, 1, kMaxRingSlots);
  const size_t slot_bytes = std::clamp<size_t>(options.max_message_bytes, 1, kMaxMessageBytes);
  for (size_t q = 0; q < ring_count; ++q) {
    rings.push_back(std::make_unique<RawRing>(
        slots, [slot_bytes] {
          // Sized as an event arena, so the pipeline trades buffers instead of copying.
          return std::make_unique<RawMessage>(slot_bytes, eventArenaBytes(slot_bytes));
        }));
    queue_frames.push_back(&registry.counter(
        "vigil_dpdk_queue_frames_total", "Frames a DPDK RX queue read from the port",
        {{"queue", std::to_string(q)}, {"source", options.name}}));
  }

  const Labels source = {{"source", options.name}};
  auto dropped = [&](std::string_view reason) {
    return &registry.counter(kDroppedName, kDroppedHelp,
                             {{"reason", std::string(reason)}, {"source", options.name}});
  };
  internal::DpdkCounters& c = counters;
  c.received = &registry.counter("vigil_source_received_total",
                                 "Messages a source published to its ring", source);
  c.bytes = &registry.counter("vigil_source_bytes_total",
                              "Bytes of the messages a source published", source);
  c.truncated = &registry.counter("vigil_source_truncated_total",
                                  "Published messages cut to max_message_bytes", source);
  c.queue_full = dropped("queue_full");
  for (size_t i = 1; i < kFrameVerdictCount; ++i) {
    c.drops[i] = dropped(internal::frameVerdictName(static_cast<FrameVerdict>(i)));
  }
  for (size_t i = 0; i < internal::kFragmentDropCount; ++i) {
    c.fragment_drops[i] = dropped(internal::fragmentDropName(static_cast<internal::FragmentDrop>(i)));
  }
  c.fragments = &registry.counter("vigil_dpdk_ip_fragments_total",
                                  "IPv4 fragments handed to the reassembly table", source);
  c.reassembled = &registry.counter("vigil_dpdk_ip_reassembled_total",
                                    "IPv4 datagrams reassembled from fragments", source);
  c.fragments_merged = &registry.counter("vigil_dpdk_ip_fragments_merged_total",
                                         "IPv4 fragments that became part of a reassembled "
                                         "datagram",
                                         source);
  c.exception_tx = &registry.counter("vigil_dpdk_exception_tx_total",
                                     "Frames sent to the exception port (the kernel)", source);
  c.exception_dropped = &registry.counter(
      "vigil_dpdk_exception_dropped_total",
      "Frames for the exception port that its TX queue did not take", source);
  c.kernel_tx = &registry.counter("vigil_dpdk_kernel_tx_total",
                                  "Frames from the exception port sent out of the port", source);
  c.kernel_tx_dropped = &registry.counter(
      "vigil_dpdk_kernel_tx_dropped_total",
      "Frames from the exception port that the port's TX queue did not take", source);
}

DpdkSource::DpdkSource(DpdkSourceOptions options, MetricsRegistry& metrics, Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(options), metrics, clock)) {}

DpdkSource::~DpdkSource() { stop(); }

bool DpdkSource::validateOptions(const DpdkSourceOptions& o, std::string& error) {
  const std::string where = "DPDK source " + o.name + ": ";
  if (o.rx_queues == 0 || o.rx_queues > kMaxRxQueues) {
    error = where + "rx_queues=" + std::to_string(o.rx_queues) + " is outside [1, " +
            std::to_string(kMaxRxQueues) + "]";
    return false;
  }
  if (!o.lcores.empty() && o.lcores.size() != o.rx_queues) {
    error = where + "lcores lists " + std::to_string(o.lcores.size()) + " CPUs for " +
            std::to_string(o.rx_queues) + " RX queues; give one CPU per queue or none";
    return false;
  }
  for (uint16_t cpu : o.lcores) {
    if (cpu >= CPU_SETSIZE) {
      error = where + "lcores contains " + std::to_string(cpu) + ", beyond the largest CPU " +
              "number " + std::to_string(CPU_SETSIZE - 1);
      return false;
    }
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
  const bool kernel = o.exception == ExceptionPath::kKernel;
  const uint64_t min_pool =
      uint64_t{o.rx_queues} * (uint64_t{2} * o.rx_descriptors + o.burst_size) +
      (kernel ? uint64_t{o.rx_queues} * kExceptionDescriptors : 0);
  if (o.mbuf_pool_size < min_pool) {
    error = where + "mbuf_pool_size=" + std::to_string(o.mbuf_pool_size) +
            " is too small; it must be at least rx_queues * (2 * rx_descriptors + burst_size)" +
            (kernel ? " + rx_queues * " + std::to_string(kExceptionDescriptors) : "") + " = " +
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
  if (o.fragment_max_flows == 0 || o.fragment_max_flows > kMaxFragmentFlows) {
    error = where + "fragment_max_flows=" + std::to_string(o.fragment_max_flows) +
            " is outside [1, " + std::to_string(kMaxFragmentFlows) + "]";
    return false;
  }
  if (o.fragment_timeout_ms == 0 || o.fragment_timeout_ms > kMaxFragmentTimeoutMs) {
    error = where + "fragment_timeout_ms=" + std::to_string(o.fragment_timeout_ms) +
            " is outside [1, " + std::to_string(kMaxFragmentTimeoutMs) + "]";
    return false;
  }
  if (kernel && o.exception_port.empty()) {
    error = where +
            "exception=kernel needs exception_port, the device name of a net_tap port such as "
            "net_tap0 (add --vdev=net_tap0,iface=vigil0 to eal_args)";
    return false;
  }
  if (kernel && o.exception_port == o.port) {
    error = where + "exception_port \"" + o.exception_port +
            "\" is the receiving port itself; name the net_tap device";
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

  if (!s.startPort(error)) {
    s.stopPort();
    return false;
  }
  s.stop_requested.store(false, std::memory_order_relaxed);
  if (s.options.start_rx_threads) {
    for (uint16_t q = 0; q < s.options.rx_queues; ++q) {
      s.rx_threads.emplace_back([&s, q] {
        nameThisThread("vigil-dpdk-rx" + std::to_string(q));
        s.runQueue(q);
      });
    }
  }
  s.running = true;
  return true;
}

void DpdkSource::stop() {
  Impl& s = *impl_;
  if (!s.running) return;
  s.stop_requested.store(true, std::memory_order_release);
  for (std::thread& thread : s.rx_threads) {
    if (thread.joinable()) thread.join();
  }
  s.rx_threads.clear();
  for (auto& queue : s.queues) queue->finish();
  const internal::DpdkCounters& c = s.counters;
  VIGIL_LOG_INFO(
      "DPDK source stopping source={} received={} bytes={} truncated={} queue_full={} "
      "reassembled={} exception_tx={}",
      s.options.name, c.received->value(), c.bytes->value(), c.truncated->value(),
      c.queue_full->value(), c.reassembled->value(), c.exception_tx->value());
  s.refreshPortStats();
  s.stopPort();
  s.running = false;
}

const std::string& DpdkSource::name() const { return impl_->options.name; }
uint16_t DpdkSource::id() const { return impl_->options.id; }
Format DpdkSource::format() const { return impl_->options.format; }
const std::string& DpdkSource::tenant() const { return impl_->options.tenant; }
RawRing& DpdkSource::ring() { return *impl_->rings[0]; }

uint16_t DpdkSource::rxQueueCount() const { return static_cast<uint16_t>(impl_->rings.size()); }
RawRing& DpdkSource::queueRing(uint16_t queue) { return *impl_->rings.at(queue); }
std::unique_ptr<Source> DpdkSource::queueSource(uint16_t queue) {
  (void)impl_->rings.at(queue);  // throws std::out_of_range for a queue that does not exist
  return std::make_unique<QueueView>(*this, queue);
}
uint64_t DpdkSource::rssHashFunctions() const { return impl_->rss_hash_functions; }

#if VIGIL_WITH_DPDK
// ---------------------------------------------------------------------------------------
// Port setup and the RX threads (DPDK builds)

namespace {

// RSS functions requested with several queues. The FRAG_IPV4/FRAG_IPV6 types hash
// fragments by addresses only, so every fragment of a datagram reaches the same queue and
// its fragment table, while the UDP types spread unfragmented datagrams by 4-tuple.
constexpr uint64_t kRequestedRss = RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_FRAG_IPV4 |
                                   RTE_ETH_RSS_NONFRAG_IPV4_UDP | RTE_ETH_RSS_IPV6 |
                                   RTE_ETH_RSS_FRAG_IPV6 | RTE_ETH_RSS_NONFRAG_IPV6_UDP;

std::string dpdkError(const std::string& source, const char* call, int rc) {
  const int code = rc < 0 ? -rc : rc;
  return "DPDK source " + source + ": " + call + " failed: " + rte_strerror(code) + " (error " +
         std::to_string(code) + ")";
}

// Resolves a port given as `key` (empty: the first port, a decimal port id, or a device
// name) to a port id, or sets `error`.
bool findPort(const std::string& source, const char* key, const std::string& spec,
              uint16_t& port_id, std::string& error) {
  const std::string where = "DPDK source " + source + ": ";
  if (rte_eth_dev_count_avail() == 0) {
    error = where +
            "no DPDK port is available; a --vdev that failed to probe or a NIC not bound to "
            "vfio-pci leaves none (see the EAL log lines above)";
    return false;
  }
  if (spec.empty()) {
    RTE_ETH_FOREACH_DEV(port_id) { return true; }
  }
  uint16_t number = 0;
  const char* end = spec.data() + spec.size();
  const auto parsed = std::from_chars(spec.data(), end, number);
  if (parsed.ec == std::errc() && parsed.ptr == end) {
    if (!rte_eth_dev_is_valid_port(number)) {
      error = where + key + " " + spec + " does not exist; " +
              std::to_string(rte_eth_dev_count_avail()) + " port(s) are available";
      return false;
    }
    port_id = number;
    return true;
  }
  if (rte_eth_dev_get_port_by_name(spec.c_str(), &port_id) != 0) {
    error = where + "no port is named \"" + spec + "\" (" + key +
            "); give a port id or the device name EAL probed (for example net_pcap0)";
    return false;
  }
  return true;
}

}  // namespace

bool DpdkSource::Impl::startPort(std::string& error) {
  if (!internal::acquireEal(options.eal_args, error)) return false;
  eal_acquired = true;
  if (!findPort(options.name, "port", options.port, port_id, error)) return false;
  const bool kernel = options.exception == ExceptionPath::kKernel;
  if (kernel &&
      !findPort(options.name, "exception_port", options.exception_port, exception_port_id,
                error)) {
    return false;
  }
  if (kernel && exception_port_id == port_id) {
    error = "DPDK source " + options.name + ": exception_port \"" + options.exception_port +
            "\" is the receiving port itself; name the net_tap device";
    return false;
  }

  rte_eth_dev_info info;
  int rc = rte_eth_dev_info_get(port_id, &info);
  if (rc != 0) {
    error = dpdkError(options.name, "rte_eth_dev_info_get", rc);
    return false;
  }
  if (options.rx_queues > info.max_rx_queues) {
    error = "DPDK source " + options.name + ": rx_queues=" + std::to_string(options.rx_queues) +
            " exceeds the port's maximum of " + std::to_string(info.max_rx_queues) + " (driver " +
            info.driver_name + "); lower rx_queues" +
            (std::strcmp(info.driver_name, "net_pcap") == 0
                 ? ", or give net_pcap one rx_pcap= file per queue"
                 : "");
    return false;
  }
  // TX queues carry the exception path's traffic from the kernel out of the port.
  const uint16_t tx_queues = kernel ? options.rx_queues : 0;
  if (tx_queues > info.max_tx_queues) {
    error = "DPDK source " + options.name + ": exception=kernel needs " +
            std::to_string(tx_queues) + " TX queues but the port has at most " +
            std::to_string(info.max_tx_queues);
    return false;
  }

  rte_eth_conf conf;
  std::memset(&conf, 0, sizeof(conf));
  if (options.rx_queues > 1) {
    rss_hash_functions = kRequestedRss & info.flow_type_rss_offloads;
    if (rss_hash_functions != 0) {
      conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
      conf.rx_adv_conf.rss_conf.rss_hf = rss_hash_functions;
    } else {
      VIGIL_LOG_WARN(
          "DPDK port has no RSS for IP or UDP, so its driver alone decides the RX queue of "
          "each frame source={} driver={} rx_queues={}",
          options.name, info.driver_name, options.rx_queues);
    }
  }
  rc = rte_eth_dev_configure(port_id, options.rx_queues, tx_queues, &conf);
  if (rc != 0) {
    error = dpdkError(options.name, "rte_eth_dev_configure", rc);
    return false;
  }
  port_configured = true;

  uint16_t rx_descriptors = options.rx_descriptors;
  uint16_t tx_descriptors = kExceptionDescriptors;
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
      error = dpdkError(options.name, "rte_eth_rx_queue_setup", rc) + " for queue " +
              std::to_string(q);
      return false;
    }
  }
  for (uint16_t q = 0; q < tx_queues; ++q) {
    rc = rte_eth_tx_queue_setup(port_id, q, tx_descriptors, static_cast<unsigned>(socket),
                                nullptr);
    if (rc != 0) {
      error = dpdkError(options.name, "rte_eth_tx_queue_setup", rc) + " for queue " +
              std::to_string(q);
      return false;
    }
  }
  if (kernel && !setupExceptionPort(error)) return false;
  if (!createQueues(error)) return false;

  rc = rte_eth_dev_start(port_id);
  if (rc != 0) {
    error = dpdkError(options.name, "rte_eth_dev_start", rc);
    return false;
  }
  port_started = true;

  rc = rte_eth_promiscuous_enable(port_id);
  if (rc != 0) {
    VIGIL_LOG_WARN("DPDK promiscuous mode not enabled source={} port={} error=\"{}\"", options.name,
                   port_id, logText(rte_strerror(-rc)));
  }
  rte_eth_stats_reset(port_id);

  char device_name[RTE_ETH_NAME_MAX_LEN] = {};
  rte_eth_dev_get_name_by_port(port_id, device_name);
  VIGIL_LOG_INFO(
      "DPDK source started source={} port={} device={} driver={} numa_socket={} rx_queues={} "
      "rss_hf={:#x} rx_descriptors={} burst={} mbufs={} reassemble={} exception={}",
      options.name, port_id, device_name, info.driver_name, socket, options.rx_queues,
      rss_hash_functions, rx_descriptors, options.burst_size, options.mbuf_pool_size,
      options.reassemble_fragments, kernel ? options.exception_port : std::string("drop"));
  return true;
}

// Configures and starts the exception port with one RX and one TX queue per RX queue of
// the port, so each RX thread owns a queue pair on both ports.
bool DpdkSource::Impl::setupExceptionPort(std::string& error) {
  rte_eth_dev_info info;
  int rc = rte_eth_dev_info_get(exception_port_id, &info);
  if (rc != 0) {
    error = dpdkError(options.name, "rte_eth_dev_info_get (exception_port)", rc);
    return false;
  }
  const uint16_t queue_count = options.rx_queues;
  if (queue_count > info.max_rx_queues || queue_count > info.max_tx_queues) {
    error = "DPDK source " + options.name + ": exception_port " + options.exception_port +
            " supports " + std::to_string(std::min(info.max_rx_queues, info.max_tx_queues)) +
            " queues but rx_queues=" + std::to_string(queue_count) + " needs one each";
    return false;
  }

  rte_eth_conf conf;
  std::memset(&conf, 0, sizeof(conf));
  rc = rte_eth_dev_configure(exception_port_id, queue_count, queue_count, &conf);
  if (rc != 0) {
    error = dpdkError(options.name, "rte_eth_dev_configure (exception_port)", rc);
    return false;
  }
  exception_configured = true;

  const int socket = rte_eth_dev_socket_id(exception_port_id);
  for (uint16_t q = 0; q < queue_count; ++q) {
    rc = rte_eth_rx_queue_setup(exception_port_id, q, kExceptionDescriptors,
                                static_cast<unsigned>(socket), nullptr, pool);
    if (rc == 0) {
      rc = rte_eth_tx_queue_setup(exception_port_id, q, kExceptionDescriptors,
                                  static_cast<unsigned>(socket), nullptr);
    }
    if (rc != 0) {
      error = dpdkError(options.name, "exception_port queue setup", rc) + " for queue " +
              std::to_string(q);
      return false;
    }
  }

  rc = rte_eth_dev_start(exception_port_id);
  if (rc != 0) {
    error = dpdkError(options.name, "rte_eth_dev_start (exception_port)", rc);
    return false;
  }
  exception_started = true;
  VIGIL_LOG_INFO("DPDK exception port started source={} exception_port={} port_id={} queues={}",
                 options.name, options.exception_port, exception_port_id, queue_count);
  return true;
}

bool DpdkSource::Impl::createQueues(std::string& error) {
  queues.clear();
  for (uint16_t q = 0; q < options.rx_queues; ++q) {
    internal::RxQueueConfig config;
    config.port_id = port_id;
    config.queue_id = q;
    config.burst_size = options.burst_size;
    config.source_id = options.id;
    config.idle_sleep_us = options.idle_sleep_us;
    config.socket = rte_eth_dev_socket_id(port_id);
    config.exception_to_port = options.exception == ExceptionPath::kKernel;
    config.exception_port_id = exception_port_id;
    config.reassemble = options.reassemble_fragments;
    config.fragment_max_flows = options.fragment_max_flows;
    config.fragment_timeout_ms = options.fragment_timeout_ms;
    auto queue = std::make_unique<internal::RxQueue>(config, ports, *rings[q], counters,
                                                     *queue_frames[q], clock);
    if (!queue->init(options.name, error)) return false;
    queues.push_back(std::move(queue));
  }
  return true;
}

// Releases whatever startPort() set up, in reverse order.
void DpdkSource::Impl::stopPort() {
  for (auto& queue : queues) queue->finish();
  queues.clear();
  if (port_started) {
    const int rc = rte_eth_dev_stop(port_id);
    if (rc != 0) {
      VIGIL_LOG_WARN("DPDK rte_eth_dev_stop failed source={} port={} error=\"{}\"", options.name,
                     port_id, logText(rte_strerror(-rc)));
    }
    port_started = false;
  }
  if (exception_started) {
    rte_eth_dev_stop(exception_port_id);
    exception_started = false;
  }
  if (exception_configured) {
    rte_eth_dev_close(exception_port_id);
    exception_configured = false;
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

// The thread of one RX queue: pin it when lcores is set, register it with EAL, then poll
// until stop() sets the stop flag. Queue 0's thread also refreshes the port gauges.
void DpdkSource::Impl::runQueue(uint16_t queue) {
  if (!options.lcores.empty()) {
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    CPU_SET(options.lcores[queue], &cpus);
    const int rc = pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
    if (rc != 0) {
      VIGIL_LOG_WARN("DPDK RX thread not pinned source={} queue={} cpu={} error=\"{}\"",
                     options.name, queue, options.lcores[queue], logText(std::strerror(rc)));
    }
  }
  // A registered thread gets an lcore id, so mbuf alloc and free use the pool's per-lcore
  // cache. An unregistered thread goes to the shared pool ring for every mbuf.
  const bool registered = rte_thread_register() == 0;
  if (!registered) {
    VIGIL_LOG_WARN("DPDK RX thread not registered as an lcore source={} queue={} error=\"{}\"",
                   options.name, queue, logText(rte_strerror(rte_errno)));
  }
  internal::RxQueue& rx = *queues[queue];
  int64_t next_stats_ns = monotonicNs() + kPortStatsIntervalNs;
  while (!stop_requested.load(std::memory_order_acquire)) {
    rx.poll();
    if (queue != 0) continue;
    const int64_t now_ns = monotonicNs();
    if (now_ns >= next_stats_ns) {
      refreshPortStats();
      next_stats_ns = now_ns + kPortStatsIntervalNs;
    }
  }
  if (registered) rte_thread_unregister();
}

uint16_t DpdkSource::pollOnce(uint16_t queue) {
  Impl& s = *impl_;
  if (!s.running || s.options.start_rx_threads || queue >= s.queues.size()) return 0;
  if (rte_lcore_id() == LCORE_ID_ANY) rte_thread_register();
  return s.queues[queue]->poll();
}

#else  // !VIGIL_WITH_DPDK

bool DpdkSource::Impl::startPort(std::string& error) {
  error = "DPDK source " + options.name +
          ": this build has no DPDK support (VIGIL_WITH_DPDK=OFF); install libdpdk-dev and "
          "rebuild, or use a kernel UDP source";
  return false;
}

bool DpdkSource::Impl::setupExceptionPort(std::string&) { return false; }
bool DpdkSource::Impl::createQueues(std::string&) { return false; }
void DpdkSource::Impl::stopPort() {}
void DpdkSource::Impl::runQueue(uint16_t) {}
void DpdkSource::Impl::refreshPortStats() {}
uint16_t DpdkSource::pollOnce(uint16_t) { return 0; }

#endif  // VIGIL_WITH_DPDK

}  // namespace vigil::dataplane

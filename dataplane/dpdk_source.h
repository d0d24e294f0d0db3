// A Source that receives syslog datagrams from a DPDK port (a NIC bound to vfio-pci, or a
// virtual device such as net_pcap). The RX loop polls bursts, decodes Ethernet, VLAN/QinQ,
// IPv4/IPv6 and UDP itself, and copies each accepted payload into a RawMessage slot.
// DPDK headers stay inside dpdk_source.cc, so including this header adds no DPDK flags.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "dataplane/source.h"

namespace vigil::dataplane {

// Handling of frames that are valid but not syslog for this source (ARP, TCP, ICMP, UDP to
// other ports).
enum class ExceptionPath : uint8_t {
  kDrop,    // count them under vigil_source_dropped_total{reason=...} and free them
  kKernel,  // send them to `exception_port` (a net_tap device), and send what the kernel
            // writes to that device out of the port
};

struct DpdkSourceOptions {
  std::string name = "dpdk0";  // `source` label of every metric, and the name in logs
  uint16_t id = 0;             // RawMessage::source_id
  std::string tenant;
  Format format = Format::kAuto;

  // EAL arguments without the program name, e.g. {"-l", "0", "--vdev=net_pcap0,rx_pcap=a.pcap"}.
  std::vector<std::string> eal_args;
  // Port to open: empty takes the first available port, a decimal number is a port
  // id, anything else is a device name as EAL reports it ("net_pcap0", "0000:03:00.0").
  std::string port;

  // RX queues, each polled by its own thread into its own ring. With more than one, the
  // port spreads flows over the queues by RSS on IP addresses and UDP ports, when it
  // supports RSS (see rssHashFunctions()).
  uint16_t rx_queues = 1;
  // CPU of each RX thread, one per queue. Empty leaves the threads unpinned.
  std::vector<uint16_t> lcores;
  uint16_t rx_descriptors = 1024;           // RX ring size per queue
  uint16_t burst_size = 32;                 // mbufs per rte_eth_rx_burst call, 1..kMaxBurst
  // Shared by all queues: at least rx_queues * (2 * rx_descriptors + burst_size), plus
  // rx_queues * kExceptionDescriptors with the kernel exception path.
  uint32_t mbuf_pool_size = 8191;
  std::vector<uint16_t> udp_ports = {514};  // accepted UDP destination ports
  size_t max_message_bytes = 65536;         // longer payloads are cut and marked truncated
  size_t ring_capacity = 1024;              // RawMessage slots per queue, rounded up to 2^n
  // Sleep after a burst that returned no packets, in microseconds. 0 polls without pause
  // and keeps one core at 100%. A pause lowers idle CPU use, but traffic arriving during
  // it must fit in the RX descriptors or the NIC drops it (counted as imissed).
  uint32_t idle_sleep_us = 20;

  // IPv4 reassembly with DPDK's rte_ip_frag, one fragment table per queue. Off: IPv4
  // fragments are counted as ip_fragment and dropped. IPv6 fragments are always dropped.
  bool reassemble_fragments = false;
  uint32_t fragment_max_flows = 1024;   // datagrams being reassembled at once, per queue
  uint32_t fragment_timeout_ms = 2000;  // a datagram not complete by then is dropped

  ExceptionPath exception = ExceptionPath::kDrop;
  // Device name of the exception port, for example "net_tap0" from the EAL argument
  // --vdev=net_tap0,iface=vigil0. Required with ExceptionPath::kKernel.
  std::string exception_port;

  // False: start() sets up the port but launches no RX thread, and the caller polls each
  // queue with pollOnce() (benchmarks that measure one core).
  bool start_rx_threads = true;
};

// Process-wide EAL rule: rte_eal_init runs at most once per process. The first start()
// calls it with that source's eal_args. Later sources in the same process share the EAL
// and must pass identical eal_args. The last stop() calls rte_eal_cleanup, after which no
// DpdkSource can start in this process, and start() after a failed rte_eal_init fails too.
//
// Threads: each RX queue has its own std::thread owned by the source, registered with
// rte_thread_register() so the mempool's per-lcore cache applies. It is the only thread
// that calls rte_eth_rx_burst on its queue and rte_eth_tx_burst on the TX queue of the same
// number, so no lock is needed. start() and stop() are control-plane calls from one thread.
//
// Rings: queue q publishes to queueRing(q), and ring() is queueRing(0). The pipeline
// drains Source objects, so a caller with rx_queues > 1 hands it this source plus
// queueSource(q) for q = 1 .. rx_queues - 1.
class DpdkSource final : public Source {
 public:
  static constexpr uint16_t kMaxBurst = 512;
  static constexpr uint16_t kMaxRxQueues = 64;
  // Descriptors of each exception port queue (RX and TX).
  static constexpr uint16_t kExceptionDescriptors = 512;
  static constexpr uint32_t kMaxFragmentFlows = 65536;
  static constexpr uint32_t kMaxFragmentTimeoutMs = 60000;

  // Allocates the ring (ring_capacity slots of max_message_bytes, both clamped to the
  // ranges validateOptions() accepts) and registers the source's counters and port gauges
  // in `metrics`. `metrics` and `clock` must outlive the source. Does not touch DPDK.
  DpdkSource(DpdkSourceOptions options, MetricsRegistry& metrics,
             Clock& clock = RealClock::instance());
  ~DpdkSource() override;

  DpdkSource(const DpdkSource&) = delete;
  DpdkSource& operator=(const DpdkSource&) = delete;

  // Checks the options without touching DPDK. Returns false with `error` naming the bad
  // value and the accepted range.
  static bool validateOptions(const DpdkSourceOptions& options, std::string& error);

  // Validates the options, initializes EAL (see the process-wide rule above), finds the
  // port, creates the mbuf pool, configures rx_queues RX queues (with RSS when there are
  // several and the port supports it), sets up the exception port, starts the ports in
  // promiscuous mode and launches one RX thread per queue. Returns false with `error` set (EAL's own error text
  // when rte_eal_init fails, so the caller can log it and carry on with kernel sources).
  // A failed start() releases whatever it set up.
  bool start(std::string& error) override;
  // Sets the stop flag (each RX loop checks it once per burst), joins the threads, frees
  // the fragments still being reassembled (counted as fragment_shutdown), stops and
  // closes the ports, frees the pool and releases the EAL. Idempotent.
  void stop() override;
  // Always false: a port has no end, even a net_pcap port that ran out of packets.
  bool finished() const override { return false; }

  const std::string& name() const override;
  uint16_t id() const override;
  Format format() const override;
  const std::string& tenant() const override;
  RawRing& ring() override;

  uint16_t rxQueueCount() const;
  // The ring of RX queue `queue` (< rxQueueCount()).
  RawRing& queueRing(uint16_t queue);
  // Returns a Source whose ring() is queueRing(queue), with this source's name plus
  // ".q<queue>", id, format and tenant. Its start() and stop() do nothing, because this
  // source runs every queue. It must not outlive this source.
  std::unique_ptr<Source> queueSource(uint16_t queue);
  // RSS hash functions (RTE_ETH_RSS_* bits) the port was configured with: the requested
  // IPv4/IPv6 and UDP functions masked by the port's flow_type_rss_offloads. 0 with one
  // queue, or when the port supports none of them (net_pcap, net_ring), and then each
  // driver decides which queue gets a frame. Valid after a successful start().
  uint64_t rssHashFunctions() const;
  // Polls one burst on `queue` from the calling thread, when start_rx_threads is false.
  // Returns the frames read. Each queue needs its own polling thread, which is registered
  // with EAL on its first call.
  uint16_t pollOnce(uint16_t queue);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::dataplane

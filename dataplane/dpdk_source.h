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

  uint16_t rx_queues = 1;                   // only 1 is supported for now
  uint16_t rx_descriptors = 1024;           // RX ring size per queue
  uint16_t burst_size = 32;                 // mbufs per rte_eth_rx_burst call, 1..kMaxBurst
  uint32_t mbuf_pool_size = 8191;           // at least 2 * rx_descriptors + burst_size
  std::vector<uint16_t> udp_ports = {514};  // accepted UDP destination ports
  size_t max_message_bytes = 65536;         // longer payloads are cut and marked truncated
  size_t ring_capacity = 1024;              // RawMessage slots, rounded up to a power of two
  // Sleep after a burst that returned no packets, in microseconds. 0 polls without pause
  // and keeps one core at 100%. A pause lowers idle CPU use, but traffic arriving during
  // it must fit in the RX descriptors or the NIC drops it (counted as imissed).
  uint32_t idle_sleep_us = 20;
};

// Process-wide EAL rule: rte_eal_init runs at most once per process. The first start()
// calls it with that source's eal_args. Later sources in the same process share the EAL
// and must pass identical eal_args. The last stop() calls rte_eal_cleanup, after which no
// DpdkSource can start in this process, and start() after a failed rte_eal_init fails too.
//
// Threads: the RX loop runs on a std::thread owned by the source, registered with
// rte_thread_register() so the mempool's per-lcore cache applies. It is the only thread
// that calls rte_eth_rx_burst on the queue, so no lock is needed. start() and stop() are
// control-plane calls from one thread.
class DpdkSource final : public Source {
 public:
  static constexpr uint16_t kMaxBurst = 512;

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
  // port, creates the mbuf pool, configures one RX queue, starts the port in promiscuous
  // mode and launches the RX thread. Returns false with `error` set (EAL's own error text
  // when rte_eal_init fails, so the caller can log it and carry on with kernel sources).
  // A failed start() releases whatever it set up.
  bool start(std::string& error) override;
  // Sets the stop flag (the RX loop checks it once per burst), joins the thread, stops
  // and closes the port, frees the pool and releases the EAL. Idempotent.
  void stop() override;
  // Always false: a port has no end, even a net_pcap port that ran out of packets.
  bool finished() const override { return false; }

  const std::string& name() const override;
  uint16_t id() const override;
  Format format() const override;
  const std::string& tenant() const override;
  RawRing& ring() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::dataplane

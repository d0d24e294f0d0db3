// The RX loop of one DPDK queue: poll a burst, decode each frame, reassemble IPv4
// fragments, publish syslog payloads to the queue's ring, send other traffic to the
// exception port, and count every frame. One RxQueue belongs to one thread, because
// rte_eth_rx_burst and rte_eth_tx_burst are not thread-safe on one queue. DPDK types are
// only forward-declared here, so this header adds no DPDK flags.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/metrics.h"
#include "dataplane/internal/packet_decode.h"
#include "dataplane/source.h"

struct rte_mbuf;
struct rte_ip_frag_tbl;
struct rte_ip_frag_death_row;

namespace vigil::dataplane::internal {

// Largest burst a queue polls, and so the size of its per-burst arrays.
inline constexpr uint16_t kMaxRxBurst = 512;

// Reason a fragment was dropped by or before the fragment table. Each has its own
// `reason` label.
enum class FragmentDrop : uint8_t { kTableFull, kTimeout, kInvalid, kShutdown };
inline constexpr size_t kFragmentDropCount = 4;

// "fragment_table_full", "fragment_timeout", "fragment_invalid", "fragment_shutdown".
std::string_view fragmentDropName(FragmentDrop reason);

// Counters of one source, shared by all of its queues. Each queue adds its burst totals
// once per burst (relaxed atomic adds), never per packet.
struct DpdkCounters {
  Counter* received = nullptr;
  Counter* bytes = nullptr;
  Counter* truncated = nullptr;
  Counter* queue_full = nullptr;
  // vigil_source_dropped_total per FrameVerdict. The kAccepted entry stays null.
  std::array<Counter*, kFrameVerdictCount> drops{};
  Counter* fragments = nullptr;         // IPv4 fragments handed to the fragment table
  Counter* reassembled = nullptr;       // datagrams the table completed
  Counter* fragments_merged = nullptr;  // fragments that became part of those datagrams
  std::array<Counter*, kFragmentDropCount> fragment_drops{};  // vigil_source_dropped_total
  Counter* exception_tx = nullptr;       // frames sent to the exception port
  Counter* exception_dropped = nullptr;  // frames the exception port's TX queue did not take
  Counter* kernel_tx = nullptr;          // frames from the exception port sent out the port
  Counter* kernel_tx_dropped = nullptr;  // of those, frames the port's TX queue did not take
};

struct RxQueueConfig {
  uint16_t port_id = 0;
  uint16_t queue_id = 0;
  uint16_t burst_size = 32;
  uint16_t source_id = 0;
  uint32_t idle_sleep_us = 0;
  int socket = -1;  // NUMA socket for the fragment table, SOCKET_ID_ANY when -1

  // Frames that are not for the dataplane go to TX queue `queue_id` of this port, and
  // frames read from its RX queue `queue_id` go out of `port_id`'s TX queue `queue_id`.
  bool exception_to_port = false;
  uint16_t exception_port_id = 0;

  bool reassemble = false;
  uint32_t fragment_max_flows = 1024;
  uint32_t fragment_timeout_ms = 2000;
};

class RxQueue {
 public:
  // `ports`, `ring`, `counters`, `queue_frames` and `clock` must outlive the queue.
  // Allocates the linear frame buffer. Does not touch DPDK.
  RxQueue(const RxQueueConfig& config, const UdpPortSet& ports, RawRing& ring,
          const DpdkCounters& counters, Counter& queue_frames, Clock& clock);
  ~RxQueue();

  RxQueue(const RxQueue&) = delete;
  RxQueue& operator=(const RxQueue&) = delete;

  // Creates the fragment table when reassembly is on. Returns false with `error` set
  // when rte_ip_frag_table_create fails. Control plane, before the first poll().
  bool init(const std::string& source_name, std::string& error);

  // Polls one burst from the port and, with an exception port, one from that port too.
  // Returns the number of frames read from the port. Never allocates and takes no lock.
  uint16_t poll();

  // Frees the fragments still waiting in the table, counted as fragment_shutdown, and
  // destroys it. Call from the polling thread after its last poll(), or from any thread
  // once that thread has ended. Idempotent.
  void finish();

 private:
  struct BurstTally;

  void handleFrame(rte_mbuf* m, int64_t receive_ns, uint64_t tsc, BurstTally& tally);
  void dispatch(rte_mbuf* m, FrameVerdict verdict, const UdpDatagram& datagram,
                int64_t receive_ns, BurstTally& tally);
  void reassemble(rte_mbuf* m, const UdpDatagram& datagram, int64_t receive_ns, uint64_t tsc,
                  BurstTally& tally);
  void expireFragments(uint64_t tsc, FragmentDrop reason, BurstTally& tally);
  void freeDeathRow();
  void sendExceptions(BurstTally& tally);
  void forwardFromExceptionPort(BurstTally& tally);
  void flushTally(BurstTally& tally);

  RxQueueConfig config_;
  const UdpPortSet& ports_;
  RawRing& ring_;
  const DpdkCounters& counters_;
  Counter& queue_frames_;
  Clock& clock_;

  std::unique_ptr<uint8_t[]> linear_frame_;  // kLinearFrameBytes
  std::unique_ptr<BurstTally> tally_;
  std::unique_ptr<std::array<rte_mbuf*, kMaxRxBurst>> burst_;
  std::unique_ptr<std::array<rte_mbuf*, kMaxRxBurst>> to_free_;
  std::unique_ptr<std::array<rte_mbuf*, kMaxRxBurst>> to_exception_;
  uint16_t free_count_ = 0;
  uint16_t exception_count_ = 0;

  rte_ip_frag_tbl* fragment_table_ = nullptr;
  std::unique_ptr<rte_ip_frag_death_row> death_row_;
};

}  // namespace vigil::dataplane::internal

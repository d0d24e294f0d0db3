#include "dataplane/internal/dpdk_rx_queue.h"

namespace vigil::dataplane::internal {

std::string_view fragmentDropName(FragmentDrop reason) {
  switch (reason) {
    case FragmentDrop::kTableFull:
      return "fragment_table_full";
    case FragmentDrop::kTimeout:
      return "fragment_timeout";
    case FragmentDrop::kInvalid:
      return "fragment_invalid";
    case FragmentDrop::kShutdown:
      return "fragment_shutdown";
  }
  return "fragment_unknown";
}

// Counters one burst adds up locally and flushes once, so the per-packet path does no
// atomic operations.
struct RxQueue::BurstTally {
  std::array<uint32_t, kFrameVerdictCount> verdicts{};
  std::array<uint32_t, kFragmentDropCount> fragment_drops{};
  uint32_t frames = 0;
  uint32_t queue_full = 0;
  uint32_t truncated = 0;
  uint64_t bytes = 0;
  uint32_t fragments = 0;
  uint32_t reassembled = 0;
  uint32_t fragments_merged = 0;
  uint32_t exception_tx = 0;
  uint32_t exception_dropped = 0;
  uint32_t kernel_tx = 0;
  uint32_t kernel_tx_dropped = 0;
};

}  // namespace vigil::dataplane::internal

#if VIGIL_WITH_DPDK

// rte_ip_frag_table_del_expired_entries is still marked experimental in DPDK 22.11, and it
// is the only call that expires flows without a new fragment arriving for them.
#define ALLOW_EXPERIMENTAL_API 1
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_ip_frag.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <thread>

namespace vigil::dataplane::internal {
namespace {

// Frames of several segments are copied into a buffer of this size before decoding. The
// largest IP packet (65535 bytes) plus Ethernet and a few VLAN tags fits. A longer frame
// is decoded from its first kLinearFrameBytes, so it counts as truncated_frame.
constexpr size_t kLinearFrameBytes = 65536 + 128;

// Flows per hash bucket of the fragment table. rte_ip_frag_table_create rounds the bucket
// count up to a power of two and stores bucket_count * kFragmentBucketEntries flows at
// most, while `max_flows` caps the flows in use.
constexpr uint32_t kFragmentBucketEntries = 4;

// One failing rte_ipv4_frag_reassemble_packet call puts at most the flow's fragments plus
// the new one on the death row, so the row is emptied before it has less room than that.
constexpr uint32_t kDeathRowHeadroom = RTE_LIBRTE_IP_FRAG_MAX_FRAG + 1;

// The verdicts a kernel exception path forwards: traffic that is valid but not syslog for
// this source, such as ARP, TCP, ICMP and UDP to other ports.
bool isForKernel(FrameVerdict verdict) {
  return verdict == FrameVerdict::kNonIp || verdict == FrameVerdict::kNonUdp ||
         verdict == FrameVerdict::kPortNotAccepted;
}

}  // namespace

RxQueue::RxQueue(const RxQueueConfig& config, const UdpPortSet& ports, RawRing& ring,
                 const DpdkCounters& counters, Counter& queue_frames, Clock& clock)
    : config_(config),
      ports_(ports),
      ring_(ring),
      counters_(counters),
      queue_frames_(queue_frames),
      clock_(clock),
      linear_frame_(std::make_unique<uint8_t[]>(kLinearFrameBytes)),
      tally_(std::make_unique<BurstTally>()),
      burst_(std::make_unique<std::array<rte_mbuf*, kMaxRxBurst>>()),
      to_free_(std::make_unique<std::array<rte_mbuf*, kMaxRxBurst>>()),
      to_exception_(std::make_unique<std::array<rte_mbuf*, kMaxRxBurst>>()),
      death_row_(std::make_unique<rte_ip_frag_death_row>()) {
  death_row_->cnt = 0;
}

RxQueue::~RxQueue() { finish(); }

bool RxQueue::init(const std::string& source_name, std::string& error) {
  if (!config_.reassemble || fragment_table_ != nullptr) return true;
  const uint64_t cycles_per_ms = (rte_get_tsc_hz() + 999) / 1000;
  fragment_table_ = rte_ip_frag_table_create(config_.fragment_max_flows, kFragmentBucketEntries,
                                             config_.fragment_max_flows,
                                             cycles_per_ms * config_.fragment_timeout_ms,
                                             config_.socket);
  if (fragment_table_ == nullptr) {
    error = "DPDK source " + source_name + ": rte_ip_frag_table_create failed for queue " +
            std::to_string(config_.queue_id) + " with fragment_max_flows=" +
            std::to_string(config_.fragment_max_flows) + ": " + rte_strerror(rte_errno) +
            "; lower fragment_max_flows or give EAL more memory (-m MB)";
    return false;
  }
  return true;
}

void RxQueue::finish() {
  if (fragment_table_ == nullptr) return;
  BurstTally& tally = *tally_;
  expireFragments(std::numeric_limits<uint64_t>::max(), FragmentDrop::kShutdown, tally);
  flushTally(tally);
  rte_ip_frag_table_destroy(fragment_table_);
  fragment_table_ = nullptr;
}

uint16_t RxQueue::poll() {
  BurstTally& tally = *tally_;
  std::array<rte_mbuf*, kMaxRxBurst>& burst = *burst_;
  const uint64_t tsc = fragment_table_ != nullptr ? rte_rdtsc() : 0;
  // Expiring before the burst, with the burst's timestamp, means that no flow inside
  // rte_ipv4_frag_reassemble_packet is stale. So every fragment it puts on the death row
  // is a table-full or invalid drop, never a timeout.
  if (fragment_table_ != nullptr) expireFragments(tsc, FragmentDrop::kTimeout, tally);

  const uint16_t count =
      rte_eth_rx_burst(config_.port_id, config_.queue_id, burst.data(), config_.burst_size);
  if (count > 0) {
    const int64_t receive_ns = clock_.nowNs();
    tally.frames += count;
    for (uint16_t i = 0; i < count; ++i) handleFrame(burst[i], receive_ns, tsc, tally);
    sendExceptions(tally);
    if (free_count_ > 0) rte_pktmbuf_free_bulk(to_free_->data(), free_count_);
    free_count_ = 0;
    freeDeathRow();
  }
  if (config_.exception_to_port) forwardFromExceptionPort(tally);
  flushTally(tally);

  if (count == 0 && config_.idle_sleep_us > 0) {
    std::this_thread::sleep_for(std::chrono::microseconds(config_.idle_sleep_us));
  }
  return count;
}

void RxQueue::handleFrame(rte_mbuf* m, int64_t receive_ns, uint64_t tsc, BurstTally& tally) {
  const size_t len = std::min<size_t>(rte_pktmbuf_pkt_len(m), kLinearFrameBytes);
  const auto* data = static_cast<const uint8_t*>(
      rte_pktmbuf_read(m, 0, static_cast<uint32_t>(len), linear_frame_.get()));
  UdpDatagram datagram;
  const FrameVerdict verdict = decodeFrame({data, data == nullptr ? 0 : len}, ports_, datagram);
  if (verdict == FrameVerdict::kIpFragment && datagram.ip_version == 4 &&
      fragment_table_ != nullptr) {
    reassemble(m, datagram, receive_ns, tsc, tally);
    return;
  }
  dispatch(m, verdict, datagram, receive_ns, tally);
}

// Publishes, forwards or drops one decoded frame and takes ownership of its mbuf.
void RxQueue::dispatch(rte_mbuf* m, FrameVerdict verdict, const UdpDatagram& datagram,
                       int64_t receive_ns, BurstTally& tally) {
  if (config_.exception_to_port && isForKernel(verdict)) {
    (*to_exception_)[exception_count_++] = m;
    return;
  }
  (*to_free_)[free_count_++] = m;
  if (verdict != FrameVerdict::kAccepted) {
    ++tally.verdicts[static_cast<size_t>(verdict)];
    return;
  }
  RawMessage* slot = ring_.tryClaim();
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
  slot->source_id = config_.source_id;
  slot->vlan = datagram.vlan;
  ring_.publish();

  ++tally.verdicts[static_cast<size_t>(FrameVerdict::kAccepted)];
  tally.truncated += slot->truncated ? 1 : 0;
  tally.bytes += len;
}

// Hands an IPv4 fragment to the table. When it completes a datagram, the datagram (a
// chain of the fragments' mbufs) is decoded and dispatched like a received frame.
void RxQueue::reassemble(rte_mbuf* m, const UdpDatagram& datagram, int64_t receive_ns,
                         uint64_t tsc, BurstTally& tally) {
  ++tally.fragments;
  // The table chains fragments segment by segment, and a fragment without payload would
  // only be dropped inside it. A fragment in several segments means a jumbo frame, which
  // IP fragmentation for a 1500-byte MTU never produces. The single-segment check comes
  // first, so the IP header read below lies inside the first segment.
  auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, datagram.l2_bytes);
  if (m->nb_segs != 1 || rte_be_to_cpu_16(ip->total_length) <= datagram.l3_bytes) {
    ++tally.fragment_drops[static_cast<size_t>(FragmentDrop::kInvalid)];
    (*to_free_)[free_count_++] = m;
    return;
  }
  m->l2_len = datagram.l2_bytes;
  m->l3_len = datagram.l3_bytes;

  rte_ip_frag_death_row& row = *death_row_;
  const uint32_t row_before = row.cnt;
  rte_mbuf* whole = rte_ipv4_frag_reassemble_packet(fragment_table_, &row, m, tsc, ip);
  const uint32_t row_added = row.cnt - row_before;
  // NOTE: DPDK reports no reason for a drop, so the reason is inferred from DPDK 22.11's
  // ip_frag code. With stale flows already expired, a call that moves exactly one mbuf
  // (the new fragment) to the death row found no free flow entry. A call that moves
  // more freed a whole flow: a duplicate or overlapping fragment, or more than
  // RTE_LIBRTE_IP_FRAG_MAX_FRAG fragments.
  if (row_added == 1) {
    ++tally.fragment_drops[static_cast<size_t>(FragmentDrop::kTableFull)];
  } else if (row_added > 1) {
    tally.fragment_drops[static_cast<size_t>(FragmentDrop::kInvalid)] += row_added;
  }
  if (row.cnt > RTE_IP_FRAG_DEATH_ROW_MBUF_LEN - kDeathRowHeadroom) freeDeathRow();
  if (whole == nullptr) return;

  ++tally.reassembled;
  tally.fragments_merged += whole->nb_segs;
  const size_t len = std::min<size_t>(rte_pktmbuf_pkt_len(whole), kLinearFrameBytes);
  const auto* data = static_cast<const uint8_t*>(
      rte_pktmbuf_read(whole, 0, static_cast<uint32_t>(len), linear_frame_.get()));
  UdpDatagram joined;
  const FrameVerdict verdict = decodeFrame({data, data == nullptr ? 0 : len}, ports_, joined);
  dispatch(whole, verdict, joined, receive_ns, tally);
}

// Moves every flow older than the timeout at `tsc` to the death row, counting its
// fragments under `reason`, and frees them. The DPDK call stops early when the row is
// nearly full, so it repeats until a pass expires nothing.
void RxQueue::expireFragments(uint64_t tsc, FragmentDrop reason, BurstTally& tally) {
  rte_ip_frag_death_row& row = *death_row_;
  while (true) {
    const uint32_t before = row.cnt;
    rte_ip_frag_table_del_expired_entries(fragment_table_, &row, tsc);
    const uint32_t added = row.cnt - before;
    tally.fragment_drops[static_cast<size_t>(reason)] += added;
    freeDeathRow();
    if (added == 0) return;
  }
}

void RxQueue::freeDeathRow() {
  if (death_row_->cnt != 0) rte_ip_frag_free_death_row(death_row_.get(), 0);
}

// Sends the burst's frames for the kernel to the exception port and frees what its TX
// queue did not take.
void RxQueue::sendExceptions(BurstTally& tally) {
  if (exception_count_ == 0) return;
  rte_mbuf** frames = to_exception_->data();
  const uint16_t sent = rte_eth_tx_burst(config_.exception_port_id, config_.queue_id, frames,
                                         exception_count_);
  tally.exception_tx += sent;
  tally.exception_dropped += exception_count_ - sent;
  if (sent < exception_count_) rte_pktmbuf_free_bulk(frames + sent, exception_count_ - sent);
  exception_count_ = 0;
}

// Sends what the kernel wrote to the exception port (ARP replies, for example) out of the
// port, so the host's stack can answer on the wire.
void RxQueue::forwardFromExceptionPort(BurstTally& tally) {
  rte_mbuf** frames = to_exception_->data();
  const uint16_t count = rte_eth_rx_burst(config_.exception_port_id, config_.queue_id, frames,
                                          config_.burst_size);
  if (count == 0) return;
  const uint16_t sent = rte_eth_tx_burst(config_.port_id, config_.queue_id, frames, count);
  tally.kernel_tx += sent;
  tally.kernel_tx_dropped += count - sent;
  if (sent < count) rte_pktmbuf_free_bulk(frames + sent, count - sent);
}

void RxQueue::flushTally(BurstTally& tally) {
  const DpdkCounters& c = counters_;
  const uint32_t accepted = tally.verdicts[static_cast<size_t>(FrameVerdict::kAccepted)];
  if (tally.frames != 0) queue_frames_.add(tally.frames);
  if (accepted != 0) c.received->add(accepted);
  if (tally.bytes != 0) c.bytes->add(tally.bytes);
  if (tally.truncated != 0) c.truncated->add(tally.truncated);
  if (tally.queue_full != 0) c.queue_full->add(tally.queue_full);
  for (size_t i = 1; i < kFrameVerdictCount; ++i) {
    if (tally.verdicts[i] != 0) c.drops[i]->add(tally.verdicts[i]);
  }
  for (size_t i = 0; i < kFragmentDropCount; ++i) {
    if (tally.fragment_drops[i] != 0) c.fragment_drops[i]->add(tally.fragment_drops[i]);
  }
  if (tally.fragments != 0) c.fragments->add(tally.fragments);
  if (tally.reassembled != 0) c.reassembled->add(tally.reassembled);
  if (tally.fragments_merged != 0) c.fragments_merged->add(tally.fragments_merged);
  if (tally.exception_tx != 0) c.exception_tx->add(tally.exception_tx);
  if (tally.exception_dropped != 0) c.exception_dropped->add(tally.exception_dropped);
  if (tally.kernel_tx != 0) c.kernel_tx->add(tally.kernel_tx);
  if (tally.kernel_tx_dropped != 0) c.kernel_tx_dropped->add(tally.kernel_tx_dropped);
  tally = BurstTally{};
}

}  // namespace vigil::dataplane::internal

#endif  // VIGIL_WITH_DPDK

#if !VIGIL_WITH_DPDK
// Without DPDK no RxQueue is ever created; DpdkSource only needs these to compile.
struct rte_ip_frag_death_row {};

namespace vigil::dataplane::internal {
RxQueue::~RxQueue() = default;
void RxQueue::finish() {}
}  // namespace vigil::dataplane::internal
#endif  // !VIGIL_WITH_DPDK

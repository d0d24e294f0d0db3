// A Source that receives syslog datagrams on a UDP socket. One thread reads batches with
// recvmmsg() straight into the ring's slots, so a datagram is copied once (kernel to slot)
// and nothing is allocated per datagram.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "dataplane/framing.h"
#include "dataplane/source.h"

namespace vigil::dataplane {

struct UdpSourceOptions {
  std::string name = "udp0";  // `source` label of every metric, and the name in logs
  uint16_t id = 0;            // RawMessage::source_id
  std::string tenant;
  Format format = Format::kAuto;
  // IPV4:PORT or [IPV6]:PORT, numeric only. Port 0 binds an ephemeral port (boundPort()).
  std::string listen = "127.0.0.1:514";
  // Longer datagrams are cut to this size and flagged truncated.
  size_t max_message_bytes = kDefaultMaxMessageBytes;
  size_t ring_capacity = 1024;  // RawMessage slots, rounded up to a power of two
  size_t batch_size = 32;       // datagrams per recvmmsg() call, 1..kMaxBatch
  int rcvbuf_bytes = 0;         // SO_RCVBUF request in bytes; 0 keeps the kernel default
};

// Counters: the shared SourceCounters. An empty datagram is dropped (reason empty), as an
// empty line is on file and stream sources. A datagram that arrives while the ring is
// full is read and dropped (reason queue_full). Datagrams the kernel dropped because the socket
// buffer was full are counted as reason kernel (read through SO_RXQ_OVFL, so the count is
// updated only when a later datagram arrives). stop() reads the datagrams still queued
// in the socket until EAGAIN and publishes them, waiting for ring slots until the
// deadline that beginStop() set. The rest are counted as reason shutdown.
//
// Threads: start() and stop() from one control thread; the receive thread is the ring's
// only producer.
class UdpSource final : public Source {
 public:
  static constexpr size_t kMaxBatch = 256;

  // Validates `options` and allocates the ring. Returns nullptr with `error` naming the
  // bad value. `metrics` and `clock` must outlive the source. Does not open the socket.
  static std::unique_ptr<UdpSource> create(UdpSourceOptions options, MetricsRegistry& metrics,
                                           std::string& error,
                                           Clock& clock = RealClock::instance());
  ~UdpSource() override;

  // Binds the socket and starts the receive thread. Fails with the address and the errno
  // text when the bind or SO_RCVBUF fails, or when the source already ran.
  bool start(std::string& error) override;
  void beginStop(int64_t drain_deadline_ns) override;
  void stop() override;
  bool finished() const override { return false; }

  const std::string& name() const override { return options_.name; }
  uint16_t id() const override { return options_.id; }
  Format format() const override { return options_.format; }
  const std::string& tenant() const override { return options_.tenant; }
  RawRing& ring() override { return *ring_; }

  // The bound port after a successful start(), else 0.
  uint16_t boundPort() const { return bound_port_; }
  const SourceCounters& counters() const { return counters_; }

 private:
  UdpSource(UdpSourceOptions options, const sockaddr_storage& addr, socklen_t addr_len,
            MetricsRegistry& metrics, Clock& clock);

  void run();
  // Reads one batch. Returns the number of datagrams read, 0 when the socket is empty.
  int receiveBatch();
  int receiveIntoRing(size_t count);
  // Reads one batch into a scratch buffer and counts it in `dropped`. Returns the count.
  int receiveAndDrop(Counter& dropped);
  void drainOnStop();
  void prepareHeader(size_t i, char* buffer, size_t buffer_len);
  void countKernelDrops(const msghdr& header);

  UdpSourceOptions options_;
  sockaddr_storage listen_addr_{};
  socklen_t listen_addr_len_ = 0;
  Clock& clock_;
  SourceCounters counters_;
  std::unique_ptr<RawRing> ring_;

  // recvmmsg() arguments, one entry per batch position, allocated once in the constructor.
  std::vector<mmsghdr> headers_;
  std::vector<iovec> iovecs_;
  std::vector<sockaddr_storage> peers_;
  std::vector<char> control_;
  char drop_buffer_[64] = {};  // target of datagrams read only to be dropped

  int fd_ = -1;
  uint16_t bound_port_ = 0;
  uint32_t last_kernel_drops_ = 0;
  bool started_ = false;
  std::atomic<bool> stop_{false};
  int64_t drain_deadline_ns_ = 0;        // set by beginStop(), read by stop() on the same thread
  int wake_fd_ = -1;                     // eventfd that stop() writes to end the thread's poll()
  std::atomic<uint64_t> error_logs_{0};  // rate limit for receive errors
  std::atomic<uint64_t> drop_logs_{0};   // rate limit for queue_full warnings
  std::thread thread_;
};

}  // namespace vigil::dataplane

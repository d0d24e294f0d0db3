#include "dataplane/udp_source.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "common/log.h"
#include "common/thread_name.h"
#include "dataplane/internal/socket_util.h"

namespace vigil::dataplane {
namespace {

constexpr int kPollTimeoutMs = 200;
// Batches read per poll() wake-up before the stop flag is checked again.
constexpr int kBatchesPerWake = 64;
constexpr size_t kControlBytes = CMSG_SPACE(sizeof(uint32_t));

}  // namespace

std::unique_ptr<UdpSource> UdpSource::create(UdpSourceOptions options, MetricsRegistry& metrics,
                                             std::string& error, Clock& clock) {
  if (!validateSourceLimits(options.name, options.max_message_bytes, options.ring_capacity,
                            error)) {
    return nullptr;
  }
  if (options.batch_size < 1 || options.batch_size > kMaxBatch) {
    error = "source " + options.name + ": batch_size=" + std::to_string(options.batch_size) +
            " is outside [1, " + std::to_string(kMaxBatch) + "]";
    return nullptr;
  }
  if (options.rcvbuf_bytes < 0) {
    error = "source " + options.name + ": rcvbuf_bytes=" + std::to_string(options.rcvbuf_bytes) +
            " is negative; use 0 for the kernel default";
    return nullptr;
  }
  auto addr = internal::parseListenAddress(options.listen, error);
  if (!addr) {
    error = "source " + options.name + ": " + error;
    return nullptr;
  }
  return std::unique_ptr<UdpSource>(
      new UdpSource(std::move(options), addr->storage, addr->len, metrics, clock));
}

UdpSource::UdpSource(UdpSourceOptions options, const sockaddr_storage& addr, socklen_t addr_len,
                     MetricsRegistry& metrics, Clock& clock)
    : options_(std::move(options)),
      listen_addr_(addr),
      listen_addr_len_(addr_len),
      clock_(clock),
      counters_(registerSourceCounters(metrics, options_.name)),
      ring_(makeRawRing(options_.ring_capacity, options_.max_message_bytes)),
      headers_(options_.batch_size),
      iovecs_(options_.batch_size),
      peers_(options_.batch_size),
      control_(options_.batch_size * kControlBytes) {}

UdpSource::~UdpSource() { stop(); }

bool UdpSource::start(std::string& error) {
  if (started_) {
    error = "source " + options_.name + " was already started; create a new source instead";
    return false;
  }
  internal::SocketAddress addr;
  addr.storage = listen_addr_;
  addr.len = listen_addr_len_;
  fd_ = internal::bindSocket(addr, SOCK_DGRAM, error);
  if (fd_ < 0) {
    error = "source " + options_.name + ": " + error;
    return false;
  }
  if (options_.rcvbuf_bytes > 0 && ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &options_.rcvbuf_bytes,
                                                sizeof(options_.rcvbuf_bytes)) != 0) {
    error = "source " + options_.name + ": setting SO_RCVBUF to " +
            std::to_string(options_.rcvbuf_bytes) + " failed: " + internal::errnoText(errno);
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  int one = 1;
  if (::setsockopt(fd_, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one)) != 0) {
    VIGIL_LOG_WARN("SO_RXQ_OVFL unavailable, kernel drops are not counted source={} error=\"{}\"",
                   options_.name, logText(internal::errnoText(errno)));
  }
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    error = "source " + options_.name + ": eventfd() failed: " + internal::errnoText(errno);
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  bound_port_ = internal::localPort(fd_);
  started_ = true;
  stop_.store(false);
  // Log before the thread starts. The first log call sets up spdlog's registry, and doing
  // that on one thread keeps ThreadSanitizer runs free of reports from inside spdlog.
  VIGIL_LOG_INFO("source started source={} kind=udp listen={} port={} ring={} max_message={}",
                 options_.name, options_.listen, bound_port_, ring_->capacity(),
                 options_.max_message_bytes);
  thread_ = std::thread([this] {
    nameThisThread("vigil-src-udp");
    run();
  });
  return true;
}

void UdpSource::beginStop(int64_t drain_deadline_ns) {
  if (!thread_.joinable()) return;
  drain_deadline_ns_ = drain_deadline_ns;
  stop_.store(true);
  uint64_t increment = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &increment, sizeof(increment));
}

void UdpSource::stop() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  uint64_t increment = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &increment, sizeof(increment));
  thread_.join();
  drainOnStop();
  ::close(fd_);
  ::close(wake_fd_);
  fd_ = -1;
  wake_fd_ = -1;
  VIGIL_LOG_INFO(
      "source stopped source={} received={} dropped_queue_full={} dropped_kernel={} "
      "dropped_shutdown={}",
      options_.name, counters_.received->value(), counters_.dropped_queue_full->value(),
      counters_.dropped_kernel->value(), counters_.dropped_shutdown->value());
}

void UdpSource::run() {
  pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  while (!stop_.load(std::memory_order_relaxed)) {
    int ready = ::poll(fds, 2, kPollTimeoutMs);
    if (ready < 0 && errno != EINTR) {
      if (shouldLogPow2(error_logs_)) {
        VIGIL_LOG_ERROR("poll failed source={} error=\"{}\"", options_.name,
                        logText(internal::errnoText(errno)));
      }
      continue;
    }
    if (ready <= 0 || (fds[0].revents & POLLIN) == 0) continue;
    for (int i = 0; i < kBatchesPerWake; ++i) {
      if (receiveBatch() <= 0) break;
    }
  }
}

int UdpSource::receiveBatch() {
  size_t free_slots = ring_->freeSlots();
  if (free_slots == 0) return receiveAndDrop(*counters_.dropped_queue_full);
  return receiveIntoRing(std::min(free_slots, options_.batch_size));
}

void UdpSource::prepareHeader(size_t i, char* buffer, size_t buffer_len) {
  iovecs_[i] = {buffer, buffer_len};
  msghdr& h = headers_[i].msg_hdr;
  h.msg_name = &peers_[i];
  h.msg_namelen = sizeof(sockaddr_storage);
  h.msg_iov = &iovecs_[i];
  h.msg_iovlen = 1;
  h.msg_control = control_.data() + i * kControlBytes;
  h.msg_controllen = kControlBytes;
  h.msg_flags = 0;
  headers_[i].msg_len = 0;
}

int UdpSource::receiveIntoRing(size_t count) {
  for (size_t i = 0; i < count; ++i) {
    RawMessage* slot = ring_->claimAhead(i);
    prepareHeader(i, slot->data.get(), slot->capacity);
  }
  int n = ::recvmmsg(fd_, headers_.data(), static_cast<unsigned>(count), MSG_DONTWAIT, nullptr);
  if (n <= 0) {
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
        shouldLogPow2(error_logs_)) {
      VIGIL_LOG_ERROR("recvmmsg failed source={} error=\"{}\"", options_.name,
                      logText(internal::errnoText(errno)));
    }
    return 0;
  }
  int64_t now_ns = clock_.nowNs();
  uint64_t bytes = 0;
  uint64_t truncated = 0;
  size_t kept = 0;
  for (int i = 0; i < n; ++i) {
    const mmsghdr& header = headers_[static_cast<size_t>(i)];
    countKernelDrops(header.msg_hdr);
    // An empty datagram is dropped as `empty`, like an empty line on a stream source.
    if (header.msg_len == 0) continue;
    RawMessage* slot = ring_->claimAhead(kept);
    if (kept != static_cast<size_t>(i)) {
      // Close the gap an empty datagram left: the bytes sit in slot i's buffer, so the
      // buffers swap instead of being copied.
      std::swap(slot->data, ring_->claimAhead(static_cast<size_t>(i))->data);
    }
    slot->len = std::min<size_t>(header.msg_len, slot->capacity);
    slot->truncated = (header.msg_hdr.msg_flags & MSG_TRUNC) != 0;
    slot->receive_ns = now_ns;
    slot->peer = internal::ipFromSockaddr(peers_[static_cast<size_t>(i)]);
    slot->source_id = options_.id;
    bytes += slot->len;
    truncated += slot->truncated ? 1 : 0;
    ++kept;
  }
  ring_->publish(kept);
  counters_.received->add(kept);
  counters_.bytes->add(bytes);
  if (truncated > 0) counters_.truncated->add(truncated);
  if (kept < static_cast<size_t>(n)) counters_.dropped_empty->add(static_cast<size_t>(n) - kept);
  return n;
}

// Reads the datagrams the kernel still queues for the socket, so the ones it has accepted
// end in received or dropped{reason=shutdown} instead of vanishing at close().
void UdpSource::drainOnStop() {
  // Each queued datagram takes more than one byte of the receive buffer, so this bound
  // ends the drain even while a sender keeps sending.
  const size_t max_datagrams = internal::receiveBufferBytes(fd_, size_t{1} << 20);
  size_t read = 0;
  while (read < max_datagrams) {
    waitForFreeSlot(*ring_, drain_deadline_ns_);
    const size_t free_slots = ring_->freeSlots();
    const int n = free_slots > 0 ? receiveIntoRing(std::min(free_slots, options_.batch_size))
                                 : receiveAndDrop(*counters_.dropped_shutdown);
    if (n <= 0) break;
    read += static_cast<size_t>(n);
  }
}

int UdpSource::receiveAndDrop(Counter& dropped) {
  for (size_t i = 0; i < options_.batch_size; ++i) {
    prepareHeader(i, drop_buffer_, sizeof(drop_buffer_));
  }
  int n = ::recvmmsg(fd_, headers_.data(), static_cast<unsigned>(options_.batch_size), MSG_DONTWAIT,
                     nullptr);
  if (n <= 0) return 0;
  for (int i = 0; i < n; ++i) countKernelDrops(headers_[static_cast<size_t>(i)].msg_hdr);
  dropped.add(static_cast<uint64_t>(n));
  if (&dropped == counters_.dropped_queue_full && shouldLogPow2(drop_logs_)) {
    VIGIL_LOG_WARN("ring full, datagrams dropped source={} dropped_queue_full={}", options_.name,
                   counters_.dropped_queue_full->value());
  }
  return n;
}

void UdpSource::countKernelDrops(const msghdr& header) {
  for (const cmsghdr* c = CMSG_FIRSTHDR(&header); c != nullptr;
       c = CMSG_NXTHDR(const_cast<msghdr*>(&header), const_cast<cmsghdr*>(c))) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_RXQ_OVFL) continue;
    uint32_t total = 0;
    std::memcpy(&total, CMSG_DATA(c), sizeof(total));
    // The kernel reports a running total for the socket; unsigned subtraction survives
    // its wrap-around.
    uint32_t delta = total - last_kernel_drops_;
    last_kernel_drops_ = total;
    if (delta > 0) counters_.dropped_kernel->add(delta);
  }
}

}  // namespace vigil::dataplane

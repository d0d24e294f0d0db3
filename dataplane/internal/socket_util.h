// Socket helpers shared by the UDP and TCP sources: listen-address parsing, binding,
// sockaddr conversion and a wake-up eventfd for the source threads.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/ip.h"

namespace vigil::dataplane::internal {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t len = 0;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
};

// Parses "HOST:PORT" where HOST is a numeric IPv4 address or a bracketed IPv6 address
// ("127.0.0.1:514", "[::1]:6514"). PORT 0 makes the kernel pick an ephemeral port. Returns
// nullopt with `error` naming the value and the accepted forms.
std::optional<SocketAddress> parseListenAddress(std::string_view text, std::string& error);

// Creates a socket of `type` (SOCK_DGRAM or SOCK_STREAM), non-blocking and close-on-exec,
// with SO_REUSEADDR for SOCK_STREAM only, and binds it to `addr`. Returns the descriptor, or -1
// with `error` naming the address and the errno text.
int bindSocket(const SocketAddress& addr, int type, std::string& error);

// The local port a bound socket got (the ephemeral one when bound to port 0); 0 on error.
uint16_t localPort(int fd);

// Converts an AF_INET or AF_INET6 address; nullopt for other families.
std::optional<IpAddr> ipFromSockaddr(const sockaddr_storage& addr);

// "ADDR:PORT" ("[ADDR]:PORT" for IPv6) for logs.
std::string formatSockaddr(const sockaddr_storage& addr);

// strerror text for `err`, thread-safe.
std::string errnoText(int err);

// Reads and throws away what is waiting on the non-blocking socket `fd`, up to
// `max_bytes`, through a stack buffer. Returns the number of bytes read; stops at
// EAGAIN, end of stream or an error. Allocates nothing.
size_t discardReadable(int fd, size_t max_bytes);

// Reads what is waiting on socket `fd` into `buffer` without blocking. Returns the number
// of bytes read, or 0 at EAGAIN, end of stream or an error.
size_t readWaiting(int fd, char* buffer, size_t capacity);

// The socket's receive buffer size in bytes as getsockopt(SO_RCVBUF) reports it (Linux
// doubles the requested value), or `fallback` when the call fails.
size_t receiveBufferBytes(int fd, size_t fallback);

// An eventfd that a control thread writes to wake a source thread out of poll/epoll.
class WakeFd {
 public:
  WakeFd();
  ~WakeFd();
  WakeFd(const WakeFd&) = delete;
  WakeFd& operator=(const WakeFd&) = delete;

  // -1 when eventfd() failed; the owner reports that from start().
  int fd() const { return fd_; }
  void wake();
  void drain();

 private:
  int fd_ = -1;
};

}  // namespace vigil::dataplane::internal

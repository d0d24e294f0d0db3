#include "dataplane/internal/socket_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace vigil::dataplane::internal {

std::optional<SocketAddress> parseListenAddress(std::string_view text, std::string& error) {
  auto invalid = [&](std::string_view why) -> std::optional<SocketAddress> {
    error = "invalid listen address '" + std::string(text) + "': " + std::string(why) +
            "; expected IPV4:PORT or [IPV6]:PORT, e.g. 127.0.0.1:514";
    return std::nullopt;
  };
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return invalid("missing port");
  std::string_view host = text.substr(0, colon);
  std::string_view port_text = text.substr(colon + 1);

  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return invalid("port is not a number in 0..65535");
  }

  SocketAddress out;
  bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  std::string host_str(bracketed ? host.substr(1, host.size() - 2) : host);
  if (bracketed) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
    if (inet_pton(AF_INET6, host_str.c_str(), &sin6->sin6_addr) != 1) {
      return invalid("host is not a numeric IPv6 address");
    }
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(static_cast<uint16_t>(port));
    out.len = sizeof(sockaddr_in6);
    return out;
  }
  auto* sin = reinterpret_cast<sockaddr_in*>(&out.storage);
  if (inet_pton(AF_INET, host_str.c_str(), &sin->sin_addr) != 1) {
    return invalid("host is not a numeric IPv4 address (put IPv6 in brackets)");
  }
  sin->sin_family = AF_INET;
  sin->sin_port = htons(static_cast<uint16_t>(port));
  out.len = sizeof(sockaddr_in);
  return out;
}

int bindSocket(const SocketAddress& addr, int type, std::string& error) {
  int fd = ::socket(addr.storage.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = "socket() failed: " + errnoText(errno);
    return -1;
  }
  // SO_REUSEADDR lets a TCP listener rebind while old connections sit in TIME_WAIT. On UDP
  // it would let a second socket share the port silently, so UDP goes without it.
  int one = 1;
  if (type == SOCK_STREAM) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, addr.get(), addr.len) != 0) {
    int err = errno;
    ::close(fd);
    error = "bind to " + formatSockaddr(addr.storage) + " failed: " + errnoText(err);
    return -1;
  }
  return fd;
}

uint16_t localPort(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return 0;
}

std::optional<IpAddr> ipFromSockaddr(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&addr);
    return IpAddr::fromV4(ntohl(sin->sin_addr.s_addr));
  }
  if (addr.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    IpAddr ip;
    std::memcpy(ip.bytes.data(), &sin6->sin6_addr, 16);
    return ip;
  }
  return std::nullopt;
}

std::string formatSockaddr(const sockaddr_storage& addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
    return std::string(buf) + ":" + std::to_string(ntohs(sin->sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
    // Appending instead of "[" + std::string(buf) avoids GCC 12's false -Wrestrict at -O3
    // (GCC bug 105329), which breaks the release build with warnings as errors.
    std::string out = "[";
    out += buf;
    out += "]:";
    out += std::to_string(ntohs(sin6->sin6_port));
    return out;
  }
  return "unknown-family";
}

std::string errnoText(int err) {
  char buf[256];
  // GNU strerror_r returns a pointer that may or may not be `buf`.
  const char* text = strerror_r(err, buf, sizeof(buf));
  return std::string(text) + " (errno " + std::to_string(err) + ")";
}

WakeFd::WakeFd() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

WakeFd::~WakeFd() {
  if (fd_ >= 0) ::close(fd_);
}

void WakeFd::wake() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(fd_, &one, sizeof(one));
}

void WakeFd::drain() {
  uint64_t value = 0;
  [[maybe_unused]] ssize_t n = ::read(fd_, &value, sizeof(value));
}

size_t discardReadable(int fd, size_t max_bytes) {
  char buffer[4096];
  size_t total = 0;
  while (total < max_bytes) {
    const size_t want = std::min(sizeof(buffer), max_bytes - total);
    ssize_t n = ::recv(fd, buffer, want, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    total += static_cast<size_t>(n);
  }
  return total;
}

size_t readWaiting(int fd, char* buffer, size_t capacity) {
  while (true) {
    ssize_t n = ::recv(fd, buffer, capacity, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    return n > 0 ? static_cast<size_t>(n) : 0;
  }
}

size_t receiveBufferBytes(int fd, size_t fallback) {
  int bytes = 0;
  socklen_t len = sizeof(bytes);
  if (::getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, &len) != 0 || bytes <= 0) return fallback;
  return static_cast<size_t>(bytes);
}

}  // namespace vigil::dataplane::internal

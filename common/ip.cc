#include "common/ip.h"

#include <arpa/inet.h>

#include <cstring>

namespace vigil {
namespace {

constexpr std::array<uint8_t, 12> kV4MappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

// True for a port number: 1 to 5 decimal digits, at most 65535.
bool isPort(std::string_view text) {
  if (text.empty() || text.size() > 5) return false;
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value <= 65535;
}

// Strips "[...]" and a trailing ":port" so the rest is a bare address. Returns an empty
// view when the brackets or the port are malformed ("[::1]x", "192.0.2.1:http").
std::string_view stripBracketsAndPort(std::string_view text) {
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return {};
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !isPort(rest.substr(1)))) return {};
    return text.substr(1, close - 1);
  }
  // One colon means IPv4 with a port; IPv6 always has at least two.
  size_t colon = text.find(':');
  if (colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
    if (!isPort(text.substr(colon + 1))) return {};
    return text.substr(0, colon);
  }
  return text;
}

}  // namespace

bool IpAddr::isV4() const {
  return std::memcmp(bytes.data(), kV4MappedPrefix.data(), kV4MappedPrefix.size()) == 0;
}

uint32_t IpAddr::v4() const {
  return (uint32_t{bytes[12]} << 24) | (uint32_t{bytes[13]} << 16) | (uint32_t{bytes[14]} << 8) |
         uint32_t{bytes[15]};
}

IpAddr IpAddr::fromV4(uint32_t host_order) {
  IpAddr a;
  std::memcpy(a.bytes.data(), kV4MappedPrefix.data(), kV4MappedPrefix.size());
  a.bytes[12] = static_cast<uint8_t>(host_order >> 24);
  a.bytes[13] = static_cast<uint8_t>(host_order >> 16);
  a.bytes[14] = static_cast<uint8_t>(host_order >> 8);
  a.bytes[15] = static_cast<uint8_t>(host_order);
  return a;
}

std::optional<IpAddr> parseIp(std::string_view text) {
  text = stripBracketsAndPort(text);
  // INET6_ADDRSTRLEN is 46; anything longer cannot be an address.
  char buf[64];
  if (text.empty() || text.size() >= sizeof(buf)) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';

  IpAddr out;
  in_addr v4;
  if (text.find(':') == std::string_view::npos) {
    if (inet_pton(AF_INET, buf, &v4) != 1) return std::nullopt;
    return IpAddr::fromV4(ntohl(v4.s_addr));
  }
  if (inet_pton(AF_INET6, buf, out.bytes.data()) != 1) return std::nullopt;
  return out;
}

std::optional<IpPrefix> parsePrefix(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto addr = parseIp(text.substr(0, slash));
  if (!addr) return std::nullopt;
  std::string_view len_text = text.substr(slash + 1);
  if (len_text.empty() || len_text.size() > 3) return std::nullopt;
  unsigned len = 0;
  for (char c : len_text) {
    if (c < '0' || c > '9') return std::nullopt;
    len = len * 10 + static_cast<unsigned>(c - '0');
  }
  bool v4_text = text.substr(0, slash).find(':') == std::string_view::npos;
  if (v4_text) {
    if (len > 32) return std::nullopt;
    len += 96;
  } else if (len > 128) {
    return std::nullopt;
  }
  IpPrefix p{*addr, static_cast<uint8_t>(len)};
  for (unsigned bit = len; bit < 128; ++bit) {
    p.addr.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  }
  return p;
}

size_t formatIp(const IpAddr& addr, char* buf, size_t buf_len) {
  const char* ok = nullptr;
  auto len = static_cast<socklen_t>(buf_len);
  if (addr.isV4()) {
    in_addr v4{htonl(addr.v4())};
    ok = inet_ntop(AF_INET, &v4, buf, len);
  } else {
    ok = inet_ntop(AF_INET6, addr.bytes.data(), buf, len);
  }
  return ok == nullptr ? 0 : std::strlen(buf);
}

std::string formatIp(const IpAddr& addr) {
  char buf[INET6_ADDRSTRLEN];
  return std::string(buf, formatIp(addr, buf, sizeof(buf)));
}

}  // namespace vigil

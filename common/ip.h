// IP addresses as the appliance stores them: 16 bytes, IPv4 kept in IPv4-mapped form so
// one table serves both families and ::ffff:a.b.c.d always equals a.b.c.d.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vigil {

struct IpAddr {
  // Network byte order. IPv4 addresses are stored as ::ffff:a.b.c.d.
  std::array<uint8_t, 16> bytes{};

  bool isV4() const;
  // The IPv4 address in host byte order; only meaningful when isV4().
  uint32_t v4() const;
  static IpAddr fromV4(uint32_t host_order);

  friend bool operator==(const IpAddr&, const IpAddr&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const IpAddr& a) {
    return H::combine_contiguous(std::move(h), a.bytes.data(), a.bytes.size());
  }
};

// Parses an address in any common spelling: dotted IPv4, compressed or expanded IPv6 in
// either case, an IPv6 with a dotted IPv4 tail, and either of those wrapped in brackets
// and/or followed by ":port" ("[::1]:443", "192.0.2.1:80"). IPv4-mapped IPv6 comes back
// as IPv4. Returns nullopt for anything else. Never allocates.
std::optional<IpAddr> parseIp(std::string_view text);

// Parses "ADDR/LEN". An IPv4 prefix length is returned in IPv6 terms (LEN + 96) so that
// it applies to the mapped form. Host bits beyond the prefix are cleared.
struct IpPrefix {
  IpAddr addr;
  uint8_t len = 0;  // 0..128, in IPv6 bits
};
std::optional<IpPrefix> parsePrefix(std::string_view text);

// Canonical text: dotted quad for IPv4, RFC 5952 compressed lower case for IPv6.
std::string formatIp(const IpAddr& addr);
// Same, into `buf` (at least 46 bytes for IPv6). Returns the length written. Never allocates.
size_t formatIp(const IpAddr& addr, char* buf, size_t buf_len);

}  // namespace vigil

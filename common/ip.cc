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

// Parses dotted-decimal IPv4 the way inet_pton(AF_INET) does: exactly four parts of 1 to
// 3 digits, each at most 255, with no leading zero ("010" is rejected), and nothing else.
// It reads the view in place, where inet_pton needs a NUL-terminated copy.
// The value of the decimal digit at `p`, or a number above 9 when it is no digit.
inline unsigned digitAt(const char* p) { return static_cast<unsigned>(static_cast<uint8_t>(*p)) - '0'; }

// Dotted-decimal IPv4: four parts of one to three digits, 0 to 255, without leading
// zeros. Reads each part's digits in turn instead of testing every byte for each case.
bool parseV4(std::string_view text, uint32_t* out) {
  if (text.size() < 7 || text.size() > 15) return false;
  const char* p = text.data();
  const char* const end = p + text.size();
  uint32_t value = 0;
  for (int part = 0; part < 4; ++part) {
    if (p == end) return false;
    const unsigned first = digitAt(p);
    if (first > 9) return false;
    unsigned octet = first;
    ++p;
    if (p != end && digitAt(p) <= 9) {
      if (first == 0) return false;  // a leading zero
      octet = octet * 10 + digitAt(p);
      ++p;
      if (p != end && digitAt(p) <= 9) {
        octet = octet * 10 + digitAt(p);
        ++p;
        if (octet > 255) return false;
      }
    }
    value = (value << 8) | octet;
    if (part < 3) {
      if (p == end || *p != '.') return false;
      ++p;
    }
  }
  if (p != end) return false;
  *out = value;
  return true;
}

// Writes `value` (0 to 255) in decimal at `p` and returns the end of the digits.
char* writeOctet(char* p, unsigned value) {
  if (value >= 100) *p++ = static_cast<char>('0' + value / 100);
  if (value >= 10) *p++ = static_cast<char>('0' + value / 10 % 10);
  *p++ = static_cast<char>('0' + value % 10);
  return p;
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
  uint32_t v4_value = 0;
  // Addresses in events are usually bare IPv4, so that form is tried first.
  if (parseV4(text, &v4_value)) return IpAddr::fromV4(v4_value);
  text = stripBracketsAndPort(text);
  // INET6_ADDRSTRLEN is 46; anything longer cannot be an address.
  char buf[64];
  if (text.empty() || text.size() >= sizeof(buf)) return std::nullopt;
  // inet_pton would stop at a NUL and ignore what follows it.
  if (std::memchr(text.data(), '\0', text.size()) != nullptr) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';

  IpAddr out;
  if (text.find(':') == std::string_view::npos) {
    if (!parseV4(text, &v4_value)) return std::nullopt;
    return IpAddr::fromV4(v4_value);
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
  if (addr.isV4()) {
    // Written here because inet_ntop formats IPv4 through sprintf. Like inet_ntop, it
    // writes nothing when the text and its NUL do not fit.
    char text[INET_ADDRSTRLEN];
    char* end = text;
    for (int i = 12; i < 16; ++i) {
      if (i != 12) *end++ = '.';
      end = writeOctet(end, addr.bytes[i]);
    }
    const auto len = static_cast<size_t>(end - text);
    if (len >= buf_len) return 0;
    std::memcpy(buf, text, len);
    buf[len] = '\0';
    return len;
  }
  const char* ok = inet_ntop(AF_INET6, addr.bytes.data(), buf, static_cast<socklen_t>(buf_len));
  return ok == nullptr ? 0 : std::strlen(buf);
}

std::string formatIp(const IpAddr& addr) {
  char buf[INET6_ADDRSTRLEN];
  return std::string(buf, formatIp(addr, buf, sizeof(buf)));
}

}  // namespace vigil

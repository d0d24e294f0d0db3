#include "dataplane/internal/vendor_fields.h"

#include <cstring>

#include "common/ip.h"

namespace vigil::dataplane::internal {

bool addPrefixedField(Event& event, std::string_view prefix, std::string_view key,
                      std::string_view value) {
  char* name = event.arena.alloc(prefix.size() + key.size());
  if (name == nullptr) {
    event.flags |= kFlagArenaFull;
    return false;
  }
  std::memcpy(name, prefix.data(), prefix.size());
  std::memcpy(name + prefix.size(), key.data(), key.size());
  return event.addField({name, prefix.size() + key.size()}, value);
}

std::optional<uint16_t> parsePort(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value == 0 || value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

void setAddress(std::optional<IpAddr>& target, std::string_view text) {
  if (auto ip = parseAddress(text)) target = *ip;
}

std::optional<IpAddr> parseAddress(std::string_view text) {
  // Dotted IPv4 under the rules of glibc's inet_pton(AF_INET), which parseIp() calls:
  // exactly four parts, each 0..255 without a leading zero. Any text this loop does not
  // accept goes to parseIp(), which gives the same result for a bad dotted quad and also
  // reads IPv6, brackets and ports.
  if (text.empty() || text.size() >= 64) return parseIp(text);
  uint32_t address = 0;
  uint32_t part = 0;
  size_t digits = 0;
  size_t parts = 0;
  for (const char c : text) {
    if (c >= '0' && c <= '9') {
      if (digits > 0 && part == 0) return parseIp(text);
      part = part * 10 + static_cast<uint32_t>(c - '0');
      if (part > 255) return parseIp(text);
      if (digits++ == 0) ++parts;
    } else if (c == '.' && digits > 0 && parts < 4) {
      address = (address << 8) | part;
      part = 0;
      digits = 0;
    } else {
      return parseIp(text);
    }
  }
  if (parts != 4 || digits == 0) return parseIp(text);
  return IpAddr::fromV4((address << 8) | part);
}

size_t formatAddress(const IpAddr& addr, char* out, size_t out_len) {
  if (!addr.isV4()) return formatIp(addr, out, out_len);
  char text[16];
  size_t len = 0;
  for (size_t i = 12; i < 16; ++i) {
    const unsigned octet = addr.bytes[i];
    if (octet >= 100) text[len++] = static_cast<char>('0' + octet / 100);
    if (octet >= 10) text[len++] = static_cast<char>('0' + octet / 10 % 10);
    text[len++] = static_cast<char>('0' + octet % 10);
    if (i != 15) text[len++] = '.';
  }
  if (len >= out_len) return 0;
  std::memcpy(out, text, len);
  out[len] = '\0';
  return len;
}

}  // namespace vigil::dataplane::internal

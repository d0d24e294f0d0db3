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
  if (auto ip = parseIp(text)) target = *ip;
}

}  // namespace vigil::dataplane::internal

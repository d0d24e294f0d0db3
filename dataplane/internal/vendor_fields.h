// Helpers shared by the CEF and LEEF parsers, which both store vendor key=value pairs
// as "<format>.<key>" fields and map a few well-known keys onto the normalized event.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/event.h"

namespace vigil::dataplane::internal {

// Adds the field "<prefix><key>" with `value`. The name is written into the event arena.
// Past Event::kMaxFields fields the pair goes to the event's overflow area
// (kFlagFieldsOverflow). Returns false, with the pair dropped, when the arena is full
// (kFlagArenaFull).
bool addPrefixedField(Event& event, std::string_view prefix, std::string_view key,
                      std::string_view value);

// Parses a decimal port 1..65535. Returns nullopt for anything else.
std::optional<uint16_t> parsePort(std::string_view text);

// Sets event.src_ip or event.dst_ip from `text` when it is an IPv4 or IPv6 address.
void setAddress(std::optional<IpAddr>& target, std::string_view text);

// Parses an address exactly as vigil::parseIp() does, with the same result for every
// input. Text of only digits and dots (dotted IPv4, the common case) is read here
// without the copy and the inet_pton() call of parseIp(); any other text goes to
// parseIp(). Never allocates. Thread-safe.
std::optional<IpAddr> parseAddress(std::string_view text);

// Writes `addr` as vigil::formatIp() does and returns the length, or 0 when `out_len`
// cannot hold the text and its terminating NUL. IPv4 is written here without the
// inet_ntop() and sprintf() calls of formatIp(). Never allocates. Thread-safe.
size_t formatAddress(const IpAddr& addr, char* out, size_t out_len);

}  // namespace vigil::dataplane::internal

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

}  // namespace vigil::dataplane::internal

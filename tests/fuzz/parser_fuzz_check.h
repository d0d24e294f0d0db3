// Shared body of the parser fuzz targets: parses one framed message with a forced format
// and aborts when a result breaks an invariant the pipeline relies on. ASan and UBSan
// catch memory and arithmetic faults; these checks catch wrong results that look valid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/event.h"
#include "common/ip.h"
#include "dataplane/parser.h"
#include "simdjson.h"

namespace vigil::fuzz {

inline constexpr size_t kParserArenaBytes = 64 * 1024;
inline constexpr int64_t kParserReceiveNs = 1'717'200'000'000'000'000;  // 2024-06-01T00:00Z

inline void require(bool condition) {
  if (!condition) std::abort();
}

// True when `part` lies inside the bytes of `whole` (empty views are always inside).
inline bool inside(std::string_view part, const char* begin, size_t size) {
  if (part.empty()) return true;
  return part.data() >= begin && part.data() + part.size() <= begin + size;
}

// Parses `input` as one message in `format` and aborts when an invariant breaks. Raw stays
// as received but for a trailing line end, and the header views point into the event's
// arena, never into freed or foreign memory. Counts stay inside their limits, fields past
// the table are in the overflow area and flagged, and the format is known. A parse error
// keeps the receive time as event time. The message is valid UTF-8 whenever the arena had
// room to repair it.
inline void parseAndCheck(dataplane::Format format, int32_t utc_offset_s,
                          std::string_view input) {
  static Event event(kParserArenaBytes);
  if (input.size() > kParserArenaBytes / 2) return;
  dataplane::ParseOptions options;
  options.format = format;
  options.default_utc_offset_s = utc_offset_s;

  event.reset();
  event.raw = event.arena.copy(input);
  event.receive_ns = kParserReceiveNs;
  event.peer = parseIp("192.0.2.1");
  dataplane::parseEvent(event, options);

  // parseEvent drops one trailing LF and then one trailing CR as transport framing. Every
  // other byte of raw stays as received.
  std::string_view framed = input;
  if (!framed.empty() && framed.back() == '\n') framed.remove_suffix(1);
  if (!framed.empty() && framed.back() == '\r') framed.remove_suffix(1);
  require(event.raw == framed);
  require(event.field_count <= Event::kMaxFields);
  // Overflow fields exist only past a full table, and the flag says so.
  require(event.overflowFields() == 0 || event.field_count == Event::kMaxFields);
  require(event.has(kFlagFieldsOverflow) || event.overflowFields() == 0);
  size_t visited = 0;
  event.visitFields([&](const Field& field) {
    ++visited;
    // Names and values lie in the arena or in static storage (fixed names such as
    // "cef.version", "true"); a view into freed parser memory would fail ASan here.
    require(field.name.size() < kParserArenaBytes && field.value.size() < kParserArenaBytes);
    return true;
  });
  require(visited == event.totalFields());
  require(event.hit_count == 0);
  require(event.format != EventFormat::kUnknown);
  if (event.has(kFlagParseError)) {
    require(event.format == EventFormat::kRaw);
    require(event.timestamp_ns == kParserReceiveNs);
  }
  // raw was the first copy after reset(), so it starts the arena.
  const char* arena = event.raw.data();
  const size_t arena_size = event.arena.capacity();
  if (!input.empty()) {
    for (std::string_view part : {event.message, event.host, event.app, event.procid,
                                  event.msgid, event.structured_data}) {
      require(inside(part, arena, arena_size));
    }
  }
  if (!event.has(kFlagArenaFull)) {
    require(simdjson::validate_utf8(event.message.data(), event.message.size()));
  }
}

}  // namespace vigil::fuzz

// Parses one framed message into the normalized event.
#pragma once

#include <cstdint>

#include "common/event.h"
#include "common/metrics.h"
#include "dataplane/source.h"

namespace vigil::dataplane {

struct ParseOptions {
  Format format = Format::kAuto;
  // Year inference for RFC 3164 timestamps uses the event's receive time; zone for
  // timestamps that carry none (RFC 3164), as seconds east of UTC.
  int32_t default_utc_offset_s = 0;
};

// Per-format results, counted by the caller's worker.
struct ParseCounters {
  Counter* parsed = nullptr;       // any known format
  Counter* parse_errors = nullptr; // kept as raw events
  Counter* truncated = nullptr;
  Counter* invalid_utf8 = nullptr;
  // RFC 3164 events without PRI, which got facility 1 and severity 5 (PRI 13).
  Counter* missing_pri = nullptr;
  // RFC 5424 events whose TIMESTAMP had no UTC offset and was read as UTC.
  Counter* zone_assumed = nullptr;
  // Events that had more generic fields than Event::kMaxFields; the rest went to the
  // event's overflow area.
  Counter* fields_overflow = nullptr;
  // Events whose decoded values or overflow fields did not all fit the arena
  // (kFlagArenaFull); what did not fit is not stored.
  Counter* arena_full = nullptr;
};

// Fills `event` from `event.raw` (already copied into the event's arena by the caller,
// with receive_ns, peer, source_id and tenant set). Decoded values are written to the
// event arena. Never allocates outside the arena and never fails: input that matches no
// format becomes a raw event with kFlagParseError and message = the raw text. One trailing
// LF or CRLF is removed from `event.raw` first, and so is a UTF-8 character split by the
// cut when the caller set kFlagTruncated.
// Thread-safe: each worker passes its own event.
void parseEvent(Event& event, const ParseOptions& options);

// Bumps the counters in `counters` (null members are skipped) for one event that
// parseEvent() filled: parsed or parse_errors, plus what countParseFlags() counts. Never
// allocates. Thread-safe: the counters are atomic.
void countParseResult(const Event& event, const ParseCounters& counters);

// The flag counters alone, for callers that count parsed and parse_errors per batch:
// truncated, invalid_utf8, fields_overflow and arena_full from the event's flags,
// missing_pri for events with kFlagPriMissing and zone_assumed for kFlagZoneAssumed.
void countParseFlags(const Event& event, const ParseCounters& counters);

}  // namespace vigil::dataplane

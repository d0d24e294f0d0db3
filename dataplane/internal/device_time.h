// Device timestamps carried inside CEF extensions (rt, end, start) and LEEF attributes
// (devTime with devTimeFormat).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/event.h"

namespace vigil::dataplane::internal {

// Parses `text` with a Java SimpleDateFormat pattern restricted to these letters: yyyy
// (year), MM (month 01-12), MMM (English month abbreviation, any letter case), dd, HH
// (00-23), mm, ss, SSS (milliseconds) and z (zone: UTC, GMT, Z, +hh:mm, +hhmm, GMT+hh:mm).
// Text in single quotes and every other character must match literally. A pattern or
// text without a zone uses `default_utc_offset_s` (seconds east of UTC). Returns UTC
// nanoseconds, or nullopt when the text does not match, a value is out of range or the
// pattern uses another letter. Never allocates.
std::optional<int64_t> parseWithJavaPattern(std::string_view text, std::string_view pattern,
                                            int32_t default_utc_offset_s);

// Parses a device time that came without a pattern: epoch milliseconds (13 digits) or
// seconds (10 digits), "MMM dd yyyy HH:mm:ss" with optional ".SSS" and zone (the LEEF and
// CEF default), or RFC 3339. Returns UTC nanoseconds, or nullopt. Never allocates.
std::optional<int64_t> parseDeviceTime(std::string_view text, int32_t default_utc_offset_s);

// Makes `ns`, a time found in the record (CEF rt or end, LEEF devTime, a JSON payload's
// time member), the event time in place of the syslog header time. Clears
// kFlagYearInferred, kFlagZoneAssumed and kFlagTimestampInvalid, which describe only the
// header time: the event time is no longer the receive time.
void applyDeviceTime(int64_t ns, Event& event);

}  // namespace vigil::dataplane::internal

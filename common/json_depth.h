// A check of JSON nesting to run before a recursive consumer reads the text. nlohmann::json
// parses any depth, but dumping or copying a value recurses once per level. So a request
// body of 100,000 nested brackets overflowed the stack of an API thread.
#pragma once

#include <cstddef>
#include <string_view>

namespace vigil {

// Nesting that API bodies, webhook responses and feed documents may use. The JSON events
// and feeds of the test corpus nest at most 17 levels (Suricata and Zeek events).
inline constexpr size_t kMaxJsonDepth = 128;

// Returns true when `text` opens more than `max_depth` arrays and objects inside each other.
// Brackets inside strings do not count. The text is not validated: the parser that runs
// next reports syntax errors.
bool jsonNestsDeeper(std::string_view text, size_t max_depth = kMaxJsonDepth);

}  // namespace vigil

// Helpers shared by the parser tests: an event slot, corpus file reading and field
// lookup.
#pragma once

#include <array>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/event.h"
#include "common/ip.h"
#include "common/time.h"
#include "dataplane/parser.h"

namespace vigil::dataplane::testing {

inline std::string sharedPath(std::string_view relative) {
  return std::string(VIGIL_SHARED_DIR) + "/corpus/" + std::string(relative);
}

// Reads a corpus file; an empty result makes the calling test fail on its first check.
inline std::vector<std::string> readLines(std::string_view relative) {
  std::ifstream in(sharedPath(relative), std::ios::binary);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

inline int64_t timeOf(std::string_view rfc3339) { return parseRfc3339(rfc3339).value_or(-1); }

// One event slot, filled the way a source fills it before calling parseEvent().
class ParsedEvent {
 public:
  static constexpr size_t kArenaBytes = 64 * 1024;

  ParsedEvent() : event_(kArenaBytes) {}

  Event& parse(std::string_view raw, const ParseOptions& options = {},
               int64_t receive_ns = timeOf("2024-06-01T00:00:00Z"),
               std::optional<IpAddr> peer = std::nullopt) {
    event_.reset();
    event_.raw = event_.arena.copy(raw);
    event_.receive_ns = receive_ns;
    event_.peer = peer;
    parseEvent(event_, options);
    return event_;
  }

  Event& event() { return event_; }

 private:
  Event event_;
};

// The value of a field by its name in Event::get(), or "<missing>".
inline std::string get(const Event& event, std::string_view name) {
  std::array<char, 64> scratch{};
  const auto value = event.get(name, scratch);
  return value ? std::string(*value) : std::string("<missing>");
}

}  // namespace vigil::dataplane::testing

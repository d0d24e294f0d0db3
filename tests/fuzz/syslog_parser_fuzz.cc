// Fuzzes parseEvent() over every input format. The first byte picks the forced format
// (0 = auto), and the rest is one framed message. Besides not crashing, each result
// must keep raw as received, stay inside the field limit and carry a known format. A
// parse error must carry the receive time, and the decoded message must be valid UTF-8.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/event.h"
#include "common/ip.h"
#include "dataplane/parser.h"
#include "simdjson.h"

namespace {

constexpr size_t kArenaBytes = 64 * 1024;
constexpr int64_t kReceiveNs = 1'717'200'000'000'000'000;  // 2024-06-01T00:00:00Z

void require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static vigil::Event event(kArenaBytes);
  if (size == 0) return 0;
  vigil::dataplane::ParseOptions options;
  options.format = static_cast<vigil::dataplane::Format>(data[0] % 6);
  options.default_utc_offset_s = (data[0] & 0x80) != 0 ? 3600 : 0;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  if (input.size() > kArenaBytes / 2) return 0;

  event.reset();
  event.raw = event.arena.copy(input);
  event.receive_ns = kReceiveNs;
  event.peer = vigil::parseIp("192.0.2.1");
  vigil::dataplane::parseEvent(event, options);

  require(event.raw == input);
  require(event.field_count <= vigil::Event::kMaxFields);
  require(event.format != vigil::EventFormat::kUnknown);
  if (event.has(vigil::kFlagParseError)) {
    require(event.format == vigil::EventFormat::kRaw);
    require(event.timestamp_ns == kReceiveNs);
  }
  if (!event.has(vigil::kFlagArenaFull)) {
    require(simdjson::validate_utf8(event.message.data(), event.message.size()));
  }
  return 0;
}

// Fuzz target for the plain indicator-list parser: loads the input as a list, builds the
// snapshot and matches one event. An input of the form "LIST\n%%\nMESSAGE" uses MESSAGE
// as the event text; otherwise the whole input is both the list and the message.
// Checks, besides memory safety:
//   - build() succeeds on any list that loaded, since rejected lines never reach it;
//   - every loaded indicator parses again to the same type and text (normalization is
//     idempotent);
//   - matching an indicator's own text (or address) finds that indicator.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/event.h"
#include "common/ip.h"
#include "intel/builder.h"
#include "intel/indicator_set.h"
#include "intel/matcher.h"

namespace {

using vigil::Event;
using vigil::IndicatorType;
using vigil::intel::IndicatorSet;
using vigil::intel::IndicatorSetBuilder;

constexpr size_t kArenaBytes = 1 << 16;
constexpr uint32_t kMaxSelfChecks = 64;

void check(bool ok) {
  if (!ok) std::abort();
}

bool isAddressType(IndicatorType type) {
  return type == IndicatorType::kIpv4 || type == IndicatorType::kIpv6 ||
         type == IndicatorType::kCidr;
}

// Re-parses one indicator's normalized text and checks it comes back unchanged.
void checkIdempotent(const vigil::intel::Indicator& indicator) {
  IndicatorSetBuilder builder;
  auto report = builder.addListText("again", indicator.text, "again");
  check(report.ok() && report->loaded == 1);
  auto set = builder.build();
  check(set.ok() && (*set)->size() == 1);
  check((*set)->indicator(0).text == indicator.text);
  check((*set)->indicator(0).type == indicator.type);
}

// Matches the indicator's own text and checks that the indicator is among the hits.
void checkSelfMatch(const IndicatorSet& set, vigil::intel::Scratch& scratch, uint32_t id,
                    Event& event) {
  const vigil::intel::Indicator& indicator = set.indicator(id);
  event.reset();
  if (isAddressType(indicator.type)) {
    std::string_view text = indicator.text;
    event.src_ip = vigil::parseIp(text.substr(0, text.find('/')));
    check(event.src_ip.has_value());
  } else {
    event.raw = event.arena.copy(indicator.text);
    event.message = event.raw;
  }
  vigil::intel::matchEvent(set, scratch, event);
  if (event.has(vigil::kFlagHitsOverflow)) return;
  if (isAddressType(indicator.type)) {
    // A longer prefix or an exact address may win over this CIDR; some indicator must hit.
    check(event.hit_count == 1);
    return;
  }
  bool found = false;
  for (size_t i = 0; i < event.hit_count; ++i) {
    found = found || event.hits[i].indicator_id == id;
  }
  check(found);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view list = input;
  std::string_view message = input;
  if (size_t split = input.find("\n%%\n"); split != std::string_view::npos) {
    list = input.substr(0, split);
    message = input.substr(split + 4);
  }

  IndicatorSetBuilder builder;
  auto report = builder.addListText("fuzz", list, "fuzz");
  check(report.ok());
  check(report->rejections.size() <= report->rejected);
  auto built = builder.build();
  check(built.ok());
  const IndicatorSet& set = **built;
  check(set.size() == report->loaded);

  vigil::intel::Scratch scratch(set);
  static Event event(kArenaBytes);
  event.reset();
  event.raw = event.arena.copy(message);
  event.message = event.raw;
  if (std::optional<vigil::IpAddr> addr = vigil::parseIp(message.substr(0, message.find(' ')))) {
    event.src_ip = addr;
  }
  size_t added = vigil::intel::matchEvent(set, scratch, event);
  check(added == event.hit_count && added <= Event::kMaxHits);
  check(scratch.scanErrors() == 0);

  for (uint32_t id = 0; id < set.size() && id < kMaxSelfChecks; ++id) {
    checkIdempotent(set.indicator(id));
    checkSelfMatch(set, scratch, id, event);
  }
  return 0;
}

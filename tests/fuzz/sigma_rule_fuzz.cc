// Fuzzes the Sigma rule loader and the condition parser. The input is read as a rule
// file. When it loads, its rules run against one fixed event, which exercises the
// compiled patterns, regular expressions and conditions, and detection with the
// prefilter must return what evaluating every rule returns. The input is also parsed as
// a bare condition over a fixed set of selection names.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdlib>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "common/event.h"
#include "correlate/condition.h"
#include "correlate/engine.h"
#include "correlate/rules.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // yaml-cpp builds the whole document tree; very large inputs only slow the fuzzer.
  if (size > 64 * 1024) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);

  static const std::vector<std::string> kNames = {"selection", "sel_a", "sel_b", "filter_x",
                                                  "_hidden"};
  absl::StatusOr<vigil::correlate::Condition> condition =
      vigil::correlate::parseCondition(text, kNames);
  if (condition.ok()) {
    condition->evaluate([](uint32_t selection) { return selection % 2 == 0; });
  }

  vigil::correlate::RuleLoader loader;
  if (!loader.addText(text, "fuzz.yml").ok()) return 0;
  absl::StatusOr<vigil::correlate::RuleSet> rules = loader.finish();
  if (!rules.ok()) return 0;

  auto shared = std::make_shared<const vigil::correlate::RuleSet>(std::move(*rules));
  vigil::correlate::EngineOptions options;
  options.max_keys = 4;
  vigil::correlate::Engine engine(shared, options);
  vigil::correlate::DetectScratch scratch(*shared);
  vigil::Event event(4096);
  event.raw = event.arena.copy("<38>1 2024-05-01T10:00:00Z host1 sshd 1 - - Failed password");
  event.message = event.raw;
  event.host = "host1";
  event.src_ip = vigil::parseIp("192.0.2.50");
  event.timestamp_ns = 1714557600000000000;
  event.addField("Image", "C:\\Users\\alice\\Desktop\\tool.exe");
  event.addField("CommandLine", "tool.exe -enc AAAA");
  event.addField("rule", "ssh_failed");
  std::vector<vigil::correlate::Alert> alerts;
  for (int i = 0; i < 3; ++i) engine.process(event, scratch, alerts);

  // The prefilter only skips rules that cannot match.
  options.prefilter = false;
  vigil::correlate::Engine every_rule(shared, options);
  std::array<uint32_t, 64> fast;
  std::array<uint32_t, 64> slow;
  size_t fast_count = engine.detect(event, scratch, fast);
  size_t slow_count = every_rule.detect(event, scratch, slow);
  if (fast_count != slow_count || !std::equal(fast.begin(), fast.begin() + fast_count,
                                              slow.begin())) {
    std::abort();
  }
  return 0;
}

// Fuzzes the correlation checkpoint loader. The first input byte picks the mode: bit 0
// set means the rest is a checkpoint body, which gets a valid header and checksum so the
// fuzzer reaches the record parser; clear means the rest is a whole file. Bits 1-2 pick
// the restoring engine's shard count (1 to 4). A restored engine then takes events and
// saves a checkpoint, which must restore again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint_fuzz_rules.h"
#include "common/event.h"
#include "correlate/checkpoint.h"
#include "correlate/engine.h"
#include "correlate/rules.h"

namespace {

std::shared_ptr<const vigil::correlate::RuleSet> fuzzRules() {
  vigil::correlate::RuleLoader loader;
  if (!loader.addText(kCheckpointFuzzRules, "checkpoint_fuzz_rules.h").ok()) std::abort();
  absl::StatusOr<vigil::correlate::RuleSet> rules = loader.finish();
  if (!rules.ok()) std::abort();
  return std::make_shared<const vigil::correlate::RuleSet>(std::move(*rules));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const std::shared_ptr<const vigil::correlate::RuleSet> rules = fuzzRules();
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string file =
      (data[0] & 1) ? vigil::correlate::checkpointFile(rest) : std::string(rest);

  vigil::correlate::EngineOptions options;
  options.shards = 1 + ((data[0] >> 1) & 3);
  options.max_keys = 8;  // small, so restoring many groups evicts
  options.max_suppress_keys = 4;
  options.allowed_lateness_ns = 10'000'000'000;
  vigil::correlate::Engine engine(rules, options);
  if (!engine.restore(file).ok()) return 0;

  vigil::correlate::DetectScratch scratch(*rules);
  vigil::Event event(4096);
  std::vector<vigil::correlate::Alert> alerts;
  const char* names[] = {"a", "b"};
  for (int i = 0; i < 6; ++i) {
    event.reset();
    event.host = i % 3 == 0 ? "h1" : "h2";
    event.timestamp_ns = 1714557600000000000 + int64_t{i} * 50'000'000'000;
    event.addField("rule", names[i % 2]);
    event.addField("User", i % 2 == 0 ? "u1" : "u2");
    event.addField("Bytes", "25");
    engine.process(event, scratch, alerts);
  }

  vigil::correlate::Engine again(rules, options);
  if (!again.restore(engine.checkpoint()).ok()) std::abort();
  return 0;
}

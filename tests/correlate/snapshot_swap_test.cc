// Indicator snapshots swapped while traffic flows through the pipeline: no event is lost,
// and each event's matches are exactly those of one published snapshot (base plus delta),
// never a mix of two or a snapshot that was half built.
#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/metrics.h"
#include "common/time.h"
#include "correlate/pipeline.h"
#include "correlate/test_events.h"
#include "gtest/gtest.h"
#include "intel/builder.h"
#include "intel/snapshot.h"

namespace vigil::correlate {
namespace {

constexpr int kBaseSets = 5;
constexpr int kDeltaSets = 3;

// A source that generates `count` numbered lines into its ring from its own thread.
class CountingSource final : public dataplane::Source {
 public:
  explicit CountingSource(size_t count)
      : count_(count), ring_(64, [] { return std::make_unique<dataplane::RawMessage>(kCapacity); }) {}
  ~CountingSource() override { stop(); }

  // Every domain of every base and delta set, so each snapshot finds its own.
  static std::string line(size_t seq) {
    std::string text = absl::StrCat("<13>May  1 10:00:00 host1 app: evt ", seq, " resolved");
    for (int g = 0; g < kBaseSets; ++g) absl::StrAppend(&text, " b", g, "x.example b", g, "y.example");
    for (int d = 0; d < kDeltaSets; ++d) absl::StrAppend(&text, " d", d, ".example");
    return text;
  }

  bool start(std::string&) override {
    thread_ = std::thread([this] {
      for (size_t seq = 0; seq < count_; ++seq) {
        const std::string text = line(seq);
        dataplane::RawMessage* slot = nullptr;
        while ((slot = ring_.tryClaim()) == nullptr) {
          if (stop_.load()) return;
          std::this_thread::yield();
        }
        slot->len = std::min(text.size(), kCapacity);
        std::memcpy(slot->data.get(), text.data(), slot->len);
        slot->receive_ns = *parseRfc3339("2024-05-01T10:00:00Z");
        slot->source_id = 1;
        ring_.publish();
      }
      finished_.store(true);
    });
    return true;
  }
  void stop() override {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  bool finished() const override { return finished_.load(); }
  const std::string& name() const override { return name_; }
  uint16_t id() const override { return 1; }
  dataplane::Format format() const override { return dataplane::Format::kAuto; }
  const std::string& tenant() const override { return tenant_; }
  dataplane::RawRing& ring() override { return ring_; }

  static constexpr size_t kCapacity = 512;

 private:
  size_t count_;
  std::string name_ = "counting";
  std::string tenant_ = "default";
  dataplane::RawRing ring_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
};

class CollectingSink final : public AlertSink {
 public:
  void onAlert(const Alert& alert) override { alerts.push_back(alert); }
  std::vector<Alert> alerts;
};

constexpr char kEveryEventRule[] = R"(
title: Every numbered event
id: every-event
level: low
detection:
  sel:
    message|contains: 'evt '
  condition: sel
)";

std::shared_ptr<const intel::IndicatorSet> buildSet(const std::string& list,
                                                    const std::string& text) {
  intel::IndicatorSetBuilder builder;
  EXPECT_TRUE(builder.addListText(list, text, list).ok());
  absl::StatusOr<std::shared_ptr<const intel::IndicatorSet>> set = builder.build();
  EXPECT_TRUE(set.ok()) << set.status();
  return *set;
}

// The snapshot an event was matched against, read from its hits: the base list and the
// delta list ("" when none). Empty base when the hits mix lists or miss a domain.
struct Seen {
  std::string base;
  std::string delta;
};

Seen snapshotOf(const Alert& alert) {
  Seen seen;
  std::set<std::string> base_hits;
  for (const std::string& hit : alert.indicator_hits) {
    std::vector<std::string> parts = absl::StrSplit(hit, absl::MaxSplits(':', 1));
    if (parts.size() != 2) return {};
    const std::string& list = parts[0];
    if (list[0] == 'd') {
      if (!seen.delta.empty()) return {};  // two delta indicators
      seen.delta = list;
      continue;
    }
    if (!seen.base.empty() && seen.base != list) return {};  // two bases mixed
    seen.base = list;
    base_hits.insert(parts[1]);
  }
  const std::string g = seen.base.substr(1);
  const std::set<std::string> expected = {absl::StrCat("b", g, "x.example@message"),
                                          absl::StrCat("b", g, "y.example@message")};
  if (base_hits != expected) return {};
  return seen;
}

// Swaps base and delta snapshots every few hundred microseconds while 30,000 events run
// through four batches on two threads.
TEST(SnapshotSwapTest, EveryEventSeesOneSnapshot) {
  constexpr size_t kEvents = 30'000;
  std::vector<std::shared_ptr<const intel::IndicatorSet>> bases;
  for (int g = 0; g < kBaseSets; ++g) {
    bases.push_back(buildSet(absl::StrCat("b", g),
                             absl::StrCat("b", g, "x.example\nb", g, "y.example\n")));
  }
  std::vector<std::shared_ptr<const intel::IndicatorSet>> deltas;
  for (int d = 0; d < kDeltaSets; ++d) {
    deltas.push_back(buildSet(absl::StrCat("d", d), absl::StrCat("d", d, ".example\n")));
  }

  PipelineOptions options;
  options.batch_size = 16;
  options.batches = 4;
  options.max_message_bytes = CountingSource::kCapacity;
  intel::SnapshotStore store(options.batches);
  store.publish(bases[0]);
  std::set<std::pair<std::string, std::string>> published = {{"b0", ""}};

  CountingSource source(kEvents);
  MetricsRegistry metrics;
  EngineOptions engine_options;
  engine_options.shards = 1;
  Engine engine(testing::loadRuleSet(kEveryEventRule), engine_options, &metrics);
  CollectingSink sink;
  Pipeline pipeline({&source}, &store, engine, {&sink}, metrics, options);

  std::atomic<bool> done{false};
  std::thread swapper([&] {
    int step = 0;
    std::string base = "b0";
    while (!done.load()) {
      ++step;
      if (step % 3 == 0) {
        const int d = step % kDeltaSets;
        ASSERT_TRUE(store.publishDelta(deltas[static_cast<size_t>(d)]).has_value());
        published.insert({base, absl::StrCat("d", d)});
      } else {
        const int g = step % kBaseSets;
        store.publish(bases[static_cast<size_t>(g)]);
        base = absl::StrCat("b", g);
        published.insert({base, ""});
      }
      store.reclaim();
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
  });

  std::string error;
  ASSERT_TRUE(source.start(error));
  std::thread runner([&] { pipeline.run(); });
  runner.join();
  done.store(true);
  swapper.join();
  store.reclaim();

  EXPECT_EQ(metrics.sum("vigil_pipeline_events_done_total"), kEvents);
  ASSERT_EQ(sink.alerts.size(), kEvents);
  std::vector<bool> delivered(kEvents, false);
  std::map<std::pair<std::string, std::string>, size_t> per_snapshot;
  for (const Alert& alert : sink.alerts) {
    ASSERT_EQ(alert.evidence.size(), 1u);
    std::vector<std::string> words = absl::StrSplit(alert.evidence[0], ' ');
    auto it = std::find(words.begin(), words.end(), "evt");
    ASSERT_NE(it, words.end());
    const size_t seq = std::stoul(*(it + 1));
    ASSERT_LT(seq, kEvents);
    EXPECT_FALSE(delivered[seq]) << "event " << seq << " delivered twice";
    delivered[seq] = true;

    Seen seen = snapshotOf(alert);
    ASSERT_FALSE(seen.base.empty()) << "event " << seq << " mixes snapshots: "
                                    << absl::StrJoin(alert.indicator_hits, ", ");
    EXPECT_TRUE(published.count({seen.base, seen.delta}) == 1)
        << "event " << seq << " matched " << seen.base << "+" << seen.delta
        << ", which was never published";
    ++per_snapshot[{seen.base, seen.delta}];
  }
  EXPECT_EQ(std::count(delivered.begin(), delivered.end(), false), 0);
  // The swaps really happened during the run.
  EXPECT_GT(per_snapshot.size(), 2u);
  EXPECT_GT(store.stats().published, 10u);
  EXPECT_EQ(store.stats().pending, 0u);
  EXPECT_EQ(store.stats().reclaimed, store.stats().published - 1);
}

}  // namespace
}  // namespace vigil::correlate

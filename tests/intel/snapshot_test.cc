// SnapshotStore: publishing, the epoch rule that keeps a snapshot alive while a reader
// slot holds it, delta parts, and sighting counters that survive a rebuild.
#include "intel/snapshot.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "intel/builder.h"

namespace vigil::intel {
namespace {

constexpr size_t kArenaBytes = 4096;

std::shared_ptr<const IndicatorSet> buildSet(std::string_view text) {
  IndicatorSetBuilder builder;
  absl::StatusOr<LoadReport> report = builder.addListText("test", text, "test.txt");
  EXPECT_TRUE(report.ok()) << report.status();
  absl::StatusOr<std::shared_ptr<const IndicatorSet>> set = builder.build();
  EXPECT_TRUE(set.ok()) << set.status();
  return *set;
}

void setMessage(Event& event, std::string_view text) {
  event.reset();
  event.raw = event.arena.copy(text);
  event.message = event.raw;
}

std::vector<std::string> hitTexts(const Event& event) {
  std::vector<std::string> out;
  for (size_t i = 0; i < event.hit_count; ++i) out.emplace_back(event.hits[i].indicator);
  return out;
}

class SnapshotStoreTest : public ::testing::Test {
 protected:
  Event event_{kArenaBytes};
};

// Nothing is published at first, and acquire() then returns null.
TEST_F(SnapshotStoreTest, EmptyStoreHasNoSnapshot) {
  SnapshotStore store(2);
  EXPECT_EQ(store.acquire(0), nullptr);
  store.release(0);
  EXPECT_EQ(store.current(), nullptr);
  EXPECT_FALSE(store.publishDelta(buildSet("bad.example\n")).has_value());
}

// A reader with an acquired slot keeps its snapshot, and a new acquire returns the new one.
TEST_F(SnapshotStoreTest, HeldSnapshotSurvivesPublish) {
  SnapshotStore store(2);
  EXPECT_EQ(store.publish(buildSet("one.example\n")), 1u);
  const Snapshot* first = store.acquire(0);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->generation(), 1u);

  EXPECT_EQ(store.publish(buildSet("two.example\n")), 2u);
  EXPECT_EQ(store.reclaim(), 0u);  // slot 0 still has generation 1
  EXPECT_EQ(store.stats().pending, 1u);
  setMessage(event_, "query one.example and two.example");
  first->match(0, event_, 1);
  EXPECT_EQ(hitTexts(event_), std::vector<std::string>{"one.example"});

  const Snapshot* second = store.acquire(1);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->generation(), 2u);
  store.release(1);

  store.release(0);
  EXPECT_EQ(store.reclaim(), 1u);
  EXPECT_EQ(store.stats().pending, 0u);
  EXPECT_EQ(store.stats().reclaimed, 1u);
}

// A slot that re-acquires moves to the newest snapshot, which frees the old one.
TEST_F(SnapshotStoreTest, ReacquireIsQuiescentPoint) {
  SnapshotStore store(1);
  store.publish(buildSet("one.example\n"));
  store.acquire(0);
  store.publish(buildSet("two.example\n"));
  EXPECT_EQ(store.reclaim(), 0u);
  EXPECT_EQ(store.acquire(0)->generation(), 2u);
  EXPECT_EQ(store.reclaim(), 1u);
  store.release(0);
}

// A delta part is matched next to the base, with ids after the base's.
TEST_F(SnapshotStoreTest, DeltaMatchesBesideBase) {
  SnapshotStore store(1);
  store.publish(buildSet("base.example\n10.0.0.1\n"));
  std::optional<uint64_t> generation = store.publishDelta(buildSet("analyst.example\n"));
  ASSERT_TRUE(generation.has_value());
  EXPECT_EQ(*generation, 2u);

  const Snapshot* snapshot = store.acquire(0);
  ASSERT_NE(snapshot, nullptr);
  EXPECT_EQ(snapshot->size(), 3u);
  setMessage(event_, "base.example asked for analyst.example");
  EXPECT_EQ(snapshot->match(0, event_, 100), 2u);
  ASSERT_EQ(event_.hit_count, 2u);
  EXPECT_EQ(event_.hits[1].indicator, "analyst.example");
  EXPECT_EQ(event_.hits[1].indicator_id, 2u);
  EXPECT_EQ(snapshot->indicator(event_.hits[1].indicator_id).text, "analyst.example");
  EXPECT_EQ(snapshot->hitCount(2), 1u);
  EXPECT_EQ(snapshot->lastHitNs(2), 100);
  store.release(0);
}

// matchBatch() against match() on a second store with the same parts. The 600 events
// span more than two chunks of Snapshot::kMatchChunkEvents. Some carry a hit already,
// and some fill up in the base part, so their delta hits overflow. Both stores must end
// with the same hits, flags and sightings.
TEST_F(SnapshotStoreTest, MatchBatchEqualsMatch) {
  std::string base = "shared.example\n10.0.0.1\n";
  std::string delta = "shared.example\n10.0.0.9\n";
  for (int i = 0; i < 20; ++i) absl::StrAppendFormat(&base, "b%d.example\n", i);
  for (int i = 0; i < 6; ++i) absl::StrAppendFormat(&delta, "d%d.example\n", i);
  SnapshotStore batch_store(1);
  SnapshotStore single_store(1);
  for (SnapshotStore* store : {&batch_store, &single_store}) {
    store->publish(buildSet(base));
    ASSERT_TRUE(store->publishDelta(buildSet(delta)).has_value());
  }

  constexpr int kEvents = 600;
  std::vector<std::unique_ptr<Event>> batch_events;
  std::vector<std::unique_ptr<Event>> single_events;
  for (int i = 0; i < kEvents; ++i) {
    std::string text = absl::StrFormat("event %d from 10.0.0.%d", i, i % 11);
    if (i % 3 != 0) absl::StrAppendFormat(&text, " asked b%d.example d%d.example", i % 23, i % 7);
    if (i % 10 == 0) text += " and shared.example";
    if (i % 97 == 5) {
      for (int k = 0; k < 20; ++k) absl::StrAppendFormat(&text, " b%d.example", k);
    }
    for (auto* events : {&batch_events, &single_events}) {
      events->push_back(std::make_unique<Event>(kArenaBytes));
      setMessage(*events->back(), text);
    }
    // A hit from an earlier stage stays first and is not counted as a sighting.
    if (i % 50 == 7) {
      const IndicatorHit earlier{"earlier", "other", IndicatorType::kDomain, "message", 0, 0};
      batch_events.back()->addHit(earlier);
      single_events.back()->addHit(earlier);
    }
  }

  const Snapshot* batch_snapshot = batch_store.acquire(0);
  const Snapshot* single_snapshot = single_store.acquire(0);
  std::vector<Event*> pointers;
  for (auto& event : batch_events) pointers.push_back(event.get());
  const size_t batch_added = batch_snapshot->matchBatch(0, pointers, 77);
  size_t single_added = 0;
  for (auto& event : single_events) single_added += single_snapshot->match(0, *event, 77);
  EXPECT_EQ(batch_added, single_added);

  size_t overflowed = 0;
  for (int i = 0; i < kEvents; ++i) {
    const Event& got = *batch_events[i];
    const Event& want = *single_events[i];
    ASSERT_EQ(got.hit_count, want.hit_count) << "event " << i;
    EXPECT_EQ(got.flags, want.flags) << "event " << i;
    for (size_t h = 0; h < got.hit_count; ++h) {
      EXPECT_EQ(got.hits[h].indicator_id, want.hits[h].indicator_id) << "event " << i;
      EXPECT_EQ(got.hits[h].indicator, want.hits[h].indicator) << "event " << i;
      EXPECT_EQ(got.hits[h].field, want.hits[h].field) << "event " << i;
    }
    if (got.has(kFlagHitsOverflow)) ++overflowed;
  }
  EXPECT_GT(overflowed, 0u);  // the full events really lost delta hits

  ASSERT_EQ(batch_snapshot->size(), single_snapshot->size());
  for (uint32_t id = 0; id < batch_snapshot->size(); ++id) {
    EXPECT_EQ(batch_snapshot->hitCount(id), single_snapshot->hitCount(id)) << "id " << id;
    EXPECT_EQ(batch_snapshot->lastHitNs(id), single_snapshot->lastHitNs(id)) << "id " << id;
  }
  // Delta ids follow the base ids, so the delta's indicators were hit under ids past it.
  const uint32_t delta_first = static_cast<uint32_t>(batch_snapshot->base().size());
  uint64_t delta_sightings = 0;
  for (uint32_t id = delta_first; id < batch_snapshot->size(); ++id) {
    delta_sightings += batch_snapshot->hitCount(id);
  }
  EXPECT_GT(delta_sightings, 0u);
  batch_store.release(0);
  single_store.release(0);
}

// A delta part with tables that the base part lacks (domains, hashes, file names): the
// single walk of matchBatch() must still queue those lookups and find the delta hits.
TEST_F(SnapshotStoreTest, MatchBatchFindsDeltaOnlyKinds) {
  const std::string hash(64, 'a');
  SnapshotStore store(1);
  store.publish(buildSet("10.0.0.1\n"));
  IndicatorSetBuilder delta_builder;
  ASSERT_TRUE(delta_builder.addListText("delta", "analyst.example\n" + hash + "\n", "d").ok());
  LoadReport report;
  delta_builder.addIndicator("delta", IndicatorType::kFilename, "dropper.exe", {}, "d:file",
                             report);
  ASSERT_EQ(report.rejected, 0u);
  absl::StatusOr<std::shared_ptr<const IndicatorSet>> delta = delta_builder.build();
  ASSERT_TRUE(delta.ok()) << delta.status();
  ASSERT_TRUE(store.publishDelta(*delta).has_value());

  const Snapshot* snapshot = store.acquire(0);
  ASSERT_NE(snapshot, nullptr);
  setMessage(event_, "10.0.0.1 fetched " + hash + " from www.analyst.example");
  event_.app = "C:\\Temp\\Dropper.EXE";
  Event* events[] = {&event_};
  EXPECT_EQ(snapshot->matchBatch(0, events, 5), 3u);
  EXPECT_EQ(hitTexts(event_),
            (std::vector<std::string>{"dropper.exe", hash, "analyst.example"}));
  for (size_t i = 0; i < event_.hit_count; ++i) {
    EXPECT_GE(event_.hits[i].indicator_id, snapshot->base().size()) << i;
  }
  store.release(0);
}

// Sightings count every hit with the latest time, and a rebuild carries them over to
// the same indicator in the new snapshot.
TEST_F(SnapshotStoreTest, SightingsSurviveRebuild) {
  SnapshotStore store(1);
  store.publish(buildSet("kept.example\ndropped.example\n"));
  const Snapshot* snapshot = store.acquire(0);
  for (int64_t t : {10, 30, 20}) {
    setMessage(event_, "kept.example dropped.example");
    snapshot->match(0, event_, t);
  }
  const uint32_t kept = event_.hits[0].indicator_id;
  EXPECT_EQ(snapshot->hitCount(kept), 3u);
  EXPECT_EQ(snapshot->lastHitNs(kept), 30);
  store.release(0);

  store.publish(buildSet("new.example\nkept.example\n"));
  EXPECT_EQ(store.reclaim(), 1u);
  std::shared_ptr<const Snapshot> current = store.current();
  ASSERT_NE(current, nullptr);
  ASSERT_EQ(current->indicator(1).text, "kept.example");
  EXPECT_EQ(current->hitCount(1), 3u);
  EXPECT_EQ(current->lastHitNs(1), 30);
  EXPECT_EQ(current->hitCount(0), 0u);
}

// Sightings of the delta move into the base when a full build takes the indicator in.
TEST_F(SnapshotStoreTest, DeltaSightingsMoveToFullBuild) {
  SnapshotStore store(1);
  store.publish(buildSet("base.example\n"));
  store.publishDelta(buildSet("analyst.example\n"));
  const Snapshot* snapshot = store.acquire(0);
  setMessage(event_, "analyst.example");
  snapshot->match(0, event_, 5);
  store.release(0);

  store.publish(buildSet("base.example\nanalyst.example\n"));
  EXPECT_EQ(store.reclaim(), 2u);
  std::shared_ptr<const Snapshot> current = store.current();
  EXPECT_EQ(current->delta(), nullptr);
  ASSERT_EQ(current->indicator(1).text, "analyst.example");
  EXPECT_EQ(current->hitCount(1), 1u);
}

// An indicator whose valid_until passes between two builds leaves the second snapshot,
// and the score of the one that stays decays with the builder's time.
TEST_F(SnapshotStoreTest, ExpiredIndicatorLeavesNextBuild) {
  const absl::Time t0 = absl::FromUnixSeconds(1'700'000'000);
  auto buildAt = [&](absl::Time now) {
    BuilderOptions options;
    options.now = now;
    options.score_half_life = absl::Hours(24);
    IndicatorSetBuilder builder(options);
    LoadReport report;
    IndicatorMeta expiring;
    expiring.confidence = 80;
    expiring.last_seen = t0;
    expiring.valid_until = t0 + absl::Hours(1);
    builder.addIndicator("feed", std::nullopt, "expiring.example", expiring, "feed:1", report);
    IndicatorMeta lasting;
    lasting.confidence = 80;
    lasting.last_seen = t0;
    builder.addIndicator("feed", std::nullopt, "lasting.example", lasting, "feed:2", report);
    return *builder.build();
  };
  SnapshotStore store(1);
  store.publish(buildAt(t0));
  EXPECT_EQ(store.current()->size(), 2u);
  EXPECT_EQ(store.current()->indicator(1).score, 80);

  store.publish(buildAt(t0 + absl::Hours(24)));
  std::shared_ptr<const Snapshot> current = store.current();
  ASSERT_EQ(current->size(), 1u);
  EXPECT_EQ(current->indicator(0).text, "lasting.example");
  EXPECT_EQ(current->indicator(0).score, 40);  // confidence 80 halved after one half-life
}

// Readers on several threads keep matching while snapshots are swapped; every event
// sees the indicators of exactly one generation, and every retired snapshot is freed.
TEST_F(SnapshotStoreTest, ConcurrentSwapsStayConsistent) {
  constexpr size_t kReaders = 3;
  constexpr int kPublishes = 40;
  SnapshotStore store(kReaders);
  std::vector<std::shared_ptr<const IndicatorSet>> sets;
  for (int g = 0; g < 4; ++g) {
    sets.push_back(buildSet(absl::StrCat("g", g, "a.example\ng", g, "b.example\n")));
  }
  store.publish(sets[0]);

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> inconsistent{0};
  std::atomic<uint64_t> matched{0};
  std::vector<std::thread> readers;
  for (size_t r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      Event event(kArenaBytes);
      while (!stop.load(std::memory_order_relaxed)) {
        const Snapshot* snapshot = store.acquire(r);
        setMessage(event, "g0a.example g0b.example g1a.example g1b.example g2a.example "
                          "g2b.example g3a.example g3b.example");
        snapshot->match(r, event, 1);
        // Both hits must come from one generation's pair.
        if (event.hit_count != 2 || event.hits[0].indicator.substr(0, 2) !=
                                        event.hits[1].indicator.substr(0, 2)) {
          inconsistent.fetch_add(1);
        }
        matched.fetch_add(1);
        store.release(r);
      }
    });
  }
  for (int p = 1; p <= kPublishes; ++p) {
    store.publish(sets[static_cast<size_t>(p) % sets.size()]);
    store.reclaim();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  stop.store(true);
  for (std::thread& t : readers) t.join();
  store.reclaim();

  EXPECT_EQ(inconsistent.load(), 0u);
  EXPECT_GT(matched.load(), 0u);
  EXPECT_EQ(store.stats().published, static_cast<uint64_t>(kPublishes + 1));
  EXPECT_EQ(store.stats().pending, 0u);
  EXPECT_EQ(store.stats().reclaimed, static_cast<uint64_t>(kPublishes));
}

}  // namespace
}  // namespace vigil::intel

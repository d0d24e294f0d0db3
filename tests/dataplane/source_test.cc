// moveToEvent(): a ring slot sized as an event arena trades its buffer with the arena;
// any other slot is copied.
#include <gtest/gtest.h>

#include <cstring>
#include <string_view>

#include "common/event.h"
#include "dataplane/source.h"

namespace vigil::dataplane {
namespace {

void fill(RawMessage& slot, std::string_view text) {
  std::memcpy(slot.data.get(), text.data(), text.size());
  slot.len = text.size();
}

TEST(MoveToEvent, TradesBuffersWhenSizesMatch) {
  auto ring = makeRawRing(2, 100);
  RawMessage* slot = ring->tryClaim();
  ASSERT_NE(slot, nullptr);
  EXPECT_EQ(slot->capacity, 100u);
  EXPECT_EQ(slot->buffer_bytes, eventArenaBytes(100));
  fill(*slot, "<13>Oct 11 22:14:15 host app: hello");
  ring->publish();

  Event event(eventArenaBytes(100));
  const char* slot_bytes = slot->data.get();
  const char* arena_bytes = event.arena.alloc(0);
  moveToEvent(*ring->front(), event);
  EXPECT_EQ(event.raw, "<13>Oct 11 22:14:15 host app: hello");
  EXPECT_EQ(event.raw.data(), slot_bytes);        // not copied
  EXPECT_EQ(slot->data.get(), arena_bytes);       // the slot got the old arena
  EXPECT_EQ(event.arena.used(), event.raw.size());  // decoded values go after it
  ring->pop();

  // The traded buffer serves the next message in that slot.
  RawMessage* again = ring->tryClaim();
  ASSERT_NE(again, nullptr);
  fill(*again, "second");
  ring->publish();
  RawMessage* other = ring->tryClaim();
  ASSERT_NE(other, nullptr);
  fill(*other, "third");
  ring->publish();
  Event second(eventArenaBytes(100));
  moveToEvent(*ring->front(), second);
  ring->pop();
  EXPECT_EQ(second.raw, "second");
  event.reset();
  moveToEvent(*ring->front(), event);
  ring->pop();
  EXPECT_EQ(event.raw, "third");
  EXPECT_EQ(second.raw, "second");  // each event keeps its own buffer
}

TEST(MoveToEvent, CopiesWhenSizesDiffer) {
  RawMessage slot(100);  // a buffer of just the message size, as custom sources make
  fill(slot, "text");
  Event event(eventArenaBytes(100));
  const char* slot_bytes = slot.data.get();
  moveToEvent(slot, event);
  EXPECT_EQ(event.raw, "text");
  EXPECT_NE(event.raw.data(), slot_bytes);
  EXPECT_EQ(slot.data.get(), slot_bytes);
}

}  // namespace
}  // namespace vigil::dataplane

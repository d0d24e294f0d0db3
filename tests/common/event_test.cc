#include "common/event.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace vigil {
namespace {

constexpr size_t kArenaBytes = 4096;
constexpr uint32_t kSlotMask = 255;  // Event indexes generic fields in 256 slots

std::optional<std::string> lookup(const Event& event, std::string_view name) {
  std::array<char, 64> scratch;
  std::optional<std::string_view> value = event.get(name, scratch);
  if (!value) return std::nullopt;
  return std::string(*value);
}

std::optional<std::string> lookupRef(const Event& event, std::string_view name) {
  std::array<char, 64> scratch;
  FieldRef ref = Event::resolve(name);
  std::optional<std::string_view> value = event.get(ref, scratch);
  if (!value) return std::nullopt;
  return std::string(*value);
}

// Returns `count` names "f<number>" whose hash lands in slot `slot` of the index.
std::vector<std::string> namesInSlot(uint32_t slot, size_t count) {
  std::vector<std::string> names;
  for (int i = 0; names.size() < count; ++i) {
    std::string name = "f" + std::to_string(i);
    if ((Event::fieldHash(name) & kSlotMask) == slot) names.push_back(name);
  }
  return names;
}

// Returns two different names with the same 32-bit hash, found by a birthday search.
std::pair<std::string, std::string> fullHashCollision() {
  std::unordered_map<uint32_t, std::string> seen;
  for (int i = 0;; ++i) {
    std::string name = "attr." + std::to_string(i);
    auto [it, inserted] = seen.emplace(Event::fieldHash(name), name);
    if (!inserted) return {it->second, name};
  }
}

Event filledEvent() {
  Event e(kArenaBytes);
  e.timestamp_ns = 1'700'000'000'000'000'000;
  e.receive_ns = 1'700'000'001'000'000'000;
  e.host = "web1";
  e.app = "sshd";
  e.procid = "42";
  e.msgid = "ID7";
  e.facility = 4;
  e.severity = 6;
  e.message = "hello";
  e.src_ip = parseIp("198.51.100.7");
  e.src_port = 40000;
  e.dst_ip = parseIp("2001:db8::1");
  e.dst_port = 22;
  e.user = "bob";
  e.action = "ssh_login";
  e.outcome = "success";
  e.tenant = "acme";
  return e;
}

// Every canonical name reaches its member, by name and through a FieldRef.
TEST(EventGet, CanonicalNames) {
  Event e = filledEvent();
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"@timestamp", "2023-11-14T22:13:20Z"},
      {"event.created", "2023-11-14T22:13:21Z"},
      {"host.name", "web1"},
      {"process.name", "sshd"},
      {"process.pid", "42"},
      {"log.syslog.msgid", "ID7"},
      {"log.syslog.facility.code", "4"},
      {"log.syslog.severity.code", "6"},
      {"message", "hello"},
      {"source.ip", "198.51.100.7"},
      {"source.port", "40000"},
      {"destination.ip", "2001:db8::1"},
      {"destination.port", "22"},
      {"user.name", "bob"},
      {"event.action", "ssh_login"},
      {"event.outcome", "success"},
      {"tenant", "acme"},
  };
  for (const auto& [name, value] : expected) {
    EXPECT_NE(Event::resolve(name).canonical, CanonicalField::kNone) << name;
    EXPECT_EQ(lookup(e, name), value) << name;
    EXPECT_EQ(lookupRef(e, name), value) << name;
  }
}

// Unset canonical members read as absent, except the message and the two times.
TEST(EventGet, CanonicalUnset) {
  Event e(kArenaBytes);
  for (std::string_view name : {"host.name", "process.pid", "source.ip", "source.port",
                                "log.syslog.facility.code", "user.name", "tenant"}) {
    EXPECT_EQ(lookup(e, name), std::nullopt) << name;
  }
  EXPECT_EQ(lookup(e, "message"), "");
  EXPECT_EQ(lookup(e, "@timestamp"), "1970-01-01T00:00:00Z");
}

// Names that share a canonical name's length and distinguishing letter stay generic.
TEST(EventGet, NearCanonicalNamesAreGeneric) {
  Event e = filledEvent();
  const std::vector<std::string> near = {
      "host.namx", "sourceXip", "user_name", "@timestamq", "process.pie", "source.porT",
      "process.namf", "event.actioM", "event.crXated", "event.outcomX", "destination.iq",
      "log.syslog.msgix", "destination.porx", "log.syslog.facility.codX",
      "log.syslog.severity.coDe", "tenanT", "messagE", ""};
  for (const std::string& name : near) {
    EXPECT_EQ(Event::resolve(name).canonical, CanonicalField::kNone) << name;
    EXPECT_EQ(lookup(e, name), std::nullopt) << name;
  }
  for (const std::string& name : near) ASSERT_TRUE(e.addField(name, name));
  for (const std::string& name : near) {
    EXPECT_EQ(lookup(e, name), name) << name;
    EXPECT_EQ(lookupRef(e, name), name) << name;
  }
}

// A generic field named like a canonical one never shadows the member.
TEST(EventGet, CanonicalWinsOverGeneric) {
  Event e = filledEvent();
  ASSERT_TRUE(e.addField("message", "from json"));
  ASSERT_TRUE(e.addField("host.name", "other"));
  EXPECT_EQ(lookup(e, "message"), "hello");
  EXPECT_EQ(lookup(e, "host.name"), "web1");
}

// All 96 generic fields are found by name and by ref, the 97th from the overflow area,
// and names never added are not.
TEST(EventGet, AllGenericFields) {
  Event e(kArenaBytes);
  std::vector<std::string> names;
  for (size_t i = 0; i < Event::kMaxFields; ++i) names.push_back("json.key_" + std::to_string(i));
  for (const std::string& name : names) {
    ASSERT_TRUE(e.addField(name, e.arena.copy("value of " + name)));
  }
  EXPECT_TRUE(e.addField("one.too.many", "x"));
  EXPECT_TRUE(e.has(kFlagFieldsOverflow));
  EXPECT_EQ(e.field_count, Event::kMaxFields);
  EXPECT_EQ(e.overflowFields(), 1u);
  EXPECT_EQ(lookup(e, "one.too.many"), "x");
  for (const std::string& name : names) {
    EXPECT_EQ(lookup(e, name), "value of " + name) << name;
    EXPECT_EQ(lookupRef(e, name), "value of " + name) << name;
  }
  for (int i = 0; i < 2000; ++i) {
    std::string absent = "absent." + std::to_string(i);
    ASSERT_EQ(lookup(e, absent), std::nullopt) << absent;
  }
}

// Names that share a slot, including a chain that wraps from the last slot to the first,
// are all found, and an absent name in the same slot is not.
TEST(EventGet, SlotCollisions) {
  for (uint32_t slot : {0u, 255u}) {
    Event e(kArenaBytes);
    std::vector<std::string> names = namesInSlot(slot, Event::kMaxFields + 1);
    const std::string absent = names.back();
    names.pop_back();
    for (const std::string& name : names) {
      ASSERT_TRUE(e.addField(name, e.arena.copy(name + "=v")));
    }
    for (const std::string& name : names) {
      EXPECT_EQ(lookup(e, name), name + "=v") << "slot " << slot << " " << name;
    }
    EXPECT_EQ(lookup(e, absent), std::nullopt) << "slot " << slot;
  }
}

// Two names with the same full 32-bit hash are distinguished by comparing the names.
TEST(EventGet, FullHashCollision) {
  auto [first, second] = fullHashCollision();
  ASSERT_NE(first, second);
  ASSERT_EQ(Event::fieldHash(first), Event::fieldHash(second));
  Event e(kArenaBytes);
  ASSERT_TRUE(e.addField(first, "one"));
  EXPECT_EQ(lookup(e, second), std::nullopt);
  ASSERT_TRUE(e.addField(second, "two"));
  EXPECT_EQ(lookup(e, first), "one");
  EXPECT_EQ(lookup(e, second), "two");
  EXPECT_EQ(lookupRef(e, second), "two");
}

// With duplicate names the first field added wins, as the linear scan did before.
TEST(EventGet, DuplicateFirstWins) {
  Event e(kArenaBytes);
  ASSERT_TRUE(e.addField("dup", "first"));
  ASSERT_TRUE(e.addField("other", "x"));
  ASSERT_TRUE(e.addField("dup", "second"));
  EXPECT_EQ(lookup(e, "dup"), "first");
  EXPECT_EQ(e.field_count, 3u);
}

// Fields a parser drops by lowering field_count disappear, and fields added after that
// are found, with the first-wins rule applied to what remains.
TEST(EventGet, DroppedFieldsLeaveIndex) {
  Event e(kArenaBytes);
  ASSERT_TRUE(e.addField("keep", "k"));
  ASSERT_TRUE(e.addField("gone", "g"));
  ASSERT_TRUE(e.addField("dup", "old"));
  e.field_count = 1;
  EXPECT_EQ(lookup(e, "keep"), "k");
  EXPECT_EQ(lookup(e, "gone"), std::nullopt);
  EXPECT_EQ(lookup(e, "dup"), std::nullopt);

  ASSERT_TRUE(e.addField("dup", "new"));
  ASSERT_TRUE(e.addField("dup", "newer"));
  EXPECT_EQ(lookup(e, "dup"), "new");
  EXPECT_EQ(lookup(e, "gone"), std::nullopt);

  e.field_count = 0;
  EXPECT_EQ(lookup(e, "keep"), std::nullopt);
  ASSERT_TRUE(e.addField("gone", "back"));
  EXPECT_EQ(lookup(e, "gone"), "back");
  EXPECT_EQ(lookup(e, "keep"), std::nullopt);
}

// A lookup indexes the fields added so far, and fields added after it are found too.
TEST(EventGet, IndexFollowsLaterAdds) {
  Event e(kArenaBytes);
  ASSERT_TRUE(e.addField("a", "1"));
  EXPECT_EQ(lookup(e, "a"), "1");
  EXPECT_EQ(lookup(e, "b"), std::nullopt);
  ASSERT_TRUE(e.addField("b", "2"));
  ASSERT_TRUE(e.addField("a", "3"));
  EXPECT_EQ(lookup(e, "b"), "2");
  EXPECT_EQ(lookupRef(e, "b"), "2");
  EXPECT_EQ(lookup(e, "a"), "1");
}

// Fields dropped after a lookup and replaced by new ones before the next lookup: the
// slots of the dropped fields must not match the new names.
TEST(EventGet, DropAfterLookupThenAdd) {
  Event e(kArenaBytes);
  ASSERT_TRUE(e.addField("keep", "k"));
  ASSERT_TRUE(e.addField("gone", "g"));
  ASSERT_TRUE(e.addField("also_gone", "h"));
  EXPECT_EQ(lookup(e, "gone"), "g");
  e.field_count = 1;
  ASSERT_TRUE(e.addField("new", "n"));
  ASSERT_TRUE(e.addField("gone", "again"));
  ASSERT_TRUE(e.addField("third", "t"));
  EXPECT_EQ(lookup(e, "gone"), "again");
  EXPECT_EQ(lookup(e, "new"), "n");
  EXPECT_EQ(lookup(e, "also_gone"), std::nullopt);
  EXPECT_EQ(lookup(e, "third"), "t");
  EXPECT_EQ(lookup(e, "keep"), "k");
}

// indexFields() leaves nothing for get() to build, so lookups after it write nothing
// and threads may share the event read-only.
TEST(EventGet, IndexFieldsThenSharedReads) {
  Event e(kArenaBytes);
  std::vector<std::string> names;
  for (int i = 0; i < 40; ++i) names.push_back("field." + std::to_string(i));
  for (const std::string& name : names) ASSERT_TRUE(e.addField(name, name));
  e.indexFields();
  const Event& shared = e;
  std::vector<std::thread> readers;
  std::atomic<int> found{0};
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      for (const std::string& name : names) {
        if (lookup(shared, name) == name) found.fetch_add(1);
      }
    });
  }
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(found.load(), 4 * 40);
}

// reset() empties the index, so a reused slot finds only its new fields.
TEST(EventGet, ResetClearsIndex) {
  Event e(kArenaBytes);
  ASSERT_TRUE(e.addField("a", "1"));
  ASSERT_TRUE(e.addField("b", "2"));
  e.reset();
  EXPECT_EQ(lookup(e, "a"), std::nullopt);
  ASSERT_TRUE(e.addField("b", "3"));
  EXPECT_EQ(lookup(e, "b"), "3");
  EXPECT_EQ(lookup(e, "a"), std::nullopt);
}

// A FieldRef keeps the hash of its name, and resolving a canonical name computes none.
TEST(EventResolve, RefCarriesHash) {
  FieldRef generic = Event::resolve("dns.rrname");
  EXPECT_EQ(generic.canonical, CanonicalField::kNone);
  EXPECT_EQ(generic.hash, Event::fieldHash("dns.rrname"));
  EXPECT_EQ(generic.name, "dns.rrname");
  FieldRef canonical = Event::resolve("source.ip");
  EXPECT_EQ(canonical.canonical, CanonicalField::kSourceIp);
}

// Fields past kMaxFields go to the overflow area: get() and visitFields() reach every
// one of them, in the order they were added.
TEST(EventOverflow, EveryFieldReachable) {
  Event e(64 * 1024);
  std::vector<std::string> names;
  for (size_t i = 0; i < 200; ++i) names.push_back("member_" + std::to_string(i));
  for (const std::string& name : names) {
    ASSERT_TRUE(e.addField(e.arena.copy(name), e.arena.copy("v" + name)));
  }
  EXPECT_TRUE(e.has(kFlagFieldsOverflow));
  EXPECT_FALSE(e.has(kFlagArenaFull));
  EXPECT_EQ(e.field_count, Event::kMaxFields);
  EXPECT_EQ(e.overflowFields(), 200 - Event::kMaxFields);
  EXPECT_EQ(e.totalFields(), 200u);
  for (const std::string& name : names) {
    EXPECT_EQ(lookup(e, name), "v" + name) << name;
    EXPECT_EQ(lookupRef(e, name), "v" + name) << name;
  }
  EXPECT_EQ(lookup(e, "member_200"), std::nullopt);
  std::vector<std::string> visited;
  EXPECT_TRUE(e.visitFields([&](const Field& field) {
    visited.emplace_back(field.name);
    return true;
  }));
  EXPECT_EQ(visited, names);
  size_t seen = 0;
  EXPECT_FALSE(e.visitFields([&](const Field&) { return ++seen < 150; }));
  EXPECT_EQ(seen, 150u);
}

// A name in the table hides the same name in the overflow area, and the first of two
// overflow fields with one name wins.
TEST(EventOverflow, FirstFieldOfNameWins) {
  Event e(kArenaBytes);
  ASSERT_TRUE(e.addField("dup", "table"));
  for (size_t i = 1; i < Event::kMaxFields; ++i) ASSERT_TRUE(e.addField("pad", "x"));
  ASSERT_TRUE(e.addField("dup", "overflow"));
  ASSERT_TRUE(e.addField("late", "first"));
  ASSERT_TRUE(e.addField("late", "second"));
  EXPECT_EQ(lookup(e, "dup"), "table");
  EXPECT_EQ(lookup(e, "late"), "first");
}

// truncateFields() forgets overflow fields and chunks past the kept count, so a parser
// that gives its arena back and adds again sees only the new fields.
TEST(EventOverflow, TruncateKeepsPrefix) {
  Event e(64 * 1024);
  std::vector<std::string> names;
  for (size_t i = 0; i < 150; ++i) names.push_back("f" + std::to_string(i));
  for (const std::string& name : names) ASSERT_TRUE(e.addField(name, name));
  const size_t mark = 120;
  e.truncateFields(mark);
  EXPECT_EQ(e.totalFields(), mark);
  EXPECT_EQ(lookup(e, "f119"), "f119");
  EXPECT_EQ(lookup(e, "f120"), std::nullopt);
  ASSERT_TRUE(e.addField("again", "1"));
  EXPECT_EQ(lookup(e, "again"), "1");
  EXPECT_EQ(e.totalFields(), mark + 1);

  e.truncateFields(Event::kMaxFields);
  EXPECT_EQ(e.overflowFields(), 0u);
  EXPECT_EQ(lookup(e, "again"), std::nullopt);
  e.truncateFields(10);
  EXPECT_EQ(e.totalFields(), 10u);
  EXPECT_EQ(lookup(e, "f9"), "f9");
  EXPECT_EQ(lookup(e, "f10"), std::nullopt);
  e.truncateFields(500);  // more than the event has: no change
  EXPECT_EQ(e.totalFields(), 10u);
}

// An overflow chunk that does not fit the arena loses its field, and the event says so.
TEST(EventOverflow, ArenaFullFlagged) {
  Event e(64);
  for (size_t i = 0; i < Event::kMaxFields; ++i) ASSERT_TRUE(e.addField("k", "v"));
  EXPECT_FALSE(e.addField("lost", "v"));
  EXPECT_TRUE(e.has(kFlagFieldsOverflow));
  EXPECT_TRUE(e.has(kFlagArenaFull));
  EXPECT_EQ(e.totalFields(), Event::kMaxFields);
  EXPECT_EQ(lookup(e, "lost"), std::nullopt);
}

// reset() forgets the overflow area with the rest of the event.
TEST(EventOverflow, ResetClearsOverflow) {
  Event e(kArenaBytes);
  for (size_t i = 0; i <= Event::kMaxFields; ++i) ASSERT_TRUE(e.addField("k", "v"));
  ASSERT_TRUE(e.addField("over", "1"));
  e.reset();
  EXPECT_EQ(e.totalFields(), 0u);
  EXPECT_EQ(lookup(e, "over"), std::nullopt);
}

}  // namespace
}  // namespace vigil
